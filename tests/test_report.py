"""The nightly HTML report: its numbers equal the marts, it references nothing outside itself, and
headless Chromium draws every chart without logging an error."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import shutil
import subprocess
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from orchestration.report import render_report
from tests.conftest import E2E_AS_OF, PipelineRun, environment

FORECAST_CHARTS = {"forecast_backtest", "forecast_mape", "forecast_outlook"}
BASE_CHARTS = {
    "quota_rep", "quota_team", "funnel_source", "response_histogram", "sla_by_rep", "pipeline_coverage",
    "rep_activity_weekly", "rep_activity_by_rep", "onboarding_ramp", "onboarding_status", "crm_hygiene",
}  # fmt: skip
BIN_EDGES = [0, 15, 30, 60, 120, 240, 480, 960, 2400]
METHODS = ["weighted_pipeline", "commit", "best_case", "calibrated"]


# ------------------------------------------------------------------------------------ page parsing


class NumberCollector(HTMLParser):
    """Every ``data-value`` inside ``svg.chart[data-chart]`` or ``table[data-for]``, per chart id."""

    def __init__(self) -> None:
        super().__init__()
        self.scope: str | None = None
        self.scope_tag = ""
        self.numbers: dict[str, dict[tuple[str, str], float | None]] = {}
        self.conflicts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "svg" and "data-chart" in values:
            self.scope, self.scope_tag = values["data-chart"], tag
            self.numbers.setdefault(self.scope, {})
        elif tag == "table" and "data-for" in values:
            self.scope, self.scope_tag = values["data-for"], tag
            self.numbers.setdefault(self.scope, {})
        elif self.scope and "data-value" in values:
            key = (values["data-key"], values["data-series"])
            text = values["data-value"] or ""
            value = float(text) if text else None
            seen = self.numbers[self.scope]
            if key in seen and seen[key] != value:
                self.conflicts.append(f"{self.scope} {key}: {seen[key]} != {value}")
            seen[key] = value

    def handle_endtag(self, tag: str) -> None:
        if self.scope and tag == self.scope_tag:
            self.scope = None


def page_numbers(page: str) -> dict[str, dict[tuple[str, str], float | None]]:
    collector = NumberCollector()
    collector.feed(page)
    assert not collector.conflicts, collector.conflicts
    return collector.numbers


def num(value: object) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def fsum_or_none(values: list[object]) -> float | None:
    numbers = [float(v) for v in values if num(v) is not None]
    return math.fsum(numbers) if numbers else None


# ---------------------------------------------------------------- the marts, queried independently


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def expected_numbers(connection: duckdb.DuckDBPyConnection, schema: str, as_of: date) -> dict[str, dict]:
    """What each chart must show, straight from the marts (``schema`` = 'marts.' or '')."""

    def q(sql: str, params: list | None = None) -> list[tuple]:
        return connection.execute(sql.replace("{s}", schema), params or []).fetchall()

    expected: dict[str, dict] = {}
    current = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)  # calendar quarters (the dbt default)
    previous = date(current.year - (current.month == 1), (current.month - 4) % 12 + 1, 1)
    quarters = [previous, current]

    rows = q(
        "SELECT rep_id, period_start, quota_amount, bookings_amount, won_deals, attainment "
        "FROM {s}quota_attainment WHERE period_type = 'quarter' AND period_start IN (?, ?)",
        quarters,
    )
    expected["quota_rep"] = {
        (f"{rep}|{start}", series): num(value)
        for rep, start, *values in rows
        for series, value in zip(
            ["quota_amount", "bookings_amount", "won_deals", "attainment"], values, strict=True
        )
    }
    expected["quota_team"] = {}
    for team, start, reps, quotas, bookings in q(
        "SELECT coalesce(r.team, '(no team)'), a.period_start, count(*), list(a.quota_amount), "
        "list(a.bookings_amount) FROM {s}quota_attainment a LEFT JOIN {s}dim_reps r USING (rep_id) "
        "WHERE a.period_type = 'quarter' AND a.period_start IN (?, ?) GROUP BY ALL",
        quarters,
    ):
        quota, booked = fsum_or_none(quotas), fsum_or_none(bookings)
        attainment = booked / quota if quota and quota > 0 and booked is not None else None
        for series, value in (("reps", reps), ("quota_amount", quota), ("bookings_amount", booked)):
            expected["quota_team"][(f"{team}|{start}", series)] = num(value)
        expected["quota_team"][(f"{team}|{start}", "attainment")] = attainment

    first_month = date(as_of.year - (as_of.month <= 11), (as_of.month - 12) % 12 + 1, 1)
    expected["funnel_source"] = {}
    for source, leads, converted, opps, won, amounts in q(
        "SELECT coalesce(lead_source, 'Unknown'), sum(leads), sum(converted_leads), sum(opportunities), "
        "sum(won_opportunities), list(won_amount) FROM {s}funnel_conversion "
        "WHERE cohort_month >= ? AND cohort_month <= ? GROUP BY 1",
        [first_month, as_of],
    ):
        for series, value in (
            ("leads", leads),
            ("converted_leads", converted),
            ("opportunities", opps),
            ("won_opportunities", won),
            ("won_amount", fsum_or_none(amounts)),
            ("lead_to_opportunity_rate", opps / leads if leads else None),
            ("lead_to_win_rate", won / leads if leads else None),
        ):
            expected["funnel_source"][(source, series)] = num(value)

    start, end = monday(as_of) - timedelta(weeks=11), as_of + timedelta(days=1)
    window = "created_at >= ? AND created_at < ?"
    histogram = {}
    for low, high in zip(BIN_EDGES, [*BIN_EDGES[1:], None], strict=True):
        label = f"{low}–{high}" if high is not None else f"{low}+"
        upper = "" if high is None else f" AND business_response_minutes < {high}"
        (count,) = q(
            f"SELECT count(*) FROM {{s}}lead_response_times WHERE {window} AND is_responded "
            f"AND business_response_minutes >= {low}{upper}",
            [start, end],
        )[0]
        histogram[(label, "leads")] = float(count)
    (unanswered,) = q(
        f"SELECT count(*) FROM {{s}}lead_response_times WHERE {window} "
        "AND (NOT is_responded OR business_response_minutes IS NULL)",
        [start, end],
    )[0]
    histogram[("not responded", "leads")] = float(unanswered)
    expected["response_histogram"] = histogram
    expected["sla_by_rep"] = {}
    for owner, leads, responded, within in q(
        "SELECT coalesce(owner_id, '(unowned)'), count(*), count(*) FILTER (WHERE is_responded), "
        f"count(*) FILTER (WHERE within_sla) FROM {{s}}lead_response_times WHERE {window} GROUP BY 1",
        [start, end],
    ):
        for series, value in (("leads", leads), ("responded", responded), ("within_sla", within)):
            expected["sla_by_rep"][(owner, series)] = float(value)
        expected["sla_by_rep"][(owner, "sla_rate")] = within / leads

    coverage_columns = ["quota_amount", "bookings_to_date", "remaining_quota", "open_opportunities",
                        "open_pipeline", "weighted_pipeline", "commit_amount", "best_case_amount",
                        "coverage_ratio"]  # fmt: skip
    expected["pipeline_coverage"] = {
        (rep, series): num(value)
        for rep, *values in q(
            f"SELECT rep_id, {', '.join(coverage_columns)} FROM {{s}}pipeline_coverage "
            "WHERE quarter_start = ?",
            [current],
        )
        for series, value in zip(coverage_columns, values, strict=True)
    }

    measures = ["calls", "emails", "customer_meetings", "internal_meetings", "training_sessions",
                "opportunities_created"]  # fmt: skip
    sums = ", ".join(f"sum({m})" for m in measures)
    activity_window = [monday(as_of) - timedelta(weeks=11), monday(as_of)]
    for chart, group in (("rep_activity_weekly", "week_start"), ("rep_activity_by_rep", "rep_id")):
        expected[chart] = {}
        for key, *values in q(
            f"SELECT {group}, {sums} FROM {{s}}rep_activity WHERE week_start BETWEEN ? AND ? GROUP BY 1",
            activity_window,
        ):
            counts = dict(zip(measures, values, strict=True))
            counts["meetings"] = (
                counts["customer_meetings"] + counts["internal_meetings"] + counts["training_sessions"]
            )
            for series, value in counts.items():
                expected[chart][(str(key), series)] = float(value)
    for week in range(12):  # weeks without any activity show zeros
        key = str(activity_window[0] + timedelta(weeks=week))
        for series in [*measures, "meetings"]:
            expected["rep_activity_weekly"].setdefault((key, series), 0.0)

    onboarding_columns = ["tenure_days", "trainings_attended_90d", "days_to_first_win",
                          "first_full_quarter_attainment"]  # fmt: skip
    expected["onboarding_ramp"] = {
        (rep, series): num(value)
        for rep, *values in q(f"SELECT rep_id, {', '.join(onboarding_columns)} FROM {{s}}onboarding_progress")
        for series, value in zip(onboarding_columns, values, strict=True)
    }
    statuses = dict.fromkeys(["ramping", "ramped", "behind"], 0.0)
    for status, count in q("SELECT ramp_status, count(*) FROM {s}onboarding_progress GROUP BY 1"):
        statuses[status] = float(count)
    expected["onboarding_status"] = {(status, "reps"): count for status, count in statuses.items()}

    history = q("SELECT as_of, check_name, record_count FROM {s}crm_data_quality_history WHERE level = 'org'")
    days, checks = {str(r[0]) for r in history}, {r[1] for r in history}
    expected["crm_hygiene"] = {(day, check): None for day in days for check in checks}
    expected["crm_hygiene"].update({(str(day), check): float(count) for day, check, count in history})
    return expected


def expected_forecast(connection: duckdb.DuckDBPyConnection, schema: str) -> dict[str, dict]:
    def q(sql: str) -> list[tuple]:
        return connection.execute(sql.replace("{s}", schema)).fetchall()

    backtest: dict = {}
    for month, method, forecast, actual in q(
        "SELECT month_start, method, forecast, actual FROM {s}forecast_accuracy WHERE level = 'org' "
        "ORDER BY month_start, method"
    ):
        backtest[(str(month), method)] = num(forecast)
        backtest.setdefault((str(month), "actual"), num(actual))
    summary_columns = ["months", "observations", "mape", "bias", "total_forecast", "total_actual"]
    accuracy = {
        (f"{level}|{method}", series): num(value)
        for level, method, *values in q(
            f"SELECT level, method, {', '.join(summary_columns)} FROM {{s}}forecast_accuracy_summary"
        )
        for series, value in zip(summary_columns, values, strict=True)
    }
    outlook_columns = ["closed_to_date", "commit", "best_case", "weighted_pipeline", "calibrated_pipeline",
                       "run_rate", "forecast", "forecast_low", "forecast_high"]  # fmt: skip
    outlook = {
        (str(month), series): num(value)
        for month, *values in q(
            f"SELECT month_start, {', '.join(outlook_columns)} FROM {{s}}sales_forecast WHERE level = 'org'"
        )
        for series, value in zip(outlook_columns, values, strict=True)
    }
    return {"forecast_backtest": backtest, "forecast_mape": accuracy, "forecast_outlook": outlook}


def has_forecast(connection: duckdb.DuckDBPyConnection, schema: str) -> bool:
    names = {
        row[0]
        for row in connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [schema.rstrip(".") or "main"]
        ).fetchall()
    }
    return {"sales_forecast", "forecast_accuracy", "forecast_accuracy_summary"} <= names


def add_synthetic_forecast(serving: Path, as_of: date) -> None:
    """Forecast tables in the documented shape (docs/metrics.md, orchestration/forecasting.py), with
    values that are not round numbers, so the page's numbers must be copied exactly."""
    quarter = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    months_ahead = [date(quarter.year + (quarter.month + i - 1) // 12, (quarter.month + i - 1) % 12 + 1, 1)
                    for i in range(6)]  # fmt: skip
    months_back = [date(m.year - 1, m.month, 1) for m in months_ahead] + months_ahead[:2]
    with duckdb.connect(str(serving)) as connection:
        connection.execute(
            "CREATE OR REPLACE TABLE sales_forecast (level VARCHAR, member VARCHAR, month_start DATE, "
            "closed_to_date DOUBLE, commit DOUBLE, best_case DOUBLE, weighted_pipeline DOUBLE, "
            "calibrated_pipeline DOUBLE, run_rate DOUBLE, forecast DOUBLE, forecast_low DOUBLE, "
            "forecast_high DOUBLE, as_of DATE)"
        )
        for level, member in (("org", "org"), ("team", "EMEA Account Executive")):
            for index, month in enumerate(months_ahead):
                closed = 1_000_000 / 3 * (2 - index) if index < 2 else 0.0
                forecast = closed + 123_456.789 * (index + 1) + 1 / 7
                connection.execute(
                    "INSERT INTO sales_forecast VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [level, member, month, closed, 5e4 * index, 7e4 * index, 9e4 * index + 0.1,
                     forecast - closed, 8033.333333333334, forecast, forecast * 0.71, forecast * 1.13, as_of],
                )  # fmt: skip
        connection.execute(
            "CREATE OR REPLACE TABLE forecast_accuracy (level VARCHAR, member VARCHAR, method VARCHAR, "
            "month_start DATE, forecast DOUBLE, actual DOUBLE, error DOUBLE, "
            "absolute_percentage_error DOUBLE, as_of DATE)"
        )
        for level, member in (("org", "org"), ("rep", "0058c0000000000AAA")):
            for index, month in enumerate(months_back):
                actual = 0.0 if index == 3 else 1_500_000 / 7 * (index + 1)
                for position, method in enumerate(METHODS):
                    forecast = actual * (0.6 + 0.15 * position) + 10_000 * index + 1 / 3
                    error = forecast - actual
                    ape = abs(error) / actual if actual > 0 else None
                    connection.execute(
                        "INSERT INTO forecast_accuracy VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [level, member, method, month, forecast, actual, error, ape, as_of],
                    )
        connection.execute(
            "CREATE OR REPLACE TABLE forecast_accuracy_summary AS SELECT level, method, "
            "CAST(count(DISTINCT month_start) AS INTEGER) AS months, count(absolute_percentage_error) AS "
            "observations, avg(absolute_percentage_error) AS mape, "
            "(sum(forecast) - sum(actual)) / sum(actual) AS bias, sum(forecast) AS total_forecast, "
            "sum(actual) AS total_actual, max(as_of) AS as_of "
            "FROM forecast_accuracy GROUP BY level, method"
        )


