"""Read mailbox ICS exports (RFC 5545) into flat occurrence, attendee and problem rows.

One ``.ics`` file per mailbox; the file stem is the mailbox (``jane.doe@acme.example.ics``).
Every ``VEVENT`` series is expanded into the occurrences that overlap an
:class:`ExpansionWindow` with :mod:`recurring_ical_events` (RRULE, RDATE, EXDATE,
RECURRENCE-ID overrides, RANGE=THISANDFUTURE).  Each occurrence becomes one row in
:data:`OCCURRENCE_COLUMNS` order, each of its attendees one row in :data:`ATTENDEE_COLUMNS`
order.  Issues that do not stop the file become rows in :data:`PROBLEM_COLUMNS` order.

Decisions
---------
* **Whole-file errors** (:class:`CalendarFileError`): unreadable, larger than
  :data:`MAX_FILE_BYTES`, empty, not valid UTF-8 (a UTF-8 BOM is accepted; lines folded in
  the middle of a multi-byte character are unfolded before decoding), not iCalendar (the
  first content line is not ``BEGIN:VCALENDAR``), malformed structure (an ``END`` that does
  not close the open ``BEGIN``; a line at calendar level or in a ``VTIMEZONE`` that is not a
  content line) and **truncated** files.  A file that ends before ``END:VCALENDAR`` is always an error, even
  when every event before the cut is complete: a cut-off export silently loses events, and
  loading the remainder would make those events look deleted downstream.  The previously
  loaded rows of such a file should be kept instead.  The error carries the line of the file
  where the problem is (``line``: the ``END`` that does not close, the first line that is not
  iCalendar, the bad byte's line, the last line of a truncated file), else ``None``; the
  loader quarantines the file with it (``ingestion/calendar_load.py``).
* **Per-event problems** (rows, the file still loads): ``missing_uid`` and ``missing_dtstart``
  (event skipped), ``invalid_event`` (an unparseable DTSTART/DTEND/DURATION/RRULE/RDATE/
  EXDATE/RECURRENCE-ID, or a series that cannot be expanded: the whole UID is skipped),
  ``unknown_tzid`` (the time is read as UTC and the event kept), ``end_before_start`` (DTEND
  before DTSTART or a negative DURATION: the event is skipped rather than silently swapped),
  ``date_out_of_range`` (DTSTART outside 1900-2199: skipped) and ``recurrence_truncated``
  (more than ``max_occurrences_per_series`` occurrences in the window: the first N by start
  are kept).  Stray non-content lines inside events (e.g. unescaped line breaks in a
  DESCRIPTION) and in ignored components are dropped; broken
  values of CREATED/LAST-MODIFIED/DTSTAMP become ``None`` and a broken SEQUENCE ``0``.
* **Times**: all datetimes are naive UTC.  ``TZID`` times are resolved against the file's
  own ``VTIMEZONE`` definitions (custom names such as Outlook's "Customized Time Zone" are
  never shared between files), then zoneinfo / Windows zone names.  **Floating times are
  UTC** (``X-WR-TIMEZONE`` is ignored), and so are times with an unknown ``TZID``.  All-day
  events start at midnight of their date; ``DTEND`` is exclusive; no ``DTEND``/``DURATION``
  means one day (all-day) or zero length (timed).
* **Status**: an override's own STATUS applies to its instance, so a cancelled override is
  kept as a ``CANCELLED`` row; a cancelled master makes every instance of the series
  ``CANCELLED``, overrides included.
* **Text**: ``organizer_email``/``email`` are lower-cased without ``mailto:``; an attendee
  listed twice in one event is reported once (first listing wins); ``categories`` are
  de-duplicated case-insensitively (first spelling wins) and joined with ``,``.
* **Bounded work**: expansion never runs past the window end and stops after
  ``max_occurrences_per_series + 1`` occurrences; sub-daily (or BYHOUR/BYMINUTE/BYSECOND
  expanded) rules are expanded in growing chunks from the window start, an open-ended one
  whose DTSTART lies long before the window is re-based onto its own grid near the window,
  and one that still needs more than :data:`MAX_DENSE_ITERATIONS` steps before the window
  is skipped with a ``recurrence_truncated`` problem.  VTODO/VJOURNAL/VALARM are ignored.

Parsing resets icalendar's process-wide timezone cache per file, so do not parse
calendars from several threads of one process at once; :func:`parse_calendar_files`
parallelises with processes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import icalendar
from dateutil.rrule import rrulestr
from icalendar import Event, Timezone
from icalendar.prop import vDDDTypes
from icalendar.timezone import tzp
from recurring_ical_events import EventAdapter, Occurrence, Series

SOURCE_NAME = "calendar"
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_DENSE_ITERATIONS = 200_000
"""Most rule steps a dense series may need before the window; beyond that it is skipped."""

OCCURRENCE_COLUMNS: tuple[str, ...] = (
    "source_file",
    "mailbox",
    "uid",
    "occurrence_start",
    "occurrence_end",
    "is_all_day",
    "is_recurring",
    "recurrence_id",
    "status",
    "summary",
    "location",
    "organizer_email",
    "categories",
    "created_at",
    "last_modified_at",
    "dtstamp",
    "sequence",
    "tzid",
)
ATTENDEE_COLUMNS: tuple[str, ...] = (
    "source_file",
    "uid",
    "occurrence_start",
    "email",
    "partstat",
    "role",
    "common_name",
)
PROBLEM_COLUMNS: tuple[str, ...] = ("source_file", "uid", "rule", "detail")

RULE_UNKNOWN_TZID = "unknown_tzid"
RULE_RECURRENCE_TRUNCATED = "recurrence_truncated"
RULE_MISSING_UID = "missing_uid"
RULE_MISSING_DTSTART = "missing_dtstart"
RULE_INVALID_EVENT = "invalid_event"
RULE_END_BEFORE_START = "end_before_start"
RULE_DATE_OUT_OF_RANGE = "date_out_of_range"
MIN_YEAR, MAX_YEAR = 1900, 2199
"""Events starting outside these years are skipped (the CRM's date rules use the same bounds)."""


@dataclass(frozen=True)
class ExpansionWindow:
    """Occurrences overlapping ``[start, end)`` are kept; both bounds tz-aware (UTC)."""

    start: datetime  # tz-aware UTC, inclusive
    end: datetime  # tz-aware UTC, exclusive

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("ExpansionWindow bounds must be timezone-aware (UTC)")
        if self.start >= self.end:
            raise ValueError(f"ExpansionWindow start {self.start} is not before end {self.end}")


@dataclass
class ParsedCalendarFile:
    source_file: str  # path relative to the calendar folder, posix
    mailbox: str  # file stem
    occurrences: list[tuple] = field(default_factory=list)  # OCCURRENCE_COLUMNS order
    attendees: list[tuple] = field(default_factory=list)  # ATTENDEE_COLUMNS order
    problems: list[tuple] = field(default_factory=list)  # PROBLEM_COLUMNS order


class CalendarFileError(Exception):
    """Unreadable/unparseable file; ``str()`` is one line naming source, file, problem and line.

    ``line`` is the line of the file (1-based, as an editor numbers it: folded continuation
    lines count) where the problem is, when the parser knows it, else ``None``.
    Example: ``calendar file 'x.ics': malformed: END:VTOOD does not close BEGIN:VEVENT (line 12)``.
    """

    def __init__(self, source_file: str, problem: str, line: int | None = None) -> None:
        self.source_file = source_file
        self.problem = _one_line(problem)
        self.line = line
        where = f" (line {line})" if line is not None else ""
        super().__init__(f"{SOURCE_NAME} file '{self.source_file}': {self.problem}{where}")

    @property
    def mailbox(self) -> str:
        return mailbox_of(self.source_file)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source_file, self.problem, self.line))


