"""The same dbt project on PostgreSQL gives the same marts as on DuckDB, value for value.

The session's pipeline run (XS demo org, as_of 2026-06-15, tests/conftest.py) built the DuckDB
warehouse; its raw tables are copied into a PostgreSQL database (ingestion/sql_warehouse.py),
``dbt build --target postgres`` runs there with the vars the pipeline passes, and every table dbt
builds in marts and quality is compared with DuckDB's: same columns, same rows, floats within a
relative 1e-9, timestamps as naive UTC. The demo org has few malformed values, so the typing
macros (parse_timestamp, parse_number, parse_integer, parse_bool, json_of_columns) are also
compared directly on a list of awkward inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from ingestion.sql_warehouse import copy_duckdb_raw
from tests.conftest import E2E_AS_OF, PipelineRun
from tests.mart_compare import (
    MART_MODELS,
    QUALITY_MODELS,
    RUN_COLUMNS,
    duckdb_raw_counts,
    duckdb_rows,
    postgres_rows,
    same_value,
    table_differences,
)
from tests.postgres import DbtInvocation, PostgresServer, fresh_database, run_dbt, run_dbt_on_postgres


@dataclass
class PostgresBuild:
    server: PostgresServer
    copied: dict[str, int]
    dbt: DbtInvocation


@pytest.fixture(scope="module")
def postgres_build(
    pipeline_run: PipelineRun, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> PostgresBuild:
    assert pipeline_run.second.success, "the DuckDB pipeline run failed; nothing to compare"
    server = fresh_database(postgres_server, "salesops_e2e")
    copied = copy_duckdb_raw(pipeline_run.warehouse, server.url)
    dbt = run_dbt_on_postgres(
        server, E2E_AS_OF.isoformat(), tmp_path_factory.mktemp("dbt_postgres"), env=pipeline_run.env
    )
    return PostgresBuild(server, copied, dbt)


def test_raw_tables_are_copied_whole(pipeline_run: PipelineRun, postgres_build: PostgresBuild) -> None:
    expected = duckdb_raw_counts(pipeline_run.warehouse)
    assert postgres_build.copied == expected
    assert expected["salesforce_opportunity"] > 0 and expected["calendar_occurrences"] > 0


def test_dbt_build_succeeds_on_postgres(postgres_build: PostgresBuild) -> None:
    assert postgres_build.dbt.success, "dbt build --target postgres failed:\n" + postgres_build.dbt.tail()
    assert "ERROR=0" in postgres_build.dbt.output and "WARN=0" in postgres_build.dbt.output


@pytest.mark.parametrize(
    ("schema", "table"), [("marts", m) for m in MART_MODELS] + [("quality", m) for m in QUALITY_MODELS]
)
def test_table_equals_duckdb(
    schema: str, table: str, pipeline_run: PipelineRun, postgres_build: PostgresBuild
) -> None:
    if not postgres_build.dbt.success:
        pytest.fail("dbt build --target postgres failed:\n" + postgres_build.dbt.tail(20))
    duckdb_columns, duckdb_values = duckdb_rows(Path(pipeline_run.warehouse), schema, table)
    postgres_columns, postgres_values = postgres_rows(postgres_build.server.dsn, schema, table)
    problems = table_differences(
        duckdb_columns, duckdb_values, postgres_columns, postgres_values, ignore=RUN_COLUMNS
    )
    assert not problems, f"{schema}.{table}: DuckDB and PostgreSQL differ\n" + "\n".join(problems)
    if schema == "marts" and table not in ("crm_data_quality_history",):
        assert duckdb_values, f"{schema}.{table} is empty: the comparison would prove nothing"


# Raw text the typing macros must read alike on both warehouses (docs of the known differences:
# dbt_project/macros/adapters.sql).
AWKWARD_INPUTS = [
    None, "", " ", "abc", "2026-04-06T14:00:00Z", "2026-04-06T14:00:00.000Z", "2026-04-06T14:00:00.000+0000",
    "2026-04-06T14:00:00+09:00", "2026-04-06T14:00:00-0230", "2026-04-06", "2026-4-6", "2026-04-06 14:00",
    "2026-04-06T14:00:00.123456Z", "2026-04-06T14:00:00 America/New_York", "2026-04-06T14:00:00 UTC",
    "2026-04-06T14:00Z", " 2026-04-06", "2026-04-06 ", " 2026-04-06T14:00:00Z", "EPOCH",
    "2026-02-30", "2026-04-06T25:00:00", "20260406", "04/06/2026",
    "now", "today", "epoch", "infinity", "-infinity", "12.5", " 12.5 ", "1e5", "-3", "+5", ".5", "5.",
    "2.5", "-2.5", "3.5", "0.49999", "NaN", "nan", "Infinity", "-inf", "1e400", "1,000", "0x10", "- 5",
    "true", "T", "yes", "0", "n", "FALSE", "maybe", 'O\'Brien "quoted" \\ é', "tab\there",
]  # fmt: skip
PARSED = ("ts", "num", "int", "bool", "json")


def _inline_sql() -> str:
    values = ", ".join(
        "(cast(null as varchar))" if v is None else "('" + v.replace("'", "''") + "')" for v in AWKWARD_INPUTS
    )
    return (
        f"with inputs as (select * from (values {values}) as t(v)) "
        "select v, {{ parse_timestamp('v') }} as ts, {{ parse_number('v') }} as num, "
        "{{ parse_integer('v') }} as int, {{ parse_bool('v') }} as bool, "
        "{{ json_of_columns(['v']) }} as json from inputs"
    )


def _compiled(invocation: DbtInvocation) -> str:
    assert invocation.success, "dbt compile --inline failed:\n" + invocation.tail()
    text = invocation.output
    return text[text.index("with inputs as") :].strip()


def test_typing_macros_read_awkward_values_alike(
    postgres_build: PostgresBuild, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import psycopg

    assert postgres_build.dbt.success, "the PostgreSQL build (which creates the parsing functions) failed"
    work = tmp_path_factory.mktemp("dbt_inline")
    as_of = E2E_AS_OF.isoformat()
    args = ["compile", "--quiet", "--inline", _inline_sql()]
    duckdb_env = {"SALESOPS_WAREHOUSE": str(work / "scratch.duckdb")}
    duckdb_sql = _compiled(run_dbt("duckdb", args, work / "duckdb", duckdb_env, as_of))
    postgres_sql = _compiled(
        run_dbt("postgres", args, work / "postgres", postgres_build.server.dbt_env(), as_of)
    )
    with duckdb.connect() as connection:
        duckdb_values = {r[0]: r[1:] for r in connection.execute(duckdb_sql).fetchall()}
    with psycopg.connect(postgres_build.server.dsn) as connection:
        postgres_values = {r[0]: r[1:] for r in connection.execute(postgres_sql).fetchall()}
    assert len(duckdb_values) == len(postgres_values) == len(AWKWARD_INPUTS)
    problems = [
        f"{value!r} {name}: duckdb {a!r}, postgres {b!r}"
        for value in AWKWARD_INPUTS
        for name, a, b in zip(PARSED, duckdb_values[value], postgres_values[value], strict=True)
        if not same_value(a, b)
    ]
    assert not problems, "typing macros differ between DuckDB and PostgreSQL:\n" + "\n".join(problems)
    assert duckdb_values["2026-04-06T14:00:00+09:00"][0].hour == 5  # read, converted to UTC


@pytest.mark.parametrize("method", ["copy", "executemany"])
def test_raw_copy_keeps_every_value(
    method: str, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = tmp_path_factory.mktemp("raw_copy") / "warehouse.duckdb"
    with duckdb.connect(str(source)) as connection:
        connection.execute("CREATE SCHEMA raw")
        connection.execute(
            'CREATE TABLE raw.salesforce_account ("Id" VARCHAR, name VARCHAR, _loaded_at TIMESTAMP, '
            "_batch_id VARCHAR, is_all_day BOOLEAN, sequence BIGINT, score DOUBLE)"
        )
        connection.executemany(
            "INSERT INTO raw.salesforce_account VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                ["001A", "Ünïcode, \"quotes\", 'single', back\\slash, tab\there,\nnewline",
                 datetime(2026, 1, 2, 3, 4, 5, 678901), "b1", True, 3, 0.1],
                ["001B", None, None, None, None, None, None],
                ["001C", "", datetime(1999, 12, 31), "b2", False, -9007199254740993, -1e300],
            ],
        )  # fmt: skip
    database = fresh_database(postgres_server, f"salesops_raw_{method}")
    assert copy_duckdb_raw(source, database.url, method=method) == {"salesforce_account": 3}
    columns, values = duckdb_rows(source, "raw", "salesforce_account")
    pg_columns, pg_values = postgres_rows(database.dsn, "raw", "salesforce_account")
    assert pg_columns == [c.lower() for c in columns]  # lowercased, as unquoted references expect
    assert sorted(pg_values, key=str) == sorted(values, key=str)


def test_hubspot_staging_equals_duckdb(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """HubSpot's staging, canonical models, quarantine (malformed deals, offending values as JSON)
    and reconciliation, from the hand-written raw rows of tests/test_hubspot_staging.py."""
    from tests.test_hubspot_staging import _write_raw

    base = tmp_path_factory.mktemp("hubspot_postgres")
    warehouse = base / "warehouse.duckdb"
    _write_raw(warehouse)
    env = {"SALESOPS_CRM_SOURCE": "hubspot", "SALESOPS_WAREHOUSE": str(warehouse)}
    select = (
        "resource_type:seed path:models/staging/hubspot path:models/staging/crm quarantine raw_reconciliation"
    )
    args = ["build", "--select", select]
    on_duckdb = run_dbt("duckdb", args, base / "duckdb", env, E2E_AS_OF.isoformat())
    assert on_duckdb.success, on_duckdb.tail()
    database = fresh_database(postgres_server, "salesops_hubspot")
    copy_duckdb_raw(warehouse, database.url)
    on_postgres = run_dbt(
        "postgres", args, base / "postgres", {**env, **database.dbt_env()}, E2E_AS_OF.isoformat()
    )
    assert on_postgres.success, on_postgres.tail()
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('staging', 'quality') ORDER BY 1, 2"
        ).fetchall()
    problems = []
    for schema, table in tables:
        duckdb_columns, duckdb_values = duckdb_rows(warehouse, schema, table)
        postgres_columns, postgres_values = postgres_rows(database.dsn, schema, table)
        problems += [
            f"{schema}.{table}: {p}"
            for p in table_differences(
                duckdb_columns, duckdb_values, postgres_columns, postgres_values, ignore=RUN_COLUMNS
            )
        ]
    assert ("quality", "quarantine") in tables and ("staging", "stg_crm__opportunities") in tables
    assert not problems, "HubSpot staging differs between DuckDB and PostgreSQL:\n" + "\n".join(problems)
    quarantined = duckdb_rows(warehouse, "quality", "quarantine")[1]
    assert quarantined, "the hand-written HubSpot rows should quarantine some deals"
