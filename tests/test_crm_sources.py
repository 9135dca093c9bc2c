"""The same org through the SQL replica, the Salesforce REST API and the HubSpot API gives the same marts."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.conftest import PipelineRun
from tests.fakes.hubspot_server import FAKE_PRIVATE_APP_TOKEN, FakeHubSpot
from tests.fakes.salesforce_server import (
    FAKE_CLIENT_ID,
    FAKE_CLIENT_SECRET,
    FAKE_REFRESH_TOKEN,
    FakeSalesforce,
)
from tests.test_bad_input import run_cli

RUN_SPECIFIC_COLUMNS = {"run_started_at", "run_invocation_id"}


def mart_contents(warehouse: Path, without: dict[str, set[str]] | None = None) -> dict[str, list[tuple]]:
    """Every mart's rows, sorted, without run-specific columns (and the ``without`` ones per mart)."""
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
                if r[0] not in RUN_SPECIFIC_COLUMNS and r[0] not in (without or {}).get(table, set())
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


# Marts that need what HubSpot's CRM API does not have, and so differ from Salesforce's by design.
HUBSPOT_DIFFERENT_MARTS = {
    "campaign_efficiency": "no campaign object with costs",
    "quota_attainment": "no quota object",
    "pipeline_coverage": "no quota object",
    "pipeline_snapshots": "no quota object",
    "onboarding_progress": "owners have no hire date",
    "funnel_conversion": "every contact is a lead",
    "lead_response_times": "every contact is a lead; owners have no time zone",
    "lead_response_by_rep_week": "every contact is a lead; owners have no time zone",
    "crm_data_quality": "lead hygiene runs over every contact",
    "crm_data_quality_history": "lead hygiene runs over every contact",
}
# Columns HubSpot cannot fill in marts that are otherwise the same.
HUBSPOT_MISSING_COLUMNS = {
    "fct_opportunities": {"campaign_id"},
    "dim_reps": {"title", "manager_id", "manager_name", "time_zone", "hire_date"},
}


def test_marts_equal_through_the_sql_replica_and_the_hubspot_api(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with FakeHubSpot(pipeline_run.crm) as hubspot:
        env = {
            **pipeline_run.env,
            "SALESOPS_CRM_SOURCE": "hubspot",
            "SALESOPS_HUBSPOT_API_URL": hubspot.url,
            "SALESOPS_HUBSPOT_ACCESS_TOKEN": FAKE_PRIVATE_APP_TOKEN,
            "SALESOPS_HUBSPOT_LEAD_SOURCE_PROPERTY": "lead_source",
            "SALESOPS_WAREHOUSE": str(warehouse),
            "SALESOPS_SERVING_PATH": str(tmp_path / "serving.duckdb"),
            "DAGSTER_HOME": str(tmp_path / "home"),
        }
        completed = run_cli(env)
        hubspot_ids = dict(hubspot.id_map)
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert FAKE_PRIVATE_APP_TOKEN not in completed.stdout + completed.stderr

    through_hubspot = mart_contents(warehouse, HUBSPOT_MISSING_COLUMNS)
    through_sql = {
        table: sorted(
            (tuple(hubspot_ids.get(v, v) if isinstance(v, str) else v for v in row) for row in rows), key=repr
        )
        for table, rows in mart_contents(pipeline_run.warehouse, HUBSPOT_MISSING_COLUMNS).items()
    }
    assert set(through_hubspot) == set(through_sql)
    compared = sorted(set(through_sql) - set(HUBSPOT_DIFFERENT_MARTS))
    assert len(compared) == 11, compared
    for table in compared:
        assert sorted(through_hubspot[table], key=repr) == through_sql[table], table
    assert sum(len(through_sql[table]) for table in compared) > 1000
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        reconciliation = connection.execute(
            "SELECT source_table, raw_records, staging_records, is_reconciled FROM quality.raw_reconciliation"
        ).fetchall()
    reconciled_tables = {row[0] for row in reconciliation}
    assert reconciled_tables >= {"companies", "contacts", "deals", "calls", "emails", "tasks"}
    assert all(row[3] for row in reconciliation), reconciliation
