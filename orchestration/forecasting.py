"""Sales forecast and its backtest: pure functions on pandas DataFrames (docs/metrics.md, "Sales forecast").

Nothing here knows about Dagster or the warehouse. Inputs are the staging tables as DataFrames:

- history: ``opportunity_history_id, opportunity_id, stage_name, amount, probability,
  forecast_category, close_date, created_at`` (one row per change; ``created_at`` = when it happened);
- opportunities: ``opportunity_id, owner_id, amount, is_won, close_date, created_at`` (as now), and
  optionally ``stage_name, is_closed`` (their flags define stages the stage table does not list);
- stages: ``stage_name, is_closed, is_won, default_probability`` (0-100): the org's OpportunityStage,
  else the dbt seed (staging model stg_salesforce__opportunity_stages);
- users ``rep_id, user_role_id`` and roles ``user_role_id, role_name`` (a rep's team is the role name).

A forecast made at an instant ``cutoff`` uses only history rows created before ``cutoff`` (owners
and teams excepted: they are today's). The backtest's cutoff is the first instant of each month
it replays; the live forecast's is the start of the as_of day. Both run through the same code.

Memory stays bounded by one instant's state of every opportunity plus the open pipelines of the
snapshot instants: history is sorted once, so "the rows before t" is a prefix, and the state at
t is one ``drop_duplicates`` over that prefix.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

CALIBRATION_MONTHS = 12  # the trailing four quarters of snapshots
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
STATE_COLUMNS = [
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
PROBABILITY_KEYS = ["stage_name", "close_offset", "month_offset"]
PROBABILITY_COLUMNS = [
    "level",
    "member",
    *PROBABILITY_KEYS,
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
    stamps = pd.to_datetime(values).to_numpy(dtype="datetime64[ns]")
    months = stamps.astype("datetime64[M]").astype("datetime64[ns]")
    return pd.Series(months, index=values.index, name=values.name)


def first_of_month(moment: date | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return pd.Timestamp(stamp.year, stamp.month, 1)


def add_months(month: pd.Timestamp, count: int) -> pd.Timestamp:
    index = month.year * 12 + month.month - 1 + count
    return pd.Timestamp(index // 12, index % 12 + 1, 1)


def months_between(values: pd.Series, origin: pd.Timestamp) -> pd.Series:
    """Whole months from ``origin``'s month to each value's month (missing stays missing)."""
    stamps = pd.to_datetime(values)
    return ((stamps.dt.year - origin.year) * 12 + (stamps.dt.month - origin.month)).astype("Int64")


def close_offset_bucket(close_months: pd.Series, snapshot_month: pd.Timestamp) -> pd.Series:
    """Months from the snapshot's month to the close month; -1 = overdue, CLOSE_OFFSET_MAX = that or later."""
    return months_between(close_months, snapshot_month).clip(lower=-1, upper=CLOSE_OFFSET_MAX)


def same_moment(month: pd.Timestamp, cutoff: pd.Timestamp) -> pd.Timestamp:
    """The instant in ``month`` at the cutoff's day of month (or the month's last day) and time of day."""
    days = calendar.monthrange(month.year, month.month)[1]
    day = min(cutoff.day, days)
    return pd.Timestamp(month.year, month.month, day) + (cutoff - cutoff.normalize())


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


# ------------------------------------------------------------------------------------- inputs


