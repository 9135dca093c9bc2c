"""Fault isolation: a calendar file that cannot be parsed is quarantined, and the night goes on.

At the loader (``load_calendar_folder``, hand-written ICS files in tmp_path): the broken file is in
``quality.source_quarantine`` with its mailbox, line and reason; its mailbox keeps the rows of its
last good version (none if it never parsed); it is tried again every run, even unchanged, and
leaves quarantine once it parses or is removed. Through the nightly job (the XS demo org, one of
its mailbox files broken by an ``END:VTOOD`` typo, one new mailbox that never parsed): every step
succeeds, every mart is built and published, the warning check ``sources_not_quarantined`` fails
naming the files, the summary lists them; fixed, they leave quarantine on the next run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingestion.calendar_ics import ExpansionWindow
from ingestion.calendar_load import load_calendar_folder
from ingestion.errors import SourceError
from ingestion.source_quarantine import quarantined
from ingestion.warehouse import Warehouse
from tests.conftest import environment, execute_nightly, pipeline_env

WINDOW = ExpansionWindow(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
ANN = "ann.lee@acme.example"
BOB = "bob.diaz@acme.example"
CAT = "cat.wu@acme.example"
TYPO_REASON = "malformed: END:VTOOD does not close BEGIN:VEVENT"


def ics(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


def meeting(uid: str, day: int) -> list[str]:
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTART:202406{day:02d}T090000Z",
        f"DTEND:202406{day:02d}T100000Z",
        "SUMMARY:Discovery call",
        "END:VEVENT",
    ]


HEADER = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//salesops//isolation test//EN"]
ANN_GOOD = ics(*HEADER, *meeting("a1@acme.example", 3), *meeting("a2@acme.example", 4), "END:VCALENDAR")
ANN_GOOD_V2 = ics(
    *HEADER,
    *meeting("a1@acme.example", 3),
    *meeting("a2@acme.example", 4),
    *meeting("a3@acme.example", 5),
    "END:VCALENDAR",
)
# The typo on line 15: line 9 folds a long SUMMARY onto line 10, so it is content line 14.
ANN_TYPO = ics(
    *HEADER,  # lines 1-3
    "BEGIN:VEVENT",  # 4
    "UID:a1@acme.example",  # 5
    "DTSTART:20240603T090000Z",  # 6
    "DTEND:20240603T100000Z",  # 7
    "SUMMARY:Discovery call with a summary long enough that the exporter folds i",  # 8
    " t onto the next line",  # 9
    "END:VEVENT",  # 10
    "BEGIN:VEVENT",  # 11
    "UID:a2@acme.example",  # 12
    "DTSTART:20240604T090000Z",  # 13
    "DTEND:20240604T100000Z",  # 14
    "END:VTOOD",  # 15
    "END:VCALENDAR",  # 16
)
BOB_GOOD = ics(*HEADER, *meeting("b1@acme.example", 10), "END:VCALENDAR")
CAT_TRUNCATED = ics(*HEADER, "BEGIN:VEVENT", "UID:c1@acme.example", "DTSTART:20240611T090000Z")


def write(folder: Path, mailbox: str, data: bytes) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{mailbox}.ics").write_bytes(data)


def quarantine_rows(warehouse: Warehouse) -> list[tuple]:
    with warehouse.connect(read_only=True) as connection:
        return connection.execute(
            "SELECT source, object, mailbox, line, rule, reason FROM quality.source_quarantine "
            "ORDER BY object"
        ).fetchall()


def seen(warehouse: Warehouse, obj: str) -> tuple[datetime, datetime]:
    with warehouse.connect(read_only=True) as connection:
        return connection.execute(
            "SELECT first_seen, last_seen FROM quality.source_quarantine WHERE object = ?", [obj]
        ).fetchone()


def mailbox_rows(warehouse: Warehouse, mailbox: str) -> list[tuple]:
    """(uid, start, batch) of the mailbox's occurrences: which rows, and which load wrote them."""
    with warehouse.connect(read_only=True) as connection:
        return connection.execute(
            "SELECT uid, occurrence_start, _batch_id FROM raw.calendar_occurrences WHERE mailbox = ? "
            "ORDER BY uid",
            [mailbox],
        ).fetchall()


