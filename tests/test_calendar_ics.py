"""Tests for the ICS calendar reader (real iCalendar text written into tmp_path)."""

from __future__ import annotations

import pickle
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion import calendar_ics
from ingestion.calendar_ics import (
    ATTENDEE_COLUMNS,
    OCCURRENCE_COLUMNS,
    PROBLEM_COLUMNS,
    CalendarFileError,
    ExpansionWindow,
    ParsedCalendarFile,
    parse_calendar_file,
    parse_calendar_files,
)

WINDOW = ExpansionWindow(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))

NEW_YORK = """BEGIN:VTIMEZONE
TZID:America/New_York
BEGIN:DAYLIGHT
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
TZNAME:EDT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
TZNAME:EST
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
END:STANDARD
END:VTIMEZONE
"""


def calendar(*components: str) -> str:
    body = "".join(component.strip("\n") + "\n" for component in components)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//salesops//test//EN\n{body}END:VCALENDAR\n"
    return text.replace("\n", "\r\n")


def event(uid: str, *lines: str) -> str:
    return "\n".join(["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20240101T000000Z", *lines, "END:VEVENT"])


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def parse(
    tmp_path: Path,
    *components: str,
    name: str = "jane.doe@acme.example.ics",
    window: ExpansionWindow = WINDOW,
    cap: int = 1000,
) -> ParsedCalendarFile:
    path = write(tmp_path, name, calendar(*components))
    return parse_calendar_file(path, tmp_path, window, max_occurrences_per_series=cap)


def occurrences(parsed: ParsedCalendarFile) -> list[dict]:
    return [dict(zip(OCCURRENCE_COLUMNS, row, strict=True)) for row in parsed.occurrences]


def attendees(parsed: ParsedCalendarFile) -> list[dict]:
    return [dict(zip(ATTENDEE_COLUMNS, row, strict=True)) for row in parsed.attendees]


def pick(parsed: ParsedCalendarFile, *columns: str) -> list[tuple]:
    return [tuple(row[column] for column in columns) for row in occurrences(parsed)]


def starts(parsed: ParsedCalendarFile, uid: str | None = None) -> list[datetime]:
    return [r["occurrence_start"] for r in occurrences(parsed) if uid in (None, r["uid"])]


def dt(*parts: int) -> datetime:
    return datetime(*parts)  # noqa: DTZ001 - naive UTC, as the rows carry it


# --------------------------------------------------------------------------- columns


def test_columns_and_full_single_row(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "one@x",
            "DTSTART:20240105T100000Z",
            "DTEND:20240105T110000Z",
            "SUMMARY:Discovery call\\, ACME",
            "LOCATION:Room 1",
            "STATUS:tentative",
            "CREATED:20231201T080000Z",
            "LAST-MODIFIED:20231202T090000Z",
            "SEQUENCE:2",
            "ORGANIZER;CN=Jane:MAILTO:Jane.Doe@Acme.Example",
            "DESCRIPTION:ignored",
            "X-MICROSOFT-CDO-BUSYSTATUS:BUSY",
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "TRIGGER:-PT15M",
            "END:VALARM",
        ),
        "BEGIN:VTODO\nUID:todo@x\nDTSTART:20240105T100000Z\nSUMMARY:ignored\nEND:VTODO",
    )
    assert OCCURRENCE_COLUMNS == (
        "source_file", "mailbox", "uid", "occurrence_start", "occurrence_end", "is_all_day",
        "is_recurring", "recurrence_id", "status", "summary", "location", "organizer_email",
        "categories", "created_at", "last_modified_at", "dtstamp", "sequence", "tzid",
    )  # fmt: skip
    assert ATTENDEE_COLUMNS == (
        "source_file", "uid", "occurrence_start", "email", "partstat", "role", "common_name",
    )  # fmt: skip
    assert PROBLEM_COLUMNS == ("source_file", "uid", "rule", "detail")
    assert parsed.source_file == "jane.doe@acme.example.ics"
    assert parsed.mailbox == "jane.doe@acme.example"
    assert parsed.occurrences == [
        (
            "jane.doe@acme.example.ics", "jane.doe@acme.example", "one@x",
            dt(2024, 1, 5, 10), dt(2024, 1, 5, 11), False, False, None, "TENTATIVE",
            "Discovery call, ACME", "Room 1", "jane.doe@acme.example", None,
            dt(2023, 12, 1, 8), dt(2023, 12, 2, 9), dt(2024, 1, 1), 2, "UTC",
        )
    ]  # fmt: skip
    assert parsed.attendees == []
    assert parsed.problems == []