def as_category(values: pd.Series) -> pd.Series:
    """The values as a categorical with text categories (one copy of each distinct value)."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype("string").astype("category")
    return values.cat.rename_categories(values.cat.categories.astype("string"))


def normalize_forecast_category(values: pd.Series) -> pd.Series:
    """History's API values (BestCase, Forecast) and the opportunity's labels, as labels (categorical)."""
    values = as_category(values)
    labels = [FORECAST_CATEGORY_LABELS.get(text.strip(), text.strip()) for text in values.cat.categories]
    distinct = list(dict.fromkeys(labels))
    lookup = np.array([*(distinct.index(label) for label in labels), -1], dtype=np.int64)  # code -1 = missing
    codes = lookup[values.cat.codes.to_numpy()]
    return pd.Series(pd.Categorical.from_codes(codes, categories=distinct), index=values.index)


def rep_teams(users: pd.DataFrame, roles: pd.DataFrame) -> pd.DataFrame:
    """One row per rep: ``rep_id, team`` (the role's name, ``(no team)`` without one)."""
    users = users.loc[:, ["rep_id", "user_role_id"]].astype("string")
    roles = roles.loc[:, ["user_role_id", "role_name"]].astype("string").drop_duplicates("user_role_id")
    teams = users.merge(roles, on="user_role_id", how="left")
    teams["team"] = teams["role_name"].astype("string").fillna(NO_TEAM)
    return teams.loc[:, ["rep_id", "team"]].drop_duplicates("rep_id").reset_index(drop=True)


class HistoryIndex:
    """Opportunity history sorted by (created_at, opportunity_history_id).

    The rows known before an instant are then a prefix, and an opportunity's state at that
    instant is its last row in the prefix (ties on created_at go to the larger history id).
    """

    def __init__(self, history: pd.DataFrame) -> None:
        created = pd.to_datetime(history["created_at"]).to_numpy(dtype="datetime64[ns]")
        ids = history["opportunity_history_id"]
        if ids.dtype == object or isinstance(ids.dtype, pd.CategoricalDtype):
            ids = ids.astype("string")  # compare ids as text; integer ranks of the ids work as well
        order = np.lexsort((ids.to_numpy(), created))
        known = ~np.isnat(created) & history["opportunity_id"].notna().to_numpy()
        order = order[known[order]]
        del ids, known

        def column(name: str) -> pd.Series:  # one column at a time: no second copy of the table
            return history[name].iloc[order].reset_index(drop=True)

        self.frame = pd.DataFrame(
            {
                "opportunity_id": as_category(column("opportunity_id")),
                "stage_name": as_category(column("stage_name")),
                "amount": pd.to_numeric(column("amount")).astype("float64"),
                "probability": pd.to_numeric(column("probability")).astype("float64"),
                "forecast_category": normalize_forecast_category(column("forecast_category")),
                "close_date": pd.to_datetime(column("close_date")).astype("datetime64[ns]"),
                "created_at": pd.Series(created[order]),
            }
        )
        self.frame["close_month"] = month_start(self.frame["close_date"])
        self._created = self.frame["created_at"].to_numpy()

    def rows_before(self, at: pd.Timestamp) -> pd.DataFrame:
        end = int(np.searchsorted(self._created, np.datetime64(pd.Timestamp(at), "ns"), side="left"))
        return self.frame.iloc[:end]

    def state_at(self, at: pd.Timestamp) -> pd.DataFrame:
        """Each opportunity's latest history row created strictly before ``at``."""
        return self.rows_before(at).drop_duplicates("opportunity_id", keep="last")


@dataclass
class ForecastInputs:
    """The staging tables, prepared once: sorted history, owners with teams, stage flags."""

    history: HistoryIndex
    # opportunity_id, owner_id, team, amount, is_won, close_month, created_at, and (when given)
    # current_stage, current_is_closed, current_is_won: the opportunity as it is now
    opportunities: pd.DataFrame
    stages: pd.DataFrame  # stage_name, is_closed, is_won, default_probability (0-100)
    _open: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict, repr=False)
    # stages the stage table does not list: closed/won as most opportunities now in them are
    learned_stages: pd.DataFrame = field(default_factory=lambda: _stage_flags_frame([], [], []))

    @classmethod
    def build(
        cls,
        history: pd.DataFrame,
        opportunities: pd.DataFrame,
        stages: pd.DataFrame,
        users: pd.DataFrame | None = None,
        roles: pd.DataFrame | None = None,
    ) -> ForecastInputs:
        columns = ["opportunity_id", "owner_id", "amount", "is_won", "close_date", "created_at"]
        opps = opportunities.loc[:, columns].dropna(subset=["opportunity_id", "owner_id"])
        opps = opps.drop_duplicates("opportunity_id")
        opps = opps.assign(
            opportunity_id=opps["opportunity_id"].astype("string"),
            owner_id=opps["owner_id"].astype("string"),
            amount=pd.to_numeric(opps["amount"]).astype("float64"),
            is_won=opps["is_won"].astype("boolean").fillna(False).astype(bool),
            close_month=month_start(opps["close_date"]),
            created_at=pd.to_datetime(opps["created_at"]).astype("datetime64[ns]"),
        )
        if users is not None and roles is not None:
            teams = rep_teams(users, roles).rename(columns={"rep_id": "owner_id"})
            opps = opps.merge(teams, on="owner_id", how="left")
        else:
            opps = opps.assign(team=pd.NA)
        opps["team"] = opps["team"].astype("string").fillna(NO_TEAM)
        stage_table = stages.loc[:, ["stage_name", "is_closed", "is_won", "default_probability"]].copy()
        stage_table["stage_name"] = stage_table["stage_name"].astype("string")
        stage_table = stage_table.dropna(subset=["stage_name"]).drop_duplicates("stage_name")
        stage_table["is_closed"] = _as_bool(stage_table["is_closed"])
        stage_table["is_won"] = _as_bool(stage_table["is_won"])
        stage_table["is_closed"] = stage_table["is_closed"] | stage_table["is_won"]
        stage_table["default_probability"] = pd.to_numeric(stage_table["default_probability"]).astype(float)
        stage_table = stage_table.reset_index(drop=True)
        keep = ["opportunity_id", "owner_id", "team", "amount", "is_won", "close_month", "created_at"]
        learned = _stage_flags_frame([], [], [])
        if {"stage_name", "is_closed"} <= set(opportunities.columns):
            current = opportunities.loc[:, ["opportunity_id", "stage_name", "is_closed", "is_won"]]
            current = current.dropna(subset=["opportunity_id"]).drop_duplicates("opportunity_id")
            current = pd.DataFrame(
                {
                    "opportunity_id": current["opportunity_id"].astype("string").to_numpy(),
                    "current_stage": current["stage_name"].astype("string").to_numpy(),
                    "current_is_won": _as_bool(current["is_won"]).to_numpy(),
                    "current_is_closed": (
                        _as_bool(current["is_closed"]) | _as_bool(current["is_won"])
                    ).to_numpy(),
                }
            )
            opps = opps.merge(current, on="opportunity_id", how="left")
            keep += ["current_stage", "current_is_closed", "current_is_won"]
            learned = learn_stage_flags(current, stage_table["stage_name"])
        return cls(
            HistoryIndex(history),
            opps.loc[:, keep].reset_index(drop=True),
            stage_table,
            learned_stages=learned,
        )

    def open_stages(self) -> list[str]:
        return self.stages.loc[~self.stages["is_closed"], "stage_name"].tolist()

    def state_at(self, at: pd.Timestamp) -> pd.DataFrame:
        return reconstruct_pipeline(self, at)

    def open_pipeline(self, at: pd.Timestamp) -> pd.DataFrame:
        """The opportunities open at ``at`` (kept: the backtest asks for the same instants again)."""
        at = pd.Timestamp(at)
        if at not in self._open:
            state = self.state_at(at)
            self._open[at] = state.loc[~state["is_closed"]].reset_index(drop=True)
        return self._open[at]


