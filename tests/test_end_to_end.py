"""The whole nightly job on a small generated org, checked against values computed in Python."""

from __future__ import annotations

import math

import pytest

from tests import reference
from tests.conftest import PipelineRun

MARTS = {"marts.quota_attainment", "marts.lead_response_times", "marts.lead_response_by_rep_week",
         "marts.funnel_conversion"}  # fmt: skip


def close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def assert_rows_equal(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected), (
        f"keys only in mart: {sorted(set(actual) - set(expected))[:5]}, "
        f"only expected: {sorted(set(expected) - set(actual))[:5]}"
    )
    for key, expected_row in expected.items():
        for column, value in expected_row.items():
            assert close(actual[key][column], value), (
                f"{key} {column}: mart {actual[key][column]!r} != {value!r}"
            )


def test_both_runs_succeed_with_no_blocking_failure(pipeline_run: PipelineRun) -> None:
    for result in (pipeline_run.first, pipeline_run.second):
        assert result.success
        errors = [
            e for e in result.get_asset_check_evaluations() if not e.passed and e.severity.value == "ERROR"
        ]
        assert errors == []


def test_every_mart_is_built_and_not_empty(pipeline_run: PipelineRun) -> None:
    assert set(pipeline_run.counts_after_first) >= MARTS
    assert all(pipeline_run.counts_after_first[m] > 0 for m in MARTS)


def test_second_run_leaves_every_table_with_the_same_row_counts(pipeline_run: PipelineRun) -> None:
    assert pipeline_run.counts_after_second == pipeline_run.counts_after_first


def test_a_rerun_with_nothing_changed_rebuilds_nothing(pipeline_run: PipelineRun) -> None:
    """Same as_of, same project, no raw row written: the dbt steps and everything after them skip,
    and every raw suite reports the first run's validation instead of validating again."""
    from expectations.raw_suites import RAW_SUITES
    from orchestration.summary import summarize
    from tests.conftest import environment

    first_run_id = pipeline_run.first.run_id
    built = {e.asset_key.path[0] for e in pipeline_run.second.get_asset_materialization_events()}
    assert built == {"raw"}
    assert {"staging", "marts", "serving"} <= {
        e.asset_key.path[0] for e in pipeline_run.first.get_asset_materialization_events()
    }
    raw_checks = [
        e for e in pipeline_run.second.get_asset_check_evaluations() if e.check_name == "raw_integrity"
    ]
    assert len(raw_checks) == len(RAW_SUITES)
    for evaluation in raw_checks:
        assert evaluation.metadata["validated_in_run"].value.startswith(first_run_id), evaluation.asset_key
    first_checks = pipeline_run.first.get_asset_check_evaluations()
    assert not [e for e in first_checks if "validated_in_run" in e.metadata]
    with environment(pipeline_run.env):
        summary = summarize(pipeline_run.second, str(pipeline_run.warehouse))
    assert summary.unchanged_since_run == first_run_id
    assert f"inputs unchanged since run {first_run_id}" in summary.render()
    assert pipeline_run.query("SELECT count(*) FROM meta.published_inputs") == [(1,)]


def test_raw_holds_every_source_row_including_deleted(pipeline_run: PipelineRun) -> None:
    import sqlite3

    with sqlite3.connect(pipeline_run.crm) as connection:
        for table in ("lead", "opportunity", "task", "user", "forecastingquota"):
            source_count = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            assert pipeline_run.counts_after_first[f"raw.salesforce_{table}"] == source_count


def test_second_run_is_incremental(pipeline_run: PipelineRun) -> None:
    metadata = {}
    for event in pipeline_run.second.get_asset_materialization_events():
        materialization = event.materialization
        metadata[materialization.asset_key.to_user_string()] = {
            k: v.value for k, v in materialization.metadata.items()
        }
    task = metadata["raw/salesforce_task"]
    assert task["full_load"] is False
    assert task["rows_read"] < task["rows_in_raw"]
    calendar = metadata["raw/calendar_occurrences"]
    assert calendar["files_parsed"] == 0
    assert calendar["files_unchanged"] == calendar["files_total"] > 0


def test_quota_attainment_matches_python(pipeline_run: PipelineRun) -> None:
    rows = pipeline_run.query(
        "SELECT rep_id, period_type, period_start, quota_amount, bookings_amount, won_deals, attainment "
        "FROM marts.quota_attainment"
    )
    actual = {
        (r[0], r[1], r[2]): {
            "quota_amount": r[3],
            "bookings_amount": r[4],
            "won_deals": r[5],
            "attainment": r[6],
        }
        for r in rows
    }
    assert_rows_equal(actual, reference.quota_attainment(pipeline_run.crm))


def test_funnel_conversion_matches_python(pipeline_run: PipelineRun) -> None:
    columns = ["leads", "converted_leads", "opportunities", "won_opportunities", "won_amount",
               "lead_to_opportunity_rate", "win_rate", "lead_to_win_rate"]  # fmt: skip
    rows = pipeline_run.query(
        f"SELECT cohort_month, lead_source, {', '.join(columns)} FROM marts.funnel_conversion"
    )
    actual = {(r[0], r[1]): dict(zip(columns, r[2:], strict=True)) for r in rows}
    assert_rows_equal(actual, reference.funnel_conversion(pipeline_run.crm))