def drop_forecast(serving: Path) -> None:
    with duckdb.connect(str(serving)) as connection:
        for table in ("sales_forecast", "forecast_accuracy", "forecast_accuracy_summary",
                      "forecast_stage_probabilities"):  # fmt: skip
            connection.execute(f"DROP TABLE IF EXISTS {table}")


def serving_copy(pipeline_run: PipelineRun, tmp_path: Path, name: str = "serving.duckdb") -> Path:
    target = tmp_path / name
    shutil.copy(pipeline_run.warehouse.with_name("serving.duckdb"), target)
    return target


def assert_numbers(page: str, expected: dict[str, dict]) -> None:
    shown = page_numbers(page)
    for chart, numbers in expected.items():
        assert chart in shown, f"chart {chart} is missing"
        assert shown[chart].keys() == numbers.keys(), (
            chart,
            sorted(set(shown[chart]) ^ set(numbers))[:10],
        )
        wrong = {
            key: (shown[chart][key], value) for key, value in numbers.items() if shown[chart][key] != value
        }
        assert not wrong, (chart, dict(list(wrong.items())[:10]))


def chart_ids(page: str) -> list[str]:
    return re.findall(r'<svg class="chart" data-chart="([^"]+)"', page)


# -------------------------------------------------------------------------------- numbers and marts


