"""The bad-input corpus (tests/fixtures/bad_inputs/cases.json): every case's outcome, asserted.

Grouped to stay fast: every CRM record case is applied to one copy of the XS demo org, which then
runs once through the real command (``python -m orchestration run``); table-level CRM cases go
through the loader (``load_crm_table`` with ``SqlCrmReader``), and a stopping one once more
through the command beside an unreadable ICS file, which is isolated; every ICS file lands in one
folder beside good files and is loaded once with ``load_calendar_folder``. Each test prints one
``corpus:`` line with its counts (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingestion.calendar_ics import ExpansionWindow, parse_calendar_file
from ingestion.calendar_load import load_calendar_folder
from ingestion.contract import CRM_TABLES, OPTIONAL_TABLES, raw_table_name
from ingestion.crm_load import load_crm_table
from ingestion.crm_sql import SqlCrmReader
from ingestion.errors import SourceError
from ingestion.replica_shape import parse_field_map
from ingestion.warehouse import Warehouse
from tests.conftest import pipeline_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "fixtures" / "bad_inputs"
CASES: list[dict] = json.loads((CORPUS / "cases.json").read_text())["cases"]
BAD_MODSTAMP = "2026-06-14T12:00:00.000+0000"
GOOD_ICS = "good.mailbox@acme.example.ics"
NOT_DELETED = "lower(CAST(IsDeleted AS TEXT)) IN ('0', 'false')"  # the demo org writes both forms
WINDOW = ExpansionWindow(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
REQUIRED_CATEGORIES = {
    "malformed_ics", "truncated_ics", "unbounded_rrule", "unknown_tzid", "end_before_start", "duplicate_id",
    "wrong_type", "impossible_date", "schema_drift", "empty_table", "huge_text", "invalid_utf8",
    "date_out_of_range", "negative_amount", "orphaned_reference", "missing_table",
}  # fmt: skip


def cases_of(kind: str) -> list[dict]:
    return [case for case in CASES if case["kind"] == kind]


def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration", "run"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_one_line(message: str) -> None:
    assert "\n" not in message and "\r" not in message and "Traceback" not in message, message


def test_corpus_has_at_least_40_cases_covering_every_category() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)) >= 40
    assert {case["category"] for case in CASES} >= REQUIRED_CATEGORIES
    referenced = {Path(case["input"]["file"]).name for case in cases_of("ics_file")}
    assert referenced | {GOOD_ICS} == {path.name for path in (CORPUS / "ics").iterdir()}
    allowed = {
        "quarantine", "rejected", "flagged", "lands", "error", "stop_check", "problem", "not_followed",
        "isolated",
    }  # fmt: skip
    assert all(case["expect"]["outcome"] in allowed for case in CASES)
    per_category = dict(sorted(Counter(case["category"] for case in CASES).items()))
    print(f"corpus: {len(CASES)} cases; per category: {per_category}")


# --------------------------------------------------------------------------- CRM records, one run


def sqlite_value(value: object) -> tuple[str, object]:
    """(placeholder, parameter) for a field value of the manifest."""
    if isinstance(value, dict) and "hex" in value:
        return "CAST(? AS TEXT)", bytes.fromhex(value["hex"])  # stored as text that is not UTF-8
    if isinstance(value, dict) and "repeat" in value:
        return "?", value["repeat"] * value["times"]
    return "?", value


def clone_record(connection: sqlite3.Connection, table: str, record_id: str | None, fields: dict) -> None:
    """Insert a copy of the table's first non-deleted row with a new Id and the case's fields."""
    columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
    deleted = f"WHERE {NOT_DELETED} " if "IsDeleted" in columns else ""
    template = connection.execute(f'SELECT * FROM "{table}" {deleted}ORDER BY Id LIMIT 1').fetchone()
    row: dict[str, tuple[str, object]] = {c: ("?", v) for c, v in zip(columns, template, strict=True)}
    row["Id"] = ("?", record_id)
    row["SystemModstamp"] = ("?", BAD_MODSTAMP)
    for field, value in fields.items():
        row[field] = sqlite_value(value)
    names = ", ".join(f'"{c}"' for c in row)
    marks = ", ".join(placeholder for placeholder, _ in row.values())
    connection.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', [v for _, v in row.values()])


@pytest.fixture(scope="module")
def record_run(demo_org: tuple[Path, object], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every crm_record case in one copy of the XS org, then one run of the real command."""
    demo_dir, _ = demo_org
    root = tmp_path_factory.mktemp("corpus_records")
    crm = root / "crm.sqlite"
    shutil.copy(demo_dir / "crm.sqlite", crm)
    with sqlite3.connect(crm) as connection:
        for case in cases_of("crm_record"):
            clone_record(connection, case["input"]["table"], case["input"]["id"], case["input"]["set"])
    env = pipeline_env(crm, demo_dir / "calendars", root / "warehouse.duckdb", root / "home")
    completed = run_cli(env)
    return {"completed": completed, "crm": crm, "warehouse": root / "warehouse.duckdb", "env": env}


