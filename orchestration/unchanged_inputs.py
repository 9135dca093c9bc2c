"""Skipping work whose inputs have not changed since it last succeeded.

A night on which ingestion wrote nothing, for the same ``as_of`` and the same dbt project, would
rebuild exactly the marts, checks and report already published. The nightly job then skips the
dbt steps (and so everything downstream of them), and the raw suites carry their last result
forward for tables whose rows are unchanged. ``SALESOPS_FORCE_REBUILD=1`` turns both off.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import duckdb

from ingestion.warehouse import META_SCHEMA, Warehouse, ingested_fingerprints, utc_now

FORCE_ENV = "SALESOPS_FORCE_REBUILD"

_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.published_inputs (
        inputs_token VARCHAR NOT NULL, dagster_run_id VARCHAR NOT NULL, published_at TIMESTAMP NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.validated_inputs (
        layer VARCHAR NOT NULL, table_name VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL,
        dagster_run_id VARCHAR NOT NULL, validated_at TIMESTAMP NOT NULL, result_json VARCHAR NOT NULL,
        PRIMARY KEY (layer, table_name))""",
)


def forced() -> bool:
    return os.environ.get(FORCE_ENV, "").strip().lower() in {"1", "true", "yes"}


def _ensure(connection: duckdb.DuckDBPyConnection) -> None:
    for statement in _DDL:
        connection.execute(statement)


def inputs_token(warehouse: Warehouse, as_of: date, project_digest: str) -> str:
    """Everything the dbt build and what follows it read: the ingested tables, as_of, the project."""
    with warehouse.connect(read_only=True) as connection:
        fingerprints = ingested_fingerprints(connection)
    payload = json.dumps({"tables": fingerprints, "as_of": as_of.isoformat(), "project": project_digest},
                         sort_keys=True)  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()


def last_published_run(warehouse: Warehouse, token: str) -> str | None:
    """The run that last published marts built from exactly these inputs, if the latest one did."""
    with warehouse.connect() as connection:
        _ensure(connection)
        row = connection.execute(
            f"SELECT inputs_token, dagster_run_id FROM {META_SCHEMA}.published_inputs "
            "ORDER BY published_at DESC LIMIT 1"
        ).fetchone()
    return row[1] if row and row[0] == token else None


def mark_published(warehouse: Warehouse, token: str, run_id: str) -> None:
    with warehouse.connect() as connection:
        _ensure(connection)
        connection.execute(
            f"INSERT INTO {META_SCHEMA}.published_inputs VALUES (?, ?, ?)", [token, run_id, utc_now()]
        )


@dataclass(frozen=True)
class CarriedResult:
    """A table's last validation, reused while its rows are unchanged."""

    table: str
    dagster_run_id: str
    result: dict


def table_fingerprints(
    warehouse: Warehouse, schema: str, tables: Iterable[str], validated_with: str
) -> dict[str, str]:
    """Per table: its rows' fingerprint and ``validated_with`` (what else the result depends on)."""
    with warehouse.connect(read_only=True) as connection:
        fingerprints = ingested_fingerprints(connection)
    return {
        table: f"{fingerprints[f'{schema}.{table}']}|{validated_with}"
        for table in tables
        if f"{schema}.{table}" in fingerprints
    }


def carried_results(
    warehouse: Warehouse, layer: str, fingerprints: dict[str, str]
) -> dict[str, CarriedResult]:
    """Last results of the tables whose fingerprint matches the one they were validated at."""
    if forced() or not fingerprints:
        return {}
    with warehouse.connect() as connection:
        _ensure(connection)
        rows = connection.execute(
            "SELECT table_name, fingerprint, dagster_run_id, result_json "
            f"FROM {META_SCHEMA}.validated_inputs WHERE layer = ?",
            [layer],
        ).fetchall()
    return {
        table: CarriedResult(table, run_id, json.loads(result))
        for table, fingerprint, run_id, result in rows
        if fingerprints.get(table) == fingerprint
    }


def remember_validations(
    warehouse: Warehouse, layer: str, fingerprints: dict[str, str], results: dict[str, dict], run_id: str
) -> None:
    rows = [table for table in results if table in fingerprints]
    if not rows:
        return
    validated_at = utc_now()
    with warehouse.connect() as connection:
        _ensure(connection)
        connection.executemany(
            f"INSERT OR REPLACE INTO {META_SCHEMA}.validated_inputs VALUES (?, ?, ?, ?, ?, ?)",
            [
                [layer, table, fingerprints[table], run_id, validated_at, json.dumps(results[table])]
                for table in rows
            ],
        )
