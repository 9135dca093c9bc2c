"""Server warehouse mode: with SALESOPS_WAREHOUSE_URL the nightly job builds the marts in PostgreSQL.

The real command (``python -m orchestration run``) runs twice on the shared XS demo org with the
URL of a fresh database on the test server (a password in it: the private cluster trusts local
connections, so any password is accepted, and it must appear nowhere). The server's raw tables
must hold the DuckDB landing store's rows, every mart dbt builds there must equal the shared
DuckDB-only run's (tests/mart_compare.py), the forecast marts must be there too, and the second
run, with nothing changed, must ship no raw table and still succeed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from orchestration.settings import DBT_PROJECT_DIR
from tests.conftest import PipelineRun, pipeline_env
from tests.mart_compare import (
    MART_MODELS,
    RUN_COLUMNS,
    duckdb_raw_counts,
    duckdb_rows,
    postgres_rows,
    table_differences,
)
from tests.postgres import PostgresServer, fresh_database

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "FAKE-warehouse-password-5b7e"
FORECAST_MARTS = (
    "sales_forecast",
    "forecast_accuracy",
    "forecast_accuracy_summary",
    "forecast_stage_probabilities",
)


@dataclass
class ServerRuns:
    server: PostgresServer
    env: dict[str, str]
    warehouse: Path
    runs: list[subprocess.CompletedProcess[str]]


def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration", "run", "--verbose"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.fixture(scope="module")
def server_runs(
    demo_org: tuple[Path, object], postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> ServerRuns:
    demo_dir, _ = demo_org
    root = tmp_path_factory.mktemp("server_warehouse")
    database = fresh_database(postgres_server, "salesops_server_mode")
    server = PostgresServer(database.host, database.port, database.user, PASSWORD, database.database)
    warehouse = root / "data" / "warehouse.duckdb"
    env = {
        **pipeline_env(demo_dir / "crm.sqlite", demo_dir / "calendars", warehouse, root / "home"),
        "SALESOPS_WAREHOUSE_URL": server.url,
    }
    first = run_cli(env)
    second = run_cli(env)
    return ServerRuns(server, env, warehouse, [first, second])


def _output(run: subprocess.CompletedProcess[str]) -> str:
    return (run.stdout + run.stderr)[-4000:]


def test_both_runs_succeed(server_runs: ServerRuns) -> None:
    for run in server_runs.runs:
        assert run.returncode == 0, _output(run)
        assert "salesops nightly run: succeeded" in run.stdout


def test_server_raw_tables_hold_the_landing_rows(server_runs: ServerRuns) -> None:
    import psycopg

    landing = duckdb_raw_counts(server_runs.warehouse)
    with psycopg.connect(server_runs.server.dsn) as connection:
        on_server = {
            t: connection.execute(f'SELECT count(*) FROM raw."{t}"').fetchone()[0]
            for (t,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'"
            ).fetchall()
        }
    assert on_server == landing
    assert landing["salesforce_opportunity"] > 0 and landing["calendar_occurrences"] > 0


@pytest.mark.parametrize("table", MART_MODELS)
def test_server_mart_equals_duckdb_only_run(
    table: str, server_runs: ServerRuns, pipeline_run: PipelineRun
) -> None:
    assert pipeline_run.second.success, "the DuckDB-only pipeline run failed; nothing to compare"
    duckdb_columns, duckdb_values = duckdb_rows(Path(pipeline_run.warehouse), "marts", table)
    postgres_columns, postgres_values = postgres_rows(server_runs.server.dsn, "marts", table)
    problems = table_differences(
        duckdb_columns, duckdb_values, postgres_columns, postgres_values, ignore=RUN_COLUMNS
    )
    assert not problems, f"marts.{table}: DuckDB-only run and server warehouse differ\n" + "\n".join(problems)
    if table != "crm_data_quality_history":
        assert duckdb_values, f"marts.{table} is empty: the comparison would prove nothing"


@pytest.mark.parametrize("table", FORECAST_MARTS)
def test_forecast_marts_are_on_the_server(
    table: str, server_runs: ServerRuns, pipeline_run: PipelineRun
) -> None:
    columns, values = duckdb_rows(Path(pipeline_run.warehouse), "marts", table)
    server_columns, server_values = postgres_rows(server_runs.server.dsn, "marts", table)
    assert values, f"marts.{table} is empty in the DuckDB-only run"
    assert not table_differences(columns, values, server_columns, server_values)


def test_the_mirror_feeds_the_duckdb_consumers(server_runs: ServerRuns) -> None:
    """Staging and marts in the DuckDB file are the server's copies: the publication and the report
    were built from them."""
    with duckdb.connect(str(server_runs.warehouse), read_only=True) as connection:
        marts = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts'"
        ).fetchone()[0]
    assert marts >= len(MART_MODELS) + len(FORECAST_MARTS)
    first = server_runs.runs[0].stdout + server_runs.runs[0].stderr
    assert first.count("tables mirrored into DuckDB") == 2  # after each dbt step
    serving = Path(server_runs.env["SALESOPS_SERVING_PATH"])
    assert serving.is_file() and serving.with_name("report.html").is_file()


def test_second_run_ships_no_table(server_runs: ServerRuns) -> None:
    with duckdb.connect(str(server_runs.warehouse), read_only=True) as connection:
        shipped = connection.execute(
            "SELECT table_name, count(*) FROM meta.server_raw_shipped GROUP BY 1"
        ).fetchall()
    assert shipped and all(count == 1 for _, count in shipped)
    second = server_runs.runs[1]
    assert "shipped 0 raw tables (0 rows)" in second.stdout + second.stderr, _output(second)
    first = server_runs.runs[0]
    assert f"shipped {len(shipped)} raw tables" in first.stdout + first.stderr


def test_password_appears_nowhere(server_runs: ServerRuns) -> None:
    from dagster import DagsterInstance
    from dagster._serdes import serialize_value

    leaks = [
        f"run {i} output" for i, run in enumerate(server_runs.runs) if PASSWORD in run.stdout + run.stderr
    ]
    folders = (
        server_runs.warehouse.parent,
        Path(server_runs.env["DAGSTER_HOME"]),
        DBT_PROJECT_DIR / "target",
    )
    for folder in folders:
        for path in folder.rglob("*"):
            if (
                path.is_file()
                and path.suffix not in (".duckdb", ".wal")
                and PASSWORD.encode() in path.read_bytes()
            ):
                leaks.append(str(path))
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = server_runs.env["DAGSTER_HOME"]
    events = 0
    try:
        with DagsterInstance.get() as instance:
            runs = instance.get_runs()
            assert len(runs) == 2
            for run in runs:
                leaks += [f"run record {run.run_id}"] if PASSWORD in serialize_value(run) else []
                for entry in instance.all_logs(run.run_id):
                    events += 1
                    if PASSWORD in serialize_value(entry):
                        leaks.append(f"event {entry.dagster_event_type} of run {run.run_id}")
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
    assert events > 100
    assert leaks == []


def test_other_schemes_are_refused_in_one_line(tmp_path: Path) -> None:
    env = {
        "SALESOPS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "SALESOPS_WAREHOUSE_URL": f"mysql+pymysql://salesops:{PASSWORD}@db.invalid/salesops",
    }
    done = run_cli(env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: SALESOPS_WAREHOUSE_URL must be a postgresql+psycopg:// URL (dbt builds the marts only on "
        "PostgreSQL), not mysql+pymysql://"
    )
    assert PASSWORD not in done.stdout + done.stderr