def warehouse_rows(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, params or []).fetchall()


def test_record_cases_run_through_the_command_without_a_traceback(record_run: dict) -> None:
    completed = record_run["completed"]
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, completed.stdout[:2500]
    assert "Traceback" not in output
    assert "salesops nightly run: succeeded" in completed.stdout


def test_every_record_case_has_its_outcome(record_run: dict) -> None:
    warehouse = record_run["warehouse"]
    quarantine = set(
        warehouse_rows(warehouse, "SELECT source_table, record_id, rule FROM quality.quarantine")
    )
    outcomes: Counter[str] = Counter()
    for case in cases_of("crm_record"):
        expect = case["expect"]
        if expect["outcome"] == "quarantine":
            assert (expect["table"], expect["record"], expect["rule"]) in quarantine, case["id"]
            staging = {
                "opportunity": ("stg_salesforce__opportunities", "opportunity_id"),
                "opportunityhistory": ("stg_salesforce__opportunity_history", "opportunity_history_id"),
                "campaign": ("stg_salesforce__campaigns", "campaign_id"),
                "forecastingquota": ("stg_salesforce__forecasting_quotas", "quota_id"),
                "account": ("stg_salesforce__accounts", "account_id"),
                "contact": ("stg_salesforce__contacts", "contact_id"),
                "lead": ("stg_salesforce__leads", "lead_id"),
                "task": ("stg_salesforce__tasks", "task_id"),
            }[expect["table"]]
            assert not warehouse_rows(
                warehouse, f"SELECT 1 FROM staging.{staging[0]} WHERE {staging[1]} = ?", [expect["record"]]
            ), case["id"]
        elif expect["outcome"] in ("lands", "flagged"):
            found = warehouse_rows(
                warehouse,
                f"SELECT count(*) FROM staging.{expect['staging_table']} WHERE {expect['staging_id']} = ?",
                [expect["record"]],
            )
            assert found == [(1,)], case["id"]
            assert not [q for q in quarantine if q[1] == expect["record"]], case["id"]
            if "raw_value" in expect:
                (value,) = warehouse_rows(
                    warehouse,
                    f"SELECT {expect['raw_value']['column']} FROM raw.{raw_table_name(expect['table'])} "
                    "WHERE id = ?",
                    [expect["record"]],
                )[0]
                assert value == expect["raw_value"]["equals"], case["id"]
            if expect["outcome"] == "flagged":
                rows = warehouse_rows(
                    warehouse,
                    "SELECT r.success, r.sample FROM quality.validation_results r "
                    "JOIN quality.validation_runs v USING (validation_id) "
                    "WHERE v.layer = ? AND r.rule = ? ORDER BY v.validated_at DESC LIMIT 1",
                    [expect["layer"], expect["rule"]],
                )
                assert rows and rows[0][0] is False, case["id"]
                assert expect["record"] in rows[0][1], case["id"]
        elif expect["outcome"] == "rejected":
            rejects = warehouse_rows(
                warehouse,
                "SELECT record_values FROM quality.load_rejects WHERE table_name = ? AND rule = ?",
                [expect["table"], expect["rule"]],
            )
            assert [r for r in rejects if expect["marker"] in r[0]], case["id"]
        else:
            pytest.fail(f"unexpected outcome for {case['id']}")
        outcomes[expect["outcome"]] += 1
    assert sum(outcomes.values()) == len(cases_of("crm_record"))
    print(f"corpus: crm_record cases handled {dict(outcomes)}")


