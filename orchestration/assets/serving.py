"""The serving database BI tools read: published after the marts and their checks succeed."""

import os
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, DagsterEventType, MaterializeResult, MetadataValue, asset

from orchestration import settings
from orchestration.resources import WarehouseResource
from orchestration.serving import publish_marts
from orchestration.summary import forecast_mape, quality_counts

MART_KEYS = [
    AssetKey(["marts", name])
    for name in (
        "quota_attainment", "lead_response_times", "lead_response_by_rep_week", "funnel_conversion",
        "stage_conversion", "pipeline_coverage", "pipeline_snapshots", "sales_velocity", "rep_activity",
        "onboarding_progress", "campaign_efficiency", "customer_segments", "fct_opportunities",
        "dim_reps", "dim_accounts", "crm_data_quality", "crm_data_quality_history",
        "sales_forecast", "forecast_accuracy", "forecast_accuracy_summary", "forecast_stage_probabilities",
    )
]  # fmt: skip


def serving_path() -> Path:
    return Path(os.environ["SALESOPS_SERVING_PATH"])


@asset(
    key=AssetKey(["serving", "marts"]),
    group_name="serving",
    owners=["team:data-engineering"],
    kinds={"duckdb"},
    deps=MART_KEYS,
    description=(
        "Every mart copied into the serving database (SALESOPS_SERVING_PATH, default "
        "data/serving.duckdb), replaced atomically; emails hashed with SALESOPS_PII_SALT."
    ),
)
def serving_marts(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    publication = publish_marts(
        Path(warehouse.path),
        serving_path(),
        salt=os.environ.get("SALESOPS_PII_SALT", ""),
        run_id=context.run.run_id,
        as_of=settings.as_of().isoformat(),
    )
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(publication.path)),
            "tables": len(publication.tables),
            "run_summary": MetadataValue.md(
                run_summary_markdown(context, Path(warehouse.path), publication.tables)
            ),
            **{f"rows.{name}": rows for name, rows in publication.tables.items()},
        }
    )


def run_summary_markdown(context: AssetExecutionContext, warehouse_path: Path, marts: dict[str, int]) -> str:
    """The run summary for the Dagster UI: source rows, checks, quarantine, hygiene, forecast, marts."""
    run_id = context.run.run_id
    instance = context.instance
    lines = ["| source table | rows in raw |", "| --- | --- |"]
    for record in instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        materialization = record.event_log_entry.dagster_event.event_specific_data.materialization
        if materialization.asset_key.path[0] == "raw" and "rows_in_raw" in materialization.metadata:
            lines.append(f"| {materialization.asset_key.to_user_string()} | "
                         f"{materialization.metadata['rows_in_raw'].value} |")  # fmt: skip
    # The checks evaluated so far in this run; non-blocking checks may still follow the publication.
    evaluations = [
        record.event_log_entry.dagster_event.event_specific_data
        for record in instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    ]
    failed = [e for e in evaluations if not e.passed]
    lines += ["", f"**checks**: {len(evaluations) - len(failed)} passed, {len(failed)} failed", ""]
    lines += [f"- failed: {e.asset_key.to_user_string()}:{e.check_name} ({e.severity.value})" for e in failed]
    quarantine, hygiene = quality_counts(warehouse_path)
    lines += ["", f"**quarantined records**: {sum(quarantine.values())}", ""]
    lines += [f"- {name}: {count}" for name, count in sorted(quarantine.items())]
    lines += ["", "| hygiene check | records to fix |", "| --- | --- |"]
    lines += [f"| {name} | {count} |" for name, count in sorted(hygiene.items())]
    lines += ["", "| forecast method | org MAPE |", "| --- | --- |"]
    lines += [f"| {method} | {mape:.1%} |" for method, mape in forecast_mape(warehouse_path).items()]
    lines += ["", "| mart | rows |", "| --- | --- |"]
    lines += [f"| {name} | {rows} |" for name, rows in sorted(marts.items())]
    return "\n".join(lines)
