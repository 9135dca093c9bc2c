"""One generation unit: an AE team plus the SDRs aligned with it.

Everything a unit's leads, accounts, contacts and opportunities touch (tasks, opportunity
history, customer meetings) is generated inside the unit, so rows are buffered per unit and
flushed at its end -- memory is bounded by the team size, not by the profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

from .context import (
    P_ACCOUNT_MISSING_INDUSTRY,
    P_CONTACT_DUPLICATE,
    P_CONTACT_MISSING_EMAIL,
    P_LEAD_DUPLICATE,
    P_LEAD_NO_ACTIVITY,
    P_LEAD_UNOWNED,
    P_OPEN_OPP_PAST_CLOSE,
    P_OPP_MISSING_AMOUNT,
    Ctx,
    new_uid,
)
from .ics import Attendee, Event
from .internal import team_events
from .names import Company, case_variant, new_person, stored_case
from .org import Team, User
from .reference import (
    CONTACT_TITLES,
    LEAD_SOURCES,
    LEAD_STATUS_CLOSED,
    LEAD_STATUS_CONVERTED,
    LEAD_STATUS_OPEN,
    LEAD_STATUS_WORKING,
    LOST,
    MONTH_SEASONALITY,
    RAMP_RULES,
    STAGE_ADVANCE_PROBABILITY,
    STAGES,
    TASK_STATUSES_OPEN,
    WEEKDAY_WEIGHTS,
    WON,
)
from .schema import COLUMNS, DT, FALSE, TRUE
from .timeutil import (
    DAY,
    MINUTE,
    business_moment,
    business_slot,
    is_business_day,
    month_end,
    quarter_end,
    random_business_time,
    to_local,
    to_utc,
)
from .truth import Meeting

_SOURCES = [s for s, _, _ in LEAD_SOURCES]
_SOURCE_W = [w for _, w, _ in LEAD_SOURCES]
_SOURCE_CONV = {s: c for s, _, c in LEAD_SOURCES}
_EXTERNAL_PARTSTAT = ["ACCEPTED"] * 12 + ["TENTATIVE"] * 3 + ["NEEDS-ACTION"] * 4 + ["DECLINED"]
_MEETING_STAGES = {
    0: ("Intro call", 0.3),
    2: ("Discovery", 0.28),
    3: ("Product demo", 0.32),
    6: ("Proposal review", 0.28),
    7: ("Negotiation call", 0.2),
}


@dataclass(eq=False)
class Contact:
    id: str
    first: str
    last: str
    email: str | None  # as stored in the CRM
    title: str
    created: datetime
    deleted_at: datetime | None = None
    protected: bool = False  # referenced by a converted lead


@dataclass(eq=False)
class Account:
    id: str
    company: Company
    owner: User
    created: datetime
    industry: str | None
    employees: int
    revenue: float
    country: str
    contacts: list[Contact] = field(default_factory=list)
    deleted_at: datetime | None = None
    customer_since: datetime | None = None
    n_opps: int = 0
    last_touch: datetime | None = None
    protected: bool = False


def _ramp(tenure_days: int) -> tuple[float, float]:
    for limit, win, amt in RAMP_RULES:
        if tenure_days < limit:
            return win, amt
    return 1.0, 1.0


class Pod:
    def __init__(self, ctx: Ctx, team: Team, index: int):
        self.ctx = ctx
        self.team = team
        self.index = index
        self.tmpl = team.template
        self.rng = ctx.rng("pod", index)
        self.np = np.random.default_rng(
            [ctx.seed, index, ctx.as_of.toordinal(), sum(map(ord, ctx.profile.name))]
        )
        self.aes = team.reps
        self.sdrs = team.sdrs
        self.tz = team.manager.tz
        self.as_of = ctx.as_of
        self.as_of_ts = ctx.as_of_ts
        self.w0 = ctx.window_start
        self.rows: dict[str, list[tuple]] = {t: [] for t in COLUMNS}
        self.meetings: list[Meeting] = []
        self.accounts: list[Account] = []
        self.company_pool: list[Company] = []
        self.lead_pool: list[tuple] = []  # (company, first, last, stored email)
        self._ids = ctx.ids
        self._t_true, self._t_false = TRUE["task"], FALSE["task"]
        self.stage_mean = self.tmpl.cycle_days / 7.0

    # ------------------------------------------------------------------------------------
    def run(self) -> None:
        self.book_accounts()
        self.prewindow_pipeline()
        self.leads()
        self.prospecting()
        self.customer_tasks()
        self.emit_accounts()
        self.quotas()
        team_events(self.ctx, self.team, self.ctx.rng("team", self.team.name))
        self.flush()

    def flush(self) -> None:
        rows = self.rows
        self.ctx.write(rows)
        self.ctx.truth.observe_unit(rows["lead"], rows["contact"], rows["task"], self.meetings)
        self.ctx.cal.flush()

    # ---- people --------------------------------------------------------------------------
    def pick(self, users: list[User], d: date) -> User | None:
        act = [u for u in users if u.active_on(d)]
        if not act:
            return None
        if len(act) == 1:
            return act[0]
        w = [0.5 if (d - u.hire).days < 60 else 1.0 for u in act]
        return self.rng.choices(act, weights=w)[0]

    def pick_ae(self, d: date) -> User:
        return self.pick(self.aes, d) or self.team.manager

    # ---- tasks ---------------------------------------------------------------------------
    def task(
        self,
        who: str | None,
        what: str | None,
        owner: User,
        subject: str,
        subtype: str,
        created: datetime,
        *,
        status: str | None = None,
        activity: date | None = None,
        deleted_at: datetime | None = None,
        protect: bool = False,
        force_deleted: bool = False,
    ) -> str | None:
        if created >= self.as_of_ts:
            return None
        if deleted_at is not None and created >= deleted_at:
            return None
        rng = self.rng
        tid = self._ids.new("task")
        if activity is None:
            activity = to_local(created, owner.tz).date()
        if status is None:
            status = "Completed"
        mod = created + timedelta(seconds=rng.randint(5, 5400))
        deleted = deleted_at is not None or force_deleted
        if not deleted and not protect and rng.random() < 0.006:
            deleted = True
            deleted_at = created + timedelta(days=rng.uniform(0.05, 40))
        if deleted:
            mod = deleted_at if deleted_at is not None else created + timedelta(hours=3)
        if mod >= self.as_of_ts:
            mod = self.as_of_ts - timedelta(seconds=rng.randint(60, 3000))
            if mod < created:
                mod = created
        self.rows["task"].append(
            (
                tid,
                who,
                what,
                owner.id,
                subject,
                subtype,
                status,
                activity.isoformat(),
                DT["task"](created),
                DT["task"](mod),
                self._t_true if deleted else self._t_false,
            )
        )
        return tid

    # ---- calendar --------------------------------------------------------------------------
    def meeting(
        self,
        organizer: User,
        start: datetime,
        minutes: int,
        summary: str,
        external: list[tuple[str, str]],
        booked: datetime,
        *,
        internal: list[User] | None = None,
        cancelled: bool = False,
        description: str | None = None,
    ) -> bool:
        """A customer meeting (single, timed). ``external`` = [(name, email as in CRM)]."""
        rng = self.rng
        if booked >= self.as_of_ts or booked >= start:
            return False
        internal = [u for u in (internal or []) if u is not organizer]
        attendees = [Attendee(organizer.name, organizer.email, "ACCEPTED")]
        for u in internal:
            attendees.append(
                Attendee(
                    u.name,
                    u.email,
                    rng.choice(["ACCEPTED", "ACCEPTED", "ACCEPTED", "TENTATIVE", "NEEDS-ACTION"]),
                )
            )
        lowered = []
        for name, email in external:
            x = rng.random()
            shown = email.upper() if x < 0.15 else (email if x < 0.3 else email.lower())
            attendees.append(Attendee(name, shown, rng.choice(_EXTERNAL_PARTSTAT)))
            lowered.append(email.lower())
        ev = Event(
            uid=new_uid(rng),
            summary=summary,
            created=booked,
            organizer_name=organizer.name,
            organizer_email=organizer.email,
            start=start,
            end=start + timedelta(minutes=minutes),
            attendees=attendees,
            status="CANCELLED" if cancelled else "CONFIRMED",
            sequence=1 if cancelled else 0,
            last_modified=(booked + timedelta(hours=rng.randint(1, 48))) if cancelled else None,
            description=description,
            location=(
                "https://zoom.example/j/"
                + str(rng.randrange(10**9, 10**10))
                + "?pwd="
                + f"{rng.getrandbits(96):024x}"
            )
            if rng.random() < 0.7
            else None,
        )
        if ev.last_modified is not None and ev.last_modified >= self.as_of_ts:
            ev.last_modified = booked
        self.ctx.cal.add(ev, [organizer.email] + [u.email for u in internal])
        self.meetings.append(Meeting(booking=booked, cancelled=cancelled, emails=lowered))
        return True

    def meeting_slot(self, d: date, tz: str) -> datetime:
        while not is_business_day(d, tz):
            d += DAY
        half_hours = self.rng.randint(18, 33)  # 09:00 .. 16:30 local
        local = datetime(d.year, d.month, d.day, half_hours // 2, 30 * (half_hours % 2))
        return to_utc(local, tz)

    # ---- accounts & contacts ---------------------------------------------------------------
    def new_account(self, company: Company, owner: User, created: datetime) -> Account:
        rng = self.rng
        aid = self._ids.new("account")
        if rng.random() < self.ctx.p("account_missing_industry", P_ACCOUNT_MISSING_INDUSTRY):
            industry = None if rng.random() < 0.7 else ""
            self.ctx.plant("account_missing_industry", aid)
        else:
            industry = company.industry
        if self.tmpl.segment == "Enterprise":
            emp = int(rng.lognormvariate(math.log(4000), 0.8))
        else:
            emp = int(rng.lognormvariate(math.log(300), 0.7))
        emp = max(12, emp)
        revenue = float(round(emp * rng.uniform(90_000, 320_000), -3))
        countries, weights = zip(*self.tmpl.countries, strict=True)
        acc = Account(
            aid, company, owner, created, industry, emp, revenue, rng.choices(countries, weights=weights)[0]
        )
        acc.last_touch = created
        self.accounts.append(acc)
        return acc

    def new_contact(
        self,
        acc: Account,
        created: datetime,
        person: tuple[str, str, str] | None = None,
        protect: bool = False,
    ) -> Contact | None:
        rng = self.rng
        if created >= self.as_of_ts:
            if not protect:
                return None  # would only be created after the snapshot
            created = self.as_of_ts - timedelta(seconds=rng.randint(1, 30))
        cid = self._ids.new("contact")
        if person is None:
            first, last, email_l = new_person(acc.company, rng)
            email = stored_case(email_l, rng, first, last)
            if rng.random() < self.ctx.p("contact_missing_email", P_CONTACT_MISSING_EMAIL):
                if not self.ctx.empty_contact_email_used:
                    email = ""
                    self.ctx.empty_contact_email_used = True
                else:
                    email = None
                self.ctx.plant("contact_missing_email", cid)
        else:
            first, last, email = person
        c = Contact(cid, first, last, email, rng.choice(CONTACT_TITLES), created, protected=protect)
        if not protect and rng.random() < 0.012:
            dt = created + timedelta(days=rng.uniform(1, 400))
            c.deleted_at = dt if dt < self.as_of_ts else None
        acc.contacts.append(c)
        if (
            not protect
            and email
            and rng.random() < self.ctx.p("duplicate_contact_email", P_CONTACT_DUPLICATE)
        ):
            # the same person entered a second time, later, with a different letter case
            dup = Contact(
                self._ids.new("contact"),
                first,
                last,
                case_variant(email, rng),
                c.title,
                created + timedelta(days=rng.uniform(2, 200)),
            )
            if dup.created < self.as_of_ts:
                acc.contacts.append(dup)
                self.ctx.plant("duplicate_contact_email", c.id, dup.id)
        return c

    def live_contacts(self, acc: Account, t: datetime) -> list[Contact]:
        return [c for c in acc.contacts if c.created <= t and (c.deleted_at is None or c.deleted_at > t)]

    # ---- pre-window customers -------------------------------------------------------------
    def book_accounts(self) -> None:
        rng = self.rng
        w0 = self.w0
        for ae in self.aes:
            if ae.hire > w0.date():
                continue
            n = int(self.np.poisson(self.ctx.profile.book_accounts_per_ae))
            for _ in range(n):
                created = w0 - timedelta(days=rng.uniform(40, 1400))
                acc = self.new_account(self.ctx.companies.new(rng), ae, created)
                acc.customer_since = created + timedelta(days=rng.uniform(10, 30))
                acc.protected = True
                for _ in range(rng.randint(2, 4)):
                    self.new_contact(acc, created + timedelta(days=rng.uniform(0, 300)))
                # renewals / expansions during the window
                k = int(self.np.poisson(1.5))
                for _ in range(k):
                    t = w0 + timedelta(days=rng.uniform(0, 725))
                    owner = ae.owner_on(t.date())
                    t = business_moment(rng, t, owner.tz)
                    if t < self.as_of_ts:
                        self.opportunity(acc, ae, t, "Existing Business", None, None)

    def prewindow_pipeline(self) -> None:
        """Opportunities created in the ~5 months before the window (from leads older than the
        window) so that closes and attainment are realistic from the first window month."""
        rng = self.rng
        prof = self.ctx.profile
        conv = sum(w * c for _, w, c in LEAD_SOURCES)
        per_ae_year = prof.leads_total / 2.0 / self.ctx.total_ae_slots * conv * 0.9
        for ae in self.aes:
            lo = max(self.w0 - 150 * DAY, datetime.combine(ae.hire, datetime.min.time()) + 7 * DAY)
            days = (self.w0 - lo).days
            if days <= 0:
                continue
            for _ in range(int(self.np.poisson(per_ae_year * days / 365.0))):
                t = random_business_time(rng, lo, self.w0, ae.tz)
                acc = self.new_account(
                    self.ctx.companies.new(rng), ae, t - timedelta(days=rng.uniform(0, 10))
                )
                for _ in range(rng.randint(1, 3)):
                    self.new_contact(acc, acc.created + timedelta(minutes=rng.randint(5, 600)))
                source = rng.choices(_SOURCES, weights=_SOURCE_W)[0]
                camp = self.ctx.campaigns.pick(source, t.date(), rng) if rng.random() < 0.5 else None
                self.opportunity(acc, ae, t, "New Business", source, camp, deletable=True)

    # ---- AE-sourced opportunities and idle prospect accounts --------------------------------
    def prospecting(self) -> None:
        rng = self.rng
        prof = self.ctx.profile
        for ae in self.aes:
            lo = max(self.w0, datetime.combine(ae.hire, datetime.min.time()) + 7 * DAY)
            hi = self.as_of_ts if ae.leave is None else datetime.combine(ae.leave, datetime.min.time())
            days = (hi - lo).days
            if days <= 0:
                continue
            years = days / 365.0
            for _ in range(int(self.np.poisson(prof.prospect_opps_per_ae_year * years))):
                t = random_business_time(rng, lo, hi, ae.tz)
                acc = self.new_account(
                    self.ctx.companies.new(rng), ae, t - timedelta(days=rng.uniform(0, 25))
                )
                for _ in range(rng.randint(1, 3)):
                    self.new_contact(acc, acc.created + timedelta(minutes=rng.randint(5, 600)))
                source = rng.choices(
                    [None, "Partner Referral", "Employee Referral", "Trade Show", "Phone Inquiry"],
                    weights=[58, 18, 10, 8, 6],
                )[0]
                camp = self.ctx.campaigns.pick(source, t.date(), rng) if rng.random() < 0.4 else None
                self.opportunity(acc, ae, t, "New Business", source, camp, deletable=True)
            for _ in range(int(self.np.poisson(prof.idle_accounts_per_ae_year * years))):
                t = random_business_time(rng, lo, hi, ae.tz)
                acc = self.new_account(self.ctx.companies.new(rng), ae, t)
                for _ in range(rng.randint(1, 2)):
                    self.new_contact(acc, t + timedelta(minutes=rng.randint(5, 300)))
                if rng.random() < 0.35:
                    acc.deleted_at = t + timedelta(days=rng.uniform(3, 300))
                    if acc.deleted_at >= self.as_of_ts:
                        acc.deleted_at = None
                # a couple of prospecting touches
                for c in acc.contacts[:1]:
                    for _ in range(rng.randint(0, 2)):
                        tt = t + timedelta(days=rng.uniform(0, 20))
                        tt = business_moment(rng, tt, ae.owner_on(tt.date()).tz)
                        dl = min([x for x in (acc.deleted_at, c.deleted_at) if x], default=None)
                        self.task(
                            c.id,
                            acc.id,
                            ae.owner_on(tt.date()),
                            rng.choice(["Cold call", "Intro email", "Follow up"]),
                            rng.choice(["Call", "Email"]),
                            tt,
                            deleted_at=dl,
                        )

    # ---- leads -----------------------------------------------------------------------------
    def leads(self) -> None:
        ctx = self.ctx
        rng = self.rng
        target = ctx.profile.leads_total * len(self.aes) / ctx.total_ae_slots
        w0d = self.w0.date()
        days = [w0d + timedelta(days=i) for i in range((self.as_of - w0d).days)]
        n = len(days)
        w = np.array(
            [
                MONTH_SEASONALITY[d.month] * WEEKDAY_WEIGHTS[d.weekday()] * (1 + 0.45 * i / n)
                for i, d in enumerate(days)
            ]
        )
        counts = self.np.poisson(target * w / w.sum())
        times = []
        for d, k in zip(days, counts.tolist(), strict=True):
            for _ in range(k):
                if rng.random() < 0.68:
                    times.append(business_slot(rng, d, self.tz, 7.5, 19))
                else:
                    times.append(datetime(d.year, d.month, d.day) + timedelta(seconds=rng.randrange(86400)))
        times.sort()
        for t in times:
            self.lead(t)

    def response_delay(self) -> timedelta:
        rng = self.rng
        x = rng.random()
        if x < 0.36:
            return timedelta(minutes=rng.uniform(2, 60))
        if x < 0.7:
            return timedelta(hours=rng.uniform(1, 8))
        if x < 0.92:
            return timedelta(hours=rng.uniform(8, 48))
        return timedelta(days=rng.uniform(2, 4.5))

    def lead(self, t: datetime) -> None:
        ctx = self.ctx
        rng = self.rng
        d = t.date()
        owner: User | None = None
        unowned = rng.random() < ctx.p("lead_without_owner", P_LEAD_UNOWNED)
        if not unowned:
            if self.sdrs and rng.random() < 0.72:
                owner = self.pick(self.sdrs, d)
            if owner is None:
                owner = self.pick_ae(d)
        source = rng.choices(_SOURCES, weights=_SOURCE_W)[0]

        lead_id = self._ids.new("lead")
        dup_of = None
        if self.lead_pool and rng.random() < ctx.p("duplicate_lead_email", P_LEAD_DUPLICATE):
            dup_of = rng.choice(self.lead_pool[-250:])
        if dup_of is not None:
            company, first, last, src_email, src_id = dup_of
            email = case_variant(src_email, rng)
            ctx.plant("duplicate_lead_email", lead_id, src_id)
        else:
            if self.company_pool and rng.random() < 0.2:
                company = rng.choice(self.company_pool[-60:])
            else:
                company = ctx.companies.new(rng)
                self.company_pool.append(company)
                if len(self.company_pool) > 200:
                    del self.company_pool[:100]
            first, last, email_l = new_person(company, rng)
            email = stored_case(email_l, rng, first, last)
            self.lead_pool.append((company, first, last, email, lead_id))
            if len(self.lead_pool) > 500:
                del self.lead_pool[:250]

        responder = owner or self.pick(self.sdrs, d) or self.pick_ae(d)
        no_activity = (t <= self.as_of_ts - 8 * DAY) and rng.random() < ctx.p(
            "lead_without_activity_7d", P_LEAD_NO_ACTIVITY
        )
        if unowned:
            ctx.plant("lead_without_owner", lead_id)

        resp_t = None
        conv_t = None
        if no_activity:
            ctx.plant("lead_without_activity_7d", lead_id)
        else:
            resp_t = business_moment(rng, t + self.response_delay(), responder.tz)
            if resp_t > t + 6 * DAY:
                resp_t = t + timedelta(minutes=rng.uniform(10, 300))
            if resp_t >= self.as_of_ts:
                resp_t = None
            elif dup_of is None and responder.kind in ("sdr", "ae"):
                p = _SOURCE_CONV[source]
                if (d - responder.hire).days < 90:
                    p *= 0.8
                if rng.random() < p:
                    conv_t = business_moment(rng, resp_t + timedelta(days=rng.uniform(1.5, 24)), responder.tz)
                    if conv_t >= self.as_of_ts - MINUTE:
                        conv_t = None

        deleted_at = None
        if conv_t is None and rng.random() < 0.012:
            deleted_at = t + timedelta(days=rng.uniform(0.5, 90))
            if deleted_at >= self.as_of_ts:
                deleted_at = None

        # -- activity --------------------------------------------------------------------
        who_name = f"{first} {last}"
        if no_activity:
            self.no_activity_traps(lead_id, t, responder, who_name, email, company, deleted_at)
        elif resp_t is not None:
            booked = False
            if rng.random() < 0.07 and email:
                ae = self.pick_ae(resp_t.date()) if responder.kind == "sdr" else None
                start = self.meeting_slot(
                    (to_local(resp_t, responder.tz) + timedelta(days=rng.randint(1, 5))).date(), responder.tz
                )
                booked = self.meeting(
                    responder,
                    start,
                    30,
                    f"Intro call: {company.name} <> Acme",
                    [(who_name, email)],
                    resp_t,
                    internal=[ae] if ae else None,
                )
            if not booked:
                sub = rng.choice(["Call", "Call", "Email"])
                self.task(
                    lead_id,
                    None,
                    responder,
                    "Call"
                    if sub == "Call"
                    else rng.choice(
                        [
                            "Email: Thanks for your interest",
                            "Email: Quick intro",
                            "Email: Following up on your inquiry",
                        ]
                    ),
                    sub,
                    resp_t,
                    deleted_at=deleted_at,
                    protect=True,
                )
            end = conv_t or self.as_of_ts
            for _ in range(rng.choices(range(5), weights=[30, 30, 20, 12, 8])[0]):
                ft = resp_t + timedelta(days=rng.uniform(0.5, 25))
                if ft >= end:
                    continue
                who = owner or responder
                if not who.active_on(ft.date()):
                    continue
                ft = business_moment(rng, ft, who.tz)
                sub = rng.choices(["Call", "Email", "Task", "ListEmail"], weights=[40, 35, 15, 10])[0]
                subj = {
                    "Call": "Follow-up call",
                    "Email": "Email: Checking in",
                    "Task": "Research account",
                    "ListEmail": "Newsletter: Product update",
                }[sub]
                self.task(lead_id, None, who, subj, sub, ft, deleted_at=deleted_at)
            if rng.random() < 0.02:  # logged before the lead record existed (data-entry lag)
                self.task(
                    lead_id,
                    None,
                    responder,
                    "Logged call",
                    "Call",
                    t - timedelta(minutes=rng.uniform(3, 180)),
                    deleted_at=deleted_at,
                )

        # -- conversion ----------------------------------------------------------------
        conv_acc = conv_contact = conv_opp = None
        if conv_t is not None:
            ae = owner if (owner is not None and owner.kind == "ae") else self.pick_ae(conv_t.date())
            acc = self.new_account(company, ae, conv_t)
            acc.protected = True
            contact = self.new_contact(acc, conv_t + timedelta(seconds=2), (first, last, email), protect=True)
            for _ in range(rng.choices([0, 1, 2], weights=[55, 30, 15])[0]):
                self.new_contact(acc, conv_t + timedelta(days=rng.uniform(1, 60)))
            camp = ctx.campaigns.pick(source, d, rng) if rng.random() < 0.75 else None
            sdr = owner if (owner is not None and owner.kind == "sdr") else None
            conv_opp = self.opportunity(
                acc, ae, conv_t + timedelta(seconds=4), "New Business", source, camp, sdr=sdr
            )
            conv_acc, conv_contact = acc.id, contact.id
            if company in self.company_pool:
                self.company_pool.remove(company)

        # -- status & row ---------------------------------------------------------------
        mod = t + timedelta(seconds=rng.randint(1, 120))
        if conv_t is not None:
            status = LEAD_STATUS_CONVERTED
            mod = conv_t + timedelta(seconds=5)
        elif no_activity:
            status = LEAD_STATUS_OPEN if rng.random() < 0.8 else LEAD_STATUS_WORKING
        elif resp_t is None:
            status = LEAD_STATUS_OPEN
        else:
            mod = resp_t
            close_t = resp_t + timedelta(days=rng.uniform(15, 60))
            if dup_of is not None or (close_t < self.as_of_ts and rng.random() < 0.7):
                status = LEAD_STATUS_CLOSED
                if close_t < self.as_of_ts:
                    mod = close_t
            else:
                status = LEAD_STATUS_WORKING
        if deleted_at is not None:
            mod = max(mod, deleted_at)
        if mod >= self.as_of_ts:
            mod = self.as_of_ts - timedelta(seconds=rng.randint(60, 3600))
        mod = max(mod, t)
        industry = company.industry if rng.random() < 0.9 else None
        owner_val = (None if rng.random() < 0.75 else "") if unowned else owner.id
        self.rows["lead"].append(
            (
                lead_id,
                first,
                last,
                email,
                company.name,
                industry,
                source,
                status,
                owner_val,
                TRUE["lead"] if conv_t else FALSE["lead"],
                conv_t.date().isoformat() if conv_t else None,
                conv_acc,
                conv_contact,
                conv_opp,
                DT["lead"](t),
                DT["lead"](mod),
                TRUE["lead"] if deleted_at is not None else FALSE["lead"],
            )
        )

    def no_activity_traps(self, lead_id, t, responder, who_name, email, company, deleted_at) -> None:
        """Planted 'no response within 7 days' leads get near-misses, never a real response."""
        rng = self.rng
        trap = rng.choices(
            ["none", "late", "todo", "lag", "cancelled", "early_booking", "deleted_task", "list_email"],
            weights=[30, 20, 10, 8, 10, 7, 8, 7],
        )[0]
        if trap == "late":
            lt = t + timedelta(days=rng.uniform(7.2, 25))
            lt = business_moment(rng, lt, responder.tz)
            self.task(
                lead_id, None, responder, "Call", rng.choice(["Call", "Email"]), lt, deleted_at=deleted_at
            )
        elif trap == "todo":
            self.task(
                lead_id,
                None,
                responder,
                "Research account",
                "Task",
                t + timedelta(hours=rng.uniform(1, 100)),
                deleted_at=deleted_at,
            )
        elif trap == "list_email":
            self.task(
                lead_id,
                None,
                responder,
                "Newsletter: Product update",
                "ListEmail",
                t + timedelta(hours=rng.uniform(1, 100)),
                deleted_at=deleted_at,
            )
        elif trap == "lag":
            self.task(
                lead_id,
                None,
                responder,
                "Logged call",
                "Call",
                t - timedelta(minutes=rng.uniform(5, 240)),
                deleted_at=deleted_at,
            )
        elif trap == "deleted_task":
            self.task(
                lead_id,
                None,
                responder,
                "Call",
                "Call",
                t + timedelta(hours=rng.uniform(1, 100)),
                force_deleted=True,
            )
        elif trap in ("cancelled", "early_booking") and email:
            if trap == "cancelled":
                booked = t + timedelta(hours=rng.uniform(1, 120))
            else:
                booked = t - timedelta(hours=rng.uniform(3, 72))
            start = self.meeting_slot(
                (to_local(t, responder.tz) + timedelta(days=rng.randint(2, 5))).date(), responder.tz
            )
            self.meeting(
                responder,
                start,
                30,
                f"Intro call: {company.name} <> Acme",
                [(who_name, email)],
                booked,
                cancelled=(trap == "cancelled"),
            )

    # ---- opportunities ---------------------------------------------------------------------
    def opportunity(
        self,
        acc: Account,
        ae: User,
        created: datetime,
        otype: str,
        source: str | None,
        campaign: str | None,
        *,
        sdr: User | None = None,
        deletable: bool = False,
        depth: int = 0,
    ) -> str:
        ctx = self.ctx
        rng = self.rng
        oid = self._ids.new("opportunity")
        acc.n_opps += 1
        owner0 = ae.owner_on(created.date())
        tenure = (created.date() - owner0.hire).days
        win_mult, amt_mult = _ramp(tenure)
        existing = otype == "Existing Business"
        years = (created - self.w0).days / 365.0
        median = self.tmpl.deal_median * (0.45 if existing else 1.0) * amt_mult * (1 + 0.1 * years)
        amount = rng.lognormvariate(math.log(median), 0.55)
        amount = float(round(amount, -2) if amount < 20_000 else round(amount / 500) * 500)
        missing_amount = rng.random() < ctx.p("opportunity_missing_amount", P_OPP_MISSING_AMOUNT)
        if missing_amount:
            ctx.plant("opportunity_missing_amount", oid)
        start = (0 if rng.random() < 0.7 else 1) if not existing else rng.choice([1, 2, 3])
        speed = rng.lognormvariate(0, 0.35)
        mean = self.stage_mean * speed
        deleted_at = None
        if deletable and rng.random() < 0.08:
            deleted_at = created + timedelta(days=rng.uniform(1, max(2, (self.as_of_ts - created).days)))
            if deleted_at >= self.as_of_ts:
                deleted_at = None
        limit = deleted_at or self.as_of_ts

        # --- stage path (true dynamics) ---
        path = [(created, start)]
        t, s = created, start
        forced_loss = False
        while True:
            m = mean * (1.6 if t.month in (7, 8) else 1.0)
            t_next = t + timedelta(days=0.3 + rng.expovariate(1.0 / m))
            tz = ae.owner_on(t_next.date()).tz
            t_next = business_moment(rng, t_next, tz)
            if forced_loss:
                nxt = LOST
            elif rng.random() < STAGE_ADVANCE_PROBABILITY[s] * (win_mult if s >= 6 else 1.0):
                if s == 7:
                    nxt = WON
                else:
                    nxt = s + 1
                    if nxt < 7 and rng.random() < 0.12:  # skip a stage
                        p2 = STAGE_ADVANCE_PROBABILITY[nxt] * (win_mult if nxt >= 6 else 1.0)
                        if rng.random() < p2:
                            nxt += 1
                        else:
                            forced_loss = True
            else:
                nxt = LOST
            if nxt >= WON:
                t_next = self.quarter_end_pull(t_next, nxt, tz)
            if t_next >= limit:
                break
            path.append((t_next, nxt))
            t, s = t_next, nxt
            if nxt >= WON:
                break

        # --- history with amount / close-date evolution ---
        remaining = mean * (8 - start) * rng.uniform(0.8, 1.3)
        close_est = self.round_close((created + timedelta(days=remaining)).date())
        amt = None if (missing_amount or (start == 0 and rng.random() < 0.2)) else amount
        events: list[tuple[datetime, int, float | None, date]] = []
        prev_t = created
        fill_t = None
        if amt is None and not missing_amount:
            # amount typed in a little after the record was created
            nxt_t = path[1][0] if len(path) > 1 else limit
            fill_t = created + timedelta(minutes=rng.uniform(5, 2880))
            if fill_t >= nxt_t:
                amt, fill_t = amount, None
        for i, (et, st) in enumerate(path):
            if i > 0:
                k = min(3, int(self.np.poisson(0.9))) if st < WON else 0
                marks = sorted(rng.uniform(0.1, 0.9) for _ in range(k))
                for f in marks:
                    it = prev_t + (et - prev_t) * f
                    if rng.random() < 0.6 or amt is None:
                        close_est = self.round_close(close_est + timedelta(days=rng.randint(14, 45)))
                    else:
                        amt = float(round(amt * rng.uniform(0.85, 1.2) / 100) * 100)
                    events.append((it, path[i - 1][1], amt, close_est))
            if st >= WON:
                if st == WON and amt is not None and rng.random() < 0.4:
                    amt = float(round(amt * rng.uniform(0.9, 1.0) / 100) * 100)
                events.append((et, st, amt, et.date()))
            else:
                if amt is None and not missing_amount and st >= 1:
                    amt = amount
                if st == 6 and amt is not None and rng.random() < 0.5:
                    amt = float(round(amt * rng.uniform(0.85, 1.25) / 100) * 100)
                if st == 7 and amt is not None and rng.random() < 0.6:
                    amt = float(round(amt * rng.uniform(0.85, 0.98) / 100) * 100)
                if close_est < et.date() + timedelta(days=7):
                    close_est = self.round_close(
                        et.date() + timedelta(days=max(7.0, mean * (8 - st) * rng.uniform(0.5, 1.0)))
                    )
                events.append((et, st, amt, close_est))
            if i == 0 and fill_t is not None:
                amt = amount
                events.append((fill_t, st, amt, close_est))
                et = fill_t
            prev_t = et

        final_t, final_s, final_amt, final_close = events[-1]
        is_closed = final_s >= WON
        open_at_as_of = not is_closed and deleted_at is None
        if open_at_as_of:
            stale_ok = final_t <= self.as_of_ts - 10 * DAY
            if stale_ok and rng.random() < ctx.p("open_opportunity_past_close_date", P_OPEN_OPP_PAST_CLOSE):
                ctx.plant("open_opportunity_past_close_date", oid)
                if final_close >= self.as_of:
                    lo = final_t.date() + DAY
                    span = (self.as_of - DAY - lo).days
                    new_close = lo + timedelta(days=rng.randint(0, max(0, span)))
                    events[-1] = (final_t, final_s, final_amt, new_close)
            elif final_close <= self.as_of:
                # pipeline hygiene: the rep pushed the stale close date into the future
                lo = max(final_t, self.as_of_ts - 6 * DAY)
                pt = lo + (self.as_of_ts - 30 * MINUTE - lo) * rng.uniform(0.05, 0.95)
                qe_next = quarter_end(quarter_end(self.as_of) + DAY)
                new_close = self.as_of + timedelta(days=rng.randint(7, max(8, (qe_next - self.as_of).days)))
                if rng.random() < 0.5:
                    new_close = min(month_end(new_close), qe_next)
                events.append((pt, final_s, final_amt, new_close))
        final_t, final_s, final_amt, final_close = events[-1]

        # --- rows ---
        hist_del = TRUE["opportunityhistory"] if deleted_at else FALSE["opportunityhistory"]
        hrows = self.rows["opportunityhistory"]
        for et, st, a, cd in events:
            name, prob, _, fc_api, _, _ = STAGES[st]
            hmod = deleted_at if deleted_at else et
            hrows.append(
                (
                    self._ids.new("opportunityhistory"),
                    oid,
                    name,
                    a,
                    float(prob),
                    fc_api,
                    cd.isoformat(),
                    DT["opportunityhistory"](et),
                    DT["opportunityhistory"](hmod),
                    hist_del,
                )
            )
        end_t = final_t if is_closed else limit
        owner_final = ae.owner_on(min(end_t, self.as_of_ts - MINUTE).date())
        name, prob, fc_label, _, closed, won = STAGES[final_s]
        mod = deleted_at or min(
            final_t + timedelta(seconds=rng.randint(1, 7200)),
            self.as_of_ts - timedelta(seconds=rng.randint(1, 600)),
        )
        mod = max(mod, final_t)
        opp_name = f"{acc.company.name.split(' ')[0]} - " + (
            rng.choice(["Expansion", "Upsell", "Add-on Seats", f"Renewal {created.year + 1}"])
            if existing
            else rng.choice(
                [
                    "Platform",
                    "Pilot",
                    "Enterprise License",
                    f"{rng.randint(2, 40) * 25} Seats",
                    "Annual Subscription",
                    "Analytics Suite",
                ]
            )
        )
        self.rows["opportunity"].append(
            (
                oid,
                opp_name,
                acc.id,
                owner_final.id,
                otype,
                source,
                campaign,
                name,
                final_amt,
                float(prob),
                fc_label,
                final_close.isoformat(),
                TRUE["opportunity"] if closed else FALSE["opportunity"],
                TRUE["opportunity"] if won else FALSE["opportunity"],
                DT["opportunity"](created),
                DT["opportunity"](mod),
                TRUE["opportunity"] if deleted_at else FALSE["opportunity"],
            )
        )
        if is_closed and deleted_at is None:
            ctx.truth.observe_stage_path({STAGES[st][0] for _, st, _, _ in events}, bool(won))
        acc.last_touch = max(acc.last_touch or created, final_t)

        # --- activity on the deal ---
        self.deal_activity(oid, acc, ae, created, end_t, is_closed, path, sdr, deleted_at)

        # --- expansion after a win ---
        if won and deleted_at is None:
            if acc.customer_since is None or final_t < acc.customer_since:
                acc.customer_since = final_t
            if depth < 3 and rng.random() < 0.55:
                nt = final_t + timedelta(days=rng.uniform(120, 330))
                if nt < self.as_of_ts:
                    o2 = ae.owner_on(nt.date())
                    nt = business_moment(rng, nt, o2.tz)
                    if nt < self.as_of_ts:
                        self.opportunity(acc, ae, nt, "Existing Business", None, None, depth=depth + 1)
        return oid

    def round_close(self, d: date) -> date:
        x = self.rng.random()
        if x < 0.35:
            return month_end(d)
        if x < 0.5:
            return quarter_end(d)
        return d

    def quarter_end_pull(self, t: datetime, outcome: int, tz: str) -> datetime:
        rng = self.rng
        d = t.date()
        qe = quarter_end(d)
        left = (qe - d).days
        q4 = qe.month == 12
        p = (0.85 if q4 else 0.55) if outcome == WON else 0.25
        if left <= (40 if q4 and outcome == WON else 24) and rng.random() < p:
            target = qe - timedelta(days=rng.randint(0, 3))
            while target.weekday() >= 5:
                target -= DAY
            if target > d:
                return business_slot(rng, target, tz, 10, 18.5)
        return t

    def deal_activity(
        self,
        oid: str,
        acc: Account,
        ae: User,
        created: datetime,
        end_t: datetime,
        closed: bool,
        path: list,
        sdr: User | None,
        deleted_at: datetime | None,
    ) -> None:
        rng = self.rng
        weeks = max(0.2, (end_t - created).total_seconds() / 604800.0)
        rate = 1.45 if self.tmpl.segment == "Enterprise" else 1.1
        n = int(self.np.poisson(rate * weeks))
        span = (end_t - created).total_seconds()
        for _ in range(n):
            t = created + timedelta(seconds=rng.random() * span)
            owner = ae.owner_on(t.date())
            t = business_moment(rng, t, owner.tz)
            if t >= end_t:
                continue
            sub = rng.choices(["Call", "Email", "Task"], weights=[38, 42, 20])[0]
            subj = rng.choice(
                {
                    "Call": ["Call", "Discovery call", "Follow-up call", "Pricing call"],
                    "Email": [
                        "Email: Next steps",
                        "Email: Proposal",
                        "Email: Recap",
                        "Email: Security questionnaire",
                    ],
                    "Task": [
                        "Prepare proposal",
                        "Update MEDDICC notes",
                        "Send contract",
                        "Internal deal review",
                        "Build business case",
                    ],
                }[sub]
            )
            live = self.live_contacts(acc, t)
            who = rng.choice(live).id if (live and rng.random() < 0.75) else None
            if who is not None:
                c = next(c for c in live if c.id == who)
                dl = c.deleted_at if deleted_at is None else min(deleted_at, c.deleted_at or deleted_at)
            else:
                dl = deleted_at
            self.task(who, oid, owner, subj, sub, t, deleted_at=dl)
        if not closed and deleted_at is None:
            for _ in range(rng.randint(0, 2)):  # open next steps
                owner = ae.owner_on(self.as_of)
                ct = self.as_of_ts - timedelta(hours=rng.uniform(2, 160))
                if ct < created:
                    continue
                due = self.as_of + timedelta(days=rng.randint(0, 12))
                self.task(
                    None,
                    oid,
                    owner,
                    rng.choice(["Send follow-up", "Schedule demo", "Prepare QBR deck", "Chase signature"]),
                    "Task",
                    ct,
                    status=rng.choice(TASK_STATUSES_OPEN),
                    activity=due,
                )
        # customer meetings at stage entries
        for et, st in path:
            spec = _MEETING_STAGES.get(st)
            if spec is None or (st == 0 and et != created) or rng.random() >= spec[1]:
                continue
            owner = ae.owner_on(et.date())
            start = self.meeting_slot(
                (to_local(et, owner.tz) - timedelta(days=rng.randint(0, 4))).date(), owner.tz
            )
            booked = start - timedelta(days=rng.uniform(1, 12))
            self.customer_meeting(
                acc, owner, start, f"{spec[0]}: {acc.company.name}", booked, sdr if st == 0 else None
            )
        if not closed and deleted_at is None and rng.random() < 0.3:
            owner = ae.owner_on(self.as_of)
            start = self.meeting_slot(self.as_of + timedelta(days=rng.randint(1, 20)), owner.tz)
            booked = self.as_of_ts - timedelta(hours=rng.uniform(1, 150))
            if booked > created:
                self.customer_meeting(acc, owner, start, f"Next steps: {acc.company.name}", booked, None)

    def customer_meeting(
        self, acc: Account, owner: User, start: datetime, summary: str, booked: datetime, sdr: User | None
    ) -> None:
        rng = self.rng
        live = [c for c in self.live_contacts(acc, booked) if c.email]
        if not live:
            return
        ext = rng.sample(live, k=min(len(live), rng.choice([1, 1, 2])))
        internal = []
        if sdr is not None and rng.random() < 0.5:
            internal.append(sdr)
        if rng.random() < (0.2 if self.tmpl.segment == "Enterprise" else 0.08):
            internal.append(self.team.manager)
        desc = None
        if rng.random() < 0.3:
            desc = (
                f"Agenda:\n1. Introductions\n2. {summary}\n3. Next steps\n"
                f"Attendees: {', '.join(c.first + ' ' + c.last for c in ext)}, "
                f"{owner.name} (Acme Sales)"
            )
        self.meeting(
            owner,
            start,
            rng.choice([30, 45, 60]),
            summary,
            [(f"{c.first} {c.last}", c.email) for c in ext],
            booked,
            internal=internal,
            cancelled=rng.random() < 0.05,
            description=desc,
        )

    # ---- account management -----------------------------------------------------------------
    def customer_tasks(self) -> None:
        rng = self.rng
        for acc in self.accounts:
            if acc.customer_since is None or acc.deleted_at is not None:
                continue
            lo = max(acc.customer_since, self.w0)
            months = (self.as_of_ts - lo).days / 30.4
            if months <= 0:
                continue
            for _ in range(int(self.np.poisson(0.45 * months))):
                t = lo + timedelta(days=rng.uniform(0, months * 30.4))
                owner = acc.owner.owner_on(t.date())
                t = business_moment(rng, t, owner.tz)
                live = self.live_contacts(acc, t)
                c = rng.choice(live) if live else None
                sub = rng.choices(["Call", "Email", "Task"], weights=[40, 45, 15])[0]
                self.task(
                    c.id if c else None,
                    acc.id,
                    owner,
                    rng.choice(
                        [
                            "Check-in call",
                            "Renewal discussion",
                            "QBR prep",
                            "Email: Usage report",
                            "Executive sponsor touchpoint",
                        ]
                    ),
                    sub,
                    t,
                    deleted_at=c.deleted_at if c else None,
                )

    def emit_accounts(self) -> None:
        rng = self.rng
        arows = self.rows["account"]
        crows = self.rows["contact"]
        for acc in self.accounts:
            owner = acc.owner.owner_on(self.as_of)
            if acc.deleted_at is not None:  # cascade
                for c in acc.contacts:
                    c.deleted_at = min(c.deleted_at or acc.deleted_at, acc.deleted_at)
                    c.deleted_at = max(c.deleted_at, c.created + MINUTE)
            mod = acc.last_touch or acc.created
            if rng.random() < 0.5:
                mod = mod + timedelta(days=rng.uniform(0, 120))
            if acc.deleted_at is not None:
                mod = acc.deleted_at
            if mod >= self.as_of_ts:
                mod = self.as_of_ts - timedelta(seconds=rng.randint(60, 7200))
            mod = max(mod, acc.created)
            arows.append(
                (
                    acc.id,
                    acc.company.name,
                    acc.industry,
                    acc.employees,
                    acc.revenue,
                    acc.country,
                    owner.id,
                    DT["account"](acc.created),
                    DT["account"](mod),
                    TRUE["account"] if acc.deleted_at else FALSE["account"],
                )
            )
            for c in acc.contacts:
                cmod = c.created + timedelta(days=rng.uniform(0, 30)) if rng.random() < 0.4 else c.created
                if c.deleted_at is not None:
                    cmod = c.deleted_at
                if cmod >= self.as_of_ts:
                    cmod = self.as_of_ts - timedelta(seconds=rng.randint(60, 7200))
                cmod = max(cmod, c.created)
                crows.append(
                    (
                        c.id,
                        acc.id,
                        c.first,
                        c.last,
                        c.email,
                        c.title,
                        owner.id,
                        DT["contact"](c.created),
                        DT["contact"](cmod),
                        TRUE["contact"] if c.deleted_at else FALSE["contact"],
                    )
                )

    # ---- quotas ------------------------------------------------------------------------------
    def quotas(self) -> None:
        """Monthly quotas per AE, calibrated on the team's own tenured bookings per year."""
        rng = self.rng
        oi = {c: i for i, c in enumerate(COLUMNS["opportunity"])}
        won_by_month: dict[tuple[str, str], float] = {}
        for r in self.rows["opportunity"]:
            if (
                r[oi["IsWon"]] == TRUE["opportunity"]
                and r[oi["IsDeleted"]] != TRUE["opportunity"]
                and r[oi["Amount"]] is not None
            ):
                k = (r[oi["OwnerId"]], r[oi["CloseDate"]][:7])
                won_by_month[k] = won_by_month.get(k, 0.0) + r[oi["Amount"]]
        w0d = self.w0.date()
        first_month = date(w0d.year, w0d.month, 1)
        last_month = date(
            quarter_end(quarter_end(self.as_of) + DAY).year,
            quarter_end(quarter_end(self.as_of) + DAY).month,
            1,
        )
        months = []
        m = first_month
        while m <= last_month:
            months.append(m)
            m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
        by_year: dict[int, list[float]] = {}
        for ae in self.aes:
            for m in months:
                if m >= date(self.as_of.year, self.as_of.month, 1):
                    break
                if (m - ae.hire).days > 180 and ae.active_on(month_end(m)):
                    by_year.setdefault(m.year, []).append(won_by_month.get((ae.id, m.isoformat()[:7]), 0.0))
        base = {}
        fallback = self.tmpl.deal_median * 1.1
        prev = None
        for y in sorted({m.year for m in months}):
            vals = by_year.get(y)
            if vals and len(vals) >= 6:
                b = sum(vals) / len(vals) / 0.9
            elif prev is not None:
                b = prev * 1.12
            else:
                b = fallback
            base[y] = max(5_000.0, round(b / 1000) * 1000)
            prev = base[y]
        skip = {}
        current_q = date(self.as_of.year, 3 * ((self.as_of.month - 1) // 3) + 1, 1)
        for ae in self.aes:
            past = [m for m in months if m < current_q and (m - ae.hire).days > 200]
            if past and rng.random() < 0.15:  # e.g. leave of absence: no quota that quarter
                q = rng.choice(past)
                skip[ae.id] = (q.year, (q.month - 1) // 3)
        qrows = self.rows["forecastingquota"]
        for ae in self.aes:
            personal = rng.uniform(0.95, 1.05)
            for m in months:
                if not (ae.hire <= month_end(m) and (ae.leave is None or ae.leave > m)):
                    continue
                if skip.get(ae.id) == (m.year, (m.month - 1) // 3):
                    continue
                months_in = (m.year - ae.hire.year) * 12 + m.month - ae.hire.month
                ramp = {0: 0.25, 1: 0.5, 2: 0.75}.get(months_in, 1.0)
                amount = round(base[m.year] * personal * ramp / 500) * 500
                planned = (
                    datetime(m.year - 1, 12, 10, 15, 0)
                    if months_in > 2
                    else datetime(ae.hire.year, ae.hire.month, ae.hire.day, 16, 0)
                )
                planned = min(
                    planned + timedelta(minutes=rng.randint(0, 600)),
                    self.as_of_ts - timedelta(seconds=rng.randint(60, 3600)),
                )
                qrows.append(
                    (
                        self._ids.new("forecastingquota"),
                        ae.id,
                        m.isoformat(),
                        float(amount),
                        DT["forecastingquota"](planned),
                    )
                )
