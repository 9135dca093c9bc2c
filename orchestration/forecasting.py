"""Sales forecast and its backtest: pure functions on pandas DataFrames (docs/metrics.md, "Sales forecast").

Nothing here knows about Dagster or the warehouse. Inputs are the staging tables as DataFrames:

- history: ``opportunity_history_id, opportunity_id, stage_name, amount, probability,
  forecast_category, close_date, created_at`` (one row per change; ``created_at`` = when it happened);
- opportunities: ``opportunity_id, owner_id, amount, is_won, close_date, created_at`` (now);
- stages: ``stage_name, is_closed, is_won, default_probability`` (0-100, the dbt seed);
- users ``rep_id, user_role_id`` and roles ``user_role_id, role_name`` (a rep's team is the role name).

Every figure of a forecast made at an instant ``cutoff`` is computed from the history rows created
before ``cutoff`` only (owners and teams excepted: they are today's). The live forecast uses the
start of the as_of day as its cutoff and the backtest the first day of each month it replays, so
both run through the same code.

Memory stays bounded by the state of every opportunity at one instant plus the small month-start
pipelines: history is sorted once, so "the rows before t" is a prefix, and each instant's state is
one ``drop_duplicates`` over that prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

CALIBRATION_MONTHS = 12  # trailing four quarters of month-start snapshots
RUN_RATE_MONTHS = 6
BACKTEST_MONTHS = 8
MIN_TEAM_OBSERVATIONS = 30
FORECAST_HORIZON_MONTHS = 6  # month offsets 0-5: the as_of month to the end of the next quarter
CLOSE_OFFSET_MAX = 6  # close dates six or more months out share one calibration bucket
INTERVAL_QUANTILES = (0.10, 0.90)

LEVELS = ("rep", "team", "org")
ORG_MEMBER = "org"
NO_TEAM = "(no team)"
METHODS = ("weighted_pipeline", "commit", "best_case", "calibrated")

# OpportunityHistory.ForecastCategory holds API values; Opportunity.ForecastCategoryName holds labels.
FORECAST_CATEGORY_LABELS = {
    "Pipeline": "Pipeline",
    "BestCase": "Best Case",
    "Best Case": "Best Case",
    "Forecast": "Commit",
    "Commit": "Commit",
    "Closed": "Closed",
    "Omitted": "Omitted",
}

HISTORY_COLUMNS = [
    "opportunity_history_id",
    "opportunity_id",
    "stage_name",
    "amount",
    "probability",
    "forecast_category",
    "close_date",
    "created_at",
]
COMPONENTS = [
    "closed_to_date",
    "commit",
    "best_case",
    "weighted_pipeline",
    "calibrated_pipeline",
    "run_rate",
    "forecast",
]
SALES_FORECAST_COLUMNS = [
    "level",
    "member",
    "month_start",
    *COMPONENTS,
    "forecast_low",
    "forecast_high",
    "as_of",
]
ACCURACY_COLUMNS = [
    "level",
    "member",
    "method",
    "month_start",
    "forecast",
    "actual",
    "error",
    "absolute_percentage_error",
    "as_of",
]
SUMMARY_COLUMNS = [
    "level",
    "method",
    "months",
    "observations",
    "mape",
    "bias",
    "total_forecast",
    "total_actual",
    "as_of",
]
PROBABILITY_COLUMNS = [
    "level",
    "member",
    "stage_name",
    "close_offset",
    "month_offset",
    "observations",
    "won_in_month",
    "probability",
    "applied_probability",
    "probability_source",
    "default_probability",
    "window_start",
    "window_end",
    "as_of",
]


# ------------------------------------------------------------------------------------------ dates


def month_start(values: pd.Series) -> pd.Series:
    """The first day (midnight) of each value's month; NaT stays NaT."""
    stamps = pd.to_datetime(values)
    months = stamps.to_numpy(dtype="datetime64[ns]").astype("datetime64[M]").astype("datetime64[ns]")
    return pd.Series(months, index=values.index, name=values.name)