def fingerprinted(warehouse: Warehouse) -> list[str]:
    with warehouse.connect(read_only=True) as connection:
        return [
            row[0]
            for row in connection.execute("SELECT source_file FROM meta.calendar_files ORDER BY 1").fetchall()
        ]


# --------------------------------------------------------------------------- loader


def test_unreadable_file_is_quarantined_with_mailbox_line_and_reason(tmp_path: Path) -> None:
    folder = tmp_path / "calendars"
    write(folder, ANN, ANN_TYPO)
    write(folder, BOB, BOB_GOOD)
    write(folder, CAT, CAT_TRUNCATED)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")

    result = load_calendar_folder(folder, warehouse, WINDOW, workers=1)

    assert (result.files_total, result.files_parsed, result.errors, result.released) == (3, 1, [], [])
    assert result.quarantined == [
        f"calendar file '{ANN}.ics': {TYPO_REASON} (line 15)",
        f"calendar file '{CAT}.ics': truncated: file ends inside BEGIN:VEVENT without END:VCALENDAR (line 6)",
    ]
    assert quarantine_rows(warehouse) == [
        ("calendar", f"{ANN}.ics", ANN, 15, "readable_ics", TYPO_REASON),
        (
            "calendar",
            f"{CAT}.ics",
            CAT,
            6,
            "readable_ics",
            "truncated: file ends inside BEGIN:VEVENT without END:VCALENDAR",
        ),
    ]
    with warehouse.connect(read_only=True) as connection:
        (entry, _) = quarantined(connection, "calendar")
    assert entry.describe() == f"calendar {ANN}.ics:15: {TYPO_REASON} [readable_ics]"
    # Neither mailbox ever parsed: no rows; the good mailbox landed whole; no fingerprint recorded.
    assert mailbox_rows(warehouse, ANN) == [] and mailbox_rows(warehouse, CAT) == []
    assert [(uid, start) for uid, start, _ in mailbox_rows(warehouse, BOB)] == [
        ("b1@acme.example", datetime(2024, 6, 10, 9))  # noqa: DTZ001 - naive UTC, as raw holds it
    ]
    assert fingerprinted(warehouse) == [f"{BOB}.ics"]


def test_a_mailbox_keeps_its_last_good_rows_and_leaves_quarantine_once_fixed(tmp_path: Path) -> None:
    folder = tmp_path / "calendars"
    write(folder, ANN, ANN_GOOD)
    write(folder, BOB, BOB_GOOD)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    first = load_calendar_folder(folder, warehouse, WINDOW, workers=1)
    good_rows = mailbox_rows(warehouse, ANN)
    assert [(uid, start) for uid, start, _ in good_rows] == [
        ("a1@acme.example", datetime(2024, 6, 3, 9)),  # noqa: DTZ001
        ("a2@acme.example", datetime(2024, 6, 4, 9)),  # noqa: DTZ001
    ]
    assert {batch for _, _, batch in good_rows} == {first.batch_id}

    write(folder, ANN, ANN_TYPO)  # the next export is broken
    broken = load_calendar_folder(folder, warehouse, WINDOW, workers=1)

    assert (broken.files_parsed, broken.files_unchanged, len(broken.quarantined)) == (0, 1, 1)
    assert mailbox_rows(warehouse, ANN) == good_rows  # the same rows, from the same (first) load
    assert quarantine_rows(warehouse) == [("calendar", f"{ANN}.ics", ANN, 15, "readable_ics", TYPO_REASON)]
    first_seen, last_seen = seen(warehouse, f"{ANN}.ics")

    again = load_calendar_folder(folder, warehouse, WINDOW, workers=1)  # unchanged, still retried

    assert (again.files_parsed, again.files_unchanged, len(again.quarantined)) == (0, 1, 1)
    assert mailbox_rows(warehouse, ANN) == good_rows
    assert seen(warehouse, f"{ANN}.ics")[0] == first_seen
    assert seen(warehouse, f"{ANN}.ics")[1] >= last_seen

    write(folder, ANN, ANN_GOOD_V2)  # fixed, with one more meeting
    fixed = load_calendar_folder(folder, warehouse, WINDOW, workers=1)

    assert (fixed.files_parsed, fixed.quarantined, fixed.released) == (1, [], [f"{ANN}.ics"])
    assert quarantine_rows(warehouse) == []
    assert [(uid, batch) for uid, _, batch in mailbox_rows(warehouse, ANN)] == [
        ("a1@acme.example", fixed.batch_id),
        ("a2@acme.example", fixed.batch_id),
        ("a3@acme.example", fixed.batch_id),
    ]


