"""The sales forecast and its backtest (orchestration/forecasting.py, docs/metrics.md "Sales forecast").

A small org is written out below: three reps in two teams and eight opportunities with their
stage history from November 2025 to April 2026. Every expected number was worked out by hand
from those rows; the comments next to them show the working. Stages and their default
probabilities: Prospecting 10, Proposal 60, Negotiation 90, Closed Won, Closed Lost.

History at a glance (amount; stage and close date per change, UTC):
  A  R1 East  100  12-10 Prospecting (close 01-31) → 01-20 won (close 01-20)
  B  R1 East  200  12-15 Proposal (02-28)          → 02-10 won (02-10)
  C  R2 East  300  01-05 Proposal (02-15) → 02-20 Proposal (03-15) → 03-25 lost
  D  R3 West  400  11-01 Negotiation (03-31)       → 03-30 won (03-30)
  E  R3 West   50  03-10 Prospecting (03-31)       → 03-20 won (03-20)
  F  R1 East  500  02-05 Negotiation (03-31)       → 04-02 won, close date back-dated to 03-31
  G  R1 East   80  02-20 Proposal (02-28)          → 02-25 won (02-25)
  K  R3 West  100  12-20 Proposal (01-31)          → 01-25 won (01-25)
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration import forecasting as fc

PROJECT_ROOT = Path(__file__).resolve().parent.parent
T = pd.Timestamp

STAGES = pd.DataFrame(
    {
        "stage_name": ["Prospecting", "Proposal", "Negotiation", "Closed Won", "Closed Lost"],
        "stage_order": [1, 2, 3, 4, 5],
        "is_closed": [False, False, False, True, True],
        "is_won": [False, False, False, True, False],
        "default_probability": [10, 60, 90, 100, 0],
    }
)
USERS = pd.DataFrame({"rep_id": ["R1", "R2", "R3"], "user_role_id": ["RE", "RE", "RW"]})
ROLES = pd.DataFrame({"user_role_id": ["RE", "RW"], "role_name": ["East", "West"]})

OPPORTUNITY_COLUMNS = [
    "opportunity_id",
    "owner_id",
    "amount",
    "is_won",
    "is_closed",
    "close_date",
    "created_at",
]
OPPORTUNITIES = [
    ("A", "R1", 100.0, True, True, "2026-01-20", "2025-12-10 09:00"),
    ("B", "R1", 200.0, True, True, "2026-02-10", "2025-12-15 09:00"),
    ("C", "R2", 300.0, False, True, "2026-03-25", "2026-01-05 09:00"),
    ("D", "R3", 400.0, True, True, "2026-03-30", "2025-11-01 09:00"),
    ("E", "R3", 50.0, True, True, "2026-03-20", "2026-03-10 09:00"),
    ("F", "R1", 500.0, True, True, "2026-03-31", "2026-02-05 09:00"),
    ("G", "R1", 80.0, True, True, "2026-02-25", "2026-02-20 09:00"),
    ("K", "R3", 100.0, True, True, "2026-01-25", "2025-12-20 09:00"),
]

# history uses the API values of ForecastCategory: BestCase, Forecast (= Commit)
HISTORY = [
    ("h01", "A", "Prospecting", 100.0, 10.0, "Pipeline", "2026-01-31", "2025-12-10 09:00"),
    ("h02", "A", "Closed Won", 100.0, 100.0, "Closed", "2026-01-20", "2026-01-20 10:00"),
    ("h03", "B", "Proposal", 200.0, 60.0, "BestCase", "2026-02-28", "2025-12-15 09:00"),
    ("h04", "B", "Closed Won", 200.0, 100.0, "Closed", "2026-02-10", "2026-02-10 10:00"),
    ("h05", "C", "Proposal", 300.0, 60.0, "BestCase", "2026-02-15", "2026-01-05 09:00"),
    ("h06", "C", "Proposal", 300.0, 60.0, "BestCase", "2026-03-15", "2026-02-20 09:00"),
    ("h07", "C", "Closed Lost", 300.0, 0.0, "Omitted", "2026-03-25", "2026-03-25 09:00"),
    ("h08", "D", "Negotiation", 400.0, 90.0, "Forecast", "2026-03-31", "2025-11-01 09:00"),
    ("h09", "D", "Closed Won", 400.0, 100.0, "Closed", "2026-03-30", "2026-03-30 09:00"),
    ("h10", "E", "Prospecting", 50.0, 10.0, "Pipeline", "2026-03-31", "2026-03-10 09:00"),
    ("h11", "E", "Closed Won", 50.0, 100.0, "Closed", "2026-03-20", "2026-03-20 09:00"),
    ("h12", "F", "Negotiation", 500.0, 90.0, "Forecast", "2026-03-31", "2026-02-05 09:00"),
    ("h13", "F", "Closed Won", 500.0, 100.0, "Closed", "2026-03-31", "2026-04-02 09:00"),
    ("h14", "G", "Proposal", 80.0, 60.0, "BestCase", "2026-02-28", "2026-02-20 09:00"),
    ("h15", "G", "Closed Won", 80.0, 100.0, "Closed", "2026-02-25", "2026-02-25 09:00"),
    ("h16", "K", "Proposal", 100.0, 60.0, "BestCase", "2026-01-31", "2025-12-20 09:00"),
    ("h17", "K", "Closed Won", 100.0, 100.0, "Closed", "2026-01-25", "2026-01-25 09:00"),
]


def history_frame(rows: list[tuple] = HISTORY) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=fc.HISTORY_COLUMNS)
    frame["close_date"] = pd.to_datetime(frame["close_date"]).dt.date
    frame["created_at"] = pd.to_datetime(frame["created_at"])
    return frame


def opportunities_frame(rows: list[tuple] = OPPORTUNITIES) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=OPPORTUNITY_COLUMNS)
    frame["close_date"] = pd.to_datetime(frame["close_date"]).dt.date
    frame["created_at"] = pd.to_datetime(frame["created_at"])
    return frame


def build_inputs(
    history: list[tuple] = HISTORY, opportunities: list[tuple] = OPPORTUNITIES
) -> fc.ForecastInputs:
    return fc.ForecastInputs.build(
        history_frame(history), opportunities_frame(opportunities), STAGES, USERS, ROLES
    )


def replace_row(rows: list[tuple], history_id: str, new: tuple) -> list[tuple]:
    return [new if row[0] == history_id else row for row in rows]


def cell(table: pd.DataFrame, level: str, member: str, stage: str, close_offset: int, month_offset: int):
    chosen = table.loc[
        (table["level"] == level)
        & (table["member"] == member)
        & (table["stage_name"] == stage)
        & (table["close_offset"] == close_offset)
        & (table["month_offset"] == month_offset)
    ]
    assert len(chosen) == 1, (level, member, stage, close_offset, month_offset, len(chosen))
    row = chosen.iloc[0]
    probability = None if pd.isna(row["probability"]) else round(float(row["probability"]), 6)
    return (
        int(row["observations"]),
        int(row["won_in_month"]),
        probability,
        round(float(row["applied_probability"]), 6),
        row["probability_source"],
    )


# ================================================================================ reconstruction


def test_state_is_the_latest_row_strictly_before_the_instant_ties_by_history_id() -> None:
    rows = [
        *HISTORY,
        # two changes of D at the same instant: the larger history id is the later one
        ("h20", "D", "Negotiation", 410.0, 90.0, "Forecast", "2026-03-31", "2026-01-10 12:00"),
        ("h21", "D", "Negotiation", 420.0, 90.0, "Forecast", "2026-03-31", "2026-01-10 12:00"),
        # a change exactly at the instant is not yet known at it
        ("h22", "D", "Negotiation", 999.0, 90.0, "Forecast", "2026-03-31", "2026-02-01 00:00"),
    ]
    state = fc.reconstruct_pipeline(build_inputs(rows), T("2026-02-01")).set_index("opportunity_id")
    # A and K won in January, B/C/D open; E, F, G had no history row yet: they did not exist
    assert sorted(state.index) == ["A", "B", "C", "D", "K"]
    assert state.loc["D", "amount"] == 420.0
    assert state.loc["C", "close_date"] == T("2026-02-15")
    assert state.loc["B", "forecast_category"] == "Best Case"  # API value BestCase, as its label
    assert state.loc["D", "forecast_category"] == "Commit"  # API value Forecast
    assert list(state.loc["A", ["is_closed", "is_won"]]) == [True, True]
    assert list(state.loc["B", ["is_closed", "is_won", "team", "owner_id"]]) == [False, False, "East", "R1"]
    assert (
        fc.reconstruct_pipeline(build_inputs(rows), T("2026-02-01 00:00:01"))
        .set_index("opportunity_id")
        .loc["D", "amount"]
        == 999.0
    )


def test_forecast_categories_of_history_and_opportunities_map_to_labels() -> None:
    values = pd.Series(["Pipeline", "BestCase", "Forecast", "Closed", "Omitted", "Best Case", "Commit", None])
    assert fc.normalize_forecast_category(values).tolist()[:7] == [
        "Pipeline",
        "Best Case",
        "Commit",
        "Closed",
        "Omitted",
        "Best Case",
        "Commit",
    ]


# ================================================================================== no leakage


LATER_CHANGES = [
    # C's loss on 03-25 rewritten as a win dated 02-15: leaked, C would count as won at the February snapshot
    ("replace", "h07", ("h07", "C", "Closed Won", 300.0, 100.0, "Closed", "2026-02-15", "2026-03-25 09:00")),
    # F's back-dated win recorded a month earlier, still after 03-01
    ("replace", "h13", ("h13", "F", "Closed Won", 500.0, 100.0, "Closed", "2026-03-05", "2026-03-02 09:00")),
    # D re-priced exactly at the March cutoff: not known before it
    ("add", None, ("h30", "D", "Negotiation", 999.0, 90.0, "Forecast", "2026-03-31", "2026-03-01 00:00")),
    # B re-opened after it was won
    ("add", None, ("h31", "B", "Negotiation", 900.0, 90.0, "Forecast", "2026-03-31", "2026-03-15 09:00")),
    # a new opportunity created after the cutoff
    ("add", None, ("h32", "H", "Negotiation", 700.0, 90.0, "Forecast", "2026-03-31", "2026-03-03 09:00")),
]
OPPORTUNITIES_WITH_H = [*OPPORTUNITIES, ("H", "R2", 700.0, False, False, "2026-03-31", "2026-03-03 09:00")]


def apply_changes(rows: list[tuple], changes: list[tuple]) -> list[tuple]:
    for action, history_id, row in changes:
        rows = replace_row(rows, history_id, row) if action == "replace" else [*rows, row]
    return rows


def leakage_backtest(history: list[tuple]) -> fc.Backtest:
    return fc.backtest(
        build_inputs(history, OPPORTUNITIES_WITH_H),
        date(2026, 4, 10),
        months=2,
        calibration_months=2,
        run_rate_months=2,
        min_team_observations=3,
    )


@pytest.mark.parametrize("change", LATER_CHANGES, ids=lambda change: f"{change[0]}-{change[2][0]}")
def test_history_after_a_backtest_months_first_day_changes_nothing_of_that_month(change: tuple) -> None:
    base = build_inputs(HISTORY, OPPORTUNITIES_WITH_H)
    changed = build_inputs(apply_changes(HISTORY, [change]), OPPORTUNITIES_WITH_H)
    cutoff = T("2026-03-01")
    pd.testing.assert_frame_equal(
        fc.reconstruct_pipeline(base, cutoff), fc.reconstruct_pipeline(changed, cutoff)
    )
    before, after = leakage_backtest(HISTORY), leakage_backtest(apply_changes(HISTORY, [change]))
    pd.testing.assert_frame_equal(before.detail, after.detail)  # every method, month, level: unchanged
    pd.testing.assert_frame_equal(before.components, after.components)


def test_all_later_changes_together_change_nothing_but_an_earlier_change_does() -> None:
    base = leakage_backtest(HISTORY)
    pd.testing.assert_frame_equal(base.detail, leakage_backtest(apply_changes(HISTORY, LATER_CHANGES)).detail)

    # C's close date push of 02-20 becomes a price change to 600: known before 03-01
    earlier = replace_row(
        HISTORY, "h06", ("h06", "C", "Proposal", 600.0, 60.0, "BestCase", "2026-03-15", "2026-02-20 09:00")
    )
    changed = leakage_backtest(earlier).detail
    march = (
        (changed["month_start"] == T("2026-03-01"))
        & (changed["level"] == "rep")
        & (changed["member"] == "R2")
    )
    assert dict(zip(changed.loc[march, "method"], changed.loc[march, "forecast"], strict=True)) == {
        "best_case": 600.0,
        "calibrated": 400.0,  # 600 x 2/3
        "weighted_pipeline": 360.0,  # 600 x 60%
    }
    february = base.detail["month_start"] == T("2026-02-01")
    pd.testing.assert_frame_equal(
        base.detail.loc[february].reset_index(drop=True),
        changed.loc[changed["month_start"] == T("2026-02-01")].reset_index(drop=True),
    )


def test_a_calibration_outcome_known_only_after_the_cutoff_is_not_used() -> None:
    # F is won on 04-02 (close date back-dated to 03-31): at the 04-01 cutoff it is still open
    before = fc.calibrate(build_inputs(), T("2026-04-01"), months=3, horizon=1)
    after = fc.calibrate(build_inputs(), T("2026-04-03"), months=3, horizon=1)
    assert cell(before, "org", "org", "Negotiation", 0, 0)[:2] == (2, 1)  # D won, F not (yet)
    assert cell(after, "org", "org", "Negotiation", 0, 0)[:2] == (2, 2)


# ================================================================================= calibration


def test_calibrated_probabilities_by_stage_close_offset_and_month_offset() -> None:
    """Snapshots 01-01, 02-01, 03-01; outcomes as known on 04-01; teams need 3 observations.

    01-01: A Prospecting due in Jan (offset 0), won Jan.  B Proposal due Feb (1), won Feb.
           D Negotiation due Mar (2), won Mar.            K Proposal due Jan (0), won Jan.
    02-01: B Proposal (0), won Feb.  C Proposal (0), lost.  D Negotiation (1), won Mar.
    03-01: C Proposal (0), lost.  D Negotiation (0), won Mar.  F Negotiation (0), won only on 04-02.
    Month offset 1 counts only snapshots whose next month ended before April: 01-01 and 02-01.
    """
    table = fc.calibrate(build_inputs(), T("2026-04-01"), months=3, horizon=2, min_team_observations=3)
    # (observations, won in the month, empirical rate, applied probability, its source)
    assert cell(table, "org", "org", "Prospecting", 0, 0) == (1, 1, 1.0, 1.0, "org")
    assert cell(table, "org", "org", "Prospecting", 0, 1) == (1, 0, 0.0, 0.0, "org")
    assert cell(table, "org", "org", "Proposal", 0, 0) == (4, 2, 0.5, 0.5, "org")  # K, B won; C twice not
    assert cell(table, "org", "org", "Proposal", 0, 1) == (3, 0, 0.0, 0.0, "org")  # K, B (Feb), C (Feb)
    assert cell(table, "org", "org", "Proposal", 1, 0) == (1, 0, 0.0, 0.0, "org")  # B on 01-01
    assert cell(table, "org", "org", "Proposal", 1, 1) == (1, 1, 1.0, 1.0, "org")  # B: won a month later
    assert cell(table, "org", "org", "Negotiation", 2, 0) == (1, 0, 0.0, 0.0, "org")
    assert cell(table, "org", "org", "Negotiation", 1, 1) == (1, 1, 1.0, 1.0, "org")  # D from 02-01
    assert cell(table, "org", "org", "Negotiation", 0, 0) == (2, 1, 0.5, 0.5, "org")  # D won, F not yet
    # no observation: the stage's default where the deal is due in that month, else 0
    assert cell(table, "org", "org", "Negotiation", 0, 1) == (0, 0, None, 0.0, "none")
    assert cell(table, "org", "org", "Prospecting", 1, 1) == (0, 0, None, 0.1, "default")
    assert cell(table, "org", "org", "Negotiation", -1, 0) == (0, 0, None, 0.0, "none")
    # East has 3 Proposal-due-this-month observations (B won; C twice not): its own rate
    assert cell(table, "team", "East", "Proposal", 0, 0) == (3, 1, 0.333333, 0.333333, "team")
    # below 3 observations a team takes the org's probability
    assert cell(table, "team", "West", "Proposal", 0, 0) == (1, 1, 1.0, 0.5, "org")
    assert cell(table, "team", "East", "Negotiation", 0, 0) == (1, 0, 0.0, 0.5, "org")
    assert cell(table, "team", "East", "Proposal", 0, 1) == (2, 0, 0.0, 0.0, "org")
    org = table.loc[table["level"] == "org"]
    assert len(org) == 3 * 8 * 2  # open stages x close offsets -1..6 x month offsets 0..1
    assert (table["window_start"] == T("2026-01-01")).all()
    assert (table["window_end"] == T("2026-03-01")).all()
    assert set(table.loc[table["level"] == "team", "member"]) == {"East", "West"}
    assert fc.MIN_TEAM_OBSERVATIONS == 30


def test_team_probability_is_applied_when_the_team_has_enough_data() -> None:
    table = fc.calibrate(build_inputs(), T("2026-04-01"), months=3, horizon=1, min_team_observations=3)
    pipeline = pd.DataFrame(
        {
            "team": ["East", "West", "Nowhere", "East"],
            "stage_name": ["Proposal", "Proposal", "Proposal", "Unknown stage"],
            "close_offset": [0, 0, 0, 0],
            "month_offset": [0, 0, 0, 0],
            "probability": [60.0, 60.0, 60.0, 35.0],
        }
    )
    # East's own rate; West and an unknown team the org's; a stage never seen its own Probability
    assert fc.applied_probabilities(pipeline, table).round(6).tolist() == [0.333333, 0.5, 0.5, 0.35]


def test_run_rate_of_deals_created_and_won_in_the_same_month() -> None:
    inputs = build_inputs()
    # Jan-Mar before the 04-01 cutoff: G (R1, created and won in Feb, 80), E (R3, in Mar, 50)
    rates = fc.run_rate(inputs, T("2026-04-01"), months=3).set_index("owner_id")
    assert rates["run_rate"].round(6).to_dict() == {"R1": round(80 / 3, 6), "R3": round(50 / 3, 6)}
    assert rates["run_rate_rest_of_month"].round(6).to_dict() == {
        "R1": round(80 / 3, 6),
        "R3": round(50 / 3, 6),
    }
    # mid-month cutoff (04-15): only deals created from the 15th of their month on are still to come
    mid = fc.run_rate(inputs, T("2026-04-15"), months=3).set_index("owner_id")
    assert mid["run_rate_rest_of_month"].round(6).to_dict() == {
        "R1": round(80 / 3, 6),
        "R3": 0.0,
    }  # G 02-20, E 03-10
    # two months before 03-01: only G; A and K were created in December and won in January
    assert fc.run_rate(inputs, T("2026-03-01"), months=2).set_index("owner_id")["run_rate"].to_dict() == {
        "R1": 40.0
    }


# =================================================================================== backtest


def test_backtest_on_the_hand_written_history() -> None:
    """February and March 2026 replayed (two calibration months, two run-rate months, teams need 3).

    February, cutoff 02-01. Calibration from 12-01 and 01-01: Proposal due this month 1/1 (K),
    Negotiation due next month no observation (0). Open: B (R1, Proposal, Feb, 200), C (R2,
    Proposal, Feb, 300), D (R3, Negotiation, Mar). No run rate (A and K: created Dec, won Jan).
    Actual: R1 B 200 + G 80 = 280.
    March, cutoff 03-01. Calibration from 01-01 and 02-01: Proposal due this month 2/3 (K, B won;
    C not), Negotiation due this month no observation: default 90%. Open and due in March: C (R2,
    Proposal, 300, Best Case), D (R3, 400, Commit), F (R1, 500, Commit). Run rate R1: G 80 / 2 =
    40. Actual: R1 F 500 (won 04-02, dated 03-31), R3 D 400 + E 50 = 450.
    """
    result = fc.backtest(
        build_inputs(),
        date(2026, 4, 10),
        months=2,
        calibration_months=2,
        run_rate_months=2,
        min_team_observations=3,
    )
    feb, mar = T("2026-02-01"), T("2026-03-01")
    got = {
        (row.level, row.member, row.method, row.month_start): (
            round(row.forecast, 6),
            row.actual,
            round(row.error, 6),
            None if pd.isna(row.absolute_percentage_error) else round(row.absolute_percentage_error, 6),
        )
        for row in result.detail.itertuples()
    }

    def ape(error: float, actual: float) -> float:
        return round(abs(error) / actual, 6)

    expected = {
        # February
        ("rep", "R1", "weighted_pipeline", feb): (120.0, 280.0, -160.0, ape(160, 280)),  # B 200 x 60%
        ("rep", "R1", "commit", feb): (0.0, 280.0, -280.0, 1.0),
        ("rep", "R1", "best_case", feb): (200.0, 280.0, -80.0, ape(80, 280)),
        ("rep", "R1", "calibrated", feb): (200.0, 280.0, -80.0, ape(80, 280)),  # B 200 x 1
        ("rep", "R2", "weighted_pipeline", feb): (180.0, 0.0, 180.0, None),  # no actual: no APE
        ("rep", "R2", "best_case", feb): (300.0, 0.0, 300.0, None),
        ("rep", "R2", "calibrated", feb): (300.0, 0.0, 300.0, None),
        ("team", "East", "weighted_pipeline", feb): (300.0, 280.0, 20.0, ape(20, 280)),
        ("team", "East", "commit", feb): (0.0, 280.0, -280.0, 1.0),
        ("team", "East", "best_case", feb): (500.0, 280.0, 220.0, ape(220, 280)),
        ("team", "East", "calibrated", feb): (500.0, 280.0, 220.0, ape(220, 280)),
        ("org", "org", "weighted_pipeline", feb): (300.0, 280.0, 20.0, ape(20, 280)),
        ("org", "org", "commit", feb): (0.0, 280.0, -280.0, 1.0),
        ("org", "org", "best_case", feb): (500.0, 280.0, 220.0, ape(220, 280)),
        ("org", "org", "calibrated", feb): (500.0, 280.0, 220.0, ape(220, 280)),
        # March
        ("rep", "R1", "weighted_pipeline", mar): (450.0, 500.0, -50.0, 0.1),  # F 500 x 90%
        ("rep", "R1", "commit", mar): (500.0, 500.0, 0.0, 0.0),
        ("rep", "R1", "best_case", mar): (500.0, 500.0, 0.0, 0.0),
        ("rep", "R1", "calibrated", mar): (490.0, 500.0, -10.0, 0.02),  # 500 x 90% + run rate 40
        ("rep", "R2", "weighted_pipeline", mar): (180.0, 0.0, 180.0, None),
        ("rep", "R2", "best_case", mar): (300.0, 0.0, 300.0, None),
        ("rep", "R2", "calibrated", mar): (200.0, 0.0, 200.0, None),  # C 300 x 2/3
        ("rep", "R3", "weighted_pipeline", mar): (360.0, 450.0, -90.0, 0.2),
        ("rep", "R3", "commit", mar): (400.0, 450.0, -50.0, ape(50, 450)),
        ("rep", "R3", "best_case", mar): (400.0, 450.0, -50.0, ape(50, 450)),
        ("rep", "R3", "calibrated", mar): (360.0, 450.0, -90.0, 0.2),
        ("team", "East", "weighted_pipeline", mar): (630.0, 500.0, 130.0, 0.26),
        ("team", "East", "commit", mar): (500.0, 500.0, 0.0, 0.0),
        ("team", "East", "best_case", mar): (800.0, 500.0, 300.0, 0.6),
        ("team", "East", "calibrated", mar): (690.0, 500.0, 190.0, 0.38),
        ("team", "West", "weighted_pipeline", mar): (360.0, 450.0, -90.0, 0.2),
        ("team", "West", "commit", mar): (400.0, 450.0, -50.0, ape(50, 450)),
        ("team", "West", "best_case", mar): (400.0, 450.0, -50.0, ape(50, 450)),
        ("team", "West", "calibrated", mar): (360.0, 450.0, -90.0, 0.2),
        ("org", "org", "weighted_pipeline", mar): (990.0, 950.0, 40.0, ape(40, 950)),
        ("org", "org", "commit", mar): (900.0, 950.0, -50.0, ape(50, 950)),
        ("org", "org", "best_case", mar): (1200.0, 950.0, 250.0, ape(250, 950)),
        ("org", "org", "calibrated", mar): (1050.0, 950.0, 100.0, ape(100, 950)),
    }
    assert got == expected  # rows where forecast and actual are both 0 are left out (R2 commit, R3 in Feb)

    summary = result.summary.set_index(["level", "method"])

    def check(level: str, method: str, apes: list[float], errors: float, actual: float = 1230.0) -> None:
        row = summary.loc[(level, method)]
        assert row["observations"] == len(apes)
        assert math.isclose(row["mape"], sum(apes) / len(apes), rel_tol=1e-12)
        assert math.isclose(row["bias"], errors / actual, rel_tol=1e-12)
        assert row["total_actual"] == actual
        assert row["months"] == 2

    check("org", "weighted_pipeline", [20 / 280, 40 / 950], 20 + 40)
    check("org", "commit", [1.0, 50 / 950], -280 - 50)
    check("org", "best_case", [220 / 280, 250 / 950], 220 + 250)
    check("org", "calibrated", [220 / 280, 100 / 950], 220 + 100)
    check("team", "calibrated", [220 / 280, 190 / 500, 90 / 450], 220 + 190 - 90)
    check("rep", "calibrated", [80 / 280, 10 / 500, 90 / 450], -80 + 300 - 10 + 200 - 90)
    check("rep", "weighted_pipeline", [160 / 280, 50 / 500, 90 / 450], -160 + 180 - 50 + 180 - 90)
    assert len(result.summary) == len(fc.LEVELS) * len(fc.METHODS)


def test_mape_leaves_out_months_without_bookings_and_bias_is_error_over_actual() -> None:
    detail = pd.DataFrame(
        {
            "level": ["org"] * 3,
            "member": ["org"] * 3,
            "method": ["commit"] * 3,
            "month_start": [T("2026-01-01"), T("2026-02-01"), T("2026-03-01")],
            "forecast": [50.0, 100.0, 30.0],
            "actual": [100.0, 80.0, 0.0],
            "error": [-50.0, 20.0, 30.0],
            "absolute_percentage_error": [0.5, 0.25, np.nan],
        }
    )
    row = fc.summarize_backtest(detail, 3).set_index(["level", "method"]).loc[("org", "commit")]
    assert (row["observations"], row["mape"], row["bias"]) == (2, 0.375, 0.0)  # (−50 + 20 + 30) / 180


# ============================================================================== sales forecast


def test_sales_forecast_rows_at_rep_team_and_org_level() -> None:
    """as_of 2026-03-01 (Q1 and Q2 of 2026): the same cutoff as the backtest's March.

    Apr-Jun: the only resolved observation of a Proposal due this month, one month on, is K
    (won in its own month, not the next): 0; Negotiation has none: 0. Run rate R1 40 a month.
    """
    hand_made_accuracy = pd.DataFrame(
        {
            "level": ["org"] * 5 + ["rep"] * 3 + ["org"],
            "member": ["org"] * 5 + ["R1", "R2", "R3"] + ["org"],
            "method": ["calibrated"] * 8 + ["weighted_pipeline"],
            "month_start": [T("2026-01-01")] * 9,
            "forecast": [100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 0.0, 100.0],
            "actual": [80.0, 90.0, 100.0, 110.0, 120.0, 50.0, 150.0, 70.0, 500.0],
        }
    )
    # org: relative errors −0.2 … 0.2 → p10 −0.16, p90 0.16; rep: −0.5, 0.5 → −0.4, 0.4 (a zero
    # forecast and other methods left out); team: no row → no interval
    factors = fc.interval_factors(hand_made_accuracy)
    assert set(factors) == {"org", "rep"}
    assert factors["org"] == pytest.approx((-0.16, 0.16))
    assert factors["rep"] == pytest.approx((-0.4, 0.4))

    rows, probabilities = fc.sales_forecast(
        build_inputs(),
        date(2026, 3, 1),
        hand_made_accuracy,
        calibration_months=2,
        run_rate_months=2,
        min_team_observations=3,
    )
    assert set(probabilities["month_offset"]) == set(range(fc.FORECAST_HORIZON_MONTHS))
    months = [T(f"2026-0{m}-01") for m in range(1, 7)]
    got = {
        (row.level, row.member, row.month_start): tuple(round(getattr(row, c), 6) for c in fc.COMPONENTS)
        for row in rows.itertuples()
    }
    zero = (0.0,) * 7
    run_only = (0.0, 0.0, 0.0, 0.0, 0.0, 40.0, 40.0)
    # closed_to_date, commit, best_case, weighted_pipeline, calibrated_pipeline, run_rate, forecast
    expected = {
        ("rep", "R1", months[0]): (100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 100.0),  # A
        ("rep", "R1", months[1]): (280.0, 0.0, 0.0, 0.0, 0.0, 0.0, 280.0),  # B + G
        ("rep", "R1", months[2]): (0.0, 500.0, 500.0, 450.0, 450.0, 40.0, 490.0),  # F
        ("rep", "R1", months[3]): run_only,
        ("rep", "R1", months[4]): run_only,
        ("rep", "R1", months[5]): run_only,
        ("rep", "R2", months[0]): zero,
        ("rep", "R2", months[1]): zero,
        ("rep", "R2", months[2]): (0.0, 0.0, 300.0, 180.0, 200.0, 0.0, 200.0),  # C 300 x 2/3
        ("rep", "R2", months[3]): zero,
        ("rep", "R2", months[4]): zero,
        ("rep", "R2", months[5]): zero,
        ("rep", "R3", months[0]): (100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 100.0),  # K
        ("rep", "R3", months[1]): zero,
        ("rep", "R3", months[2]): (0.0, 400.0, 400.0, 360.0, 360.0, 0.0, 360.0),  # D x 90% (default)
        ("rep", "R3", months[3]): zero,
        ("rep", "R3", months[4]): zero,
        ("rep", "R3", months[5]): zero,
        ("team", "East", months[0]): (100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 100.0),
        ("team", "East", months[1]): (280.0, 0.0, 0.0, 0.0, 0.0, 0.0, 280.0),
        ("team", "East", months[2]): (0.0, 500.0, 800.0, 630.0, 650.0, 40.0, 690.0),
        ("team", "East", months[3]): run_only,
        ("team", "East", months[4]): run_only,
        ("team", "East", months[5]): run_only,
        ("team", "West", months[0]): (100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 100.0),
        ("team", "West", months[1]): zero,
        ("team", "West", months[2]): (0.0, 400.0, 400.0, 360.0, 360.0, 0.0, 360.0),
        ("team", "West", months[3]): zero,
        ("team", "West", months[4]): zero,
        ("team", "West", months[5]): zero,
        ("org", "org", months[0]): (200.0, 0.0, 0.0, 0.0, 0.0, 0.0, 200.0),
        ("org", "org", months[1]): (280.0, 0.0, 0.0, 0.0, 0.0, 0.0, 280.0),
        ("org", "org", months[2]): (0.0, 900.0, 1200.0, 990.0, 1010.0, 40.0, 1050.0),
        ("org", "org", months[3]): run_only,
        ("org", "org", months[4]): run_only,
        ("org", "org", months[5]): run_only,
    }
    assert got == expected

    interval = rows.set_index(["level", "member", "month_start"])[["forecast_low", "forecast_high"]]
    assert interval.loc[("org", "org", months[2])].tolist() == pytest.approx([1050 * 0.84, 1050 * 1.16])
    assert interval.loc[("org", "org", months[0])].tolist() == pytest.approx([200.0, 200.0])  # all closed
    assert interval.loc[("org", "org", months[3])].tolist() == pytest.approx([40 * 0.84, 40 * 1.16])
    assert interval.loc[("rep", "R1", months[2])].tolist() == pytest.approx([490 * 0.6, 490 * 1.4])
    assert interval.loc[("team", "East", months[2])].isna().all()


def test_mid_month_forecast_counts_what_is_left_of_the_month() -> None:
    """as_of 2026-03-15: snapshots on 01-15 and 02-15 at 00:00, outcomes as known on 03-15.

    01-15: A Prospecting due Jan (won 01-20), K Proposal due Jan (won 01-25), B and C Proposal
    due Feb, D Negotiation due Mar.  02-15: C Proposal due 02-15 (not won in February), D and F
    Negotiation due Mar (B was won on 02-10, G not created yet).
    Due this month and won in the rest of it: Prospecting 1/1 (A), Proposal 1/2 (K yes, C no),
    Negotiation no observation → default 90%.
    On 03-15 open and due in March: C (Proposal, 300), D (400) and F (500) in Negotiation, E
    (Prospecting, 50, created 03-10). Rest-of-month run rate: deals created from the 15th of
    Jan/Feb and won that month: G (02-20, 80) / 2.
    """
    rows, _ = fc.sales_forecast(
        build_inputs(),
        date(2026, 3, 15),
        pd.DataFrame(columns=["level", "member", "method", "month_start", "forecast", "actual"]),
        calibration_months=2,
        run_rate_months=2,
        min_team_observations=3,
    )
    march = rows.loc[(rows["level"] == "org") & (rows["month_start"] == T("2026-03-01"))].iloc[0]
    # 300 x 0.5 + (400 + 500) x 0.9 + 50 x 1
    assert (march["calibrated_pipeline"], march["run_rate"], march["forecast"]) == (1010.0, 40.0, 1050.0)
    assert march["weighted_pipeline"] == 300 * 0.6 + 900 * 0.9 + 50 * 0.1
    assert march[["forecast_low", "forecast_high"]].isna().all()  # no backtest rows: no interval


def test_quarters_follow_the_fiscal_year_start() -> None:
    assert fc.quarter_start(date(2026, 11, 27)) == T("2026-10-01")
    assert fc.quarter_start(date(2026, 11, 27), fiscal_year_start_month=2) == T("2026-11-01")
    assert fc.quarter_start(date(2026, 1, 15), fiscal_year_start_month=2) == T("2025-11-01")
    assert fc.forecast_months(date(2026, 1, 15), 2) == [
        T("2025-11-01"),
        T("2025-12-01"),
        T("2026-01-01"),
        T("2026-02-01"),
        T("2026-03-01"),
        T("2026-04-01"),
    ]
    assert fc.backtest_months(date(2026, 3, 1), 2) == [T("2026-01-01"), T("2026-02-01")]
    assert fc.same_moment(T("2026-02-01"), T("2026-03-31 06:30")) == T("2026-02-28 06:30")


# ======================================================= stages of the org, and stages nobody lists

# The same org with its own stage names (as OpportunityStage would give them)
CUSTOM_NAMES = {
    "Prospecting": "Discover",
    "Proposal": "Demo",
    "Negotiation": "Contracting",
    "Closed Won": "Signed",
    "Closed Lost": "Lost",
}
CUSTOM_STAGES = STAGES.assign(stage_name=STAGES["stage_name"].map(CUSTOM_NAMES))
CUSTOM_HISTORY = [(row[0], row[1], CUSTOM_NAMES[row[2]], *row[3:]) for row in HISTORY]
# every opportunity as it is now, with its current stage: C lost, the others won
CURRENT_STAGES = {"A": "Signed", "B": "Signed", "C": "Lost", "D": "Signed", "E": "Signed", "F": "Signed",
                  "G": "Signed", "K": "Signed"}  # fmt: skip


def custom_inputs(stages: pd.DataFrame) -> fc.ForecastInputs:
    opportunities = opportunities_frame()
    opportunities["stage_name"] = opportunities["opportunity_id"].map(CURRENT_STAGES)
    return fc.ForecastInputs.build(history_frame(CUSTOM_HISTORY), opportunities, stages, USERS, ROLES)


def test_an_org_with_only_its_own_stage_names_gets_the_forecast_of_the_standard_process() -> None:
    inputs = custom_inputs(CUSTOM_STAGES)
    state = fc.reconstruct_pipeline(inputs, T("2026-02-01")).set_index("opportunity_id")
    assert state["stage_name"].to_dict() == {"A": "Signed", "B": "Demo", "C": "Demo", "D": "Contracting",
                                             "K": "Signed"}  # fmt: skip
    assert state["is_won"].to_dict() == {"A": True, "B": False, "C": False, "D": False, "K": True}
    # the calibration of test_calibrated_probabilities_by_stage_close_offset_and_month_offset, renamed
    table = fc.calibrate(inputs, T("2026-04-01"), months=3, horizon=2, min_team_observations=3)
    assert cell(table, "org", "org", "Demo", 0, 0) == (4, 2, 0.5, 0.5, "org")
    assert cell(table, "org", "org", "Contracting", 0, 0) == (2, 1, 0.5, 0.5, "org")
    assert cell(table, "org", "org", "Discover", 1, 1) == (0, 0, None, 0.1, "default")
    assert set(table["stage_name"]) == {"Discover", "Demo", "Contracting"}

    custom = fc.build_forecast(inputs, date(2026, 4, 10))
    standard = fc.build_forecast(build_inputs(), date(2026, 4, 10))
    pd.testing.assert_frame_equal(custom.sales_forecast, standard.sales_forecast)
    pd.testing.assert_frame_equal(custom.accuracy, standard.accuracy)
    pd.testing.assert_frame_equal(custom.summary, standard.summary)
    back = {new: old for old, new in CUSTOM_NAMES.items()}
    renamed = custom.probabilities.assign(stage_name=custom.probabilities["stage_name"].map(back))
    pd.testing.assert_frame_equal(renamed, standard.probabilities, check_dtype=False)


def test_stages_the_stage_table_does_not_list_never_crash_and_use_the_opportunitys_own_flags() -> None:
    """The standard process as the stage table, history in the org's own names only: no stage of
    any state is listed (this crashed with "Unsupported cast from bool to null").

    Signed and Lost take the flags of the opportunities now in them (A, B, D-G, K won; C lost);
    nobody is in Discover, Demo or Contracting now: their history rows' categories (Pipeline,
    BestCase, Forecast) say open. Every history probability equals the standard default of its
    stage, so the forecast is the standard one, with each deal's own Probability where the
    standard process used the stage's default.
    """
    inputs = custom_inputs(STAGES)
    assert inputs.learned_stages.set_index("stage_name").to_dict("index") == {
        "Lost": {"is_closed": True, "is_won": False},
        "Signed": {"is_closed": True, "is_won": True},
    }
    state = fc.reconstruct_pipeline(inputs, T("2026-04-01")).set_index("opportunity_id")
    # 04-01: C lost on 03-25; F still in Contracting (won only on 04-02); the others won
    assert state["is_closed"].to_dict() == {"A": True, "B": True, "C": True, "D": True, "E": True,
                                            "F": False, "G": True, "K": True}  # fmt: skip
    assert state["is_won"].to_dict() == {"A": True, "B": True, "C": False, "D": True, "E": True,
                                         "F": False, "G": True, "K": True}  # fmt: skip

    rows, probabilities = fc.sales_forecast(
        inputs,
        date(2026, 3, 1),
        pd.DataFrame(columns=["level", "member", "method", "month_start", "forecast", "actual"]),
        calibration_months=2,
        run_rate_months=2,
        min_team_observations=3,
    )
    march = rows.loc[(rows["level"] == "org") & (rows["month_start"] == T("2026-03-01"))].iloc[0]
    # as in test_sales_forecast_rows_at_rep_team_and_org_level: C 300 x 2/3 + D 400 x 90% + F 500 x 90%,
    # where 90% is now D's and F's own Probability (Contracting has no observation due this month)
    assert march[fc.COMPONENTS].tolist() == [0.0, 900.0, 1200.0, 990.0, 1010.0, 40.0, 1050.0]
    contracting = probabilities.loc[
        (probabilities["level"] == "org")
        & (probabilities["stage_name"] == "Contracting")
        & (probabilities["close_offset"] == 0)
        & (probabilities["month_offset"] == 0)
    ].iloc[0]
    assert (contracting["observations"], contracting["probability_source"]) == (0, "own")
    assert np.isnan(contracting["applied_probability"]) and np.isnan(contracting["default_probability"])
    # no observation and dated for another month (overdue): 0, as for any stage
    late = probabilities.loc[
        (probabilities["level"] == "org")
        & (probabilities["stage_name"] == "Contracting")
        & (probabilities["close_offset"] == -1)
        & (probabilities["month_offset"] == 0)
    ].iloc[0]
    assert (late["applied_probability"], late["probability_source"]) == (0.0, "none")

    result = fc.build_forecast(inputs, date(2026, 4, 10))  # the whole forecast runs
    standard = fc.build_forecast(build_inputs(), date(2026, 4, 10))
    pd.testing.assert_frame_equal(result.sales_forecast, standard.sales_forecast)
    pd.testing.assert_frame_equal(result.accuracy, standard.accuracy)


def test_an_unlisted_stage_takes_own_flags_then_the_stages_then_the_history_rows() -> None:
    """One instant (02-01), the standard stage table; each opportunity's last history row before it.

    P  Signed (Pipeline, 100)    now in Signed, won           -> its own flags: won
    Q  Signed (Pipeline, 100)    now in Closed Lost           -> Signed's flags (P and S now in it, won)
    S  Signed (Closed, 100)      now in Signed, won           -> its own flags: won
    U  Parked (Omitted, 0)       now in Closed Lost           -> nobody in Parked: history says lost
    V  Waiting (Pipeline, 30)    now in Waiting, open         -> its own flags: open
    W  Ghost (Closed, 100)       now in Closed Won            -> nobody in Ghost: history says won
    X  Proposal (Closed, 100)    now in Closed Won            -> listed: Proposal is open
    """
    rows = [
        ("p1", "P", "Signed", 100.0, 100.0, "Pipeline", "2026-01-20", "2026-01-20 10:00"),
        ("q1", "Q", "Signed", 200.0, 100.0, "Pipeline", "2026-01-15", "2026-01-15 10:00"),
        ("s1", "S", "Signed", 300.0, 100.0, "Closed", "2026-01-10", "2026-01-10 10:00"),
        ("u1", "U", "Parked", 400.0, 0.0, "Omitted", "2026-01-05", "2026-01-05 10:00"),
        ("v1", "V", "Waiting", 50.0, 30.0, "Pipeline", "2026-03-31", "2026-01-05 10:00"),
        ("w1", "W", "Ghost", 60.0, 100.0, "Closed", "2026-01-05", "2026-01-05 10:00"),
        ("x1", "X", "Proposal", 70.0, 100.0, "Closed", "2026-03-31", "2026-01-06 10:00"),
    ]
    now = [  # opportunity_id, owner, amount, is_won, is_closed, close, created, current stage
        ("P", "R1", 100.0, True, True, "2026-01-20", "2025-12-01 09:00", "Signed"),
        ("Q", "R1", 200.0, False, True, "2026-03-20", "2025-12-01 09:00", "Closed Lost"),
        ("S", "R2", 300.0, True, True, "2026-01-10", "2025-12-01 09:00", "Signed"),
        ("U", "R2", 400.0, False, True, "2026-01-05", "2025-12-01 09:00", "Closed Lost"),
        ("V", "R3", 50.0, False, False, "2026-03-31", "2025-12-01 09:00", "Waiting"),
        ("W", "R3", 60.0, True, True, "2026-01-05", "2025-12-01 09:00", "Closed Won"),
        ("X", "R3", 70.0, True, True, "2026-03-31", "2025-12-01 09:00", "Closed Won"),
    ]
    opportunities = pd.DataFrame(now, columns=[*OPPORTUNITY_COLUMNS, "stage_name"])
    opportunities["close_date"] = pd.to_datetime(opportunities["close_date"]).dt.date
    opportunities["created_at"] = pd.to_datetime(opportunities["created_at"])
    inputs = fc.ForecastInputs.build(history_frame(rows), opportunities, STAGES, USERS, ROLES)
    state = fc.reconstruct_pipeline(inputs, T("2026-02-01")).set_index("opportunity_id")
    flags = {o: (bool(r.is_closed), bool(r.is_won)) for o, r in state.iterrows()}
    assert flags == {
        "P": (True, True),
        "Q": (True, True),
        "S": (True, True),
        "U": (True, False),
        "V": (False, False),
        "W": (True, True),
        "X": (False, False),
    }


# ============================================================================= the Dagster asset


def write_staging(path: Path, history: pd.DataFrame, opportunities: pd.DataFrame) -> None:
    """The staging tables the asset reads, as dbt would have built them."""
    frames = {
        "staging.stg_salesforce__opportunity_history": history,
        "staging.stg_salesforce__opportunities": opportunities.assign(
            stage_name="x", probability=0.0, forecast_category="x"
        ),
        "staging.stg_salesforce__users": USERS,
        "staging.stg_salesforce__user_roles": ROLES,
        "staging.stg_salesforce__opportunity_stages": STAGES,
    }
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE SCHEMA IF NOT EXISTS staging")
        for name, frame in frames.items():
            connection.register("_frame", frame)
            connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _frame")
            connection.unregister("_frame")


def materialize_forecast(warehouse: Path, as_of: str, monkeypatch: pytest.MonkeyPatch):
    from dagster import DagsterInstance, materialize

    from orchestration.assets.forecast import sales_forecast_assets
    from orchestration.resources import WarehouseResource

    monkeypatch.setenv("SALESOPS_AS_OF", as_of)
    with DagsterInstance.ephemeral() as instance:
        return materialize(
            [sales_forecast_assets],
            resources={"warehouse": WarehouseResource(path=str(warehouse))},
            instance=instance,
        )


def test_asset_writes_the_four_tables_and_reports_each_methods_mape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import AssetKey

    from orchestration.assets.forecast import read_method_mape, sales_forecast_assets

    spec_keys = {spec.key for spec in sales_forecast_assets.specs}
    assert {AssetKey(["marts", "sales_forecast"]), AssetKey(["marts", "forecast_accuracy"])} <= spec_keys
    for spec in sales_forecast_assets.specs:
        assert spec.group_name == "marts"
        assert spec.owners == ["team:sales-analysts"]
        assert {dep.asset_key for dep in spec.deps} == {
            AssetKey(["staging", "stg_salesforce__opportunities"]),
            AssetKey(["staging", "stg_salesforce__opportunity_history"]),
            AssetKey(["staging", "stg_salesforce__users"]),
            AssetKey(["staging", "stg_salesforce__user_roles"]),
            AssetKey(["staging", "stg_salesforce__opportunity_stages"]),
        }

    warehouse = tmp_path / "warehouse.duckdb"
    write_staging(warehouse, history_frame(), opportunities_frame())
    with duckdb.connect(str(warehouse)) as connection:  # a previous run's table, replaced whole
        connection.execute("CREATE SCHEMA marts")
        connection.execute("CREATE TABLE marts.sales_forecast AS SELECT 'stale' AS level")
        assert read_method_mape(connection) == {}
    result = materialize_forecast(warehouse, "2026-04-10", monkeypatch)
    assert result.success
    metadata = {
        event.materialization.asset_key.path[-1]: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert set(metadata) == {
        "sales_forecast",
        "forecast_accuracy",
        "forecast_accuracy_summary",
        "forecast_stage_probabilities",
    }

    expected = fc.build_forecast(build_inputs(), date(2026, 4, 10))
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        mape = read_method_mape(connection)
        forecast = connection.execute(
            "SELECT * FROM marts.sales_forecast ORDER BY level, member, month_start"
        ).df()
        accuracy_columns = [
            row[0] for row in connection.execute("DESCRIBE marts.forecast_accuracy").fetchall()
        ]
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
            ).fetchall()
        }
        summary_rows = connection.execute("SELECT count(*) FROM marts.forecast_accuracy_summary").fetchone()[
            0
        ]
    assert tables == set(metadata)  # no __new tables left behind
    assert summary_rows == 12
    assert accuracy_columns == fc.ACCURACY_COLUMNS
    assert list(forecast.columns) == fc.SALES_FORECAST_COLUMNS
    assert (forecast["as_of"] == T("2026-04-10")).all()
    org = expected.summary.loc[expected.summary["level"] == "org"].set_index("method")["mape"]
    assert mape == pytest.approx(org.to_dict())
    assert list(mape) == list(fc.METHODS)
    assert metadata["forecast_accuracy"]["mape_calibrated"].value == pytest.approx(
        round(org["calibrated"], 4)
    )
    org_rows = forecast.loc[forecast["level"] == "org"].reset_index(drop=True)
    want = expected.sales_forecast.loc[expected.sales_forecast["level"] == "org"].reset_index(drop=True)
    np.testing.assert_allclose(org_rows["forecast"], want["forecast"])

    rerun = materialize_forecast(warehouse, "2026-04-10", monkeypatch)  # replaces, never appends
    assert rerun.success
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM marts.sales_forecast").fetchone()[0] == len(forecast)


# ============================================================================ the demo org (S)

DEMO_AS_OF = "2026-11-27"


@pytest.fixture(scope="module")
def demo_s_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo profile S: the four CRM tables the forecast reads loaded into raw by the pipeline's
    loader (the others created empty, as the quarantine model reads them), staged by dbt."""
    from ingestion.contract import CRM_CONTRACT, raw_table_name
    from ingestion.crm_load import load_crm_table
    from ingestion.crm_sql import SqlCrmReader
    from ingestion.demo import generate
    from ingestion.warehouse import Warehouse

    root = tmp_path_factory.mktemp("forecast_demo")
    generate(root / "demo", seed=42, profile="S", as_of=date.fromisoformat(DEMO_AS_OF), quiet=True)
    warehouse = root / "warehouse.duckdb"
    store = Warehouse(warehouse)
    reader = SqlCrmReader(f"sqlite:///{root / 'demo' / 'crm.sqlite'}")
    try:
        for table, fields in CRM_CONTRACT.items():
            if table in ("opportunity", "opportunityhistory", "user", "userrole"):
                load_crm_table(reader, store, table)
            else:
                with store.connect() as connection:
                    store.ensure_text_table(connection, raw_table_name(table), [f.lower() for f in fields])
    finally:
        reader.close()
    models = (
        "stg_salesforce__opportunities stg_salesforce__opportunity_history stg_salesforce__users "
        "stg_salesforce__opportunity_stages"
    )
    env = {**os.environ, "SALESOPS_WAREHOUSE": str(warehouse), "SALESOPS_AS_OF": DEMO_AS_OF}
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "build",
            "--profiles-dir",
            ".",
            "--target-path",
            str(root / "dbt_target"),
            "--log-path",
            str(root / "dbt_logs"),
            "--select",
            f"opportunity_stages quarantine {models} stg_salesforce__user_roles",
            "--exclude-resource-type",
            "test",
            "--vars",
            f'{{"as_of": "{DEMO_AS_OF}"}}',
            "--quiet",
        ],
        cwd=PROJECT_ROOT / "dbt_project",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    shutil.rmtree(root / "demo")
    return warehouse


