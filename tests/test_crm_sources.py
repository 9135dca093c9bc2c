"""The same org through the SQL replica and through the Salesforce REST API gives the same marts."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.conftest import PipelineRun
from tests.fakes.salesforce_server import (
    FAKE_CLIENT_ID,
    FAKE_CLIENT_SECRET,
    FAKE_REFRESH_TOKEN,
    FakeSalesforce,
)
from tests.test_bad_input import run_cli

RUN_SPECIFIC_COLUMNS = {"run_started_at", "run_invocation_id"}


def mart_contents(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = [r[0] for r in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY 1"
        ).fetchall()]  # fmt: skip
        contents = {}
        for table in tables:
            columns = [
                r[0]
                for r in connection.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' "
                    "AND table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if r[0] not in RUN_SPECIFIC_COLUMNS
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            contents[table] = connection.execute(
                f"SELECT {select} FROM marts.{table} ORDER BY ALL"
            ).fetchall()
    return contents


def test_marts_equal_through_the_sql_replica_and_the_salesforce_api(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    with FakeSalesforce(pipeline_run.crm) as salesforce:
        env = {
            **pipeline_run.env,
            "SALESOPS_CRM_SOURCE": "salesforce",
            "SALESOPS_SALESFORCE_LOGIN_URL": salesforce.url,
            "SALESOPS_SALESFORCE_CLIENT_ID": FAKE_CLIENT_ID,
            "SALESOPS_SALESFORCE_CLIENT_SECRET": FAKE_CLIENT_SECRET,
            "SALESOPS_SALESFORCE_REFRESH_TOKEN": FAKE_REFRESH_TOKEN,
            "SALESOPS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "SALESOPS_SERVING_PATH": str(tmp_path / "serving.duckdb"),
            "DAGSTER_HOME": str(tmp_path / "home"),
        }
        completed = run_cli(env)
    assert completed.returncode == 0, completed.stdout[-3000:]
    for secret in (FAKE_CLIENT_SECRET, FAKE_REFRESH_TOKEN):
        assert secret not in completed.stdout + completed.stderr
    through_api = mart_contents(tmp_path / "warehouse.duckdb")
    through_sql = mart_contents(pipeline_run.warehouse)
    assert set(through_api) == set(through_sql)
    for table, rows in through_sql.items():
        assert through_api[table] == rows, table
    assert sum(len(rows) for rows in through_sql.values()) > 1000