def _as_bool(values: pd.Series) -> pd.Series:
    """Flags as plain bools, missing as False."""
    return values.astype("boolean").fillna(False).astype(bool)


def _stage_flags_frame(names: list, closed: list, won: list) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stage_name": pd.Series(names, dtype="string"),
            "is_closed": pd.Series(closed, dtype=bool),
            "is_won": pd.Series(won, dtype=bool),
        }
    )


def learn_stage_flags(current: pd.DataFrame, listed: pd.Series) -> pd.DataFrame:
    """Closed and won of the stages the stage table does not list, from the opportunities now in
    them (``current_stage, current_is_closed, current_is_won``): Salesforce sets IsClosed and IsWon
    from the stage, so they are the stage's flags. A flag holds when more than half of those
    opportunities have it (a won stage is closed)."""
    unlisted = current.loc[current["current_stage"].notna() & ~current["current_stage"].isin(listed)]
    if unlisted.empty:
        return _stage_flags_frame([], [], [])
    shares = unlisted.groupby("current_stage", observed=True)[["current_is_closed", "current_is_won"]].mean()
    won = (shares["current_is_won"] > 0.5).to_numpy()
    closed = (shares["current_is_closed"] > 0.5).to_numpy() | won
    return _stage_flags_frame(shares.index.astype("string").tolist(), closed.tolist(), won.tolist())


