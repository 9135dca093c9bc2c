"""A failed nightly run sends exactly one alert, naming the failing step and carrying no secret."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from orchestration.alerts import Alert, deliver, failure_alert, mask_secrets
from tests.conftest import PipelineRun, environment

FAKE_SECRET = "sf-secret-Zq81-do-not-leak"


@contextmanager
def webhook_server() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/{FAKE_SECRET}", received
    finally:
        server.shutdown()


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept one message (RFC 5321 happy path)."""

    def handle(self) -> None:
        self.wfile.write(b"220 localhost ready\r\n")
        data_mode, lines = False, []
        while line := self.rfile.readline():
            text = line.decode().rstrip("\r\n")
            if data_mode:
                if text == ".":
                    self.server.messages.append("\n".join(lines))  # type: ignore[attr-defined]
                    data_mode = False
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(text)
                continue
            verb = text.split(" ")[0].upper()
            if verb == "DATA":
                data_mode = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_failed_run_sends_exactly_one_alert_with_the_step_and_no_secret(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    from dagster import DagsterInstance, build_run_status_sensor_context

    from orchestration.definitions import defs
    from orchestration.jobs import NIGHTLY_JOB_NAME
    from orchestration.sensors import alert_on_nightly_failure

    with webhook_server() as (url, received):
        env = {
            **pipeline_run.env,
            "SALESOPS_CRM_URL": f"sqlite:///{tmp_path / 'absent.sqlite'}",
            "SALESOPS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "SALESOPS_SERVING_PATH": str(tmp_path / "serving.duckdb"),
            "SALESOPS_ALERT_SLACK_WEBHOOK_URL": url,
            "SALESOPS_SALESFORCE_CLIENT_SECRET": FAKE_SECRET,
        }
        with environment(env), DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def(NIGHTLY_JOB_NAME).execute_in_process(
                instance=instance, raise_on_error=False
            )
            assert not result.success
            context = build_run_status_sensor_context(
                sensor_name="alert_on_nightly_failure",
                dagster_event=result.get_run_failure_event(),
                dagster_instance=instance,
                dagster_run=result.dagster_run,
            ).for_run_failure()
            alert_on_nightly_failure(context)

    assert len(received) == 1
    text = received[0]["body"]["text"]
    assert text.startswith(
        f"salesops nightly run failed (run {result.run_id}). Failed steps: raw__salesforce_"
    )
    assert "CRM database file not found" in text
    assert FAKE_SECRET not in json.dumps(received[0]["body"])


def test_email_channel_and_masking() -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.messages = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "SALESOPS_ALERT_SMTP_HOST": "127.0.0.1",
        "SALESOPS_ALERT_SMTP_PORT": str(server.server_address[1]),
        "SALESOPS_ALERT_SMTP_FROM": "pipeline@acme.example",
        "SALESOPS_ALERT_SMTP_TO": "revops@acme.example",
        "SALESOPS_GOOGLE_REFRESH_TOKEN": "refresh-XYZ-1234",
    }
    try:
        alert = failure_alert("nightly", "run-1", [("raw_calendar", "token refresh-XYZ-1234 rejected")])
        with environment(env):
            alert = failure_alert("nightly", "run-1", [("raw_calendar", "token refresh-XYZ-1234 rejected")])
            assert deliver(alert, env) == ["email"]
    finally:
        server.shutdown()
    assert alert == Alert(
        "salesops nightly run failed",
        "salesops nightly run failed (run run-1). Failed steps: raw_calendar: token *** rejected. "
        "Open the Dagster UI for the full logs.",
    )
    (message,) = server.messages  # type: ignore[attr-defined]
    assert "Subject: salesops nightly run failed" in message
    assert "refresh-XYZ-1234" not in message
    assert mask_secrets("postgresql://reader:hunter2@db/crm", {}) == "postgresql://reader:***@db/crm"
