"""Jobs: the nightly job materializes every asset and runs every check."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

NIGHTLY_JOB_NAME = "nightly"

# One process: DuckDB allows a single writer, and the steps share the warehouse file.
nightly_job = define_asset_job(
    NIGHTLY_JOB_NAME,
    selection=AssetSelection.all(),
    executor_def=in_process_executor,
    description="CRM and calendar ingestion, integrity checks, dbt staging and metric marts.",
)
