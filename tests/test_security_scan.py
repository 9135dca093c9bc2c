"""Secrets and PII stay in place: a run with known fake secrets, then a scan of everything it wrote.

Every credential the project reads is set to a recognisable fake value; the job runs through the
real command (once succeeding, once failing on a CRM URL that carries a password); then stdout,
stderr, every file under DAGSTER_HOME, the run's data folder (logs, Data Docs, dbt docs), dbt's
target folder, every Dagster event of both runs, and every text column of the serving database
and the warehouse are searched for them. The serving database and the report must not carry a
raw email address of the demo org. Identifiers built from configuration go through an allow-list.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ingestion.crm_sql import is_safe_identifier, warehouse_column_name
from ingestion.warehouse import quoted
from orchestration.serving import publish_marts
from tests.conftest import pipeline_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FAKE_SECRETS = {
    "SALESOPS_SALESFORCE_CLIENT_SECRET": "FAKE-sf-client-secret-7d1e",
    "SALESOPS_SALESFORCE_REFRESH_TOKEN": "FAKE-sf-refresh-token-91ab",
    "SALESOPS_GOOGLE_CLIENT_SECRET": "FAKE-google-client-secret-33c0",
    "SALESOPS_GOOGLE_REFRESH_TOKEN": "FAKE-google-refresh-token-5e2f",
    "SALESOPS_HUBSPOT_ACCESS_TOKEN": "FAKE-hubspot-access-token-a8d4",
    "SALESOPS_HUBSPOT_CLIENT_SECRET": "FAKE-hubspot-client-secret-0b7c",
    "SALESOPS_HUBSPOT_REFRESH_TOKEN": "FAKE-hubspot-refresh-token-c61d",
    "SALESOPS_ALERT_SMTP_PASSWORD": "FAKE-smtp-password-4f90",
    "SALESOPS_PII_SALT": "FAKE-pii-salt-e2b8",
}
SLACK_SECRET = "FAKEslackWEBHOOKsecret6a1f"
CRM_PASSWORD = "FAKE-crm-password-9c3e"
SECRETS = [*FAKE_SECRETS.values(), SLACK_SECRET, CRM_PASSWORD]
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def secret_env() -> dict[str, str]:
    return {
        **FAKE_SECRETS,
        "SALESOPS_SALESFORCE_CLIENT_ID": "fake-client-id",
        "SALESOPS_GOOGLE_CLIENT_ID": "fake-google-client-id",
        "SALESOPS_ALERT_SLACK_WEBHOOK_URL": f"https://hooks.slack.invalid/services/T000/B000/{SLACK_SECRET}",
        "SALESOPS_ALERT_SMTP_HOST": "smtp.invalid",
        "SALESOPS_ALERT_SMTP_USER": "alerts",
        "SALESOPS_ALERT_SMTP_TO": "ops@acme.invalid",
        "SALESOPS_ALERT_SMTP_FROM": "pipeline@acme.invalid",
    }


def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration", "run"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


def text_values(database: Path) -> list[str]:
    """Every value of every text column of a DuckDB file (its bytes may be compressed on disk)."""
    values: list[str] = []
    with duckdb.connect(str(database), read_only=True) as connection:
        columns = connection.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE data_type = 'VARCHAR' AND NOT internal"
        ).fetchall()
        for schema, table, column in columns:
            rows = connection.execute(
                f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL'
            ).fetchall()
            values.extend(row[0] for row in rows)
    return values


def demo_emails(crm: Path, calendars: Path) -> set[str]:
    emails: set[str] = set()
    with sqlite3.connect(crm) as connection:
        for table in ("user", "contact", "lead"):
            emails |= {r[0].lower() for r in connection.execute(f'SELECT Email FROM "{table}"') if r[0]}
    for path in calendars.glob("*.ics"):
        emails |= {match.decode().lower() for match in EMAIL.findall(path.read_bytes())}
    return {email for email in emails if "@" in email}


@pytest.fixture(scope="module")
def secret_runs(demo_org: tuple[Path, object], tmp_path_factory: pytest.TempPathFactory) -> dict:
    demo_dir, _ = demo_org
    root = tmp_path_factory.mktemp("secrets")
    crm = root / "crm.sqlite"
    shutil.copy(demo_dir / "crm.sqlite", crm)
    home, warehouse = root / "home", root / "data" / "warehouse.duckdb"
    env = {**pipeline_env(crm, demo_dir / "calendars", warehouse, home), **secret_env()}
    succeeded = run_cli(env)
    # SQLite takes no password: the CRM URL that carries one is refused, and its message is kept.
    failed = run_cli({**env, "SALESOPS_CRM_URL": f"sqlite://reader:{CRM_PASSWORD}@/{crm}"})
    return {"root": root, "env": env, "runs": [succeeded, failed], "crm": crm, "demo": demo_dir}


def test_the_runs_ran_one_succeeding_one_failing_on_the_crm(secret_runs: dict) -> None:
    succeeded, failed = secret_runs["runs"]
    assert succeeded.returncode == 0, succeeded.stdout[:2000]
    assert failed.returncode == 1
    assert "error: source 'crm': cannot open CRM URL sqlite://reader:***@/" in failed.stdout
    for run in (succeeded, failed):
        assert "Traceback" not in run.stdout + run.stderr


def test_no_secret_in_output_files_events_or_databases(secret_runs: dict) -> None:
    root, env = secret_runs["root"], secret_runs["env"]
    scanned: dict[str, int] = {"outputs": 0, "files": 0, "events": 0, "db_values": 0}
    leaks: list[str] = []
    for run in secret_runs["runs"]:
        for stream in (run.stdout, run.stderr):
            scanned["outputs"] += 1
            leaks += [f"command output: {s}" for s in SECRETS if s in stream]
    folders = [root, PROJECT_ROOT / "dbt_project" / "target"]
    data_docs = Path(env["SALESOPS_WAREHOUSE"]).parent / "data_docs"
    assert list(data_docs.rglob("*.html")), "Data Docs were written"
    assert (Path(env["SALESOPS_WAREHOUSE"]).parent / "dbt_docs" / "index.html").is_file()
    assert list((Path(env["DAGSTER_HOME"])).rglob("*.db")), "the event log was written"
    for folder in folders:
        for path in folder.rglob("*"):
            if not path.is_file() or path.suffix in (".duckdb", ".sqlite") or path.name.endswith(".wal"):
                continue
            data = path.read_bytes()
            scanned["files"] += 1
            leaks += [f"{path}: {s}" for s in SECRETS if s.encode() in data]
    from dagster import DagsterInstance
    from dagster._serdes import serialize_value

    os.environ["DAGSTER_HOME"], saved = env["DAGSTER_HOME"], os.environ.get("DAGSTER_HOME")
    try:
        with DagsterInstance.get() as instance:
            runs = instance.get_runs()
            assert len(runs) == 2
            for run in runs:
                text = serialize_value(run)
                leaks += [f"run {run.run_id} record: {s}" for s in SECRETS if s in text]
                for entry in instance.all_logs(run.run_id):
                    scanned["events"] += 1
                    text = serialize_value(entry)
                    leaks += [f"run {run.run_id} event: {s}" for s in SECRETS if s in text]
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
    for database in (Path(env["SALESOPS_WAREHOUSE"]), Path(env["SALESOPS_SERVING_PATH"])):
        for value in text_values(database):
            scanned["db_values"] += 1
            leaks += [f"{database.name}: {s}" for s in SECRETS if s in value]
    assert leaks == []
    assert scanned["events"] > 100 and scanned["files"] > 10 and scanned["db_values"] > 1000
    print(f"security: {len(SECRETS)} fake secrets, scanned {scanned}, 0 found")


def test_serving_and_report_carry_no_raw_email_of_the_demo_org(secret_runs: dict) -> None:
    env = secret_runs["env"]
    emails = demo_emails(secret_runs["crm"], secret_runs["demo"] / "calendars")
    assert len(emails) > 100
    serving_values = text_values(Path(env["SALESOPS_SERVING_PATH"]))
    found = {email for email in emails for value in serving_values if email in value.lower()}
    report = Path(env["SALESOPS_SERVING_PATH"]).with_name("report.html").read_text().lower()
    found |= {email for email in emails if email in report}
    assert found == set()
    assert not EMAIL.search(report.encode())  # nor any other address
    with duckdb.connect(env["SALESOPS_SERVING_PATH"], read_only=True) as connection:
        hashed = connection.execute("SELECT email FROM dim_reps WHERE email IS NOT NULL").fetchall()
    salted = {
        row[0]
        for row in duckdb.sql(
            "SELECT sha256(? || lower(e)) FROM unnest(?::VARCHAR[]) AS t(e)",
            params=[FAKE_SECRETS["SALESOPS_PII_SALT"], sorted(emails)],
        ).fetchall()
    }
    assert hashed and {row[0] for row in hashed} <= salted  # hashed with the configured salt
    print(f"security: {len(emails)} demo email addresses, 0 in the serving database or the report")


@pytest.mark.parametrize(
    "name",
    ['x"; DROP TABLE raw.t; --', "a b", "Amount ($)", "1st", "", "ÄÖÜ", "raw.salesforce_lead", "x'--"],
)
def test_identifiers_from_configuration_go_through_the_allow_list(name: str) -> None:
    if not is_safe_identifier(name):
        with pytest.raises(ValueError, match="unsafe SQL identifier"):
            quoted(name)
    safe = warehouse_column_name(name)  # a source column name always becomes a safe identifier
    assert is_safe_identifier(safe) and quoted(safe) == f'"{safe}"'


def test_a_configured_path_with_a_quote_stays_a_literal(tmp_path: Path) -> None:
    folder = tmp_path / "it's here"
    folder.mkdir()
    warehouse = folder / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "CREATE SCHEMA marts; CREATE TABLE marts.m AS SELECT 1 AS x, 'a@b.example' AS email"
        )
    publication = publish_marts(warehouse, folder / "serving.duckdb", "salt", "run-1", "2026-06-15")
    assert publication.tables == {"m": 1}
