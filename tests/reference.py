"""Plain-Python reference implementations of the marts, computed from source rows.

They are written independently of the dbt SQL (loops and the standard library, not a port of
the queries) so that end-to-end tests compare two separate derivations of every number.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar


def parse_dt(value: object) -> datetime | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def parse_date(value: object) -> date | None:
    parsed = parse_dt(value)
    return parsed.date() if parsed else None


def parse_bool(value: object) -> bool:
    return str(value).strip().lower() in {"1", "true", "t", "yes", "y"}


def parse_float(value: object) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    return float(value)


def crm_rows(crm_path: Path, table: str) -> list[dict[str, object]]:
    """Non-deleted rows of a CRM table with lower-case keys (latest version per Id)."""
    with sqlite3.connect(crm_path) as connection:
        cursor = connection.execute(f'SELECT * FROM "{table}"')
        names = [column[0].lower() for column in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor]
    return [r for r in rows if not parse_bool(r.get("isdeleted", "0"))]


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quota_attainment(crm_path: Path) -> dict[tuple[str, str, date], dict[str, object]]:
    quota: dict[tuple[str, str, date], float] = defaultdict(float)
    has_quota: set[tuple[str, str, date]] = set()
    bookings: dict[tuple[str, str, date], list[float]] = defaultdict(list)
    for row in crm_rows(crm_path, "forecastingquota"):
        start = parse_date(row["startdate"])
        amount = parse_float(row["quotaamount"]) or 0.0
        for key in (
            (row["quotaownerid"], "month", start.replace(day=1)),
            (row["quotaownerid"], "quarter", quarter_start(start)),
        ):
            quota[key] += amount
            has_quota.add(key)
    for row in crm_rows(crm_path, "opportunity"):
        close = parse_date(row["closedate"])
        if not parse_bool(row["iswon"]) or close is None or not row["ownerid"]:
            continue
        amount = parse_float(row["amount"]) or 0.0
        for key in (
            (row["ownerid"], "month", close.replace(day=1)),
            (row["ownerid"], "quarter", quarter_start(close)),
        ):
            bookings[key].append(amount)
    result = {}
    for key in has_quota | set(bookings):
        q = quota[key] if key in has_quota else None
        b = sum(bookings.get(key, []))
        result[key] = {
            "quota_amount": q,
            "bookings_amount": b,
            "won_deals": len(bookings.get(key, [])),
            "attainment": b / q if q else None,
        }
    return result


def funnel_conversion(crm_path: Path) -> dict[tuple[date, str], dict[str, object]]:
    opportunities = {r["id"]: r for r in crm_rows(crm_path, "opportunity")}
    cohorts: dict[tuple[date, str], dict[str, object]] = {}
    for row in crm_rows(crm_path, "lead"):
        created = parse_dt(row["createddate"])
        source = (row["leadsource"] or "").strip() or "Unknown"
        key = (created.date().replace(day=1), source)
        cohort = cohorts.setdefault(key, {"leads": 0, "converted_leads": 0, "opps": set()})
        cohort["leads"] += 1
        cohort["converted_leads"] += parse_bool(row["isconverted"])
        if row["convertedopportunityid"] in opportunities:
            cohort["opps"].add(row["convertedopportunityid"])
    result = {}
    for key, cohort in cohorts.items():
        opps = [opportunities[o] for o in cohort["opps"]]
        won = [o for o in opps if parse_bool(o["iswon"])]
        closed = [o for o in opps if parse_bool(o["isclosed"])]
        result[key] = {
            "leads": cohort["leads"],
            "converted_leads": cohort["converted_leads"],
            "opportunities": len(opps),
            "won_opportunities": len(won),
            "won_amount": sum(parse_float(o["amount"]) or 0.0 for o in won),
            "lead_to_opportunity_rate": len(opps) / cohort["leads"],
            "win_rate": len(won) / len(closed) if closed else None,
            "lead_to_win_rate": len(won) / cohort["leads"],
        }
    return result


@dataclass(frozen=True)
class Meeting:
    booked_at: datetime
    attendee_emails: frozenset[str]


def single_meetings(calendar_dir: Path) -> list[Meeting]:
    """Non-recurring, non-cancelled VEVENTs of every mailbox file (duplicates across files are harmless)."""
    meetings = []
    for path in sorted(calendar_dir.glob("*.ics")):
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
        for event in calendar.walk("VEVENT"):
            if event.get("RRULE") or event.get("RECURRENCE-ID"):
                continue
            if str(event.get("STATUS", "CONFIRMED")).upper() == "CANCELLED":
                continue
            attendees = event.get("ATTENDEE", [])
            attendees = attendees if isinstance(attendees, list) else [attendees]
            emails = frozenset(str(a).lower().removeprefix("mailto:") for a in attendees)
            booked = event.get("CREATED") or event.get("DTSTART")
            value = booked.dt
            if not isinstance(value, datetime):
                value = datetime.combine(value, time())
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            meetings.append(Meeting(value, emails))
    return meetings


def business_minutes(start_utc: datetime, end_utc: datetime, zone: str) -> float:
    """Minutes inside 09:00-17:00 Monday-Friday local time, summed day by day."""
    tz = ZoneInfo(zone)
    start = start_utc.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
    end = end_utc.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
    total = 0.0
    day = start.date()
    while day <= end.date():
        if day.weekday() < 5:
            open_at = datetime.combine(day, time(9))
            close_at = datetime.combine(day, time(17))
            overlap = (min(end, close_at) - max(start, open_at)).total_seconds()
            total += max(overlap, 0.0) / 60
        day += timedelta(days=1)
    return total


def lead_response_times(crm_path: Path, calendar_dir: Path, sla_minutes: float = 60) -> dict[str, dict]:
    users = {u["id"]: u for u in crm_rows(crm_path, "user")}
    responses: dict[str, list[tuple[datetime, int, str]]] = defaultdict(list)
    leads = crm_rows(crm_path, "lead")
    lead_by_id = {lead["id"]: lead for lead in leads}
    channel_rank = {"call": 1, "email": 2, "meeting": 3}
    for task in crm_rows(crm_path, "task"):
        channel = (task["tasksubtype"] or "").lower()
        if channel in ("call", "email") and task["whoid"] in lead_by_id:
            responses[task["whoid"]].append((parse_dt(task["createddate"]), channel_rank[channel], channel))
    leads_by_email: dict[str, list[str]] = defaultdict(list)
    for lead in leads:
        if lead["email"]:
            leads_by_email[lead["email"].strip().lower()].append(lead["id"])
    for meeting in single_meetings(calendar_dir):
        for email in meeting.attendee_emails:
            for lead_id in leads_by_email.get(email, []):
                responses[lead_id].append((meeting.booked_at, 3, "meeting"))
    result = {}
    for lead in leads:
        created = parse_dt(lead["createddate"])
        valid = sorted(r for r in responses.get(lead["id"], []) if r[0] >= created)
        owner = users.get(lead["ownerid"])
        zone = (owner or {}).get("timezonesidkey") or "UTC"
        first = valid[0] if valid else None
        business = business_minutes(created, first[0], zone) if first else None
        result[lead["id"]] = {
            "first_response_at": first[0] if first else None,
            "response_channel": first[2] if first else None,
            "response_minutes": (first[0] - created).total_seconds() / 60 if first else None,
            "business_response_minutes": business,
            "is_responded": first is not None,
            "within_sla": business is not None and business <= sla_minutes,
        }
    return result


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear-interpolation percentile (numpy's default, DuckDB's quantile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)
