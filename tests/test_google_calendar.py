"""Google Calendar v3 connector against a fake Google on 127.0.0.1 (no other network)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion.calendar_ics import (
    ATTENDEE_COLUMNS,
    OCCURRENCE_COLUMNS,
    ExpansionWindow,
    parse_calendar_file,
)
from ingestion.errors import SourceError
from ingestion.google_calendar import (
    DEFAULT_API_URL,
    DEFAULT_TOKEN_URL,
    GoogleApiError,
    GoogleAuthError,
    GoogleCalendarClient,
    GoogleCalendarLoadResult,
    GoogleCalendarSettings,
    google_sync_error,
    load_google_calendars,
    map_items,
)
from ingestion.warehouse import Warehouse
from tests.fakes.google_calendar_server import FakeGoogleCalendar, google_time

JANE = "jane.doe@acme.example"
BOB = "bob@acme.example"
WINDOW = ExpansionWindow(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
STATE_TABLES = ("meta.google_calendar_state", "meta.google_event_keys", "quality.calendar_problems")
SECRETS = (FakeGoogleCalendar.CLIENT_ID, FakeGoogleCalendar.CLIENT_SECRET, FakeGoogleCalendar.REFRESH_TOKEN)
NY = "America/New_York"
BERLIN = "Europe/Berlin"


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def fake() -> Iterator[FakeGoogleCalendar]:
    with FakeGoogleCalendar() as server:
        server.add_calendar(JANE)
        yield server


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "wh.duckdb")


def settings_for(
    fake: FakeGoogleCalendar, *mailboxes: str, refresh_token: str | None = None
) -> GoogleCalendarSettings:
    return GoogleCalendarSettings(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        refresh_token=refresh_token or fake.refresh_token,
        mailboxes=mailboxes or (JANE,),
        api_url=fake.api_url,
        token_url=fake.token_url,
    )


def client_for(
    fake: FakeGoogleCalendar, sleeps: list[float] | None = None, **options: Any
) -> GoogleCalendarClient:
    sleeps = sleeps if sleeps is not None else []
    options.setdefault("jitter", lambda: 0.0)
    return GoogleCalendarClient(settings_for(fake), sleep=sleeps.append, **options)


def sync(
    fake: FakeGoogleCalendar,
    warehouse: Warehouse,
    client: Any = None,
    mailboxes: tuple[str, ...] = (JANE,),
    window: ExpansionWindow = WINDOW,
    page_size: int = 250,
) -> GoogleCalendarLoadResult:
    return load_google_calendars(
        client or client_for(fake), mailboxes, warehouse, window, page_size=page_size
    )


def query(warehouse: Warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def rows(warehouse: Warehouse, columns: str = "uid, occurrence_start, status, summary") -> list[tuple]:
    return query(
        warehouse,
        f"SELECT {columns} FROM raw.calendar_occurrences ORDER BY source_file, occurrence_start, uid",
    )


def timed(
    event_id: str, uid: str, start: datetime, end: datetime, zone: str | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "id": event_id,
        "iCalUID": uid,
        "start": google_time(start, zone),
        "end": google_time(end, zone),
        **fields,
    }


def all_day(event_id: str, uid: str, first: date, end_exclusive: date, **fields: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "iCalUID": uid,
        "start": {"date": first.isoformat()},
        "end": {"date": end_exclusive.isoformat()},
        **fields,
    }


def weekly(
    event_id: str, uid: str, start: datetime, end: datetime, count: int, **fields: Any
) -> dict[str, Any]:
    return timed(event_id, uid, start, end, NY, recurrence=[f"RRULE:FREQ=WEEKLY;COUNT={count}"], **fields)


class CrashingClient:
    """Delegates to a real client and dies (like a killed process) on the n-th call."""

    def __init__(self, inner: GoogleCalendarClient, crash_on_call: int) -> None:
        self.inner = inner
        self.crash_on_call = crash_on_call
        self.calls = 0

    def list_events(self, calendar_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        self.calls += 1
        if self.calls == self.crash_on_call:
            raise KeyboardInterrupt("killed")
        return self.inner.list_events(calendar_id, params)


def seed_basic(fake: FakeGoogleCalendar) -> None:
    fake.put_event(
        JANE,
        timed(
            "evt-a",
            "a@acme.example",
            datetime(2024, 3, 5, 10),
            datetime(2024, 3, 5, 11),
            BERLIN,
            summary="Kickoff",
        ),
    )
    fake.put_event(
        JANE,
        timed("evt-b", "b@acme.example", datetime(2024, 4, 2, 14), datetime(2024, 4, 2, 15), summary="Demo"),
    )
    fake.put_event(
        JANE,
        weekly(
            "evt-s",
            "s@acme.example",
            datetime(2024, 5, 6, 9),
            datetime(2024, 5, 6, 9, 30),
            3,
            summary="Standup",
        ),
    )
    fake.put_event(  # before the window: never listed by the full sync
        JANE,
        timed(
            "evt-old", "old@acme.example", datetime(2023, 6, 1, 9), datetime(2023, 6, 1, 10), summary="Old"
        ),
    )


BASIC_ROWS = [
    ("a@acme.example", datetime(2024, 3, 5, 9), "CONFIRMED", "Kickoff"),
    ("b@acme.example", datetime(2024, 4, 2, 14), "CONFIRMED", "Demo"),
    ("s@acme.example", datetime(2024, 5, 6, 13), "CONFIRMED", "Standup"),
    ("s@acme.example", datetime(2024, 5, 13, 13), "CONFIRMED", "Standup"),
    ("s@acme.example", datetime(2024, 5, 20, 13), "CONFIRMED", "Standup"),
]


# --------------------------------------------------------------------------- sync protocol


def test_full_sync_then_incremental_upserts_changes_and_tombstones(
    fake: FakeGoogleCalendar, warehouse: Warehouse
) -> None:
    seed_basic(fake)
    first = sync(fake, warehouse)
    assert rows(warehouse) == BASIC_ROWS
    assert (first.files_total, first.files_parsed, first.full_syncs, first.pages, first.items) == (
        1,
        1,
        1,
        1,
        5,
    )
    assert (first.occurrences_in_raw, first.errors) == (5, [])
    [full] = fake.event_requests()
    assert full.params == {
        "singleEvents": "true",
        "showDeleted": "true",
        "maxResults": "250",
        "timeMin": "2024-01-01T00:00:00Z",
        "timeMax": "2025-01-01T00:00:00Z",
    }

    token = query(warehouse, "SELECT sync_token FROM meta.google_calendar_state")[0][0]
    fake.update_event(
        JANE,
        "evt-a",
        start=google_time(datetime(2024, 3, 6, 10), BERLIN),
        end=google_time(datetime(2024, 3, 6, 11), BERLIN),
        summary="Kickoff (moved)",
        sequence=1,
    )
    fake.cancel_instance(JANE, "evt-s", google_time(datetime(2024, 5, 13, 9), NY))
    fake.delete_event(JANE, "evt-b")
    fake.put_event(
        JANE, all_day("evt-d", "d@acme.example", date(2024, 6, 3), date(2024, 6, 4), summary="Offsite")
    )
    second = sync(fake, warehouse)

    assert rows(warehouse, "uid, occurrence_start, status, summary, sequence") == [
        ("a@acme.example", datetime(2024, 3, 6, 9), "CONFIRMED", "Kickoff (moved)", 1),
        ("b@acme.example", datetime(2024, 4, 2, 14), "CANCELLED", "Demo", 0),
        ("s@acme.example", datetime(2024, 5, 6, 13), "CONFIRMED", "Standup", 0),
        ("s@acme.example", datetime(2024, 5, 13, 13), "CANCELLED", "Standup", 0),
        ("s@acme.example", datetime(2024, 5, 20, 13), "CONFIRMED", "Standup", 0),
        ("d@acme.example", datetime(2024, 6, 3), "CONFIRMED", "Offsite", 0),
    ]
    assert (second.full_syncs, second.pages, second.items, second.files_unchanged) == (0, 1, 4, 0)
    assert second.occurrences_in_raw == 6
    incremental = fake.event_requests()[-1]
    assert incremental.params == {
        "singleEvents": "true",
        "showDeleted": "true",
        "maxResults": "250",
        "syncToken": token,
    }

    third = sync(fake, warehouse)
    assert (third.files_unchanged, third.items, third.occurrences_in_raw) == (1, 0, 6)
    assert len(fake.event_requests()) == 3


def test_paging_follows_next_page_token_and_commits_each_page(
    fake: FakeGoogleCalendar, warehouse: Warehouse
) -> None:
    for day in range(1, 6):
        fake.put_event(
            JANE,
            timed(f"evt-{day}", f"{day}@acme.example", datetime(2024, 2, day, 9), datetime(2024, 2, day, 10)),
        )
    result = sync(fake, warehouse, page_size=2)
    requests = fake.event_requests()
    assert [r.params.get("pageToken") for r in requests] == [None, "fake-page~1~2", "fake-page~1~4"]
    assert all(
        r.params["timeMin"] == "2024-01-01T00:00:00Z" and r.params["maxResults"] == "2" for r in requests
    )
    assert (result.pages, result.items, result.occurrences_in_raw) == (3, 5, 5)
    assert [r[1] for r in rows(warehouse)] == [datetime(2024, 2, day, 9) for day in range(1, 6)]
    assert query(warehouse, "SELECT phase, page_token, sync_token FROM meta.google_calendar_state") == [
        ("incremental", None, "fake-sync~jane.doe@acme.example~0~5")
    ]


def test_all_day_and_timed_events_in_time_zones(fake: FakeGoogleCalendar, warehouse: Warehouse) -> None:
    def event(event_id: str, start: dict[str, str], end: dict[str, str]) -> dict[str, Any]:
        return {"id": event_id, "iCalUID": f"{event_id}@acme.example", "start": start, "end": end}

    fake.put_event(
        JANE,
        event(
            "berlin",
            {"dateTime": "2024-07-01T09:00:00+02:00", "timeZone": BERLIN},
            {"dateTime": "2024-07-01T10:30:00+02:00", "timeZone": BERLIN},
        ),
    )
    fake.put_event(
        JANE,
        event("offset", {"dateTime": "2024-07-02T09:00:00+05:30"}, {"dateTime": "2024-07-02T10:00:00+05:30"}),
    )
    fake.put_event(
        JANE,
        event("zulu", {"dateTime": "2024-07-03T09:00:00.000Z"}, {"dateTime": "2024-07-03T09:45:00.000Z"}),
    )
    fake.put_event(
        JANE,
        event(
            "nyc-local",
            {"dateTime": "2024-01-15T09:00:00", "timeZone": NY},
            {"dateTime": "2024-01-15T10:00:00", "timeZone": NY},
        ),
    )
    fake.put_event(JANE, event("offsite", {"date": "2024-07-04"}, {"date": "2024-07-06"}))
    sync(fake, warehouse)
    assert rows(warehouse, "uid, occurrence_start, occurrence_end, is_all_day, tzid") == [
        ("nyc-local@acme.example", datetime(2024, 1, 15, 14), datetime(2024, 1, 15, 15), False, NY),
        ("berlin@acme.example", datetime(2024, 7, 1, 7), datetime(2024, 7, 1, 8, 30), False, BERLIN),
        ("offset@acme.example", datetime(2024, 7, 2, 3, 30), datetime(2024, 7, 2, 4, 30), False, None),
        ("zulu@acme.example", datetime(2024, 7, 3, 9), datetime(2024, 7, 3, 9, 45), False, "UTC"),
        ("offsite@acme.example", datetime(2024, 7, 4), datetime(2024, 7, 6), True, None),
    ]


def test_recurring_series_arrive_as_single_events(fake: FakeGoogleCalendar, warehouse: Warehouse) -> None:
    fake.put_event(
        JANE,
        weekly(
            "series", "series@acme.example", datetime(2024, 3, 5, 10), datetime(2024, 3, 5, 11), 4, sequence=2
        ),
    )
    fake.put_instance(
        JANE,
        "series",
        google_time(datetime(2024, 3, 12, 10), NY),
        start=google_time(datetime(2024, 3, 12, 13), NY),
        end=google_time(datetime(2024, 3, 12, 14), NY),
        summary="Moved",
        sequence=3,
    )
    fake.put_event(
        JANE,
        all_day(
            "daily",
            "daily@acme.example",
            date(2024, 4, 1),
            date(2024, 4, 2),
            recurrence=["RRULE:FREQ=DAILY;COUNT=2"],
        ),
    )
    sync(fake, warehouse)
    assert fake.event_requests()[0].params["singleEvents"] == "true"
    columns = (
        "uid, occurrence_start, occurrence_end, is_all_day, is_recurring, recurrence_id, summary, sequence"
    )
    at = datetime
    assert rows(warehouse, columns) == [
        # 10:00 New York is 15:00 UTC before the DST change of 2024-03-10, 14:00 UTC after it
        (
            "series@acme.example",
            at(2024, 3, 5, 15),
            at(2024, 3, 5, 16),
            False,
            True,
            at(2024, 3, 5, 15),
            None,
            2,
        ),
        (
            "series@acme.example",
            at(2024, 3, 12, 17),
            at(2024, 3, 12, 18),
            False,
            True,
            at(2024, 3, 12, 14),
            "Moved",
            3,
        ),
        (
            "series@acme.example",
            at(2024, 3, 19, 14),
            at(2024, 3, 19, 15),
            False,
            True,
            at(2024, 3, 19, 14),
            None,
            2,
        ),
        (
            "series@acme.example",
            at(2024, 3, 26, 14),
            at(2024, 3, 26, 15),
            False,
            True,
            at(2024, 3, 26, 14),
            None,
            2,
        ),
        ("daily@acme.example", at(2024, 4, 1), at(2024, 4, 2), True, True, at(2024, 4, 1), None, 0),
        ("daily@acme.example", at(2024, 4, 2), at(2024, 4, 3), True, True, at(2024, 4, 2), None, 0),
    ]


def test_attendees_organizer_categories_and_stamps(fake: FakeGoogleCalendar, warehouse: Warehouse) -> None:
    fake.put_event(
        JANE,
        timed(
            "meet",
            "meet@acme.example",
            datetime(2024, 9, 2, 15),
            datetime(2024, 9, 2, 16),
            status="tentative",
            summary="Pricing",
            location="Room 4",
            created="2024-08-01T10:00:00.000Z",
            updated="2024-08-02T11:30:00.000Z",
            organizer={"email": "Jane.Doe@ACME.example", "displayName": "Jane Doe", "self": True},
            extendedProperties={"shared": {"categories": " Sales , demo,SALES,, Onboarding"}},
            attendees=[
                {
                    "email": "Jane.Doe@acme.example",
                    "displayName": "Jane Doe",
                    "responseStatus": "accepted",
                    "organizer": True,
                },
                {"email": "bob@client.example", "responseStatus": "tentative", "optional": True},
                {"email": "carol@client.example", "displayName": "Carol", "responseStatus": "declined"},
                {"email": "dan@client.example", "responseStatus": "needsAction"},
                {"email": "erin@client.example"},
                {"email": "BOB@client.example", "responseStatus": "declined"},
                {"displayName": "Room without email", "resource": True},
            ],
        ),
    )
    sync(fake, warehouse)
    assert rows(
        warehouse,
        "status, summary, location, organizer_email, categories, created_at, last_modified_at, dtstamp",
    ) == [
        (
            "TENTATIVE",
            "Pricing",
            "Room 4",
            "jane.doe@acme.example",
            "Sales,demo,Onboarding",
            datetime(2024, 8, 1, 10),
            datetime(2024, 8, 2, 11, 30),
            None,
        )
    ]
    key = ("google/jane.doe@acme.example", "meet@acme.example", datetime(2024, 9, 2, 15))
    attendees = query(
        warehouse, "SELECT * EXCLUDE (_loaded_at, _batch_id) FROM raw.calendar_attendees ORDER BY email"
    )
    assert attendees == [
        (*key, "bob@client.example", "TENTATIVE", "OPT-PARTICIPANT", None),
        (*key, "carol@client.example", "DECLINED", "REQ-PARTICIPANT", "Carol"),
        (*key, "dan@client.example", "NEEDS-ACTION", "REQ-PARTICIPANT", None),
        (*key, "erin@client.example", "NEEDS-ACTION", "REQ-PARTICIPANT", None),
        (*key, "jane.doe@acme.example", "ACCEPTED", "REQ-PARTICIPANT", "Jane Doe"),
    ]


def test_gone_sync_token_triggers_full_resync_without_duplicates(
    fake: FakeGoogleCalendar, warehouse: Warehouse
) -> None:
    seed_basic(fake)
    sync(fake, warehouse)
    fake.cancel_instance(JANE, "evt-s", google_time(datetime(2024, 5, 13, 9), NY))
    sync(fake, warehouse)  # incremental: the instance becomes CANCELLED
    fake.update_event(JANE, "evt-a", summary="Kickoff v2")
    fake.purge_event(JANE, "evt-b")  # gone without a tombstone: only a full sync can notice
    fake.expire_sync_tokens(JANE)
    result = sync(fake, warehouse)

    assert [(r.status, "syncToken" in r.params, "timeMin" in r.params) for r in fake.event_requests()] == [
        (200, False, True),
        (200, True, False),
        (410, True, False),
        (200, False, True),
    ]
    assert rows(warehouse) == [  # the full resync keeps the CANCELLED instance (showDeleted=true)
        ("a@acme.example", datetime(2024, 3, 5, 9), "CONFIRMED", "Kickoff v2"),
        BASIC_ROWS[2],
        ("s@acme.example", datetime(2024, 5, 13, 13), "CANCELLED", "Standup"),
        BASIC_ROWS[4],
    ]
    assert (result.full_syncs, result.errors, result.occurrences_in_raw) == (1, [], 4)
    assert query(warehouse, "SELECT DISTINCT generation FROM meta.google_event_keys") == [(2,)]
    assert query(warehouse, "SELECT count(*) FROM meta.google_event_keys") == [(4,)]
    # the next run is incremental again, with the new token
    sync(fake, warehouse)
    assert "syncToken" in fake.event_requests()[-1].params and rows(warehouse)[0][3] == "Kickoff v2"


def test_window_change_runs_a_full_sync_and_sweeps_rows_outside(
    fake: FakeGoogleCalendar, warehouse: Warehouse
) -> None:
    seed_basic(fake)
    sync(fake, warehouse)
    later = ExpansionWindow(datetime(2024, 4, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
    result = sync(fake, warehouse, window=later)
    assert fake.event_requests()[-1].params["timeMin"] == "2024-04-01T00:00:00Z"
    assert result.full_syncs == 1
    assert rows(warehouse) == BASIC_ROWS[1:]


def test_change_moving_an_instance_out_of_the_window_drops_its_row(
    fake: FakeGoogleCalendar, warehouse: Warehouse
) -> None:
    seed_basic(fake)
    sync(fake, warehouse)
    fake.update_event(
        JANE,
        "evt-a",
        start=google_time(datetime(2026, 3, 5, 10), BERLIN),
        end=google_time(datetime(2026, 3, 5, 11), BERLIN),
    )
    sync(fake, warehouse)
    assert rows(warehouse) == BASIC_ROWS[1:]
    assert query(warehouse, "SELECT count(*) FROM meta.google_event_keys WHERE event_id = 'evt-a'") == [(0,)]


def test_tombstones_for_never_loaded_events(fake: FakeGoogleCalendar, warehouse: Warehouse) -> None:
    fake.put_event(
        JANE, timed("gone", "gone@acme.example", datetime(2024, 5, 1, 9), datetime(2024, 5, 1, 10))
    )
    fake.delete_event(JANE, "gone")
    sync(fake, warehouse)
    assert rows(warehouse) == []  # a bare tombstone (id only) of something never loaded: nothing to keep

    fake.full_tombstones = True  # a cancelled item that carries its data becomes a CANCELLED row
    fake.expire_sync_tokens()
    sync(fake, warehouse)
    assert rows(warehouse) == [("gone@acme.example", datetime(2024, 5, 1, 9), "CANCELLED", None)]


def test_removed_mailbox_loses_its_rows(fake: FakeGoogleCalendar, warehouse: Warehouse) -> None:
    fake.add_calendar(BOB)
    fake.put_event(BOB, timed("b1", "b1@acme.example", datetime(2024, 5, 1, 9), datetime(2024, 5, 1, 10)))
    seed_basic(fake)
    sync(fake, warehouse, mailboxes=(JANE, BOB))
    assert len(rows(warehouse)) == 6
    result = sync(fake, warehouse, mailboxes=(JANE,))
    assert (result.files_removed, result.occurrences_in_raw) == (1, 5)
    assert query(warehouse, "SELECT mailbox FROM meta.google_calendar_state") == [(JANE,)]


def test_same_meeting_in_two_mailboxes_gives_two_raw_rows(
    fake: FakeGoogleCalendar, warehouse: Warehouse
) -> None:
    fake.add_calendar(BOB)
    for mailbox, reply in ((JANE, "accepted"), (BOB, "declined")):
        fake.put_event(
            mailbox,
            timed(
                "shared123",
                "shared@acme.example",
                datetime(2024, 6, 10, 9),
                datetime(2024, 6, 10, 10),
                organizer={"email": JANE},
                attendees=[
                    {"email": JANE, "responseStatus": "accepted"},
                    {"email": BOB, "responseStatus": reply},
                ],
            ),
        )
    sync(fake, warehouse, mailboxes=(JANE, BOB))
    assert rows(warehouse, "source_file, mailbox, uid, occurrence_start, organizer_email") == [
        ("google/bob@acme.example", BOB, "shared@acme.example", datetime(2024, 6, 10, 9), JANE),
        ("google/jane.doe@acme.example", JANE, "shared@acme.example", datetime(2024, 6, 10, 9), JANE),
    ]
    assert query(
        warehouse,
        "SELECT source_file, email, partstat FROM raw.calendar_attendees "
        "WHERE email = 'bob@acme.example' ORDER BY 1",
    ) == [("google/bob@acme.example", BOB, "DECLINED"), ("google/jane.doe@acme.example", BOB, "ACCEPTED")]


# --------------------------------------------------------------------------- resumability


def snapshot(warehouse: Warehouse) -> tuple[list[tuple], list[tuple]]:
    return (
        query(
            warehouse, "SELECT * EXCLUDE (_loaded_at, _batch_id) FROM raw.calendar_occurrences ORDER BY ALL"
        ),
        query(warehouse, "SELECT * EXCLUDE (_loaded_at, _batch_id) FROM raw.calendar_attendees ORDER BY ALL"),
    )


def seed_pages(fake: FakeGoogleCalendar) -> None:
    for day in range(1, 6):
        fake.put_event(
            JANE,
            timed(
                f"evt-{day}",
                f"{day}@acme.example",
                datetime(2024, 2, day, 9),
                datetime(2024, 2, day, 10),
                attendees=[{"email": BOB, "responseStatus": "accepted"}],
            ),
        )


def test_full_sync_killed_after_first_page_resumes_without_loss_or_duplicates(
    fake: FakeGoogleCalendar, warehouse: Warehouse, tmp_path: Path
) -> None:
    seed_pages(fake)
    crashing = CrashingClient(client_for(fake), crash_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        sync(fake, warehouse, client=crashing, page_size=2)
    assert len(rows(warehouse)) == 2  # page 1 committed
    assert query(warehouse, "SELECT phase, page_token, sync_token FROM meta.google_calendar_state") == [
        ("full", "fake-page~1~2", None)
    ]

    result = sync(fake, warehouse, page_size=2)
    resumed = fake.event_requests()[1:]
    assert [r.params.get("pageToken") for r in resumed] == ["fake-page~1~2", "fake-page~1~4"]
    assert (result.pages, result.items, result.occurrences_in_raw, result.attendees_in_raw) == (2, 3, 5, 5)

    clean = Warehouse(tmp_path / "clean.duckdb")
    sync(fake, clean, page_size=2)
    assert snapshot(warehouse) == snapshot(clean)


def test_resume_with_expired_page_token_restarts_the_full_sync_and_sweeps(
    fake: FakeGoogleCalendar, warehouse: Warehouse, tmp_path: Path
) -> None:
    seed_pages(fake)
    with pytest.raises(KeyboardInterrupt):
        sync(fake, warehouse, client=CrashingClient(client_for(fake), crash_on_call=2), page_size=2)
    fake.expire_page_tokens()
    fake.purge_event(JANE, "evt-1")  # loaded by the killed run, gone without a tombstone since
    sync(fake, warehouse, page_size=2)
    assert [(r.status, r.params.get("pageToken")) for r in fake.event_requests()[1:]] == [
        (400, "fake-page~1~2"),
        (200, None),
        (200, "fake-page~2~2"),
    ]
    assert [r[0] for r in rows(warehouse)] == [
        "2@acme.example",
        "3@acme.example",
        "4@acme.example",
        "5@acme.example",
    ]
    clean = Warehouse(tmp_path / "clean.duckdb")
    sync(fake, clean, page_size=2)
    assert snapshot(warehouse) == snapshot(clean)


def test_incremental_sync_killed_mid_way_resumes_from_the_committed_page(
    fake: FakeGoogleCalendar, warehouse: Warehouse, tmp_path: Path
) -> None:
    seed_pages(fake)
    sync(fake, warehouse, page_size=2)
    token = query(warehouse, "SELECT sync_token FROM meta.google_calendar_state")[0][0]
    for day in (1, 3, 5):
        fake.update_event(JANE, f"evt-{day}", summary=f"changed {day}")
    with pytest.raises(KeyboardInterrupt):
        sync(fake, warehouse, client=CrashingClient(client_for(fake), crash_on_call=2), page_size=2)
    # the sync token does not move before the page that carries the next one is committed
    assert query(warehouse, "SELECT phase, sync_token, page_token FROM meta.google_calendar_state") == [
        ("incremental", token, "fake-page~2~2")
    ]
    result = sync(fake, warehouse, page_size=2)
    last = fake.event_requests()[-1]
    assert (last.params["syncToken"], last.params["pageToken"]) == (token, "fake-page~2~2")
    assert (result.items, result.occurrences_in_raw, result.attendees_in_raw) == (1, 5, 5)
    assert [r[3] for r in rows(warehouse)] == ["changed 1", None, "changed 3", None, "changed 5"]
    clean = Warehouse(tmp_path / "clean.duckdb")
    sync(fake, clean)
    assert snapshot(warehouse) == snapshot(clean)


# --------------------------------------------------------------------------- HTTP behaviour


def test_401_refreshes_the_token_once(fake: FakeGoogleCalendar, warehouse: Warehouse) -> None:
    seed_basic(fake)
    client = client_for(fake)
    sync(fake, warehouse, client=client)
    fake.invalidate_access_tokens()
    fake.update_event(JANE, "evt-a", summary="after refresh")
    sync(fake, warehouse, client=client)
    assert [r.status for r in fake.event_requests()] == [200, 401, 200]
    tokens = [r.authorization for r in fake.event_requests()]
    assert tokens[0] == tokens[1] != tokens[2]
    assert len(fake.token_requests()) == 2
    assert fake.token_requests()[0].form == {
        "grant_type": "refresh_token",
        "refresh_token": fake.refresh_token,
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
    }
    assert rows(warehouse)[0][3] == "after refresh"


def test_401_after_refresh_is_an_error_not_a_loop(fake: FakeGoogleCalendar) -> None:
    fake.fail_next(401, times=2, reason="authError", message="Invalid Credentials")
    client = client_for(fake)
    with pytest.raises(GoogleApiError) as caught:
        client.list_events(JANE, {"singleEvents": "true"})
    assert str(caught.value) == (
        "source 'google_calendar', rule 'google_api': events.list for mailbox 'jane.doe@acme.example' "
        "failed with HTTP 401 even after refreshing the access token: Invalid Credentials"
    )
    assert (caught.value.status, len(fake.token_requests()), len(fake.event_requests())) == (401, 2, 2)


def test_429_honours_retry_after(fake: FakeGoogleCalendar, warehouse: Warehouse) -> None:
    seed_basic(fake)
    fake.fail_next(429, retry_after="7", reason="rateLimitExceeded")
    sleeps: list[float] = []
    sync(fake, warehouse, client=client_for(fake, sleeps, jitter=lambda: 0.9))
    assert sleeps == [7.0]
    assert [r.status for r in fake.event_requests()] == [429, 200]
    assert rows(warehouse) == BASIC_ROWS


def test_429_without_retry_after_backs_off_exponentially_with_jitter(
    fake: FakeGoogleCalendar, warehouse: Warehouse
) -> None:
    seed_basic(fake)
    fake.fail_next(429, times=3)
    fake.fail_next(403, reason="userRateLimitExceeded")  # Google's other way of saying 429
    sleeps: list[float] = []
    jitters = iter([0.0, 0.5, 1.0, 0.5])
    sync(fake, warehouse, client=client_for(fake, sleeps, jitter=lambda: next(jitters), backoff_base=2.0))
    # d = 2 * 2**(n-1); wait d/2 + d/2 * jitter
    assert sleeps == [1.0, 3.0, 8.0, 12.0]
    assert len(rows(warehouse)) == 5


def test_500_is_retried(fake: FakeGoogleCalendar, warehouse: Warehouse) -> None:
    seed_basic(fake)
    fake.fail_next(500)
    sleeps: list[float] = []
    result = sync(fake, warehouse, client=client_for(fake, sleeps))
    assert (sleeps, result.errors, result.occurrences_in_raw) == ([0.5], [], 5)


def test_retry_cap_gives_a_one_line_source_error_and_other_mailboxes_go_on(
    fake: FakeGoogleCalendar, warehouse: Warehouse
) -> None:
    fake.add_calendar(BOB)
    fake.put_event(BOB, timed("b1", "b1@acme.example", datetime(2024, 5, 1, 9), datetime(2024, 5, 1, 10)))
    fake.fail_next(503, times=3, message="Backend Error\nplease retry")
    sleeps: list[float] = []
    client = client_for(fake, sleeps, max_attempts=3)
    result = sync(fake, warehouse, client=client, mailboxes=(JANE, BOB))
    expected = (
        "events.list for mailbox 'jane.doe@acme.example' failed with HTTP 503 after 3 attempts: "
        "Backend Error please retry"
    )
    assert result.errors == [expected]
    assert (result.files_total, result.files_parsed, result.occurrences_in_raw) == (2, 1, 1)
    assert sleeps == [0.5, 1.0]
    error = google_sync_error(result.errors)
    assert isinstance(error, SourceError)
    assert str(error) == f"source 'google_calendar', rule 'google_sync': {expected}"

    fake.fail_next(503, times=3)
    with pytest.raises(GoogleApiError) as caught:
        client.list_events(JANE, {})
    message = str(caught.value)
    assert "\n" not in message and "jane.doe@acme.example" in message and "HTTP 503" in message
    assert not any(secret in message for secret in SECRETS)


def test_connection_failures_are_retried_then_reported(fake: FakeGoogleCalendar) -> None:
    settings = settings_for(fake)
    unreachable = GoogleCalendarSettings(
        settings.client_id,
        settings.client_secret,
        settings.refresh_token,
        settings.mailboxes,
        api_url="http://127.0.0.1:9/calendar/v3",  # discard port: connection refused
        token_url=fake.token_url,
    )
    sleeps: list[float] = []
    client = GoogleCalendarClient(unreachable, sleep=sleeps.append, jitter=lambda: 1.0, max_attempts=3)
    with pytest.raises(GoogleApiError) as caught:
        client.list_events(JANE, {"singleEvents": "true"})
    assert str(caught.value) == (
        "source 'google_calendar', rule 'google_api': "
        f"events.list for mailbox '{JANE}' failed: ConnectionError after 3 attempts"
    )
    assert sleeps == [1.0, 2.0]


def test_refused_refresh_token_stops_the_load_without_leaking(
    fake: FakeGoogleCalendar, warehouse: Warehouse
) -> None:
    client = GoogleCalendarClient(
        settings_for(fake, refresh_token="1//wrong-refresh-token-abc"), sleep=lambda _: None
    )
    with pytest.raises(GoogleAuthError) as caught:
        load_google_calendars(client, [JANE], warehouse, WINDOW)
    assert str(caught.value) == (
        "source 'google_calendar', rule 'google_api': OAuth token refresh failed with HTTP 400: invalid_grant"
    )
    assert "wrong-refresh-token" not in repr(caught.value)


def test_secrets_never_in_repr_errors_logs_or_warehouse(
    fake: FakeGoogleCalendar, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seed_basic(fake)
    fake.fail_next(429)
    client = client_for(fake, max_attempts=2)
    first = sync(fake, warehouse, client=client)  # retried once
    fake.invalidate_access_tokens()
    fake.update_event(JANE, "evt-a", summary="changed")
    second = sync(fake, warehouse, client=client)  # 401, token refreshed
    fake.fail_next(500)
    fake.fail_next(
        503, message=f"echo {FakeGoogleCalendar.CLIENT_SECRET} and {FakeGoogleCalendar.REFRESH_TOKEN}"
    )
    third = sync(fake, warehouse, client=client)  # retries exhausted
    assert [r.status for r in fake.event_requests()] == [429, 200, 401, 200, 500, 503]
    assert (first.errors, second.errors) == ([], [])

    access_tokens = {
        r.authorization.removeprefix("Bearer ") for r in fake.event_requests() if r.authorization
    }
    secrets = (*SECRETS, *access_tokens)
    texts = [
        repr(client.settings),
        str(client.settings),
        repr(client),
        caplog.text,
        *third.errors,
        repr(first),
        repr(third),
        *(str(row) for table in STATE_TABLES for row in query(warehouse, f"SELECT * FROM {table}")),
    ]
    assert third.errors == [
        f"events.list for mailbox '{JANE}' failed with HTTP 503 after 2 attempts: echo *** and ***"
    ]
    assert "retrying in" in caplog.text and "refreshing the access token" in caplog.text
    for text in texts:
        for secret in secrets:
            assert secret not in text


# --------------------------------------------------------------------------- tolerance and problems


def test_unknown_fields_are_tolerated_and_missing_fields_are_problem_rows(
    fake: FakeGoogleCalendar, warehouse: Warehouse
) -> None:
    fake.extra_item_fields = {"workingLocationProperties": {"type": "homeOffice"}, "futureField": [1, 2]}
    fake.put_event(JANE, timed("ok", "ok@acme.example", datetime(2024, 5, 1, 9), datetime(2024, 5, 1, 10)))
    fake.put_event(JANE, {"id": "no-uid", "start": {"date": "2024-05-02"}, "end": {"date": "2024-05-03"}})
    bad_start = {"id": "bad-start", "iCalUID": "bad@acme.example", "start": {"dateTime": "tomorrow"}}
    fake.put_event(JANE, {**bad_start, "end": {"dateTime": "2024-05-03T10:00:00Z"}})
    result = sync(fake, warehouse)
    assert rows(warehouse, "uid") == [("ok@acme.example",)]
    assert query(
        warehouse, "SELECT source_file, uid, rule, detail FROM quality.calendar_problems ORDER BY detail"
    ) == [
        (
            "google/jane.doe@acme.example",
            "bad@acme.example",
            "invalid_event",
            "google event 'bad-start' in mailbox 'jane.doe@acme.example': field 'start.dateTime' is not an "
            "RFC 3339 date-time ('tomorrow'); skipped",
        ),
        (
            "google/jane.doe@acme.example",
            None,
            "missing_field",
            f"google event 'no-uid' in mailbox '{JANE}': missing required field 'iCalUID'; skipped",
        ),
    ]
    assert result.problems == 2
    sync(fake, warehouse)  # an incremental run with nothing new repeats no problem
    fake.expire_sync_tokens()
    sync(fake, warehouse)  # a full sync starts the mailbox's problems afresh
    assert query(warehouse, "SELECT count(*) FROM quality.calendar_problems") == [(2,)]


def test_map_items_reports_missing_id_and_start() -> None:
    page = map_items(
        [
            {"iCalUID": "x@acme.example", "start": {"date": "2024-01-01"}},
            {"id": "no-start", "iCalUID": "y@acme.example"},
            {"id": "empty-start", "iCalUID": "z@acme.example", "start": {"timeZone": "UTC"}},
            "not an object",
        ],
        JANE,
    )
    assert page.upserts == [] and page.tombstones == []
    source = f"google/{JANE}"
    assert page.problems == [
        (source, "x@acme.example", "missing_field",
         f"google event in mailbox '{JANE}' (iCalUID 'x@acme.example'): "
         "missing required field 'id'; skipped"),
        (source, "y@acme.example", "missing_field",
         f"google event 'no-start' in mailbox '{JANE}': missing required field 'start'; skipped"),
        (source, "z@acme.example", "missing_field",
         f"google event 'empty-start' in mailbox '{JANE}': missing required field "
         "'start.dateTime' or 'start.date'; skipped"),
        (source, None, "invalid_event", f"google event in mailbox '{JANE}': item is not a JSON object"),
    ]  # fmt: skip


def test_page_without_sync_or_page_token_is_a_clear_error(warehouse: Warehouse) -> None:
    class Broken:
        def list_events(self, calendar_id: str, params: Mapping[str, str]) -> dict[str, Any]:
            return {"kind": "calendar#events", "items": []}

    result = load_google_calendars(Broken(), [JANE], warehouse, WINDOW)
    assert result.errors == [
        f"events.list for mailbox '{JANE}': page has neither 'nextPageToken' nor 'nextSyncToken'"
    ]


# --------------------------------------------------------------------------- settings


def test_settings_from_env_and_repr_without_secrets() -> None:
    env = {
        "SALESOPS_GOOGLE_CLIENT_ID": "id-123.apps.googleusercontent.com",
        "SALESOPS_GOOGLE_CLIENT_SECRET": "GOCSPX-secret-value",
        "SALESOPS_GOOGLE_REFRESH_TOKEN": "1//refresh-value",
        "SALESOPS_GOOGLE_MAILBOXES": " Jane.Doe@acme.example, bob@acme.example,,jane.doe@acme.example ",
    }
    settings = GoogleCalendarSettings.from_env(env)
    assert settings.mailboxes == (JANE, BOB)
    assert (settings.api_url, settings.token_url) == (DEFAULT_API_URL, DEFAULT_TOKEN_URL)
    assert repr(settings) == (
        "GoogleCalendarSettings(client_id='***', client_secret='***', refresh_token='***', "
        "mailboxes=('jane.doe@acme.example', 'bob@acme.example'), "
        "api_url='https://www.googleapis.com/calendar/v3', token_url='https://oauth2.googleapis.com/token')"
    )
    custom = GoogleCalendarSettings.from_env(
        {
            **env,
            "SALESOPS_GOOGLE_API_URL": "http://127.0.0.1:1/calendar/v3/",
            "SALESOPS_GOOGLE_TOKEN_URL": "http://127.0.0.1:1/token",
        }
    )
    assert (custom.api_url, custom.token_url) == (
        "http://127.0.0.1:1/calendar/v3",
        "http://127.0.0.1:1/token",
    )
    with pytest.raises(SourceError) as caught:
        GoogleCalendarSettings.from_env({**env, "SALESOPS_GOOGLE_REFRESH_TOKEN": " "})
    assert str(caught.value) == (
        "source 'google_calendar', rule 'settings': "
        "environment variable SALESOPS_GOOGLE_REFRESH_TOKEN is not set"
    )


# --------------------------------------------------------------------------- equivalence with ICS


EQUIVALENT_ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//salesops//google equivalence//EN
BEGIN:VEVENT
UID:kickoff@acme.example
DTSTAMP:20240110T000000Z
CREATED:20240101T080000Z
LAST-MODIFIED:20240102T090000Z
SEQUENCE:1
DTSTART;TZID=Europe/Berlin:20240305T100000
DTEND;TZID=Europe/Berlin:20240305T113000
SUMMARY:Kickoff
LOCATION:Room 1
STATUS:CONFIRMED
ORGANIZER;CN=Jane Doe:mailto:Jane.Doe@acme.example
CATEGORIES:Sales,Demo
ATTENDEE;CN=Jane Doe;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:jane.doe@acme.example
ATTENDEE;CN=Bob;PARTSTAT=TENTATIVE;ROLE=OPT-PARTICIPANT:mailto:bob@client.example
ATTENDEE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:carol@client.example
END:VEVENT
BEGIN:VEVENT
UID:call@acme.example
DTSTAMP:20240110T000000Z
DTSTART:20240402T140000Z
DTEND:20240402T144500Z
SUMMARY:Call
STATUS:TENTATIVE
END:VEVENT
BEGIN:VEVENT
UID:offsite@acme.example
DTSTAMP:20240110T000000Z
DTSTART;VALUE=DATE:20240704
DTEND;VALUE=DATE:20240706
SUMMARY:Offsite
END:VEVENT
BEGIN:VEVENT
UID:weekly@acme.example
DTSTAMP:20240110T000000Z
DTSTART;TZID=America/New_York:20240305T100000
DTEND;TZID=America/New_York:20240305T110000
RRULE:FREQ=WEEKLY;COUNT=4
EXDATE;TZID=America/New_York:20240319T100000
SUMMARY:Weekly
SEQUENCE:2
ORGANIZER:mailto:jane.doe@acme.example
ATTENDEE;PARTSTAT=DECLINED;ROLE=REQ-PARTICIPANT:mailto:dan@client.example
END:VEVENT
BEGIN:VEVENT
UID:weekly@acme.example
DTSTAMP:20240110T000000Z
RECURRENCE-ID;TZID=America/New_York:20240312T100000
DTSTART;TZID=America/New_York:20240312T130000
DTEND;TZID=America/New_York:20240312T140000
SUMMARY:Weekly (moved)
SEQUENCE:3
ORGANIZER:mailto:jane.doe@acme.example
ATTENDEE;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:dan@client.example
END:VEVENT
END:VCALENDAR
"""