def first_of_month(moment: date | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return pd.Timestamp(stamp.year, stamp.month, 1)


def add_months(month: pd.Timestamp, count: int) -> pd.Timestamp:
    index = month.year * 12 + month.month - 1 + count
    return pd.Timestamp(index // 12, index % 12 + 1, 1)


def quarter_start(day: date | pd.Timestamp, fiscal_year_start_month: int = 1) -> pd.Timestamp:
    """First day of the (fiscal) quarter holding ``day``; quarters start in the fiscal year's start month."""
    if not 1 <= fiscal_year_start_month <= 12:
        raise ValueError(f"fiscal_year_start_month must be 1-12, not {fiscal_year_start_month}")
    month = first_of_month(day)
    return add_months(month, -((month.month - fiscal_year_start_month) % 3))


def forecast_months(as_of: date, fiscal_year_start_month: int = 1) -> list[pd.Timestamp]:
    """The six months of the as_of quarter and the next quarter."""
    start = quarter_start(as_of, fiscal_year_start_month)
    return [add_months(start, offset) for offset in range(6)]


def backtest_months(as_of: date, count: int = BACKTEST_MONTHS) -> list[pd.Timestamp]:
    """The ``count`` completed months before the as_of month, oldest first."""
    current = first_of_month(as_of)
    return [add_months(current, -offset) for offset in range(count, 0, -1)]


def remaining_fraction(month: pd.Timestamp, cutoff: pd.Timestamp) -> float:
    """Share of the month's time still ahead at ``cutoff``: 1 before the month, 0 after it."""
    end = add_months(month, 1)
    if cutoff <= month:
        return 1.0
    if cutoff >= end:
        return 0.0
    return (end - cutoff) / (end - month)


# ------------------------------------------------------------------------------------- inputs


def normalize_forecast_category(values: pd.Series) -> pd.Series:
    """History's API values (BestCase, Forecast) and the opportunity's labels, as labels."""
    text = values.astype("string").str.strip()
    return text.map(lambda value: FORECAST_CATEGORY_LABELS.get(value, value) if pd.notna(value) else value)


def rep_teams(users: pd.DataFrame, roles: pd.DataFrame) -> pd.DataFrame:
    """One row per rep: ``rep_id, team`` (the role's name, ``(no team)`` without one)."""
    teams = users.loc[:, ["rep_id", "user_role_id"]].merge(
        roles.loc[:, ["user_role_id", "role_name"]], on="user_role_id", how="left"
    )
    teams["team"] = teams["role_name"].astype("string").fillna(NO_TEAM)
    return teams.loc[:, ["rep_id", "team"]].drop_duplicates("rep_id").reset_index(drop=True)


class HistoryIndex:
    """Opportunity history sorted by (created_at, opportunity_history_id).

    The rows known before an instant are then a prefix, and an opportunity's state at that
    instant is its last row in the prefix (ties on created_at go to the larger history id).
    """

    def __init__(self, history: pd.DataFrame) -> None:
        frame = history.loc[:, HISTORY_COLUMNS].copy()
        frame["created_at"] = pd.to_datetime(frame["created_at"]).astype("datetime64[ns]")
        frame["close_date"] = pd.to_datetime(frame["close_date"]).astype("datetime64[ns]")
        frame["amount"] = pd.to_numeric(frame["amount"]).astype("float64")
        frame["probability"] = pd.to_numeric(frame["probability"]).astype("float64")
        frame["opportunity_history_id"] = frame["opportunity_history_id"].astype("string")
        frame = frame.dropna(subset=["created_at", "opportunity_id"])
        frame = frame.sort_values(["created_at", "opportunity_history_id"], kind="stable", ignore_index=True)
        frame["opportunity_id"] = frame["opportunity_id"].astype("string").astype("category")
        frame["stage_name"] = frame["stage_name"].astype("string").astype("category")
        frame["forecast_category"] = normalize_forecast_category(frame["forecast_category"]).astype(
            "category"
        )
        frame["close_month"] = month_start(frame["close_date"])
        self.frame = frame.drop(columns=["opportunity_history_id"])
        self._created = self.frame["created_at"].to_numpy()

    def state_at(self, at: pd.Timestamp) -> pd.DataFrame:
        """Each opportunity's latest history row created strictly before ``at``."""
        end = int(np.searchsorted(self._created, np.datetime64(pd.Timestamp(at), "ns"), side="left"))
        return self.frame.iloc[:end].drop_duplicates("opportunity_id", keep="last")


@dataclass
class ForecastInputs:
    """The staging tables, prepared once: sorted history, owners with teams, stage flags."""

    history: HistoryIndex
    opportunities: pd.DataFrame  # opportunity_id, owner_id, team, amount, is_won, close_month, created_month
    stages: pd.DataFrame  # stage_name, is_closed, is_won, default_probability (0-100)
    _open: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        history: pd.DataFrame,
        opportunities: pd.DataFrame,
        stages: pd.DataFrame,
        users: pd.DataFrame | None = None,
        roles: pd.DataFrame | None = None,
    ) -> ForecastInputs:
        opps = opportunities.loc[
            :, ["opportunity_id", "owner_id", "amount", "is_won", "close_date", "created_at"]
        ]
        opps = opps.dropna(subset=["opportunity_id", "owner_id"]).drop_duplicates("opportunity_id")
        opps = opps.assign(
            opportunity_id=opps["opportunity_id"].astype("string"),
            owner_id=opps["owner_id"].astype("string"),
            amount=pd.to_numeric(opps["amount"]).astype("float64"),
            is_won=opps["is_won"].fillna(False).astype(bool),
            close_month=month_start(opps["close_date"]),
            created_month=month_start(opps["created_at"]),
        )
        if users is not None and roles is not None:
            teams = rep_teams(users, roles).rename(columns={"rep_id": "owner_id"})
            opps = opps.merge(teams, on="owner_id", how="left")
        else:
            opps = opps.assign(team=pd.NA)
        opps["team"] = opps["team"].astype("string").fillna(NO_TEAM)
        stage_table = stages.loc[:, ["stage_name", "is_closed", "is_won", "default_probability"]].copy()
        stage_table["stage_name"] = stage_table["stage_name"].astype("string")
        stage_table["is_closed"] = stage_table["is_closed"].astype(bool)
        stage_table["is_won"] = stage_table["is_won"].astype(bool)
        stage_table["default_probability"] = pd.to_numeric(stage_table["default_probability"]).astype(float)
        columns = ["opportunity_id", "owner_id", "team", "amount", "is_won", "close_month", "created_month"]
        return cls(HistoryIndex(history), opps.loc[:, columns].reset_index(drop=True), stage_table)

    def open_stages(self) -> list[str]:
        return self.stages.loc[~self.stages["is_closed"], "stage_name"].tolist()

    def state_at(self, at: pd.Timestamp) -> pd.DataFrame:
        return reconstruct_pipeline(self, at)

    def open_pipeline(self, month: pd.Timestamp) -> pd.DataFrame:
        """Opportunities open at the month's first instant (kept: a backtest asks again)."""
        if month not in self._open:
            state = self.state_at(month)
            self._open[month] = state.loc[~state["is_closed"]].reset_index(drop=True)
        return self._open[month]


def reconstruct_pipeline(
    history: ForecastInputs | pd.DataFrame,
    at: pd.Timestamp,
    opportunities: pd.DataFrame | None = None,
    stages: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every opportunity as it stood at ``at``, from history rows created strictly before ``at``.

    One row per opportunity that had a history row by then and still exists in the CRM:
    ``opportunity_id, owner_id, team, stage_name, amount, probability, forecast_category,
    close_date, close_month, is_closed, is_won``. Pass a ``ForecastInputs``, or the raw history
    with ``opportunities`` (owner_id, and team if known) and ``stages``.
    """
    if not isinstance(history, ForecastInputs):
        if opportunities is None or stages is None:
            raise ValueError("reconstruct_pipeline needs opportunities and stages with a raw history")
        history = ForecastInputs.build(history, opportunities, stages)
    inputs = history
    state = inputs.history.state_at(pd.Timestamp(at))
    state = state.assign(opportunity_id=state["opportunity_id"].astype("string"))
    owners = inputs.opportunities.loc[:, ["opportunity_id", "owner_id", "team"]]
    state = state.merge(owners, on="opportunity_id", how="inner")
    flags = inputs.stages.set_index("stage_name")
    stage = state["stage_name"].astype("string")
    category = state["forecast_category"].astype("string")
    known_closed = stage.map(flags["is_closed"].to_dict())
    known_won = stage.map(flags["is_won"].to_dict())
    # A stage the seed does not list: closed when its forecast category is Closed, or Omitted at 0%.
    fallback_won = category.eq("Closed").fillna(False)
    fallback_closed = fallback_won | (category.eq("Omitted").fillna(False) & state["probability"].eq(0))
    state["is_closed"] = known_closed.fillna(fallback_closed).astype(bool)
    state["is_won"] = known_won.fillna(fallback_won).astype(bool)
    state["stage_name"] = stage
    state["forecast_category"] = category
    columns = [
        "opportunity_id",
        "owner_id",
        "team",
        "stage_name",
        "amount",
        "probability",
        "forecast_category",
        "close_date",
        "close_month",
        "is_closed",
        "is_won",
    ]
    return state.loc[:, columns].reset_index(drop=True)


# -------------------------------------------------------------------------------- calibration


def month_offset(months: pd.Series, origin: pd.Timestamp) -> pd.Series:
    """Whole months from ``origin``'s month to each value's month (NaT stays missing)."""
    stamps = pd.to_datetime(months)
    offsets = (stamps.dt.year - origin.year) * 12 + (stamps.dt.month - origin.month)
    return offsets.astype("Int64")


def close_offset_bucket(close_months: pd.Series, snapshot_month: pd.Timestamp) -> pd.Series:
    """Months from the snapshot month to the close month: -1 = already overdue, CLOSE_OFFSET_MAX = that or more."""
    return month_offset(close_months, snapshot_month).clip(lower=-1, upper=CLOSE_OFFSET_MAX)


def calibrate(
    inputs: ForecastInputs,
    cutoff: pd.Timestamp,
    *,
    months: int = CALIBRATION_MONTHS,
    horizon: int = FORECAST_HORIZON_MONTHS,
    min_team_observations: int = MIN_TEAM_OBSERVATIONS,
    cutoff_state: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Empirical probability that an open deal is won in a given month, by stage and close date.

    Snapshots: the first instant of each of the ``months`` complete months before the cutoff's
    month. Every opportunity open at a snapshot is an observation with its stage and its close
    offset then (months from the snapshot month to its close month, bucketed -1..CLOSE_OFFSET_MAX).
    For month offset j (0 = the snapshot month itself), the observation counts when month
    snapshot + j has ended before the cutoff's month, and succeeds when, in the state known at
    ``cutoff``, the opportunity is won with a close date in month snapshot + j. The cell with
    close offset = month offset is "won within its period" (won in the month it was dated for);
    the others are deals won earlier or later than dated. ``applied_probability`` is the team's
    rate with at least ``min_team_observations`` observations, else the org's, else (the org has
    no observation) the stage's default probability where close offset = month offset, else 0.
    """
    cutoff = pd.Timestamp(cutoff)
    end = first_of_month(cutoff)
    snapshot_months = [add_months(end, -offset) for offset in range(months, 0, -1)]
    state = cutoff_state if cutoff_state is not None else inputs.state_at(cutoff)
    won = state.loc[state["is_won"], ["opportunity_id", "close_month"]].rename(columns={"close_month": "won_month"})
    frames = []
    for month in snapshot_months:
        pipeline = inputs.open_pipeline(month)
        if pipeline.empty:
            continue
        frame = pipeline.loc[:, ["opportunity_id", "team", "stage_name"]].copy()
        frame["close_offset"] = close_offset_bucket(pipeline["close_month"], month)
        frame["snapshot_index"] = month_offset(pd.Series([month]), end).iloc[0]  # -months .. -1
        frames.append(frame)
    if frames:
        observations = pd.concat(frames, ignore_index=True)
    else:
        observations = pd.DataFrame(
            {
                "opportunity_id": pd.Series(dtype="string"),
                "team": pd.Series(dtype="string"),
                "stage_name": pd.Series(dtype="string"),
                "close_offset": pd.Series(dtype="Int64"),
                "snapshot_index": pd.Series(dtype="Int64"),
            }
        )
    observations = observations.merge(won, on="opportunity_id", how="left")
    observations["won_offset"] = month_offset(observations["won_month"], end) - observations["snapshot_index"]
    observations = observations.dropna(subset=["close_offset"])

    cells = []
    for offset in range(horizon):
        resolved = observations.loc[observations["snapshot_index"] + offset < 0]
        cells.append(
            resolved.assign(
                month_offset=offset,
                success=(resolved["won_offset"] == offset).fillna(False).astype("int64"),
            )
        )
    cell_frame = pd.concat(cells, ignore_index=True) if cells else observations.assign(month_offset=0, success=0)
    keys = ["stage_name", "close_offset", "month_offset"]
    defaults = inputs.stages.set_index("stage_name")["default_probability"] / 100.0
    stage_names = list(dict.fromkeys([*inputs.open_stages(), *cell_frame["stage_name"].dropna().tolist()]))
    grid = pd.MultiIndex.from_product(
        [stage_names, range(-1, CLOSE_OFFSET_MAX + 1), range(horizon)], names=keys
    )
    org = (
        cell_frame.astype({"close_offset": "int64"})
        .groupby(keys, observed=True)["success"]
        .agg(observations="size", won_in_month="sum")
        .reindex(grid, fill_value=0)
        .reset_index()
    )
    org["level"], org["member"] = "org", ORG_MEMBER
    org["probability"] = _rate(org["won_in_month"], org["observations"])
    org["default_probability"] = org["stage_name"].map(defaults).astype(float)
    on_time = org["close_offset"] == org["month_offset"]
    has_rate = org["observations"] > 0
    fallback = org["default_probability"].where(on_time, 0.0).fillna(0.0)
    org["applied_probability"] = org["probability"].where(has_rate, fallback)
    org["probability_source"] = np.where(has_rate, "org", np.where(on_time, "default", "none"))

    team = (
        cell_frame.astype({"close_offset": "int64"})
        .groupby(["team", *keys], observed=True)["success"]
        .agg(observations="size", won_in_month="sum")
        .reset_index()
        .rename(columns={"team": "member"})
    )
    team["level"] = "team"
    team["probability"] = _rate(team["won_in_month"], team["observations"])
    team["default_probability"] = team["stage_name"].map(defaults).astype(float)
    org_cells = org.set_index(keys)
    team_keys = pd.MultiIndex.from_frame(team[keys])
    enough = team["observations"] >= min_team_observations
    team["applied_probability"] = team["probability"].where(
        enough, org_cells["applied_probability"].reindex(team_keys).to_numpy()
    )
    team["probability_source"] = np.where(
        enough, "team", org_cells["probability_source"].reindex(team_keys).to_numpy()
    )

    table = pd.concat([org, team], ignore_index=True)
    table["window_start"] = snapshot_months[0] if snapshot_months else pd.NaT
    table["window_end"] = add_months(end, -1) if snapshot_months else pd.NaT
    table = table.astype({"observations": "int64", "won_in_month": "int64", "close_offset": "int64"})
    table = table.astype({"month_offset": "int64"})
    return table.loc[:, [c for c in PROBABILITY_COLUMNS if c != "as_of"]].reset_index(drop=True)


def _rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    denominator = denominator.astype(float)
    return (numerator.astype(float) / denominator.where(denominator > 0)).astype(float)


def applied_probabilities(pipeline: pd.DataFrame, probabilities: pd.DataFrame) -> pd.Series:
    """Each pipeline row's calibrated probability of being won in its target month.

    ``pipeline`` has team, stage_name, close_offset, month_offset and probability (0-100). The
    team's cell, else the org's, else (a stage the calibration never saw) the row's own
    Probability / 100 when close offset = month offset, else 0.
    """
    keys = ["stage_name", "close_offset", "month_offset"]
    team_rows = probabilities.loc[probabilities["level"] == "team", ["member", *keys, "applied_probability"]]
    team_rows = team_rows.rename(columns={"member": "team", "applied_probability": "team_probability"})
    org_rows = probabilities.loc[probabilities["level"] == "org", [*keys, "applied_probability"]]
    org_rows = org_rows.rename(columns={"applied_probability": "org_probability"})
    keyed = pipeline.loc[:, ["team", *keys, "probability"]].reset_index(drop=True)
    keyed = keyed.astype({"close_offset": "Int64", "month_offset": "Int64"})
    team_rows = team_rows.astype({"close_offset": "Int64", "month_offset": "Int64"})
    org_rows = org_rows.astype({"close_offset": "Int64", "month_offset": "Int64"})
    keyed = keyed.merge(team_rows, on=["team", *keys], how="left").merge(org_rows, on=keys, how="left")
    on_time = (keyed["close_offset"] == keyed["month_offset"]).fillna(False).astype(bool)
    own = (keyed["probability"].astype(float) / 100.0).where(on_time, 0.0)
    result = keyed["team_probability"].fillna(keyed["org_probability"]).fillna(own).fillna(0.0)
    result.index = pipeline.index
    return result.astype(float)


# ------------------------------------------------------------------------------------ run rate


def run_rate(
    inputs: ForecastInputs,
    cutoff: pd.Timestamp,
    *,
    months: int = RUN_RATE_MONTHS,
    cutoff_state: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per rep: the average monthly Amount of deals created and won within the same month.

    Over the ``months`` complete months before the cutoff's month; a deal counts for month m when
    it was created in m and, in the state known at ``cutoff``, is won with a close date in m.
    Months without such a deal count as 0. Columns ``owner_id, team, run_rate``.
    """
    end = first_of_month(pd.Timestamp(cutoff))
    start = add_months(end, -months)
    state = cutoff_state if cutoff_state is not None else inputs.state_at(cutoff)
    won = state.loc[state["is_won"], ["opportunity_id", "owner_id", "team", "amount", "close_month"]]
    created = inputs.opportunities.loc[:, ["opportunity_id", "created_month"]]
    won = won.merge(created, on="opportunity_id", how="inner")
    same_month = (won["created_month"] == won["close_month"]) & (won["close_month"] >= start)
    same_month &= won["close_month"] < end
    rates = (
        won.loc[same_month]
        .groupby(["owner_id", "team"], observed=True)["amount"]
        .sum(min_count=0)
        .div(months)
        .rename("run_rate")
        .reset_index()
    )
    return rates.loc[rates["run_rate"] > 0].reset_index(drop=True)


# ------------------------------------------------------------------------------------ forecast


def forecast_month(
    inputs: ForecastInputs,
    month: pd.Timestamp,
    cutoff: pd.Timestamp,
    probabilities: pd.DataFrame,
    run_rates: pd.DataFrame,
    *,
    cutoff_state: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Rep-level forecast components for one month, as known at ``cutoff``.

    The month's pipeline is the opportunities open at the cutoff with their close date in the
    month: commit = its Commit forecast category; best_case = Best Case plus Commit;
    weighted_pipeline = Σ Amount × Probability / 100. calibrated_pipeline = Σ Amount × calibrated
    probability over every open opportunity, each with its chance of being won in this month
    (by stage, close offset from the cutoff's month, and this month's offset), 0 once the month is
    over. closed_to_date: won with a close date in the month. run_rate: the rep's monthly run rate
    × the share of the month still ahead. forecast = closed_to_date + calibrated_pipeline +
    run_rate. A null Amount counts as 0.
    """
    month, cutoff = pd.Timestamp(month), pd.Timestamp(cutoff)
    cutoff_month = first_of_month(cutoff)
    target_offset = int(month_offset(pd.Series([month]), cutoff_month).iloc[0])
    state = cutoff_state if cutoff_state is not None else inputs.state_at(cutoff)
    open_deals = state.loc[~state["is_closed"]]
    in_month = open_deals.loc[open_deals["close_month"] == month].copy()
    closed = state.loc[state["is_won"] & (state["close_month"] == month)].copy()
    amount = in_month["amount"].fillna(0.0)
    category = in_month["forecast_category"].astype("string")
    in_month["commit"] = amount.where(category.eq("Commit").fillna(False), 0.0)
    in_month["best_case"] = amount.where(category.isin(["Commit", "Best Case"]).fillna(False), 0.0)
    in_month["weighted_pipeline"] = amount * in_month["probability"].fillna(0.0) / 100.0
    closed["closed_to_date"] = closed["amount"].fillna(0.0)
    ahead = remaining_fraction(month, cutoff)
    keys = ["owner_id", "team"]
    parts = [
        closed.groupby(keys, observed=True)[["closed_to_date"]].sum(),
        in_month.groupby(keys, observed=True)[["commit", "best_case", "weighted_pipeline"]].sum(),
    ]
    if ahead > 0 and target_offset >= 0 and not open_deals.empty:
        candidates = open_deals.assign(
            close_offset=close_offset_bucket(open_deals["close_month"], cutoff_month),
            month_offset=target_offset,
        )
        candidates = candidates.assign(
            calibrated_pipeline=candidates["amount"].fillna(0.0)
            * applied_probabilities(candidates, probabilities)
        )
        parts.append(candidates.groupby(keys, observed=True)[["calibrated_pipeline"]].sum())
        parts.append(run_rates.set_index(keys)[["run_rate"]] * ahead)
    rows = pd.concat(parts, axis=1).fillna(0.0)
    rows = rows.reindex(columns=[c for c in COMPONENTS if c != "forecast"], fill_value=0.0)
    rows["forecast"] = rows["closed_to_date"] + rows["calibrated_pipeline"] + rows["run_rate"]
    rows = rows.reset_index()
    rows.insert(2, "month_start", month)
    return rows.astype({c: float for c in COMPONENTS})


def roll_up(rep_rows: pd.DataFrame, value_columns: Sequence[str], by: Sequence[str] = ()) -> pd.DataFrame:
    """Rep rows (owner_id, team, …) as rep, team and org rows: ``level, member, *by, *values``."""
    by = list(by)
    reps = rep_rows.assign(level="rep", member=rep_rows["owner_id"])
    teams = (
        rep_rows.groupby(["team", *by], observed=True, sort=False)[list(value_columns)].sum().reset_index()
    )
    teams = teams.rename(columns={"team": "member"}).assign(level="team")
    if by:
        org = rep_rows.groupby(by, observed=True, sort=False)[list(value_columns)].sum().reset_index()
    else:
        org = rep_rows[list(value_columns)].sum().to_frame().T
    org = org.assign(level="org", member=ORG_MEMBER)
    columns = ["level", "member", *by, *value_columns]
    return pd.concat([reps[columns], teams[columns], org[columns]], ignore_index=True)


def method_forecasts(components: pd.DataFrame) -> pd.DataFrame:
    """Each method's forecast of a month's bookings from its components (closed deals included)."""
    return pd.DataFrame(
        {
            "weighted_pipeline": components["closed_to_date"] + components["weighted_pipeline"],
            "commit": components["closed_to_date"] + components["commit"],
            "best_case": components["closed_to_date"] + components["best_case"],
            "calibrated": components["forecast"],
        },
        index=components.index,
    )


# ------------------------------------------------------------------------------------ backtest


def actual_bookings(inputs: ForecastInputs, months: Iterable[pd.Timestamp]) -> pd.DataFrame:
    """Per rep and month: Σ Amount of opportunities won with a close date in the month, as known now."""
    wanted = list(months)
    won = inputs.opportunities.loc[
        inputs.opportunities["is_won"] & inputs.opportunities["close_month"].isin(wanted)
    ]
    return (
        won.assign(actual=won["amount"].fillna(0.0))
        .groupby(["owner_id", "team", "close_month"], observed=True)["actual"]
        .sum()
        .reset_index()
        .rename(columns={"close_month": "month_start"})
    )


@dataclass
class Backtest:
    detail: pd.DataFrame  # ACCURACY_COLUMNS without as_of
    summary: pd.DataFrame  # SUMMARY_COLUMNS without as_of
    components: pd.DataFrame  # rep-level components per month (for inspection and tests)


def backtest(
    inputs: ForecastInputs,
    as_of: date,
    *,
    months: int = BACKTEST_MONTHS,
    calibration_months: int = CALIBRATION_MONTHS,
    run_rate_months: int = RUN_RATE_MONTHS,
    min_team_observations: int = MIN_TEAM_OBSERVATIONS,
) -> Backtest:
    """Replay each of the last ``months`` completed months from its first instant.

    For month m the cutoff is m's first day 00:00: the pipeline, the calibration (snapshots of
    the ``calibration_months`` before m, outcomes as known at the cutoff) and the run rate come
    from history rows created before it. Each method's forecast is compared with the month's
    actual bookings as known now. One month's state is in memory at a time.
    """
    replayed = backtest_months(as_of, months)
    frames = []
    for month in replayed:
        state = inputs.state_at(month)
        probabilities = calibrate(
            inputs,
            month,
            months=calibration_months,
            horizon=1,
            min_team_observations=min_team_observations,
            cutoff_state=state,
        )
        rates = run_rate(inputs, month, months=run_rate_months, cutoff_state=state)
        frames.append(forecast_month(inputs, month, month, probabilities, rates, cutoff_state=state))
        del state
    components = pd.concat(frames, ignore_index=True) if frames else _empty_components()
    actual = actual_bookings(inputs, replayed)
    rep_rows = pd.concat(
        [components.loc[:, ["owner_id", "team", "month_start"]], method_forecasts(components)], axis=1
    )
    rep_rows = rep_rows.merge(actual, on=["owner_id", "team", "month_start"], how="outer")
    value_columns = [*METHODS, "actual"]
    rep_rows[value_columns] = rep_rows[value_columns].fillna(0.0)
    rolled = roll_up(rep_rows, value_columns, by=["month_start"])
    detail = rolled.melt(
        id_vars=["level", "member", "month_start", "actual"],
        value_vars=list(METHODS),
        var_name="method",
        value_name="forecast",
    )
    detail = detail.loc[(detail["forecast"] != 0) | (detail["actual"] != 0)].copy()
    detail["error"] = detail["forecast"] - detail["actual"]
    detail["absolute_percentage_error"] = (
        detail["error"].abs() / detail["actual"].where(detail["actual"] > 0)
    ).astype(float)
    detail = _sort(detail, ["level", "member", "method", "month_start"])
    detail = detail.loc[:, [c for c in ACCURACY_COLUMNS if c != "as_of"]].reset_index(drop=True)
    return Backtest(detail, summarize_backtest(detail, len(replayed)), components)


def summarize_backtest(detail: pd.DataFrame, months: int) -> pd.DataFrame:
    """Per level and method: MAPE over rows with actual > 0, bias = Σ error / Σ actual."""
    rows = []
    for level in LEVELS:
        for method in METHODS:
            rows_here = detail.loc[(detail["level"] == level) & (detail["method"] == method)]
            scored = rows_here["absolute_percentage_error"].dropna()
            total_actual = float(rows_here["actual"].sum())
            total_forecast = float(rows_here["forecast"].sum())
            rows.append(
                {
                    "level": level,
                    "method": method,
                    "months": months,
                    "observations": int(scored.size),
                    "mape": float(scored.mean()) if scored.size else np.nan,
                    "bias": (total_forecast - total_actual) / total_actual if total_actual > 0 else np.nan,
                    "total_forecast": total_forecast,
                    "total_actual": total_actual,
                }
            )
    return pd.DataFrame(rows, columns=[c for c in SUMMARY_COLUMNS if c != "as_of"])


def interval_factors(
    detail: pd.DataFrame, quantiles: tuple[float, float] = INTERVAL_QUANTILES
) -> dict[str, tuple[float, float]]:
    """Per level: the 10th and 90th percentiles of the calibrated method's relative error.

    Relative error here is (actual − forecast) / forecast over backtest rows with a positive
    forecast (linear interpolation between rows). A level without such rows has no interval.
    """
    factors: dict[str, tuple[float, float]] = {}
    calibrated = detail.loc[(detail["method"] == "calibrated") & (detail["forecast"] > 0)]
    for level, rows in calibrated.groupby("level"):
        relative = ((rows["actual"] - rows["forecast"]) / rows["forecast"]).to_numpy(dtype=float)
        low, high = np.quantile(relative, quantiles)
        factors[str(level)] = (float(low), float(high))
    return factors


# -------------------------------------------------------------------------------- sales forecast


def sales_forecast(
    inputs: ForecastInputs,
    as_of: date,
    accuracy: pd.DataFrame,
    *,
    fiscal_year_start_month: int = 1,
    calibration_months: int = CALIBRATION_MONTHS,
    run_rate_months: int = RUN_RATE_MONTHS,
    min_team_observations: int = MIN_TEAM_OBSERVATIONS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The forecast for each month of the as_of quarter and the next, and the calibration used.

    Cutoff: the start of the as_of day. Rows for every rep with any figure in one of the six
    months (all six months each), their teams and the org. forecast_low / forecast_high widen the
    part still to come (calibrated_pipeline + run_rate) by the level's backtest percentiles of
    relative error: closed_to_date + open part × (1 + p10), closed_to_date + open part × (1 + p90).
    """
    cutoff = pd.Timestamp(as_of)
    state = inputs.state_at(cutoff)
    probabilities = calibrate(
        inputs,
        cutoff,
        months=calibration_months,
        horizon=FORECAST_HORIZON_MONTHS,
        min_team_observations=min_team_observations,
        cutoff_state=state,
    )
    rates = run_rate(inputs, cutoff, months=run_rate_months, cutoff_state=state)
    months = forecast_months(as_of, fiscal_year_start_month)
    frames = [
        forecast_month(inputs, month, cutoff, probabilities, rates, cutoff_state=state) for month in months
    ]
    del state
    components = pd.concat(frames, ignore_index=True)
    active = components.loc[components[COMPONENTS].ne(0).any(axis=1), ["owner_id", "team"]].drop_duplicates()
    grid = active.merge(pd.DataFrame({"month_start": months}), how="cross")
    rep_rows = grid.merge(components, on=["owner_id", "team", "month_start"], how="left")
    rep_rows[COMPONENTS] = rep_rows[COMPONENTS].fillna(0.0)
    if rep_rows.empty:
        team_rows = pd.DataFrame({"owner_id": pd.Series(dtype="string"), "team": pd.Series(dtype="string")})
        rep_rows = team_rows.merge(pd.DataFrame({"month_start": months}), how="cross")
        rep_rows[COMPONENTS] = 0.0
    rows = roll_up(rep_rows, COMPONENTS, by=["month_start"])
    factors = interval_factors(accuracy)
    open_part = rows["calibrated_pipeline"] + rows["run_rate"]
    low = rows["level"].map({level: f[0] for level, f in factors.items()}).astype(float)
    high = rows["level"].map({level: f[1] for level, f in factors.items()}).astype(float)
    rows["forecast_low"] = rows["closed_to_date"] + open_part * (1.0 + low)
    rows["forecast_high"] = rows["closed_to_date"] + open_part * (1.0 + high)
    rows = _sort(rows, ["level", "member", "month_start"])
    return rows.loc[:, [c for c in SALES_FORECAST_COLUMNS if c != "as_of"]].reset_index(
        drop=True
    ), probabilities


def _sort(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    order = {level: index for index, level in enumerate(LEVELS)}
    return (
        frame.assign(_level_order=frame["level"].map(order))
        .sort_values(["_level_order", *columns[1:]], kind="stable")
        .drop(columns="_level_order")
    )


def _empty_components() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "owner_id": pd.Series(dtype="string"),
            "team": pd.Series(dtype="string"),
            "month_start": pd.Series(dtype="datetime64[ns]"),
        }
    )
    for column in COMPONENTS:
        frame[column] = pd.Series(dtype=float)
    return frame


@dataclass
class ForecastResult:
    sales_forecast: pd.DataFrame
    probabilities: pd.DataFrame
    accuracy: pd.DataFrame
    summary: pd.DataFrame


def build_forecast(
    inputs: ForecastInputs,
    as_of: date,
    *,
    fiscal_year_start_month: int = 1,
    backtest_month_count: int = BACKTEST_MONTHS,
    calibration_months: int = CALIBRATION_MONTHS,
    run_rate_months: int = RUN_RATE_MONTHS,
    min_team_observations: int = MIN_TEAM_OBSERVATIONS,
) -> ForecastResult:
    """The backtest, then the live forecast with its interval; every table carries ``as_of``."""
    tested = backtest(
        inputs,
        as_of,
        months=backtest_month_count,
        calibration_months=calibration_months,
        run_rate_months=run_rate_months,
        min_team_observations=min_team_observations,
    )
    forecast, probabilities = sales_forecast(
        inputs,
        as_of,
        tested.detail,
        fiscal_year_start_month=fiscal_year_start_month,
        calibration_months=calibration_months,
        run_rate_months=run_rate_months,
        min_team_observations=min_team_observations,
    )
    stamp = pd.Timestamp(as_of)
    return ForecastResult(
        forecast.assign(as_of=stamp),
        probabilities.assign(as_of=stamp),
        tested.detail.assign(as_of=stamp),
        tested.summary.assign(as_of=stamp),
    )
