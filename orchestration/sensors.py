"""Sensors: alert whoever runs the pipeline when a nightly run fails."""

from dagster import DefaultSensorStatus, RunFailureSensorContext, SkipReason, run_failure_sensor

from orchestration.alerts import deliver, failure_alert
from orchestration.jobs import nightly_job


def _failed_steps(context: RunFailureSensorContext) -> list[tuple[str, str]]:
    steps = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            message = data.user_failure_data.description
        elif data.error is not None:
            message = data.error.message.strip().splitlines()[0]
        else:
            message = "failed"
        steps.append((event.step_key or "?", message))
    return steps


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