def mailbox_of(source_file: str) -> str:
    """The mailbox a calendar file holds: its name without ``.ics`` (``jane@acme.example.ics``)."""
    return PurePosixPath(source_file).stem


# --------------------------------------------------------------------------- reading


_FOLD = re.compile(rb"\r?\n[ \t]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BYTE_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_NAME = re.compile(r"[A-Za-z0-9-]+")
_BOM = b"\xef\xbb\xbf"

_TIME_PROPERTIES = frozenset(
    {"UID", "DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID", "SEQUENCE"}
)
"""VEVENT properties parsed by icalendar (times, time zones, recurrence)."""
_TEXT_PROPERTIES = frozenset(
    {
        "STATUS", "SUMMARY", "LOCATION", "ORGANIZER", "ATTENDEE", "CATEGORIES", "CREATED",
        "LAST-MODIFIED", "DTSTAMP",
    }
)  # fmt: skip
"""VEVENT properties read by the light parser below (icalendar's per-line cost is ~40 us,
and ATTENDEE lines dominate meeting exports).  Every other property (DESCRIPTION, X-*, ...)
and nested components (VALARM) are dropped before parsing."""

_CRITICAL_PROPERTIES = frozenset(
    {"UID", "DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"}
)


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _source_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _read_bytes(path: Path, source_file: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CalendarFileError(source_file, f"file too large ({size} bytes, limit {MAX_FILE_BYTES})")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise CalendarFileError(source_file, f"cannot read file ({err.strerror or err})") from err
    if len(data) > MAX_FILE_BYTES:
        raise CalendarFileError(source_file, f"file too large (over {MAX_FILE_BYTES} bytes)")
    return data


def _decode(data: bytes, source_file: str) -> str:
    """Unfold (at byte level, so folds inside a UTF-8 sequence heal) and decode strictly."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    unfolded = _FOLD.sub(b"", data)
    try:
        return unfolded.decode("utf-8")
    except UnicodeDecodeError as err:
        line_number = len(_BYTE_LINE_BREAK.findall(unfolded, 0, err.start)) + 1
        bad = unfolded[err.start : err.start + 1].hex()
        raise CalendarFileError(source_file, f"not valid UTF-8: byte 0x{bad}", line_number) from err


def _file_line(data: bytes, content_line: int) -> int:
    """The line of the file where unfolded content line ``content_line`` starts.

    Parsing numbers content lines after unfolding (RFC 5545 3.1: a line break followed by a
    space or tab continues the line); a person opens the file in an editor, which counts every
    line. Only computed for an error.
    """
    content, physical = 1, 1
    for match in _BYTE_LINE_BREAK.finditer(data):
        if content >= content_line:
            break
        physical += 1
        if match.group().endswith(b"\n") and data[match.end() : match.end() + 1] in (b" ", b"\t"):
            continue  # a folded continuation of the same content line
        content += 1
    return physical


class _EventBlock(NamedTuple):
    line_number: int
    lines: list[str]  # BEGIN/END and _TIME_PROPERTIES lines, for icalendar
    text_lines: list[tuple[str, str, int]]  # (NAME, line, end of name) of _TEXT_PROPERTIES


@dataclass
class _Blocks:
    timezones: list[list[str]] = field(default_factory=list)
    events: list[_EventBlock] = field(default_factory=list)


def _split_blocks(text: str, source_file: str) -> _Blocks:
    """Check the BEGIN/END structure and cut out VTIMEZONE and (filtered) VEVENT blocks."""
    blocks = _Blocks()
    stack: list[str] = []
    current: list[str] | None = None  # lines of the open VTIMEZONE / VEVENT
    text_lines: list[tuple[str, str, int]] = []
    in_event = False
    seen_calendar = False
    last_line = 0
    first_line: int | None = None  # the first content line, when it is not BEGIN:VCALENDAR
    for line_number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if not line.strip():
            continue
        last_line = line_number
        match = _NAME.match(line)
        end = match.end() if match else 0
        is_content = match is not None and ":" in line[end:] and line[end] in ":;"
        name = line[:end].upper() if is_content else ""
        if name in ("BEGIN", "END") and line[end] == ":":
            value = line[end + 1 :].strip().upper()
            if name == "BEGIN":
                if not stack and value != "VCALENDAR":
                    if seen_calendar:
                        raise CalendarFileError(
                            source_file, f"malformed: BEGIN:{value} outside VCALENDAR", line_number
                        )
                    first_line = line_number
                    break  # reported below as not iCalendar
                seen_calendar = True
                stack.append(value)
                if len(stack) == 2 and value in ("VEVENT", "VTIMEZONE"):
                    current = [line]
                    in_event = value == "VEVENT"
                    if in_event:
                        text_lines = []
                        blocks.events.append(_EventBlock(line_number, current, text_lines))
                    else:
                        blocks.timezones.append(current)
                elif current is not None and not in_event:
                    current.append(line)  # STANDARD / DAYLIGHT inside VTIMEZONE
                continue
            if not stack or stack[-1] != value:
                opened = f"BEGIN:{stack[-1]}" if stack else "no open component"
                raise CalendarFileError(
                    source_file, f"malformed: END:{value} does not close {opened}", line_number
                )
            stack.pop()
            if current is not None and (len(stack) == 1 or not in_event):
                current.append(line)
            if len(stack) == 1:
                current, in_event = None, False
            continue
        if not stack:
            if not seen_calendar:
                first_line = line_number
                break
            continue  # trailing text after END:VCALENDAR
        if in_event:
            if len(stack) == 2:
                if name in _TIME_PROPERTIES:
                    current.append(line)  # type: ignore[union-attr]
                elif name in _TEXT_PROPERTIES:
                    text_lines.append((name, line, end))
            continue  # nested VALARM, unneeded properties, stray non-content lines
        if current is None and len(stack) > 1:
            continue  # VTODO, VJOURNAL, ...: ignored, stray lines included
        if not is_content:
            raise CalendarFileError(source_file, "malformed: not an iCalendar content line", line_number)
        if current is not None:
            current.append(line)
    if not seen_calendar:
        if not text.strip():
            raise CalendarFileError(source_file, "empty file")
        raise CalendarFileError(source_file, "not an iCalendar file (no BEGIN:VCALENDAR)", first_line)
    if stack:
        raise CalendarFileError(
            source_file, f"truncated: file ends inside BEGIN:{stack[-1]} without END:VCALENDAR", last_line
        )
    return blocks


def _register_timezones(blocks: list[list[str]]) -> None:
    """Make this file's VTIMEZONEs (and only these) the custom zones icalendar resolves."""
    icalendar.use_zoneinfo()  # resets icalendar's process-wide cache of custom VTIMEZONEs
    for lines in blocks:
        # A broken VTIMEZONE is left out: its TZID then shows up as unknown_tzid.
        with contextlib.suppress(Exception):
            Timezone.from_ical("\r\n".join(lines))  # parsing END:VTIMEZONE caches the zone


# --------------------------------------------------------------------------- event values


def _naive_utc(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value  # floating: UTC
        return value.astimezone(UTC).replace(tzinfo=None)
    return datetime(value.year, value.month, value.day)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def _email(value: str) -> str | None:
    text = value.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return text.strip().lower() or None


def _param(prop: Any, name: str) -> str | None:
    """A parameter of a property parsed by icalendar."""
    value = getattr(prop, "params", {}).get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


_PARAM = re.compile(r';([A-Za-z0-9-]+)=("[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*')
_CARET = re.compile(r"\^([n^'])")  # RFC 6868 parameter value encoding
_CARET_VALUES = {"n": "\n", "^": "^", "'": '"'}
_ESCAPED = re.compile(r"\\([\\;,nN])")
_CATEGORY = re.compile(r"(?:\\.|[^\\,])+")
_STAMP = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})Z?)?")


