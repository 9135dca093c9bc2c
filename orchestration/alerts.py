"""Failure alerts through a Slack incoming webhook and/or SMTP email, configured by environment.

SALESOPS_ALERT_SLACK_WEBHOOK_URL; SALESOPS_ALERT_SMTP_HOST, _PORT (25), _FROM, _TO (comma
separated), _USER, _PASSWORD, _STARTTLS (true/false). Messages never carry a credential: every
value of a secret-looking environment variable is masked before anything is sent.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage

_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|WEBHOOK|API_KEY|CREDENTIAL|SALT)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


@dataclass(frozen=True)
class Alert:
    subject: str
    text: str


def mask_secrets(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace every secret-looking environment value, and URL passwords, with ***."""
    environ = dict(os.environ) if environ is None else environ
    secrets = sorted(
        (v for k, v in environ.items() if _SECRET_NAME.search(k) and len(v) >= 4), key=len, reverse=True
    )
    for secret in secrets:
        text = text.replace(secret, "***")
    return _URL_PASSWORD.sub(r"\1***@", text)


def failure_alert(job_name: str, run_id: str, failed_steps: list[tuple[str, str]]) -> Alert:
    steps = "; ".join(f"{step}: {message}" for step, message in failed_steps) or "no step reported an error"
    subject = f"salesops {job_name} run failed"
    text = f"{subject} (run {run_id}). Failed steps: {steps}. Open the Dagster UI for the full logs."
    return Alert(mask_secrets(subject), mask_secrets(text))


def send_slack(webhook_url: str, alert: Alert, timeout: float = 10.0) -> None:
    body = json.dumps({"text": alert.text}).encode()
    request = urllib.request.Request(
        webhook_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - configured URL
        response.read()


def send_email(alert: Alert, environ: dict[str, str] | None = None) -> None:
    env = dict(os.environ) if environ is None else environ
    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = env["SALESOPS_ALERT_SMTP_FROM"]
    message["To"] = env["SALESOPS_ALERT_SMTP_TO"]
    message.set_content(alert.text)
    port = int(env.get("SALESOPS_ALERT_SMTP_PORT", "25"))
    with smtplib.SMTP(env["SALESOPS_ALERT_SMTP_HOST"], port, timeout=10) as smtp:
        if env.get("SALESOPS_ALERT_SMTP_STARTTLS", "false").lower() == "true":
            smtp.starttls()
        if env.get("SALESOPS_ALERT_SMTP_USER"):
            smtp.login(env["SALESOPS_ALERT_SMTP_USER"], env.get("SALESOPS_ALERT_SMTP_PASSWORD", ""))
        smtp.send_message(message)


def deliver(alert: Alert, environ: dict[str, str] | None = None) -> list[str]:
    """Send through every configured channel; returns the channels used."""
    env = dict(os.environ) if environ is None else environ
    channels = []
    if env.get("SALESOPS_ALERT_SLACK_WEBHOOK_URL"):
        send_slack(env["SALESOPS_ALERT_SLACK_WEBHOOK_URL"], alert)
        channels.append("slack")
    if env.get("SALESOPS_ALERT_SMTP_HOST") and env.get("SALESOPS_ALERT_SMTP_TO"):
        send_email(alert, env)
        channels.append("email")
    return channels