def test_source_file_is_relative_posix_path(tmp_path: Path) -> None:
    path = write(tmp_path, "team/bob@acme.example.ics", calendar(event("a", "DTSTART:20240105T100000Z")))
    parsed = parse_calendar_file(path, tmp_path, WINDOW)
    assert (parsed.source_file, parsed.mailbox) == ("team/bob@acme.example.ics", "bob@acme.example")
    assert parsed.occurrences[0][:2] == ("team/bob@acme.example.ics", "bob@acme.example")


# --------------------------------------------------------------------------- recurrence


def test_weekly_rrule_with_count(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event("w@x", "DTSTART:20240101T090000Z", "DTEND:20240101T093000Z", "RRULE:FREQ=WEEKLY;COUNT=3"),
    )
    rows = occurrences(parsed)
    assert [(r["occurrence_start"], r["occurrence_end"], r["recurrence_id"]) for r in rows] == [
        (dt(2024, 1, 1, 9), dt(2024, 1, 1, 9, 30), dt(2024, 1, 1, 9)),
        (dt(2024, 1, 8, 9), dt(2024, 1, 8, 9, 30), dt(2024, 1, 8, 9)),
        (dt(2024, 1, 15, 9), dt(2024, 1, 15, 9, 30), dt(2024, 1, 15, 9)),
    ]
    assert {(r["is_recurring"], r["status"], r["tzid"]) for r in rows} == {(True, "CONFIRMED", "UTC")}


def test_weekly_rrule_with_until_is_inclusive(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "u@x",
            "DTSTART:20240102T100000Z",
            "DURATION:PT1H",
            "RRULE:FREQ=WEEKLY;UNTIL=20240116T100000Z",
        ),
    )
    assert starts(parsed) == [dt(2024, 1, 2, 10), dt(2024, 1, 9, 10), dt(2024, 1, 16, 10)]


def test_exdate_omits_instance(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "ex@x",
            "DTSTART:20240101T090000Z",
            "DTEND:20240101T100000Z",
            "RRULE:FREQ=WEEKLY;COUNT=4",
            "EXDATE:20240108T090000Z,20240122T090000Z",
        ),
    )
    assert starts(parsed) == [dt(2024, 1, 1, 9), dt(2024, 1, 15, 9)]


def test_rdate_adds_instance(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "rd@x",
            "DTSTART:20240101T090000Z",
            "DTEND:20240101T100000Z",
            "RRULE:FREQ=WEEKLY;COUNT=2",
            "RDATE:20240103T150000Z",
        ),
    )
    rows = occurrences(parsed)
    assert [(r["occurrence_start"], r["occurrence_end"], r["recurrence_id"]) for r in rows] == [
        (dt(2024, 1, 1, 9), dt(2024, 1, 1, 10), dt(2024, 1, 1, 9)),
        (dt(2024, 1, 3, 15), dt(2024, 1, 3, 16), dt(2024, 1, 3, 15)),
        (dt(2024, 1, 8, 9), dt(2024, 1, 8, 10), dt(2024, 1, 8, 9)),
    ]


def test_override_moves_instance_and_replaces_attendees(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "mv@x",
            "DTSTART:20240101T090000Z",
            "DTEND:20240101T100000Z",
            "RRULE:FREQ=WEEKLY;COUNT=3",
            "SUMMARY:Pipeline review",
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@acme.example",
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:b@acme.example",
        ),
        event(
            "mv@x",
            "RECURRENCE-ID:20240108T090000Z",
            "DTSTART:20240109T140000Z",
            "DTEND:20240109T150000Z",
            "SEQUENCE:1",
            "SUMMARY:Pipeline review (moved)",
            "ATTENDEE;PARTSTAT=TENTATIVE:mailto:c@acme.example",
        ),
    )
    rows = occurrences(parsed)
    assert [
        (r["occurrence_start"], r["occurrence_end"], r["recurrence_id"], r["summary"], r["sequence"])
        for r in rows
    ] == [
        (dt(2024, 1, 1, 9), dt(2024, 1, 1, 10), dt(2024, 1, 1, 9), "Pipeline review", 0),
        (dt(2024, 1, 9, 14), dt(2024, 1, 9, 15), dt(2024, 1, 8, 9), "Pipeline review (moved)", 1),
        (dt(2024, 1, 15, 9), dt(2024, 1, 15, 10), dt(2024, 1, 15, 9), "Pipeline review", 0),
    ]
    assert all(r["is_recurring"] for r in rows)
    assert [(a["occurrence_start"], a["email"], a["partstat"]) for a in attendees(parsed)] == [
        (dt(2024, 1, 1, 9), "a@acme.example", "ACCEPTED"),
        (dt(2024, 1, 1, 9), "b@acme.example", "ACCEPTED"),
        (dt(2024, 1, 9, 14), "c@acme.example", "TENTATIVE"),
        (dt(2024, 1, 15, 9), "a@acme.example", "ACCEPTED"),
        (dt(2024, 1, 15, 9), "b@acme.example", "ACCEPTED"),
    ]


