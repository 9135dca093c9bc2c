"""Salesforce Events as a calendar source, merged with the mailbox calendars (docs/metrics.md).

A tiny org written by hand: two reps, Alice (alice@acme.example) and Bob (bob@acme.example), two
leads, a contact, one opportunity, ten Events, and two mailbox files. The nightly job runs on it
once with the mailbox files and once with an empty calendar folder (an org without calendar
exports); rep_activity, lead_response_times, onboarding_progress and the quarantine are then
compared with values written out here. The org with mailboxes is also built on PostgreSQL.

2026-05-04, 05-11 and 05-18 are Mondays. Every rep is in UTC; the company domain is acme.example
(the users' email domain), so ann.lee@globex.example, peter@initech.example and
carl@stark.example are customers.

| Event | owner | Who | start (UTC) | what it tests |
| --- | --- | --- | --- | --- |
| EV1 | Alice | L1 Ann | 05-05 14:00-15:00 | M1 in Alice's mailbox, with Ann: counted once |
| EV2 | Alice | CT1 Carl | 05-13 16:00-16:30 | in no mailbox: a customer meeting of Alice |
| EV3 | Bob | none | 05-12 10:00-11:00 | M2 in Bob's mailbox starts then: the same meeting |
| EV4 | Bob | L2 Peter | 05-19 09:00, ends 08:00 | ends before it starts: quarantined, not counted |
| EV5 | Alice | L2 Peter | 05-05 14:00-14:45 | M1's start, but Peter is not in M1: another meeting |
| EV6 | Bob | L1 Ann | 05-06 09:00-10:00 | deleted |
| EV7 | Alice | none | 05-14 10:00-11:00 | in no mailbox, no Who: an internal meeting |
| EV8 | Bob | none | 05-18 09:00-10:00 | Type Training: a training session |
| EV9 | Alice | CT1 Carl | 05-15, all day | all-day: not a meeting |
| EV10 | Bob | L1 Ann | 05-12 10:00-10:30 | M2's start, but Ann is not in M2: another meeting |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest

from tests.conftest import execute_nightly, pipeline_env
from tests.crm_fixtures import create_crm, insert_rows
from tests.postgres import DbtInvocation
from tests.test_marts_handwritten import assert_rows, postgres_query_rows, query_rows

AS_OF = date(2026, 5, 20)
MODSTAMP = "2026-05-19T00:00:00Z"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def d(text: str) -> date:
    return date.fromisoformat(text)


# =============================================================================== the CRM, by hand

USER_COLUMNS = ("Id", "Name", "Email", "UserRoleId", "IsActive", "TimeZoneSidKey", "Hire_Date__c",
                "CreatedDate")  # fmt: skip
LEAD_COLUMNS = ("Id", "FirstName", "LastName", "Email", "Company", "LeadSource", "Status", "OwnerId",
                "IsConverted", "CreatedDate", "IsDeleted")  # fmt: skip
EVENT_COLUMNS = ("Id", "WhoId", "WhatId", "OwnerId", "Subject", "Type", "StartDateTime", "EndDateTime",
                 "IsAllDayEvent", "IsDeleted")  # fmt: skip
EVENTS = [
    ("EV1", "L1", None, "U1", "Globex intro", "Meeting", "2026-05-05T14:00:00Z", "2026-05-05T15:00:00Z",
     "false", "false"),
    ("EV2", "CT1", "O1", "U1", "Stark pilot review", "Meeting", "2026-05-13T16:00:00Z",
     "2026-05-13T16:30:00Z", "false", "false"),
    ("EV3", None, "A1", "U2", "Stark sync", "Meeting", "2026-05-12T10:00:00Z", "2026-05-12T11:00:00Z",
     "false", "false"),
    ("EV4", "L2", None, "U2", "Initech demo", "Meeting", "2026-05-19T09:00:00Z", "2026-05-19T08:00:00Z",
     "false", "false"),
    ("EV5", "L2", None, "U1", "Initech call", "Call", "2026-05-05T14:00:00Z", "2026-05-05T14:45:00Z",
     "false", "false"),
    ("EV6", "L1", None, "U2", "Globex follow-up", "Meeting", "2026-05-06T09:00:00Z", "2026-05-06T10:00:00Z",
     "false", "true"),
    ("EV7", None, None, "U1", "Account planning", "Meeting", "2026-05-14T10:00:00Z", "2026-05-14T11:00:00Z",
     "false", "false"),
    ("EV8", None, None, "U2", "Product training", "Training", "2026-05-18T09:00:00Z", "2026-05-18T10:00:00Z",
     "false", "false"),
    ("EV9", "CT1", None, "U1", "Stark offsite", "Meeting", "2026-05-15T00:00:00Z", "2026-05-16T00:00:00Z",
     "true", "false"),
    ("EV10", "L1", None, "U2", "Globex check-in", "Meeting", "2026-05-12T10:00:00Z", "2026-05-12T10:30:00Z",
     "false", "false"),
]  # fmt: skip

CRM: dict[str, list[dict[str, object]]] = {
    "userrole": [{"Id": "R1", "Name": "AE"}],
    "user": [
        dict(zip(USER_COLUMNS, row, strict=True))
        for row in [
            ("U1", "Alice Adams", "alice@acme.example", "R1", "true", "UTC", "2025-01-06",
             "2025-01-06T09:00:00Z"),
            # the email in another letter case than Bob's mailbox
            ("U2", "Bob Brown", "Bob@Acme.example", "R1", "true", "UTC", "2026-03-02",
             "2026-03-02T09:00:00Z"),
        ]
    ],
    "account": [
        {"Id": "A1", "Name": "Stark", "OwnerId": "U1", "CreatedDate": "2025-02-03T09:00:00Z",
         "IsDeleted": "0"},
    ],
    "contact": [
        {"Id": "CT1", "AccountId": "A1", "FirstName": "Carl", "LastName": "Stark",
         "Email": "carl@stark.example", "OwnerId": "U1", "CreatedDate": "2025-02-03T09:00:00Z",
         "IsDeleted": "0"},
    ],
    "lead": [
        dict(zip(LEAD_COLUMNS, row, strict=True))
        for row in [
            ("L1", "Ann", "Lee", "Ann.Lee@globex.example", "Globex", "Web", "Open", "U1", "false",
             "2026-05-01T10:00:00Z", "0"),  # Fri 10:00
            ("L2", "Peter", "Park", "peter@initech.example", "Initech", "Web", "Open", "U2", "false",
             "2026-05-01T12:00:00Z", "0"),  # Fri 12:00
        ]
    ],
    "opportunity": [
        {"Id": "O1", "Name": "Stark pilot", "AccountId": "A1", "OwnerId": "U1", "StageName": "Prospecting",
         "Amount": "1000", "Probability": "10", "ForecastCategoryName": "Pipeline", "CloseDate": "2026-06-30",
         "IsClosed": "false", "IsWon": "false", "CreatedDate": "2026-04-01T09:00:00Z", "IsDeleted": "0"},
    ],
    "event": [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in EVENTS],
}  # fmt: skip

# M1: Alice's meeting with Ann (booked Sat 05-02 09:00), the same meeting as EV1.
ALICE_ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//salesops//crm events test//EN
BEGIN:VEVENT
UID:m1-globex-intro@acme.example
DTSTAMP:20260502T090000Z
CREATED:20260502T090000Z
DTSTART:20260505T140000Z
DTEND:20260505T150000Z
SUMMARY:Globex intro
ORGANIZER;CN=Alice Adams:mailto:alice@acme.example
ATTENDEE;CN=Ann Lee;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:ann.lee@globex.example
END:VEVENT
END:VCALENDAR
"""

