"""Bad input through the real command: clear one-line errors, nothing already loaded lost."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import PipelineRun, pipeline_env, table_counts

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration", "run"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def copied_org(pipeline_run: PipelineRun, tmp_path: Path) -> dict[str, Path]:
    crm = tmp_path / "crm.sqlite"
    shutil.copy(pipeline_run.crm, crm)
    calendars = tmp_path / "calendars"
    shutil.copytree(pipeline_run.calendars, calendars)
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(pipeline_run.warehouse, warehouse)
    return {"crm": crm, "calendars": calendars, "warehouse": warehouse, "home": tmp_path / "home"}


def test_a_table_missing_a_required_column_and_an_unreadable_ics_are_isolated_and_nothing_is_lost(
    copied_org: dict[str, Path],
) -> None:
    with sqlite3.connect(copied_org["crm"]) as connection:
        connection.execute('ALTER TABLE "lead" DROP COLUMN "Email"')
    (copied_org["calendars"] / "broken.ics").write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n")
    before = table_counts(copied_org["warehouse"])

    completed = run_cli(pipeline_env(*copied_org.values()))

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Traceback" not in output
    assert not [line for line in completed.stdout.splitlines() if line.startswith("error: ")]
    # The lead table is set aside with its last good rows; the summary names the rule and column.
    lines = completed.stdout.splitlines()
    assert any(
        line.startswith("  crm lead: required column 'Email' missing") and line.endswith("[required_column]")
        for line in lines
    ), completed.stdout
    # The unreadable calendar file stops nothing either: it is quarantined and the summary lists it.
    assert (
        "  calendar broken.ics:3: truncated: file ends inside BEGIN:VEVENT without END:VCALENDAR "
        "[readable_ics]"
    ) in lines, completed.stdout
    after = table_counts(copied_org["warehouse"])
    assert after == before  # raw keeps every row, marts keep the last good build


def test_missing_crm_file_is_a_clear_error(copied_org: dict[str, Path]) -> None:
    env = pipeline_env(copied_org["crm"].with_name("absent.sqlite"), *list(copied_org.values())[1:])
    completed = run_cli(env)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stdout + completed.stderr
    message = "error: source 'crm', rule 'source_exists': CRM database file not found"
    assert completed.stdout.count(message) == 1


def test_error_severity_rule_blocks_the_marts_and_warning_does_not(copied_org: dict[str, Path]) -> None:
    with sqlite3.connect(copied_org["crm"]) as connection:
        # A duplicated lead Id (error severity) and a malformed contact email (warning).
        connection.execute('DROP INDEX IF EXISTS "ix_lead_id"')
        connection.execute(
            'INSERT INTO "lead" SELECT * FROM "lead" WHERE rowid = (SELECT min(rowid) FROM "lead")'
        )
        connection.execute(
            "UPDATE lead SET SystemModstamp = '2026-06-14T00:00:00Z' "
            "WHERE Id = (SELECT Id FROM lead WHERE rowid = (SELECT min(rowid) FROM lead))"
        )
        connection.execute(
            "UPDATE contact SET Email = 'not-an-email', SystemModstamp = '2026-06-14T00:00:00Z' "
            "WHERE rowid = (SELECT min(rowid) FROM contact)"
        )
    with duckdb.connect(str(copied_org["warehouse"])) as connection:
        connection.execute("DROP TABLE marts.funnel_conversion")

    completed = run_cli(pipeline_env(*copied_org.values()))

    assert completed.returncode == 1
    assert "raw/salesforce_lead:raw_integrity (error)" in completed.stdout
    with sqlite3.connect(copied_org["crm"]) as connection:
        duplicated = connection.execute("SELECT Id FROM lead GROUP BY Id HAVING count(*) > 1").fetchone()[0]
    # The failed line names the rule and the record.
    assert f"lead_id_unique (error, 2 rows) on '{duplicated}'" in completed.stdout
    assert "raw/salesforce_contact:raw_integrity (warn)" in completed.stdout
    counts = table_counts(copied_org["warehouse"])
    assert "marts.funnel_conversion" not in counts  # dbt did not run: the lead suite blocked it


def quarantine_rows(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(
            "SELECT source_table, record_id, rule, offending_values FROM quality.quarantine ORDER BY 1, 2, 3"
        ).fetchall()


def staging_opportunities(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute("SELECT count(*) FROM staging.stg_salesforce__opportunities").fetchone()[0]


def test_bad_value_is_quarantined_not_lost_and_leaves_once_fixed(copied_org: dict[str, Path]) -> None:
    with sqlite3.connect(copied_org["crm"]) as connection:
        opportunity_id = connection.execute(
            "SELECT Id FROM opportunity WHERE IsDeleted = 0 ORDER BY Id LIMIT 1"
        ).fetchone()[0]
        connection.execute(
            "UPDATE opportunity SET Amount = -500, SystemModstamp = '2026-06-14T00:00:00.000+0000' "
            "WHERE Id = ?",
            [opportunity_id],
        )
    before = staging_opportunities(copied_org["warehouse"])
    env = pipeline_env(*copied_org.values())

    completed = run_cli(env)

    assert completed.returncode == 0, completed.stdout
    assert quarantine_rows(copied_org["warehouse"]) == [
        ("opportunity", opportunity_id, "amount_negative", '{"amount":"-500.0"}')
    ]
    assert staging_opportunities(copied_org["warehouse"]) == before - 1
    with duckdb.connect(str(copied_org["warehouse"]), read_only=True) as connection:
        assert connection.execute(
            "SELECT raw_records, staging_records, quarantined_records, deleted_records, is_reconciled "
            "FROM quality.raw_reconciliation WHERE source_table = 'opportunity'"
        ).fetchone()[2:] == (
            1,
            connection.execute(
                "SELECT count(*) FROM raw.salesforce_opportunity WHERE isdeleted IN ('1', 'true')"
            ).fetchone()[0],
            True,
        )

    with sqlite3.connect(copied_org["crm"]) as connection:
        connection.execute(
            "UPDATE opportunity SET Amount = 500, SystemModstamp = '2026-06-14T01:00:00.000+0000' "
            "WHERE Id = ?",
            [opportunity_id],
        )
    assert run_cli(env).returncode == 0
    assert quarantine_rows(copied_org["warehouse"]) == []
    assert staging_opportunities(copied_org["warehouse"]) == before