def test_the_rest_of_the_org_still_lands(record_run: dict) -> None:
    """Staging holds every good record: distinct non-deleted Ids minus the quarantined ones."""
    warehouse, crm = record_run["warehouse"], record_run["crm"]
    staging = {
        "account": "stg_salesforce__accounts", "contact": "stg_salesforce__contacts",
        "lead": "stg_salesforce__leads", "opportunity": "stg_salesforce__opportunities",
        "opportunityhistory": "stg_salesforce__opportunity_history", "task": "stg_salesforce__tasks",
        "campaign": "stg_salesforce__campaigns", "forecastingquota": "stg_salesforce__forecasting_quotas",
    }  # fmt: skip
    with sqlite3.connect(crm) as connection:
        for table, model in staging.items():
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
            deleted = f"AND {NOT_DELETED}" if "IsDeleted" in columns else ""
            source = connection.execute(
                f"SELECT count(DISTINCT Id) FROM \"{table}\" WHERE trim(coalesce(Id, '')) <> '' {deleted}"
            ).fetchone()[0]
            quarantined = warehouse_rows(
                warehouse,
                "SELECT count(DISTINCT record_id) FROM quality.quarantine WHERE source_table = ?",
                [table],
            )[0][0]
            landed = warehouse_rows(warehouse, f"SELECT count(*) FROM staging.{model}")[0][0]
            assert landed == source - quarantined > 0, table
    assert warehouse_rows(warehouse, "SELECT bool_and(is_reconciled) FROM quality.raw_reconciliation") == [
        (True,)
    ]
    serving = Path(record_run["env"]["SALESOPS_SERVING_PATH"])
    with duckdb.connect(str(serving), read_only=True) as connection:
        published = connection.execute("SELECT count(*), min(row_count) FROM _publication").fetchone()
    assert published[0] >= 20 and published[1] is not None


# --------------------------------------------------------------------------- CRM tables, loader level


def mutate_table(crm: Path, table: str, spec: dict) -> None:
    with sqlite3.connect(crm) as connection:
        mutation = spec["mutation"]
        if mutation == "drop_column":
            connection.execute(f'ALTER TABLE "{table}" DROP COLUMN "{spec["column"]}"')
        elif mutation == "rename_column":
            connection.execute(f'ALTER TABLE "{table}" RENAME COLUMN "{spec["column"]}" TO "{spec["to"]}"')
        elif mutation == "add_column":
            column = spec["column"].replace('"', '""')
            connection.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" TEXT')
            connection.execute(f'UPDATE "{table}" SET "{column}" = ?', [spec["value"]])
        elif mutation == "retype_column":
            column = spec["column"]
            connection.execute(f'ALTER TABLE "{table}" ADD COLUMN "_retyped" {spec["type"]}')
            connection.execute(f'UPDATE "{table}" SET "_retyped" = CAST("{column}" AS {spec["type"]})')
            connection.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
            connection.execute(f'ALTER TABLE "{table}" RENAME COLUMN "_retyped" TO "{column}"')
        elif mutation == "reshape":  # rename, drop and add columns, as a replication tool would
            indexes = connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                [table],
            ).fetchall()
            for (index,) in indexes:
                connection.execute(f'DROP INDEX "{index}"')
            for column, to in spec.get("rename", {}).items():
                connection.execute(f'ALTER TABLE "{table}" RENAME COLUMN "{column}" TO "{to}"')
            for column in spec.get("drop", []):
                connection.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
            for column, source in spec.get("copy", {}).items():
                connection.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" TEXT')
                connection.execute(f'UPDATE "{table}" SET "{column}" = "{source}"')
            for column, value in spec.get("add", {}).items():
                connection.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" TEXT')
                connection.execute(f'UPDATE "{table}" SET "{column}" = ?', [value])
        elif mutation == "none":
            pass
        elif mutation == "drop_table":
            connection.execute(f'DROP TABLE "{table}"')
        elif mutation == "empty_table":
            connection.execute(f'DELETE FROM "{table}"')
        elif mutation == "duplicate_row":
            connection.execute(f'DROP INDEX IF EXISTS "ix_{table}_id"')
            for modstamp, name in (("2026-06-13T08:00:00.000+0000", "older"), (BAD_MODSTAMP, "newer")):
                clone_record(connection, table, spec["id"], {"LastName": name, "SystemModstamp": modstamp})
        else:
            raise AssertionError(f"unknown mutation {mutation}")


