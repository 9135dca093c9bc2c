"""The Dagster code location: assets, checks, groups, owners and the schedule load as declared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DefaultScheduleStatus

from ingestion.contract import CRM_TABLES, raw_table_name

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def load_defs():
    from orchestration.definitions import defs

    return defs


def test_every_source_table_staging_model_and_mart_is_an_asset() -> None:
    graph = load_defs().resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    expected_raw = {f"raw/{raw_table_name(t)}" for t in CRM_TABLES} | {
        "raw/calendar_occurrences",
        "raw/calendar_attendees",
    }
    assert expected_raw <= keys
    assert {
        "staging/stg_salesforce__leads",
        "staging/stg_calendar__events",
        "marts/quota_attainment",
        "marts/lead_response_times",
        "marts/lead_response_by_rep_week",
        "marts/funnel_conversion",
        "quality/raw_reconciliation",
    } <= keys


def test_groups_and_owners() -> None:
    graph = load_defs().resolve_asset_graph()

    def node(key: str):
        return graph.get(AssetKey.from_user_string(key))

    assert node("raw/salesforce_lead").group_name == "ingestion"
    assert node("staging/stg_salesforce__leads").group_name == "staging"
    assert node("marts/quota_attainment").group_name == "marts"
    assert node("marts/quota_attainment").owners == ["team:sales-analysts"]
    assert node("quality/raw_reconciliation").group_name == "quality"
    assert node("quality/raw_reconciliation").owners == ["team:sales-ops-coordinators"]


def test_integrity_checks_are_blocking_and_owned_by_coordinators() -> None:
    graph = load_defs().resolve_asset_graph()
    raw_checks = [key for key in graph.asset_check_keys if key.name == "raw_integrity"]
    assert len(raw_checks) == len(CRM_TABLES) + 2
    for key in raw_checks:
        spec = graph.get_check_spec(key)
        assert spec.blocking
        assert spec.metadata["owner"] == "team:sales-ops-coordinators"
    dbt_checks = [key for key in graph.asset_check_keys if key.name.startswith("unique_grain")]
    assert {k.asset_key.to_user_string() for k in dbt_checks} >= {
        "marts/quota_attainment",
        "marts/funnel_conversion",
        "marts/lead_response_by_rep_week",
    }


def test_nightly_schedule_at_two_and_running_by_default() -> None:
    schedule = load_defs().resolve_schedule_def("nightly_at_0200")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "nightly"


def test_dagster_loads_the_workspace_without_errors(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "All code locations passed validation" in completed.stderr + completed.stdout
