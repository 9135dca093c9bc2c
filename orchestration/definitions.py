"""The one Dagster ``Definitions`` of salesops-pipeline."""

from __future__ import annotations

from orchestration import settings

settings.apply_defaults()

from dagster import Definitions, EnvVar  # noqa: E402
from dagster_dbt import DbtCliResource  # noqa: E402

from orchestration.assets.dbt import dbt_mart_models, dbt_project, dbt_staging_models  # noqa: E402
from orchestration.assets.forecast import sales_forecast_assets  # noqa: E402
from orchestration.assets.ingestion import ingestion_assets  # noqa: E402
from orchestration.assets.report import serving_report  # noqa: E402
from orchestration.assets.server_warehouse import server_warehouse_assets  # noqa: E402
from orchestration.assets.serving import serving_marts  # noqa: E402
from orchestration.checks.integrity_suites import integrity_checks  # noqa: E402
from orchestration.checks.mart_freshness import mart_freshness_checks, mart_freshness_sensor  # noqa: E402
from orchestration.checks.missing_fields import build_missing_field_checks  # noqa: E402
from orchestration.checks.source_quarantine import source_quarantine_checks  # noqa: E402
from orchestration.checks.table_health import table_health_checks  # noqa: E402
from orchestration.jobs import nightly_job  # noqa: E402
from orchestration.resources import WarehouseResource, calendar_resource, crm_resource  # noqa: E402
from orchestration.schedules import nightly_schedule  # noqa: E402
from orchestration.sensors import alert_on_nightly_failure  # noqa: E402

defs = Definitions(
    assets=[
        *ingestion_assets,
        dbt_staging_models,
        dbt_mart_models,
        *server_warehouse_assets(),
        sales_forecast_assets,
        serving_marts,
        serving_report,
    ],
    asset_checks=[
        *integrity_checks,
        *table_health_checks,
        *source_quarantine_checks,
        *build_missing_field_checks(),
        *mart_freshness_checks,
    ],
    jobs=[nightly_job],
    schedules=[nightly_schedule],
    sensors=[alert_on_nightly_failure, mart_freshness_sensor],
    resources={
        "warehouse": WarehouseResource(path=EnvVar("SALESOPS_WAREHOUSE")),
        "crm": crm_resource(),
        "calendar": calendar_resource(),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=settings.dbt_executable()),
    },
)