def test_override_moved_into_window_from_outside(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event("in@x", "DTSTART:20231218T090000Z", "DTEND:20231218T100000Z", "RRULE:FREQ=WEEKLY;COUNT=3"),
        event(
            "in@x",
            "RECURRENCE-ID:20231225T090000Z",
            "DTSTART:20240102T090000Z",
            "DTEND:20240102T100000Z",
        ),
    )
    assert pick(parsed, "occurrence_start", "recurrence_id") == [
        (dt(2024, 1, 1, 9), dt(2024, 1, 1, 9)),
        (dt(2024, 1, 2, 9), dt(2023, 12, 25, 9)),
    ]


def test_cancelled_override_is_kept_as_cancelled(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event("co@x", "DTSTART:20240101T090000Z", "DTEND:20240101T100000Z", "RRULE:FREQ=WEEKLY;COUNT=3"),
        event(
            "co@x",
            "RECURRENCE-ID:20240108T090000Z",
            "DTSTART:20240108T090000Z",
            "DTEND:20240108T100000Z",
            "STATUS:CANCELLED",
        ),
    )
    assert pick(parsed, "occurrence_start", "status") == [
        (dt(2024, 1, 1, 9), "CONFIRMED"),
        (dt(2024, 1, 8, 9), "CANCELLED"),
        (dt(2024, 1, 15, 9), "CONFIRMED"),
    ]


def test_cancelled_master_cancels_every_instance(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "cm@x",
            "DTSTART:20240101T090000Z",
            "DTEND:20240101T100000Z",
            "RRULE:FREQ=WEEKLY;COUNT=3",
            "STATUS:CANCELLED",
        ),
        event(
            "cm@x",
            "RECURRENCE-ID:20240108T090000Z",
            "DTSTART:20240108T110000Z",
            "DTEND:20240108T120000Z",
            "STATUS:CONFIRMED",
        ),
    )
    assert pick(parsed, "occurrence_start", "status") == [
        (dt(2024, 1, 1, 9), "CANCELLED"),
        (dt(2024, 1, 8, 11), "CANCELLED"),
        (dt(2024, 1, 15, 9), "CANCELLED"),
    ]


def test_orphan_override_without_master(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "orph@x",
            "RECURRENCE-ID:20240110T090000Z",
            "DTSTART:20240110T100000Z",
            "DTEND:20240110T110000Z",
        ),
    )
    assert pick(parsed, "occurrence_start", "is_recurring", "recurrence_id") == [
        (dt(2024, 1, 10, 10), True, dt(2024, 1, 10, 9))
    ]


def test_window_bounds(tmp_path: Path) -> None:
    window = ExpansionWindow(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 8, tzinfo=UTC))
    parsed = parse(
        tmp_path,
        event("before@x", "DTSTART:20240229T090000Z", "DTEND:20240229T100000Z"),
        event("overlap@x", "DTSTART:20240229T230000Z", "DTEND:20240301T010000Z"),
        event("after@x", "DTSTART:20240308T000000Z", "DTEND:20240308T010000Z"),
        event("series@x", "DTSTART:20240201T090000Z", "DTEND:20240201T100000Z", "RRULE:FREQ=DAILY"),
        window=window,
    )
    assert starts(parsed, "before@x") == []
    assert starts(parsed, "after@x") == []
    assert starts(parsed, "overlap@x") == [dt(2024, 2, 29, 23)]
    assert starts(parsed, "series@x") == [dt(2024, 3, day, 9) for day in range(1, 8)]


