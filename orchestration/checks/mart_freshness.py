"""Freshness of the marts: each should be rebuilt by every nightly run (warn after 26 hours)."""

from datetime import timedelta

from dagster import DefaultSensorStatus, build_last_update_freshness_checks, build_sensor_for_freshness_checks

from orchestration.assets.serving import MART_KEYS

mart_freshness_checks = build_last_update_freshness_checks(
    assets=MART_KEYS, lower_bound_delta=timedelta(hours=26)
)

mart_freshness_sensor = build_sensor_for_freshness_checks(
    freshness_checks=mart_freshness_checks,
    name="mart_freshness_sensor",
    default_status=DefaultSensorStatus.RUNNING,
)