# M2: Bob's meeting with Carl, the same meeting as EV3 (which has no Who).
BOB_ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//salesops//crm events test//EN
BEGIN:VEVENT
UID:m2-stark-sync@acme.example
DTSTAMP:20260508T120000Z
CREATED:20260508T120000Z
DTSTART:20260512T100000Z
DTEND:20260512T110000Z
SUMMARY:Stark sync
ORGANIZER;CN=Bob Brown:mailto:bob@acme.example
ATTENDEE;CN=Carl Stark;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:carl@stark.example
END:VEVENT
END:VCALENDAR
"""


def write_crm(path: Path) -> None:
    create_crm(path)
    for table, rows in CRM.items():
        insert_rows(path, table, [{"SystemModstamp": MODSTAMP, **row} for row in rows])


def write_calendars(folder: Path, with_mailboxes: bool) -> None:
    folder.mkdir(parents=True)
    if with_mailboxes:
        (folder / "alice@acme.example.ics").write_bytes(ALICE_ICS.replace("\n", "\r\n").encode())
        (folder / "bob@acme.example.ics").write_bytes(BOB_ICS.replace("\n", "\r\n").encode())


# ====================================================================== running it


@dataclass
class Built:
    warehouse: Path
    result: object  # dagster ExecuteInProcessResult, or a DbtInvocation on PostgreSQL
    postgres_dsn: str | None = None

    def rows(self, sql: str) -> list[dict]:
        if self.postgres_dsn:
            return postgres_query_rows(self.postgres_dsn, sql)
        return query_rows(self.warehouse, sql)


def run_org(root: Path, with_mailboxes: bool) -> Built:
    write_crm(root / "crm.sqlite")
    write_calendars(root / "calendars", with_mailboxes)
    warehouse = root / "warehouse.duckdb"
    env = pipeline_env(root / "crm.sqlite", root / "calendars", warehouse, root / "dagster_home")
    result = execute_nightly({**env, "SALESOPS_AS_OF": AS_OF.isoformat()})
    return Built(warehouse, result)


@pytest.fixture(scope="module")
def with_mailboxes_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return run_org(tmp_path_factory.mktemp("crm_events_mailboxes"), with_mailboxes=True)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def with_mailboxes(
    request: pytest.FixtureRequest, with_mailboxes_duckdb: Built, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    """The org with mailbox files; on PostgreSQL, its raw tables copied there and dbt built there."""
    if request.param == "duckdb":
        return with_mailboxes_duckdb
    from ingestion.sql_warehouse import copy_duckdb_raw
    from tests.postgres import fresh_database, run_dbt_on_postgres

    database = fresh_database(request.getfixturevalue("postgres_server"), "salesops_crm_events")
    copy_duckdb_raw(with_mailboxes_duckdb.warehouse, database.url)
    build = run_dbt_on_postgres(database, AS_OF.isoformat(), tmp_path_factory.mktemp("crm_events_postgres"))
    return Built(with_mailboxes_duckdb.warehouse, build, postgres_dsn=database.dsn)


@pytest.fixture(scope="module")
def without_mailboxes(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return run_org(tmp_path_factory.mktemp("crm_events_no_mailboxes"), with_mailboxes=False)


def assert_succeeded(built: Built) -> None:
    if isinstance(built.result, DbtInvocation):
        assert built.result.success, f"dbt build --target postgres failed:\n{built.result.tail()}"
        return
    failed = [
        (f"{e.asset_key.to_user_string()}:{e.check_name}", e.severity.value)
        for e in built.result.get_asset_check_evaluations()  # type: ignore[attr-defined]
        if not e.passed
    ]
    assert built.result.success, f"the nightly run failed; failed checks: {failed}"  # type: ignore[attr-defined]
    assert [name for name, severity in failed if severity == "ERROR"] == [], failed


REP_ACTIVITY = ("rep_id", "week_start", "calls", "emails", "customer_meetings", "customer_meeting_hours",
                "internal_meetings", "training_sessions", "opportunities_created")  # fmt: skip
LEAD_RESPONSES = ("lead_id", "first_response_at", "response_channel", "response_minutes", "is_responded")
ONBOARDING = ("rep_id", "trainings_attended_90d", "first_customer_meeting_at")
QUARANTINE = ("source_table", "record_id", "owner_id", "rule", "offending_values")


def mart(built: Built, table: str) -> list[dict]:
    return built.rows(f"SELECT * FROM marts.{table}")


# ============================================================ with mailboxes: merged, counted once


def test_run_with_mailboxes_succeeds(with_mailboxes: Built) -> None:
    assert_succeeded(with_mailboxes)


def test_rep_activity_counts_a_meeting_in_a_mailbox_and_the_crm_once(with_mailboxes: Built) -> None:
    expected = [
        ("U1", d("2026-03-30"), 0, 0, 0, 0.0, 0, 0, 1),  # O1, created Wed 2026-04-01
        # M1 (1 h; EV1 is the same meeting) and EV5 (0.75 h, same start but with Peter, not in M1)
        ("U1", d("2026-05-04"), 0, 0, 2, 1.75, 0, 0, 0),
        # EV2 with Carl (0.5 h) and EV7 without a Who (internal); the all-day EV9 does not count
        ("U1", d("2026-05-11"), 0, 0, 1, 0.5, 1, 0, 0),
        # M2 with Carl (1 h; EV3, without a Who, is the same meeting) and EV10 with Ann (0.5 h), who is
        # not in M2
        ("U2", d("2026-05-11"), 0, 0, 2, 1.5, 0, 0, 0),
        ("U2", d("2026-05-18"), 0, 0, 0, 0.0, 0, 1, 0),  # EV8 (Type Training); EV4 is quarantined
    ]
    assert_rows(mart(with_mailboxes, "rep_activity"), "rep_activity", ("rep_id", "week_start"), REP_ACTIVITY,
                expected)  # fmt: skip


def test_lead_responses_take_the_mailbox_booking_of_a_merged_meeting(with_mailboxes: Built) -> None:
    expected = [
        # M1, booked Sat 05-02 09:00 (CREATED), 23 hours after Ann's lead; EV1 is M1
        ("L1", ts("2026-05-02 09:00"), "meeting", 1380.0, True),
        # EV5, an Event only: booked at its start, Tue 05-05 14:00, 4 days 2 hours after Peter's lead
        ("L2", ts("2026-05-05 14:00"), "meeting", 5880.0, True),
    ]
    assert_rows(mart(with_mailboxes, "lead_response_times"), "lead_response_times", ("lead_id",),
                LEAD_RESPONSES, expected)  # fmt: skip


def test_onboarding_counts_event_trainings_and_meetings(with_mailboxes: Built) -> None:
    expected = [
        ("U1", 0, ts("2026-05-05 14:00")),  # M1 and EV5 both start then
        ("U2", 1, ts("2026-05-12 10:00")),  # EV8, 77 days after Bob's hire on 03-02; M2
    ]
    assert_rows(mart(with_mailboxes, "onboarding_progress"), "onboarding_progress", ("rep_id",), ONBOARDING,
                expected)  # fmt: skip


def test_an_event_ending_before_it_starts_is_quarantined(with_mailboxes: Built) -> None:
    quarantined = with_mailboxes.rows("SELECT * FROM quality.quarantine WHERE source_table = 'event'")
    expected = [
        ("event", "EV4", "U2", "end_before_start",
         '{"startdatetime":"2026-05-19T09:00:00Z","enddatetime":"2026-05-19T08:00:00Z"}'),
    ]  # fmt: skip
    assert_rows(quarantined, "quality.quarantine", ("record_id", "rule"), QUARANTINE, expected)
    staged = with_mailboxes.rows("SELECT event_id FROM staging.stg_salesforce__events ORDER BY event_id")
    # EV4 quarantined, EV6 deleted
    assert [row["event_id"] for row in staged] == ["EV1", "EV10", "EV2", "EV3", "EV5", "EV7", "EV8", "EV9"]


def test_only_unmatched_events_become_calendar_meetings(with_mailboxes: Built) -> None:
    events = with_mailboxes.rows(
        "SELECT uid, origin, organizer_email, start_at FROM staging.stg_calendar__events ORDER BY uid"
    )
    assert [tuple(row.values()) for row in events] == [
        ("m1-globex-intro@acme.example", "mailbox", "alice@acme.example", ts("2026-05-05 14:00")),
        ("m2-stark-sync@acme.example", "mailbox", "bob@acme.example", ts("2026-05-12 10:00")),
        ("salesforce-event:EV10", "crm_event", "bob@acme.example", ts("2026-05-12 10:00")),
        ("salesforce-event:EV2", "crm_event", "alice@acme.example", ts("2026-05-13 16:00")),
        ("salesforce-event:EV5", "crm_event", "alice@acme.example", ts("2026-05-05 14:00")),
        ("salesforce-event:EV7", "crm_event", "alice@acme.example", ts("2026-05-14 10:00")),
        ("salesforce-event:EV8", "crm_event", "bob@acme.example", ts("2026-05-18 09:00")),
        ("salesforce-event:EV9", "crm_event", "alice@acme.example", ts("2026-05-15 00:00")),
    ]
    attendees = with_mailboxes.rows(
        "SELECT uid, email, partstat FROM staging.stg_calendar__attendees "
        "WHERE uid LIKE 'salesforce-event:%' ORDER BY uid"
    )
    assert [tuple(row.values()) for row in attendees] == [
        ("salesforce-event:EV10", "ann.lee@globex.example", "NEEDS-ACTION"),
        ("salesforce-event:EV2", "carl@stark.example", "NEEDS-ACTION"),
        ("salesforce-event:EV5", "peter@initech.example", "NEEDS-ACTION"),
        ("salesforce-event:EV9", "carl@stark.example", "NEEDS-ACTION"),
    ]


# ================================================== no calendar exports: the Events are the meetings


def test_run_without_mailboxes_succeeds(without_mailboxes: Built) -> None:
    assert_succeeded(without_mailboxes)
    assert without_mailboxes.rows("SELECT count(*) AS n FROM raw.calendar_occurrences") == [{"n": 0}]


def test_rep_activity_without_mailboxes_counts_every_event(without_mailboxes: Built) -> None:
    expected = [
        ("U1", d("2026-03-30"), 0, 0, 0, 0.0, 0, 0, 1),  # O1
        ("U1", d("2026-05-04"), 0, 0, 2, 1.75, 0, 0, 0),  # EV1 (1 h) and EV5 (0.75 h)
        ("U1", d("2026-05-11"), 0, 0, 1, 0.5, 1, 0, 0),  # EV2 (0.5 h) and EV7 (internal)
        # EV10 with Ann (0.5 h); EV3 without a Who has no attendee outside the company: internal
        ("U2", d("2026-05-11"), 0, 0, 1, 0.5, 1, 0, 0),
        ("U2", d("2026-05-18"), 0, 0, 0, 0.0, 0, 1, 0),  # EV8
    ]
    assert_rows(mart(without_mailboxes, "rep_activity"), "rep_activity", ("rep_id", "week_start"),
                REP_ACTIVITY, expected)  # fmt: skip


def test_lead_responses_and_onboarding_without_mailboxes(without_mailboxes: Built) -> None:
    responses = [
        ("L1", ts("2026-05-05 14:00"), "meeting", 6000.0, True),  # EV1, at its start: 4 days 4 hours
        ("L2", ts("2026-05-05 14:00"), "meeting", 5880.0, True),  # EV5
    ]
    assert_rows(mart(without_mailboxes, "lead_response_times"), "lead_response_times", ("lead_id",),
                LEAD_RESPONSES, responses)  # fmt: skip
    onboarding = [
        ("U1", 0, ts("2026-05-05 14:00")),  # EV1 and EV5
        ("U2", 1, ts("2026-05-12 10:00")),  # EV8; EV10 with Ann
    ]
    assert_rows(mart(without_mailboxes, "onboarding_progress"), "onboarding_progress", ("rep_id",),
                ONBOARDING, onboarding)  # fmt: skip
