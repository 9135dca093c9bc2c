"""The nightly HTML report for sales leaders, rendered from the serving database after each publication."""

import os
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, DagsterEventType, MaterializeResult, MetadataValue, asset

from orchestration import settings
from orchestration.assets.dbt import current_inputs_token
from orchestration.assets.serving import serving_path
from orchestration.report import render_report
from orchestration.resources import WarehouseResource
from orchestration.unchanged_inputs import mark_published

REPORT_PATH_ENV = "SALESOPS_REPORT_PATH"


def report_path() -> Path:
    """SALESOPS_REPORT_PATH, else ``report.html`` beside the serving database."""
    configured = os.environ.get(REPORT_PATH_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    return serving_path().with_name("report.html")


def run_built_the_marts(context: AssetExecutionContext) -> bool:
    """This run rebuilt staging and the marts (a report rendered on its own publishes no new inputs)."""
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
    ).records
    layers = {record.event_log_entry.dagster_event.asset_key.path[0] for record in records}
    return {"staging", "marts"} <= layers


@asset(
    key=AssetKey(["serving", "report"]),
    group_name="serving",
    deps=[AssetKey(["serving", "marts"])],
    owners=["team:sales-analysts"],
    kinds={"html"},
    description=(
        "Self-contained HTML report (inline SVG charts, nothing fetched from the network) drawn from the "
        "serving database: quota attainment, funnel, lead response, pipeline coverage, forecast versus "
        "actual, rep activity, onboarding ramp, CRM hygiene. Written beside the serving file as "
        "report.html, or to SALESOPS_REPORT_PATH."
    ),
)
def serving_report(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    summary = render_report(serving_path(), report_path(), settings.as_of())
    if run_built_the_marts(context):
        # The last step of the nightly job: everything built from today's inputs is now published.
        mark_published(warehouse.warehouse(), current_inputs_token(warehouse.warehouse()), context.run.run_id)
    if not summary.forecast_available:
        context.log.warning("report: the serving database has no forecast tables; the report says so")
    if summary.empty_charts:
        context.log.warning(f"report: charts without data: {', '.join(summary.empty_charts)}")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(summary.path)),
            "charts": len(summary.charts),
            "empty_charts": len(summary.empty_charts),
            "forecast_available": summary.forecast_available,
            "bytes": summary.bytes,
            "as_of": summary.as_of.isoformat(),
        }
    )
