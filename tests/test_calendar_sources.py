"""The same demo org's calendars through the ICS folder and the Google Calendar API give the same data.

The demo's mailbox ICS files are turned into the event resources Google would hold for them
(``tests/fakes/ics_to_google.py``) and served by the fake Google Calendar on 127.0.0.1; the
nightly job then runs through the CLI with ``SALESOPS_CALENDAR_SOURCE=google`` on the same CRM
and as_of as the session's ICS run (``pipeline_run``), and its raw calendar rows, calendar
staging models and marts are compared with that run's.

Differences by design, and only these, are left out (each is asserted, not just skipped):

* ``raw.*.source_file`` names the source (``<mailbox>.ics`` vs ``google/<mailbox>``); the
  ``mailbox`` it belongs to is compared instead.
* ``raw.calendar_occurrences.dtstamp``: Google has no DTSTAMP (``None``).
* ``raw.calendar_occurrences.last_modified_at``: Google always holds ``updated``; for an
  event never modified (no LAST-MODIFIED in the ICS file, ``None`` there) it is ``created``.
* ``_loaded_at`` / ``_batch_id``: when and by which load a row was written.
* Cancelled occurrences (``STATUS:CANCELLED`` events and overrides: rows with status
  ``CANCELLED`` and their attendees) in raw and staging: for a deleted event Google guarantees
  only ``id`` (and ``recurringEventId``/``originalStartTime`` for a cancelled instance), so a
  first full sync cannot know its UID, times, summary or attendees; the connector skips such a
  tombstone (``ingestion/google_calendar.py``: "Tombstones").  Marts read no cancelled meeting,
  so they are equal in full.  When Google does return the full resource of a cancelled event,
  the connector loads it as the same ``CANCELLED`` row as the ICS reader: checked in
  :func:`test_cancelled_events_returned_in_full_give_the_ics_cancelled_rows`.
* Later nights (:func:`test_nights_of_changes_sync_incrementally_to_the_ics_rows`, incremental
  syncs): a meeting cancelled after it was loaded keeps its loaded row, now ``CANCELLED``, so
  that row's ``sequence`` and ``last_modified_at`` are the loaded event's, not the
  cancellation's (the tombstone carries neither).

Staging and marts have no column that differs by source: every column is compared.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import duckdb
import pytest

from ingestion.calendar_ics import ATTENDEE_COLUMNS, OCCURRENCE_COLUMNS, ExpansionWindow
from ingestion.calendar_load import load_calendar_folder
from ingestion.google_calendar import GoogleCalendarClient, GoogleCalendarSettings, load_google_calendars
from ingestion.warehouse import Warehouse
from tests.conftest import PipelineRun
from tests.fakes.google_calendar_server import FakeGoogleCalendar
from tests.fakes.ics_to_google import calendar_resources, load_calendars, mailbox_files, update_calendars
from tests.test_bad_input import PROJECT_ROOT, run_cli
from tests.test_crm_sources import mart_contents

SECRETS = (FakeGoogleCalendar.CLIENT_ID, FakeGoogleCalendar.CLIENT_SECRET, FakeGoogleCalendar.REFRESH_TOKEN)
ACCESS_TOKEN_PREFIX = "ya29.fake-access-token"
# Occurrence columns compared as they are (see the module docstring for the others).
OCCURRENCE_COMPARED = tuple(
    c for c in OCCURRENCE_COLUMNS if c not in ("source_file", "dtstamp", "last_modified_at")
)
ATTENDEE_COMPARED = tuple(c for c in ATTENDEE_COLUMNS if c != "source_file")
CALENDAR_STAGING = ("stg_calendar__events", "stg_calendar__attendees")


@dataclass
class GoogleRun:
    warehouse: Path
    output: str
    returncode: int
    mailboxes: tuple[str, ...]
    events_loaded: int
    requested_mailboxes: set[str]


@pytest.fixture(scope="module")
def google_run(pipeline_run: PipelineRun, tmp_path_factory: pytest.TempPathFactory) -> GoogleRun:
    root = tmp_path_factory.mktemp("google_calendar_run")
    with FakeGoogleCalendar() as fake:
        loaded = load_calendars(fake, mailbox_files(pipeline_run.calendars))
        env = {
            **pipeline_run.env,
            "SALESOPS_CALENDAR_SOURCE": "google",
            "SALESOPS_GOOGLE_CLIENT_ID": fake.client_id,
            "SALESOPS_GOOGLE_CLIENT_SECRET": fake.client_secret,
            "SALESOPS_GOOGLE_REFRESH_TOKEN": fake.refresh_token,
            "SALESOPS_GOOGLE_MAILBOXES": ",".join(loaded),
            "SALESOPS_GOOGLE_API_URL": fake.api_url,
            "SALESOPS_GOOGLE_TOKEN_URL": fake.token_url,
            "SALESOPS_WAREHOUSE": str(root / "warehouse.duckdb"),
            "SALESOPS_SERVING_PATH": str(root / "serving.duckdb"),
            "DAGSTER_HOME": str(root / "home"),
        }
        completed = run_cli(env)
        requested = {r.calendar_id for r in fake.event_requests() if r.status == 200}
    return GoogleRun(
        root / "warehouse.duckdb",
        completed.stdout + completed.stderr,
        completed.returncode,
        tuple(loaded),
        sum(loaded.values()),
        {m for m in requested if m is not None},
    )


@pytest.fixture(scope="module")
def ics_connection(pipeline_run: PipelineRun) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(pipeline_run.warehouse), read_only=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def google_connection(google_run: GoogleRun) -> Iterator[duckdb.DuckDBPyConnection]:
    assert google_run.returncode == 0, google_run.output[-3000:]
    with duckdb.connect(str(google_run.warehouse), read_only=True) as connection:
        yield connection


def occurrence_rows(connection: duckdb.DuckDBPyConnection, ics: bool) -> list[tuple]:
    """(compared columns..., last_modified_at as Google holds it), sorted."""
    modified = "coalesce(last_modified_at, created_at)" if ics else "last_modified_at"
    return connection.execute(
        f"SELECT {', '.join(OCCURRENCE_COMPARED)}, {modified} FROM raw.calendar_occurrences ORDER BY ALL"
    ).fetchall()


def attendee_rows(connection: duckdb.DuckDBPyConnection, ics: bool) -> list[tuple]:
    """(mailbox of the copy, compared columns...), sorted."""
    mailbox = "regexp_replace(source_file, '\\.ics$', '')" if ics else "substr(source_file, 8)"
    return connection.execute(
        f"SELECT {mailbox}, {', '.join(ATTENDEE_COMPARED)} FROM raw.calendar_attendees ORDER BY ALL"
    ).fetchall()


def cancelled_keys(connection: duckdb.DuckDBPyConnection) -> set[tuple]:
    """(mailbox, uid, occurrence_start) of every CANCELLED raw row."""
    return set(
        connection.execute(
            "SELECT mailbox, uid, occurrence_start FROM raw.calendar_occurrences WHERE status = 'CANCELLED'"
        ).fetchall()
    )


def staging_rows(connection: duckdb.DuckDBPyConnection, model: str) -> tuple[list[str], list[tuple]]:
    columns = [
        r[0]
        for r in connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'staging' "
            "AND table_name = ? ORDER BY ordinal_position",
            [model],
        ).fetchall()
    ]
    rows = connection.execute(f"SELECT * FROM staging.{model} ORDER BY ALL").fetchall()
    return columns, rows


def calendar_models() -> set[str]:
    """Every dbt model that reads the calendar staging models, directly or through other models."""
    refs = {
        path.stem: set(re.findall(r"ref\(\s*['\"](\w+)['\"]\s*\)", path.read_text()))
        for path in (PROJECT_ROOT / "dbt_project" / "models").rglob("*.sql")
    }
    found = set(CALENDAR_STAGING)
    while True:
        more = {model for model, used in refs.items() if used & found} - found
        if not more:
            return found - set(CALENDAR_STAGING)
        found |= more


def ics_window(connection: duckdb.DuckDBPyConnection) -> ExpansionWindow:
    """The window the ICS run expanded (one for every file)."""
    windows = connection.execute(
        "SELECT DISTINCT window_start, window_end FROM meta.calendar_files"
    ).fetchall()
    assert len(windows) == 1, windows
    start, end = windows[0]
    return ExpansionWindow(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))


def settings_for(fake: FakeGoogleCalendar, mailboxes: tuple[str, ...]) -> GoogleCalendarSettings:
    return GoogleCalendarSettings(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        refresh_token=fake.refresh_token,
        mailboxes=mailboxes,
        api_url=fake.api_url,
        token_url=fake.token_url,
    )


# --------------------------------------------------------------------------- the run


def test_job_runs_through_the_google_api_without_printing_secrets(
    google_run: GoogleRun, pipeline_run: PipelineRun
) -> None:
    assert google_run.returncode == 0, google_run.output[-3000:]
    for secret in (*SECRETS, ACCESS_TOKEN_PREFIX):
        assert secret not in google_run.output
    assert "Traceback" not in google_run.output
    mailboxes = {path.stem for path in mailbox_files(pipeline_run.calendars)}
    assert set(google_run.mailboxes) == mailboxes and len(mailboxes) >= 5
    assert google_run.requested_mailboxes == mailboxes  # every mailbox read from the API
    assert google_run.events_loaded > 300
    with duckdb.connect(str(google_run.warehouse), read_only=True) as connection:
        sources = connection.execute(
            "SELECT DISTINCT source_file FROM raw.calendar_occurrences ORDER BY 1"
        ).fetchall()
        problems = connection.execute("SELECT count(*) FROM quality.calendar_problems").fetchone()
    assert [r[0] for r in sources] == sorted(f"google/{m}" for m in mailboxes)
    assert problems == (0,)


# --------------------------------------------------------------------------- raw rows


def test_raw_calendar_rows_equal_the_ics_rows_but_for_cancelled_tombstones(
    ics_connection: duckdb.DuckDBPyConnection, google_connection: duckdb.DuckDBPyConnection
) -> None:
    cancelled = cancelled_keys(ics_connection)
    assert cancelled, "the demo has cancelled events and overrides"
    assert cancelled_keys(google_connection) == set()  # bare tombstones on a first full sync

    status = OCCURRENCE_COMPARED.index("status")
    ics_occurrences = occurrence_rows(ics_connection, ics=True)
    google_occurrences = occurrence_rows(google_connection, ics=False)
    assert google_occurrences == [r for r in ics_occurrences if r[status] != "CANCELLED"]
    assert len(google_occurrences) > 1000

    ics_attendees = attendee_rows(ics_connection, ics=True)
    google_attendees = attendee_rows(google_connection, ics=False)
    assert google_attendees == [r for r in ics_attendees if r[:3] not in cancelled]
    assert len(google_attendees) > 1000

    dtstamps = google_connection.execute("SELECT DISTINCT dtstamp FROM raw.calendar_occurrences").fetchall()
    assert dtstamps == [(None,)]


# --------------------------------------------------------------------------- staging


@pytest.mark.parametrize("model", CALENDAR_STAGING)
def test_calendar_staging_equal_the_ics_staging(
    model: str, ics_connection: duckdb.DuckDBPyConnection, google_connection: duckdb.DuckDBPyConnection
) -> None:
    columns, ics_rows = staging_rows(ics_connection, model)
    google_columns, google_rows = staging_rows(google_connection, model)
    assert google_columns == columns
    # Every column is compared; only the occurrences cancelled in the ICS files are missing
    # from Google's (see the module docstring).
    cancelled = {
        r[0]
        for r in ics_connection.execute(
            "SELECT event_occurrence_id FROM staging.stg_calendar__events WHERE is_cancelled"
        ).fetchall()
    }
    assert cancelled
    occurrence_id = columns.index("event_occurrence_id")
    assert google_rows == [r for r in ics_rows if r[occurrence_id] not in cancelled]
    assert len(google_rows) > 500
    if model == "stg_calendar__events":
        # source_mailbox is compared too: each meeting keeps the same mailbox's copy (organizer's
        # first, then by sequence, DTSTAMP - None for Google, equal in the demo's files - and name).
        assert len({r[columns.index("source_mailbox")] for r in google_rows}) > 1


# --------------------------------------------------------------------------- marts


def test_marts_equal_through_the_ics_folder_and_the_google_api(
    pipeline_run: PipelineRun, google_run: GoogleRun
) -> None:
    assert google_run.returncode == 0, google_run.output[-3000:]
    through_google = mart_contents(google_run.warehouse)
    through_ics = mart_contents(pipeline_run.warehouse)
    assert set(through_google) == set(through_ics)
    calendar_marts = calendar_models() & set(through_ics)
    assert calendar_marts >= {
        "rep_activity",
        "onboarding_progress",
        "lead_response_times",
        "lead_response_by_rep_week",
    }, calendar_marts
    for table in sorted(calendar_marts) + sorted(set(through_ics) - calendar_marts):
        assert through_google[table] == through_ics[table], table
    assert all(through_ics[table] for table in calendar_marts), calendar_marts
    # The intermediate models between calendar staging and these marts are equal as well.
    intermediate = sorted(m for m in calendar_models() if m.startswith("int_"))
    assert {"int_rep_meetings", "int_lead_response_candidates"} <= set(intermediate), intermediate
    with (
        duckdb.connect(str(pipeline_run.warehouse), read_only=True) as from_ics,
        duckdb.connect(str(google_run.warehouse), read_only=True) as from_google,
    ):
        for model in intermediate:
            query = f"SELECT * FROM intermediate.{model} ORDER BY ALL"
            assert from_google.execute(query).fetchall() == from_ics.execute(query).fetchall(), model
    with duckdb.connect(str(google_run.warehouse), read_only=True) as connection:
        meetings = connection.execute(
            "SELECT sum(customer_meetings), sum(internal_meetings), sum(training_sessions) "
            "FROM marts.rep_activity"
        ).fetchone()
        meeting_responses = connection.execute(
            "SELECT count(*) FROM intermediate.int_lead_response_candidates "
            "WHERE response_channel = 'meeting'"
        ).fetchone()
    assert all(count and count > 0 for count in meetings), meetings  # calendar data reached the marts
    assert meeting_responses is not None and meeting_responses[0] > 0


# --------------------------------------------------------------------------- full tombstones


def test_cancelled_events_returned_in_full_give_the_ics_cancelled_rows(
    pipeline_run: PipelineRun, ics_connection: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """When Google returns a cancelled event's whole resource, the raw rows equal the ICS rows in full."""
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with FakeGoogleCalendar() as fake:
        fake.full_tombstones = True
        mailboxes = tuple(load_calendars(fake, mailbox_files(pipeline_run.calendars)))
        with GoogleCalendarClient(settings_for(fake, mailboxes)) as client:
            result = load_google_calendars(client, mailboxes, warehouse, ics_window(ics_connection))
    assert result.errors == [] and result.problems == 0
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        assert cancelled_keys(connection) == cancelled_keys(ics_connection)
        assert occurrence_rows(connection, ics=False) == occurrence_rows(ics_connection, ics=True)
        assert attendee_rows(connection, ics=False) == attendee_rows(ics_connection, ics=True)


