"""The sales org: role hierarchy, users (VP, managers, reps, SDRs) and marketing campaigns."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from .ids import IdFactory
from .names import ascii_slug
from .profiles import Profile
from .reference import (
    AE_TITLES,
    CAMPAIGN_THEMES,
    CAMPAIGN_TYPES,
    COMPANY_DOMAIN,
    FIRST_NAMES,
    LAST_NAMES,
    TEAM_TEMPLATES,
    TeamTemplate,
)
from .schema import DT, FALSE, TRUE

DAY = timedelta(days=1)


@dataclass(eq=False)
class User:
    id: str
    first: str
    last: str
    email: str
    title: str
    role_id: str
    manager_id: str | None
    tz: str
    hire: date
    kind: str  # vp | manager | ae | sdr
    created: datetime
    modstamp: datetime
    team: Team | None = None
    leave: date | None = None
    successor: User | None = None

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def active_on(self, d: date) -> bool:
        return self.hire <= d and (self.leave is None or d < self.leave)

    def owner_on(self, d: date) -> User:
        """Who owns this user's records on day d (successor after the user left)."""
        u = self
        while u.leave is not None and d >= u.leave and u.successor is not None:
            u = u.successor
        return u


@dataclass(eq=False)
class Team:
    name: str
    template: TeamTemplate
    replica: int
    manager: User
    reps: list[User] = field(default_factory=list)
    sdrs: list[User] = field(default_factory=list)  # SDRs aligned with an AE team
    manager_role: str = ""
    rep_role: str = ""


@dataclass
class Org:
    vp: User
    teams: list[Team]
    users: list[User]
    role_rows: list[tuple]
    user_rows: list[tuple]

    @property
    def ae_teams(self) -> list[Team]:
        return [t for t in self.teams if not t.template.is_sdr]

    @property
    def sdr_teams(self) -> list[Team]:
        return [t for t in self.teams if t.template.is_sdr]


def build_org(profile: Profile, as_of: date, ids: IdFactory, rng: random.Random) -> Org:
    window_start = as_of - timedelta(days=730)
    setup_ts = datetime(window_start.year - 3, 2, 11, 16, 5, 12)
    used_emails: set[str] = set()
    role_rows: list[tuple] = []
    users: list[User] = []

    def role(name: str, parent: str | None) -> str:
        rid = ids.new("userrole")
        role_rows.append(
            (
                rid,
                name,
                parent,
                DT["userrole"](setup_ts + timedelta(minutes=len(role_rows) * 7)),
            )
        )
        return rid

    def person(kind, title, role_id, manager_id, tz, hire, leave=None) -> User:
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        local = f"{ascii_slug(first)}.{ascii_slug(last)}"
        email = f"{local}@{COMPANY_DOMAIN}"
        n = 1
        while email in used_emails:
            n += 1
            email = f"{local}{n}@{COMPANY_DOMAIN}"
        used_emails.add(email)
        created = datetime(hire.year, hire.month, hire.day, 14, 0) - timedelta(
            days=rng.randint(2, 9), minutes=rng.randint(0, 300)
        )
        if leave is not None:
            modstamp = datetime(leave.year, leave.month, leave.day, 17, rng.randint(0, 59))
        else:
            modstamp = max(
                created,
                datetime(as_of.year, as_of.month, as_of.day)
                - timedelta(days=rng.randint(1, 200), minutes=rng.randint(0, 600)),
            )
        u = User(
            id=ids.new("user"),
            first=first,
            last=last,
            email=email,
            title=title,
            role_id=role_id,
            manager_id=manager_id,
            tz=tz,
            hire=hire,
            kind=kind,
            created=created,
            modstamp=modstamp,
            leave=leave,
        )
        users.append(u)
        return u

    vp_role = role("VP Sales", None)
    vp = person(
        "vp",
        "VP of Sales",
        vp_role,
        None,
        "America/New_York",
        as_of - timedelta(days=rng.randint(2400, 3000)),
    )

    teams: list[Team] = []
    for rep_i in range(profile.replicas):
        for tmpl_name, n_active, n_left in profile.teams:
            tmpl = TEAM_TEMPLATES[tmpl_name]
            name = tmpl_name if profile.replicas == 1 else f"{tmpl_name} {rep_i + 1:02d}"
            mgr_role = role(f"{name} Manager", vp_role)
            rep_role = role(f"{name} {'Representative' if tmpl.is_sdr else 'Account Executive'}", mgr_role)
            mgr_title = "SDR Manager" if tmpl.is_sdr else f"Regional Sales Manager, {name}"
            mgr = person(
                "manager",
                mgr_title,
                mgr_role,
                vp.id,
                tmpl.time_zones[0],
                as_of - timedelta(days=rng.randint(900, 2800)),
            )
            team = Team(
                name=name, template=tmpl, replica=rep_i, manager=mgr, manager_role=mgr_role, rep_role=rep_role
            )
            mgr.team = team
            kind = "sdr" if tmpl.is_sdr else "ae"
            titles = AE_TITLES[tmpl.segment]
            # hire dates: new hires (one < 90 days, maybe one more < 9 months), rest tenured
            hires = []
            for i in range(n_active):
                if i == 0 and profile.new_hires_per_team >= 1:
                    hires.append(as_of - timedelta(days=rng.randint(25, 80)))
                elif i == 1 and (profile.new_hires_per_team >= 2 or rng.random() < 0.45):
                    hires.append(as_of - timedelta(days=rng.randint(110, 260)))
                elif rng.random() < 0.25:
                    hires.append(as_of - timedelta(days=rng.randint(300, 700)))
                else:
                    hires.append(as_of - timedelta(days=rng.randint(760, 2400)))
            reps = []
            for hire in hires:
                tz = _pick_tz(tmpl, rng)
                senior = (as_of - hire).days > 900 and rng.random() < 0.5
                reps.append(person(kind, titles[1] if senior else titles[0], rep_role, mgr.id, tz, hire))
            for _ in range(n_left):
                hire = window_start - timedelta(days=rng.randint(60, 900))
                leave = as_of - timedelta(days=rng.randint(120, 520))
                u = person(kind, titles[0], rep_role, mgr.id, _pick_tz(tmpl, rng), hire, leave)
                tenured = [r for r in reps if r.hire <= leave]
                u.successor = rng.choice(tenured) if tenured else mgr
                reps.append(u)
            for r in reps:
                r.team = team
            team.reps = reps
            teams.append(team)
        # align the replica's SDRs with its AE teams
        rep_teams = [t for t in teams if t.replica == rep_i]
        ae_teams = [t for t in rep_teams if not t.template.is_sdr]
        for t in rep_teams:
            if t.template.is_sdr and ae_teams:
                for i, s in enumerate(t.reps):
                    ae_teams[i % len(ae_teams)].sdrs.append(s)

    user_rows = []
    for u in users:
        user_rows.append(
            (
                u.id,
                u.name,
                u.email,
                u.title,
                u.role_id,
                u.manager_id,
                TRUE["user"] if u.leave is None else FALSE["user"],
                u.tz,
                u.hire.isoformat(),
                DT["user"](u.created),
                DT["user"](u.modstamp),
            )
        )
    return Org(vp=vp, teams=teams, users=users, role_rows=role_rows, user_rows=user_rows)


