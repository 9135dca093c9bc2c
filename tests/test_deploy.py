"""Dagster as a service: deploy/dagster.yaml with PostgreSQL storage, used by real `dagster` processes.

One `dagster job execute` process runs the nightly job of the real code location (one CRM table,
selected) on an instance whose DAGSTER_HOME holds deploy/dagster.yaml unchanged; a second process
(`dagster run list`, and `python -c` opening `DagsterInstance.get()`) reads the same instance and
sees the run, its success and its events. PostgreSQL is the tests' server (tests/postgres.py: a
throwaway cluster, or SALESOPS_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg.conninfo import make_conninfo

from tests.postgres import PostgresServer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = PROJECT_ROOT / "deploy"
AS_OF = "2026-06-15"
SELECTED_OP = "raw__salesforce_userrole"  # one CRM table: the nightly job, cheaply
SELECTED_ASSET = ["raw", "salesforce_userrole"]

READER = """
import json, sys
from dagster import AssetKey, DagsterInstance, RunsFilter

with DagsterInstance.get() as instance:
    (run,) = instance.get_runs(RunsFilter(tags={"salesops/test": sys.argv[1]}))
    events = instance.all_logs(run.run_id)
    materialization = instance.get_latest_materialization_event(AssetKey(sys.argv[2].split("/")))
    coordinator = instance.run_coordinator
    print(json.dumps({
        "run_id": run.run_id,
        "job_name": run.job_name,
        "status": run.status.value,
        "event_count": len(events),
        "event_types": sorted({e.dagster_event.event_type.name for e in events if e.dagster_event}),
        "materialization_run_id": materialization.run_id if materialization else None,
        "rows_in_raw": (
            materialization.asset_materialization.metadata["rows_in_raw"].value if materialization else None
        ),
        "run_storage": type(instance.run_storage).__name__,
        "event_log_storage": type(instance.event_log_storage).__name__,
        "schedule_storage": type(instance.schedule_storage).__name__,
        "run_coordinator": type(coordinator).__name__,
        "tag_concurrency_limits": coordinator.get_run_queue_config().tag_concurrency_limits,
        "compute_log_manager": type(instance.compute_log_manager).__name__,
    }))
"""


def test_deploy_files_are_valid_yaml() -> None:
    for name in ("dagster.yaml", "docker-compose.yml", "values.yaml", "workspace.yaml"):
        document = yaml.safe_load((DEPLOY_DIR / name).read_text())
        assert isinstance(document, dict) and document, name
    compose = yaml.safe_load((DEPLOY_DIR / "docker-compose.yml").read_text())
    assert {"postgres", "code", "webserver", "daemon"} <= set(compose["services"])
    workspace = yaml.safe_load((DEPLOY_DIR / "workspace.yaml").read_text())
    # The code location's name is what the run queue's tag limit keys on.
    assert workspace["load_from"][0]["grpc_server"]["location_name"] == "salesops_pipeline"
    values = yaml.safe_load((DEPLOY_DIR / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"] == ["--module-name", "orchestration.definitions"]
    # On Kubernetes the deployment's name is the code location's name; the limit must use it.
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["tagConcurrencyLimits"] == [
        {"key": "dagster/code_location", "value": deployment["name"], "limit": 1}
    ]


@pytest.fixture(scope="module")
def run_storage_server(postgres_server: PostgresServer) -> Iterator[tuple[PostgresServer, str]]:
    """The tests' PostgreSQL server (conftest.py: SALESOPS_TEST_POSTGRES_URL or a throwaway cluster,
    failing, not skipping, when PostgreSQL is not installed) and a fresh database for Dagster's
    storage, dropped afterwards."""
    database = f"dagster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    try:
        yield postgres_server, database
    finally:
        with psycopg.connect(postgres_server.dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def instance_env(server: PostgresServer, database: str, root: Path) -> dict[str, str]:
    """The environment deploy/dagster.yaml reads, plus the pipeline's on a tiny demo org."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(root / "dagster_home"),
        "DAGSTER_PG_HOST": server.host,
        "DAGSTER_PG_PORT": str(server.port),
        "DAGSTER_PG_USER": server.user,
        "DAGSTER_PG_PASSWORD": server.password,
        "DAGSTER_PG_DB": database,
        "DAGSTER_COMPUTE_LOG_DIR": str(root / "compute_logs"),
        "SALESOPS_CRM_SOURCE": "sql",
        "SALESOPS_CALENDAR_SOURCE": "ics",
        "SALESOPS_CRM_URL": f"sqlite:///{root / 'demo' / 'crm.sqlite'}",
        "SALESOPS_CALENDAR_DIR": str(root / "demo" / "calendars"),
        "SALESOPS_WAREHOUSE": str(root / "warehouse.duckdb"),
        "SALESOPS_SERVING_PATH": str(root / "serving.duckdb"),
        "SALESOPS_AS_OF": AS_OF,
    }


