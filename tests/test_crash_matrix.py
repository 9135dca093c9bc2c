"""Crash matrix: SIGKILL the nightly job at many points, re-run it, and get what an uninterrupted run gets.

One copy of the XS org with a 1% change set and two copies of its built warehouse. One copy gets a
single uninterrupted ``python -m orchestration run`` (the reference, in parallel with the rest). The
other gets a chain of runs, each killed with SIGKILL at a later point than the one before (so each
re-run recovers the previous crash and gets past its point), then one normal run. Its raw tables,
every warehouse table's row count, the marts, the load cursors and the serving database must then
equal the reference's, and a reader process polling the serving database through the whole chain
sees only complete publications. Kill points are hit deterministically: mid-dbt and mid-check
points are watched from outside in the Dagster event log (the run is then killed with its whole
process group); points too short to catch from outside use the test-only crash points of
``ingestion/crash_points.py`` (``SALESOPS_TEST_CRASH_AT``).

Prints a ``crash:`` line with the figures docs/reliability.md reports (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
from dagster import DagsterEventType, DagsterInstance
from dagster._core.instance.ref import InstanceRef

from ingestion.crash_points import CRASH_AT_ENV
from orchestration.run_lock import lock_path
from tests.conftest import PipelineRun, pipeline_env, table_counts
from tests.test_crm_sources import RUN_SPECIFIC_COLUMNS, mart_contents

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READER = Path(__file__).with_name("serving_reader.py")
LOAD_COLUMNS = ("_loaded_at", "_batch_id")
CHANGE_SEED = 23
READ_INTERVAL = 0.05  # seconds between the reader's queries (it shares the 2 cores with the runs)


@dataclass(frozen=True)
class KillPoint:
    name: str
    step: str  # the step the run must be in when it dies (prefix)
    crash_at: str | None = None  # test-only crash point (SALESOPS_TEST_CRASH_AT), or
    event: DagsterEventType | None = None  # killed from outside once the step has logged
    events: int = 0  # this many events of this type


# In the order the job reaches them: each run of the chain gets past the previous run's point.
KILL_POINTS = (
    KillPoint("mid CRM ingestion batch", "raw__salesforce", crash_at="crm_batch:4"),
    KillPoint("mid calendar ingestion", "raw_calendar", crash_at="calendar_file:2"),
    KillPoint("mid raw integrity checks", "crm_raw_integrity_checks",
              event=DagsterEventType.ASSET_CHECK_EVALUATION, events=3),
    KillPoint("mid dbt staging step", "dbt_staging_models",
              event=DagsterEventType.ASSET_MATERIALIZATION, events=6),
    KillPoint("mid dbt marts step", "dbt_mart_models",
              event=DagsterEventType.ASSET_MATERIALIZATION, events=8),
    KillPoint("mid publication", "serving__marts", crash_at="publish_table:7"),
    KillPoint("mid report", "serving__report", crash_at="report_write"),
)  # fmt: skip
# Small CRM batches for the killed ingestion, so the crash falls between committed batches.
SMALL_BATCHES = {"SALESOPS_CRM_BATCH_SIZE": "10"}


def start_cli(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration", "run"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: dbt and parser workers die with it
    )


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def new_run_id(instance: DagsterInstance, known: set[str]) -> str | None:
    fresh = [run.run_id for run in instance.get_runs(limit=5) if run.run_id not in known]
    return fresh[0] if fresh else None


def step_events(instance: DagsterInstance, run_id: str, event: DagsterEventType, step: str) -> int:
    records = instance.get_records_for_run(run_id, of_type=event, limit=10_000).records
    return sum(1 for record in records if record.event_log_entry.step_key == step)


def unfinished_steps(instance: DagsterInstance, run_id: str) -> list[str]:
    def steps(event: DagsterEventType) -> set[str]:
        records = instance.get_records_for_run(run_id, of_type=event, limit=10_000).records
        return {record.event_log_entry.step_key for record in records}

    ended = steps(DagsterEventType.STEP_SUCCESS) | steps(DagsterEventType.STEP_FAILURE)
    return sorted(steps(DagsterEventType.STEP_START) - ended)


def killed_run(
    point: KillPoint, env: dict[str, str], instance: DagsterInstance, known: set[str]
) -> tuple[str, str]:
    """Run the job until ``point`` and kill it there; return the run id and the step it died in."""
    if point.crash_at:
        process = start_cli({**env, **SMALL_BATCHES, CRASH_AT_ENV: point.crash_at})
    else:
        process = start_cli(env)
    run_id = None
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        run_id = run_id or new_run_id(instance, known)
        if point.event and run_id and step_events(instance, run_id, point.event, point.step) >= point.events:
            kill_group(process)
            break
        time.sleep(0.1)
    process.wait(timeout=120)
    kill_group(process)  # whatever it left running (dbt, parser workers, their resource tracker)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == -signal.SIGKILL, f"{point.name}: not killed\n{output[-3000:]}"
    run_id = run_id or new_run_id(instance, known)
    assert run_id, point.name
    in_progress = unfinished_steps(instance, run_id)
    assert len(in_progress) == 1 and in_progress[0].startswith(point.step), (point.name, in_progress)
    known.add(run_id)
    return run_id, in_progress[0]


def raw_contents(warehouse: Path) -> dict[str, list[tuple]]:
    """Every raw table's rows without the load bookkeeping columns, sorted."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' ORDER BY 1"
        ).fetchall()]  # fmt: skip
        contents = {}
        for table in tables:
            columns = [
                row[0]
                for row in connection.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' "
                    "AND table_name = ? ORDER BY column_name",
                    [table],
                ).fetchall()
                if row[0] not in LOAD_COLUMNS
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            contents[table] = connection.execute(
                f'SELECT {select} FROM raw."{table}" ORDER BY ALL'
            ).fetchall()
    return contents