def _pick_tz(tmpl: TeamTemplate, rng: random.Random) -> str:
    n = len(tmpl.time_zones)
    weights = [3] + [2] * (n - 1)
    return rng.choices(tmpl.time_zones, weights=weights)[0]


# ---------------------------------------------------------------------------------------------
@dataclass
class Campaign:
    id: str
    name: str
    type: str
    source: str
    status: str
    start: date
    end: date
    deleted: bool

    @property
    def linkable(self) -> bool:
        return self.status in ("Completed", "In Progress") and not self.deleted


def build_campaigns(
    profile: Profile, as_of: date, ids: IdFactory, rng: random.Random
) -> tuple[list[Campaign], list[tuple]]:
    as_of_ts = datetime(as_of.year, as_of.month, as_of.day)
    lo = as_of - timedelta(days=760)
    hi = as_of + timedelta(days=75)
    n = max(profile.campaigns_total, 6)
    span = (hi - lo).days
    weights = [0.25, 0.18, 0.15, 0.1, 0.15, 0.09, 0.08]
    camps: list[Campaign] = []
    rows: list[tuple] = []
    deleted_idx = n // 3
    for i in range(n):
        ctype, source, bmin, bmax, dur = CAMPAIGN_TYPES[
            rng.choices(range(len(CAMPAIGN_TYPES)), weights=weights)[0]
        ]
        if i == n - 1:
            start = as_of + timedelta(days=rng.randint(20, 60))  # always one planned campaign
        else:
            start = lo + timedelta(days=int((i + rng.random()) * span / n))
        end = start + timedelta(days=dur - 1)
        if i == deleted_idx:
            status = "Aborted"
        elif end < as_of:
            status = "Aborted" if rng.random() < 0.05 else "Completed"
        elif start <= as_of:
            status = "In Progress"
        else:
            status = "Planned"
        budget = round(rng.uniform(bmin, bmax) / 500) * 500
        if status == "Completed":
            actual = round(budget * rng.uniform(0.75, 1.18), 2)
        elif status == "In Progress":
            frac = max(0.1, (as_of - start).days / max(1, dur))
            actual = round(budget * min(1.0, frac) * rng.uniform(0.8, 1.1), 2)
        elif status == "Aborted":
            actual = round(budget * rng.uniform(0.05, 0.3), 2)
        else:
            actual = None
        theme = rng.choice(CAMPAIGN_THEMES)
        name = f"{start.year} {theme} {ctype}"
        if ctype == "Trade Show":
            name = f"{start.year} {theme} Expo"
        created = datetime(start.year, start.month, start.day, 15, 0) - timedelta(
            days=rng.randint(15, 75), minutes=rng.randint(0, 400)
        )
        created = min(created, as_of_ts - timedelta(days=2, minutes=rng.randint(0, 900)))
        mod = datetime(end.year, end.month, end.day, 16, 0) + timedelta(
            days=rng.randint(1, 20), minutes=rng.randint(0, 300)
        )
        mod = min(max(mod, created), as_of_ts - timedelta(hours=1, minutes=rng.randint(0, 600)))
        mod = max(mod, created)
        cid = ids.new("campaign")
        deleted = i == deleted_idx
        camps.append(Campaign(cid, name, ctype, source, status, start, end, deleted))
        rows.append(
            (
                cid,
                name,
                ctype,
                status,
                start.isoformat(),
                end.isoformat(),
                float(budget),
                actual,
                DT["campaign"](created),
                DT["campaign"](mod),
                TRUE["campaign"] if deleted else FALSE["campaign"],
            )
        )
    return camps, rows


class CampaignIndex:
    def __init__(self, campaigns: list[Campaign]):
        self.by_source: dict[str, list[Campaign]] = {}
        for c in campaigns:
            if c.linkable:
                self.by_source.setdefault(c.source, []).append(c)

    def pick(self, source: str | None, d: date, rng: random.Random) -> str | None:
        if not source:
            return None
        cands = [
            c
            for c in self.by_source.get(source, ())
            if c.start - timedelta(days=10) <= d <= c.end + timedelta(days=45)
        ]
        if not cands:
            return None
        return rng.choice(cands).id