def _lookup(stage: pd.Series, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each stage: listed in ``table`` (stage_name, is_closed, is_won), and its two flags."""
    positions = pd.Index(table["stage_name"].astype("string")).get_indexer(stage)
    listed = positions >= 0
    safe = np.where(listed, positions, 0)
    closed = table["is_closed"].to_numpy(dtype=bool)
    won = table["is_won"].to_numpy(dtype=bool)
    if not len(table):
        return listed, np.zeros(len(stage), dtype=bool), np.zeros(len(stage), dtype=bool)
    return listed, closed[safe] & listed, won[safe] & listed


def reconstruct_pipeline(inputs: ForecastInputs, at: pd.Timestamp) -> pd.DataFrame:
    """Every opportunity as it stood at ``at``, from history rows created strictly before ``at``.

    One row per opportunity that had a history row by then and still exists in the CRM, with
    STATE_COLUMNS. Owner and team are today's. Closed and won come from the stage table (the org's
    OpportunityStage, else the seed). A stage it does not list takes the opportunity's own
    IsClosed/IsWon when the opportunity is in that stage now, else the flags of the opportunities
    now in it (``learn_stage_flags``), else its history row's: closed-won in forecast category
    Closed, closed-lost in Omitted at probability 0, open otherwise.
    """
    state = inputs.history.state_at(pd.Timestamp(at))
    state = state.assign(opportunity_id=state["opportunity_id"].astype("string"))
    extra = [c for c in ("current_stage", "current_is_closed", "current_is_won") if c in inputs.opportunities]
    owners = inputs.opportunities.loc[:, ["opportunity_id", "owner_id", "team", *extra]]
    state = state.merge(owners, on="opportunity_id", how="inner")
    stage = state["stage_name"].astype("string")
    category = state["forecast_category"].astype("string")
    fallback_won = category.eq("Closed").fillna(False).to_numpy(dtype=bool)
    lost = (category.eq("Omitted").fillna(False) & state["probability"].eq(0)).to_numpy(dtype=bool)
    is_closed, is_won = fallback_won | lost, fallback_won
    learned, learned_closed, learned_won = _lookup(stage, inputs.learned_stages)
    is_closed = np.where(learned, learned_closed, is_closed)
    is_won = np.where(learned, learned_won, is_won)
    if extra:
        own = (state["current_stage"].astype("string") == stage).fillna(False).to_numpy(dtype=bool)
        is_closed = np.where(own, _as_bool(state["current_is_closed"]).to_numpy(), is_closed)
        is_won = np.where(own, _as_bool(state["current_is_won"]).to_numpy(), is_won)
    listed, listed_closed, listed_won = _lookup(stage, inputs.stages)
    state["is_closed"] = np.where(listed, listed_closed, is_closed).astype(bool)
    state["is_won"] = np.where(listed, listed_won, is_won).astype(bool)
    state["stage_name"] = stage
    state["forecast_category"] = category
    return state.loc[:, STATE_COLUMNS].reset_index(drop=True)


# -------------------------------------------------------------------------------- calibration


def calibration_instants(cutoff: pd.Timestamp, months: int = CALIBRATION_MONTHS) -> list[pd.Timestamp]:
    """The same moment (day of month, time) in each of the ``months`` months before the cutoff's."""
    end = first_of_month(cutoff)
    return [same_moment(add_months(end, -offset), cutoff) for offset in range(months, 0, -1)]


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

    Snapshots: the cutoff's moment of the month (its day and time) in each of the ``months``
    months before the cutoff's month. Every opportunity open at a snapshot is an observation,
    with its stage and close offset then (months from the snapshot's month to its close month,
    bucketed -1 = overdue .. CLOSE_OFFSET_MAX = that or later). For month offset j < ``horizon``
    it counts when month (snapshot month + j) ended before the cutoff's month, and it is a
    success when, as known at ``cutoff``, the opportunity is won with a close date in that month.
    Close offset = month offset is "won within its period"; other cells are deals won earlier or
    later than they were dated.

    ``applied_probability``: the team's rate with at least ``min_team_observations``
    observations, else the org's rate, else (the org has no observation) the stage's default
    probability where close offset = month offset and 0 elsewhere. A stage without a default
    probability (the stage table does not list it) leaves that on-time cell empty, source
    ``own``: each deal there uses its own Probability (``applied_probabilities``).
    """
    cutoff = pd.Timestamp(cutoff)
    end = first_of_month(cutoff)
    state = cutoff_state if cutoff_state is not None else inputs.state_at(cutoff)
    won = state.loc[state["is_won"], ["opportunity_id", "close_month"]].rename(
        columns={"close_month": "won_month"}
    )
    frames = []
    for instant in calibration_instants(cutoff, months):
        pipeline = inputs.open_pipeline(instant)
        snapshot_month = first_of_month(instant)
        frames.append(
            pd.DataFrame(
                {
                    "opportunity_id": pipeline["opportunity_id"],
                    "team": pipeline["team"],
                    "stage_name": pipeline["stage_name"],
                    "close_offset": close_offset_bucket(pipeline["close_month"], snapshot_month),
                    # how many months after the snapshot's month the cutoff's month starts
                    "months_resolved": int(months_between(pd.Series([end]), snapshot_month).iloc[0]),
                }
            )
        )
    observations = pd.concat(frames, ignore_index=True) if frames else _empty_observations()
    observations = observations.merge(won, on="opportunity_id", how="left")
    # months from the snapshot's month to the month it was won in (missing: not won by the cutoff)
    observations["won_offset"] = (
        months_between(observations["won_month"], end) + observations["months_resolved"]
    )
    observations = observations.dropna(subset=["close_offset"])
    # one row per distinct (team, stage, close offset, snapshot, outcome) with its count, then
    # one copy of those per month offset: small however many opportunities there are
    counted = (
        observations.groupby(
            ["team", "stage_name", "close_offset", "months_resolved", "won_offset"],
            observed=True,
            dropna=False,
        )
        .size()
        .rename("count")
        .reset_index()
    )
    cells = [
        counted.loc[counted["months_resolved"] > offset].assign(
            month_offset=offset,
            success=lambda frame, offset=offset: (
                frame["won_offset"].eq(offset).fillna(False).astype("int64") * frame["count"]
            ),
        )
        for offset in range(horizon)
    ]
    cell_frame = pd.concat(cells, ignore_index=True)
    cell_frame["close_offset"] = cell_frame["close_offset"].astype("int64")

    defaults = inputs.stages.set_index("stage_name")["default_probability"] / 100.0
    stage_names = list(dict.fromkeys([*inputs.open_stages(), *cell_frame["stage_name"].dropna().tolist()]))
    grid = pd.MultiIndex.from_product(
        [stage_names, range(-1, CLOSE_OFFSET_MAX + 1), range(horizon)], names=PROBABILITY_KEYS
    )
    org = (
        cell_frame.groupby(PROBABILITY_KEYS, observed=True)[["count", "success"]]
        .sum()
        .set_axis(["observations", "won_in_month"], axis=1)
        .reindex(grid, fill_value=0)
        .reset_index()
    )
    org["level"], org["member"] = "org", ORG_MEMBER
    org["probability"] = _rate(org["won_in_month"], org["observations"])
    org["default_probability"] = org["stage_name"].map(defaults).astype(float)
    on_time = org["close_offset"] == org["month_offset"]
    has_rate = org["observations"] > 0
    fallback = org["default_probability"].where(on_time, 0.0)  # empty on time: the deal's own
    org["applied_probability"] = org["probability"].where(has_rate, fallback)
    has_default = org["default_probability"].notna()
    org["probability_source"] = np.where(
        has_rate, "org", np.where(on_time, np.where(has_default, "default", "own"), "none")
    )

    team = (
        cell_frame.groupby(["team", *PROBABILITY_KEYS], observed=True)[["count", "success"]]
        .sum()
        .set_axis(["observations", "won_in_month"], axis=1)
        .reset_index()
        .rename(columns={"team": "member"})
    )
    team["level"] = "team"
    team["probability"] = _rate(team["won_in_month"], team["observations"])
    team["default_probability"] = team["stage_name"].map(defaults).astype(float)
    org_cells = org.set_index(PROBABILITY_KEYS)
    team_keys = pd.MultiIndex.from_frame(team[PROBABILITY_KEYS])
    enough = team["observations"] >= min_team_observations
    org_applied = org_cells["applied_probability"].reindex(team_keys).to_numpy()
    org_source = org_cells["probability_source"].reindex(team_keys).to_numpy()
    team["applied_probability"] = team["probability"].where(enough, org_applied)
    team["probability_source"] = np.where(enough, "team", org_source)

    table = pd.concat([org, team], ignore_index=True)
    table["window_start"] = add_months(end, -months) if months else pd.NaT
    table["window_end"] = add_months(end, -1) if months else pd.NaT
    table = table.astype(
        {"observations": "int64", "won_in_month": "int64", "close_offset": "int64", "month_offset": "int64"}
    )
    return table.loc[:, PROBABILITY_COLUMNS[:-1]].reset_index(drop=True)


def _empty_observations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": pd.Series(dtype="string"),
            "team": pd.Series(dtype="string"),
            "stage_name": pd.Series(dtype="string"),
            "close_offset": pd.Series(dtype="Int64"),
            "months_resolved": pd.Series(dtype="int64"),
        }
    )


def _rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    denominator = denominator.astype(float)
    return (numerator.astype(float) / denominator.where(denominator > 0)).astype(float)


def applied_probabilities(pipeline: pd.DataFrame, probabilities: pd.DataFrame) -> pd.Series:
    """Each pipeline row's calibrated probability of being won in its target month.

    ``pipeline`` has team, stage_name, close_offset, month_offset and probability (0-100). The
    team's cell, else the org's, else (a stage the calibration never saw) the row's own
    Probability / 100 where close offset = month offset and 0 elsewhere.
    """
    offsets = {"close_offset": "Int64", "month_offset": "Int64"}
    team_rows = probabilities.loc[
        probabilities["level"] == "team", ["member", *PROBABILITY_KEYS, "applied_probability"]
    ].rename(columns={"member": "team", "applied_probability": "team_probability"})
    org_rows = probabilities.loc[probabilities["level"] == "org", [*PROBABILITY_KEYS, "applied_probability"]]
    org_rows = org_rows.rename(columns={"applied_probability": "org_probability"})
    keyed = pipeline.loc[:, ["team", *PROBABILITY_KEYS, "probability"]].reset_index(drop=True).astype(offsets)
    keyed = keyed.merge(team_rows.astype(offsets), on=["team", *PROBABILITY_KEYS], how="left")
    keyed = keyed.merge(org_rows.astype(offsets), on=PROBABILITY_KEYS, how="left")
    on_time = keyed["close_offset"].eq(keyed["month_offset"]).fillna(False).astype(bool)
    own = (keyed["probability"].astype(float) / 100.0).where(on_time, 0.0)
    result = keyed["team_probability"].fillna(keyed["org_probability"]).fillna(own).fillna(0.0)
    return pd.Series(result.to_numpy(dtype=float), index=pipeline.index)


# ------------------------------------------------------------------------------------ run rate


def run_rate(
    inputs: ForecastInputs,
    cutoff: pd.Timestamp,
    *,
    months: int = RUN_RATE_MONTHS,
    cutoff_state: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per rep: average monthly bookings from deals created and won within the same month.

    Over the ``months`` complete months before the cutoff's month; a deal counts for month m when
    it was created in m and, as known at ``cutoff``, is won with a close date in m. Months
    without one count as 0. ``run_rate`` counts deals created any time in the month;
    ``run_rate_rest_of_month`` only those created at or after the cutoff's moment of that month
    (its day and time), the part still to come when the cutoff is mid-month. Columns
    ``owner_id, team, run_rate, run_rate_rest_of_month``.
    """
    cutoff = pd.Timestamp(cutoff)
    end = first_of_month(cutoff)
    state = cutoff_state if cutoff_state is not None else inputs.state_at(cutoff)
    won = state.loc[state["is_won"], ["opportunity_id", "owner_id", "team", "amount", "close_month"]]
    won = won.merge(inputs.opportunities.loc[:, ["opportunity_id", "created_at"]], on="opportunity_id")
    won = won.loc[(won["close_month"] >= add_months(end, -months)) & (won["close_month"] < end)]
    won = won.loc[month_start(won["created_at"]) == won["close_month"]].copy()
    day = won["close_month"].dt.days_in_month.clip(upper=cutoff.day)
    moment = won["close_month"] + pd.to_timedelta(day - 1, unit="D") + (cutoff - cutoff.normalize())
    won["late"] = won["created_at"] >= moment  # created at or after the cutoff's moment of the month
    won["amount"] = won["amount"].fillna(0.0)
    won["amount_late"] = won["amount"].where(won["late"], 0.0)
    rates = won.groupby(["owner_id", "team"], observed=True)[["amount", "amount_late"]].sum() / months
    rates = rates.rename(
        columns={"amount": "run_rate", "amount_late": "run_rate_rest_of_month"}
    ).reset_index()
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

    The month's pipeline is the opportunities open at the cutoff with a close date in the
    month: commit = its forecast category Commit; best_case = Best Case plus Commit;
    weighted_pipeline = Σ Amount × Probability / 100. closed_to_date = won with a close date in
    the month. For the cutoff's month and later ones, calibrated_pipeline = Σ Amount × calibrated
    probability over every open opportunity (whatever its close date), each with its chance of
    being won in this month; run_rate = the rep's rest-of-month run rate in the cutoff's month,
    the full one later. Both are 0 for months before the cutoff's. forecast = closed_to_date +
    calibrated_pipeline + run_rate. A missing Amount counts as 0.
    """
    month, cutoff = pd.Timestamp(month), pd.Timestamp(cutoff)
    cutoff_month = first_of_month(cutoff)
    target = int(months_between(pd.Series([month]), cutoff_month).iloc[0])
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
    keys = ["owner_id", "team"]
    parts = [
        closed.groupby(keys, observed=True)[["closed_to_date"]].sum(),
        in_month.groupby(keys, observed=True)[["commit", "best_case", "weighted_pipeline"]].sum(),
    ]
    if target >= 0:
        candidates = open_deals.assign(
            close_offset=close_offset_bucket(open_deals["close_month"], cutoff_month), month_offset=target
        )
        candidates["calibrated_pipeline"] = candidates["amount"].fillna(0.0) * applied_probabilities(
            candidates, probabilities
        )
        parts.append(candidates.groupby(keys, observed=True)[["calibrated_pipeline"]].sum())
        rate_column = "run_rate_rest_of_month" if target == 0 else "run_rate"
        parts.append(run_rates.set_index(keys)[[rate_column]].rename(columns={rate_column: "run_rate"}))
    rows = pd.concat(parts, axis=1).fillna(0.0)
    rows = rows.reindex(columns=COMPONENTS[:-1], fill_value=0.0)
    rows["forecast"] = rows["closed_to_date"] + rows["calibrated_pipeline"] + rows["run_rate"]
    rows = rows.rename_axis(keys).reset_index()
    rows.insert(2, "month_start", month)
    return rows.astype({column: float for column in COMPONENTS})


def roll_up(rep_rows: pd.DataFrame, value_columns: list[str], by: list[str]) -> pd.DataFrame:
    """Rep rows (owner_id, team, *by, *values) as rep, team and org rows: ``level, member, *by, *values``."""
    reps = rep_rows.assign(level="rep", member=rep_rows["owner_id"])
    teams = rep_rows.groupby(["team", *by], observed=True, sort=False)[value_columns].sum().reset_index()
    teams = teams.rename(columns={"team": "member"}).assign(level="team")
    org = rep_rows.groupby(by, observed=True, sort=False)[value_columns].sum().reset_index()
    org = org.assign(level="org", member=ORG_MEMBER)
    columns = ["level", "member", *by, *value_columns]
    return pd.concat([reps[columns], teams[columns], org[columns]], ignore_index=True)


def method_forecasts(components: pd.DataFrame) -> pd.DataFrame:
    """Each method's forecast of a month's bookings: what is closed plus the method's pipeline."""
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
    opportunities = inputs.opportunities
    won = opportunities.loc[opportunities["is_won"] & opportunities["close_month"].isin(list(months))]
    return (
        won.assign(actual=won["amount"].fillna(0.0))
        .groupby(["owner_id", "team", "close_month"], observed=True)["actual"]
        .sum()
        .reset_index()
        .rename(columns={"close_month": "month_start"})
    )