def test_report_numbers_equal_the_marts(pipeline_run: PipelineRun, tmp_path: Path) -> None:
    serving = serving_copy(pipeline_run, tmp_path)
    summary = render_report(serving, tmp_path / "report.html", E2E_AS_OF)
    page = (tmp_path / "report.html").read_text()
    with duckdb.connect(str(pipeline_run.warehouse), read_only=True) as warehouse:
        expected = expected_numbers(warehouse, "marts.", E2E_AS_OF)
        forecast = has_forecast(warehouse, "marts.")
        if forecast:
            expected.update(expected_forecast(warehouse, "marts."))
    assert all(expected[chart] for chart in BASE_CHARTS), "the demo org fills every chart"
    assert_numbers(page, expected)
    assert (
        set(summary.charts) == set(chart_ids(page)) == BASE_CHARTS | (FORECAST_CHARTS if forecast else set())
    )
    assert summary.empty_charts == ()
    assert summary.forecast_available is forecast
    assert ('data-note="forecast-unavailable"' in page) is not forecast


def test_report_shows_sla_rates_that_agree_with_the_weekly_mart(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    """The window's SLA rate per owner is the weekly mart's rate summed over the same weeks."""
    render_report(serving_copy(pipeline_run, tmp_path), tmp_path / "report.html", E2E_AS_OF)
    shown = page_numbers((tmp_path / "report.html").read_text())["sla_by_rep"]
    weekly = pipeline_run.query(
        "SELECT coalesce(owner_id, '(unowned)'), sum(leads), sum(round(sla_rate * leads)) "
        "FROM marts.lead_response_by_rep_week WHERE week_start BETWEEN "
        f"DATE '{monday(E2E_AS_OF) - timedelta(weeks=11)}' AND DATE '{E2E_AS_OF}' GROUP BY 1"
    )
    assert weekly
    for owner, leads, within in weekly:
        assert shown[(owner, "leads")] == leads
        assert shown[(owner, "within_sla")] == within


def test_report_names_reps_and_shows_no_email(pipeline_run: PipelineRun, tmp_path: Path) -> None:
    render_report(serving_copy(pipeline_run, tmp_path), tmp_path / "report.html", E2E_AS_OF)
    page = (tmp_path / "report.html").read_text()
    names = [
        row[0] for row in pipeline_run.query("SELECT rep_name FROM marts.dim_reps WHERE rep_name IS NOT NULL")
    ]
    emails = [
        row[0] for row in pipeline_run.query("SELECT email FROM marts.dim_reps WHERE email IS NOT NULL")
    ]
    assert sum(html.escape(name) in page for name in names) >= len(names) // 2
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", page)
    assert not any(email in page for email in emails)


def test_forecast_charts_show_the_forecast_tables(pipeline_run: PipelineRun, tmp_path: Path) -> None:
    serving = serving_copy(pipeline_run, tmp_path)
    drop_forecast(serving)
    add_synthetic_forecast(serving, E2E_AS_OF)
    summary = render_report(serving, tmp_path / "report.html", E2E_AS_OF)
    page = (tmp_path / "report.html").read_text()
    with duckdb.connect(str(serving), read_only=True) as connection:
        expected = expected_forecast(connection, "")
    assert_numbers(page, expected)
    assert summary.forecast_available and set(summary.charts) >= FORECAST_CHARTS
    assert "forecast-unavailable" not in page
    # the team row and the rep backtest rows stay out of the org charts; rep accuracy is in the table
    assert {key for key, _ in page_numbers(page)["forecast_outlook"]} == {
        str(m) for (m, _) in expected["forecast_outlook"]
    }
    assert ("rep|calibrated", "mape") in page_numbers(page)["forecast_mape"]

    # without the summary table, the report summarises forecast_accuracy the same way
    with duckdb.connect(str(serving)) as connection:
        connection.execute("DROP TABLE forecast_accuracy_summary")
    render_report(serving, tmp_path / "report2.html", E2E_AS_OF)
    shown = page_numbers((tmp_path / "report2.html").read_text())["forecast_mape"]
    for key, value in expected["forecast_mape"].items():
        assert (value is None and shown[key] is None) or math.isclose(shown[key], value, rel_tol=1e-12), key


def test_missing_forecast_gives_a_clear_note(pipeline_run: PipelineRun, tmp_path: Path) -> None:
    serving = serving_copy(pipeline_run, tmp_path)
    drop_forecast(serving)
    summary = render_report(serving, tmp_path / "report.html", E2E_AS_OF)
    page = (tmp_path / "report.html").read_text()
    assert not summary.forecast_available
    assert 'data-note="forecast-unavailable"' in page and "Forecast not available" in page
    assert not FORECAST_CHARTS & set(chart_ids(page))
    assert set(summary.charts) == BASE_CHARTS


def test_empty_marts_render_no_data_charts(pipeline_run: PipelineRun, tmp_path: Path) -> None:
    serving = serving_copy(pipeline_run, tmp_path)
    with duckdb.connect(str(serving)) as connection:
        for (table,) in connection.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            connection.execute(f'DELETE FROM "{table}"')
    add_synthetic_forecast(serving, E2E_AS_OF)
    with duckdb.connect(str(serving)) as connection:
        for table in ("sales_forecast", "forecast_accuracy", "forecast_accuracy_summary"):
            connection.execute(f"DELETE FROM {table}")
    summary = render_report(serving, tmp_path / "report.html", E2E_AS_OF)
    page = (tmp_path / "report.html").read_text()
    assert set(summary.empty_charts) == set(summary.charts) == BASE_CHARTS | FORECAST_CHARTS
    assert page.count('data-empty="true"') == len(summary.charts)
    assert page.count("No data:") == len(summary.charts)
    assert 'class="mark"' not in page

    bare = tmp_path / "bare.duckdb"  # a database without any mart table at all
    duckdb.connect(str(bare)).close()
    summary = render_report(bare, tmp_path / "bare.html", E2E_AS_OF)
    assert set(summary.empty_charts) == set(summary.charts) == BASE_CHARTS
    assert not summary.forecast_available


# ------------------------------------------------------------------------------- self-containment


def test_report_references_nothing_outside_itself(pipeline_run: PipelineRun, tmp_path: Path) -> None:
    serving = serving_copy(pipeline_run, tmp_path)
    add_synthetic_forecast(serving, E2E_AS_OF)
    render_report(serving, tmp_path / "report.html", E2E_AS_OF)
    page = (tmp_path / "report.html").read_text()
    lowered = page.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert not re.search(r"\bsrc\s*=", lowered), "no src attribute at all"
    assert all(href.startswith("#") for href in re.findall(r'\bhref\s*=\s*"([^"]*)"', lowered))
    assert not re.search(r"url\(\s*['\"]?(?!data:)", lowered)
    assert "@import" not in lowered and "<link" not in lowered
    assert not re.search(r"<(script|iframe|object|embed|img|audio|video|source)\b", lowered)
    assert "@font-face" not in lowered
    assert "default-src 'none'" in page  # Content-Security-Policy: the browser fetches nothing either


# ------------------------------------------------------------------------------ headless Chromium

COLLECTOR = """
window.__errors = [];
window.addEventListener('error', function (e) {
  var what = e.message || (e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 160) : 'error');
  window.__errors.push('error: ' + what);
}, true);
window.addEventListener('securitypolicyviolation', function (e) {
  window.__errors.push('blocked by CSP: ' + e.violatedDirective + ' ' + e.blockedURI);
});
['error', 'warn'].forEach(function (level) {
  var original = console[level];
  console[level] = function () {
    window.__errors.push('console.' + level + ': ' + Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
});
"""

PROBE = """
(function () {
  function probe(stage) {
    var charts = Array.prototype.map.call(document.querySelectorAll('svg.chart'), function (svg) {
      var box = svg.getBoundingClientRect();
      var style = getComputedStyle(svg);
      var marks = svg.querySelectorAll('.mark');
      var drawn = 0, inside = 0;
      marks.forEach(function (mark) {
        var b = mark.getBBox();
        if (b.width > 0 || b.height > 0) { drawn += 1; }
        if (b.x >= -1 && b.y >= -1 && b.x + b.width <= box.width + 1 && b.y + b.height <= box.height + 1) {
          inside += 1;
        }
      });
      var title = svg.querySelector('.chart-title');
      return {
        id: svg.getAttribute('data-chart'), empty: svg.getAttribute('data-empty') === 'true',
        width: box.width, height: box.height,
        visible: style.display !== 'none' && style.visibility !== 'hidden',
        marks: marks.length, drawn: drawn, inside: inside,
        title: title ? title.getBBox().width : 0,
        axisLabels: svg.querySelectorAll('.axis-label').length,
        noData: svg.querySelectorAll('text.empty').length
      };
    });
    var out = document.getElementById('__probe') || document.createElement('pre');
    out.id = '__probe';
    out.textContent = JSON.stringify({
      stage: stage, charts: charts, errors: window.__errors,
      resources: performance.getEntriesByType('resource').map(function (r) { return r.name; })
    });
    document.body.appendChild(out);
  }
  probe('parsed');
  window.addEventListener('load', function () { probe('loaded'); });
})();
"""


def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if not found:
        pytest.fail("Debian's chromium is not installed: `apt-get install -y chromium` (.ci/run does it)")
    return found


def csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def instrumented_copy(report: Path, target: Path) -> Path:
    """The report plus the test's collector and probe scripts, allowed by hash in the report's own
    Content-Security-Policy (which otherwise stays as shipped: any fetch would be a violation)."""
    page = report.read_text()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert csp, "the report declares its Content-Security-Policy"
    policy = f"{csp.group(1)}; script-src {csp_hash(COLLECTOR)} {csp_hash(PROBE)}"
    page = page.replace(csp.group(0), f'http-equiv="Content-Security-Policy" content="{policy}"', 1)
    page = page.replace("<style>", f"<script>{COLLECTOR}</script><style>", 1)
    page = page.replace("</body>", f"<script>{PROBE}</script></body>", 1)
    target.write_text(page)
    return target


def run_chromium(executable: str, page: Path, profile: Path) -> tuple[dict, str]:
    result = subprocess.run(
        [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = re.search(r'<pre id="__probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the probe did not run; stderr: {result.stderr[-3000:]}"
    return json.loads(html.unescape(found.group(1))), result.stderr


def page_log_errors(stderr: str) -> list[str]:
    """Lines in which Chromium logs something the page said (console) or threw (Uncaught)."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


def test_chromium_draws_every_chart_without_errors(pipeline_run: PipelineRun, tmp_path: Path) -> None:
    executable = chromium()
    full = serving_copy(pipeline_run, tmp_path, "full.duckdb")
    drop_forecast(full)
    add_synthetic_forecast(full, E2E_AS_OF)
    without_forecast = serving_copy(pipeline_run, tmp_path, "without.duckdb")
    drop_forecast(without_forecast)
    empty = serving_copy(pipeline_run, tmp_path, "empty.duckdb")
    with duckdb.connect(str(empty)) as connection:
        for (table,) in connection.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            connection.execute(f'DELETE FROM "{table}"')

    for name, serving in (("full", full), ("without", without_forecast), ("empty", empty)):
        summary = render_report(serving, tmp_path / f"{name}.html", E2E_AS_OF)
        probe, stderr = run_chromium(
            executable,
            instrumented_copy(summary.path, tmp_path / f"{name}.probe.html"),
            tmp_path / f"profile-{name}",
        )
        assert probe["stage"] == "loaded", name
        assert probe["errors"] == [], (name, probe["errors"])
        assert page_log_errors(stderr) == [], (name, page_log_errors(stderr))
        assert probe["resources"] == [], (name, probe["resources"])
        charts = {chart["id"]: chart for chart in probe["charts"]}
        assert list(charts) == list(summary.charts), name
        for chart_id, chart in charts.items():
            where = (name, chart_id, chart)
            assert chart["visible"] and chart["width"] > 300 and chart["height"] > 80, where
            assert chart["title"] > 50, where
            if chart_id in summary.empty_charts:
                assert chart["empty"] and chart["noData"] == 1 and chart["marks"] == 0, where
            else:
                assert not chart["empty"] and chart["axisLabels"] >= 1, where
                assert chart["drawn"] >= 1 and chart["drawn"] >= chart["marks"] // 2, where
                assert chart["inside"] == chart["marks"], where
        if name == "empty":
            assert set(summary.empty_charts) == set(summary.charts)
        else:
            assert summary.empty_charts == ()
            assert summary.forecast_available is (name == "full")


# ---------------------------------------------------------------------------------------- the asset


def test_report_asset_writes_the_report(pipeline_run: PipelineRun, tmp_path: Path) -> None:
    from dagster import AssetKey, materialize

    from orchestration.assets.report import serving_report
    from orchestration.resources import WarehouseResource

    serving = serving_copy(pipeline_run, tmp_path)
    target = tmp_path / "out" / "nightly.html"
    values = {"SALESOPS_SERVING_PATH": str(serving), "SALESOPS_AS_OF": E2E_AS_OF.isoformat()}
    # Rendered on its own, the report records no publication in the warehouse (no marts were built).
    untouched = tmp_path / "warehouse.duckdb"
    resources = {"warehouse": WarehouseResource(path=str(untouched))}
    with environment({**values, "SALESOPS_REPORT_PATH": str(target)}):
        result = materialize([serving_report], resources=resources)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == AssetKey(["serving", "report"])
    metadata = event.materialization.metadata
    assert metadata["path"].value == str(target)
    assert target.exists() and metadata["charts"].value == len(chart_ids(target.read_text()))

    with environment({**values, "SALESOPS_REPORT_PATH": ""}):
        result = materialize([serving_report], resources=resources)
    assert result.success and serving.with_name("report.html").exists()
    assert not untouched.exists()


def test_nightly_run_writes_the_report_beside_the_serving_file(pipeline_run: PipelineRun) -> None:
    from dagster import AssetKey

    key = AssetKey(["serving", "report"])
    events = [e for e in pipeline_run.first.get_asset_materialization_events() if e.asset_key == key]
    assert len(events) == 1
    report = pipeline_run.warehouse.with_name("report.html")
    assert Path(events[0].materialization.metadata["path"].value) == report.resolve()
    page = report.read_text()
    assert len(chart_ids(page)) == events[0].materialization.metadata["charts"].value >= len(BASE_CHARTS)
    assert 'data-as-of="' + E2E_AS_OF.isoformat() + '"' in page