def _split_content_line(line: str, name_end: int) -> tuple[dict[str, str], str]:
    """Parameters (first value of each, unquoted) and raw value of a content line."""
    params: dict[str, str] = {}
    position = name_end
    while line.startswith(";", position):
        match = _PARAM.match(line, position)
        if match is None:
            break  # malformed parameter: the value starts after the next colon
        value = match.group(2)
        if value.startswith('"'):
            value = value[1:-1]
        if "^" in value:
            value = _CARET.sub(lambda m: _CARET_VALUES[m.group(1)], value)
        params.setdefault(match.group(1).upper(), value)
        position = match.end()
    colon = line.find(":", position)
    return params, line[colon + 1 :] if colon >= 0 else ""


def _unescape(value: str) -> str:
    """RFC 5545 TEXT unescaping (``\\n``, ``\\,``, ``\\;``, ``\\\\``)."""
    if "\\" not in value:
        return value
    return _ESCAPED.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _stamp(params: dict[str, str], value: str) -> datetime | None:
    """CREATED / LAST-MODIFIED / DTSTAMP (UTC by RFC 5545) as naive UTC; unreadable: None."""
    match = _STAMP.fullmatch(value.strip())
    if match is None:
        return None
    try:
        moment = datetime(*(int(part) for part in match.groups() if part is not None))
    except ValueError:
        return None
    tzid = params.get("TZID")
    zone = tzp.timezone(tzid) if tzid and match.group(4) and not value.endswith("Z") else None
    return _naive_utc(moment.replace(tzinfo=zone)) if zone is not None else moment