@dataclass
class Backtest:
    detail: pd.DataFrame  # ACCURACY_COLUMNS but as_of
    summary: pd.DataFrame  # SUMMARY_COLUMNS but as_of
    components: pd.DataFrame  # rep-level forecast components of each replayed month


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

    For month m the cutoff is m's first day at 00:00: its pipeline, calibration and run rate come
    from history rows created before it, and each method's forecast of m is compared with m's
    actual bookings as known now. One month's state is held in memory at a time.
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
    components = pd.concat(frames, ignore_index=True)
    rep_rows = pd.concat(
        [components.loc[:, ["owner_id", "team", "month_start"]], method_forecasts(components)], axis=1
    )
    keys = ["owner_id", "team", "month_start"]
    rep_rows = rep_rows.merge(actual_bookings(inputs, replayed), on=keys, how="outer")
    values = [*METHODS, "actual"]
    rep_rows[values] = rep_rows[values].fillna(0.0)
    detail = roll_up(rep_rows, values, by=["month_start"]).melt(
        id_vars=["level", "member", "month_start", "actual"],
        value_vars=list(METHODS),
        var_name="method",
        value_name="forecast",
    )
    detail = detail.loc[(detail["forecast"] != 0) | (detail["actual"] != 0)].copy()
    detail["error"] = detail["forecast"] - detail["actual"]
    actual = detail["actual"].where(detail["actual"] > 0)
    detail["absolute_percentage_error"] = (detail["error"].abs() / actual).astype(float)
    detail = _sort(detail, ["member", "method", "month_start"]).loc[:, ACCURACY_COLUMNS[:-1]]
    detail = detail.reset_index(drop=True)
    return Backtest(detail, summarize_backtest(detail, len(replayed)), components)


