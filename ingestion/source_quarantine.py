"""Whole sources set aside: a calendar file that cannot be parsed or a CRM table refused by its shape.

The run goes on without them: what was loaded before stays in raw (a mailbox keeps its last good
rows, a table its last good load), a warning check names each one, and the summary lists them. A
source leaves quarantine the first time it loads again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from ingestion.warehouse import utc_now

TABLE = "quality.source_quarantine"

DDL = (
    "CREATE SCHEMA IF NOT EXISTS quality",
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        source VARCHAR NOT NULL, object VARCHAR NOT NULL, mailbox VARCHAR, line BIGINT,
        rule VARCHAR NOT NULL, reason VARCHAR NOT NULL,
        first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL,
        PRIMARY KEY (source, object))""",
)


@dataclass(frozen=True)
class QuarantinedSource:
    source: str  # 'crm' or 'calendar'
    object: str  # the CRM table, or the calendar file relative to its folder
    mailbox: str | None
    line: int | None
    rule: str
    reason: str
    first_seen: datetime
    last_seen: datetime

    def describe(self) -> str:
        where = f"{self.object}:{self.line}" if self.line else self.object
        return f"{self.source} {where}: {self.reason} [{self.rule}]"


def ensure_table(connection: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        connection.execute(statement)


def quarantine(
    connection: duckdb.DuckDBPyConnection,
    source: str,
    obj: str,
    rule: str,
    reason: str,
    mailbox: str | None = None,
    line: int | None = None,
) -> None:
    """Record (or refresh) a source set aside; ``first_seen`` stays that of its first failure."""
    ensure_table(connection)
    now = utc_now()
    connection.execute(
        f"""INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (source, object) DO UPDATE SET mailbox = excluded.mailbox, line = excluded.line,
            rule = excluded.rule, reason = excluded.reason, last_seen = excluded.last_seen""",
        [source, obj, mailbox, line, rule, reason, now, now],
    )


def release(connection: duckdb.DuckDBPyConnection, source: str, obj: str) -> None:
    """The source loaded again: it leaves quarantine."""
    ensure_table(connection)
    connection.execute(f"DELETE FROM {TABLE} WHERE source = ? AND object = ?", [source, obj])


def quarantined(connection: duckdb.DuckDBPyConnection, source: str | None = None) -> list[QuarantinedSource]:
    """Every source in quarantine (of one kind when ``source`` is given), oldest first."""
    exists = connection.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'quality' AND table_name = 'source_quarantine'"
    ).fetchone()
    if not exists or not exists[0]:
        return []
    rows = connection.execute(
        f"SELECT source, object, mailbox, line, rule, reason, first_seen, last_seen FROM {TABLE} "
        "WHERE ? IS NULL OR source = ? ORDER BY first_seen, source, object",
        [source, source],
    ).fetchall()
    return [QuarantinedSource(*row) for row in rows]
