"""An incremental run after a change set builds the same marts as a full rebuild of the final data."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import duckdb

from tests.conftest import E2E_AS_OF, PipelineRun, execute_nightly, pipeline_env

# Columns that name the dbt invocation which wrote a row, not what the row says.
RUN_SPECIFIC_COLUMNS = {"run_started_at", "run_invocation_id"}
# Marts that keep one snapshot per as_of (incremental by design): an incremental run also holds
# the earlier nights, which a rebuild from scratch cannot know. Their final night must be equal.
SNAPSHOT_MARTS = {"pipeline_snapshots", "crm_data_quality_history"}


def mart_rows(warehouse: Path, as_of: str) -> dict[str, list[tuple]]:
    """Every mart's rows without run-specific columns, sorted; snapshot marts only for ``as_of``."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY 1"
        ).fetchall()]  # fmt: skip
        contents = {}
        for table in tables:
            columns = [
                row[0]
                for row in connection.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' "
                    "AND table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if row[0] not in RUN_SPECIFIC_COLUMNS
            ]
            select = ", ".join(f'"{column}"' for column in columns)
            where = f"WHERE as_of = DATE '{as_of}'" if table in SNAPSHOT_MARTS else ""
            contents[table] = connection.execute(
                f"SELECT {select} FROM marts.{table} {where} ORDER BY ALL"
            ).fetchall()
    return contents


def test_incremental_run_after_a_change_set_equals_a_full_rebuild(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    from ingestion.demo import apply_change

    # The shared org and its built warehouse (full run, then a no-change run) are copied, never mutated.
    demo = tmp_path / "demo"
    shutil.copytree(pipeline_run.demo_dir, demo)
    incremental = tmp_path / "incremental"
    incremental.mkdir()
    shutil.copy(pipeline_run.warehouse, incremental / "warehouse.duckdb")

    next_day = E2E_AS_OF + timedelta(days=1)
    truth = apply_change(demo, fraction=0.05, seed=11, as_of=next_day, quiet=True)
    changes = truth.data["change_sets"][-1]
    assert changes["as_of"] == next_day.isoformat()
    assert sum(sum(counts.values()) for counts in changes["rows"].values()) > 0
    assert changes["calendar_files_touched"]

    def env(root: Path) -> dict[str, str]:
        values = pipeline_env(
            demo / "crm.sqlite", demo / "calendars", root / "warehouse.duckdb", root / "dagster_home"
        )
        return {**values, "SALESOPS_AS_OF": next_day.isoformat()}

    incremental_run = execute_nightly(env(incremental))
    assert incremental_run.success
    loads = {
        event.materialization.asset_key.path[-1]: event.materialization.metadata
        for event in incremental_run.get_asset_materialization_events()
        if event.materialization.asset_key.path[0] == "raw"
    }
    # It really was incremental: the CRM loads read only the changed rows and the overlap window.
    assert loads["salesforce_task"]["full_load"].value is False
    assert loads["salesforce_task"]["rows_read"].value < loads["salesforce_task"]["rows_in_raw"].value
    calendar = loads["calendar_occurrences"]
    assert calendar["files_parsed"].value < calendar["files_total"].value

    full = tmp_path / "full"
    full.mkdir()
    full_run = execute_nightly(env(full))
    assert full_run.success

    after_incremental = mart_rows(incremental / "warehouse.duckdb", next_day.isoformat())
    after_full = mart_rows(full / "warehouse.duckdb", next_day.isoformat())
    assert set(after_incremental) == set(after_full)
    differing = [table for table, rows in after_full.items() if after_incremental[table] != rows]
    assert not differing, differing
    assert all(after_full[table] for table in SNAPSHOT_MARTS)
    # Not vacuous: the change set moved the marts away from what the night before built.
    before = mart_rows(pipeline_run.warehouse, E2E_AS_OF.isoformat())
    moved = [
        table for table, rows in after_full.items() if table not in SNAPSHOT_MARTS and before[table] != rows
    ]
    assert {"fct_opportunities", "lead_response_times"} <= set(moved), moved
    assert sum(len(rows) for rows in after_full.values()) > 1000
