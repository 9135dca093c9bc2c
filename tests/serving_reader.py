"""A BI client for the concurrency test: reads the serving database in a loop until told to stop.

Each read opens a read-only connection, as BI tools do, and checks that every table holds exactly
the rows its publication record says (a half-published database would not).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb


def read_once(serving: Path) -> str:
    with duckdb.connect(str(serving), read_only=True) as connection:
        published = connection.execute(
            "SELECT table_name, row_count, dagster_run_id FROM _publication"
        ).fetchall()
        if len({run_id for _, _, run_id in published}) != 1:
            raise AssertionError("partial read: tables from more than one publication")
        for table, rows, _ in published:
            actual = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if actual != rows:
                raise AssertionError(f"partial read: {table} has {actual} rows, publication says {rows}")
        return published[0][2]


def main(serving: Path, stop_file: Path, report: Path, interval: float = 0.02) -> None:
    queries, errors, run_ids, messages = 0, 0, [], []
    while not stop_file.exists():
        try:
            run_id = read_once(serving)
            if not run_ids or run_ids[-1] != run_id:
                run_ids.append(run_id)
        except Exception as error:  # noqa: BLE001 - every failure is counted and reported
            errors += 1
            messages.append(f"{type(error).__name__}: {error}")
        queries += 1
        time.sleep(interval)
    report.write_text(
        json.dumps({"queries": queries, "errors": errors, "run_ids": run_ids, "messages": messages[:5]})
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), *map(float, sys.argv[4:5]))