class _TextValues(NamedTuple):
    status: str
    summary: str | None
    location: str | None
    organizer_email: str | None
    categories: str | None
    created_at: datetime | None
    last_modified_at: datetime | None
    dtstamp: datetime | None
    attendees: tuple[tuple[str, str, str, str | None], ...]


def _text_values(text_lines: list[tuple[str, str, int]]) -> _TextValues:
    """Values of the descriptive properties; the first of a repeated property wins."""
    texts: dict[str, str] = {}
    stamps: dict[str, datetime | None] = {}
    organizer: str | None = None
    categories: dict[str, str] = {}
    attendees: dict[str, tuple[str, str, str, str | None]] = {}
    for name, line, name_end in text_lines:
        params, value = _split_content_line(line, name_end)
        if name == "ATTENDEE":
            email = _email(value)
            if email is not None and email not in attendees:
                attendees[email] = (
                    email,
                    params.get("PARTSTAT", "").strip().upper() or "NEEDS-ACTION",
                    params.get("ROLE", "").strip().upper() or "REQ-PARTICIPANT",
                    params.get("CN") or None,
                )
        elif name == "CATEGORIES":
            for part in _CATEGORY.findall(value):
                category = _unescape(part).strip()
                if category and category.lower() not in categories:
                    categories[category.lower()] = category
        elif name == "ORGANIZER":
            if organizer is None:
                organizer = _email(value)
        elif name in ("CREATED", "LAST-MODIFIED", "DTSTAMP"):
            if name not in stamps:
                stamps[name] = _stamp(params, value)
        elif name not in texts:
            texts[name] = _unescape(value)
    return _TextValues(
        status=texts.get("STATUS", "").strip().upper() or "CONFIRMED",
        summary=texts.get("SUMMARY"),
        location=texts.get("LOCATION"),
        organizer_email=organizer,
        categories=",".join(categories.values()) or None,
        created_at=stamps.get("CREATED"),
        last_modified_at=stamps.get("LAST-MODIFIED"),
        dtstamp=stamps.get("DTSTAMP"),
        attendees=tuple(attendees.values()),
    )


