"""The one Dagster ``Definitions`` of salesops-pipeline."""

from __future__ import annotations

from orchestration import settings

settings.apply_defaults()

from dagster import Definitions, EnvVar  # noqa: E402
from dagster_dbt import DbtCliResource  # noqa: E402

from orchestration.assets.dbt import dbt_mart_models, dbt_project, dbt_staging_models  # noqa: E402
from orchestration.assets.ingestion import ingestion_assets  # noqa: E402
from orchestration.assets.serving import serving_marts  # noqa: E402
from orchestration.checks.integrity_suites import integrity_checks  # noqa: E402
from orchestration.checks.table_health import table_health_checks  # noqa: E402
from orchestration.jobs import nightly_job  # noqa: E402
from orchestration.resources import (  # noqa: E402
    CalendarIcsResource,
    CrmSqlResource,
    WarehouseResource,
)
from orchestration.schedules import nightly_schedule  # noqa: E402
from orchestration.sensors import alert_on_nightly_failure  # noqa: E402

defs = Definitions(
    assets=[*ingestion_assets, dbt_staging_models, dbt_mart_models, serving_marts],
    asset_checks=[*integrity_checks, *table_health_checks],
    jobs=[nightly_job],
    schedules=[nightly_schedule],
    sensors=[alert_on_nightly_failure],
    resources={
        "warehouse": WarehouseResource(path=EnvVar("SALESOPS_WAREHOUSE")),
        "crm": CrmSqlResource(
            url=EnvVar("SALESOPS_CRM_URL"),
            batch_size=EnvVar.int("SALESOPS_CRM_BATCH_SIZE"),
            overlap_hours=EnvVar.int("SALESOPS_CRM_OVERLAP_HOURS"),
        ),
        "calendar": CalendarIcsResource(
            directory=EnvVar("SALESOPS_CALENDAR_DIR"),
            future_days=EnvVar.int("SALESOPS_CALENDAR_FUTURE_DAYS"),
            max_occurrences_per_series=EnvVar.int("SALESOPS_CALENDAR_MAX_OCCURRENCES"),
        ),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=settings.dbt_executable()),
    },
)