def source_count(crm: Path, table: str) -> int:
    with sqlite3.connect(crm) as connection:
        return connection.execute(
            f"SELECT count(*) FROM \"{table}\" WHERE trim(coalesce(Id, '')) <> ''"
        ).fetchone()[0]


@pytest.mark.parametrize("case", cases_of("crm_table"), ids=lambda case: case["id"])
def test_table_case_at_the_loader(case: dict, demo_org: tuple[Path, object], tmp_path: Path) -> None:
    crm = tmp_path / "crm.sqlite"
    shutil.copy(demo_org[0] / "crm.sqlite", crm)
    table, expect = case["input"]["table"], case["expect"]
    mutate_table(crm, table, case["input"])
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    reader = SqlCrmReader(
        f"sqlite:///{crm}",
        batch_size=case["input"].get("batch_size", 50_000),
        field_map=parse_field_map(case["input"].get("field_map", "")),
    )
    try:
        for other in CRM_TABLES:  # the other tables land whatever happens to this one
            if other != table and other not in OPTIONAL_TABLES:  # the demo has no optional tables
                assert load_crm_table(reader, warehouse, other).rows_in_raw == source_count(crm, other)
        if expect["outcome"] == "error":
            with pytest.raises(SourceError) as raised:
                load_crm_table(reader, warehouse, table)
            message = str(raised.value)
            assert_one_line(message)
            for part in (
                f"source '{expect['source']}'",
                f"table '{expect['table']}'",
                f"rule '{expect['rule']}'",
            ):
                assert part in message, message
            assert expect["contains"] in message, message
            return
        result = load_crm_table(reader, warehouse, table)
    finally:
        reader.close()
    raw = raw_table_name(table)
    with warehouse.connect(read_only=True) as connection:
        if "rows_in_raw" in expect:
            assert result.rows_in_raw == expect["rows_in_raw"]
        if "raw_column" in expect:
            assert expect["raw_column"] in warehouse.columns(connection, "raw", raw)
            if "value" in expect:
                values = connection.execute(
                    f'SELECT DISTINCT "{expect["raw_column"]}" FROM raw.{raw}'
                ).fetchall()
                assert values == [(expect["value"],)]
            assert result.rows_in_raw == source_count(crm, table)
        if "null_column" in expect:
            nulls = connection.execute(
                f'SELECT count(*) FROM raw.{raw} WHERE "{expect["null_column"]}" IS NULL'
            )
            assert nulls.fetchone()[0] == result.rows_in_raw == source_count(crm, table) > 0
            assert result.missing_fields == tuple(expect["missing_fields"])
        if "raw_rows_for_id" in expect:
            rows = connection.execute(
                f"SELECT lastname FROM raw.{raw} WHERE id = ?", [case["input"]["id"]]
            ).fetchall()
            assert rows == [("newer",)]
    if expect["outcome"] == "stop_check":
        from expectations.gx_engine import validate_table
        from expectations.raw_suites import RAW_SUITES

        outcome = validate_table(warehouse.path, "raw", raw, f"raw.{raw}", RAW_SUITES[raw]())
        failed = outcome.outcome(expect["rule"])
        assert not failed.success and failed.severity == "error" and not outcome.success
        assert failed.unexpected_count == 2
        assert expect["record"] in [str(value) for value in failed.partial_unexpected]


