"""The serving database BI tools read: published after the marts and their checks succeed."""

import os
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset

from orchestration import settings
from orchestration.resources import WarehouseResource
from orchestration.serving import publish_marts

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
            "path": str(publication.path),
            "tables": len(publication.tables),
            **{f"rows.{name}": rows for name, rows in publication.tables.items()},
        }
    )