def crm_id_counts(warehouse: Path) -> dict[str, tuple[int, int]]:
    """(rows, distinct ids) per raw CRM table."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'raw' "
            "AND column_name = 'id' ORDER BY 1"
        ).fetchall()]  # fmt: skip
        return {
            table: connection.execute(f'SELECT count(*), count(DISTINCT id) FROM raw."{table}"').fetchone()
            for table in tables
        }


def warehouse_state(warehouse: Path) -> tuple[list[tuple], dict[str, object]]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = connection.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "ORDER BY ALL"
        ).fetchall()
        cursors = dict(
            connection.execute(
                "SELECT source || '.' || table_name, cursor_value FROM meta.sync_state"
            ).fetchall()
        )
    return tables, cursors


def serving_contents(serving: Path) -> dict[str, list[tuple]]:
    """Every published table's rows without run-specific columns; ``_publication`` as (table, rows)."""
    with duckdb.connect(str(serving), read_only=True) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT table_name FROM duckdb_tables() ORDER BY 1"
        ).fetchall()]  # fmt: skip
        contents = {}
        for table in tables:
            columns = [
                row[0]
                for row in connection.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
                    [table],
                ).fetchall()
                if row[0] not in RUN_SPECIFIC_COLUMNS
            ]
            if table == "_publication":
                columns = ["table_name", "row_count"]
            select = ", ".join(f'"{c}"' for c in columns)
            contents[table] = connection.execute(f'SELECT {select} FROM "{table}" ORDER BY ALL').fetchall()
    return contents


def published_run_id(serving: Path) -> str:
    with duckdb.connect(str(serving), read_only=True) as connection:
        (run_id,) = connection.execute("SELECT DISTINCT dagster_run_id FROM _publication").fetchone()
    return run_id


def leftovers(folder: Path) -> list[str]:
    """Temporary files a killed run may leave beside the serving file and the report."""
    return sorted(p.name for p in folder.iterdir() if ".building-" in p.name or p.name.endswith(".tmp"))