def summarize_backtest(detail: pd.DataFrame, months: int) -> pd.DataFrame:
    """Per level and method: MAPE over rows whose actual is positive; bias = Σ error / Σ actual."""
    rows = []
    for level in LEVELS:
        for method in METHODS:
            chosen = detail.loc[(detail["level"] == level) & (detail["method"] == method)]
            scored = chosen["absolute_percentage_error"].dropna()
            total_actual = float(chosen["actual"].sum())
            total_forecast = float(chosen["forecast"].sum())
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
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:-1])


def interval_factors(
    detail: pd.DataFrame, quantiles: tuple[float, float] = INTERVAL_QUANTILES
) -> dict[str, tuple[float, float]]:
    """Per level: the 10th and 90th percentiles of the calibrated method's relative error.

    Relative error = (actual − forecast) / forecast, over the level's backtest rows (every
    member and month) with a positive calibrated forecast; percentiles interpolate linearly.
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
    """The forecast of each month of the as_of quarter and the next, and the calibration it used.

    Cutoff: the start of the as_of day. Rows: every rep with a figure in any of the six months
    (all six months each), every team of those reps, and the org. forecast_low / forecast_high
    widen what is still to come (calibrated_pipeline + run_rate) by the level's backtest
    percentiles of relative error: closed_to_date + to_come × (1 + p10) and × (1 + p90); empty
    when the backtest has no positive calibrated forecast at that level.
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
    rows = roll_up(rep_rows, COMPONENTS, by=["month_start"])
    if not (rows["level"] == "org").any():  # nothing at all: the org still gets its six rows
        org = pd.DataFrame({"level": "org", "member": ORG_MEMBER, "month_start": months})
        rows = pd.concat([rows, org.assign(**dict.fromkeys(COMPONENTS, 0.0))], ignore_index=True)
    factors = interval_factors(accuracy)
    to_come = rows["calibrated_pipeline"] + rows["run_rate"]
    low = rows["level"].map({level: pair[0] for level, pair in factors.items()}).astype(float)
    high = rows["level"].map({level: pair[1] for level, pair in factors.items()}).astype(float)
    rows["forecast_low"] = rows["closed_to_date"] + to_come * (1.0 + low)
    rows["forecast_high"] = rows["closed_to_date"] + to_come * (1.0 + high)
    rows = _sort(rows, ["member", "month_start"]).loc[:, SALES_FORECAST_COLUMNS[:-1]]
    return rows.reset_index(drop=True), probabilities


def _sort(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    order = {level: index for index, level in enumerate(LEVELS)}
    ordered = frame.assign(_level=frame["level"].map(order)).sort_values(["_level", *columns], kind="stable")
    return ordered.drop(columns="_level")


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
    """The backtest, then the live forecast with its interval; every table gets an ``as_of`` column."""
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
