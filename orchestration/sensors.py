"""Sensors: alert whoever runs the pipeline when a nightly run fails."""

from dagster import DefaultSensorStatus, RunFailureSensorContext, SkipReason, run_failure_sensor

from orchestration.alerts import deliver, failure_alert
from orchestration.jobs import nightly_job
from orchestration.summary import step_failure_message


def _failed_steps(context: RunFailureSensorContext) -> list[tuple[str, str]]:
    return [
        (event.step_key or "?", step_failure_message(event)) for event in context.get_step_failure_events()
    ]


@run_failure_sensor(
    name="alert_on_nightly_failure",
    monitored_jobs=[nightly_job],
    default_status=DefaultSensorStatus.RUNNING,
    description="Posts to SALESOPS_ALERT_SLACK_WEBHOOK_URL and/or emails when a nightly run fails.",
)
def alert_on_nightly_failure(context: RunFailureSensorContext):
    alert = failure_alert(context.dagster_run.job_name, context.dagster_run.run_id, _failed_steps(context))
    channels = deliver(alert)
    if not channels:
        return SkipReason("no alert channel configured (SALESOPS_ALERT_SLACK_WEBHOOK_URL / SMTP)")
    context.log.info(f"failure alert sent via {', '.join(channels)}")
    return None
