"""Nothing depends on the host's time zone (issue 15).

DuckDB takes its default session time zone from the host once, when the ``duckdb`` module is
imported: changing ``TZ`` (and calling ``time.tzset()``) in a running test process reaches Python's
``time`` functions and the dbt subprocesses, but not the DuckDB connections the process opens. So
the project's code runs here in a fresh Python process started with ``TZ`` set, as on a host in
that zone: the parsing of hand-written raw text, and the whole nightly job, whose marts must equal
those of the session's in-process run (this host's zone: UTC under `make test`, another one in
.ci/run's second pass) value for value.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from orchestration.settings import DBT_PROJECT_DIR
from tests.conftest import PipelineRun, pipeline_env
from tests.mart_compare import QUALITY_MODELS, RUN_COLUMNS, duckdb_rows, table_differences

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, zone: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``code`` in a new Python process whose host time zone is ``zone``."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TZ": zone},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def project_parse_timestamp(column: str) -> str:
    """The DuckDB SQL of the dbt macro parse_timestamp (macros/parsing.sql) applied to ``column``."""
    macros = (DBT_PROJECT_DIR / "macros" / "parsing.sql").read_text()
    found = re.search(r"{% macro default__parse_timestamp\(column\) -%}(.*?){%- endmacro %}", macros, re.S)
    assert found, "default__parse_timestamp not found in dbt_project/macros/parsing.sql"
    return found.group(1).replace("{{ column }}", column).strip()


# --------------------------------------------------------------------------- parsing, by hand

# Raw text as the CRM sends it, and the naive UTC timestamp it stands for, worked out by hand.
RAW_TIMESTAMPS = [
    ("2026-03-31 23:30:00", datetime(2026, 3, 31, 23, 30)),  # no offset: UTC
    ("2026-03-31", datetime(2026, 3, 31, 0, 0)),  # a CloseDate: midnight UTC
    ("2026-03-29 02:30:00", datetime(2026, 3, 29, 2, 30)),  # not a wall-clock time in Berlin (DST gap)
    ("2026-11-01 01:30:00", datetime(2026, 11, 1, 1, 30)),  # twice a wall-clock time in Los Angeles
    ("2026-03-31T23:30:00.000+0000", datetime(2026, 3, 31, 23, 30)),
    ("2026-04-01T01:30:00+02:00", datetime(2026, 3, 31, 23, 30)),
    ("2026-03-31T16:30:00-07:00", datetime(2026, 3, 31, 23, 30)),
    ("not a date", None),
]

PARSE_SCRIPT = """
import json, sys
import duckdb
from ingestion.warehouse import Warehouse, connect_duckdb

timestamp_sql, path = sys.argv[1], sys.argv[2]
query = f"SELECT value, {timestamp_sql}, CAST({timestamp_sql} AS DATE) FROM raw_text ORDER BY position"
values = json.loads(sys.argv[3])

def parsed(connection):
    zone = connection.execute("SELECT current_setting('TimeZone')").fetchone()[0]
    rows = connection.execute(query).fetchall()
    return {"zone": zone, "rows": [[v, str(t) if t is not None else None, str(d) if d is not None else None]
                                   for v, t, d in rows]}

def fill(connection):
    connection.execute("CREATE OR REPLACE TABLE raw_text (position INTEGER, value VARCHAR)")
    connection.executemany("INSERT INTO raw_text VALUES (?, ?)", list(enumerate(values)))

out = {}
with duckdb.connect() as plain:
    fill(plain)
    out["plain"] = parsed(plain)
with Warehouse(path).connect() as connection:
    fill(connection)
    out["warehouse"] = parsed(connection)
    cursor = connection.cursor()
    out["warehouse_cursor"] = parsed(cursor)
    cursor.close()
with connect_duckdb(path, read_only=True) as connection:
    out["read_only"] = parsed(connection)
with connect_duckdb() as connection:
    fill(connection)
    out["in_memory"] = parsed(connection)
