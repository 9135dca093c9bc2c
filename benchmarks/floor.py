"""The floor: the same work with no orchestration, checks or per-row Python.

``python -m benchmarks.floor --crm FILE --calendars DIR --warehouse FILE --as-of DATE`` prints JSON.

1. CRM: every table of the CRM contract read whole with a bare ``sqlite3`` cursor (every column cast
   to text in SQLite, as the pipeline does; text decoded by sqlite3 itself, no Python per value),
   100,000 rows per ``fetchmany``, each chunk handed to DuckDB as an Arrow table (one
   ``INSERT ... SELECT`` per chunk) into the same raw tables.
2. Calendars: every ``.ics`` file parsed once with the pipeline's own parser
   (``ingestion.calendar_ics.parse_calendar_files``), in parallel across all cores (a process
   per core, as the pipeline does), rows inserted into DuckDB in chunks of files through Arrow.
3. Marts: the dbt project compiled beforehand (``dbt compile``, not timed), then every enabled seed
   and model's compiled SQL executed once, in dependency order, as ``CREATE TABLE/VIEW ... AS`` in
   one DuckDB connection: no dbt run, no tests, no docs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from ingestion.calendar_ics import ExpansionWindow, parse_calendar_files
from ingestion.calendar_load import (
    ATTENDEE_SCHEMA,
    ATTENDEES_TABLE,
    OCCURRENCE_SCHEMA,
    OCCURRENCES_TABLE,
    list_calendar_files,
)
from ingestion.contract import CRM_TABLES, raw_table_name
from ingestion.crm_sql import SqlCrmReader, warehouse_column_name
from ingestion.warehouse import connect_duckdb

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_DIR = PROJECT_ROOT / "dbt_project"
FETCH_ROWS = 100_000
FILES_PER_INSERT = 200


def load_crm(crm: Path, connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows: dict[str, int] = {}
    source = sqlite3.connect(f"file:{crm}?mode=ro", uri=True)  # sqlite3 decodes text in C
    actual = {name.lower(): name for (name,) in source.execute("SELECT name FROM sqlite_master")}
    connection.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for table in CRM_TABLES:
        name = actual[table.lower()]
        columns = [row[1] for row in source.execute(f'PRAGMA table_info("{name}")')]
        names = [warehouse_column_name(column) for column in columns]
        target = f"raw.{raw_table_name(table)}"
        ddl = ", ".join(f'"{column}" VARCHAR' for column in names)
        connection.execute(f"CREATE TABLE {target} ({ddl}, _loaded_at TIMESTAMP, _batch_id VARCHAR)")
        cursor = source.execute(
            "SELECT " + ", ".join(f'CAST("{column}" AS TEXT)' for column in columns) + f' FROM "{name}"'
        )
        count = 0
        while chunk := cursor.fetchmany(FETCH_ROWS):
            values = zip(*chunk, strict=True)
            arrow = pa.table({n: pa.array(v, pa.string()) for n, v in zip(names, values, strict=True)})
            connection.register("_chunk", arrow)
            connection.execute(f"INSERT INTO {target} SELECT *, now()::TIMESTAMP, 'floor' FROM _chunk")
            connection.unregister("_chunk")
            count += len(chunk)
        rows[table] = count
    source.close()
    return rows


def load_calendars(
    calendars: Path, window: ExpansionWindow, connection: duckdb.DuckDBPyConnection
) -> dict[str, int]:
    files = list_calendar_files(calendars)
    tables = ((OCCURRENCES_TABLE, OCCURRENCE_SCHEMA), (ATTENDEES_TABLE, ATTENDEE_SCHEMA))
    buffers: dict[str, list[tuple]] = {name: [] for name, _ in tables}
    totals = {"files": 0, OCCURRENCES_TABLE: 0, ATTENDEES_TABLE: 0}
    for name, schema in tables:
        columns = ", ".join(f'"{field.name}" {_duckdb_type(field.type)}' for field in schema)
        connection.execute(f"CREATE TABLE raw.{name} ({columns}, _loaded_at TIMESTAMP, _batch_id VARCHAR)")

    def flush() -> None:
        for name, schema in tables:
            rows = buffers[name]
            if rows:
                values = zip(*rows, strict=True)
                arrow = pa.table({f.name: pa.array(v, f.type) for f, v in zip(schema, values, strict=True)})
                connection.register("_chunk", arrow)
                connection.execute(f"INSERT INTO raw.{name} SELECT *, now()::TIMESTAMP, 'floor' FROM _chunk")
                connection.unregister("_chunk")
                totals[name] += len(rows)
            buffers[name] = []

    workers = os.cpu_count() or 1
    for parsed in parse_calendar_files(files, calendars, window, 1000, workers=workers):
        if isinstance(parsed, Exception):
            raise parsed
        buffers[OCCURRENCES_TABLE].extend(parsed.occurrences)
        buffers[ATTENDEES_TABLE].extend(parsed.attendees)
        totals["files"] += 1
        if totals["files"] % FILES_PER_INSERT == 0:
            flush()
    flush()
    totals["workers"] = workers
    return totals


def _duckdb_type(arrow_type: pa.DataType) -> str:
    return {
        pa.string(): "VARCHAR",
        pa.timestamp("us"): "TIMESTAMP",
        pa.bool_(): "BOOLEAN",
        pa.int64(): "BIGINT",
    }[arrow_type]


def compile_project(warehouse: Path, as_of: date, target: Path) -> dict:
    """``dbt compile`` against the (still empty) floor warehouse; returns the manifest."""
    env = {
        **os.environ,
        "SALESOPS_WAREHOUSE": str(warehouse),
        "SALESOPS_AS_OF": as_of.isoformat(),
        "SALESOPS_CRM_SOURCE": "sql",
    }
    command = [
        str(Path(sys.executable).with_name("dbt")),
        "compile",
        "--quiet",
        "--project-dir",
        str(DBT_DIR),
        "--profiles-dir",
        str(DBT_DIR),
        "--target-path",
        str(target),
        "--vars",
        json.dumps({"as_of": as_of.isoformat()}),
    ]
    subprocess.run(command, cwd=DBT_DIR, env=env, check=True, capture_output=True, text=True)
    return json.loads((target / "manifest.json").read_text())


def execution_order(manifest: dict) -> list[dict]:
    nodes = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed") and node["config"].get("enabled", True)
    }
    ordered: list[dict] = []
    done: set[str] = set()

    def visit(uid: str) -> None:
        if uid in done:
            return
        done.add(uid)
        for parent in nodes[uid]["depends_on"].get("nodes", []):
            if parent in nodes:
                visit(parent)
        ordered.append(nodes[uid])

    for uid in sorted(nodes):
        visit(uid)
    return ordered


def run_models(manifest: dict, connection: duckdb.DuckDBPyConnection) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for node in execution_order(manifest):
        started = time.perf_counter()
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{node["database"]}"."{node["schema"]}"')
        relation = node["relation_name"]
        if node["resource_type"] == "seed":
            path = DBT_DIR / node["original_file_path"]
            types = node["config"].get("column_types") or {}
            struct = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in types.items()) + "}"
            connection.execute(
                f"CREATE OR REPLACE TABLE {relation} AS "
                f"SELECT * FROM read_csv('{path}', header = true, types = {struct})"
            )
        else:
            kind = "VIEW" if node["config"]["materialized"] == "view" else "TABLE"
            connection.execute(f"CREATE OR REPLACE {kind} {relation} AS {node['compiled_code']}")
        seconds[node["name"]] = round(time.perf_counter() - started, 3)
    return seconds


def run_floor(crm: Path, calendars: Path, warehouse: Path, as_of: date) -> dict[str, object]:
    for stale in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        stale.unlink(missing_ok=True)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    manifest = compile_project(warehouse, as_of, warehouse.parent / "dbt_target")
    compile_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    warehouse.unlink(missing_ok=True)  # compile may have created it: start from an empty file
    # The calendar expansion window exactly as the pipeline computes it (not timed: a lookup).
    from orchestration.assets.ingestion import expansion_window

    reader = SqlCrmReader(f"sqlite:///{crm}")
    window = expansion_window(reader.earliest_created_at(), as_of, 90)
    reader.close()

    with connect_duckdb(warehouse) as connection:
        started = time.perf_counter()
        crm_rows = load_crm(crm, connection)
        crm_seconds = time.perf_counter() - started

        started = time.perf_counter()
        calendar = load_calendars(calendars, window, connection)
        calendar_seconds = time.perf_counter() - started

        started = time.perf_counter()
        models = run_models(manifest, connection)
        marts_seconds = time.perf_counter() - started

    return {
        "crm_seconds": round(crm_seconds, 3),
        "crm_rows": sum(crm_rows.values()),
        "crm_rows_by_table": crm_rows,
        "calendar_seconds": round(calendar_seconds, 3),
        "calendar": calendar,
        "marts_sql_seconds": round(marts_seconds, 3),
        "models_executed": len(models),
        "slowest_models": dict(sorted(models.items(), key=lambda item: -item[1])[:5]),
        "total_seconds": round(crm_seconds + calendar_seconds + marts_seconds, 3),
        # CPU of the untimed ``dbt compile`` (a child process), for the caller to leave out.
        "compile_cpu_seconds": round(compile_usage.ru_utime + compile_usage.ru_stime, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__)
    parser.add_argument("--crm", type=Path, required=True)
    parser.add_argument("--calendars", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    args = parser.parse_args(argv)
    result = run_floor(args.crm.resolve(), args.calendars.resolve(), args.warehouse.resolve(), args.as_of)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