def test_infinite_rrule_is_bounded_by_window_and_cap(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event("inf@x", "DTSTART:20200101T090000Z", "DTEND:20200101T100000Z", "RRULE:FREQ=DAILY"),
        event("small@x", "DTSTART:20240101T090000Z", "RRULE:FREQ=WEEKLY;COUNT=2"),
        cap=5,
    )
    assert starts(parsed, "inf@x") == [dt(2024, 1, day, 9) for day in range(1, 6)]
    assert starts(parsed, "small@x") == [dt(2024, 1, 1, 9), dt(2024, 1, 8, 9)]
    assert len(parsed.problems) == 1
    source, uid, rule, detail = parsed.problems[0]
    assert (source, uid, rule) == ("jane.doe@acme.example.ics", "inf@x", "recurrence_truncated")
    assert "more than 5 occurrences" in detail


def test_dense_rule_far_before_window_is_rebased_not_iterated(tmp_path: Path) -> None:
    started = time.perf_counter()
    parsed = parse(
        tmp_path,
        event(
            "tick@x",
            "DTSTART;TZID=America/New_York:20000101T000000",
            "DURATION:PT30S",
            "RRULE:FREQ=SECONDLY;INTERVAL=30",
        ),
        event("min@x", "DTSTART:20000101T000000Z", "RRULE:FREQ=MINUTELY;INTERVAL=15;BYHOUR=9,10"),
        NEW_YORK,
        cap=4,
    )
    assert time.perf_counter() - started < 5
    assert starts(parsed, "tick@x") == [
        dt(2024, 1, 1, 0, 0, 0), dt(2024, 1, 1, 0, 0, 30), dt(2024, 1, 1, 0, 1), dt(2024, 1, 1, 0, 1, 30),
    ]  # fmt: skip
    assert starts(parsed, "min@x") == [
        dt(2024, 1, 1, 9, 0), dt(2024, 1, 1, 9, 15), dt(2024, 1, 1, 9, 30), dt(2024, 1, 1, 9, 45),
    ]  # fmt: skip
    assert [(p[1], p[2]) for p in parsed.problems] == [
        ("tick@x", "recurrence_truncated"),
        ("min@x", "recurrence_truncated"),
    ]


# --------------------------------------------------------------------------- all-day, duration


def test_all_day_single_and_multi_day(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event("d1@x", "DTSTART;VALUE=DATE:20240301", "DTEND;VALUE=DATE:20240302"),
        event("d0@x", "DTSTART;VALUE=DATE:20240305"),
        event("d3@x", "DTSTART;VALUE=DATE:20240310", "DTEND;VALUE=DATE:20240313"),
        event("dd@x", "DTSTART;VALUE=DATE:20240320", "DURATION:P2D"),
    )
    assert pick(parsed, "uid", "occurrence_start", "occurrence_end", "is_all_day", "tzid") == [
        ("d1@x", dt(2024, 3, 1), dt(2024, 3, 2), True, None),
        ("d0@x", dt(2024, 3, 5), dt(2024, 3, 6), True, None),
        ("d3@x", dt(2024, 3, 10), dt(2024, 3, 13), True, None),
        ("dd@x", dt(2024, 3, 20), dt(2024, 3, 22), True, None),
    ]


def test_all_day_recurring_with_exdate(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "ad@x",
            "DTSTART;VALUE=DATE:20240101",
            "RRULE:FREQ=DAILY;COUNT=3",
            "EXDATE;VALUE=DATE:20240102",
        ),
    )
    assert pick(parsed, "occurrence_start", "occurrence_end", "recurrence_id") == [
        (dt(2024, 1, 1), dt(2024, 1, 2), dt(2024, 1, 1)),
        (dt(2024, 1, 3), dt(2024, 1, 4), dt(2024, 1, 3)),
    ]


def test_duration_and_zero_length(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event("du@x", "DTSTART:20240401T100000Z", "DURATION:PT1H30M"),
        event("zero@x", "DTSTART:20240401T120000Z"),
    )
    assert pick(parsed, "occurrence_start", "occurrence_end") == [
        (dt(2024, 4, 1, 10), dt(2024, 4, 1, 11, 30)),
        (dt(2024, 4, 1, 12), dt(2024, 4, 1, 12)),
    ]