print(json.dumps(out))
"""


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Los_Angeles", "Asia/Tokyo"])
def test_text_without_offset_parses_as_utc_whatever_the_host_zone(zone: str, tmp_path: Path) -> None:
    values = [text for text, _ in RAW_TIMESTAMPS]
    done = run_python(
        PARSE_SCRIPT, zone, project_parse_timestamp("value"), str(tmp_path / "w.duckdb"), json.dumps(values)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [
        [text, str(moment) if moment else None, str(moment.date()) if moment else None]
        for text, moment in RAW_TIMESTAMPS
    ]
    # The premise: this host's zone is DuckDB's default, and a connection left at it misreads.
    assert out["plain"]["zone"] == zone
    assert out["plain"]["rows"] != expected
    for opened in ("warehouse", "warehouse_cursor", "read_only", "in_memory"):
        assert out[opened] == {"zone": "UTC", "rows": expected}, f"{opened} connection under TZ={zone}"


# --------------------------------------------------------------------------- PostgreSQL sessions


def test_postgres_sessions_run_in_utc_whatever_the_database_default(postgres_server: object) -> None:
    import psycopg
    from psycopg import sql

    from ingestion.sql_warehouse import SqlWarehouseWriter, utc_engine
    from tests.postgres import fresh_database

    server = fresh_database(postgres_server, "salesops_time_zone")  # type: ignore[arg-type]
    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL("ALTER DATABASE {} SET timezone TO 'America/Los_Angeles'").format(
                sql.Identifier(server.database)
            )
        )
    probe = (
        "SELECT current_setting('TimeZone'), CAST('2026-03-31 23:30:00' AS timestamptz) AT TIME ZONE 'UTC', "
        "CAST(CAST('2026-03-31 23:30:00' AS timestamptz) AS date), current_setting('statement_timeout')"
    )
    plain_dsn = f"host={server.host} port={server.port} user={server.user} dbname={server.database}"
    if server.password:
        plain_dsn += f" password={server.password}"
    with psycopg.connect(plain_dsn) as connection:
        assert connection.execute(probe).fetchone()[0] == "America/Los_Angeles"  # the premise

    expected = ("UTC", datetime(2026, 3, 31, 23, 30), date(2026, 3, 31))
    import sqlalchemy as sa

    for engine in (utc_engine(server.url), SqlWarehouseWriter(server.url).engine):
        try:
            with engine.connect() as connection:
                assert tuple(connection.execute(sa.text(probe)).one())[:3] == expected
        finally:
            engine.dispose()
    # Options the URL carries are kept.
    engine = utc_engine(sa.make_url(server.url).update_query_dict({"options": "-c statement_timeout=5000"}))
    try:
        with engine.connect() as connection:
            assert tuple(connection.execute(sa.text(probe)).one()) == (*expected, "5s")
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the whole nightly job


def utc_of(text: str | None) -> datetime | None:
    """A CRM datetime ('2026-02-24T13:21:35.000+0000', with or without offset) as naive UTC."""
    if not text:
        return None
    value = text.strip()
    value = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", value.replace("Z", "+00:00"))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def mart_tables(warehouse: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        marts = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
            "AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
    return [("marts", name) for (name,) in marts] + [("quality", name) for name in QUALITY_MODELS]


def host_zone() -> str:
    """DuckDB's default session zone in this process: the host's, read when duckdb was imported."""
    with duckdb.connect() as connection:
        return connection.execute("SELECT current_setting('TimeZone')").fetchone()[0]


@dataclass
class OtherZoneRun:
    host_zone: str  # this process's zone, that of the session's in-process run
    zone: str  # the other run's
    warehouse: Path


@pytest.fixture(scope="module")
def other_zone_run(pipeline_run: PipelineRun, tmp_path_factory: pytest.TempPathFactory) -> OtherZoneRun:
    """The nightly job (``python -m orchestration run``) on the session's demo org, on a host whose
    zone is Asia/Tokyo (America/Los_Angeles when this process already runs in Tokyo)."""
    here = host_zone()
    zone = "America/Los_Angeles" if here == "Asia/Tokyo" else "Asia/Tokyo"
    root = tmp_path_factory.mktemp("other_zone")
    env = pipeline_env(
        pipeline_run.crm, pipeline_run.calendars, root / "warehouse.duckdb", root / "dagster_home"
    )
    done = subprocess.run(
        [sys.executable, "-m", "orchestration", "run"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env, "TZ": zone},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, f"nightly run under TZ={zone} failed:\n{output}"
    return OtherZoneRun(here, zone, root / "warehouse.duckdb")


@pytest.mark.slow
def test_every_mart_is_the_same_in_another_host_zone(
    pipeline_run: PipelineRun, other_zone_run: OtherZoneRun
) -> None:
    """The session's in-process run (on this host, UTC under `make test`) and a run on a host in
    another zone build every mart and quality model with the same values."""
    assert pipeline_run.first.success and other_zone_run.host_zone != other_zone_run.zone
    tables = mart_tables(pipeline_run.warehouse)
    assert ("marts", "fct_opportunities") in tables and ("marts", "sales_forecast") in tables
    assert mart_tables(other_zone_run.warehouse) == tables
    problems = {}
    for schema, table in tables:
        columns_here, rows_here = duckdb_rows(pipeline_run.warehouse, schema, table)
        columns_there, rows_there = duckdb_rows(other_zone_run.warehouse, schema, table)
        found = table_differences(columns_here, rows_here, columns_there, rows_there, ignore=RUN_COLUMNS)
        if found:
            problems[f"{schema}.{table}"] = found
    assert not problems, (
        f"marts differ between hosts in two zones ('duckdb' below: TZ={other_zone_run.host_zone}, "
        f"'postgres': TZ={other_zone_run.zone}):\n"
        + "\n".join(f"{name}: {line}" for name, lines in problems.items() for line in lines[:3])
    )


@pytest.mark.slow
def test_close_dates_and_created_at_are_the_crm_values_in_another_host_zone(
    pipeline_run: PipelineRun, other_zone_run: OtherZoneRun
) -> None:
    with sqlite3.connect(pipeline_run.crm) as crm:
        source = {
            opportunity_id: (close_date, created_date)
            for opportunity_id, close_date, created_date in crm.execute(
                "SELECT Id, CloseDate, CreatedDate FROM opportunity"
            )
        }
    columns, rows = duckdb_rows(other_zone_run.warehouse, "marts", "fct_opportunities")
    compared = 0
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        close_text, created_text = source[values["opportunity_id"]]
        close_date, created_at = utc_of(close_text), utc_of(created_text)
        if close_date is not None:
            assert values["close_date"] == close_date.date(), (values["opportunity_id"], close_text)
        if created_at is not None:
            assert values["created_at"] == created_at, (values["opportunity_id"], created_text)
        compared += close_date is not None and created_at is not None
    assert compared >= 100
