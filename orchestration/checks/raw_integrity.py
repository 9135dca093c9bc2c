"""Great Expectations suites on the raw tables, run inside DuckDB as blocking Dagster asset checks."""

from collections.abc import Iterable, Iterator
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    multi_asset_check,
)

from expectations.raw_suites import RAW_SUITES
from orchestration.assets.ingestion import raw_asset_key
from orchestration.resources import WarehouseResource

COORDINATORS = "team:sales-ops-coordinators"
RAW_CHECK_NAME = "raw_integrity"

CALENDAR_TABLES = ("calendar_occurrences", "calendar_attendees")


def _check_spec(table: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        RAW_CHECK_NAME,
        asset=raw_asset_key(table),
        blocking=True,
        description=(
            f"Great Expectations suite raw.{table}: error-severity failures block everything "
            "downstream, warnings are reported. Owned by sales-ops coordinators."
        ),
        metadata={"owner": COORDINATORS, "suite": f"raw.{table}"},
    )


def data_docs_dir(warehouse_path: str) -> Path:
    return Path(warehouse_path).parent / "data_docs"


def _validate(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource, tables: Iterable[str]
) -> Iterator[AssetCheckResult]:
    from expectations.gx_engine import TableSuite, validate_tables

    suites = [TableSuite("raw", table, f"raw.{table}", RAW_SUITES[table]()) for table in tables]
    outcomes = validate_tables(warehouse.path, suites, data_docs_dir=data_docs_dir(warehouse.path))
    for suite, outcome in zip(suites, outcomes, strict=True):
        failed = [o for o in outcome.outcomes if not o.success]
        for item in failed:
            context.log.warning(
                f"{outcome.table}: rule {item.name} ({item.severity}) failed on "
                f"{item.unexpected_count if item.unexpected_count is not None else '?'} rows"
            )
        metadata = {
            "expectations": len(outcome.outcomes),
            "failed_errors": len(outcome.errors),
            "failed_warnings": len(outcome.warnings),
            "results": MetadataValue.md(_results_table(outcome.outcomes)),
        }
        if outcome.data_docs_index is not None:
            metadata["data_docs"] = MetadataValue.path(str(outcome.data_docs_index))
        yield AssetCheckResult(
            asset_key=raw_asset_key(suite.table),
            check_name=RAW_CHECK_NAME,
            passed=not failed,
            severity=AssetCheckSeverity.ERROR if outcome.errors else AssetCheckSeverity.WARN,
            metadata=metadata,
        )


CRM_TABLES_CHECKED = tuple(table for table in RAW_SUITES if table not in CALENDAR_TABLES)


@multi_asset_check(
    specs=[_check_spec(table) for table in CRM_TABLES_CHECKED],
    name="crm_integrity_checks",
    op_tags={"owner": COORDINATORS},
    description="Runs the raw CRM Great Expectations suites inside the warehouse.",
)
def crm_integrity_checks(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> Iterator[AssetCheckResult]:
    yield from _validate(context, warehouse, CRM_TABLES_CHECKED)


@multi_asset_check(
    specs=[_check_spec(table) for table in CALENDAR_TABLES],
    name="calendar_integrity_checks",
    op_tags={"owner": COORDINATORS},
    description="Runs the raw calendar Great Expectations suites inside the warehouse.",
)
def calendar_integrity_checks(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> Iterator[AssetCheckResult]:
    yield from _validate(context, warehouse, CALENDAR_TABLES)


raw_integrity_checks = [crm_integrity_checks, calendar_integrity_checks]


def _results_table(outcomes: list) -> str:
    lines = ["| rule | severity | passed | unexpected | rows |", "| --- | --- | --- | --- | --- |"]
    for o in outcomes:
        lines.append(
            f"| {o.name} | {o.severity} | {'yes' if o.success else 'no'} | "
            f"{o.unexpected_count if o.unexpected_count is not None else ''} | "
            f"{o.element_count if o.element_count is not None else ''} |"
        )
    return "\n".join(lines)
