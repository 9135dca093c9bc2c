"""Fast RFC 5545 text building (and a tiny reader for our own files).

Events are rendered straight to text (CRLF line endings, lines folded at 75 octets) instead of
through the icalendar object model, which is far too slow for the L profile.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from .timeutil import to_local, to_utc

PRODID = "-//Acme Sales//salesops demo generator//EN"

_VTZ = {
    "America/New_York": (
        "-0500",
        "-0400",
        "EST",
        "EDT",
        "19700308T020000",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
        "19701101T020000",
        "FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
    ),
    "America/Chicago": (
        "-0600",
        "-0500",
        "CST",
        "CDT",
        "19700308T020000",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
        "19701101T020000",
        "FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
    ),
    "America/Los_Angeles": (
        "-0800",
        "-0700",
        "PST",
        "PDT",
        "19700308T020000",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
        "19701101T020000",
        "FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
    ),
    "Europe/London": (
        "+0000",
        "+0100",
        "GMT",
        "BST",
        "19700329T010000",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "19701025T020000",
        "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    ),
    "Europe/Berlin": (
        "+0100",
        "+0200",
        "CET",
        "CEST",
        "19700329T020000",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "19701025T030000",
        "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    ),
    "Australia/Sydney": (
        "+1000",
        "+1100",
        "AEST",
        "AEDT",
        "19701004T020000",
        "FREQ=YEARLY;BYMONTH=10;BYDAY=1SU",
        "19700405T030000",
        "FREQ=YEARLY;BYMONTH=4;BYDAY=1SU",
    ),
}


def vtimezone(tzid: str) -> str:
    if tzid == "Asia/Tokyo":
        lines = [
            "BEGIN:VTIMEZONE",
            f"TZID:{tzid}",
            f"X-LIC-LOCATION:{tzid}",
            "BEGIN:STANDARD",
            "TZOFFSETFROM:+0900",
            "TZOFFSETTO:+0900",
            "TZNAME:JST",
            "DTSTART:19700101T000000",
            "END:STANDARD",
            "END:VTIMEZONE",
        ]
    else:
        std, dst, std_name, dst_name, dst_start, dst_rule, std_start, std_rule = _VTZ[tzid]
        lines = [
            "BEGIN:VTIMEZONE",
            f"TZID:{tzid}",
            f"X-LIC-LOCATION:{tzid}",
            "BEGIN:DAYLIGHT",
            f"TZOFFSETFROM:{std}",
            f"TZOFFSETTO:{dst}",
            f"TZNAME:{dst_name}",
            f"DTSTART:{dst_start}",
            f"RRULE:{dst_rule}",
            "END:DAYLIGHT",
            "BEGIN:STANDARD",
            f"TZOFFSETFROM:{dst}",
            f"TZOFFSETTO:{std}",
            f"TZNAME:{std_name}",
            f"DTSTART:{std_start}",
            f"RRULE:{std_rule}",
            "END:STANDARD",
            "END:VTIMEZONE",
        ]
    return "\r\n".join(lines) + "\r\n"


def fold(line: str) -> str:
    """Folds a content line to at most 75 octets per physical line (UTF-8 safe)."""
    if len(line) <= 75 and (len(line) <= 25 or line.isascii()):
        return line
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line
    parts = []
    start = 0
    limit = 75
    while start < len(raw):
        end = min(start + limit, len(raw))
        # never split inside a multi-byte UTF-8 sequence
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:
            end -= 1
        parts.append(raw[start:end].decode("utf-8"))
        start = end
        limit = 74  # continuation lines start with one space
    return "\r\n ".join(parts)


def escape_text(s: str) -> str:
    return s.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def param(s: str) -> str:
    s = s.replace('"', "'")
    if any(c in s for c in ":;,"):
        return f'"{s}"'
    return s


def fmt_utc(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ")


def fmt_local(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S")


def fmt_date(d: date) -> str:
    return d.strftime("%Y%m%d")


@dataclass
class Attendee:
    name: str
    email: str
    partstat: str = "ACCEPTED"
    role: str = "REQ-PARTICIPANT"
    cutype: str | None = None  # e.g. GROUP for distribution lists

    def line(self) -> str:
        extra = f";CUTYPE={self.cutype}" if self.cutype else ""
        return (
            f"ATTENDEE;CN={param(self.name)}{extra};ROLE={self.role};"
            f"PARTSTAT={self.partstat};RSVP=TRUE:mailto:{self.email}"
        )


@dataclass
class Event:
    """A calendar event. Timed single events carry UTC ``start``/``end`` and are rendered in each
    mailbox's own time zone; recurring events (and their overrides) carry *local* times in the
    fixed ``tz`` of the organizer; all-day events carry dates."""

    uid: str
    summary: str
    created: datetime
    organizer_name: str
    organizer_email: str
    start: datetime | date
    end: datetime | date
    attendees: list[Attendee] = field(default_factory=list)
    tz: str | None = None
    all_day: bool = False
    status: str = "CONFIRMED"
    rrule: str | None = None
    exdates: list[datetime] = field(default_factory=list)
    recurrence_id: datetime | None = None
    sequence: int = 0
    categories: str | None = None
    description: str | None = None
    location: str | None = None
    transp: str | None = None
    last_modified: datetime | None = None
    external_emails: list[str] = field(default_factory=list)  # for ground truth

    def start_utc(self) -> datetime:
        if self.all_day:
            return datetime(self.start.year, self.start.month, self.start.day)
        if self.tz:
            return to_utc(self.start, self.tz)
        return self.start

    def render(self, dtstamp: str, mailbox_tz: str) -> tuple[str, str | None]:
        """Returns (text, tzid used or None)."""
        tzid = None
        lines = ["BEGIN:VEVENT", f"UID:{self.uid}", f"DTSTAMP:{dtstamp}"]
        if self.all_day:
            lines.append(f"DTSTART;VALUE=DATE:{fmt_date(self.start)}")
            lines.append(f"DTEND;VALUE=DATE:{fmt_date(self.end)}")
        else:
            if self.tz:
                tzid = self.tz
                s, e = self.start, self.end
            else:
                tzid = mailbox_tz
                s, e = to_local(self.start, tzid), to_local(self.end, tzid)
            lines.append(f"DTSTART;TZID={tzid}:{fmt_local(s)}")
            lines.append(f"DTEND;TZID={tzid}:{fmt_local(e)}")
        if self.recurrence_id is not None:
            lines.append(f"RECURRENCE-ID;TZID={self.tz}:{fmt_local(self.recurrence_id)}")
        if self.rrule:
            lines.append(f"RRULE:{self.rrule}")
        if self.exdates:
            lines.append(fold(f"EXDATE;TZID={self.tz}:" + ",".join(fmt_local(x) for x in self.exdates)))
        lines.append(f"CREATED:{fmt_utc(self.created)}")
        if self.last_modified is not None:
            lines.append(f"LAST-MODIFIED:{fmt_utc(self.last_modified)}")
        lines.append(f"SEQUENCE:{self.sequence}")
        lines.append(fold(f"SUMMARY:{escape_text(self.summary)}"))
        if self.description:
            lines.append(fold(f"DESCRIPTION:{escape_text(self.description)}"))
        if self.location:
            lines.append(fold(f"LOCATION:{escape_text(self.location)}"))
        if self.categories:
            lines.append(f"CATEGORIES:{self.categories}")
        lines.append(f"STATUS:{self.status}")
        if self.transp:
            lines.append(f"TRANSP:{self.transp}")
        lines.append(fold(f"ORGANIZER;CN={param(self.organizer_name)}:mailto:{self.organizer_email}"))
        for a in self.attendees:
            lines.append(fold(a.line()))
        lines.append("END:VEVENT")
        return "\r\n".join(lines) + "\r\n", tzid


class CalendarWriter:
    """Streams events into one .ics file per mailbox with bounded memory.

    Event texts are buffered per mailbox and appended to a part file on ``flush()``; ``finish()``
    wraps each part into a VCALENDAR with the VTIMEZONE blocks of the TZIDs actually used.
    """

    def __init__(self, directory: Path, dtstamp: datetime, mailbox_tz: dict[str, str]):
        self.dir = directory
        self.parts = directory / ".parts"
        self.parts.mkdir(parents=True, exist_ok=True)
        self.dtstamp = fmt_utc(dtstamp)
        self.mailbox_tz = mailbox_tz
        self.buffers: dict[str, list[str]] = {}
        self.tzids: dict[str, set[str]] = {m: set() for m in mailbox_tz}
        self.stats = CalendarStats()

    def add(self, event: Event, mailboxes: list[str]) -> None:
        cache: dict[str | None, tuple[str, str | None]] = {}
        for m in mailboxes:
            mtz = self.mailbox_tz[m]
            key = None if (event.tz or event.all_day) else mtz
            r = cache.get(key)
            if r is None:
                r = event.render(self.dtstamp, mtz)
                cache[key] = r
            text, tzid = r
            self.buffers.setdefault(m, []).append(text)
            if tzid:
                self.tzids[m].add(tzid)
        self.stats.observe(event, len(mailboxes))

    def flush(self) -> None:
        for m, texts in self.buffers.items():
            with open(self.parts / m, "a", encoding="utf-8", newline="") as f:
                f.write("".join(texts))
        self.buffers.clear()

    def finish(self) -> None:
        self.flush()
        for m in self.mailbox_tz:
            head = (
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
                + f"PRODID:{PRODID}\r\n"
                + "CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\n"
                + fold(f"X-WR-CALNAME:{m}")
                + "\r\n"
                + "".join(vtimezone(t) for t in sorted(self.tzids[m]))
            )
            part = self.parts / m
            with open(self.dir / f"{m}.ics", "w", encoding="utf-8", newline="") as out:
                out.write(head)
                if part.exists():
                    with open(part, encoding="utf-8", newline="") as src:
                        shutil.copyfileobj(src, out, 1 << 20)
                    part.unlink()
                out.write("END:VCALENDAR\r\n")
        shutil.rmtree(self.parts, ignore_errors=True)
        self.stats.files = len(self.mailbox_tz)


@dataclass
class CalendarStats:
    files: int = 0
    vevent_components: int = 0
    unique_uids: int = 0
    unique_instances: int = 0
    recurring_series: int = 0
    recurrence_overrides: int = 0
    cancelled_instances: int = 0
    all_day_events: int = 0

    def observe(self, e: Event, copies: int) -> None:
        self.vevent_components += copies
        self.unique_instances += 1
        if e.recurrence_id is None:
            self.unique_uids += 1
            if e.rrule:
                self.recurring_series += 1
            if e.all_day:
                self.all_day_events += 1
        else:
            self.recurrence_overrides += 1
        if e.status == "CANCELLED":
            self.cancelled_instances += 1

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------------
# Minimal reader for our own files (used to recompute ground truth after a change set)
# ------------------------------------------------------------------------------------------
def unfold_lines(path: Path) -> Iterator[str]:
    prev = None
    with open(path, encoding="utf-8", newline="") as f:
        for raw in f:
            line = raw.rstrip("\r\n")
            if line[:1] in (" ", "\t"):
                prev = (prev or "") + line[1:]
                continue
            if prev is not None:
                yield prev
            prev = line
    if prev is not None:
        yield prev


def split_prop(line: str) -> tuple[str, dict[str, str], str]:
    """'NAME;P=V;Q="a:b":value' -> (NAME, {P: V, Q: a:b}, value)."""
    i = 0
    n = len(line)
    in_q = False
    while i < n:
        c = line[i]
        if c == '"':
            in_q = not in_q
        elif c == ":" and not in_q:
            break
        i += 1
    head, value = line[:i], line[i + 1 :]
    parts = []
    cur = []
    in_q = False
    for c in head:
        if c == '"':
            in_q = not in_q
            continue
        if c == ";" and not in_q:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    params = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        params[k.upper()] = v
    return parts[0].upper(), params, value


def parse_ics_datetime(value: str, params: dict[str, str]) -> datetime:
    """Naive UTC datetime of a DTSTART/CREATED-like value."""
    if params.get("VALUE") == "DATE" or len(value) == 8:
        return datetime(int(value[:4]), int(value[4:6]), int(value[6:8]))
    t = datetime(
        int(value[:4]),
        int(value[4:6]),
        int(value[6:8]),
        int(value[9:11]),
        int(value[11:13]),
        int(value[13:15]),
    )
    if value.endswith("Z"):
        return t
    tzid = params.get("TZID")
    if tzid:
        return to_utc(t, tzid)
    return t


def iter_vevents(path: Path) -> Iterator[list[str]]:
    block: list[str] | None = None
    for line in unfold_lines(path):
        if line == "BEGIN:VEVENT":
            block = []
        elif line == "END:VEVENT":
            if block is not None:
                yield block
            block = None
        elif block is not None:
            block.append(line)


def list_calendar_files(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return sorted(directory / n for n in os.listdir(directory) if n.endswith(".ics"))
