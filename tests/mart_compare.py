"""Comparing a table between DuckDB and PostgreSQL, value for value.

Values are normalised before comparing: numbers (int, Decimal, float) as numbers, floats equal
within a tight relative tolerance; timestamps as naive UTC; everything else exactly. Rows are
matched as multisets: by their non-float values, then by their floats in order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from orchestration.settings import DBT_PROJECT_DIR

MART_MODELS = sorted(p.stem for p in (DBT_PROJECT_DIR / "models" / "marts").glob("*.sql"))
QUALITY_MODELS = sorted(p.stem for p in (DBT_PROJECT_DIR / "models" / "quality").glob("*.sql"))
# Columns that record when and by which dbt invocation a row was written, not what it says.
RUN_COLUMNS = ("run_started_at", "run_invocation_id", "first_seen", "last_seen")

REL_TOL = 1e-9
ABS_TOL = 1e-9


def normalised(value: object) -> object:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _is_float(value: object) -> bool:
    return isinstance(value, float)


def duckdb_rows(warehouse: Path, schema: str, table: str) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        cursor = connection.execute(f'SELECT * FROM {schema}."{table}"')
        return [c[0] for c in cursor.description], cursor.fetchall()


def postgres_rows(dsn: str, schema: str, table: str) -> tuple[list[str], list[tuple]]:
    import psycopg

    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM {schema}."{table}"')
        return [c.name for c in cursor.description or []], cursor.fetchall()


def _same_number(a: object, b: object) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)  # type: ignore[arg-type]


def same_value(a: object, b: object) -> bool:
    a, b = normalised(a), normalised(b)
    if a is None or b is None:
        return a is None and b is None
    numbers = (int, float)
    if (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        return _same_number(a, b)
    return type(a) is type(b) and a == b


def table_differences(
    columns_a: list[str],
    rows_a: list[tuple],
    columns_b: list[str],
    rows_b: list[tuple],
    ignore: tuple[str, ...] = (),
    limit: int = 10,
) -> list[str]:
    """Differences between two tables (a: DuckDB, b: PostgreSQL): columns, row counts, rows."""
    if columns_a != columns_b:
        return [f"columns differ: duckdb {columns_a}, postgres {columns_b}"]
    keep = [i for i, c in enumerate(columns_a) if c not in ignore]
    rows_a = [tuple(normalised(r[i]) for i in keep) for r in rows_a]
    rows_b = [tuple(normalised(r[i]) for i in keep) for r in rows_b]
    problems = []
    if len(rows_a) != len(rows_b):
        problems.append(f"row count: duckdb {len(rows_a)}, postgres {len(rows_b)}")
    # A column is compared with tolerance when either side holds a float in it.
    float_columns = {i for i in range(len(keep)) if any(_is_float(r[i]) for r in rows_a + rows_b)}

    def key(row: tuple) -> tuple:
        return tuple(
            ("n", float(v))
            if isinstance(v, int | float) and not isinstance(v, bool)
            else (type(v).__name__, v)
            for i, v in enumerate(row)
            if i not in float_columns
        )

    def float_order(row: tuple) -> list:
        return [(row[i] is None, row[i] if row[i] is not None else 0.0) for i in sorted(float_columns)]

    groups_a: dict[tuple, list[tuple]] = defaultdict(list)
    groups_b: dict[tuple, list[tuple]] = defaultdict(list)
    for row in rows_a:
        groups_a[key(row)].append(row)
    for row in rows_b:
        groups_b[key(row)].append(row)
    names = [columns_a[i] for i in keep]
    for k in sorted(set(groups_a) | set(groups_b), key=repr):
        in_a, in_b = groups_a.get(k, []), groups_b.get(k, [])
        if len(in_a) != len(in_b):
            problems.append(f"rows {dict(zip(names, in_a[0] if in_a else in_b[0], strict=True))}: "
                            f"{len(in_a)} in duckdb, {len(in_b)} in postgres")  # fmt: skip
            continue
        for row_a, row_b in zip(sorted(in_a, key=float_order), sorted(in_b, key=float_order), strict=True):
            for i, name in enumerate(names):
                if not same_value(row_a[i], row_b[i]):
                    problems.append(f"{dict(zip(names, row_a, strict=True))}: {name} duckdb {row_a[i]!r}, "
                                    f"postgres {row_b[i]!r}")  # fmt: skip
                    break
        if len(problems) >= limit:
            problems.append("...")
            break
    return problems


def duckdb_raw_counts(warehouse: Path) -> dict[str, int]:
    """Row count of every table in schema raw of a DuckDB warehouse."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' ORDER BY 1"
            ).fetchall()
        ]
        return {t: connection.execute(f'SELECT count(*) FROM raw."{t}"').fetchone()[0] for t in tables}
