"""The DuckDB warehouse: raw tables written by ingestion, and the loader's bookkeeping in ``meta``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from ingestion.crm_sql import is_safe_identifier

RAW_SCHEMA = "raw"
META_SCHEMA = "meta"
LOAD_COLUMNS = {"_loaded_at": "TIMESTAMP", "_batch_id": "VARCHAR"}

_META_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}",
    f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.sync_state (
        source VARCHAR NOT NULL, table_name VARCHAR NOT NULL, cursor_value TIMESTAMP,
        updated_at TIMESTAMP NOT NULL, PRIMARY KEY (source, table_name))""",
    f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.load_batches (
        batch_id VARCHAR NOT NULL, source VARCHAR NOT NULL, table_name VARCHAR NOT NULL,
        rows BIGINT NOT NULL, committed_at TIMESTAMP NOT NULL)""",
)


def utc_now() -> datetime:
    """Current time as a naive UTC datetime (the warehouse stores UTC without zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def connect_duckdb(
    path: str | Path | None = None, read_only: bool = False, config: dict[str, object] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (to ``path``, or in memory) whose time zone is UTC, whatever the host's.

    DuckDB takes its session time zone from the host (TZ, /etc/localtime) when it is imported, and
    casts text without an offset to TIMESTAMPTZ, and TIMESTAMPTZ to dates, in that zone: on a
    Europe/Berlin host '2026-03-31 23:30:00' would become 21:30 UTC. Every connection the project
    opens goes through here. The zone is set on the database instance (``SET GLOBAL``), not only
    on this session, so cursors of the connection and other connections to the same file in this
    process use UTC too. It is set after connecting rather than passed in ``config``: DuckDB
    refuses a second in-process connection to a file already open with a different config.
    """
    database = ":memory:" if path is None else str(path)
    connection = duckdb.connect(database, read_only=read_only, config=dict(config or {}))
    try:
        connection.execute("SET GLOBAL TimeZone = 'UTC'")
    except BaseException:
        connection.close()
        raise
    return connection


def new_batch_id() -> str:
    return uuid.uuid4().hex


def quoted(identifier: str) -> str:
    """Quote an identifier after checking it against the allow-list pattern."""
    if not is_safe_identifier(identifier):
        raise ValueError(f"unsafe SQL identifier {identifier!r}")
    return f'"{identifier}"'


class Warehouse:
    """Opens short-lived connections to the DuckDB file, so that dbt can open it between steps."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = connect_duckdb(self.path, read_only=read_only)
        try:
            if not read_only:
                for statement in _META_DDL:
                    connection.execute(statement)
            yield connection
        finally:
            connection.close()

    def table_exists(self, connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
        found = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchone()
        return bool(found and found[0])

    def columns(self, connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
        rows = connection.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
        return [row[0] for row in rows]

    def ensure_text_table(
        self, connection: duckdb.DuckDBPyConnection, table: str, columns: list[str]
    ) -> None:
        """Create ``raw.<table>`` with text columns, or add columns the source gained since."""
        if not self.table_exists(connection, RAW_SCHEMA, table):
            column_sql = ", ".join(f"{quoted(c)} VARCHAR" for c in columns)
            load_sql = ", ".join(f"{quoted(c)} {t}" for c, t in LOAD_COLUMNS.items())
            connection.execute(f"CREATE TABLE {RAW_SCHEMA}.{quoted(table)} ({column_sql}, {load_sql})")
            return
        existing = set(self.columns(connection, RAW_SCHEMA, table))
        for column in columns:
            if column not in existing:
                connection.execute(
                    f"ALTER TABLE {RAW_SCHEMA}.{quoted(table)} ADD COLUMN {quoted(column)} VARCHAR"
                )

    def upsert_batch(
        self,
        connection: duckdb.DuckDBPyConnection,
        table: str,
        batch: pa.Table,
        key: str,
        batch_id: str,
        loaded_at: datetime,
        table_was_empty: bool,
    ) -> int:
        """Replace the rows of ``raw.<table>`` whose key's rows the batch changes: a new key, a
        changed value, or a different number of copies of one Id (a duplicated Id must stay visible).

        A key read again with exactly the rows raw holds (the overlap window re-reads a day of rows
        every night) keeps its ``_loaded_at`` and ``_batch_id``, so they say when its values last
        changed and a night with no change writes nothing. Returns the rows written. Must run inside
        the caller's transaction, so the batch and its cursor commit together.
        """
        connection.register("_incoming_batch", batch)
        try:
            target = f"{RAW_SCHEMA}.{quoted(table)}"
            where = ""
            if not table_was_empty:
                columns = ", ".join(quoted(column) for column in batch.column_names)
                key_sql = quoted(key)
                connection.execute(
                    f"CREATE OR REPLACE TEMP TABLE _held_rows AS SELECT {columns} FROM {target} "
                    f"WHERE {key_sql} IN (SELECT {key_sql} FROM _incoming_batch)"
                )
                connection.execute(
                    f"CREATE OR REPLACE TEMP TABLE _changed_keys AS "
                    f"SELECT {key_sql} FROM (SELECT {columns} FROM _incoming_batch EXCEPT ALL "
                    f"SELECT * FROM _held_rows) UNION "
                    f"SELECT {key_sql} FROM (SELECT * FROM _held_rows EXCEPT ALL "
                    f"SELECT {columns} FROM _incoming_batch)"
                )
                where = f" WHERE {key_sql} IN (SELECT {key_sql} FROM _changed_keys)"
                connection.execute(f"DELETE FROM {target}{where}")
            written = connection.execute(
                f"INSERT INTO {target} BY NAME "
                f"SELECT *, ?::TIMESTAMP AS _loaded_at, ? AS _batch_id FROM _incoming_batch{where}",
                [loaded_at, batch_id],
            ).fetchone()
            if where:
                connection.execute("DROP TABLE _held_rows")
                connection.execute("DROP TABLE _changed_keys")
        finally:
            connection.unregister("_incoming_batch")
        return int(written[0]) if written else 0

    def get_cursor(self, connection: duckdb.DuckDBPyConnection, source: str, table: str) -> datetime | None:
        row = connection.execute(
            f"SELECT cursor_value FROM {META_SCHEMA}.sync_state WHERE source = ? AND table_name = ?",
            [source, table],
        ).fetchone()
        return row[0] if row else None

    def set_cursor(
        self,
        connection: duckdb.DuckDBPyConnection,
        source: str,
        table: str,
        cursor_value: datetime | None,
    ) -> None:
        connection.execute(
            f"""INSERT INTO {META_SCHEMA}.sync_state VALUES (?, ?, ?, ?)
            ON CONFLICT (source, table_name) DO UPDATE
            SET cursor_value = excluded.cursor_value, updated_at = excluded.updated_at""",
            [source, table, cursor_value, utc_now()],
        )

    def record_batch(
        self,
        connection: duckdb.DuckDBPyConnection,
        batch_id: str,
        source: str,
        table: str,
        rows: int,
    ) -> None:
        connection.execute(
            f"INSERT INTO {META_SCHEMA}.load_batches VALUES (?, ?, ?, ?, ?)",
            [batch_id, source, table, rows, utc_now()],
        )

    def row_count(self, connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
        row = connection.execute(f"SELECT count(*) FROM {quoted(schema)}.{quoted(table)}").fetchone()
        return int(row[0]) if row else 0


# Tables ingestion writes outside ``raw`` that the marts, the quarantine counts or the serving
# database read, with the column that dates a new row.
INGESTION_SIDE_TABLES = {"quality.load_rejects": "first_seen", "quality.calendar_problems": "seen_at"}


def ingested_fingerprints(connection: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Per table ingestion writes: its row count and newest load time.

    Writes only ever insert rows stamped with the time of the load (an update is a delete and an
    insert, unchanged rows are not rewritten) and a delete lowers the count, so any change to a
    table changes its fingerprint.
    """
    dated = {
        f"{schema}.{table}": column
        for schema, table, column in connection.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE (table_schema = ? AND column_name = '_loaded_at') "
            "OR (table_schema || '.' || table_name, column_name) IN (SELECT * FROM (VALUES "
            + ", ".join("(?, ?)" for _ in INGESTION_SIDE_TABLES)
            + "))",
            [RAW_SCHEMA, *(item for pair in INGESTION_SIDE_TABLES.items() for item in pair)],
        ).fetchall()
    }
    if not dated:
        return {}
    counts = " UNION ALL ".join(
        f"SELECT '{name}', count(*), CAST(max({quoted(column)}) AS VARCHAR) "
        f"FROM {'.'.join(quoted(part) for part in name.split('.'))}"
        for name, column in sorted(dated.items())
    )
    return {name: f"{rows}@{newest}" for name, rows, newest in connection.execute(counts).fetchall()}