def test_killed_runs_recover_to_what_an_uninterrupted_run_builds(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    from ingestion.demo import apply_change

    started = time.monotonic()
    # The shared org and its built warehouse are copied, never mutated.
    demo = tmp_path / "demo"
    shutil.copytree(pipeline_run.demo_dir, demo)
    truth = apply_change(demo, fraction=0.01, seed=CHANGE_SEED, quiet=True)
    changes = truth.data["change_sets"][-1]
    assert sum(sum(counts.values()) for counts in changes["rows"].values()) > 0
    assert len(changes["calendar_files_touched"]) >= 2
    envs = {}
    for name in ("reference", "crashed"):
        (tmp_path / name).mkdir()
        shutil.copy(pipeline_run.warehouse, tmp_path / name / "warehouse.duckdb")
        shutil.copy(pipeline_run.warehouse.with_name("serving.duckdb"), tmp_path / name / "serving.duckdb")
        envs[name] = {
            **pipeline_env(demo / "crm.sqlite", demo / "calendars", tmp_path / name / "warehouse.duckdb",
                           tmp_path / name / "dagster_home"),
            "SALESOPS_AS_OF": changes["as_of"],
        }  # fmt: skip
        (tmp_path / name / "dagster_home").mkdir()
    crashed = tmp_path / "crashed"
    serving = crashed / "serving.duckdb"
    old_version = published_run_id(serving)

    reference = start_cli(envs["reference"])  # the uninterrupted run, beside the chain
    stop = tmp_path / "stop-reader"
    reader_report = tmp_path / "reader.json"
    reader = subprocess.Popen(
        [sys.executable, str(READER), str(serving), str(stop), str(reader_report), str(READ_INTERVAL)]
    )
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(crashed / "dagster_home")))
    known: set[str] = set()
    killed: dict[str, tuple[str, str]] = {}
    left: dict[str, list[str]] = {}
    try:
        for point in KILL_POINTS:
            killed[point.name] = killed_run(point, envs["crashed"], instance, known)
            left[point.name] = leftovers(crashed)
            if point.name == "mid publication":  # the serving file is still the previous, whole one
                assert published_run_id(serving) == old_version
        final = start_cli(envs["crashed"])  # a normal run after the last kill
        final_output = final.communicate(timeout=600)[0]
    finally:
        stop.touch()
        reader.wait(timeout=60)
        reference_output = reference.communicate(timeout=600)[0]
        instance.dispose()
    assert final.returncode == 0, final_output[-3000:]
    assert reference.returncode == 0, reference_output[-3000:]
    chain_seconds = time.monotonic() - started

    # The kills left a half-built serving file and a half-written report; the next runs cleared them.
    assert [name for name in left["mid publication"] if ".building-" in name], left
    assert [name for name in left["mid report"] if name.endswith(".tmp")], left
    assert not [name for name in left["mid report"] if ".building-" in name], left
    assert leftovers(crashed) == []
    # The run lock's file outlived every killed holder and never blocked the next run.
    assert lock_path(crashed / "warehouse.duckdb").exists()
    assert (crashed / "report.html").stat().st_size > 10_000

    # Raw: no row lost or duplicated, and exactly the uninterrupted run's rows and cursors.
    ids = crm_id_counts(crashed / "warehouse.duckdb")
    assert len(ids) >= 10 and all(rows == distinct for rows, distinct in ids.values()), ids
    assert ids == crm_id_counts(tmp_path / "reference" / "warehouse.duckdb")
    raw = raw_contents(crashed / "warehouse.duckdb")
    raw_reference = raw_contents(tmp_path / "reference" / "warehouse.duckdb")
    assert set(raw) == set(raw_reference)
    assert [table for table in raw_reference if raw[table] != raw_reference[table]] == []
    # Every table of every schema (no leftover dbt temporaries), their row counts, the marts' rows.
    assert warehouse_state(crashed / "warehouse.duckdb") == warehouse_state(
        tmp_path / "reference" / "warehouse.duckdb"
    )
    assert table_counts(crashed / "warehouse.duckdb") == table_counts(
        tmp_path / "reference" / "warehouse.duckdb"
    )
    marts = mart_contents(crashed / "warehouse.duckdb")
    marts_reference = mart_contents(tmp_path / "reference" / "warehouse.duckdb")
    assert set(marts) == set(marts_reference)
    assert [table for table in marts_reference if marts[table] != marts_reference[table]] == []
    assert sum(len(rows) for rows in marts_reference.values()) > 1000
    # The serving database: the same published tables and rows as the uninterrupted run's.
    assert serving_contents(serving) == serving_contents(tmp_path / "reference" / "serving.duckdb")

    # The reader saw only complete publications: the old one, the one made by the run killed in its
    # report (it published first), the final run's; never a half-built or missing file.
    outcome = json.loads(reader_report.read_text())
    assert outcome["errors"] == 0, outcome["messages"]
    assert outcome["run_ids"] == [old_version, killed["mid report"][0], published_run_id(serving)]

    raw_rows = sum(len(rows) for rows in raw.values())
    steps = ", ".join(f"{name} (in {step})" for name, (_, step) in killed.items())
    print(
        f"crash: {len(KILL_POINTS)} SIGKILLs survived: {steps}; then 1 normal run; "
        f"equal to an uninterrupted run: {len(raw)} raw tables ({raw_rows} rows, 0 lost, 0 duplicated), "
        f"{len(marts)} marts ({sum(len(r) for r in marts.values())} rows), "
        f"{len(serving_contents(serving)) - 1} serving tables; reader: {outcome['queries']} reads, "
        f"{outcome['errors']} errors, {len(outcome['run_ids'])} complete versions; {chain_seconds:.0f} s"
    )


def test_temporaries_of_dead_writers_are_removed_and_those_of_live_ones_kept(tmp_path: Path) -> None:
    from orchestration.serving import remove_stale_temporaries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = [
        f"serving.duckdb.building-{dead.pid}",
        f"serving.duckdb.building-{dead.pid}.wal",
        f"serving.duckdb.building-{os.getpid()}",  # a live writer's (this process)
        "serving.duckdb",
        "serving.duckdb.building-notes",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    removed = remove_stale_temporaries(tmp_path, "serving.duckdb.building-")
    assert sorted(p.name for p in removed) == sorted(names[:2])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
