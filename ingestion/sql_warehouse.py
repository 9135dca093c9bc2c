"""Raw tables written through SQLAlchemy to a server warehouse (``SALESOPS_WAREHOUSE_URL``).

The same raw tables the DuckDB warehouse holds (CRM tables as text, calendar tables typed, each
with ``_loaded_at`` and ``_batch_id``) written into schema ``raw`` of any SQLAlchemy database:
PostgreSQL through psycopg's COPY, any other database through executemany. Column names are
lowercased, as dbt's unquoted references expect on PostgreSQL.

``copy_duckdb_raw`` copies the ``raw`` schema of a built DuckDB warehouse into such a database,
so that dbt can build the same marts there (tests/test_postgres_marts.py); ``copy_duckdb_table``
copies one table of an open DuckDB connection (the nightly job's raw shipment and forecast marts).
``mirror_postgres_tables`` copies tables the other way, from PostgreSQL into the DuckDB file (the
nightly job's mirror of dbt's schemas, orchestration/assets/server_warehouse.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ingestion.crm_sql import is_safe_identifier, redact_url
from ingestion.warehouse import RAW_SCHEMA, connect_duckdb

# Column types a raw table may hold, by their portable name.
SQL_TYPES: dict[str, sa.types.TypeEngine] = {
    "text": sa.Text(),
    "timestamp": sa.DateTime(timezone=False),
    "date": sa.Date(),
    "boolean": sa.Boolean(),
    "bigint": sa.BigInteger(),
    "double": sa.Double(),
}
LOAD_COLUMNS = (("_loaded_at", "timestamp"), ("_batch_id", "text"))

# DuckDB column types onto those names; anything else is copied as text.
_DUCKDB_TYPES = {
    "VARCHAR": "text",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "DATE": "date",
    "BOOLEAN": "boolean",
    "TINYINT": "bigint",
    "SMALLINT": "bigint",
    "INTEGER": "bigint",
    "BIGINT": "bigint",
    "UTINYINT": "bigint",
    "USMALLINT": "bigint",
    "UINTEGER": "bigint",
    "DOUBLE": "double",
    "FLOAT": "double",
}

BATCH_ROWS = 10_000

# libpq option pinning a PostgreSQL session's time zone (the server's default may be any zone).
UTC_SESSION_OPTION = "-c timezone=UTC"


def utc_engine(url: str | sa.URL) -> Engine:
    """A SQLAlchemy engine on ``url`` whose PostgreSQL sessions run in UTC.

    A session's time zone decides how PostgreSQL reads timestamp text without an offset into
    timestamptz, compares a naive timestamp with a timestamptz, and casts timestamptz to date or
    text. It is the server's ``timezone`` setting unless the client sets it: pinned here (as a
    startup option, after any ``options`` the URL carries), so nothing depends on the server's zone.
    """
    url = sa.make_url(url)
    if url.get_backend_name() != "postgresql":
        return sa.create_engine(url)
    options = " ".join(filter(None, [str(url.query.get("options") or ""), UTC_SESSION_OPTION]))
    return sa.create_engine(url, connect_args={"options": options})


@dataclass(frozen=True)
class RawTable:
    """One raw table to write: its name in ``raw``, its columns (name, portable type) and rows."""

    name: str
    columns: Sequence[tuple[str, str]]
    rows: Iterable[Sequence[object]]

    @classmethod
    def text(cls, name: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> RawTable:
        """A CRM-style table: every source column text, then ``_loaded_at`` and ``_batch_id``."""
        return cls(name, [*((c, "text") for c in columns), *LOAD_COLUMNS], rows)


def _identifier(name: str) -> str:
    lowered = name.lower()
    if not is_safe_identifier(lowered):
        raise ValueError(f"unsafe SQL identifier {name!r}")
    return lowered


def _batches(rows: Iterable[Sequence[object]], size: int) -> Iterator[list[Sequence[object]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


class SqlWarehouseWriter:
    """Writes raw tables into schema ``raw`` of the database at a SQLAlchemy URL.

    Each table is replaced whole (dropped, created, filled) in one transaction, so a reader sees
    the previous table or the new one, never a half-written one.
    """

    def __init__(self, url: str | sa.URL, method: str = "auto", schema: str = RAW_SCHEMA) -> None:
        if method not in ("auto", "copy", "executemany"):
            raise ValueError(f"unknown write method {method!r}")
        self.url = sa.make_url(url)
        self.schema = _identifier(schema)
        self.method = method
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = utc_engine(self.url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> SqlWarehouseWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def uses_copy(self) -> bool:
        is_psycopg = self.url.get_backend_name() == "postgresql" and self.url.get_driver_name() == "psycopg"
        if self.method == "copy" and not is_psycopg:
            raise ValueError(f"COPY needs a postgresql+psycopg URL, not {redact_url(str(self.url))}")
        return self.method == "copy" or (self.method == "auto" and is_psycopg)

    def write_tables(self, tables: Iterable[RawTable]) -> dict[str, int]:
        """Replace each table in ``raw``; returns the rows written per table."""
        written = {}
        for table in tables:
            written[table.name] = self.write_table(table)
        return written

    def write_table(self, table: RawTable) -> int:
        name = _identifier(table.name)
        metadata = sa.MetaData()
        target = sa.Table(
            name,
            metadata,
            *(sa.Column(_identifier(column), SQL_TYPES[kind]) for column, kind in table.columns),
            schema=self.schema,
        )
        with self.engine.begin() as connection:
            connection.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
            target.drop(connection, checkfirst=True)
            target.create(connection)
            if self.uses_copy:
                return self._copy_rows(connection, target, table.rows)
            return self._insert_rows(connection, target, table.rows)

    def _copy_rows(self, connection: Connection, target: sa.Table, rows: Iterable[Sequence[object]]) -> int:
        from psycopg import sql

        driver_connection = connection.connection.driver_connection
        statement = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
            sql.Identifier(self.schema),
            sql.Identifier(target.name),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in target.columns),
        )
        count = 0
        with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def _insert_rows(self, connection: Connection, target: sa.Table, rows: Iterable[Sequence[object]]) -> int:
        names = [c.name for c in target.columns]
        count = 0
        for batch in _batches(rows, BATCH_ROWS):
            connection.execute(target.insert(), [dict(zip(names, row, strict=True)) for row in batch])
            count += len(batch)
        return count


def duckdb_raw_tables(
    connection: duckdb.DuckDBPyConnection, tables: Sequence[str] | None = None, schema: str = RAW_SCHEMA
) -> list[str]:
    """The tables of schema ``raw`` (or ``schema``) in a DuckDB warehouse (or the named ones), sorted."""
    found = [
        row[0]
        for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY 1", [schema]
        ).fetchall()
    ]
    if tables is None:
        return found
    missing = sorted(set(tables) - set(found))
    if missing:
        raise ValueError(f"no table {schema}.{missing[0]} in the DuckDB warehouse")
    return [t for t in found if t in set(tables)]


def _duckdb_columns(
    connection: duckdb.DuckDBPyConnection, table: str, schema: str = RAW_SCHEMA
) -> list[tuple[str, str, str]]:
    """(column, DuckDB type, portable type) of ``<schema>.<table>``."""
    rows = connection.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return [(name, data_type, _DUCKDB_TYPES.get(data_type.upper(), "text")) for name, data_type in rows]


def _select_sql(table: str, columns: list[tuple[str, str, str]], schema: str = RAW_SCHEMA) -> str:
    def expression(name: str, data_type: str, kind: str) -> str:
        quoted = f'"{_identifier(name)}"'
        if data_type.upper() == "TIMESTAMP WITH TIME ZONE":
            return f"timezone('UTC', {quoted})"
        if kind == "text" and data_type.upper() != "VARCHAR":
            return f"CAST({quoted} AS VARCHAR)"
        return quoted

    select_list = ", ".join(expression(*column) for column in columns)
    return f'SELECT {select_list} FROM {_identifier(schema)}."{_identifier(table)}"'


def _fetch(cursor: duckdb.DuckDBPyConnection, size: int) -> Iterator[tuple]:
    while rows := cursor.fetchmany(size):
        yield from rows


def copy_duckdb_table(
    source: duckdb.DuckDBPyConnection, writer: SqlWarehouseWriter, table: str, schema: str = RAW_SCHEMA
) -> int:
    """Copy ``<schema>.<table>`` of an open DuckDB connection into the writer's schema, replacing the
    table there in one transaction; returns the rows copied."""
    columns = _duckdb_columns(source, table, schema)
    cursor = source.cursor()
    try:
        cursor.execute(_select_sql(table, columns, schema))
        raw_table = RawTable(table, [(name, kind) for name, _, kind in columns], _fetch(cursor, BATCH_ROWS))
        return writer.write_table(raw_table)
    finally:
        cursor.close()


def copy_duckdb_raw(
    duckdb_path: str | Path,
    url: str | sa.URL,
    tables: Sequence[str] | None = None,
    method: str = "auto",
) -> dict[str, int]:
    """Copy schema ``raw`` of the DuckDB warehouse (every table, or the named ones) into the
    database at ``url``, replacing the tables there; returns the rows copied per table."""
    copied: dict[str, int] = {}
    with (
        connect_duckdb(duckdb_path, read_only=True) as source,
        SqlWarehouseWriter(url, method=method) as writer,
    ):
        for table in duckdb_raw_tables(source, tables):
            copied[table] = copy_duckdb_table(source, writer, table)
    return copied


# PostgreSQL column types onto DuckDB's (and the Arrow type the rows travel in); anything else is
# read as text. numeric is read as double precision: DuckDB builds these columns as DOUBLE.
_POSTGRES_TYPES: dict[str, tuple[str, pa.DataType, str]] = {
    # typname: (DuckDB type, Arrow type, cast applied in the SELECT)
    "bool": ("BOOLEAN", pa.bool_(), ""),
    "int2": ("SMALLINT", pa.int16(), ""),
    "int4": ("INTEGER", pa.int32(), ""),
    "int8": ("BIGINT", pa.int64(), ""),
    "float4": ("DOUBLE", pa.float64(), "double precision"),
    "float8": ("DOUBLE", pa.float64(), ""),
    "numeric": ("DOUBLE", pa.float64(), "double precision"),
    "text": ("VARCHAR", pa.string(), ""),
    "varchar": ("VARCHAR", pa.string(), ""),
    "bpchar": ("VARCHAR", pa.string(), ""),
    "date": ("DATE", pa.date32(), ""),
    "timestamp": ("TIMESTAMP", pa.timestamp("us"), ""),
    "timestamptz": ("TIMESTAMPTZ", pa.timestamp("us", tz="UTC"), ""),
    "interval": ("INTERVAL", pa.duration("us"), ""),
}
_TEXT = ("VARCHAR", pa.string(), "text")


@dataclass(frozen=True)
class _MirrorColumn:
    name: str
    duckdb_type: str
    arrow_type: pa.DataType
    select: str


def _postgres_columns(cursor: Any, schema: str, table: str) -> list[_MirrorColumn]:
    cursor.execute(
        "SELECT a.attname, t.typname, t.typcategory, e.typname FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        [schema, table],
    )
    columns = []
    for name, type_name, category, element in cursor.fetchall():
        quoted = '"' + _identifier(name) + '"'
        if category == "A":
            duckdb_type, arrow_type, cast = _POSTGRES_TYPES.get(element, _TEXT)
            select = f"{quoted}::{cast}[]" if cast else quoted
            columns.append(_MirrorColumn(name, f"{duckdb_type}[]", pa.list_(arrow_type), select))
        else:
            duckdb_type, arrow_type, cast = _POSTGRES_TYPES.get(type_name, _TEXT)
            columns.append(
                _MirrorColumn(name, duckdb_type, arrow_type, f"{quoted}::{cast}" if cast else quoted)
            )
    return columns


def mirror_postgres_tables(
    url: str | sa.URL,
    target: duckdb.DuckDBPyConnection,
    relations: Sequence[tuple[str, str]],
    batch_rows: int = 50_000,
) -> dict[str, int]:
    """Copy tables (schema, name) of the PostgreSQL database at ``url`` into an open DuckDB
    connection, replacing them there; returns rows per ``schema.name``.

    Only base tables are copied: views, and tables missing on PostgreSQL, are left alone. All
    tables are read in one repeatable-read snapshot and replaced in one DuckDB transaction: a
    reader of the DuckDB file sees the previous copies or the new ones, never a mix.
    """
    engine = utc_engine(url)
    mirrored: dict[str, int] = {}
    try:
        with engine.connect() as connection:
            import psycopg

            source = connection.connection.driver_connection
            source.rollback()
            source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            source.read_only = True
            with source.cursor() as cursor:
                cursor.execute(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_type = 'BASE TABLE'"
                )
                present = set(cursor.fetchall())
                wanted = [(s, t) for s, t in relations if (s, t) in present]
                columns = {relation: _postgres_columns(cursor, *relation) for relation in wanted}
            target.begin()
            try:
                for schema, table in wanted:
                    mirrored[f"{schema}.{table}"] = _mirror_table(
                        source, target, schema, table, columns[(schema, table)], batch_rows
                    )
                target.commit()
            except BaseException:
                target.rollback()
                raise
            source.rollback()
    finally:
        engine.dispose()
    return mirrored


def _mirror_table(
    source: Any,
    target: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    columns: list[_MirrorColumn],
    batch_rows: int,
) -> int:
    name = f'{_identifier(schema)}."{_identifier(table)}"'
    target.execute(f"CREATE SCHEMA IF NOT EXISTS {_identifier(schema)}")
    is_view = target.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
        "AND table_type = 'VIEW'",
        [schema, table],
    ).fetchone()
    if is_view and is_view[0]:  # a view of an earlier build (views are not copied, see below)
        target.execute(f"DROP VIEW {name}")
    definition = ", ".join(f'"{_identifier(c.name)}" {c.duckdb_type}' for c in columns)
    target.execute(f"CREATE OR REPLACE TABLE {name} ({definition})")
    schema_arrow = pa.schema([(c.name, c.arrow_type) for c in columns])
    count = 0
    with source.cursor(name="salesops_mirror") as cursor:
        cursor.execute(f"SELECT {', '.join(c.select for c in columns)} FROM {name}")
        while rows := cursor.fetchmany(batch_rows):
            values = list(zip(*rows, strict=True))
            batch = pa.table(
                [pa.array(values[i], type=c.arrow_type) for i, c in enumerate(columns)], schema=schema_arrow
            )
            target.register("_mirror_batch", batch)
            try:
                target.execute(f"INSERT INTO {name} SELECT * FROM _mirror_batch")
            finally:
                target.unregister("_mirror_batch")
            count += len(rows)
    return count
