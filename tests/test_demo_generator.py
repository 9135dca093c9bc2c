"""Tests for the demo data generator (``python -m ingestion.demo``), XS profile."""

from __future__ import annotations

import filecmp
import json
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import icalendar
import pytest

from ingestion.demo import generate
from ingestion.demo.change import apply_change
from ingestion.demo.ids import KEY_PREFIX, is_valid
from ingestion.demo.reference import COMPANY_DOMAIN, STAGES
from ingestion.demo.schema import BOOL_STYLE, COLUMNS, DATETIME_STYLE, TABLES
from ingestion.demo.truth import recompute

AS_OF = date(2026, 11, 27)
AS_OF_TS = datetime(2026, 11, 27)
CONTRACT = {
    "user": "Id Name Email Title UserRoleId ManagerId IsActive TimeZoneSidKey Hire_Date__c "
    "CreatedDate SystemModstamp",
    "userrole": "Id Name ParentRoleId SystemModstamp",
    "account": "Id Name Industry NumberOfEmployees AnnualRevenue BillingCountry OwnerId "
    "CreatedDate SystemModstamp IsDeleted",
    "contact": "Id AccountId FirstName LastName Email Title OwnerId CreatedDate SystemModstamp IsDeleted",
    "lead": "Id FirstName LastName Email Company Industry LeadSource Status OwnerId IsConverted "
    "ConvertedDate ConvertedAccountId ConvertedContactId ConvertedOpportunityId "
    "CreatedDate SystemModstamp IsDeleted",
    "opportunity": "Id Name AccountId OwnerId Type LeadSource CampaignId StageName Amount "
    "Probability ForecastCategoryName CloseDate IsClosed IsWon CreatedDate "
    "SystemModstamp IsDeleted",
    "opportunityhistory": "Id OpportunityId StageName Amount Probability ForecastCategory "
    "CloseDate CreatedDate SystemModstamp IsDeleted",
    "task": "Id WhoId WhatId OwnerId Subject TaskSubtype Status ActivityDate CreatedDate "
    "SystemModstamp IsDeleted",
    "campaign": "Id Name Type Status StartDate EndDate BudgetedCost ActualCost CreatedDate "
    "SystemModstamp IsDeleted",
    "forecastingquota": "Id QuotaOwnerId StartDate QuotaAmount SystemModstamp",
}


# ------------------------------------------------------------------------------------------
# helpers (deliberately independent from the generator's own readers)
# ------------------------------------------------------------------------------------------
def truthy(v) -> bool:
    if isinstance(v, str):
        return v.lower() == "true"
    return bool(v)


def ts(s: str) -> datetime:
    """Any of the stored datetime spellings -> naive UTC."""
    s = s.replace(" ", "T")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    elif s.endswith("+0000"):
        s = s[:-5] + "+00:00"
    return datetime.fromisoformat(s).replace(tzinfo=None)


def blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def load(d: Path) -> dict[str, list[dict]]:
    conn = sqlite3.connect(d / "crm.sqlite")
    conn.row_factory = sqlite3.Row
    out = {t: [dict(r) for r in conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid')] for t in COLUMNS}
    conn.close()
    return out


def live(rows):
    return [r for r in rows if not truthy(r.get("IsDeleted", 0))]


def dump_tables(d: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(d / "crm.sqlite")
    out = {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in COLUMNS}
    conn.close()
    return out


def by_owner(rows, key="OwnerId"):
    c = Counter(None if blank(r[key]) else r[key] for r in rows)
    return sorted(
        ({"owner_id": k, "count": v} for k, v in c.items()),
        key=lambda x: (x["owner_id"] is None, x["owner_id"] or ""),
    )


def dup_members(rows):
    groups = defaultdict(list)
    for r in rows:
        if not blank(r["Email"]):
            groups[r["Email"].lower()].append(r)
    return [r for g in groups.values() if len(g) > 1 for r in g]


def calendar_meetings(cal_dir: Path) -> list[tuple[datetime, bool, list[str]]]:
    """(booking time UTC, cancelled, attendee emails lower-case) per VEVENT via icalendar."""
    out = []
    for f in sorted(cal_dir.glob("*.ics")):
        cal = icalendar.Calendar.from_ical(f.read_bytes())
        for ev in cal.walk("VEVENT"):
            att = ev.get("ATTENDEE")
            if att is None:
                continue
            att = att if isinstance(att, list) else [att]
            emails = [str(a)[7:].lower() for a in att if str(a).lower().startswith("mailto:")]
            booked = ev.get("CREATED") or ev.get("DTSTART")
            b = booked.dt
            if not isinstance(b, datetime):
                b = datetime(b.year, b.month, b.day)
            elif b.tzinfo is not None:
                b = b.astimezone(UTC).replace(tzinfo=None)
            out.append((b, str(ev.get("STATUS", "")).upper() == "CANCELLED", emails))
    return out


# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xs(tmp_path_factory):
    d = tmp_path_factory.mktemp("xs")
    gt = generate(d, seed=42, profile="XS", as_of=AS_OF, quiet=True)
    return d, gt


@pytest.fixture(scope="module")
def rows(xs):
    return load(xs[0])


def test_contract_tables_columns_and_indexes(xs):
    d, _ = xs
    conn = sqlite3.connect(d / "crm.sqlite")
    tables = {
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        if not r[0].startswith("sqlite_")
    }
    assert tables == set(CONTRACT)
    for t, cols in CONTRACT.items():
        info = conn.execute(f'PRAGMA table_info("{t}")').fetchall()
        assert [c[1] for c in info] == cols.split(), t
        declared = {c[1]: c[2] for c in info}
        assert set(declared.values()) <= {"TEXT", "REAL", "INTEGER", "BOOLEAN", "DATETIME", "DATE"}
        idx_cols = set()
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name=?", (t,)):
            idx_cols |= {r[2] for r in conn.execute(f'PRAGMA index_info("{name}")')}
        assert {"Id", "SystemModstamp"} <= idx_cols, t
    conn.close()
    assert {t: [c[0] for c in cols] for t, cols in TABLES.items()} == {
        t: c.split() for t, c in CONTRACT.items()
    }


def test_ids_are_salesforce_style_and_unique(rows):
    for t, rs in rows.items():
        ids = [r["Id"] for r in rs]
        assert len(ids) == len(set(ids)), t
        assert all(is_valid(i) and i.startswith(KEY_PREFIX[t]) for i in ids), t


def test_value_styles(xs, rows):
    for t, rs in rows.items():
        style, bstyle = DATETIME_STYLE[t], BOOL_STYLE[t]
        for name, _, kind in TABLES[t]:
            vals = [r[name] for r in rs if r[name] is not None]
            if kind == "datetime":
                for v in vals:
                    assert isinstance(v, str)
                    t_ = ts(v)
                    assert t_ < AS_OF_TS, (t, name, v)
                if style == "sf":
                    assert all(v.endswith(".000+0000") for v in vals)
                elif style == "z":
                    assert all(v.endswith("Z") and "." not in v for v in vals)
            elif kind == "date":
                assert all(len(v) == 10 and date.fromisoformat(v) for v in vals), (t, name)
            elif kind == "bool":
                expected = {"true", "false"} if bstyle == "text" else {0, 1}
                assert set(vals) <= expected, (t, name, set(vals))
    # mixed styles across tables, as intended
    assert len(set(DATETIME_STYLE.values())) >= 3 and len(set(BOOL_STYLE.values())) == 2
    for r in rows["forecastingquota"]:
        assert r["StartDate"].endswith("-01")


def test_determinism_same_seed_identical(tmp_path, xs):
    d1, _ = xs
    d2 = tmp_path / "again"
    generate(d2, seed=42, profile="XS", as_of=AS_OF, quiet=True)
    assert dump_tables(d1) == dump_tables(d2)
    assert (d1 / "crm.sqlite").read_bytes() == (d2 / "crm.sqlite").read_bytes()
    assert (d1 / "ground_truth.json").read_bytes() == (d2 / "ground_truth.json").read_bytes()
    f1 = sorted(p.name for p in (d1 / "calendars").iterdir())
    f2 = sorted(p.name for p in (d2 / "calendars").iterdir())
    assert f1 == f2 and f1
    for name in f1:
        assert (d1 / "calendars" / name).read_bytes() == (d2 / "calendars" / name).read_bytes()


def test_different_seed_differs(tmp_path, xs):
    d1, _ = xs
    d3 = tmp_path / "other"
    generate(d3, seed=43, profile="XS", as_of=AS_OF, quiet=True)
    a, b = dump_tables(d1), dump_tables(d3)
    assert a["lead"] != b["lead"] and a["opportunity"] != b["opportunity"]
    assert a["user"] != b["user"]


def test_ground_truth_matches_plain_python(xs, rows):
    d, gt = xs
    data = json.loads((d / "ground_truth.json").read_text())
    assert data["as_of"] == AS_OF.isoformat()
    for t, rs in rows.items():
        assert data["row_counts"][t] == {"all": len(rs), "non_deleted": len(live(rs))}, t

    opp = live(rows["opportunity"])
    lead = live(rows["lead"])
    contact = live(rows["contact"])
    account = live(rows["account"])
    expected = {
        "open_opportunity_past_close_date": [
            r for r in opp if not truthy(r["IsClosed"]) and r["CloseDate"] < AS_OF.isoformat()
        ],
        "opportunity_missing_amount": [r for r in opp if r["Amount"] is None],
        "duplicate_lead_email": dup_members(lead),
        "duplicate_contact_email": dup_members(contact),
        "account_missing_industry": [r for r in account if blank(r["Industry"])],
        "contact_missing_email": [r for r in contact if blank(r["Email"])],
        "lead_without_owner": [r for r in lead if blank(r["OwnerId"])],
    }
    for name, rs in expected.items():
        got = data["defects"][name]
        assert got["count"] == len(rs) > 0, name
        assert got["ids"] == sorted(r["Id"] for r in rs), name
        assert got["by_owner"] == by_owner(rs), name
    assert data["defects"]["lead_without_owner"]["by_owner"][0]["owner_id"] is None
    # every reported id was planted on purpose (non-planted rows never match a rule)
    for name, v in gt.defects.items():
        assert set(v["ids"]) <= gt.planted[name], name


def test_lead_without_activity_independent(xs, rows):
    d, gt = xs
    tasks = live(rows["task"])
    meetings = [m for m in calendar_meetings(d / "calendars") if not m[1]]
    by_email = defaultdict(list)
    for booked, _, emails in meetings:
        for e in emails:
            by_email[e].append(booked)
    cutoff = AS_OF_TS - timedelta(days=7)
    resp = defaultdict(list)
    for t in tasks:
        if t["WhoId"] and t["TaskSubtype"] in ("Call", "Email"):
            resp[t["WhoId"]].append(ts(t["CreatedDate"]))
    expected = []
    for ld in live(rows["lead"]):
        created = ts(ld["CreatedDate"])
        if truthy(ld["IsConverted"]) or created > cutoff:
            continue
        end = created + timedelta(days=7)
        answered = any(created <= x <= end for x in resp[ld["Id"]])
        if not answered and ld["Email"]:
            answered = any(created <= b <= end for b in by_email[ld["Email"].lower()])
        if not answered:
            expected.append(ld)
    got = gt.defects["lead_without_activity_7d"]
    assert got["ids"] == sorted(r["Id"] for r in expected)
    assert got["by_owner"] == by_owner(expected)
    assert got["count"] > 0
    assert gt.data["lead_activity_boundary_ambiguous"] == 0


def test_recompute_from_files_agrees(xs):
    d, gt = xs
    again = recompute(d, AS_OF)
    for key in ("row_counts", "defects", "empirical_stage_win_rate", "calendar"):
        assert again[key] == gt.data[key], key


def test_referential_integrity_of_non_planted_rows(rows):
    ids = {t: {r["Id"] for r in live(rs)} for t, rs in rows.items()}
    all_ids = set().union(*ids.values())
    users = ids["user"]
    for r in rows["user"]:
        assert r["UserRoleId"] in ids["userrole"]
        assert r["ManagerId"] is None or r["ManagerId"] in users
        assert r["Email"].endswith("@" + COMPANY_DOMAIN)
    assert sum(r["ManagerId"] is None for r in rows["user"]) == 1
    for r in rows["userrole"]:
        assert r["ParentRoleId"] is None or r["ParentRoleId"] in ids["userrole"]
    for r in live(rows["account"]):
        assert r["OwnerId"] in users
    for r in live(rows["contact"]):
        assert r["AccountId"] in ids["account"] and r["OwnerId"] in users
        if r["Email"]:
            assert not r["Email"].lower().endswith(COMPANY_DOMAIN)
            assert r["Email"].lower().rsplit(".", 1)[1] in ("example", "test")
    for r in live(rows["lead"]):
        if not blank(r["OwnerId"]):
            assert r["OwnerId"] in users
        assert not r["Email"].lower().endswith(COMPANY_DOMAIN)
        if truthy(r["IsConverted"]):
            assert r["ConvertedAccountId"] in ids["account"]
            assert r["ConvertedContactId"] in ids["contact"]
            assert r["ConvertedOpportunityId"] in ids["opportunity"]
            assert r["ConvertedDate"] >= r["CreatedDate"][:10]
        else:
            assert r["ConvertedOpportunityId"] is None and r["ConvertedDate"] is None
    opp_by_id = {r["Id"]: r for r in rows["opportunity"]}
    for r in live(rows["lead"]):
        if truthy(r["IsConverted"]):
            assert opp_by_id[r["ConvertedOpportunityId"]]["LeadSource"] == r["LeadSource"]
    for r in live(rows["opportunity"]):
        assert r["AccountId"] in ids["account"] and r["OwnerId"] in users
        assert r["CampaignId"] is None or r["CampaignId"] in ids["campaign"]
    for r in live(rows["opportunityhistory"]):
        assert r["OpportunityId"] in ids["opportunity"]
    for r in live(rows["task"]):
        assert r["OwnerId"] in users
        assert r["WhoId"] is None or r["WhoId"] in ids["lead"] | ids["contact"]
        assert r["WhatId"] is None or r["WhatId"] in ids["opportunity"] | ids["account"]
        assert r["WhoId"] or r["WhatId"]
    for r in rows["forecastingquota"]:
        assert r["QuotaOwnerId"] in users
    # deleted rows are never referenced by live rows either
    deleted = {r["Id"] for rs in rows.values() for r in rs if truthy(r.get("IsDeleted", 0))}
    assert deleted and not deleted & all_ids


def test_stages_and_probabilities(xs, rows):
    _, gt = xs
    defaults = {s[0]: (s[1], s[2]) for s in STAGES}
    for r in rows["opportunity"]:
        assert (r["Probability"], r["ForecastCategoryName"]) == defaults[r["StageName"]]
        assert truthy(r["IsClosed"]) == r["StageName"].startswith("Closed")
        assert truthy(r["IsWon"]) == (r["StageName"] == "Closed Won")
    api = {s[0]: s[3] for s in STAGES}
    for r in rows["opportunityhistory"]:
        assert r["ForecastCategory"] == api[r["StageName"]]
    true_p = gt.true_stage_win_probability
    assert [s["name"] for s in gt.stages] == [s[0] for s in STAGES]
    diffs = [abs(true_p[n] * 100 - p) for n, (p, _) in defaults.items() if not n.startswith("Closed")]
    assert max(diffs) >= 15  # materially different from Salesforce's defaults
    assert true_p["Closed Won"] == 1.0 and true_p["Closed Lost"] == 0.0
    open_ = [r for r in live(rows["opportunity"]) if not truthy(r["IsClosed"])]
    assert open_ and all(
        r["CloseDate"] > AS_OF.isoformat() or r["Id"] in gt.planted["open_opportunity_past_close_date"]
        for r in open_
    )


def test_realism_basics(xs, rows):
    _, gt = xs
    leads = live(rows["lead"])
    conv = sum(truthy(r["IsConverted"]) for r in leads) / len(leads)
    assert 0.15 <= conv <= 0.35
    assert None in {r["LeadSource"] for r in leads}
    assert {r["Status"] for r in leads} <= {
        "Open - Not Contacted",
        "Working - Contacted",
        "Closed - Converted",
        "Closed - Not Converted",
    }
    assert {r["TaskSubtype"] for r in rows["task"]} >= {"Call", "Email", "Task"}
    assert {r["Type"] for r in rows["opportunity"]} == {"New Business", "Existing Business"}
    assert any(r["CampaignId"] for r in rows["opportunity"])
    used = {r["CampaignId"] for r in rows["opportunity"]}
    assert any(c["Id"] not in used for c in rows["campaign"])
    users = rows["user"]
    assert any(not truthy(u["IsActive"]) for u in users)
    assert any((AS_OF - date.fromisoformat(u["Hire_Date__c"])).days < 90 for u in users)
    assert len({u["TimeZoneSidKey"] for u in users}) >= 3
    hist_per_opp = Counter(r["OpportunityId"] for r in rows["opportunityhistory"])
    assert set(hist_per_opp) == {r["Id"] for r in rows["opportunity"]}
    created = [ts(r["CreatedDate"]) for r in rows["lead"]]
    assert min(created) < AS_OF_TS - timedelta(days=700)
    assert gt.data["window_start"] == (AS_OF - timedelta(days=730)).isoformat()


def test_calendars_parse_and_content(xs, rows):
    d, gt = xs
    files = sorted((d / "calendars").glob("*.ics"))
    mailboxes = {u["Email"] for u in rows["user"]}
    assert {f.name[:-4] for f in files} == mailboxes
    uid_files = defaultdict(set)
    seen = Counter()
    for f in files:
        raw = f.read_bytes()
        assert raw.count(b"\r\n") == raw.count(b"\n")  # CRLF only
        assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
        cal = icalendar.Calendar.from_ical(raw)
        tz_defined = {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")}
        text = raw.decode().replace("\r\n ", "")
        used = {
            part.split("TZID=", 1)[1].split(":", 1)[0].split(";", 1)[0]
            for part in text.split("\r\n")
            if "TZID=" in part
        }
        assert used == tz_defined, f.name
        for ev in cal.walk("VEVENT"):
            for prop in ("UID", "DTSTAMP", "CREATED", "DTSTART", "ORGANIZER", "ATTENDEE"):
                assert prop in ev, (f.name, prop)
            start = ev["DTSTART"].dt
            created = ev["CREATED"].dt
            start_cmp = (
                start
                if isinstance(start, datetime)
                else datetime(start.year, start.month, start.day, tzinfo=created.tzinfo)
            )
            if "RECURRENCE-ID" not in ev:
                assert created < start_cmp, (f.name, ev["UID"])
            uid_files[str(ev["UID"])].add(f.name[:-4])
            if "RRULE" in ev:
                seen["rrule"] += 1
                rule = ev["RRULE"]
                seen["weekly"] += rule.get("FREQ") == ["WEEKLY"]
                seen["count"] += "COUNT" in rule
            seen["exdate"] += "EXDATE" in ev
            seen["override"] += "RECURRENCE-ID" in ev
            seen["cancelled"] += str(ev.get("STATUS")) == "CANCELLED"
            seen["cancelled_override"] += "RECURRENCE-ID" in ev and str(ev.get("STATUS")) == "CANCELLED"
            seen["all_day"] += not isinstance(start, datetime)
            cats = ev.get("CATEGORIES")
            for c in cats if isinstance(cats, list) else [cats] if cats else []:
                for cat in c.cats:
                    seen["cat:" + str(cat)] += 1
            att = ev["ATTENDEE"] if isinstance(ev["ATTENDEE"], list) else [ev["ATTENDEE"]]
            for a in att:
                seen["partstat:" + str(a.params.get("PARTSTAT"))] += 1
                email = str(a)[7:]
                if not email.endswith(COMPANY_DOMAIN) and email != email.lower():
                    seen["external_case_variant"] += 1
    for key in (
        "rrule",
        "weekly",
        "count",
        "exdate",
        "override",
        "cancelled",
        "cancelled_override",
        "all_day",
        "cat:Training",
        "cat:Onboarding",
        "partstat:ACCEPTED",
        "partstat:TENTATIVE",
        "partstat:NEEDS-ACTION",
        "partstat:DECLINED",
        "external_case_variant",
    ):
        assert seen[key] > 0, key
    # the same meeting sits in the organizer's and every internal attendee's file
    checked = 0
    for f in files[:6]:
        cal = icalendar.Calendar.from_ical(f.read_bytes())
        for ev in cal.walk("VEVENT"):
            org = str(ev["ORGANIZER"])[7:]
            att = ev["ATTENDEE"] if isinstance(ev["ATTENDEE"], list) else [ev["ATTENDEE"]]
            internal = {
                str(a)[7:]
                for a in att
                if str(a).endswith(COMPANY_DOMAIN) and a.params.get("CUTYPE") != "GROUP"
            }
            assert {org} | internal <= uid_files[str(ev["UID"])]
            checked += 1
    assert checked
    assert gt.data["calendar"]["files"] == len(files)


def test_cli_generate(tmp_path):
    out = tmp_path / "cli"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingestion.demo",
            "generate",
            "--out",
            str(out),
            "--profile",
            "XS",
            "--as-of",
            AS_OF.isoformat(),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert "as_of=2026-11-27" in r.stderr
    assert (out / "crm.sqlite").exists() and (out / "ground_truth.json").exists()


def test_change_set(tmp_path, xs):
    src, gt0 = xs
    d = tmp_path / "changed"
    shutil.copytree(src, d)
    before = {t: {r["Id"]: r for r in rs} for t, rs in load(d).items()}
    fraction = 0.05
    gt = apply_change(d, fraction=fraction, seed=7, quiet=True)
    assert gt.as_of == AS_OF + timedelta(days=1)
    after = load(d)
    lo, hi = AS_OF_TS, AS_OF_TS + timedelta(days=1)
    for t, rs in after.items():
        ids = [r["Id"] for r in rs]
        assert len(ids) == len(set(ids)), t
        assert all(is_valid(i) for i in ids)
        old = before[t]
        assert set(old) <= set(ids)  # nothing is hard-deleted
        changed = [r for r in rs if r["Id"] not in old or r != old[r["Id"]]]
        # every changed row carries a SystemModstamp inside the change window and nothing else
        # was bumped into it
        assert all(lo <= ts(r["SystemModstamp"]) < hi for r in changed), t
        unchanged_in_window = [
            r for r in rs if r["Id"] in old and r == old[r["Id"]] and lo <= ts(r["SystemModstamp"]) < hi
        ]
        assert not unchanged_in_window, t
        n = len(old)
        if n >= 250 and t != "opportunityhistory":  # history is append-only
            assert 0.5 * fraction <= len(changed) / n <= 4 * fraction, (t, len(changed), n)
        assert changed, t
        inserted = [r for r in rs if r["Id"] not in old]
        if t in ("lead", "account", "contact", "task"):
            assert inserted, t
        if "IsDeleted" in COLUMNS[t] and t in ("lead", "task", "opportunity", "contact"):
            assert any(
                truthy(r["IsDeleted"]) and not truthy(old[r["Id"]]["IsDeleted"]) for r in rs if r["Id"] in old
            ), t
    # only a few calendar files were touched, and they still parse
    cs = gt.data["change_sets"][-1]
    touched = set(cs["calendar_files_touched"])
    assert 1 <= len(touched) <= 4
    cmp = filecmp.dircmp(src / "calendars", d / "calendars")
    assert set(cmp.diff_files) == touched and not cmp.left_only and not cmp.right_only
    for name in touched:
        icalendar.Calendar.from_ical((d / "calendars" / name).read_bytes())
    # ground truth rewritten consistently with the files
    again = recompute(d, gt.as_of)
    for key in ("row_counts", "defects", "calendar"):
        assert again[key] == gt.data[key], key
    assert gt.data["row_counts"]["lead"]["all"] > gt0.data["row_counts"]["lead"]["all"]
    # the same change set on the same input is deterministic
    d2 = tmp_path / "changed2"
    shutil.copytree(src, d2)
    apply_change(d2, fraction=fraction, seed=7, quiet=True)
    assert dump_tables(d) == dump_tables(d2)
    assert (d / "ground_truth.json").read_bytes() == (d2 / "ground_truth.json").read_bytes()