def _sequence(component: Event) -> int:
    value = _first(component.get("SEQUENCE"))
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _start_tzid(component: Event) -> str | None:
    prop = component["DTSTART"]
    tzid = _param(prop, "TZID")
    if isinstance(prop.dt, datetime):
        if tzid:
            return tzid
        return "UTC" if prop.dt.tzinfo is not None else None
    return None


def _unknown_tzids(component: Event) -> list[str]:
    """TZIDs whose times icalendar could not localize (they came back naive)."""
    unknown: list[str] = []
    for name in ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE"):
        props = component.get(name)
        for prop in props if isinstance(props, list) else [props]:
            tzid = _param(prop, "TZID")
            if not tzid or tzid in unknown:
                continue
            values = [d.dt for d in getattr(prop, "dts", ())] or [getattr(prop, "dt", None)]
            for value in values:
                first = value[0] if isinstance(value, tuple) else value
                if isinstance(first, datetime) and first.tzinfo is None:
                    unknown.append(tzid)
                    break
    return unknown


class _EventInfo(NamedTuple):
    """Per-VEVENT values, computed once and shared by all its occurrences."""

    uid: str
    text: _TextValues
    sequence: int
    tzid: str | None
    is_all_day: bool

    @property
    def status(self) -> str:
        return self.text.status


def _event_info(component: Event, uid: str, text_lines: list[tuple[str, str, int]]) -> _EventInfo:
    return _EventInfo(
        uid=uid,
        text=_text_values(text_lines),
        sequence=_sequence(component),
        tzid=_start_tzid(component),
        is_all_day=not isinstance(component["DTSTART"].dt, datetime),
    )


# --------------------------------------------------------------------------- expansion


class _Adapter(EventAdapter):
    """A VEVENT adapter that carries the event's precomputed values."""

    def __init__(self, component: Event, info: _EventInfo) -> None:
        super().__init__(component)
        self.info = info

    @property
    def component(self) -> Event:
        return self._component

    def has_rules(self) -> bool:
        return "RRULE" in self._component or "RDATE" in self._component


class _Occurrence(Occurrence):
    """An occurrence that remembers its adapter and whether it is an override itself."""

    def __init__(self, adapter: _Adapter, start: Any, end: Any, sequence: int, *, is_override: bool) -> None:
        super().__init__(adapter, start, end, sequence)
        self.is_override = is_override

    @property
    def adapter(self) -> _Adapter:
        return self._adapter


class _Series(Series):
    def occurrence(self, adapter: _Adapter, start: Any = None, end: Any = None) -> _Occurrence:
        return _Occurrence(adapter, start, end, self.sequence, is_override=start is None)


_FIXED_STEPS = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}
_SUB_DAILY = frozenset({"SECONDLY", "MINUTELY", "HOURLY"})
_DENSE_FIRST_CHUNK = timedelta(hours=1)


def _rules(component: Event) -> list[Any]:
    rules = component.get("RRULE")
    if rules is None:
        return []
    return rules if isinstance(rules, list) else [rules]


def _rule_part(rule: Any, name: str) -> list[Any]:
    value = rule.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _freq(rule: Any) -> str:
    values = _rule_part(rule, "FREQ")
    return str(values[0]).upper() if values else ""


def _is_dense(rule: Any) -> bool:
    """More than one occurrence per day is possible (sub-daily or time-of-day expansion)."""
    if _freq(rule) in _SUB_DAILY:
        return True
    expansion = 1
    for part in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        expansion *= max(len(_rule_part(rule, part)), 1)
    return expansion > 1


def _comparable(moment: datetime, like: datetime) -> datetime:
    """``moment`` (aware UTC) in the same awareness as ``like`` (naive means UTC)."""
    return moment.replace(tzinfo=None) if like.tzinfo is None else moment