def test_a_file_restored_to_its_last_good_version_is_parsed_and_released(tmp_path: Path) -> None:
    """Its fingerprint equals the recorded one, but a quarantined file is never skipped as unchanged."""
    folder = tmp_path / "calendars"
    write(folder, ANN, ANN_GOOD)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    load_calendar_folder(folder, warehouse, WINDOW, workers=1)
    write(folder, ANN, ANN_TYPO)
    load_calendar_folder(folder, warehouse, WINDOW, workers=1)
    write(folder, ANN, ANN_GOOD)

    restored = load_calendar_folder(folder, warehouse, WINDOW, workers=1)

    assert (restored.files_parsed, restored.files_unchanged, restored.released) == (1, 0, [f"{ANN}.ics"])
    assert quarantine_rows(warehouse) == []
    assert len(mailbox_rows(warehouse, ANN)) == 2
    nothing_new = load_calendar_folder(folder, warehouse, WINDOW, workers=1)
    assert (nothing_new.files_parsed, nothing_new.files_unchanged) == (0, 1)


def test_a_quarantined_file_removed_from_the_folder_leaves_quarantine(tmp_path: Path) -> None:
    folder = tmp_path / "calendars"
    write(folder, BOB, BOB_GOOD)
    write(folder, CAT, CAT_TRUNCATED)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    load_calendar_folder(folder, warehouse, WINDOW, workers=1)
    assert [row[1] for row in quarantine_rows(warehouse)] == [f"{CAT}.ics"]
    (folder / f"{CAT}.ics").unlink()

    result = load_calendar_folder(folder, warehouse, WINDOW, workers=1)

    assert (result.released, result.quarantined, result.files_unchanged) == ([f"{CAT}.ics"], [], 1)
    assert quarantine_rows(warehouse) == []


def test_a_missing_folder_still_stops_the_load(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as raised:
        load_calendar_folder(tmp_path / "absent", Warehouse(tmp_path / "warehouse.duckdb"), WINDOW, workers=1)
    assert str(raised.value).startswith("source 'calendar'")
    assert "calendar folder does not exist" in str(raised.value)
    assert "\n" not in str(raised.value)


# --------------------------------------------------------------------------- the nightly job

NEW_MAILBOX = "new.hire@acme-sales.example"
NEW_GOOD = ics(
    *HEADER,
    "BEGIN:VEVENT",
    "UID:n1@acme-sales.example",
    "DTSTART:20260610T150000Z",
    "DTEND:20260610T153000Z",
    "SUMMARY:Intro call",
    "END:VEVENT",
    "END:VCALENDAR",
)
CHECK = ("raw/calendar_occurrences", "sources_not_quarantined")


def break_third_event(data: bytes) -> tuple[bytes, int, int]:
    """The third ``END:VEVENT`` typed ``END:VTOOD``: the file, that line's number in it, and how
    many folded continuation lines come before it (so its content line number is lower)."""
    lines = data.split(b"\r\n")
    ends = [index for index, line in enumerate(lines) if line == b"END:VEVENT"]
    lines[ends[2]] = b"END:VTOOD"
    folds = sum(1 for line in lines[: ends[2]] if line.startswith(b" "))
    return b"\r\n".join(lines), ends[2] + 1, folds


@dataclass
class Night:
    result: object  # dagster ExecuteInProcessResult
    summary: str
    quarantine: list[tuple]
    mailbox_rows: list[tuple]  # the broken mailbox's (uid, start, batch)
    new_mailbox_rows: list[tuple]
    serving_tables: dict[str, str]  # table -> dagster run that published it
    marts: list[str]

    def check(self, key: tuple[str, str] = CHECK):
        (evaluation,) = [
            e
            for e in self.result.get_asset_check_evaluations()
            if (e.asset_key.to_user_string(), e.check_name) == key
        ]
        return evaluation

    def calendar_metadata(self) -> dict[str, object]:
        (event,) = [
            e
            for e in self.result.get_asset_materialization_events()
            if e.materialization.asset_key.to_user_string() == CHECK[0]
        ]
        return {key: value.value for key, value in event.materialization.metadata.items()}

    def step_events(self, event_type: str) -> list[str]:
        return sorted({e.step_key for e in self.result.all_events if e.event_type_value == event_type})


@dataclass
class Nights:
    broken_file: str
    broken_mailbox: str
    typo_line: int
    folds_before_typo: int
    first: Night
    second: Night
    third: Night


def night(env: dict[str, str], mailbox: str) -> Night:
    from orchestration.summary import summarize

    result = execute_nightly(env)
    warehouse = Warehouse(env["SALESOPS_WAREHOUSE"])
    with environment(env):
        summary = summarize(result, env["SALESOPS_WAREHOUSE"]).render()
    with duckdb.connect(env["SALESOPS_SERVING_PATH"], read_only=True) as connection:
        published = dict(connection.execute("SELECT table_name, dagster_run_id FROM _publication").fetchall())
    with warehouse.connect(read_only=True) as connection:
        marts = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY 1"
            ).fetchall()
        ]
    return Night(
        result,
        summary,
        quarantine_rows(warehouse),
        mailbox_rows(warehouse, mailbox),
        mailbox_rows(warehouse, NEW_MAILBOX),
        published,
        marts,
    )