# --------------------------------------------------------------------------- later nights


def test_nights_of_changes_sync_incrementally_to_the_ics_rows(
    pipeline_run: PipelineRun, ics_connection: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Three nights of the demo's change sets (new meetings, moves, cancellations): each night's
    incremental Google sync (syncToken) ends at the rows the ICS loader reads from the changed files.

    Besides the first night's cancelled occurrences (never loaded, see the module docstring), a
    meeting cancelled after it was loaded keeps its loaded row with status ``CANCELLED``: Google's
    tombstone has only ``id``, so that row's ``sequence`` and ``last_modified_at`` stay those of
    the loaded event while the ICS file has the cancellation's.
    """
    from ingestion.demo.change import apply_change

    demo = tmp_path / "demo"
    shutil.copytree(pipeline_run.demo_dir, demo)
    calendars = demo / "calendars"
    window = ics_window(ics_connection)
    ics, google = Warehouse(tmp_path / "ics.duckdb"), Warehouse(tmp_path / "google.duckdb")
    sequence = OCCURRENCE_COMPARED.index("sequence")

    def comparable(rows: list[tuple], never_loaded: set[tuple], cancelled_later: set[tuple]) -> list[tuple]:
        kept = []
        for row in rows:
            if row[:3] in never_loaded:
                continue
            if row[:3] in cancelled_later:  # (sequence, ..., last_modified_at) as Google keeps them
                row = (*row[:sequence], None, *row[sequence + 1 : -1], None)
            kept.append(row)
        return kept

    with FakeGoogleCalendar() as fake:
        held = calendar_resources(mailbox_files(calendars))
        update_calendars(fake, {}, held)
        mailboxes = tuple(held)
        with GoogleCalendarClient(settings_for(fake, mailboxes)) as client:
            assert load_google_calendars(client, mailboxes, google, window).errors == []
            load_calendar_folder(calendars, ics, window, workers=1)
            with duckdb.connect(str(ics.path), read_only=True) as connection:
                never_loaded = cancelled_keys(connection)
            moved = changed = 0
            for _night in range(3):
                apply_change(demo, quiet=True)
                now = calendar_resources(mailbox_files(calendars))
                changed += update_calendars(fake, held, now)
                moved += sum(
                    1
                    for mailbox, events in now.items()
                    for event_id, event in events.items()
                    if event_id in held[mailbox] and held[mailbox][event_id]["start"] != event["start"]
                )
                held = now
                result = load_google_calendars(client, mailboxes, google, window)
                assert result.errors == [] and result.full_syncs == 0 and result.items > 0
                assert load_calendar_folder(calendars, ics, window, workers=1).quarantined == []
                with (
                    duckdb.connect(str(ics.path), read_only=True) as from_ics,
                    duckdb.connect(str(google.path), read_only=True) as from_google,
                ):
                    cancelled_later = cancelled_keys(from_ics) - never_loaded
                    assert cancelled_keys(from_google) == cancelled_later
                    assert comparable(occurrence_rows(from_google, ics=False), set(), cancelled_later) == (
                        comparable(occurrence_rows(from_ics, ics=True), never_loaded, cancelled_later)
                    )
                    assert attendee_rows(from_google, ics=False) == [
                        r for r in attendee_rows(from_ics, ics=True) if r[:3] not in never_loaded
                    ]
    assert changed > 10 and moved > 0 and cancelled_later, (changed, moved, cancelled_later)
