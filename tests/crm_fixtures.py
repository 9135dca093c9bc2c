"""Helpers that write small CRM replicas (real SQLite files) for the loader tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from ingestion.contract import CRM_CONTRACT


def create_crm(path: Path, column_case: str = "api") -> None:
    """Create every contract table, empty. column_case: 'api', 'upper' or 'lower'."""
    with sqlite3.connect(path) as connection:
        for table, columns in CRM_CONTRACT.items():
            names = [_case(c, column_case) for c in columns]
            table_name = _case(table, column_case)
            connection.execute(
                f'CREATE TABLE IF NOT EXISTS "{table_name}" ({", ".join(f"{n!r} TEXT" for n in names)})'
            )


def insert_rows(path: Path, table: str, rows: Iterable[Mapping[str, object]]) -> None:
    with sqlite3.connect(path) as connection:
        for row in rows:
            columns = ", ".join(f'"{c}"' for c in row)
            marks = ", ".join("?" for _ in row)
            connection.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', list(row.values()))


def execute(path: Path, sql: str, params: Iterable[object] = ()) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(sql, list(params))


def _case(name: str, column_case: str) -> str:
    return {"api": name, "upper": name.upper(), "lower": name.lower()}[column_case]