def run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"{' '.join(command[:4])} exited {done.returncode}:\n{output[-5000:]}"
    return done.stdout


def test_run_with_postgres_storage_is_visible_to_a_second_dagster_process(
    run_storage_server: tuple[PostgresServer, str], tmp_path: Path
) -> None:
    server, database = run_storage_server
    env = instance_env(server, database, tmp_path)
    dagster_home = Path(env["DAGSTER_HOME"])
    dagster_home.mkdir()
    shutil.copyfile(DEPLOY_DIR / "dagster.yaml", dagster_home / "dagster.yaml")  # unchanged
    bin_dir = Path(sys.executable).parent
    run(
        [str(bin_dir / "python"), "-m", "ingestion.demo", "generate", "--out", str(tmp_path / "demo"),
         "--profile", "XS", "--seed", "7", "--as-of", AS_OF, "--quiet"],
        env,
    )  # fmt: skip
    with sqlite3.connect(tmp_path / "demo" / "crm.sqlite") as crm:
        (roles_in_crm,) = crm.execute("SELECT count(*) FROM UserRole").fetchone()
    marker = uuid.uuid4().hex

    # Process 1: the nightly job of the real code location, one CRM table selected.
    run(
        [str(bin_dir / "dagster"), "job", "execute", "-m", "orchestration.definitions", "-j", "nightly",
         "-o", SELECTED_OP, "--tags", json.dumps({"salesops/test": marker})],
        env,
    )  # fmt: skip
    assert (dagster_home / "dagster.yaml").read_bytes() == (DEPLOY_DIR / "dagster.yaml").read_bytes()
    assert not list(dagster_home.glob("**/*.db")), "instance fell back to SQLite storage"

    # Process 2: a separate Python process opening the same instance.
    seen = json.loads(
        run([str(bin_dir / "python"), "-c", READER, marker, "/".join(SELECTED_ASSET)], env).splitlines()[-1]
    )
    run_id = seen["run_id"]
    assert seen["job_name"] == "nightly"
    assert seen["status"] == "SUCCESS"
    assert seen["event_count"] > 0
    assert {"RUN_START", "STEP_SUCCESS", "ASSET_MATERIALIZATION", "RUN_SUCCESS"} <= set(seen["event_types"])
    assert seen["materialization_run_id"] == run_id
    assert seen["rows_in_raw"] == roles_in_crm > 0
    assert seen["run_storage"] == "PostgresRunStorage"
    assert seen["event_log_storage"] == "PostgresEventLogStorage"
    assert seen["schedule_storage"] == "PostgresScheduleStorage"
    assert seen["run_coordinator"] == "QueuedRunCoordinator"
    assert seen["tag_concurrency_limits"] == [
        {"key": "dagster/code_location", "value": "salesops_pipeline", "limit": 1}
    ]
    assert seen["compute_log_manager"] == "LocalComputeLogManager"

    # Process 3: the dagster CLI lists the run from the same instance.
    listed = run([str(bin_dir / "dagster"), "run", "list"], env)
    assert f"Run: {run_id}" in listed
    assert "Job: nightly" in listed

    # And the rows are in PostgreSQL itself, not in a file beside DAGSTER_HOME.
    with psycopg.connect(make_conninfo(server.dsn, dbname=database)) as pg:
        (status,) = pg.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        stored = pg.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,)).fetchone()
    assert status == "SUCCESS"
    assert stored == (seen["event_count"],)
    # Step output captured as local files under DAGSTER_COMPUTE_LOG_DIR.
    assert any(path.is_file() for path in Path(env["DAGSTER_COMPUTE_LOG_DIR"]).rglob("*"))
