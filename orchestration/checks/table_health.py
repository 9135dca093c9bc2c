"""Table-level checks on raw CRM tables (freshness, volume) and the quarantine's size.

All of them warn rather than block: stale or shrinking sources and quarantined records are for
coordinators to chase, and the numbers already exclude anything unsafe.
"""

import os
from collections.abc import Iterator
from datetime import datetime, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    asset_check,
    multi_asset_check,
)

from ingestion.contract import crm_raw_tables
from ingestion.warehouse import utc_now
from orchestration import settings
from orchestration.checks.integrity_suites import COORDINATORS
from orchestration.resources import WarehouseResource

# Objects that change every working day in a live org carry a freshness check (the column holding
# their last modification); users, roles, quotas and campaigns may not change for days.
RAW_TABLES = crm_raw_tables()
VOLUME_CHANGE_LIMIT = 0.5

_VOLUME_DDL = (
    "CREATE SCHEMA IF NOT EXISTS quality",
    """CREATE TABLE IF NOT EXISTS quality.table_volumes (
        dagster_run_id VARCHAR, table_name VARCHAR, row_count BIGINT, measured_at TIMESTAMP)""",
)


def freshness_limit_hours() -> float:
    return float(os.environ.get("SALESOPS_FRESHNESS_HOURS", "36"))


def reference_time() -> datetime:
    """Now, or the end of the as_of day when the run replays an earlier date."""
    end_of_as_of = datetime.combine(settings.as_of() + timedelta(days=1), datetime.min.time())
    return min(utc_now(), end_of_as_of)


def _specs() -> list[AssetCheckSpec]:
    specs = []
    for table, modified in RAW_TABLES.items():
        key = AssetKey(["raw", table])
        specs.append(
            AssetCheckSpec(
                "volume",
                asset=key,
                description="Row count changed by more than 50% since the previous run: warn.",
                metadata={"owner": COORDINATORS},
            )
        )
        if modified:
            specs.append(
                AssetCheckSpec(
                    "freshness",
                    asset=key,
                    description=f"Newest {modified} older than SALESOPS_FRESHNESS_HOURS (36): warn.",
                    metadata={"owner": COORDINATORS},
                )
            )
    return specs


@multi_asset_check(specs=_specs(), name="raw_table_health_checks", op_tags={"owner": COORDINATORS})
def raw_table_health_checks(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> Iterator[AssetCheckResult]:
    store = warehouse.warehouse()
    reference = reference_time()
    limit = freshness_limit_hours()
    with store.connect() as connection:
        for statement in _VOLUME_DDL:
            connection.execute(statement)
        for name, modified in RAW_TABLES.items():
            key = AssetKey(["raw", name])
            rows = store.row_count(connection, "raw", name)
            previous = connection.execute(
                "SELECT row_count FROM quality.table_volumes WHERE table_name = ? "
                "ORDER BY measured_at DESC LIMIT 1",
                [name],
            ).fetchone()
            connection.execute(
                "INSERT INTO quality.table_volumes VALUES (?, ?, ?, ?)",
                [context.run.run_id, name, rows, utc_now()],
            )
            change = None if not previous or not previous[0] else (rows - previous[0]) / previous[0]
            yield AssetCheckResult(
                asset_key=key,
                check_name="volume",
                passed=change is None or abs(change) <= VOLUME_CHANGE_LIMIT,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "rows": rows,
                    "previous_rows": previous[0] if previous else None,
                    "change": MetadataValue.float(change) if change is not None else None,
                },
            )
            if not modified:
                continue
            newest = connection.execute(
                f"SELECT max(timezone('UTC', try_cast({modified} AS TIMESTAMPTZ))) FROM raw.{name}"
            ).fetchone()[0]
            age_hours = None if newest is None else (reference - newest).total_seconds() / 3600
            yield AssetCheckResult(
                asset_key=key,
                check_name="freshness",
                passed=age_hours is not None and age_hours <= limit,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "newest_system_modstamp": str(newest),
                    "age_hours": MetadataValue.float(round(age_hours, 2)) if age_hours is not None else None,
                    "limit_hours": limit,
                },
            )


@asset_check(
    asset=AssetKey(["quality", "quarantine"]),
    name="quarantine_is_empty",
    description="Records held in quarantine, by table and rule: warn when any.",
    metadata={"owner": COORDINATORS},
)
def quarantine_is_empty(warehouse: WarehouseResource) -> AssetCheckResult:
    store = warehouse.warehouse()
    with store.connect(read_only=True) as connection:
        counts = connection.execute(
            "SELECT source_table, rule, count(*) FROM quality.quarantine GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    total = sum(count for _, _, count in counts)
    return AssetCheckResult(
        passed=total == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "quarantined_records": total,
            **{f"{table}.{rule}": count for table, rule, count in counts},
        },
    )


table_health_checks = [raw_table_health_checks, quarantine_is_empty]