# --------------------------------------------------------------------------- time zones


def test_new_york_across_dst_changes(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        NEW_YORK,
        event(
            "ny@x",
            "DTSTART;TZID=America/New_York:20240302T090000",
            "DTEND;TZID=America/New_York:20240302T100000",
            "RRULE:FREQ=WEEKLY;COUNT=3",
        ),
        event(
            "nyfall@x",
            "DTSTART;TZID=America/New_York:20241026T090000",
            "DTEND;TZID=America/New_York:20241026T093000",
            "RRULE:FREQ=WEEKLY;UNTIL=20241109T235959Z",
            "EXDATE;TZID=America/New_York:20241109T090000",
        ),
    )
    rows = occurrences(parsed)
    assert [(r["occurrence_start"], r["occurrence_end"]) for r in rows if r["uid"] == "ny@x"] == [
        (dt(2024, 3, 2, 14), dt(2024, 3, 2, 15)),  # EST, UTC-5
        (dt(2024, 3, 9, 14), dt(2024, 3, 9, 15)),
        (dt(2024, 3, 16, 13), dt(2024, 3, 16, 14)),  # EDT, UTC-4
    ]
    assert starts(parsed, "nyfall@x") == [dt(2024, 10, 26, 13), dt(2024, 11, 2, 13)]
    assert {r["tzid"] for r in rows} == {"America/New_York"}
    assert parsed.problems == []


def test_tokyo_without_vtimezone_and_windows_zone_name(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event("tk@x", "DTSTART;TZID=Asia/Tokyo:20240601T090000", "DTEND;TZID=Asia/Tokyo:20240601T100000"),
        event(
            "win@x",
            "DTSTART;TZID=Eastern Standard Time:20240601T090000",
            "DTEND;TZID=Eastern Standard Time:20240601T100000",
        ),
    )
    assert pick(parsed, "uid", "occurrence_start", "occurrence_end", "tzid") == [
        ("tk@x", dt(2024, 6, 1, 0), dt(2024, 6, 1, 1), "Asia/Tokyo"),
        ("win@x", dt(2024, 6, 1, 13), dt(2024, 6, 1, 14), "Eastern Standard Time"),
    ]
    assert parsed.problems == []


def test_utc_and_floating_times(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event("z@x", "DTSTART:20240601T090000Z", "DTEND:20240601T100000Z"),
        event("fl@x", "DTSTART:20240601T090000", "DTEND:20240601T100000", "RRULE:FREQ=DAILY;COUNT=2"),
    )
    assert pick(parsed, "uid", "occurrence_start", "occurrence_end", "tzid") == [
        ("z@x", dt(2024, 6, 1, 9), dt(2024, 6, 1, 10), "UTC"),
        ("fl@x", dt(2024, 6, 1, 9), dt(2024, 6, 1, 10), None),
        ("fl@x", dt(2024, 6, 2, 9), dt(2024, 6, 2, 10), None),
    ]


def test_unknown_tzid_is_read_as_utc_and_reported(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "mars@x",
            "DTSTART;TZID=Mars/Olympus_Mons:20240601T090000",
            "DTEND;TZID=Mars/Olympus_Mons:20240601T100000",
        ),
    )
    assert pick(parsed, "occurrence_start", "occurrence_end", "tzid") == [
        (dt(2024, 6, 1, 9), dt(2024, 6, 1, 10), "Mars/Olympus_Mons")
    ]
    assert len(parsed.problems) == 1
    source, uid, rule, detail = parsed.problems[0]
    assert (source, uid, rule) == ("jane.doe@acme.example.ics", "mars@x", "unknown_tzid")
    assert "Mars/Olympus_Mons" in detail


def test_custom_vtimezone_is_private_to_its_file(tmp_path: Path) -> None:
    def custom_zone(offset: str) -> str:
        return (
            "BEGIN:VTIMEZONE\nTZID:Customized Time Zone\nBEGIN:STANDARD\nDTSTART:16010101T000000\n"
            f"TZOFFSETFROM:{offset}\nTZOFFSETTO:{offset}\nEND:STANDARD\nEND:VTIMEZONE"
        )

    meeting = event("c@x", "DTSTART;TZID=Customized Time Zone:20240601T090000")
    # the event comes before its VTIMEZONE (a forward reference)
    first = write(tmp_path, "a.ics", calendar(meeting, custom_zone("+0300")))
    second = write(tmp_path, "b.ics", calendar(custom_zone("-0500"), meeting))
    assert starts(parse_calendar_file(first, tmp_path, WINDOW)) == [dt(2024, 6, 1, 6)]
    assert starts(parse_calendar_file(second, tmp_path, WINDOW)) == [dt(2024, 6, 1, 14)]