@pytest.fixture(scope="module")
def nights(demo_org: tuple[Path, object], tmp_path_factory: pytest.TempPathFactory) -> Nights:
    """Three nights on a copy of the XS org's calendars: (1) a new mailbox's export is broken from
    the start; (2) an existing mailbox's export gets an END:VTOOD typo too; (3) both are fixed."""
    demo_dir, _ = demo_org
    root = tmp_path_factory.mktemp("isolation")
    calendars = root / "calendars"
    shutil.copytree(demo_dir / "calendars", calendars)
    broken = sorted(path.name for path in calendars.glob("*.ics"))[0]
    mailbox = broken.removesuffix(".ics")
    original = (calendars / broken).read_bytes()
    env = pipeline_env(demo_dir / "crm.sqlite", calendars, root / "warehouse.duckdb", root / "home")

    write(calendars, NEW_MAILBOX, CAT_TRUNCATED)
    first = night(env, mailbox)
    typo, line, folds = break_third_event(original)
    (calendars / broken).write_bytes(typo)
    second = night(env, mailbox)
    (calendars / broken).write_bytes(original)
    write(calendars, NEW_MAILBOX, NEW_GOOD)
    third = night(env, mailbox)
    return Nights(broken, mailbox, line, folds, first, second, third)


@pytest.mark.slow
def test_a_broken_file_stops_nothing_and_every_mart_is_published(nights: Nights) -> None:
    first = nights.first
    assert first.result.success
    assert first.step_events("STEP_FAILURE") == [] and first.step_events("STEP_SKIPPED") == []
    assert "dbt_mart_models" in first.step_events("STEP_SUCCESS")
    assert "serving__marts" in first.step_events("STEP_SUCCESS")
    assert len(first.marts) >= 21
    assert first.serving_tables == dict.fromkeys(first.marts, first.result.run_id)
    assert first.quarantine == [
        (
            "calendar",
            f"{NEW_MAILBOX}.ics",
            NEW_MAILBOX,
            6,
            "readable_ics",
            "truncated: file ends inside BEGIN:VEVENT without END:VCALENDAR",
        )
    ]
    assert first.new_mailbox_rows == []  # never parsed: no rows
    assert len(first.mailbox_rows) > 0
    calendar = first.calendar_metadata()  # the calendar asset materialized, naming the file
    assert (calendar["files_total"], calendar["files_parsed"], calendar["files_quarantined"]) == (12, 11, 1)
    assert calendar["quarantined_files"] == (
        f"calendar file '{NEW_MAILBOX}.ics': truncated: file ends inside BEGIN:VEVENT without "
        "END:VCALENDAR (line 6)"
    )
    print(
        f"isolation: {calendar['files_total']} calendar files, 1 unreadable: every step succeeded, "
        f"{len(first.marts)} marts built and published"
    )