def test_stopping_case_is_one_line_error_and_unreadable_ics_is_isolated_through_the_command(
    demo_org: tuple[Path, object], tmp_path: Path
) -> None:
    """A removed required column (the first load of the table: nothing to fall back on) and a
    truncated ICS file in one run of the command: the first stops the night with one line, the
    second is isolated (quarantined, listed by the summary) and every other mailbox loads.

    (A duplicated Id through the command is tests/test_bad_input.py's error-severity test: a failed
    table load skips the raw suites of the whole CRM, so it cannot share this run.)
    """
    demo_dir, _ = demo_org
    crm = tmp_path / "crm.sqlite"
    shutil.copy(demo_dir / "crm.sqlite", crm)
    drift = next(case for case in CASES if case["id"] == "drift_required_column_removed")
    mutate_table(crm, drift["input"]["table"], drift["input"])
    calendars = tmp_path / "calendars"
    shutil.copytree(demo_dir / "calendars", calendars)
    shutil.copy(CORPUS / "ics" / "truncated_mid_event.ics", calendars)

    completed = run_cli(pipeline_env(crm, calendars, tmp_path / "warehouse.duckdb", tmp_path / "home"))

    assert completed.returncode == 1
    assert "Traceback" not in completed.stdout + completed.stderr
    errors = [line for line in completed.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, errors
    assert all(
        "source 'crm'" in e
        and "table 'opportunity'" in e
        and "'Amount'" in e
        and "rule 'required_column'" in e
        for e in errors
    ), errors
    isolated = (
        "  calendar truncated_mid_event.ics:6: truncated: file ends inside BEGIN:VEVENT without "
        "END:VCALENDAR [readable_ics]"
    )
    assert isolated in completed.stdout.splitlines(), completed.stdout
    warehouse = tmp_path / "warehouse.duckdb"
    for table in CRM_TABLES:
        if table != "opportunity" and table not in OPTIONAL_TABLES:  # every other table landed in raw
            expected = source_count(crm, table)
            assert warehouse_rows(warehouse, f"SELECT count(*) FROM raw.{raw_table_name(table)}") == [
                (expected,)
            ]
    good_files = len(list(demo_dir.joinpath("calendars").glob("*.ics")))
    landed = warehouse_rows(warehouse, "SELECT count(DISTINCT source_file) FROM raw.calendar_occurrences")
    assert landed == [(good_files,)]
    assert warehouse_rows(
        warehouse, "SELECT object, line, rule FROM quality.source_quarantine WHERE source = 'calendar'"
    ) == [("truncated_mid_event.ics", 6, "readable_ics")]
    print(f"corpus: command run, 1 stopping input, 1 isolated: {len(errors)} one-line error, no traceback")


# --------------------------------------------------------------------------- ICS files, one folder


def build_folder(folder: Path, demo_calendars: Path) -> list[str]:
    """Every ics_file case plus the good file and two demo mailboxes; returns the demo files' names."""
    folder.mkdir()
    for case in cases_of("ics_file"):
        data = (CORPUS / case["input"]["file"]).read_bytes()
        for placeholder, fill in case["input"].get("expand", {}).items():
            data = data.replace(placeholder.encode(), (fill["repeat"] * fill["times"]).encode())
        (folder / Path(case["input"]["file"]).name).write_bytes(data)
    shutil.copy(CORPUS / "ics" / GOOD_ICS, folder / GOOD_ICS)
    good = sorted(path.name for path in demo_calendars.glob("*.ics"))[:2]
    for name in good:
        shutil.copy(demo_calendars / name, folder / name)
    return good


def test_every_ics_case_has_its_outcome_and_good_files_land(
    demo_org: tuple[Path, object], tmp_path: Path
) -> None:
    folder = tmp_path / "calendars"
    good = build_folder(folder, demo_org[0] / "calendars")
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")

    result = load_calendar_folder(folder, warehouse, WINDOW, max_occurrences_per_series=1000, workers=2)

    assert result.errors == []  # nothing stops the load
    for message in result.quarantined:
        assert_one_line(message)
    with warehouse.connect(read_only=True) as connection:
        isolated = {
            row[0]: row[1:]
            for row in connection.execute(
                "SELECT object, source, mailbox, line, rule, reason FROM quality.source_quarantine"
            ).fetchall()
        }
        occurrences = Counter(
            dict(
                ((file, uid), count)
                for file, uid, count in connection.execute(
                    "SELECT source_file, uid, count(*) FROM raw.calendar_occurrences GROUP BY 1, 2"
                ).fetchall()
            )
        )
        problems = set(
            connection.execute("SELECT source_file, uid, rule FROM quality.calendar_problems").fetchall()
        )
        files_with_rows = {
            row[0]
            for row in connection.execute("SELECT source_file FROM raw.calendar_occurrences").fetchall()
        }
        outcomes: Counter[str] = Counter()
        for case in cases_of("ics_file"):
            expect, name = case["expect"], case["expect"]["file"]
            if expect["outcome"] == "isolated":
                (message,) = [m for m in result.quarantined if f"'{name}'" in m]
                assert expect["contains"] in message, (case["id"], message)
                source, mailbox, line, rule, reason = isolated[name]
                assert (source, mailbox, line, rule) == (
                    expect["source"],
                    expect["mailbox"],
                    expect["line"],
                    expect["rule"],
                ), case["id"]
                assert expect["contains"] in reason, (case["id"], reason)
                assert name not in files_with_rows
            elif expect["outcome"] == "problem":
                assert (name, expect["uid"], expect["rule"]) in problems, case["id"]
                assert occurrences[(name, expect["uid"])] == expect["occurrences"], case["id"]
            else:
                assert occurrences[(name, expect["uid"])] == expect["occurrences"], case["id"]
                if "summary_length" in expect:
                    length = connection.execute(
                        "SELECT length(summary) FROM raw.calendar_occurrences WHERE source_file = ?", [name]
                    ).fetchall()
                    assert (expect["summary_length"],) in length
            outcomes[expect["outcome"]] += 1
        # Good files, and the good events beside every bad event, land whole.
        for name in [*good, GOOD_ICS]:
            expected = len(parse_calendar_file(folder / name, folder, WINDOW).occurrences)
            assert expected > 0
            assert sum(n for (file, _), n in occurrences.items() if file == name) == expected, name
        for case in cases_of("ics_file"):
            if case["expect"]["outcome"] != "isolated" and case["expect"]["file"] != "nul_bytes.ics":
                assert occurrences[(case["expect"]["file"], "good-1@acme.example")] == 1, case["id"]
    assert len(result.quarantined) == len(isolated) == outcomes["isolated"]
    assert result.files_parsed == len(cases_of("ics_file")) - outcomes["isolated"] + len(good) + 1
    print(f"corpus: ics_file cases handled {dict(outcomes)}")


@pytest.mark.parametrize("case", cases_of("ics_folder"), ids=lambda case: case["id"])
def test_path_escapes_are_refused(case: dict, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ics").write_bytes((CORPUS / "ics" / GOOD_ICS).read_bytes())
    folder = tmp_path / "calendars"
    folder.mkdir()
    shutil.copy(CORPUS / "ics" / GOOD_ICS, folder)
    (folder / case["input"]["symlink"]).symlink_to(
        folder / case["input"]["target"], target_is_directory=case["input"].get("directory", False)
    )
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    expect = case["expect"]
    if expect["outcome"] == "not_followed":  # the folder walk never enters a symlinked folder
        result = load_calendar_folder(folder, warehouse, WINDOW, workers=1)
        assert (result.files_total, result.files_parsed, result.errors) == (1, 1, [])
        with warehouse.connect(read_only=True) as connection:
            files = connection.execute("SELECT DISTINCT source_file FROM raw.calendar_occurrences").fetchall()
        assert files == [(GOOD_ICS,)]
        return
    with pytest.raises(SourceError) as raised:
        load_calendar_folder(folder, warehouse, WINDOW, workers=1)
    message = str(raised.value)
    assert_one_line(message)
    assert f"source '{expect['source']}'" in message and f"rule '{expect['rule']}'" in message
    assert f"file '{expect['file']}'" in message
    assert "secret" not in message.replace(expect["file"], "")  # nothing of the target is read
