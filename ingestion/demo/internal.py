"""Internal calendar events: team syncs, 1:1s, QBRs, onboarding/training, OOO, SKO."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from .ics import Attendee, Event
from .reference import COMPANY_DOMAIN
from .timeutil import DAY, is_business_day, is_holiday, quarter_end, to_utc

if TYPE_CHECKING:
    from .context import Ctx
    from .org import Org, Team, User

_WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
ONBOARDING_SESSIONS = [
    "Onboarding: Welcome & tools setup",
    "Onboarding: Salesforce & CRM hygiene",
    "Onboarding: Product deep dive",
    "Onboarding: Sales process & opportunity stages",
    "Onboarding: Shadowing customer calls",
]
DL_EMAIL = f"sales-all@{COMPANY_DOMAIN}"


def _uid(rng: random.Random) -> str:
    from .context import new_uid

    return new_uid(rng)


def _first_weekday_on_or_after(d: date, weekday: int) -> date:
    return d + timedelta(days=(weekday - d.weekday()) % 7)


def _christmas_week(d: date) -> bool:
    return (d.month == 12 and d.day >= 24) or (d.month == 1 and d.day <= 1)


def _weekly_series(
    ctx: Ctx,
    rng: random.Random,
    organizer: User,
    attendees: list[User],
    summary: str,
    weekday: int | tuple[int, ...],
    hh: int,
    mm: int,
    minutes: int,
    start_from: date,
    *,
    interval: int = 1,
    until: date | None = None,
    count: int | None = None,
    categories: str | None = None,
    holidays: bool = True,
    overrides: bool = False,
    open_ended: bool = True,
    description: str | None = None,
) -> None:
    tz = organizer.tz
    days = tuple(sorted(weekday)) if isinstance(weekday, tuple) else (weekday,)
    first = min(_first_weekday_on_or_after(start_from, wd) for wd in days)
    start = datetime(first.year, first.month, first.day, hh, mm)
    created = to_utc(start, tz) - timedelta(days=rng.uniform(3, 20), minutes=rng.randint(0, 300))
    if created >= ctx.as_of_ts:
        return
    rule = "FREQ=WEEKLY;BYDAY=" + ",".join(_WEEKDAYS[wd] for wd in days)
    if interval > 1:
        rule += f";INTERVAL={interval}"
    if count is not None:
        rule += f";COUNT={count}"
    elif until is not None:
        u = to_utc(datetime(until.year, until.month, until.day, 23, 59, 59), tz)
        rule += f";UNTIL={u.strftime('%Y%m%dT%H%M%SZ')}"
    elif not open_ended:
        raise ValueError("series needs COUNT, UNTIL or open_ended")
    # occurrences inside the data horizon (for EXDATEs / overrides)
    horizon = ctx.as_of + timedelta(days=120)
    occ = []
    d = first
    week0 = first - timedelta(days=first.weekday())
    while d <= horizon and (until is None or d <= until) and (count is None or len(occ) < count):
        if d.weekday() in days and ((d - week0).days // 7) % interval == 0:
            occ.append(d)
        d += DAY
    exdates = []
    if holidays:
        exdates = [
            datetime(o.year, o.month, o.day, hh, mm) for o in occ if is_holiday(o, tz) or _christmas_week(o)
        ]
    ex_set = {x.date() for x in exdates}
    att = [Attendee(organizer.name, organizer.email, "ACCEPTED")] + [
        Attendee(u.name, u.email, rng.choice(["ACCEPTED"] * 5 + ["TENTATIVE"])) for u in attendees
    ]
    mailboxes = [organizer.email] + [u.email for u in attendees if u is not organizer]
    master = Event(
        uid=_uid(rng),
        summary=summary,
        created=created,
        organizer_name=organizer.name,
        organizer_email=organizer.email,
        start=start,
        end=start + timedelta(minutes=minutes),
        attendees=att,
        tz=tz,
        rrule=rule,
        exdates=exdates,
        categories=categories,
        description=description,
    )
    ctx.cal.add(master, mailboxes)
    if not overrides:
        return
    past = [
        o
        for o in occ
        if o not in ex_set and o < ctx.as_of - timedelta(days=14) and o > first + timedelta(weeks=2)
    ]
    if not past:
        return
    moved = rng.choice(past)
    rid = datetime(moved.year, moved.month, moved.day, hh, mm)
    new_day = moved + DAY
    new_start = datetime(new_day.year, new_day.month, new_day.day, (hh + 1) % 24, mm)
    ctx.cal.add(
        Event(
            uid=master.uid,
            summary=summary + " (moved)",
            created=created,
            organizer_name=organizer.name,
            organizer_email=organizer.email,
            start=new_start,
            end=new_start + timedelta(minutes=minutes),
            attendees=att,
            tz=tz,
            recurrence_id=rid,
            sequence=1,
            categories=categories,
            last_modified=min(
                to_utc(rid, tz) - timedelta(days=rng.uniform(1, 6)), ctx.as_of_ts - timedelta(hours=1)
            ),
        ),
        mailboxes,
    )
    rest = [o for o in past if o != moved]
    if rest:
        c = rng.choice(rest)
        rid = datetime(c.year, c.month, c.day, hh, mm)
        ctx.cal.add(
            Event(
                uid=master.uid,
                summary=summary,
                created=created,
                organizer_name=organizer.name,
                organizer_email=organizer.email,
                start=rid,
                end=rid + timedelta(minutes=minutes),
                attendees=att,
                tz=tz,
                recurrence_id=rid,
                sequence=1,
                status="CANCELLED",
                categories=categories,
                last_modified=min(
                    to_utc(rid, tz) - timedelta(days=rng.uniform(0.5, 4)), ctx.as_of_ts - timedelta(hours=1)
                ),
            ),
            mailboxes,
        )


def _single(
    ctx: Ctx,
    rng: random.Random,
    organizer: User,
    attendees: list[User],
    summary: str,
    start_utc: datetime,
    minutes: int,
    booked: datetime,
    *,
    categories: str | None = None,
    status: str = "CONFIRMED",
    description: str | None = None,
) -> None:
    if booked >= ctx.as_of_ts or booked >= start_utc:
        return
    att = [Attendee(organizer.name, organizer.email, "ACCEPTED")] + [
        Attendee(u.name, u.email, rng.choice(["ACCEPTED"] * 4 + ["TENTATIVE", "NEEDS-ACTION"]))
        for u in attendees
        if u is not organizer
    ]
    ctx.cal.add(
        Event(
            uid=_uid(rng),
            summary=summary,
            created=booked,
            organizer_name=organizer.name,
            organizer_email=organizer.email,
            start=start_utc,
            end=start_utc + timedelta(minutes=minutes),
            attendees=att,
            status=status,
            categories=categories,
            description=description,
            sequence=1 if status == "CANCELLED" else 0,
        ),
        [organizer.email] + [u.email for u in attendees if u is not organizer],
    )


def _slot(d: date, tz: str, hh: int, mm: int = 0) -> datetime:
    while not is_business_day(d, tz):
        d += DAY
    return to_utc(datetime(d.year, d.month, d.day, hh, mm), tz)


def team_events(ctx: Ctx, team: Team, rng: random.Random) -> None:
    mgr = team.manager
    w0 = ctx.window_start.date()
    as_of = ctx.as_of
    active_now = [r for r in team.reps if r.leave is None]
    tmpl = team.template
    weekday = _WEEKDAYS.index(tmpl.sync_day)
    # weekly team sync (open ended, holidays excluded, one instance moved, maybe one cancelled)
    _weekly_series(
        ctx,
        rng,
        mgr,
        active_now,
        f"{team.name} weekly team sync",
        weekday,
        tmpl.sync_time[0],
        tmpl.sync_time[1],
        45,
        w0 + timedelta(days=rng.randint(0, 6)),
        overrides=True,
        description=f"Weekly pipeline & forecast review for {team.name}.\n"
        "Please update your opportunities in Salesforce beforehand.",
    )
    if tmpl.is_sdr:  # SDR teams also have a daily stand-up
        _weekly_series(
            ctx,
            rng,
            mgr,
            active_now,
            f"{team.name} daily stand-up",
            (0, 1, 2, 3, 4),
            8,
            30,
            15,
            w0 + timedelta(days=rng.randint(0, 6)),
        )
    # weekly 1:1s
    for r in team.reps:
        start_from = max(w0, r.hire + timedelta(days=5))
        until = (r.leave - DAY) if r.leave else None
        if until is not None and until <= start_from:
            continue
        _weekly_series(
            ctx,
            rng,
            mgr,
            [r],
            f"1:1 {mgr.first} / {r.first}",
            rng.choice([1, 2, 3]),
            rng.choice([13, 14, 15, 16]),
            rng.choice([0, 30]),
            30,
            start_from,
            until=until,
            holidays=False,
        )
    # quarterly business reviews
    q = quarter_end(w0)
    while q < as_of:
        d = q + timedelta(days=8)
        start = _slot(d, mgr.tz, 13)
        people = [r for r in team.reps if r.active_on(d)]
        if start < ctx.as_of_ts + timedelta(days=30):
            _single(
                ctx,
                rng,
                mgr,
                people,
                f"Q{(q.month - 1) // 3 + 1} {q.year} business review - {team.name}",
                start,
                120,
                start - timedelta(days=rng.uniform(10, 25)),
                categories="Internal",
            )
        q = quarter_end(q + DAY)
    # onboarding sessions and a 6-week training series for reps hired in the window
    for r in team.reps:
        if r.hire < w0:
            continue
        d = r.hire
        for i, title in enumerate(ONBOARDING_SESSIONS):
            d = d if i == 0 else d + DAY
            while not is_business_day(d, r.tz):
                d += DAY
            start = _slot(d, r.tz, 10 if i % 2 == 0 else 14)
            booked = to_utc(datetime(r.hire.year, r.hire.month, r.hire.day, 9), r.tz) - timedelta(
                days=rng.uniform(3, 12)
            )
            _single(ctx, rng, mgr, [r], title, start, 60 if i else 90, booked, categories="Onboarding")
        _weekly_series(
            ctx,
            rng,
            mgr,
            [r],
            "Sales methodology bootcamp (MEDDICC)",
            1,
            15,
            0,
            90,
            r.hire + timedelta(days=7),
            count=6,
            categories="Training",
            holidays=False,
            description="Six-week ramp programme: qualification, discovery, "
            "mutual action plans, negotiation. Bring one live deal.",
        )
    # out-of-office blocks (all-day, single mailbox)
    for r in team.reps + [mgr]:
        y0 = max(w0, r.hire)
        y1 = r.leave or (as_of + timedelta(days=60))
        d = y0
        while d < y1:
            n = rng.choice([1, 2, 2, 3])
            for _ in range(n):
                month = rng.choices(range(1, 13), weights=[3, 4, 5, 5, 6, 8, 14, 14, 5, 5, 4, 9])[0]
                try:
                    day = date(d.year, month, rng.randint(1, 26))
                except ValueError:
                    continue
                if not (y0 <= day < y1):
                    continue
                length = rng.choice([1, 1, 2, 3, 5, 5, 7, 10])
                booked = datetime(day.year, day.month, day.day, 12) - timedelta(days=rng.uniform(7, 60))
                if booked >= ctx.as_of_ts:
                    continue
                ctx.cal.add(
                    Event(
                        uid=_uid(rng),
                        summary="OOO - Vacation" if length > 1 else "OOO",
                        created=booked,
                        organizer_name=r.name,
                        organizer_email=r.email,
                        start=day,
                        end=day + timedelta(days=length),
                        all_day=True,
                        attendees=[Attendee(r.name, r.email, "ACCEPTED")],
                        transp="OPAQUE",
                        categories="Out of Office",
                    ),
                    [r.email],
                )
            d = date(d.year + 1, 1, 1)


def leadership_events(ctx: Ctx, org: Org, rng: random.Random) -> None:
    vp = org.vp
    managers = [t.manager for t in org.teams]
    w0 = ctx.window_start.date()
    _weekly_series(ctx, rng, vp, managers, "Sales leadership weekly", 3, 11, 0, 60, w0, overrides=True)
    for m in managers:
        _weekly_series(
            ctx,
            rng,
            vp,
            [m],
            f"1:1 {vp.first} / {m.first}",
            rng.choice([0, 2, 4]),
            rng.choice([12, 13, 16]),
            rng.choice([0, 30]),
            30,
            w0 + timedelta(days=rng.randint(0, 13)),
            interval=2,
            holidays=False,
        )
    everyone = org.users
    dl = Attendee("Sales Team (all)", DL_EMAIL, "NEEDS-ACTION", cutype="GROUP")
    # Sales Kickoff: all-day, two days, every January inside the window
    for year in range(w0.year, ctx.as_of.year + 2):
        d = _first_weekday_on_or_after(date(year, 1, 12), 1)
        booked = datetime(year - 1, 11, 3, 15) + timedelta(minutes=rng.randint(0, 600))
        if d < w0 or booked >= ctx.as_of_ts:
            continue
        ev = Event(
            uid=_uid(rng),
            summary=f"Sales Kickoff FY{str(year)[2:]}",
            created=booked,
            organizer_name=vp.name,
            organizer_email=vp.email,
            start=d,
            end=d + timedelta(days=2),
            all_day=True,
            attendees=[Attendee(vp.name, vp.email, "ACCEPTED")]
            + [Attendee(m.name, m.email, "ACCEPTED") for m in managers]
            + [dl],
            categories="Internal",
            transp="OPAQUE",
            location="Lisbon, Portugal",
            description="Annual kickoff: strategy, product roadmap, awards night, "
            "enablement workshops. Attendance is mandatory for all of Sales.",
        )
        ctx.cal.add(ev, [u.email for u in everyone if u.active_on(d) or u is vp])
    # quarterly product release training (all hands, via the distribution list)
    q = quarter_end(w0)
    while q < ctx.as_of + timedelta(days=30):
        d = q + timedelta(days=20)
        while d.weekday() != 2:
            d += DAY
        start = datetime(d.year, d.month, d.day, 16, 0)  # 16:00 UTC works for AMER + EMEA
        booked = start - timedelta(days=rng.uniform(14, 30))
        if booked < ctx.as_of_ts:
            ev = Event(
                uid=_uid(rng),
                summary=f"Product release training - {d:%B %Y}",
                created=booked,
                organizer_name=vp.name,
                organizer_email=vp.email,
                start=start,
                end=start + timedelta(minutes=60),
                attendees=[Attendee(vp.name, vp.email, "ACCEPTED"), dl],
                categories="Training",
            )
            ctx.cal.add(ev, [u.email for u in everyone if u.active_on(d) or u is vp])
        q = quarter_end(q + DAY)
