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
from orchestration import settings
from orchestration.resources import WarehouseResource
from orchestration.unchanged_inputs import carried_results, remember_validations, table_fingerprints

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
    """Validate each table, except raw tables whose rows are unchanged since their last validation:
    those report that validation again (with the run it came from) and GX is not even imported."""
    store = warehouse.warehouse()
    fingerprints = (
        table_fingerprints(store, layer, tables, f"{settings.as_of().isoformat()}|{suite_code_digest()}")
        if layer == "raw"
        else {}
    )
    carried = carried_results(store, layer, fingerprints)
    to_validate = [table for table in tables if table not in carried]
    if carried:
        context.log.info(f"{layer} suites: rows unchanged since their last validation, result reused: "
                         f"{', '.join(sorted(carried))}")  # fmt: skip
    validated = dict(_validate_tables(context, warehouse, layer, suites, to_validate)) if to_validate else {}
    remember_validations(store, layer, fingerprints, validated, context.run.run_id)
    for table in tables:
        if table in validated:
            yield _check_result(layer, table, validated[table])
        else:
            reused = carried[table]
            yield _check_result(layer, table, reused.result, validated_in_run=reused.dagster_run_id)


def suite_code_digest() -> str:
    """The suites' code: a changed rule must validate again even where no row changed.

    (Building the suites to hash them would import Great Expectations, which the reuse avoids.)
    """
    import hashlib

    import expectations

    digest = hashlib.sha256()
    for path in sorted(Path(expectations.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _validate_tables(
    context: AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    layer: str,
    suites: SuiteBuilders,
    tables: Sequence[str],
) -> Iterator[tuple[str, dict]]:
    """Run the suites of ``tables`` and store them; yields (table, result payload) per table."""
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
        payload: dict = {
            "passed": not failed,
            "has_errors": bool(outcome.errors),
            "expectations": len(outcome.outcomes),
            "failed_errors": len(outcome.errors),
            "failed_warnings": len(outcome.warnings),
            "results": _results_table(outcome.outcomes),
        }
        if failed:
            payload["failed_rules"] = failed_rules_line(failed)
        if outcome.data_docs_index is not None:
            payload["data_docs"] = str(outcome.data_docs_index)
        yield suite.table, payload


def _check_result(
    layer: str, table: str, payload: dict, validated_in_run: str | None = None
) -> AssetCheckResult:
    metadata: dict = {
        "expectations": payload["expectations"],
        "failed_errors": payload["failed_errors"],
        "failed_warnings": payload["failed_warnings"],
        "results": MetadataValue.md(payload["results"]),
    }
    if "failed_rules" in payload:
        metadata["failed_rules"] = MetadataValue.text(payload["failed_rules"])
    if "data_docs" in payload:
        metadata["data_docs"] = MetadataValue.path(payload["data_docs"])
    if validated_in_run is not None:
        metadata["validated_in_run"] = MetadataValue.text(
            f"{validated_in_run} (rows unchanged since; that validation's result)"
        )
    return AssetCheckResult(
        asset_key=AssetKey([layer, table]),
        check_name=CHECK_NAMES[layer],
        passed=payload["passed"],
        severity=AssetCheckSeverity.ERROR if payload["has_errors"] else AssetCheckSeverity.WARN,
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
