"""Mailbox ICS exports as the Google Calendar API v3 event resources Google would hold for them.

One ``<mailbox>.ics`` file per mailbox (as in the demo org's calendar folder) becomes one
calendar of a :class:`~tests.fakes.google_calendar_server.FakeGoogleCalendar`, calendar id
= the mailbox.  Per UID, the VEVENT without ``RECURRENCE-ID`` is a single event or a
recurring master; every VEVENT with ``RECURRENCE-ID`` is an exception of that series, held
as Google holds them: its own resource with id ``<master id>_<original start>`` (UTC
``YYYYMMDDTHHMMSSZ``, or ``YYYYMMDD`` for all-day), ``recurringEventId`` and
``originalStartTime`` (an exception without a master in the file - a mailbox invited to one
instance only - is listed by the fake as it is).

Mapping (the reverse of ``ingestion/google_calendar.py``'s, as in
``tests/test_google_calendar.py::test_same_meetings_from_ics_and_google_give_the_same_rows``):

* ``id``: hex SHA-1 of the UID (hex digits are a subset of Google's base32hex ids); the
  same in every mailbox, like an event Google shares between its attendees' calendars.
* ``start``/``end``: ``TZID`` times as ``{"dateTime": <local time with offset>, "timeZone":
  <TZID>}``; UTC times ``{"dateTime": "...Z", "timeZone": "UTC"}``; floating times without an
  offset or zone (read as UTC by both readers); dates ``{"date"}`` with ``DTEND``'s exclusive
  end date.  ``DURATION`` gives the end; without ``DTEND``/``DURATION`` one day (all-day) or
  zero length (timed), as RFC 5545 says.  A ``TZID`` that is not an IANA zone (a custom
  ``VTIMEZONE`` name) cannot be held by Google: the time is given in UTC.
* ``recurrence``: ``RRULE:``, ``RDATE`` and ``EXDATE`` lines (Google accepts all three).
* ``status`` lower-cased; ``summary``, ``location``, ``description``; ``transparency``;
  ``organizer`` and ``attendees`` (``email`` without ``mailto:``, ``displayName`` from ``CN``,
  ``responseStatus`` from ``PARTSTAT``, ``optional`` for ``ROLE=OPT-PARTICIPANT``, ``self``
  for the mailbox itself; an address listed twice keeps its first listing); ``created`` from
  ``CREATED``; ``updated`` from ``LAST-MODIFIED`` - Google always has one, so an event never
  modified has ``updated`` = ``created``; ``sequence``; ``CATEGORIES`` (Google has none) in
  ``extendedProperties.shared.categories``, comma-separated.

A ``PARTSTAT`` or ``ROLE`` Google cannot hold (``DELEGATED``, ``CHAIR``, ...) raises
:class:`Unrepresentable` instead of being silently changed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

from tests.fakes.google_calendar_server import FakeGoogleCalendar

RESPONSE_STATUS = {
    "ACCEPTED": "accepted",
    "DECLINED": "declined",
    "TENTATIVE": "tentative",
    "NEEDS-ACTION": "needsAction",
}


class Unrepresentable(ValueError):
    """An ICS value Google Calendar has no field or value for."""


def event_id_for(uid: str) -> str:
    """A Google-safe event id (base32hex characters, 40 long) derived from the UID."""
    return hashlib.sha1(uid.encode("utf-8")).hexdigest()


def _zone_name(prop: Any) -> str | None:
    """The property's TZID when it is an IANA zone Google can hold, else None."""
    tzid = prop.params.get("TZID") if hasattr(prop, "params") else None
    if not tzid:
        return None
    try:
        ZoneInfo(str(tzid))
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return str(tzid)


def google_time(value: date | datetime, zone: str | None) -> dict[str, str]:
    """A Google ``start``/``end``/``originalStartTime`` object for an ICS date or date-time."""
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    if value.tzinfo is None:  # floating: no offset, no zone (both readers take it as UTC)
        return {"dateTime": value.isoformat()}
    if zone is not None:
        return {"dateTime": value.astimezone(ZoneInfo(zone)).isoformat(), "timeZone": zone}
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return {"dateTime": utc.isoformat() + "Z", "timeZone": "UTC"}


