"""BI readers and the nightly run: readers never block it and never see a half-published database."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from tests.conftest import PipelineRun, execute_nightly, table_counts


def test_serving_has_every_mart_with_hashed_emails(pipeline_run: PipelineRun) -> None:
    serving = pipeline_run.warehouse.with_name("serving.duckdb")
    marts = {name.split(".", 1)[1]: rows for name, rows in table_counts(pipeline_run.warehouse).items()
             if name.startswith("marts.")}  # fmt: skip
    with duckdb.connect(str(serving), read_only=True) as connection:
        published = dict(connection.execute("SELECT table_name, row_count FROM _publication").fetchall())
        emails = [row[0] for row in connection.execute("SELECT email FROM dim_reps").fetchall()]
    assert published == marts
    assert emails and all(len(e) == 64 and "@" not in e for e in emails)


def test_reader_in_a_loop_through_a_full_run_sees_no_error_and_no_partial_read(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    serving = tmp_path / "serving.duckdb"
    shutil.copy(pipeline_run.warehouse.with_name("serving.duckdb"), serving)
    stop, report = tmp_path / "stop", tmp_path / "report.json"
    reader = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("serving_reader.py")),
            str(serving),
            str(stop),
            str(report),
        ]
    )
    try:
        time.sleep(1.0)
        env = {**pipeline_run.env, "SALESOPS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
               "SALESOPS_SERVING_PATH": str(serving), "DAGSTER_HOME": str(tmp_path / "home")}  # fmt: skip
        started = time.monotonic()
        result = execute_nightly(env)
        elapsed = time.monotonic() - started
        time.sleep(1.0)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    outcome = json.loads(report.read_text())
    assert result.success
    assert outcome["errors"] == 0, outcome["messages"]
    assert outcome["queries"] > 20
    assert len(outcome["run_ids"]) == 2  # the old publication, then the new one
    assert outcome["run_ids"][1] == result.run_id
    assert elapsed < 300


def test_run_summary_is_attached_to_the_publication_for_the_ui(pipeline_run: PipelineRun) -> None:
    (event,) = [
        e
        for e in pipeline_run.first.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == "serving/marts"
    ]
    summary = event.materialization.metadata["run_summary"].value
    # The summary counts the checks evaluated before the publication step ran (non-blocking checks
    # may come later in the same run).
    evaluations = []
    for run_event in pipeline_run.first.all_events:
        if run_event.event_type_value == "ASSET_MATERIALIZATION" and run_event.asset_key == event.asset_key:
            break
        if run_event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluations.append(run_event.event_specific_data)
    failed = [e for e in evaluations if not e.passed]
    assert f"**checks**: {len(evaluations) - len(failed)} passed, {len(failed)} failed" in summary
    assert "**quarantined records**: 0" in summary
    for name, rows in table_counts(pipeline_run.warehouse).items():
        if name.startswith("marts."):
            assert f"| {name.removeprefix('marts.')} | {rows} |" in summary
    task_rows = pipeline_run.counts_after_first["raw.salesforce_task"]
    assert f"| raw/salesforce_task | {task_rows} |" in summary
