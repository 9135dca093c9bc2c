"""The nightly schedule."""

from __future__ import annotations

import os

from dagster import DefaultScheduleStatus, ScheduleDefinition

from orchestration.jobs import nightly_job

nightly_schedule = ScheduleDefinition(
    name="nightly_at_0200",
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone=os.environ.get("SALESOPS_SCHEDULE_TZ", "UTC"),
    default_status=DefaultScheduleStatus.RUNNING,
    description="Runs the whole pipeline every night at 02:00 (SALESOPS_SCHEDULE_TZ, default UTC).",
)
