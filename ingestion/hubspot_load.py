"""Incremental, resumable load of HubSpot into ``raw``: upsert on id, one committed batch at a time.

Each searchable object is read over one window per sync, [cursor - overlap, sync start), in id
order. Every batch commits together with the window and the last id it holds
(``meta.hubspot_resume``), so a sync killed half way resumes after that id with nothing lost or
duplicated. Only when the window is read, archived records included, does the cursor move to
the sync start (never past it) and the resume point go away. Owners and pipeline stages are
small and read whole on every sync.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from ingestion.crm_load import LoadResult, parse_source_datetime
from ingestion.hubspot_api import (
    HISTORY_COLUMNS,
    OWNER_COLUMNS,
    SOURCE_NAME,
    STAGE_COLUMNS,
    HubSpotObject,
    HubSpotReader,
    raw_table_name,
)
from ingestion.warehouse import Warehouse, new_batch_id, utc_now

HISTORY_TABLE = raw_table_name("deal_property_history")
RESUME_DDL = """CREATE TABLE IF NOT EXISTS meta.hubspot_resume (
    table_name VARCHAR PRIMARY KEY, window_start TIMESTAMP, window_end TIMESTAMP NOT NULL,
    after_id BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL)"""


def load_hubspot_object(
    reader: HubSpotReader,
    warehouse: Warehouse,
    obj: HubSpotObject,
    overlap: timedelta = timedelta(days=1),
    batch_size: int = 10_000,
) -> LoadResult:
    """Read new and changed records of one object (and, for deals, their history) into ``raw``."""
    columns = reader.columns(obj)
    batch_id = new_batch_id()
    rows_read = 0
    with warehouse.connect() as connection:
        connection.execute(RESUME_DDL)
        warehouse.ensure_text_table(connection, obj.raw_table, columns)
        if obj.name == "deals":
            warehouse.ensure_text_table(connection, HISTORY_TABLE, list(HISTORY_COLUMNS))
        cursor_before = warehouse.get_cursor(connection, SOURCE_NAME, obj.raw_table)
        low, high, after_id = _window(connection, obj.raw_table, cursor_before, overlap)
        pages = reader.search_pages(obj, low, high, after_id)
        for rows, last_id in _batches(pages, batch_size):
            histories = reader.deal_histories([str(r["id"]) for r in rows]) if obj.name == "deals" else []
            connection.begin()
            _upsert(warehouse, connection, obj.raw_table, columns, rows, "id", batch_id)
            if histories:
                _upsert(warehouse, connection, HISTORY_TABLE, HISTORY_COLUMNS, histories, "deal_id", batch_id)
            _save_resume_point(connection, obj.raw_table, low, high, last_id)
            warehouse.record_batch(connection, batch_id, SOURCE_NAME, obj.raw_table, len(rows))
            connection.commit()
            rows_read += len(rows)
        for rows in reader.archived_pages(obj):
            archived = [row for row in rows if _archived_since(row, low)]
            if archived:
                connection.begin()
                _upsert(warehouse, connection, obj.raw_table, columns, archived, "id", batch_id)
                warehouse.record_batch(connection, batch_id, SOURCE_NAME, obj.raw_table, len(archived))
                connection.commit()
                rows_read += len(archived)
        connection.begin()
        warehouse.set_cursor(connection, SOURCE_NAME, obj.raw_table, high)
        connection.execute("DELETE FROM meta.hubspot_resume WHERE table_name = ?", [obj.raw_table])
        connection.commit()
        rows_in_raw = warehouse.row_count(connection, "raw", obj.raw_table)
    return LoadResult(
        SOURCE_NAME, obj.name, obj.raw_table, batch_id, rows_read, 0, rows_in_raw, cursor_before, high
    )


def load_hubspot_owners(reader: HubSpotReader, warehouse: Warehouse) -> LoadResult:
    """Every owner, active and archived: a small listing read whole on each sync."""
    rows = [row for page in reader.owners() for row in page]
    return _load_whole(warehouse, "owners", OWNER_COLUMNS, rows)


def load_hubspot_deal_stages(reader: HubSpotReader, warehouse: Warehouse) -> LoadResult:
    """Every stage of every deal pipeline, read whole on each sync."""
    return _load_whole(warehouse, "deal_stages", STAGE_COLUMNS, reader.deal_stages())


def _load_whole(
    warehouse: Warehouse, name: str, columns: tuple[str, ...], rows: list[dict[str, str | None]]
) -> LoadResult:
    table = raw_table_name(name)
    batch_id = new_batch_id()
    with warehouse.connect() as connection:
        warehouse.ensure_text_table(connection, table, list(columns))
        connection.begin()
        _upsert(warehouse, connection, table, columns, rows, "id", batch_id)
        warehouse.record_batch(connection, batch_id, SOURCE_NAME, table, len(rows))
        connection.commit()
        rows_in_raw = warehouse.row_count(connection, "raw", table)
    return LoadResult(SOURCE_NAME, name, table, batch_id, len(rows), 0, rows_in_raw, None, None)


def _window(
    connection: duckdb.DuckDBPyConnection, table: str, cursor: datetime | None, overlap: timedelta
) -> tuple[datetime | None, datetime, int | None]:
    """The window to read and the id to resume after: an unfinished window first."""
    row = connection.execute(
        "SELECT window_start, window_end, after_id FROM meta.hubspot_resume WHERE table_name = ?", [table]
    ).fetchone()
    if row is not None:
        return row[0], row[1], int(row[2])
    now = utc_now()
    high = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the API filters in milliseconds
    return (None if cursor is None else cursor - overlap), high, None


def _save_resume_point(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    low: datetime | None,
    high: datetime,
    after_id: int | None,
) -> None:
    if after_id is None:
        return
    connection.execute(
        """INSERT INTO meta.hubspot_resume VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (table_name) DO UPDATE SET window_start = excluded.window_start,
            window_end = excluded.window_end, after_id = excluded.after_id,
            updated_at = excluded.updated_at""",
        [table, low, high, after_id, utc_now()],
    )


def _batches(
    pages: Iterable[object], batch_size: int
) -> Iterator[tuple[list[dict[str, str | None]], int | None]]:
    """Pages gathered into batches of about ``batch_size`` rows, with the last id of each."""
    pending: list[dict[str, str | None]] = []
    last_id: int | None = None
    for page in pages:
        pending.extend(page.rows)  # type: ignore[attr-defined]
        last_id = page.last_id  # type: ignore[attr-defined]
        if len(pending) >= batch_size:
            yield pending, last_id
            pending = []
    if pending:
        yield pending, last_id


def _archived_since(row: dict[str, str | None], low: datetime | None) -> bool:
    if low is None:
        return True
    archived_at = parse_source_datetime(row.get("archivedat"))
    return archived_at is None or archived_at >= low


def _upsert(
    warehouse: Warehouse,
    connection: duckdb.DuckDBPyConnection,
    table: str,
    columns: Iterable[str],
    rows: list[dict[str, str | None]],
    key: str,
    batch_id: str,
) -> None:
    names = list(columns)
    extra = sorted({name for row in rows for name in row} - set(names))
    if extra:  # a property that appeared since the sync started
        warehouse.ensure_text_table(connection, table, names + extra)
        names += extra
    batch = pa.table({name: pa.array([row.get(name) for row in rows], pa.string()) for name in names})
    warehouse.upsert_batch(connection, table, batch, key, batch_id, utc_now(), table_was_empty=False)
