"""The Dagster UI: dagster-webserver on a local port loads every asset, check, schedule and sensor."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
QUERY = """{
  assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { name cronSchedule scheduleState { status } }
    sensors { name sensorState { status } }
  } } }
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["data"]


def wait_until_up(port: int, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "dagster-webserver exited early"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError("dagster-webserver did not answer in time")


def test_webserver_loads_every_asset_check_schedule_and_sensor(tmp_path: Path) -> None:
    from orchestration.definitions import defs

    port = free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    process = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, process)
        data = graphql(port, QUERY)
    finally:
        process.terminate()
        process.wait(timeout=30)

    graph = defs.resolve_asset_graph()
    expected_assets = {tuple(key.path) for key in graph.get_all_asset_keys()}
    expected_checks = {(tuple(key.asset_key.path), key.name) for key in graph.asset_check_keys}
    loaded_assets = {tuple(node["assetKey"]["path"]) for node in data["assetNodes"]}
    loaded_checks = {
        (tuple(node["assetKey"]["path"]), check["name"])
        for node in data["assetNodes"]
        for check in node["assetChecksOrError"].get("checks", [])
    }
    assert loaded_assets == expected_assets
    assert loaded_checks == expected_checks
    assert len(loaded_checks) >= 100  # GX suites, table checks and dbt tests, all of them loaded
    (repository,) = data["repositoriesOrError"]["nodes"]
    assert repository["schedules"] == [
        {"name": "nightly_at_0200", "cronSchedule": "0 2 * * *", "scheduleState": {"status": "RUNNING"}}
    ]
    assert sorted(repository["sensors"], key=lambda sensor: sensor["name"]) == [
        {"name": "alert_on_nightly_failure", "sensorState": {"status": "RUNNING"}},
        {"name": "mart_freshness_sensor", "sensorState": {"status": "RUNNING"}},
    ]