class _Skip(Exception):
    """A series that is skipped with a problem row."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


def _prepare_dense_master(master: _Adapter, window: ExpansionWindow) -> _Adapter:
    """Bound the rule steps a dense master needs before the window (re-base or skip)."""
    start = master.start
    if not isinstance(start, datetime):
        return master
    rules = _rules(master.component)
    lead_in = window.start - timedelta(hours=2)
    if len(rules) == 1 and not _rule_part(rules[0], "COUNT"):
        freq = _freq(rules[0])
        if freq in _FIXED_STEPS:
            interval = int((_rule_part(rules[0], "INTERVAL") or [1])[0]) or 1
            period = _FIXED_STEPS[freq] * interval
            target = _comparable(lead_in, start) - master.duration - 2 * period
            periods = (target - start) // period if target > start else 0
            if periods > 1000:
                # Same grid, same BY* filters: the instances after the new start are unchanged
                # (the library adds the new start itself as an instance; it ends before the
                # window, so it is never returned).
                new_start = start + periods * period
                copy = master.component.copy()
                copy["DTSTART"] = vDDDTypes(new_start)
                if "DTEND" in copy:
                    copy["DTEND"] = vDDDTypes(new_start + master.duration)
                return _Adapter(copy, master.info)
    limit = _comparable(lead_in, start) - master.duration
    for rule in master.rrules:
        try:
            iterator = iter(rrulestr(rule, dtstart=start))
        except (ValueError, TypeError):
            # e.g. UNTIL in UTC with a floating DTSTART; without UNTIL the count is an upper
            # bound.  A rule that still cannot be read is reported by the library.
            without_until = ";".join(p for p in rule.split(";") if not p.startswith("UNTIL="))
            try:
                iterator = iter(rrulestr(without_until, dtstart=start))
            except (ValueError, TypeError):
                continue
        for steps, moment in enumerate(iterator, start=1):
            if moment >= limit:
                break
            if steps > MAX_DENSE_ITERATIONS:
                raise _Skip(
                    RULE_RECURRENCE_TRUNCATED,
                    f"rule {rule} needs more than {MAX_DENSE_ITERATIONS} occurrences before "
                    "the window; series skipped",
                )
    return master


def _expand(
    series: _Series, window: ExpansionWindow, cap: int, dense: bool
) -> tuple[list[_Occurrence], bool]:
    """Occurrences overlapping the window, sorted by start, at most ``cap`` (+ truncated flag).

    Dense series are expanded in chunks from the window start that grow while they stay
    small, and expansion stops as soon as the cap is exceeded.
    """
    step = _DENSE_FIRST_CHUNK if dense else window.end - window.start
    seen: set[tuple[int, datetime]] = set()
    kept: list[tuple[datetime, _Occurrence]] = []
    chunk_start = window.start
    while chunk_start < window.end and len(kept) <= cap:
        chunk_end = window.end if step >= window.end - chunk_start else chunk_start + step
        batch: list[tuple[datetime, _Occurrence]] = []
        for occurrence in series.between(chunk_start, chunk_end):
            key = (id(occurrence.adapter), _naive_utc(occurrence.start))
            if key not in seen:
                seen.add(key)
                batch.append((key[1], occurrence))
        batch.sort(key=lambda item: item[0])
        kept.extend(batch)
        chunk_start = chunk_end
        if len(batch) * 4 < cap:
            step *= 2
    return [occurrence for _, occurrence in kept[:cap]], len(kept) > cap


# --------------------------------------------------------------------------- file parser


class _FileParser:
    def __init__(self, result: ParsedCalendarFile, window: ExpansionWindow, max_occurrences: int) -> None:
        self.result = result
        self.window = ExpansionWindow(window.start.astimezone(UTC), window.end.astimezone(UTC))
        self.cap = max_occurrences

    def problem(self, uid: str | None, rule: str, detail: str) -> None:
        self.result.problems.append((self.result.source_file, uid, rule, _one_line(detail)))

    def parse_events(self, blocks: list[_EventBlock]) -> dict[str, list[_Adapter]]:
        """Parse each VEVENT on its own; group the usable ones by UID (file order)."""
        series: dict[str, list[_Adapter]] = {}
        for block in blocks:
            adapter = self.parse_event(block)
            if adapter is not None:
                series.setdefault(adapter.info.uid, []).append(adapter)
        return series

    def parse_event(self, block: _EventBlock) -> _Adapter | None:
        where = f"VEVENT at content line {block.line_number}"
        try:
            component = Event.from_ical("\r\n".join(block.lines))
        except Exception as err:  # icalendar raises assorted errors on broken input
            self.problem(_raw_uid(block.lines), RULE_INVALID_EVENT, f"{where}: {err}")
            return None
        uid = str(_first(component.get("UID", ""))).strip()
        if not uid:
            self.problem(None, RULE_MISSING_UID, f"{where} has no UID; skipped")
            return None
        broken = [f"{name}: {error}" for name, error in component.errors if name in _CRITICAL_PROPERTIES]
        if broken:
            self.problem(uid, RULE_INVALID_EVENT, f"{where}: {'; '.join(broken)}")
            return None
        if "DTSTART" not in component:
            self.problem(uid, RULE_MISSING_DTSTART, f"{where} has no DTSTART; skipped")
            return None
        if "SEQUENCE" in component and not isinstance(component["SEQUENCE"], int):
            del component["SEQUENCE"]  # broken or repeated: the library compares it as an int
        impossible = _impossible_times(component)
        if impossible is not None:
            self.problem(uid, impossible[0], f"{where}: {impossible[1]}; skipped")
            return None
        try:
            info = _event_info(component, uid, block.text_lines)
            for tzid in _unknown_tzids(component):
                self.problem(
                    uid,
                    RULE_UNKNOWN_TZID,
                    f"{where}: TZID '{tzid}' is neither a VTIMEZONE of the file nor a known "
                    "time zone; its times are read as UTC",
                )
            return _Adapter(component, info)
        except Exception as err:
            self.problem(uid, RULE_INVALID_EVENT, f"{where}: {type(err).__name__}: {err}")
            return None

    def add_series(self, uid: str, adapters: list[_Adapter]) -> None:
        single = adapters[0]
        try:
            if (
                len(adapters) == 1
                and not single.is_modification()
                and not (single.has_rules() or "EXDATE" in single.component)
            ):  # fast path for the common one-off event
                if single.is_in_span(self.window.start, self.window.end):
                    self.add_occurrence(single, single.start, single.end, False, None, False)
                return
            self.expand_series(uid, adapters)
        except _Skip as skip:
            self.problem(uid, skip.rule, skip.detail)
        except Exception as err:  # a series the library cannot expand
            detail = f"series cannot be expanded: {type(err).__name__}: {err}"
            self.problem(uid, RULE_INVALID_EVENT, detail)

    def expand_series(self, uid: str, adapters: list[_Adapter]) -> None:
        dense = any(_is_dense(rule) for a in adapters for rule in _rules(a.component))
        if dense:
            adapters = [
                _prepare_dense_master(a, self.window) if a.has_rules() and not a.is_modification() else a
                for a in adapters
            ]
        series = _Series(adapters)
        core: _Adapter | None = series.recurrence.core if series.recurrence.has_core else None
        recurring = any(a.is_modification() for a in adapters) or bool(core and core.has_rules())
        master_cancelled = core is not None and core.info.status == "CANCELLED"
        occurrences, truncated = _expand(series, self.window, self.cap, dense)
        rows_before = len(self.result.occurrences), len(self.result.attendees)
        try:
            for occurrence in occurrences:
                adapter = occurrence.adapter
                if not recurring:
                    recurrence_id = None
                elif occurrence.is_override:
                    recurrence_id = adapter.recurrence_ids[0]
                elif adapter.is_modification():  # instance moved by a RANGE=THISANDFUTURE
                    recurrence_id = _naive_utc(occurrence.start - adapter.move_recurrences_by)
                else:
                    recurrence_id = _naive_utc(occurrence.start)
                self.add_occurrence(
                    adapter,
                    occurrence.start,
                    occurrence.end,
                    recurring,
                    recurrence_id,
                    master_cancelled,
                )
        except Exception:
            del self.result.occurrences[rows_before[0] :]
            del self.result.attendees[rows_before[1] :]
            raise
        if truncated:
            last = _naive_utc(occurrences[-1].start) if occurrences else None
            self.problem(
                uid,
                RULE_RECURRENCE_TRUNCATED,
                f"series has more than {self.cap} occurrences in the window; kept the first "
                f"{self.cap} (up to {last})",
            )

    def add_occurrence(
        self,
        adapter: _Adapter,
        start: date | datetime,
        end: date | datetime,
        recurring: bool,
        recurrence_id: datetime | None,
        cancelled: bool,
    ) -> None:
        info = adapter.info
        text = info.text
        source_file = self.result.source_file
        start_utc = _naive_utc(start)
        self.result.occurrences.append(
            (
                source_file,
                self.result.mailbox,
                info.uid,
                start_utc,
                _naive_utc(end),
                info.is_all_day,
                recurring,
                recurrence_id,
                "CANCELLED" if cancelled else text.status,
                text.summary,
                text.location,
                text.organizer_email,
                text.categories,
                text.created_at,
                text.last_modified_at,
                text.dtstamp,
                info.sequence,
                info.tzid,
            )
        )
        self.result.attendees.extend(
            (source_file, info.uid, start_utc, email, partstat, role, common_name)
            for email, partstat, role, common_name in text.attendees
        )


def _impossible_times(component: Event) -> tuple[str, str] | None:
    """(rule, detail) when the event starts outside MIN_YEAR..MAX_YEAR or ends before it starts.

    The library would silently swap a DTEND that lies before DTSTART (moving the meeting) and
    silently drop a far-out date, so both are reported and the event skipped instead.
    """
    start = component["DTSTART"].dt
    if not MIN_YEAR <= start.year <= MAX_YEAR:
        return RULE_DATE_OUT_OF_RANGE, f"DTSTART {start.isoformat()} is outside {MIN_YEAR}-{MAX_YEAR}"
    if "DTEND" in component:
        end = component["DTEND"].dt
        if _comparable_moment(end) < _comparable_moment(start):
            return RULE_END_BEFORE_START, f"DTEND {end.isoformat()} is before DTSTART {start.isoformat()}"
    elif "DURATION" in component:
        duration = component["DURATION"].dt
        if isinstance(duration, timedelta) and duration < timedelta(0):
            return RULE_END_BEFORE_START, f"DURATION {duration} is negative"
    return None


def _comparable_moment(value: date | datetime) -> datetime:
    """A naive UTC datetime for ordering DTSTART and DTEND (dates at midnight)."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)  # noqa: DTZ001 - naive, like the rows
    if value.tzinfo is None:
        return value
    with contextlib.suppress(Exception):  # an unknown zone object: its wall-clock time
        return value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(tzinfo=None)


