"""Batched, transactional writes into the ``crm.sqlite`` replica."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .schema import COLUMNS, TABLES, ddl, index_ddl


class CrmWriter:
    def __init__(self, path: Path, create: bool = True):
        self.path = Path(path)
        if create and self.path.exists():
            self.path.unlink()
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-65536")
        self._sql = {
            t: f'INSERT INTO "{t}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
            f"VALUES ({', '.join('?' * len(cols))})"
            for t, cols in COLUMNS.items()
        }
        if create:
            self.conn.execute("BEGIN")
            for t in TABLES:
                self.conn.execute(ddl(t))
            self.conn.execute("COMMIT")

    def insert_many(self, batches: dict[str, list[tuple]]) -> None:
        """Inserts several tables' rows in one transaction."""
        self.conn.execute("BEGIN")
        try:
            for t, rows in batches.items():
                if rows:
                    self.conn.executemany(self._sql[t], rows)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def create_indexes(self) -> None:
        self.conn.execute("BEGIN")
        for t in TABLES:
            for stmt in index_ddl(t):
                self.conn.execute(stmt)
        self.conn.execute("COMMIT")
        self.conn.execute("ANALYZE")

    def close(self) -> None:
        self.conn.close()
