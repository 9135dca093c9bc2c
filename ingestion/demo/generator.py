"""Entry point: ``generate(out_dir, seed, profile, as_of) -> GroundTruth``."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .context import (
    P_ACCOUNT_MISSING_INDUSTRY,
    P_CONTACT_DUPLICATE,
    P_CONTACT_MISSING_EMAIL,
    P_LEAD_DUPLICATE,
    P_LEAD_NO_ACTIVITY,
    P_LEAD_UNOWNED,
    P_OPEN_OPP_PAST_CLOSE,
    P_OPP_MISSING_AMOUNT,
    WINDOW_DAYS,
    Ctx,
    make_rng,
)
from .ics import CalendarWriter
from .ids import IdFactory
from .internal import leadership_events, team_events
from .names import CompanyFactory
from .org import CampaignIndex, build_campaigns, build_org
from .pod import Pod
from .profiles import get_profile
from .reference import (
    COMPANY_DOMAIN,
    LEAD_SOURCES,
    RAMP_RULES,
    STAGE_ADVANCE_PROBABILITY,
    STAGES,
    true_win_probabilities,
)
from .schema import BOOL_STYLE, DATETIME_STYLE
from .sqlite_writer import CrmWriter
from .truth import GroundTruth, TruthAccumulator

CRM_FILE = "crm.sqlite"
CALENDAR_DIR = "calendars"
GROUND_TRUTH_FILE = "ground_truth.json"


def today_utc() -> date:
    return datetime.now(UTC).date()


def generate(
    out_dir: Path | str, seed: int = 42, profile: str = "S", as_of: date | None = None, *, quiet: bool = False
) -> GroundTruth:
    """Writes ``crm.sqlite``, ``calendars/*.ics`` and ``ground_truth.json`` into ``out_dir``.

    Deterministic: the same ``seed``, ``profile`` and ``as_of`` give byte-identical files.
    """
    prof = get_profile(profile)
    as_of = as_of or today_utc()
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / CRM_FILE, out / GROUND_TRUTH_FILE):
        if stale.exists():
            stale.unlink()
    cal_dir = out / CALENDAR_DIR
    if cal_dir.exists():
        shutil.rmtree(cal_dir)
    cal_dir.mkdir()

    ids = IdFactory()
    org = build_org(prof, as_of, ids, make_rng(seed, prof.name, as_of, "org"))
    campaigns, campaign_rows = build_campaigns(
        prof, as_of, ids, make_rng(seed, prof.name, as_of, "campaigns")
    )
    as_of_ts = datetime(as_of.year, as_of.month, as_of.day)
    writer = CrmWriter(out / CRM_FILE)
    truth = TruthAccumulator(as_of)
    cal = CalendarWriter(cal_dir, as_of_ts, {u.email: u.tz for u in org.users})
    ctx = Ctx(
        seed=seed,
        profile=prof,
        as_of=as_of,
        ids=ids,
        companies=CompanyFactory(),
        writer=writer,
        truth=truth,
        cal=cal,
        org=org,
        campaigns=CampaignIndex(campaigns),
        total_ae_slots=sum(len(t.reps) for t in org.ae_teams),
    )
    ctx.write({"userrole": org.role_rows, "user": org.user_rows, "campaign": campaign_rows})

    units = [("pod", t) for t in org.ae_teams] + [("team", t) for t in org.sdr_teams] + [("leadership", None)]
    bar = tqdm(total=len(units) + 1, desc=f"demo {prof.name}", unit="team", disable=quiet, leave=False)
    try:
        for i, (kind, team) in enumerate(units):
            if kind == "pod":
                Pod(ctx, team, i).run()
            elif kind == "team":
                team_events(ctx, team, ctx.rng("team", team.name))
                cal.flush()
            else:
                leadership_events(ctx, org, ctx.rng("leadership"))
                cal.flush()
            bar.update(1)
        bar.set_postfix_str("finalizing")
        cal.finish()
        writer.create_indexes()
        bar.update(1)
    finally:
        bar.close()
        writer.close()

    data = build_ground_truth(ctx, campaigns)
    gt = GroundTruth(data, planted=ctx.planted)
    gt.write(out / GROUND_TRUTH_FILE)
    return gt


def stage_table() -> list[dict]:
    win = true_win_probabilities()
    out = []
    for i, (name, prob, fc_label, fc_api, closed, won) in enumerate(STAGES):
        if won:
            true_p = 1.0
        elif closed:
            true_p = 0.0
        else:
            true_p = round(win[i], 4)
        out.append(
            {
                "name": name,
                "sort_order": i + 1,
                "default_probability": prob,
                "forecast_category_name": fc_label,
                "forecast_category_api": fc_api,
                "is_closed": closed,
                "is_won": won,
                "true_win_probability": true_p,
                "advance_probability": STAGE_ADVANCE_PROBABILITY[i] if i < 8 else None,
            }
        )
    return out


def build_ground_truth(ctx: Ctx, campaigns) -> dict:
    org = ctx.org
    truth = ctx.truth
    as_of = ctx.as_of
    stages = stage_table()
    teams = []
    for t in org.teams:
        teams.append(
            {
                "name": t.name,
                "segment": t.template.segment,
                "is_sdr_team": t.template.is_sdr,
                "manager_id": t.manager.id,
                "manager_role_id": t.manager_role,
                "rep_role_id": t.rep_role,
                "rep_ids": [r.id for r in t.reps],
                "aligned_sdr_ids": [s.id for s in t.sdrs],
            }
        )
    reps = [u for u in org.users if u.kind in ("ae", "sdr")]
    data = {
        "generator": {"name": "ingestion.demo", "version": __version__},
        "seed": ctx.seed,
        "profile": ctx.profile.name,
        "as_of": as_of.isoformat(),
        "as_of_timestamp_utc": ctx.as_of_ts.isoformat() + "Z",
        "window_start": ctx.window_start.date().isoformat(),
        "window_days": WINDOW_DAYS,
        "company_domain": COMPANY_DOMAIN,
        "files": {"crm": CRM_FILE, "calendars": CALENDAR_DIR + "/<mailbox email>.ics"},
        "row_counts": truth.row_counts(),
        "storage_styles": {"datetime": DATETIME_STYLE, "boolean": BOOL_STYLE},
        "stages": stages,
        "true_stage_win_probability": {s["name"]: s["true_win_probability"] for s in stages},
        "empirical_stage_win_rate": truth.empirical_stage_win_rate([s["name"] for s in stages]),
        "ramp": [
            {"tenure_days_lt": a, "late_stage_advance_multiplier": b, "deal_size_multiplier": c}
            for a, b, c in RAMP_RULES
        ],
        "lead_sources": [
            {"lead_source": s, "weight": w, "conversion_probability": c} for s, w, c in LEAD_SOURCES
        ],
        "defects": truth.defects_result(),
        "defect_planting_probabilities": {
            "lead_without_owner": P_LEAD_UNOWNED,
            "duplicate_lead_email": P_LEAD_DUPLICATE,
            "lead_without_activity_7d": P_LEAD_NO_ACTIVITY,
            "contact_missing_email": P_CONTACT_MISSING_EMAIL,
            "duplicate_contact_email": P_CONTACT_DUPLICATE,
            "account_missing_industry": P_ACCOUNT_MISSING_INDUSTRY,
            "opportunity_missing_amount": P_OPP_MISSING_AMOUNT,
            "open_opportunity_past_close_date": P_OPEN_OPP_PAST_CLOSE,
        },
        "lead_activity_boundary_ambiguous": truth.boundary_ambiguous,
        "calendar": ctx.cal.stats.as_dict(),
        "org": {
            "vp_id": org.vp.id,
            "teams": teams,
            "users": len(org.users),
            "reps": len(reps),
            "inactive_user_ids": sorted(u.id for u in org.users if u.leave is not None),
            "new_hire_ids_last_9_months": sorted(u.id for u in reps if (as_of - u.hire).days <= 270),
            "new_hire_ids_last_90_days": sorted(u.id for u in reps if (as_of - u.hire).days < 90),
        },
        "campaigns_without_opportunities_by_design": sorted(c.id for c in campaigns if not c.linkable),
        "generator_state": {
            "next_company_serial": ctx.companies.next_serial,
            "next_id_serial": dict(ctx.ids.next_serial),
        },
    }
    return data
