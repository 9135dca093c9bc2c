"""Great Expectations suites for the marts: bounds and sums that must reconcile."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from expectations.builders import between, rows_query
from ingestion.contract import staging_model

if TYPE_CHECKING:
    from expectations.gx_engine import ExpectationSpec


def _rate(name: str, column: str) -> ExpectationSpec:
    return between(name, column, min_value=0, max_value=1)


def _quota_attainment() -> list[ExpectationSpec]:
    return [
        between("attainment_not_negative", "attainment", min_value=0),
        rows_query(
            "bookings_reconcile_with_won_opportunities",
            "error",
            "SELECT * FROM (SELECT "
            "(SELECT coalesce(sum(bookings_amount), 0) FROM {batch} "
            "WHERE period_type = 'month') AS marts_bookings, "
            "(SELECT coalesce(sum(amount), 0) FROM marts.fct_opportunities WHERE is_won) AS won_amount"
            ") AS totals WHERE abs(marts_bookings - won_amount) > 0.005",
            "Monthly bookings add up to the Amount of won opportunities in fct_opportunities",
        ),
    ]


def _funnel_conversion() -> list[ExpectationSpec]:
    return [
        _rate("lead_to_opportunity_rate_is_a_rate", "lead_to_opportunity_rate"),
        _rate("win_rate_is_a_rate", "win_rate"),
        _rate("lead_to_win_rate_is_a_rate", "lead_to_win_rate"),
        rows_query(
            "funnel_leads_reconcile_with_leads",
            "error",
            "SELECT * FROM (SELECT (SELECT coalesce(sum(leads), 0) FROM {batch}) AS funnel_leads, "
            f"(SELECT count(*) FROM staging.{staging_model('leads')}) AS leads) AS totals "
            "WHERE funnel_leads <> leads",
            "Funnel leads add up to the non-deleted, non-quarantined leads",
        ),
    ]


def _lead_response_by_rep_week() -> list[ExpectationSpec]:
    return [_rate("sla_rate_is_a_rate", "sla_rate")]


def _stage_conversion() -> list[ExpectationSpec]:
    return [_rate("stage_conversion_rate_is_a_rate", "conversion_rate")]


def _sales_velocity() -> list[ExpectationSpec]:
    return [_rate("sales_win_rate_is_a_rate", "win_rate")]


def _pipeline_coverage() -> list[ExpectationSpec]:
    return [
        _rate("trailing_win_rate_is_a_rate", "trailing_win_rate"),
        between("coverage_ratio_not_negative", "coverage_ratio", min_value=0),
    ]


MART_SUITES: dict[str, Callable[[], list[ExpectationSpec]]] = {
    "quota_attainment": _quota_attainment,
    "funnel_conversion": _funnel_conversion,
    "lead_response_by_rep_week": _lead_response_by_rep_week,
    "stage_conversion": _stage_conversion,
    "sales_velocity": _sales_velocity,
    "pipeline_coverage": _pipeline_coverage,
}