def _raw_uid(lines: list[str]) -> str | None:
    """The UID of an event icalendar could not parse, read with the light parser."""
    for line in lines:
        match = _NAME.match(line)
        if match and match.group().upper() == "UID":
            return _unescape(_split_content_line(line, match.end())[1]).strip() or None
    return None


# --------------------------------------------------------------------------- public API


def parse_calendar_file(
    path: Path,
    root: Path,
    window: ExpansionWindow,
    max_occurrences_per_series: int = 1000,
) -> ParsedCalendarFile:
    """Parse one mailbox ``.ics`` file into rows; raise :class:`CalendarFileError` if unusable."""
    if max_occurrences_per_series < 1:
        raise ValueError("max_occurrences_per_series must be at least 1")
    source_file = _source_name(path, root)
    data = _read_bytes(path, source_file)
    try:
        blocks = _split_blocks(_decode(data, source_file), source_file)
    except CalendarFileError as err:
        if err.line is None:
            raise
        # Content lines are numbered after unfolding: report the file's own line.
        raise CalendarFileError(source_file, err.problem, _file_line(data, err.line)) from None
    result = ParsedCalendarFile(source_file=source_file, mailbox=mailbox_of(source_file))
    _register_timezones(blocks.timezones)
    parser = _FileParser(result, window, max_occurrences_per_series)
    for uid, adapters in parser.parse_events(blocks.events).items():
        parser.add_series(uid, adapters)
    return result