# --------------------------------------------------------------------------- people, text


def test_organizer_and_attendees(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "ppl@x",
            "DTSTART:20240601T090000Z",
            "DTEND:20240601T100000Z",
            'ORGANIZER;CN="Doe, Jane":MAILTO:Jane.Doe@ACME.example',
            'ATTENDEE;CN="Roe: Rick";PARTSTAT=accepted;ROLE=CHAIR:mailto:Rick.Roe@Client.Example',
            "ATTENDEE;ROLE=OPT-PARTICIPANT;CN=Sam:MAILTO:sam@client.example",
            "ATTENDEE;PARTSTAT=DECLINED;CN=Dup:mailto:SAM@client.example",
            "ATTENDEE;CN=Room;CUTYPE=ROOM;PARTSTAT=NEEDS-ACTION:mailto:room-4@acme.example",
        ),
    )
    assert occurrences(parsed)[0]["organizer_email"] == "jane.doe@acme.example"
    assert parsed.attendees == [
        ("jane.doe@acme.example.ics", "ppl@x", dt(2024, 6, 1, 9), "rick.roe@client.example",
         "ACCEPTED", "CHAIR", "Roe: Rick"),
        ("jane.doe@acme.example.ics", "ppl@x", dt(2024, 6, 1, 9), "sam@client.example",
         "NEEDS-ACTION", "OPT-PARTICIPANT", "Sam"),
        ("jane.doe@acme.example.ics", "ppl@x", dt(2024, 6, 1, 9), "room-4@acme.example",
         "NEEDS-ACTION", "REQ-PARTICIPANT", "Room"),
    ]  # fmt: skip


def test_attendees_repeat_per_occurrence(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "rep@x",
            "DTSTART:20240601T090000Z",
            "RRULE:FREQ=DAILY;COUNT=2",
            "ATTENDEE:mailto:a@x.example",
        ),
    )
    assert [(a["occurrence_start"], a["email"], a["partstat"], a["role"], a["common_name"])
            for a in attendees(parsed)] == [
        (dt(2024, 6, 1, 9), "a@x.example", "NEEDS-ACTION", "REQ-PARTICIPANT", None),
        (dt(2024, 6, 2, 9), "a@x.example", "NEEDS-ACTION", "REQ-PARTICIPANT", None),
    ]  # fmt: skip


def test_categories_from_several_properties(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(
            "cat@x",
            "DTSTART:20240601T090000Z",
            "CATEGORIES:Sales,Customer Meeting",
            "CATEGORIES:customer meeting",
            "CATEGORIES;LANGUAGE=en:Demo",
        ),
        event("nocat@x", "DTSTART:20240601T090000Z"),
    )
    assert pick(parsed, "uid", "categories") == [
        ("cat@x", "Sales,Customer Meeting,Demo"),
        ("nocat@x", None),
    ]


def test_folded_lines_and_folds_inside_utf8_characters(tmp_path: Path) -> None:
    summary = "Kundentermin Müller GmbH".encode()
    cut = summary.index("ü".encode()) + 1  # fold between the two bytes of "ü"
    content = calendar(event("fold@x", "DTSTART:20240601T090000Z", "SUMMARY:PLACEHOLDER")).encode()
    content = content.replace(b"PLACEHOLDER", summary[:cut] + b"\r\n " + summary[cut:])
    content = content.replace(b"DTSTART:2024", b"DTSTART:20\r\n\t24")
    path = write(tmp_path, "fold.ics", b"\xef\xbb\xbf" + content)
    parsed = parse_calendar_file(path, tmp_path, WINDOW)
    assert pick(parsed, "occurrence_start", "summary") == [(dt(2024, 6, 1, 9), "Kundentermin Müller GmbH")]


# --------------------------------------------------------------------------- problems