@pytest.mark.slow
def test_the_warning_check_names_the_quarantined_files(nights: Nights) -> None:
    first, second = nights.first.check(), nights.second.check()
    assert (first.passed, first.severity.value) == (False, "WARN")
    assert first.metadata["quarantined_sources"].value == 1
    assert first.metadata["sources"].value == (
        f"calendar {NEW_MAILBOX}.ics:6: truncated: file ends inside BEGIN:VEVENT without END:VCALENDAR "
        "[readable_ics]"
    )
    assert (second.passed, second.metadata["quarantined_sources"].value) == (False, 2)
    assert f"calendar {nights.broken_file}:{nights.typo_line}: {TYPO_REASON} [readable_ics]" in (
        second.metadata["sources"].value.splitlines()
    )
    assert second.metadata["failed_rules"].value == (
        f"readable_ics on '{NEW_MAILBOX}.ics'; readable_ics on '{nights.broken_file}'"
    )
    third = nights.third.check()
    assert (third.passed, third.metadata["quarantined_sources"].value) == (True, 0)
    # The CRM tables' checks pass: nothing of the CRM is set aside.
    crm = [
        e
        for e in nights.first.result.get_asset_check_evaluations()
        if e.check_name == "sources_not_quarantined" and e.asset_key.to_user_string() != CHECK[0]
    ]
    assert len(crm) >= 10 and all(e.passed for e in crm)


@pytest.mark.slow
def test_a_mailbox_that_parsed_before_keeps_its_rows_while_its_file_is_broken(nights: Nights) -> None:
    second = nights.second
    assert second.result.success and second.step_events("STEP_FAILURE") == []
    assert nights.broken_file < f"{NEW_MAILBOX}.ics"  # rows by file name
    assert second.quarantine == [
        (
            "calendar",
            nights.broken_file,
            nights.broken_mailbox,
            nights.typo_line,
            "readable_ics",
            TYPO_REASON,
        ),
        (
            "calendar",
            f"{NEW_MAILBOX}.ics",
            NEW_MAILBOX,
            6,
            "readable_ics",
            "truncated: file ends inside BEGIN:VEVENT without END:VCALENDAR",
        ),
    ]
    assert second.mailbox_rows == nights.first.mailbox_rows  # the same rows, from the first night's load
    assert nights.folds_before_typo > 0  # so the line is the file's own, not the unfolded content line
    calendar = second.calendar_metadata()
    assert (calendar["files_parsed"], calendar["files_unchanged"], calendar["files_quarantined"]) == (
        0,
        10,
        2,
    )
    print(
        f"isolation: {nights.broken_file} broken at line {nights.typo_line} "
        f"({nights.folds_before_typo} folded lines before it): its {len(second.mailbox_rows)} rows kept"
    )


@pytest.mark.slow
def test_the_summary_lists_what_was_isolated(nights: Nights) -> None:
    assert "salesops nightly run: succeeded" in nights.first.summary
    assert "marts built: 0" not in nights.first.summary
    assert (
        "sources isolated (set aside, last good rows kept): 1\n"
        f"  calendar {NEW_MAILBOX}.ics:6: truncated: file ends inside BEGIN:VEVENT without END:VCALENDAR "
        "[readable_ics]\n"
    ) in nights.first.summary
    assert "sources isolated (set aside, last good rows kept): 2\n" in nights.second.summary
    assert (
        f"  calendar {nights.broken_file}:{nights.typo_line}: {TYPO_REASON} [readable_ics]\n"
        in nights.second.summary
    )
    assert "sources isolated" not in nights.third.summary


@pytest.mark.slow
def test_fixed_files_leave_quarantine_on_the_next_run(nights: Nights) -> None:
    third = nights.third
    assert third.result.success and third.step_events("STEP_FAILURE") == []
    assert third.quarantine == []
    # The restored file was parsed again (its rows rewritten by this run), the same meetings.
    assert [row[:2] for row in third.mailbox_rows] == [row[:2] for row in nights.first.mailbox_rows]
    assert {row[2] for row in third.mailbox_rows} != {row[2] for row in nights.first.mailbox_rows}
    assert [row[:2] for row in third.new_mailbox_rows] == [
        ("n1@acme-sales.example", datetime(2026, 6, 10, 15))  # noqa: DTZ001 - naive UTC
    ]
    assert third.serving_tables == dict.fromkeys(third.marts, third.result.run_id)
