"""Great Expectations suites run inside DuckDB as Dagster asset checks, on every layer.

raw → blocks staging; staging → blocks the marts; marts → reported (and block what follows them).
A failing ``error`` rule fails the check with severity ERROR; only ``warning`` rules failing
gives severity WARN. Every validation is stored in quality.validation_runs / validation_results
and in GX Data Docs, linked from the check's metadata.
"""

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from expectations.mart_suites import MART_SUITES
from expectations.raw_suites import RAW_SUITES
from expectations.staging_suites import STAGING_SUITES
from orchestration.resources import WarehouseResource

COORDINATORS = "team:sales-ops-coordinators"
CHECK_NAMES = {"raw": "raw_integrity", "staging": "staging_integrity", "marts": "mart_integrity"}
CALENDAR_TABLES = ("calendar_occurrences", "calendar_attendees")

SuiteBuilders = dict[str, Callable[[], list]]


def data_docs_dir(warehouse_path: str) -> Path:
    return Path(warehouse_path).parent / "data_docs"


def _results_table(outcomes: list) -> str:
    lines = ["| rule | severity | passed | unexpected | rows |", "| --- | --- | --- | --- | --- |"]
    for o in outcomes:
        lines.append(
            f"| {o.name} | {o.severity} | {'yes' if o.success else 'no'} | "
            f"{o.unexpected_count if o.unexpected_count is not None else ''} | "
            f"{o.element_count if o.element_count is not None else ''} |"
        )
    return "\n".join(lines)


def failed_rules_line(failed: list) -> str:
    """One line naming each failed rule; error rules add up to 3 offending values (Ids, amounts).

    Warning rules never show values: their samples may hold email addresses.
    """
    parts = []
    for item in failed:
        count = item.unexpected_count if item.unexpected_count is not None else "?"
        part = f"{item.name} ({item.severity}, {count} rows)"
        if item.severity == "error":
            values = list(
                dict.fromkeys(" ".join(str(value).split())[:60] for value in item.partial_unexpected)
            )
            if values:
                part += " on " + ", ".join(f"'{value}'" for value in values[:3])
        parts.append(part)
    return "; ".join(parts)


def _validate_layer(
    context: AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    layer: str,
    suites: SuiteBuilders,
    tables: Sequence[str],
) -> Iterator[AssetCheckResult]:
    from expectations.gx_engine import TableSuite, validate_tables
    from expectations.results_store import record_validations

    table_suites = [TableSuite(layer, table, f"{layer}.{table}", suites[table]()) for table in tables]
    outcomes = validate_tables(warehouse.path, table_suites, data_docs_dir=data_docs_dir(warehouse.path))
    record_validations(warehouse.warehouse(), layer, outcomes, context.run.run_id)
    for suite, outcome in zip(table_suites, outcomes, strict=True):
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
        if failed:
            metadata["failed_rules"] = MetadataValue.text(failed_rules_line(failed))
        if outcome.data_docs_index is not None:
            metadata["data_docs"] = MetadataValue.path(str(outcome.data_docs_index))
        yield AssetCheckResult(
            asset_key=AssetKey([layer, suite.table]),
            check_name=CHECK_NAMES[layer],
            passed=not failed,
            severity=AssetCheckSeverity.ERROR if outcome.errors else AssetCheckSeverity.WARN,
            metadata=metadata,
        )


def build_suite_checks(
    name: str, layer: str, suites: SuiteBuilders, tables: Sequence[str]
) -> AssetChecksDefinition:
    """One Dagster step validating ``tables`` of ``layer``, one blocking check per table."""
    specs = [
        AssetCheckSpec(
            CHECK_NAMES[layer],
            asset=AssetKey([layer, table]),
            blocking=True,
            description=(
                f"Great Expectations suite {layer}.{table}: failing error rules block everything "
                "downstream; warnings are reported. Owned by sales-ops coordinators."
            ),
            metadata={"owner": COORDINATORS, "suite": f"{layer}.{table}", "layer": layer},
        )
        for table in tables
    ]

    @multi_asset_check(
        specs=specs,
        name=name,
        op_tags={"owner": COORDINATORS},
        description=f"Runs the {layer} Great Expectations suites inside the warehouse.",
    )
    def suite_checks(
        context: AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[AssetCheckResult]:
        yield from _validate_layer(context, warehouse, layer, suites, tables)

    return suite_checks


CRM_RAW_TABLES = tuple(table for table in RAW_SUITES if table not in CALENDAR_TABLES)

integrity_checks: list[AssetChecksDefinition] = [
    build_suite_checks("crm_raw_integrity_checks", "raw", RAW_SUITES, CRM_RAW_TABLES),
    build_suite_checks("calendar_raw_integrity_checks", "raw", RAW_SUITES, CALENDAR_TABLES),
    build_suite_checks("staging_integrity_checks", "staging", STAGING_SUITES, tuple(STAGING_SUITES)),
    build_suite_checks("mart_integrity_checks", "marts", MART_SUITES, tuple(MART_SUITES)),
]