def test_event_level_problems_skip_only_that_event(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        "BEGIN:VEVENT\nDTSTART:20240601T090000Z\nSUMMARY:no uid\nEND:VEVENT",
        event("nostart@x", "SUMMARY:no start"),
        event("badstart@x", "DTSTART:tomorrow"),
        event("badrule@x", "DTSTART:20240601T090000Z", "RRULE:FREQ=SOMETIMES"),
        event("ok@x", "DTSTART:20240601T090000Z", "CREATED:garbage", "SEQUENCE:x"),
    )
    assert pick(parsed, "uid", "created_at", "sequence") == [("ok@x", None, 0)]
    assert [(p[1], p[2]) for p in parsed.problems] == [
        (None, "missing_uid"),
        ("nostart@x", "missing_dtstart"),
        ("badstart@x", "invalid_event"),
        ("badrule@x", "invalid_event"),
    ]
    assert all("\n" not in p[3] for p in parsed.problems)
    assert "DTSTART" in parsed.problems[2][3]


def test_broken_sequence_does_not_break_the_series(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event("seq@x", "DTSTART:20240101T090000Z", "RRULE:FREQ=DAILY;COUNT=2", "SEQUENCE:x"),
        event("seq@x", "RECURRENCE-ID:20240102T090000Z", "DTSTART:20240102T100000Z", "SEQUENCE:3"),
    )
    assert pick(parsed, "occurrence_start", "recurrence_id", "sequence") == [
        (dt(2024, 1, 1, 9), dt(2024, 1, 1, 9), 0),
        (dt(2024, 1, 2, 10), dt(2024, 1, 2, 9), 3),
    ]
    assert parsed.problems == []


# --------------------------------------------------------------------------- file errors


@pytest.mark.parametrize(
    ("content", "problem", "line"),
    [
        (b"", "empty file", None),
        (b"  \r\n\r\n", "empty file", None),
        (b"hello, world\r\nthis is a spreadsheet\r\n", "not an iCalendar file (no BEGIN:VCALENDAR)", 1),
        (b"\r\nBEGIN:VCARD\r\nFN:Jane\r\nEND:VCARD\r\n", "not an iCalendar file (no BEGIN:VCALENDAR)", 2),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20240601T090000Z\r\nEND:VCALENDAR\r\n",
            "malformed: END:VCALENDAR does not close BEGIN:VEVENT",
            5,
        ),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20240601T090000Z\r\nEND:VTOOD\r\n"
            b"END:VCALENDAR\r\n",
            "malformed: END:VTOOD does not close BEGIN:VEVENT",
            5,
        ),
        (
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nthis line is garbage\r\nEND:VCALENDAR\r\n",
            "malformed: not an iCalendar content line",
            3,
        ),
        (
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VEVENT\r\n",
            "malformed: BEGIN:VEVENT outside VCALENDAR",
            4,
        ),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20240601T090000Z\r\nEND:VEVENT\r\n",
            "truncated: file ends inside BEGIN:VCALENDAR without END:VCALENDAR",
            5,
        ),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:caf\xe9\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            "not valid UTF-8: byte 0xe9",
            4,
        ),
        (b"\xff\xfeB\x00E\x00G\x00I\x00N\x00", "not valid UTF-8: byte 0xff", 1),
    ],
)
def test_unusable_files_raise_one_line_error(
    tmp_path: Path, content: bytes, problem: str, line: int | None
) -> None:
    path = write(tmp_path, "sub/bad.ics", content)
    with pytest.raises(CalendarFileError) as raised:
        parse_calendar_file(path, tmp_path, WINDOW)
    where = f" (line {line})" if line is not None else ""
    assert str(raised.value) == f"calendar file 'sub/bad.ics': {problem}{where}"
    assert (raised.value.source_file, raised.value.problem, raised.value.line) == (
        "sub/bad.ics",
        problem,
        line,
    )
    assert raised.value.mailbox == "bad"