def test_same_meetings_from_ics_and_google_give_the_same_rows(
    fake: FakeGoogleCalendar, warehouse: Warehouse, tmp_path: Path
) -> None:
    folder = tmp_path / "ics"
    folder.mkdir()
    path = folder / f"{JANE}.ics"
    path.write_bytes(EQUIVALENT_ICS.replace("\n", "\r\n").encode("utf-8"))
    parsed = parse_calendar_file(path, folder, WINDOW)
    assert parsed.problems == []

    fake.put_event(
        JANE,
        timed(
            "kickoff",
            "kickoff@acme.example",
            datetime(2024, 3, 5, 10),
            datetime(2024, 3, 5, 11, 30),
            BERLIN,
            created="2024-01-01T08:00:00.000Z",
            updated="2024-01-02T09:00:00.000Z",
            sequence=1,
            summary="Kickoff",
            location="Room 1",
            status="confirmed",
            organizer={"email": "Jane.Doe@acme.example", "displayName": "Jane Doe"},
            extendedProperties={"shared": {"categories": "Sales,Demo"}},
            attendees=[
                {"email": "jane.doe@acme.example", "displayName": "Jane Doe", "responseStatus": "accepted"},
                {
                    "email": "bob@client.example",
                    "displayName": "Bob",
                    "responseStatus": "tentative",
                    "optional": True,
                },
                {"email": "carol@client.example", "responseStatus": "needsAction"},
            ],
        ),
    )
    fake.put_event(
        JANE,
        timed(
            "call",
            "call@acme.example",
            datetime(2024, 4, 2, 14),
            datetime(2024, 4, 2, 14, 45),
            summary="Call",
            status="tentative",
        ),
    )
    fake.put_event(
        JANE,
        all_day("offsite", "offsite@acme.example", date(2024, 7, 4), date(2024, 7, 6), summary="Offsite"),
    )
    fake.put_event(
        JANE,
        weekly(
            "weekly",
            "weekly@acme.example",
            datetime(2024, 3, 5, 10),
            datetime(2024, 3, 5, 11),
            4,
            summary="Weekly",
            sequence=2,
            organizer={"email": "jane.doe@acme.example"},
            attendees=[{"email": "dan@client.example", "responseStatus": "declined"}],
        ),
    )
    fake.put_instance(
        JANE,
        "weekly",
        google_time(datetime(2024, 3, 12, 10), NY),
        start=google_time(datetime(2024, 3, 12, 13), NY),
        end=google_time(datetime(2024, 3, 12, 14), NY),
        summary="Weekly (moved)",
        sequence=3,
        attendees=[{"email": "dan@client.example", "responseStatus": "accepted"}],
    )
    fake.cancel_instance(JANE, "weekly", google_time(datetime(2024, 3, 19, 10), NY))  # the ICS EXDATE
    sync(fake, warehouse)

    # Differences by design: source_file ('<mailbox>.ics' vs 'google/<mailbox>') and dtstamp
    # (Google has no DTSTAMP: None).  Everything else is equal.
    def comparable(occurrences: list[tuple]) -> list[dict[str, Any]]:
        ignored = ("source_file", "dtstamp")
        keep = [
            dict((k, v) for k, v in zip(OCCURRENCE_COLUMNS, row, strict=True) if k not in ignored)
            for row in occurrences
        ]
        return sorted(keep, key=lambda r: (r["occurrence_start"], r["uid"]))

    google_rows = query(warehouse, f"SELECT {', '.join(OCCURRENCE_COLUMNS)} FROM raw.calendar_occurrences")
    assert len(google_rows) == len(parsed.occurrences) == 6
    assert comparable(google_rows) == comparable(parsed.occurrences)
    assert {row[OCCURRENCE_COLUMNS.index("dtstamp")] for row in google_rows} == {None}

    google_attendees = query(warehouse, f"SELECT {', '.join(ATTENDEE_COLUMNS)} FROM raw.calendar_attendees")
    assert sorted(row[1:] for row in google_attendees) == sorted(row[1:] for row in parsed.attendees)
    assert len(google_attendees) == 6
