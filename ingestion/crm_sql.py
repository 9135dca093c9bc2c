"""Reader for a SQL replica of a Salesforce org, through SQLAlchemy.

Tables and columns are matched case-insensitively. Every value is read as text
(``CAST(... AS VARCHAR)`` in the source database) so that raw keeps exactly what
the CRM holds; typing happens in dbt staging, where bad values are quarantined.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingestion.contract import ID_COLUMN, MODSTAMP_COLUMN
from ingestion.errors import SourceError
from ingestion.replica_shape import (
    ShapeError,
    find_table,
    resolve_table,
    shape_for,
)
from ingestion.replica_shape import warehouse_column_name as warehouse_column_name

SOURCE_NAME = "crm"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class SourceTable:
    """A CRM table as found in the source: its real name and where each warehouse column is read.

    ``columns`` maps the lower-case warehouse name (contract fields under their API name) to the
    source's column; ``missing`` lists the optional contract fields the source lacks (loaded as
    null); ``shape`` is how the replica names things (ingestion/replica_shape.py).
    """

    contract_name: str
    actual_name: str
    columns: dict[str, str]  # lower-case warehouse name -> column name in the source
    modstamp_is_text: bool
    missing: tuple[str, ...] = ()
    shape: str = "api"
    deleted_column: str | None = None  # Fivetran's _fivetran_deleted, folded into isdeleted
    active_column: str | None = None  # Fivetran history mode: only rows where it is true

    @property
    def warehouse_columns(self) -> list[str]:
        """Every column of the raw table: the source's, the missing optional fields (null) and the
        deletion flag folded from Fivetran's."""
        names = [*self.columns, *(field.lower() for field in self.missing)]
        if self.deleted_column and "isdeleted" not in names:
            names.append("isdeleted")
        return names