def test_error_line_is_the_files_own_line_after_folded_lines(tmp_path: Path) -> None:
    """Content lines are numbered after unfolding; the error names the line an editor shows."""
    content = (
        b"BEGIN:VCALENDAR\r\n"  # 1
        b"BEGIN:VEVENT\r\n"  # 2
        b"UID:a\r\n"  # 3
        b"ATTENDEE;CN=Jane Doe;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=TR\r\n"  # 4
        b" UE:mailto:jane@acme.example\r\n"  # 5, folded: content line 4
        b"SUMMARY:Quarterly business review with the whole buying committee of the\n"  # 6 (LF only)
        b"\t account\r\n"  # 7, folded: content line 5
        b"DTSTART:20240601T090000Z\r\n"  # 8: content line 6
        b"END:VTOOD\r\n"  # 9: content line 7
        b"END:VCALENDAR\r\n"
    )
    path = write(tmp_path, "jane@acme.example.ics", content)
    with pytest.raises(CalendarFileError) as raised:
        parse_calendar_file(path, tmp_path, WINDOW)
    assert (raised.value.line, raised.value.mailbox) == (9, "jane@acme.example")
    assert str(raised.value).endswith("END:VTOOD does not close BEGIN:VEVENT (line 9)")


def test_invalid_utf8_line_counts_folded_lines(tmp_path: Path) -> None:
    content = (
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:one\r\n two\r\n three\r\n"
        b"LOCATION:Z\xfcrich\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    path = write(tmp_path, "b.ics", content)
    with pytest.raises(CalendarFileError) as raised:
        parse_calendar_file(path, tmp_path, WINDOW)
    assert (raised.value.problem, raised.value.line) == ("not valid UTF-8: byte 0xfc", 7)


def test_oversized_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calendar_ics, "MAX_FILE_BYTES", 100)
    path = write(tmp_path, "big.ics", calendar(event("a@x", "DTSTART:20240601T090000Z")))
    with pytest.raises(CalendarFileError, match=r"^calendar file 'big.ics': file too large"):
        parse_calendar_file(path, tmp_path, WINDOW)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CalendarFileError, match=r"^calendar file 'gone.ics': cannot read file"):
        parse_calendar_file(tmp_path / "gone.ics", tmp_path, WINDOW)


def test_error_pickles_for_worker_processes() -> None:
    error = CalendarFileError("x.ics", "not an iCalendar file (no BEGIN:VCALENDAR)", 3)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == "calendar file 'x.ics': not an iCalendar file (no BEGIN:VCALENDAR) (line 3)"
    assert (copy.source_file, copy.problem, copy.line) == ("x.ics", error.problem, 3)


def test_window_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ExpansionWindow(datetime(2024, 1, 1), datetime(2025, 1, 1, tzinfo=UTC))  # noqa: DTZ001


# --------------------------------------------------------------------------- many files


def test_parse_calendar_files_in_parallel_matches_serial(tmp_path: Path) -> None:
    paths = []
    for index in range(5):
        paths.append(
            write(
                tmp_path,
                f"rep{index}@acme.example.ics",
                calendar(
                    NEW_YORK,
                    event(
                        f"s{index}@x",
                        f"DTSTART;TZID=America/New_York:2024030{index + 1}T090000",
                        "DURATION:PT1H",
                        "RRULE:FREQ=WEEKLY;COUNT=4",
                        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:Rep{index}@Acme.example",
                    ),
                    event(f"u{index}@x", "DTSTART;TZID=Nowhere/Land:20240601T090000"),
                ),
            )
        )
    paths.insert(2, write(tmp_path, "broken.ics", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"))
    paths.insert(4, write(tmp_path, "latin1.ics", b"BEGIN:VCALENDAR\r\nSUMMARY:\xe9\r\n"))

    serial = list(parse_calendar_files(paths, tmp_path, WINDOW, workers=1))
    parallel = list(parse_calendar_files(paths, tmp_path, WINDOW, workers=2))

    def by_file(results: list) -> dict[str, object]:
        return {
            r.source_file: (r.occurrences, r.attendees, r.problems)
            if isinstance(r, ParsedCalendarFile)
            else str(r)
            for r in results
        }

    assert [r.source_file for r in serial] == [p.name for p in paths]
    assert len(parallel) == len(paths)
    assert by_file(parallel) == by_file(serial)
    errors = sorted(str(r) for r in parallel if isinstance(r, CalendarFileError))
    assert len(errors) == 2
    assert errors[0].startswith("calendar file 'broken.ics': truncated")
    assert errors[1].startswith("calendar file 'latin1.ics': not valid UTF-8")
    good = [r for r in serial if isinstance(r, ParsedCalendarFile)]
    assert [len(r.occurrences) for r in good] == [5, 5, 5, 5, 5]
    assert all(r.problems[0][2] == "unknown_tzid" for r in good)
