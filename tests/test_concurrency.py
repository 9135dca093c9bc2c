"""Concurrency: BI readers through full and incremental runs, and two runs started at once.

Prints ``concurrency:`` lines with the figures docs/reliability.md reports (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from orchestration.run_lock import RunLockBusy, lock_path, run_lock
from tests.conftest import PipelineRun, execute_nightly, pipeline_env, table_counts

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READER = Path(__file__).with_name("serving_reader.py")


def start_readers(serving: Path, stop: Path, reports: list[Path]) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, str(READER), str(serving), str(stop), str(r)]) for r in reports]


def test_readers_through_a_full_and_an_incremental_run_see_only_complete_versions(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    serving = tmp_path / "serving.duckdb"
    shutil.copy(pipeline_run.warehouse.with_name("serving.duckdb"), serving)
    with duckdb.connect(str(serving), read_only=True) as connection:
        (old_run_id,) = connection.execute("SELECT DISTINCT dagster_run_id FROM _publication").fetchone()
    stop = tmp_path / "stop"
    reports = [tmp_path / f"reader{i}.json" for i in range(3)]
    env = {**pipeline_run.env, "SALESOPS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
           "SALESOPS_SERVING_PATH": str(serving), "DAGSTER_HOME": str(tmp_path / "home")}  # fmt: skip
    readers = start_readers(serving, stop, reports)
    try:
        time.sleep(1.0)
        full = execute_nightly(env)  # a fresh warehouse: a full load
        time.sleep(1.0)
        # The same warehouse again: an incremental load; nothing changed, so it would skip the
        # publication unless told to rebuild.
        incremental = execute_nightly({**env, "SALESOPS_FORCE_REBUILD": "1"})
        time.sleep(1.0)
    finally:
        stop.touch()
        for reader in readers:
            reader.wait(timeout=60)
    assert full.success and incremental.success
    outcomes = [json.loads(report.read_text()) for report in reports]
    for outcome in outcomes:
        assert outcome["errors"] == 0, outcome["messages"]
        assert outcome["queries"] > 20
        # Every read saw one whole publication: the old one, then each run's, in order.
        assert outcome["run_ids"] == [old_run_id, full.run_id, incremental.run_id]
    queries = sum(o["queries"] for o in outcomes)
    errors = sum(o["errors"] for o in outcomes)
    print(f"concurrency: {len(readers)} readers, {queries} reads through a full and an incremental run, "
          f"{errors} errors, 0 partial reads, 3 versions seen in order")  # fmt: skip


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from orchestration.run_lock import run_lock
    with run_lock(sys.argv[1]):
        Path(sys.argv[2]).touch()
        time.sleep(600)
    """
)


def run_cli(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration", "run", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_held_lock_refuses_a_run_in_one_line_and_a_killed_holder_leaves_no_stale_lock(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(warehouse), str(ready)], cwd=PROJECT_ROOT)
    try:
        for _ in range(600):
            if ready.exists():
                break
            time.sleep(0.1)
        assert ready.exists()
        env = pipeline_env(tmp_path / "absent.sqlite", tmp_path / "calendars", warehouse, tmp_path / "home")
        stdout, stderr = run_cli(env).communicate(timeout=300)
        refused = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert "Traceback" not in stdout + stderr
        assert len(refused) == 1 and "another nightly run holds the lock" in refused[0]
        assert f"pid {holder.pid}" in refused[0]
        assert not warehouse.exists()  # nothing was started
        with pytest.raises(RunLockBusy), run_lock(warehouse):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert lock_path(warehouse).exists()  # the file stays behind, but the lock died with its holder
    with run_lock(warehouse) as held:
        assert held == lock_path(warehouse).resolve()


def test_two_runs_started_at_once_one_runs_the_other_refuses_and_nothing_is_corrupted(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    env = pipeline_env(
        pipeline_run.crm, pipeline_run.calendars, tmp_path / "warehouse.duckdb", tmp_path / "home"
    )
    runs = [run_cli(env), run_cli(env)]
    outputs = [run.communicate(timeout=600) for run in runs]
    results = [(run.returncode, out, err) for run, (out, err) in zip(runs, outputs, strict=True)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 3], [(code, out[-1500:], err[-1500:]) for code, out, err in results]
    (refused,) = [err for code, _, err in results if code == 3]
    assert "Traceback" not in refused
    assert [line for line in refused.splitlines() if line.startswith("error: ")] == [
        line for line in refused.splitlines() if "another nightly run holds the lock" in line
    ]
    # The winner's warehouse equals an uninterrupted first run of the same data.
    assert table_counts(tmp_path / "warehouse.duckdb") == pipeline_run.counts_after_first
    # Waiting instead of refusing: a second run with --wait runs after the lock is free.
    waited = run_cli(env, "--wait")
    waited.communicate(timeout=600)
    assert waited.returncode == 0
    print("concurrency: two runs started at once: 1 ran, 1 refused in one line; --wait ran after it")