def _parse_or_error(
    path: Path, root: Path, window: ExpansionWindow, max_occurrences_per_series: int
) -> ParsedCalendarFile | CalendarFileError:
    try:
        return parse_calendar_file(path, root, window, max_occurrences_per_series)
    except CalendarFileError as err:
        return err
    except Exception as err:  # never let one file stop the others
        return CalendarFileError(_source_name(path, root), f"unexpected error: {type(err).__name__}: {err}")


def parse_calendar_files(
    paths: Sequence[Path],
    root: Path,
    window: ExpansionWindow,
    max_occurrences_per_series: int = 1000,
    workers: int = 1,
) -> Iterator[ParsedCalendarFile | CalendarFileError]:
    """Parse many files; errors are yielded (never raised) so one bad file stops nothing.

    ``workers == 1`` parses in order in this process.  ``workers > 1`` uses a process pool
    (``spawn`` start method, safe in threaded hosts) with at most ``2 * workers`` files in
    flight and yields results as they complete, in completion order.
    """
    if max_occurrences_per_series < 1:
        raise ValueError("max_occurrences_per_series must be at least 1")
    if workers <= 1:
        for path in paths:
            yield _parse_or_error(path, root, window, max_occurrences_per_series)
        return
    yield from _parse_in_pool(list(paths), root, window, max_occurrences_per_series, workers)


def _parse_in_pool(
    paths: list[Path],
    root: Path,
    window: ExpansionWindow,
    max_occurrences_per_series: int,
    workers: int,
) -> Iterator[ParsedCalendarFile | CalendarFileError]:
    """Bounded submission (``2 * workers`` in flight), results in completion order.

    If a worker process dies (e.g. killed for memory), the pool is rebuilt and the files
    that were in flight are parsed once more; a file caught in a second crash is yielded as
    a :class:`CalendarFileError`.
    """
    context = multiprocessing.get_context("spawn")
    pending = deque(paths)
    crashed: set[Path] = set()
    while pending:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        in_flight: dict[Future, Path] = {}
        broken = False
        try:
            while in_flight or (pending and not broken):
                while not broken and pending and len(in_flight) < 2 * workers:
                    path = pending.popleft()
                    future = pool.submit(_parse_or_error, path, root, window, max_occurrences_per_series)
                    in_flight[future] = path
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    path = in_flight.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        if path in crashed:
                            result = CalendarFileError(
                                _source_name(path, root), "worker process crashed while parsing"
                            )
                        else:
                            crashed.add(path)
                            pending.appendleft(path)
                            continue
                    except Exception as err:  # e.g. a result that cannot be unpickled
                        result = CalendarFileError(
                            _source_name(path, root), f"worker failed: {type(err).__name__}: {err}"
                        )
                    yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
