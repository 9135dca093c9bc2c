"""Publish the marts to the serving database that BI tools read, atomically.

The marts are copied into a new DuckDB file beside the serving file, which then replaces it in
one rename. A BI client holding the old file open keeps reading the old, complete version; the
next connection sees the new one; nobody ever sees half a publication, and the nightly run never
waits for readers (they hold a different file). Email columns are published as salted SHA-256
hashes, so the serving copy carries no customer or employee email address.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingestion.crash_points import crash_point
from ingestion.warehouse import connect_duckdb, quoted, utc_now

PUBLICATION_TABLE = "_publication"


@dataclass(frozen=True)
class Publication:
    path: Path
    tables: dict[str, int]


def is_email_column(name: str) -> bool:
    return name == "email" or name.endswith("_email")


def _select_list(connection: duckdb.DuckDBPyConnection, table: str) -> str:
    columns = connection.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'warehouse' "
        "AND schema_name = 'marts' AND table_name = ? ORDER BY column_index",
        [table],
    ).fetchall()
    parts = []
    for (column,) in columns:
        if is_email_column(column):
            parts.append(f"sha256($salt || lower({quoted(column)})) AS {quoted(column)}")
        else:
            parts.append(quoted(column))
    return ", ".join(parts)


def remove_stale_temporaries(folder: Path, prefix: str) -> list[Path]:
    """Remove ``<prefix><pid>...`` files whose writing process is gone (killed mid-write).

    A crash or SIGKILL between creating a temporary file and renaming it leaves the file behind, and
    the next run has another pid, so it would never be reused; files of a live process are kept.
    """
    removed = []
    for path in folder.glob(glob.escape(prefix) + "*"):
        pid = path.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish_marts(
    warehouse_path: Path, serving_path: Path, salt: str, run_id: str, as_of: str
) -> Publication:
    """Copy every table of schema marts into ``serving_path``, replacing it atomically."""
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    building = serving_path.with_name(f"{serving_path.name}.building-{os.getpid()}")
    for leftover in (building, building.with_name(building.name + ".wal")):
        leftover.unlink(missing_ok=True)
    remove_stale_temporaries(serving_path.parent, f"{serving_path.name}.building-")
    tables: dict[str, int] = {}
    connection = connect_duckdb(building)
    try:
        attach_path = str(warehouse_path).replace("'", "''")  # a configured path is a literal, never SQL
        connection.execute(f"ATTACH '{attach_path}' AS warehouse (READ_ONLY)")
        names = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'warehouse' "
                "AND schema_name = 'marts' ORDER BY table_name"
            ).fetchall()
        ]
        for name in names:
            select_list = _select_list(connection, name)
            source = f"warehouse.marts.{quoted(name)}"
            connection.execute(
                f"CREATE TABLE main.{quoted(name)} AS SELECT {select_list} FROM {source}",
                {"salt": salt} if "$salt" in select_list else None,
            )
            tables[name] = connection.execute(f"SELECT count(*) FROM main.{quoted(name)}").fetchone()[0]
            crash_point("publish_table")
        connection.execute(
            f"CREATE TABLE {PUBLICATION_TABLE} (table_name VARCHAR, row_count BIGINT, "
            "published_at TIMESTAMP, dagster_run_id VARCHAR, as_of DATE)"
        )
        published_at = utc_now()
        connection.executemany(
            f"INSERT INTO {PUBLICATION_TABLE} VALUES (?, ?, ?, ?, ?)",
            [[name, rows, published_at, run_id, as_of] for name, rows in tables.items()],
        )
        connection.execute("DETACH warehouse")
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
    os.replace(building, serving_path)
    return Publication(serving_path, tables)