def _instance_suffix(original: dict[str, str]) -> str:
    """Google's instance-id suffix: the original start in UTC, or the original date."""
    if "date" in original:
        return date.fromisoformat(original["date"]).strftime("%Y%m%d")
    moment = datetime.fromisoformat(original["dateTime"].replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _stamp(component: Any, name: str) -> str | None:
    prop = component.get(name)
    if prop is None:
        return None
    moment = prop.dt
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _address(value: Any) -> str:
    text = str(value).strip()
    return text[7:].strip() if text[:7].lower() == "mailto:" else text


def _people(component: Any, mailbox: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    organizer = None
    if component.get("ORGANIZER") is not None:
        prop = _listed(component["ORGANIZER"])[0]
        organizer = {"email": _address(prop)}
        if prop.params.get("CN"):
            organizer["displayName"] = str(prop.params["CN"])
        if organizer["email"].lower() == mailbox:
            organizer["self"] = True
    attendees: list[dict[str, Any]] = []
    seen: set[str] = set()
    for prop in _listed(component.get("ATTENDEE")):
        email = _address(prop)
        if email.lower() in seen:
            continue  # Google holds an address once; both readers keep the first listing
        seen.add(email.lower())
        partstat = str(prop.params.get("PARTSTAT") or "NEEDS-ACTION").upper()
        role = str(prop.params.get("ROLE") or "REQ-PARTICIPANT").upper()
        if partstat not in RESPONSE_STATUS:
            raise Unrepresentable(f"ATTENDEE {email}: PARTSTAT={partstat} has no Google responseStatus")
        if role not in ("REQ-PARTICIPANT", "OPT-PARTICIPANT"):
            raise Unrepresentable(f"ATTENDEE {email}: ROLE={role} has no Google equivalent")
        attendee: dict[str, Any] = {"email": email, "responseStatus": RESPONSE_STATUS[partstat]}
        if prop.params.get("CN"):
            attendee["displayName"] = str(prop.params["CN"])
        if role == "OPT-PARTICIPANT":
            attendee["optional"] = True
        if str(prop.params.get("CUTYPE") or "").upper() in ("RESOURCE", "ROOM"):
            attendee["resource"] = True
        if email.lower() == mailbox:
            attendee["self"] = True
        attendees.append(attendee)
    return organizer, attendees


def _categories(component: Any) -> str | None:
    names: list[str] = []
    for prop in _listed(component.get("CATEGORIES")):
        names.extend(str(category) for category in getattr(prop, "cats", [prop]))
    return ",".join(names) or None


def _times(component: Any) -> tuple[dict[str, str], dict[str, str]]:
    start_prop = component["DTSTART"]
    start = start_prop.dt
    zone = _zone_name(start_prop)
    if component.get("DTEND") is not None:
        end_prop = component["DTEND"]
        return google_time(start, zone), google_time(end_prop.dt, _zone_name(end_prop) or zone)
    if component.get("DURATION") is not None:
        end = start + component["DURATION"].dt
    elif isinstance(start, datetime):
        end = start
    else:
        end = start + timedelta(days=1)
    return google_time(start, zone), google_time(end, zone)


def _date_list_line(name: str, prop: Any) -> str:
    """An ``EXDATE``/``RDATE`` property as a line of Google's ``recurrence``."""
    values = [d.dt for d in prop.dts]
    if all(not isinstance(v, datetime) for v in values):
        return f"{name};VALUE=DATE:" + ",".join(v.strftime("%Y%m%d") for v in values)
    zone = _zone_name(prop)
    if zone is not None:
        local = [v.astimezone(ZoneInfo(zone)) for v in values]
        return f"{name};TZID={zone}:" + ",".join(v.strftime("%Y%m%dT%H%M%S") for v in local)
    texts = [
        v.strftime("%Y%m%dT%H%M%S") if v.tzinfo is None else v.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        for v in values
    ]
    return f"{name}:" + ",".join(texts)


def _recurrence(component: Any) -> list[str]:
    lines = [f"RRULE:{rule.to_ical().decode()}" for rule in _listed(component.get("RRULE"))]
    for name in ("RDATE", "EXDATE"):
        lines.extend(_date_list_line(name, prop) for prop in _listed(component.get(name)))
    return lines


def _resource(component: Any, uid: str, mailbox: str) -> dict[str, Any]:
    start, end = _times(component)
    resource: dict[str, Any] = {
        "kind": "calendar#event",
        "id": event_id_for(uid),
        "iCalUID": uid,
        "status": str(component.get("STATUS") or "CONFIRMED").strip().lower(),
        "start": start,
        "end": end,
        "sequence": int(component.get("SEQUENCE") or 0),
    }
    for name, key in (("SUMMARY", "summary"), ("LOCATION", "location"), ("DESCRIPTION", "description")):
        if component.get(name) is not None:
            resource[key] = str(component[name])
    if str(component.get("TRANSP") or "").upper() == "TRANSPARENT":
        resource["transparency"] = "transparent"
    created = _stamp(component, "CREATED")
    updated = _stamp(component, "LAST-MODIFIED") or created
    if created is not None:
        resource["created"] = created
    if updated is not None:
        resource["updated"] = updated
    organizer, attendees = _people(component, mailbox)
    if organizer is not None:
        resource["organizer"] = organizer
    if attendees:
        resource["attendees"] = attendees
    categories = _categories(component)
    if categories is not None:
        resource["extendedProperties"] = {"shared": {"categories": categories}}
    return resource


def google_events(path: Path) -> list[dict[str, Any]]:
    """The event resources of one mailbox ICS file: single events, masters, then exceptions."""
    mailbox = path.stem.lower()
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    mains: list[dict[str, Any]] = []
    exceptions: list[dict[str, Any]] = []
    for component in calendar.walk("VEVENT"):
        uid = str(component.get("UID") or "").strip()
        if not uid or component.get("DTSTART") is None:
            continue  # the ICS reader skips these too (with a problem row)
        resource = _resource(component, uid, mailbox)
        if component.get("RECURRENCE-ID") is None:
            recurrence = _recurrence(component)
            if recurrence:
                resource["recurrence"] = recurrence
            mains.append(resource)
            continue
        original_prop = component["RECURRENCE-ID"]
        original = google_time(original_prop.dt, _zone_name(original_prop))
        resource["recurringEventId"] = resource["id"]
        resource["originalStartTime"] = original
        resource["id"] = f"{resource['id']}_{_instance_suffix(original)}"
        exceptions.append(resource)
    ids = Counter(r["id"] for r in mains + exceptions)
    duplicated = sorted(i for i, n in ids.items() if n > 1)
    if duplicated:
        raise Unrepresentable(f"{path.name}: one Google id for several VEVENTs: {duplicated[:3]}")
    return mains + exceptions


def mailbox_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ics"))


Calendars = dict[str, dict[str, dict[str, Any]]]
"""mailbox -> event id -> event resource"""


def calendar_resources(paths: Iterable[Path]) -> Calendars:
    """Every mailbox file's event resources by id."""
    return {path.stem.lower(): {e["id"]: e for e in google_events(path)} for path in paths}


def load_calendars(fake: FakeGoogleCalendar, paths: Iterable[Path]) -> dict[str, int]:
    """Put every mailbox file's events into ``fake`` (one calendar per mailbox); events per mailbox."""
    calendars = calendar_resources(paths)
    update_calendars(fake, {}, calendars)
    return {mailbox: len(events) for mailbox, events in calendars.items()}


def update_calendars(fake: FakeGoogleCalendar, held: Mapping[str, Mapping[str, Any]], now: Calendars) -> int:
    """Make ``fake`` hold ``now`` instead of ``held``, as an organizer's edits would.

    New and changed resources are put, resources gone from a file are deleted (Google's
    tombstone); returns how many resources changed.
    """
    changes = 0
    for mailbox, events in now.items():
        fake.add_calendar(mailbox)
        before = held.get(mailbox, {})
        for event_id, event in events.items():
            if before.get(event_id) != event:
                fake.put_event(mailbox, event)
                changes += 1
        for event_id in sorted(set(before) - set(events)):
            fake.delete_event(mailbox, event_id)
            changes += 1
    return changes