def redact_url(url: str) -> str:
    """The URL without its password, safe for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is itself reported without its content
        return "<unparseable URL>"


def _tolerant_text(value: bytes | str | None) -> str | None:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


class SqlCrmReader:
    """Streams rows of the CRM contract's tables from any SQLAlchemy URL."""

    def __init__(
        self,
        url: str,
        batch_size: int = 50_000,
        shapes: dict[str, str] | None = None,
        field_map: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.url = url
        self.batch_size = batch_size
        self.shapes = shapes or {"*": "auto"}  # replica_shape.parse_shapes
        self.field_map = field_map or {}  # replica_shape.parse_field_map
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            try:
                url = sa.engine.make_url(self.url)
                # A PostgreSQL replica's sessions in UTC: the cursor bound is naive UTC.
                options = (
                    {"connect_args": {"options": "-c timezone=UTC"}}
                    if url.get_backend_name() == "postgresql"
                    else {}
                )
                engine = sa.create_engine(url, **options)
            except Exception as exc:  # noqa: BLE001
                raise SourceError(
                    SOURCE_NAME, f"cannot open CRM URL {redact_url(self.url)}: {type(exc).__name__}"
                ) from None
            if engine.dialect.name == "sqlite":
                _require_sqlite_file(engine)
                sa.event.listen(engine, "connect", _configure_sqlite_connection)
            self._engine = engine
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def describe(self, contract_name: str, require_contract: bool = True) -> SourceTable:
        """Find a contract table in the source, in whatever shape the replica has it, and match its
        columns to the contract (a missing required column raises, naming it)."""
        try:
            inspector = sa.inspect(self.engine)
            actual = find_table(contract_name, inspector.get_table_names())
            source_columns = inspector.get_columns(actual) if actual else []
        except SourceError:
            raise
        except ShapeError as error:
            raise SourceError(SOURCE_NAME, str(error), table=contract_name, rule=error.rule) from None
        except Exception as exc:  # noqa: BLE001
            raise SourceError(
                SOURCE_NAME,
                f"cannot read CRM at {redact_url(self.url)}: {_one_line(exc)}",
                table=contract_name,
            ) from None
        if actual is None:
            raise SourceError(
                SOURCE_NAME,
                f"table is missing from the CRM at {redact_url(self.url)}",
                table=contract_name,
                rule="required_table",
            )
        names = [column["name"] for column in source_columns]
        try:
            resolved = resolve_table(
                contract_name,
                names,
                shape_for(self.shapes, contract_name),
                self.field_map.get(contract_name),
                require_all=require_contract,
            )
        except ShapeError as error:
            raise SourceError(SOURCE_NAME, str(error), table=contract_name, rule=error.rule) from None
        types = {column["name"]: column["type"] for column in source_columns}
        modstamp_type = types.get(resolved.columns.get(MODSTAMP_COLUMN, ""))
        modstamp_is_text = not isinstance(modstamp_type, sa.DateTime)
        if self.engine.dialect.name == "sqlite":
            modstamp_is_text = True  # SQLite stores datetimes as text whatever the declared type
        return SourceTable(
            contract_name,
            actual,
            resolved.columns,
            modstamp_is_text,
            missing=resolved.missing_optional,
            shape=resolved.shape,
            deleted_column=resolved.deleted_column,
            active_column=resolved.active_column,
        )

    def earliest_created_at(self, tables: Sequence[str] = ("lead", "opportunity")) -> datetime | None:
        """The oldest CreatedDate among the given tables: where the CRM's history starts."""
        earliest: datetime | None = None
        for name in tables:
            table = self.describe(name, require_contract=False)
            if "createddate" not in table.columns:
                continue
            created = sa.column(table.columns["createddate"])
            query = sa.select(sa.func.min(created)).select_from(sa.table(table.actual_name))
            with self.engine.connect() as connection:
                value = _parse_min_created(connection.execute(query).scalar())
            if value is not None and (earliest is None or value < earliest):
                earliest = value
        return earliest

    def iter_batches(
        self, table: SourceTable, since: datetime | None, overlap: timedelta
    ) -> Iterator[pa.Table]:
        """Yield record batches as Arrow tables of strings, oldest SystemModstamp first.

        With ``since`` set, only rows modified at or after ``since - overlap`` are read.
        Text timestamps are compared by their date prefix, which is correct for any
        ISO-8601 style and only widens the window (the loader's upsert is idempotent).
        """
        source_columns = [*table.columns.values()]
        if table.active_column and table.active_column not in source_columns:
            source_columns.append(table.active_column)
        source = sa.table(table.actual_name, *(sa.column(c) for c in source_columns))
        selected = [
            sa.cast(source.c[source_name], sa.String).label(name)
            for name, source_name in table.columns.items()
        ]
        modstamp = source.c[table.columns[MODSTAMP_COLUMN]]
        query = sa.select(*selected).order_by(modstamp, source.c[table.columns[ID_COLUMN]])
        if table.active_column:
            # History mode keeps every version of a row; only the current one is the record.
            active = sa.func.lower(sa.cast(source.c[table.active_column], sa.String))
            query = query.where(active.in_(("1", "true", "t")))
        if since is not None:
            lower_bound = since - overlap
            bound: object = lower_bound.date().isoformat() if table.modstamp_is_text else lower_bound
            query = query.where(modstamp >= bound)
        names = [column.key for column in selected]
        try:
            with self.engine.connect() as connection, _text_as_bytes(connection):
                result = connection.execution_options(stream_results=True).execute(query)
                while rows := result.fetchmany(self.batch_size):
                    batch = _rows_to_arrow(names, rows)
                    yield fold_deleted_flag(batch, table.deleted_column) if table.deleted_column else batch
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SourceError(
                SOURCE_NAME, f"read failed: {_one_line(exc)}", table=table.contract_name
            ) from None


_TRUE_TEXT = ["1", "true", "t"]


def fold_deleted_flag(batch: pa.Table, flag_column: str) -> pa.Table:
    """Fivetran marks a row deleted in the source with ``_fivetran_deleted``: such a row is deleted
    whatever its own IsDeleted says (a replica without IsDeleted has only this flag)."""
    flag = pc.utf8_lower(batch.column(warehouse_column_name(flag_column)))
    deleted = pc.fill_null(pc.is_in(flag, pa.array(_TRUE_TEXT)), False)
    if "isdeleted" in batch.column_names:
        merged = pc.if_else(deleted, pa.scalar("true"), batch.column("isdeleted"))
        batch = batch.set_column(batch.column_names.index("isdeleted"), "isdeleted", merged)
    else:
        batch = batch.append_column("isdeleted", pc.if_else(deleted, pa.scalar("true"), pa.scalar("false")))
    return batch


def _parse_min_created(value: object) -> datetime | None:
    from ingestion.crm_load import parse_source_datetime

    if isinstance(value, datetime):
        return (
            value.replace(tzinfo=None) if value.tzinfo is None else parse_source_datetime(value.isoformat())
        )
    return parse_source_datetime(str(value)) if value is not None else None


def _require_sqlite_file(engine: Engine) -> None:
    database = engine.url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        from pathlib import Path

        if not Path(database).is_file():
            raise SourceError(SOURCE_NAME, f"CRM database file not found: {database}", rule="source_exists")


def _configure_sqlite_connection(dbapi_connection: object, _record: object) -> None:
    dbapi_connection.text_factory = _tolerant_text  # type: ignore[attr-defined]


@contextmanager
def _text_as_bytes(connection: sa.Connection) -> Iterator[None]:
    """On SQLite, rows read inside come back with text as bytes, decoded a column at a time by
    ``_text_array``: a Python call per value (sqlite3's text_factory) was a fifth of the load's
    time. Invalid UTF-8 still never fails the read."""
    driver = connection.connection.driver_connection
    if connection.dialect.name != "sqlite" or driver is None:
        yield
        return
    driver.text_factory = bytes  # type: ignore[attr-defined]
    try:
        yield
    finally:
        driver.text_factory = _tolerant_text  # type: ignore[attr-defined]


def _text_array(values: tuple) -> pa.Array:
    """A column of text; bytes are decoded as UTF-8, with U+FFFD for invalid bytes."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    try:
        return pa.array(values, pa.binary()).cast(pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([_tolerant_text(value) for value in values], pa.string())


def _rows_to_arrow(names: list[str], rows: list[sa.Row]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table({name: _text_array(values) for name, values in zip(names, columns, strict=True)})


def _one_line(exc: BaseException) -> str:
    text = str(exc).split("\n")[0]
    return f"{type(exc).__name__}: {text}"[:300]


def is_safe_identifier(name: str) -> bool:
    return bool(_IDENTIFIER.match(name))
