"""Incremental, idempotent load of CRM tables into ``raw``: upsert on Id, cursor on SystemModstamp."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ingestion import source_quarantine
from ingestion.contract import (
    CRM_CONTRACT,
    FIELD_MARTS,
    ID_COLUMN,
    MODSTAMP_COLUMN,
    OPTIONAL_TABLES,
    raw_table_name,
)
from ingestion.crash_points import crash_point
from ingestion.crm_sql import SOURCE_NAME, SourceTable, SqlCrmReader
from ingestion.errors import SourceError
from ingestion.warehouse import Warehouse, new_batch_id, utc_now

REJECTS_DDL = (
    "CREATE SCHEMA IF NOT EXISTS quality",
    """CREATE TABLE IF NOT EXISTS quality.load_rejects (
        source VARCHAR NOT NULL, table_name VARCHAR NOT NULL, rule VARCHAR NOT NULL,
        row_hash VARCHAR NOT NULL, record_values VARCHAR, batch_id VARCHAR NOT NULL,
        first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL,
        PRIMARY KEY (source, table_name, rule, row_hash))""",
    # Optional fields the source lacks, loaded as null: the marts they feed are partial.
    """CREATE TABLE IF NOT EXISTS quality.missing_fields (
        source VARCHAR NOT NULL, table_name VARCHAR NOT NULL, field VARCHAR NOT NULL,
        marts VARCHAR NOT NULL, first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL,
        PRIMARY KEY (source, table_name, field))""",
)

# Reasons a table present in the source cannot be read: the table is set aside (its last good rows
# stay) and the rest of the night goes on. Anything else (an unreachable CRM, a missing required
# table, a field map naming a column that does not exist) stops the night.
REFUSAL_RULES = frozenset({"required_column", "ambiguous_column", "ambiguous_table"})


@dataclass(frozen=True)
class LoadResult:
    source: str
    table: str
    raw_table: str
    batch_id: str
    rows_read: int
    rows_rejected: int
    rows_in_raw: int
    cursor_before: datetime | None
    cursor_after: datetime | None
    missing_fields: tuple[str, ...] = ()  # optional fields the source lacks (loaded as null)
    absent: bool = False  # an optional table the source does not have (raw left empty)
    refused: str | None = None  # why the table was set aside this run (its raw rows kept)

    @property
    def full_load(self) -> bool:
        return self.cursor_before is None


def parse_source_datetime(value: str | None) -> datetime | None:
    """Parse a CRM datetime (ISO-8601 with Z, +0000, +00:00 or none) to naive UTC."""
    if not value:
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def load_crm_table(
    reader: SqlCrmReader,
    warehouse: Warehouse,
    contract_table: str,
    overlap: timedelta = timedelta(days=1),
    full_refresh: bool = False,
) -> LoadResult:
    """Read new and changed rows of one CRM table and upsert them into ``raw``.

    Each batch commits together with the cursor it advances, so a crash loses no
    committed work and a re-run re-reads at most the overlap window. An optional table the source
    lacks leaves an empty raw table; a table the source has in a shape that cannot be read (a
    required column missing, two columns for one field) is set aside in quality.source_quarantine
    with its last good rows kept, unless it has none: then the night stops (SourceError).
    """
    raw_table = raw_table_name(contract_table)
    try:
        source_table = reader.describe(contract_table)
    except SourceError as error:
        if error.rule == "required_table" and contract_table in OPTIONAL_TABLES:
            return _empty_result(warehouse, contract_table, absent=True)
        if error.rule in REFUSAL_RULES:
            return _refuse(warehouse, contract_table, error)
        raise
    sync_started = utc_now()
    batch_id = new_batch_id()
    rows_read = rows_rejected = 0
    with warehouse.connect() as connection:
        for statement in REJECTS_DDL:
            connection.execute(statement)
        warehouse.ensure_text_table(connection, raw_table, source_table.warehouse_columns)
        _record_missing_fields(connection, source_table, sync_started)
        source_quarantine.release(connection, SOURCE_NAME, contract_table)
        cursor_before = None if full_refresh else warehouse.get_cursor(connection, SOURCE_NAME, raw_table)
        cursor = cursor_before
        table_was_empty = warehouse.row_count(connection, "raw", raw_table) == 0
        for batch in reader.iter_batches(source_table, cursor_before, overlap):
            batch = _with_missing_fields(batch, source_table)
            keyed, rejected = _split_missing_ids(batch)
            connection.begin()
            warehouse.upsert_batch(
                connection, raw_table, keyed, ID_COLUMN, batch_id, sync_started, table_was_empty
            )
            _record_rejects(connection, contract_table, rejected, batch_id, sync_started)
            cursor = _advance(connection, cursor, keyed, sync_started)
            warehouse.set_cursor(connection, SOURCE_NAME, raw_table, cursor)
            warehouse.record_batch(connection, batch_id, SOURCE_NAME, raw_table, batch.num_rows)
            crash_point("crm_batch")
            connection.commit()
            table_was_empty = False
            rows_read += batch.num_rows
            rows_rejected += rejected.num_rows
        rows_in_raw = warehouse.row_count(connection, "raw", raw_table)
    return LoadResult(
        SOURCE_NAME,
        contract_table,
        raw_table,
        batch_id,
        rows_read,
        rows_rejected,
        rows_in_raw,
        cursor_before,
        cursor,
        missing_fields=source_table.missing,
    )


def _contract_columns(contract_table: str) -> list[str]:
    return [field.lower() for field in CRM_CONTRACT[contract_table]]


def _empty_result(
    warehouse: Warehouse, contract_table: str, absent: bool = False, refused: str | None = None
) -> LoadResult:
    """The raw table as it stands (created empty, with the contract's columns, if new)."""
    raw_table = raw_table_name(contract_table)
    with warehouse.connect() as connection:
        warehouse.ensure_text_table(connection, raw_table, _contract_columns(contract_table))
        if absent:
            source_quarantine.release(connection, SOURCE_NAME, contract_table)
        rows = warehouse.row_count(connection, "raw", raw_table)
        cursor = warehouse.get_cursor(connection, SOURCE_NAME, raw_table)
    return LoadResult(
        SOURCE_NAME, contract_table, raw_table, "", 0, 0, rows, cursor, cursor, absent=absent, refused=refused
    )


def _refuse(warehouse: Warehouse, contract_table: str, error: SourceError) -> LoadResult:
    """Set the table aside, keeping its last good rows; with none to keep, stop the night."""
    with warehouse.connect() as connection:
        rule = error.rule or "refused"
        source_quarantine.quarantine(connection, SOURCE_NAME, contract_table, rule, error.problem)
    result = _empty_result(warehouse, contract_table, refused=str(error))
    if result.rows_in_raw == 0 and contract_table not in OPTIONAL_TABLES:
        raise SourceError(
            SOURCE_NAME,
            f"{error.problem} (and no earlier load to fall back on)",
            table=contract_table,
            rule=error.rule,
        )
    return result


def _with_missing_fields(batch: pa.Table, table: SourceTable) -> pa.Table:
    for field in table.missing:
        batch = batch.append_column(field.lower(), pa.nulls(batch.num_rows, pa.string()))
    return batch


def _record_missing_fields(connection: duckdb.DuckDBPyConnection, table: SourceTable, now: datetime) -> None:
    """quality.missing_fields lists, per table, the optional fields its source lacks right now."""
    recorded = connection.execute(
        "SELECT field FROM quality.missing_fields WHERE source = ? AND table_name = ?",
        [SOURCE_NAME, table.contract_name],
    ).fetchall()
    for (field,) in recorded:
        if field not in table.missing:
            connection.execute(
                "DELETE FROM quality.missing_fields WHERE source = ? AND table_name = ? AND field = ?",
                [SOURCE_NAME, table.contract_name, field],
            )
    for field in table.missing:
        marts = ", ".join(FIELD_MARTS.get((table.contract_name, field), ()))
        connection.execute(
            """INSERT INTO quality.missing_fields VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (source, table_name, field) DO UPDATE SET last_seen = excluded.last_seen""",
            [SOURCE_NAME, table.contract_name, field, marts, now, now],
        )


def _split_missing_ids(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
    ids = batch.column(ID_COLUMN)
    missing = pc.or_(pc.is_null(ids), pc.equal(pc.utf8_trim_whitespace(ids), ""))
    missing = pc.fill_null(missing, True)
    return batch.filter(pc.invert(missing)), batch.filter(missing)


def _advance(
    connection: duckdb.DuckDBPyConnection, cursor: datetime | None, batch: pa.Table, sync_started: datetime
) -> datetime | None:
    """The newest parseable SystemModstamp seen, never past the moment this sync started.

    Parsed rather than compared as text: an impossible date such as 2026-13-01 sorts after every
    real one as text, and must not stop the cursor from moving (its record is quarantined).
    """
    if batch.num_rows == 0:
        return cursor
    connection.register("_cursor_batch", batch.select([MODSTAMP_COLUMN]))
    try:
        row = connection.execute(
            f"SELECT max(timezone('UTC', try_cast({MODSTAMP_COLUMN} AS TIMESTAMPTZ))) FROM _cursor_batch"
        ).fetchone()
    finally:
        connection.unregister("_cursor_batch")
    newest = row[0] if row else None
    if newest is None:
        return cursor
    newest = min(newest, sync_started)
    return newest if cursor is None else max(cursor, newest)


def _record_rejects(
    connection: object, table: str, rejected: pa.Table, batch_id: str, seen_at: datetime
) -> None:
    for row in rejected.to_pylist():
        values = json.dumps(row, sort_keys=True, default=str)
        connection.execute(  # type: ignore[attr-defined]
            """INSERT INTO quality.load_rejects VALUES (?, ?, 'missing_id', md5(?), ?, ?, ?, ?)
            ON CONFLICT (source, table_name, rule, row_hash)
            DO UPDATE SET last_seen = excluded.last_seen, batch_id = excluded.batch_id""",
            [SOURCE_NAME, table, values, values, batch_id, seen_at, seen_at],
        )