def test_lead_response_times_match_python(pipeline_run: PipelineRun) -> None:
    columns = ["first_response_at", "response_channel", "response_minutes", "business_response_minutes",
               "is_responded", "within_sla"]  # fmt: skip
    rows = pipeline_run.query(f"SELECT lead_id, {', '.join(columns)} FROM marts.lead_response_times")
    actual = {r[0]: dict(zip(columns, r[1:], strict=True)) for r in rows}
    expected = reference.lead_response_times(pipeline_run.crm, pipeline_run.calendars)
    assert_rows_equal(actual, expected)
    channels = {row["response_channel"] for row in expected.values()}
    assert {"call", "meeting"} <= channels, "the demo org answers leads by calls and by meetings"
    assert any(not row["is_responded"] for row in expected.values()), "some leads are never answered"


def test_lead_response_by_rep_week_matches_python(pipeline_run: PipelineRun) -> None:
    per_lead = reference.lead_response_times(pipeline_run.crm, pipeline_run.calendars)
    leads = {row["id"]: row for row in reference.crm_rows(pipeline_run.crm, "lead")}
    groups: dict[tuple, list[dict]] = {}
    for lead_id, response in per_lead.items():
        created = reference.parse_dt(leads[lead_id]["createddate"]).date()
        week = created.fromordinal(created.toordinal() - created.weekday())
        groups.setdefault((leads[lead_id]["ownerid"] or None, week), []).append(response)
    expected = {}
    for key, items in groups.items():
        answered = [i["business_response_minutes"] for i in items if i["is_responded"]]
        expected[key] = {
            "leads": len(items),
            "responded": len(answered),
            "median_business_response_minutes": reference.percentile(answered, 0.5),
            "p90_business_response_minutes": reference.percentile(answered, 0.9),
            "sla_rate": sum(i["within_sla"] for i in items) / len(items),
        }
    rows = pipeline_run.query(
        "SELECT owner_id, week_start, leads, responded, median_business_response_minutes, "
        "p90_business_response_minutes, sla_rate FROM marts.lead_response_by_rep_week"
    )
    columns = [
        "leads",
        "responded",
        "median_business_response_minutes",
        "p90_business_response_minutes",
        "sla_rate",
    ]
    actual = {(r[0], r[1]): dict(zip(columns, r[2:], strict=True)) for r in rows}
    assert_rows_equal(actual, expected)


# The demo org is a replica without the optional OpportunityStage and Event objects: the tables
# holding them are empty (tests/test_org_stages.py and tests/test_crm_events.py fill them).
OPTIONAL_ONLY = {
    "raw.salesforce_opportunitystage",
    "raw.salesforce_event",
    "staging.stg_salesforce__events",
    "staging.stg_calendar__crm_events",
}


@pytest.mark.parametrize("schema", ["raw", "staging", "marts"])
def test_no_table_is_left_without_rows_by_the_demo(pipeline_run: PipelineRun, schema: str) -> None:
    empty = [t for t, n in pipeline_run.counts_after_first.items() if t.startswith(f"{schema}.") and n == 0]
    assert sorted(empty) == sorted(t for t in OPTIONAL_ONLY if t.startswith(f"{schema}."))


def test_hygiene_worklist_finds_exactly_the_planted_defects(pipeline_run: PipelineRun) -> None:
    defects = pipeline_run.ground_truth.defects
    rows = pipeline_run.query(
        "SELECT check_name, owner_id, record_count, record_ids FROM marts.crm_data_quality"
    )
    found_ids: dict[str, set[str]] = {}
    found_by_owner: dict[str, dict[str | None, int]] = {}
    for check, owner, count, ids in rows:
        listed = ids.split(",")
        assert len(listed) == count
        found_ids.setdefault(check, set()).update(listed)
        found_by_owner.setdefault(check, {})[owner] = count
    assert set(found_ids) == set(defects)
    for check, defect in defects.items():
        assert found_ids[check] == set(defect["ids"]), check
        assert found_by_owner[check] == {o["owner_id"]: o["count"] for o in defect["by_owner"]}, check


def test_summary_reports_planted_defects_and_quarantine(pipeline_run: PipelineRun) -> None:
    from orchestration.summary import summarize
    from tests.conftest import environment

    with environment(pipeline_run.env):
        summary = summarize(pipeline_run.second, str(pipeline_run.warehouse))
    planted = {name: defect["count"] for name, defect in pipeline_run.ground_truth.defects.items()}
    assert summary.planted == planted
    assert summary.hygiene == planted
    assert summary.quarantine == {}
    text = summary.render()
    for name, count in planted.items():
        assert f"{name:<48} {count:>10} ({count})" in text
    assert "quarantined records: 0" in text
    assert set(summary.forecast_mape) == {"weighted_pipeline", "commit", "best_case", "calibrated"}
    for method, mape in summary.forecast_mape.items():
        assert f"{method:<48} {mape:>10.1%}" in text


def test_every_forecast_table_column_is_described(pipeline_run: PipelineRun) -> None:
    from orchestration.assets.forecast import COLUMN_DESCRIPTIONS, sales_forecast_assets

    for key, spec in sales_forecast_assets.specs_by_key.items():
        schema = spec.metadata["dagster/column_schema"]
        described = [column.name for column in schema.columns if column.description]
        actual = [row[0] for row in pipeline_run.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' "
            f"AND table_name = '{key.path[1]}' ORDER BY ordinal_position"
        )]  # fmt: skip
        assert described == actual == list(COLUMN_DESCRIPTIONS[key])