def test_calibrated_forecast_beats_probability_weighting_on_the_demo_org(
    demo_s_warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.assets.forecast import read_method_mape

    result = materialize_forecast(demo_s_warehouse, DEMO_AS_OF, monkeypatch)
    assert result.success
    with duckdb.connect(str(demo_s_warehouse), read_only=True) as connection:
        mape = read_method_mape(connection)
        months = connection.execute(
            "SELECT count(DISTINCT month_start) FROM marts.forecast_accuracy WHERE level = 'org'"
        ).fetchone()[0]
    print(f"demo S org-level MAPE: {mape}")
    assert set(mape) == set(fc.METHODS)
    assert months == fc.BACKTEST_MONTHS
    assert mape["calibrated"] < mape["weighted_pipeline"]


def test_asset_on_an_empty_crm_writes_org_rows_and_no_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.assets.forecast import read_method_mape

    warehouse = tmp_path / "warehouse.duckdb"
    write_staging(warehouse, history_frame().iloc[0:0], opportunities_frame().iloc[0:0])
    assert materialize_forecast(warehouse, "2026-04-10", monkeypatch).success
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert read_method_mape(connection) == {}
        rows = connection.execute("SELECT level, forecast FROM marts.sales_forecast").fetchall()
        assert rows == [("org", 0.0)] * 6
