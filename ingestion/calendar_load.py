"""Load a folder of mailbox ICS exports into ``raw``, re-parsing only files that changed.

A file that cannot be parsed is quarantined (``quality.source_quarantine``, source ``calendar``,
rule ``readable_ics``: the file, its mailbox, the line and the reason, first and last seen) and
the load goes on: its mailbox keeps the rows of the file's last good version (none if it never
parsed). Its fingerprint is not recorded, and a quarantined file is parsed again every run even
when unchanged, so it leaves quarantine on the first run where it parses (or once it is removed
from the folder). Only a missing folder or a file resolving outside it stops the load.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from ingestion.calendar_ics import (
    ATTENDEE_COLUMNS,
    OCCURRENCE_COLUMNS,
    PROBLEM_COLUMNS,
    CalendarFileError,
    ExpansionWindow,
    ParsedCalendarFile,
    parse_calendar_files,
)
from ingestion.crash_points import crash_point
from ingestion.errors import SourceError
from ingestion.source_quarantine import ensure_table as ensure_source_quarantine
from ingestion.source_quarantine import quarantine, quarantined, release
from ingestion.warehouse import Warehouse, new_batch_id, utc_now

SOURCE_NAME = "calendar"
READABLE_RULE = "readable_ics"
"""The rule a quarantined calendar file breaks: it can be read and parsed as iCalendar."""
OCCURRENCES_TABLE = "calendar_occurrences"
ATTENDEES_TABLE = "calendar_attendees"

_OCCURRENCE_TYPES = {
    "source_file": pa.string(),
    "mailbox": pa.string(),
    "uid": pa.string(),
    "occurrence_start": pa.timestamp("us"),
    "occurrence_end": pa.timestamp("us"),
    "is_all_day": pa.bool_(),
    "is_recurring": pa.bool_(),
    "recurrence_id": pa.timestamp("us"),
    "status": pa.string(),
    "summary": pa.string(),
    "location": pa.string(),
    "organizer_email": pa.string(),
    "categories": pa.string(),
    "created_at": pa.timestamp("us"),
    "last_modified_at": pa.timestamp("us"),
    "dtstamp": pa.timestamp("us"),
    "sequence": pa.int64(),
    "tzid": pa.string(),
}
_ATTENDEE_TYPES = {
    "source_file": pa.string(),
    "uid": pa.string(),
    "occurrence_start": pa.timestamp("us"),
    "email": pa.string(),
    "partstat": pa.string(),
    "role": pa.string(),
    "common_name": pa.string(),
}
OCCURRENCE_SCHEMA = pa.schema([(name, _OCCURRENCE_TYPES[name]) for name in OCCURRENCE_COLUMNS])
ATTENDEE_SCHEMA = pa.schema([(name, _ATTENDEE_TYPES[name]) for name in ATTENDEE_COLUMNS])
PROBLEM_SCHEMA = pa.schema([(name, pa.string()) for name in PROBLEM_COLUMNS])

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.timestamp("us"): "TIMESTAMP",
    pa.bool_(): "BOOLEAN",
    pa.int64(): "BIGINT",
}


@dataclass
class CalendarLoadResult:
    batch_id: str
    files_total: int = 0
    files_parsed: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    occurrences_in_raw: int = 0
    attendees_in_raw: int = 0
    problems: int = 0
    errors: list[str] = field(default_factory=list)
    """Failures of the source that stop the run (Google mailboxes that failed to sync)."""
    quarantined: list[str] = field(default_factory=list)
    """One line per file set aside this run (it could not be parsed), as ``CalendarFileError``."""
    released: list[str] = field(default_factory=list)
    """Files that left quarantine this run: parsed again, or removed from the folder."""


def _table_ddl(name: str, schema: pa.Schema) -> str:
    columns = ", ".join(f'"{f.name}" {_DUCKDB_TYPES[f.type]}' for f in schema)
    return f"CREATE TABLE IF NOT EXISTS {name} ({columns}, _loaded_at TIMESTAMP, _batch_id VARCHAR)"


_DDL = (
    _table_ddl(f"raw.{OCCURRENCES_TABLE}", OCCURRENCE_SCHEMA),
    _table_ddl(f"raw.{ATTENDEES_TABLE}", ATTENDEE_SCHEMA),
    "CREATE SCHEMA IF NOT EXISTS quality",
    """CREATE TABLE IF NOT EXISTS quality.calendar_problems (
        source_file VARCHAR, uid VARCHAR, rule VARCHAR, detail VARCHAR, batch_id VARCHAR,
        seen_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS meta.calendar_files (
        source_file VARCHAR PRIMARY KEY, size_bytes BIGINT, sha256 VARCHAR,
        window_start TIMESTAMP, window_end TIMESTAMP, parsed_at TIMESTAMP, occurrences BIGINT)""",
)


def list_calendar_files(root: Path) -> list[Path]:
    """ICS files under ``root``; anything resolving outside it (symlinks, ``..``) is refused."""
    if not root.is_dir():
        raise SourceError(SOURCE_NAME, "calendar folder does not exist", file=str(root))
    real_root = root.resolve()
    files = []
    for path in sorted(root.rglob("*.ics")):
        if not path.resolve().is_relative_to(real_root):
            raise SourceError(
                SOURCE_NAME,
                "file resolves outside the calendar folder",
                file=path.relative_to(root).as_posix(),
                rule="confined_to_folder",
            )
        if path.is_file():
            files.append(path)
    return files


def file_fingerprint(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


def load_calendar_folder(
    root: Path,
    warehouse: Warehouse,
    window: ExpansionWindow,
    max_occurrences_per_series: int = 1000,
    workers: int | None = None,
) -> CalendarLoadResult:
    """Parse new and changed ICS files and replace their rows; drop rows of removed files.

    Each file commits on its own, so an unreadable file keeps its previously loaded rows
    and never stops the others: it is quarantined (``result.quarantined``) and tried again
    next run; a file that parses, or is removed, leaves quarantine (``result.released``).
    """
    files = list_calendar_files(root)
    result = CalendarLoadResult(batch_id=new_batch_id(), files_total=len(files))
    window_start = window.start.replace(tzinfo=None)
    window_end = window.end.replace(tzinfo=None)
    with warehouse.connect() as connection:
        for statement in _DDL:
            connection.execute(statement)
        ensure_source_quarantine(connection)
        in_quarantine = {entry.object for entry in quarantined(connection, SOURCE_NAME)}
        known = {
            row[0]: (row[1], row[2], row[3], row[4])
            for row in connection.execute(
                "SELECT source_file, size_bytes, sha256, window_start, window_end FROM meta.calendar_files"
            ).fetchall()
        }
        fingerprints: dict[str, tuple[int, str]] = {}
        to_parse: list[Path] = []
        for path in files:
            relative = path.relative_to(root).as_posix()
            fingerprints[relative] = file_fingerprint(path)
            unchanged = known.get(relative) == (*fingerprints[relative], window_start, window_end)
            if unchanged and relative not in in_quarantine:  # a quarantined file is always retried
                result.files_unchanged += 1
            else:
                to_parse.append(path)
        removed = sorted(set(known) - set(fingerprints))
        for relative in removed:
            connection.begin()
            _delete_file_rows(connection, relative)
            connection.execute("DELETE FROM meta.calendar_files WHERE source_file = ?", [relative])
            connection.commit()
        result.files_removed = len(removed)
        for relative in sorted(in_quarantine - set(fingerprints)):  # gone from the folder
            release(connection, SOURCE_NAME, relative)
            result.released.append(relative)

        worker_count = workers if workers is not None else min(len(to_parse), os.cpu_count() or 1)
        for parsed in parse_calendar_files(
            to_parse, root, window, max_occurrences_per_series, workers=max(worker_count, 1)
        ):
            if isinstance(parsed, CalendarFileError):
                quarantine(
                    connection,
                    SOURCE_NAME,
                    parsed.source_file,
                    READABLE_RULE,
                    parsed.problem,
                    mailbox=parsed.mailbox,
                    line=parsed.line,
                )
                result.quarantined.append(str(parsed))
                continue
            size, sha = fingerprints[parsed.source_file]
            was_quarantined = parsed.source_file in in_quarantine
            _replace_file_rows(
                connection,
                parsed,
                result.batch_id,
                (size, sha, window_start, window_end),
                release_from_quarantine=was_quarantined,
            )
            result.files_parsed += 1
            if was_quarantined:
                result.released.append(parsed.source_file)
        result.occurrences_in_raw = warehouse.row_count(connection, "raw", OCCURRENCES_TABLE)
        result.attendees_in_raw = warehouse.row_count(connection, "raw", ATTENDEES_TABLE)
        result.problems = warehouse.row_count(connection, "quality", "calendar_problems")
    return result


def _delete_file_rows(connection: duckdb.DuckDBPyConnection, source_file: str) -> None:
    for table in (f"raw.{OCCURRENCES_TABLE}", f"raw.{ATTENDEES_TABLE}", "quality.calendar_problems"):
        connection.execute(f"DELETE FROM {table} WHERE source_file = ?", [source_file])


def _replace_file_rows(
    connection: duckdb.DuckDBPyConnection,
    parsed: ParsedCalendarFile,
    batch_id: str,
    fingerprint: tuple[int, str, datetime, datetime],
    release_from_quarantine: bool = False,
) -> None:
    loaded_at = utc_now()
    connection.begin()
    _delete_file_rows(connection, parsed.source_file)
    _insert_rows(
        connection, f"raw.{OCCURRENCES_TABLE}", parsed.occurrences, OCCURRENCE_SCHEMA, loaded_at, batch_id
    )
    _insert_rows(connection, f"raw.{ATTENDEES_TABLE}", parsed.attendees, ATTENDEE_SCHEMA, loaded_at, batch_id)
    for problem in parsed.problems:
        connection.execute(
            "INSERT INTO quality.calendar_problems VALUES (?, ?, ?, ?, ?, ?)",
            [*problem, batch_id, loaded_at],
        )
    size, sha, window_start, window_end = fingerprint
    connection.execute(
        """INSERT OR REPLACE INTO meta.calendar_files VALUES (?, ?, ?, ?, ?, ?, ?)""",
        [parsed.source_file, size, sha, window_start, window_end, loaded_at, len(parsed.occurrences)],
    )
    if release_from_quarantine:  # parsed at last: it leaves quarantine with its new rows
        release(connection, SOURCE_NAME, parsed.source_file)
    crash_point("calendar_file")
    connection.commit()


def _insert_rows(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    rows: Sequence[tuple],
    schema: pa.Schema,
    loaded_at: datetime,
    batch_id: str,
) -> None:
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    arrow = pa.table({f.name: pa.array(values, f.type) for f, values in zip(schema, columns, strict=True)})
    connection.register("_incoming_rows", arrow)
    try:
        connection.execute(
            f"INSERT INTO {table} BY NAME SELECT *, ?::TIMESTAMP AS _loaded_at, ? AS _batch_id "
            "FROM _incoming_rows",
            [loaded_at, batch_id],
        )
    finally:
        connection.unregister("_incoming_rows")
