"""The sales forecast and its backtest as one Dagster asset: staging tables in, four mart tables out.

The logic lives in ``orchestration.forecasting`` (pure pandas); this module reads the warehouse,
runs it, and replaces the mart tables in one transaction. docs/metrics.md ("Sales forecast")
defines every column.
"""

import os
from collections.abc import Iterator

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    multi_asset,
)

from ingestion.contract import crm_family, staging_model
from orchestration import settings
from orchestration.assets.server_warehouse import server_mode, write_to_server
from orchestration.forecasting import (
    ACCURACY_COLUMNS,
    METHODS,
    PROBABILITY_COLUMNS,
    SALES_FORECAST_COLUMNS,
    SUMMARY_COLUMNS,
    ForecastInputs,
    ForecastResult,
    build_forecast,
)
from orchestration.resources import WarehouseResource

MARTS_SCHEMA = "marts"
FORECAST_OWNERS = ["team:sales-analysts"]
FISCAL_YEAR_START_ENV = "SALESOPS_FISCAL_YEAR_START_MONTH"

SALES_FORECAST_KEY = AssetKey([MARTS_SCHEMA, "sales_forecast"])
FORECAST_ACCURACY_KEY = AssetKey([MARTS_SCHEMA, "forecast_accuracy"])
FORECAST_ACCURACY_SUMMARY_KEY = AssetKey([MARTS_SCHEMA, "forecast_accuracy_summary"])
FORECAST_PROBABILITIES_KEY = AssetKey([MARTS_SCHEMA, "forecast_stage_probabilities"])

# Salesforce's stages are the org's OpportunityStage, else the seed; HubSpot's come from its pipelines.
STAGES_MODEL = (
    "stg_crm__opportunity_stages" if crm_family() == "hubspot" else staging_model("opportunity_stages")
)
STAGES_TABLE = f"staging.{STAGES_MODEL}"

UPSTREAM_KEYS = [
    AssetKey(["staging", staging_model("opportunities")]),
    AssetKey(["staging", staging_model("opportunity_history")]),
    AssetKey(["staging", staging_model("users")]),
    AssetKey(["staging", staging_model("user_roles")]),
    AssetKey(["staging", STAGES_MODEL]),
]

_SQL_TYPES = {
    "level": "VARCHAR",
    "member": "VARCHAR",
    "method": "VARCHAR",
    "stage_name": "VARCHAR",
    "probability_source": "VARCHAR",
    "month_start": "DATE",
    "window_start": "DATE",
    "window_end": "DATE",
    "as_of": "DATE",
    "months": "INTEGER",
    "observations": "BIGINT",
    "won_in_month": "BIGINT",
    "close_offset": "INTEGER",
    "month_offset": "INTEGER",
}  # every other column is DOUBLE

# table name -> (columns, ORDER BY)
TABLES = {
    "sales_forecast": (SALES_FORECAST_COLUMNS, "level, member, month_start"),
    "forecast_accuracy": (ACCURACY_COLUMNS, "level, member, method, month_start"),
    "forecast_accuracy_summary": (SUMMARY_COLUMNS, "level, method"),
    "forecast_stage_probabilities": (
        PROBABILITY_COLUMNS,
        "level, member, stage_name, close_offset, month_offset",
    ),
}

INPUT_QUERIES = {
    "history": f"""
        SELECT opportunity_history_id, opportunity_id, stage_name, amount, probability,
               forecast_category, close_date, created_at
        FROM staging.{staging_model("opportunity_history")}""",
    "opportunities": f"""
        SELECT opportunity_id, owner_id, amount, is_won, close_date, created_at, stage_name, is_closed
        FROM staging.{staging_model("opportunities")}""",
    "users": f"SELECT rep_id, user_role_id FROM staging.{staging_model('users')}",
    "roles": f"SELECT user_role_id, role_name FROM staging.{staging_model('user_roles')}",
    "stages": f"SELECT stage_name, is_closed, is_won, default_probability FROM {STAGES_TABLE}",
}


def fiscal_year_start_month() -> int:
    """SALESOPS_FISCAL_YEAR_START_MONTH (1-12, default 1: calendar quarters)."""
    value = os.environ.get(FISCAL_YEAR_START_ENV, "").strip() or "1"
    if not value.isdigit() or not 1 <= int(value) <= 12:
        raise ValueError(f"{FISCAL_YEAR_START_ENV} must be a month number 1-12, not {value!r}")
    return int(value)


def read_frame(connection: duckdb.DuckDBPyConnection, query: str, batch_rows: int = 200_000) -> pd.DataFrame:
    """A query's rows through Arrow in batches, text dictionary-encoded: pandas gets categoricals,
    never one Python object per value.

    The history id is replaced by its rank among the ids (same order, eight bytes), which is all
    the forecast needs of it: ties between changes at the same instant go to the larger id.
    """
    reader = connection.execute(query).fetch_record_batch(batch_rows)
    batches = []
    for batch in reader:
        columns = {}
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if name != "opportunity_history_id" and pa.types.is_string(column.type):
                column = column.dictionary_encode()
            columns[name] = column
        batches.append(pa.record_batch(columns))
    table = pa.Table.from_batches(batches, schema=None if batches else reader.schema)
    del batches
    table = table.unify_dictionaries().combine_chunks()
    if "opportunity_history_id" in table.column_names:
        index = table.column_names.index("opportunity_history_id")
        ranks = pc.rank(table.column(index), sort_keys="ascending", tiebreaker="dense")
        table = table.set_column(index, "opportunity_history_id", ranks)
    return table.to_pandas(date_as_object=False)


def read_inputs(connection: duckdb.DuckDBPyConnection) -> ForecastInputs:
    frames = {name: read_frame(connection, query) for name, query in INPUT_QUERIES.items()}
    return ForecastInputs.build(
        frames.pop("history"), frames.pop("opportunities"), frames["stages"], frames["users"], frames["roles"]
    )


def _select_list(columns: list[str]) -> str:
    return ", ".join(
        f'CAST("{column}" AS {_SQL_TYPES.get(column, "DOUBLE")}) AS "{column}"' for column in columns
    )


def write_tables(connection: duckdb.DuckDBPyConnection, frames: dict[str, pd.DataFrame]) -> None:
    """Build each table as ``<name>__new`` and swap all of them in, in one transaction."""
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {MARTS_SCHEMA}")
    connection.begin()
    try:
        for name, frame in frames.items():
            columns, order = TABLES[name]
            connection.register("_forecast_frame", frame.loc[:, columns])
            try:
                connection.execute(
                    f"CREATE OR REPLACE TABLE {MARTS_SCHEMA}.{name}__new AS "
                    f"SELECT {_select_list(columns)} FROM _forecast_frame ORDER BY {order}"
                )
            finally:
                connection.unregister("_forecast_frame")
        for name in frames:
            connection.execute(f"DROP TABLE IF EXISTS {MARTS_SCHEMA}.{name}")
            connection.execute(f"ALTER TABLE {MARTS_SCHEMA}.{name}__new RENAME TO {name}")
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


def read_method_mape(connection: duckdb.DuckDBPyConnection, level: str = "org") -> dict[str, float]:
    """Each method's MAPE at ``level`` from the last backtest (for the run summary); {} before one."""
    found = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [MARTS_SCHEMA, "forecast_accuracy_summary"],
    ).fetchone()
    if not found or not found[0]:
        return {}
    rows = connection.execute(
        f"SELECT method, mape FROM {MARTS_SCHEMA}.forecast_accuracy_summary "
        "WHERE level = ? AND mape IS NOT NULL",
        [level],
    ).fetchall()
    values = {method: float(mape) for method, mape in rows}
    return {method: values[method] for method in METHODS if method in values}


COLUMN_DESCRIPTIONS: dict[AssetKey, dict[str, str]] = {
    SALES_FORECAST_KEY: {
        "level": "rep, team or org", "member": "rep_id, team name, or 'org'",
        "month_start": "first day of the forecast month",
        "closed_to_date": "won Amount with CloseDate in the month, up to as_of",
        "commit": "open Amount in forecast category Commit closing in the month",
        "best_case": "open Amount in Best Case or Commit closing in the month",
        "weighted_pipeline": "sum of Amount x Probability / 100 of open deals closing in the month",
        "calibrated_pipeline": "sum over open deals of Amount x the calibrated chance of winning that month",
        "run_rate": "expected bookings from deals not yet created (trailing created-and-won average)",
        "forecast": "closed_to_date + calibrated_pipeline + run_rate",
        "forecast_low": "lower end of the 80% interval from the backtest's errors",
        "forecast_high": "upper end of the 80% interval from the backtest's errors",
        "as_of": "the run's reference date",
    },
    FORECAST_ACCURACY_KEY: {
        "level": "rep, team or org", "member": "rep_id, team name, or 'org'",
        "method": "weighted_pipeline, commit, best_case or calibrated",
        "month_start": "the backtest month",
        "forecast": "the method's forecast made on the month's first day",
        "actual": "won Amount with CloseDate in the month", "error": "forecast - actual",
        "absolute_percentage_error": "|error| / actual; empty when actual is 0",
        "as_of": "the run's reference date",
    },
    FORECAST_ACCURACY_SUMMARY_KEY: {
        "level": "rep, team or org", "method": "the forecast method",
        "months": "backtest months", "observations": "rows scored",
        "mape": "mean absolute percentage error (rows with actual > 0)",
        "bias": "sum of errors / sum of actuals (positive: over-forecast)",
        "total_forecast": "sum of forecasts", "total_actual": "sum of actuals",
        "as_of": "the run's reference date",
    },
    FORECAST_PROBABILITIES_KEY: {
        "level": "org or team", "member": "'org' or the team name", "stage_name": "the stage",
        "close_offset": "months from the snapshot month to the deal's close month (-1: overdue)",
        "month_offset": "months from the snapshot month to the forecast month",
        "observations": "deal snapshots observed", "won_in_month": "of those, won in that month",
        "probability": "won_in_month / observations",
        "applied_probability": "the probability used (team, else org, else the stage default; "
                               "empty: each deal's own Probability)",
        "probability_source": "team, org, default, own or none",
        "default_probability": "the CRM's default probability for the stage, as a fraction",
        "window_start": "first snapshot month of the calibration window",
        "window_end": "last snapshot month of the calibration window",
        "as_of": "the run's reference date",
    },
}  # fmt: skip


def _spec(key: AssetKey, description: str) -> AssetSpec:
    columns = [TableColumn(name, description=text) for name, text in COLUMN_DESCRIPTIONS[key].items()]
    return AssetSpec(
        key,
        description=description,
        deps=UPSTREAM_KEYS,
        group_name="marts",
        owners=FORECAST_OWNERS,
        kinds={"python", "duckdb"},
        metadata={"dagster/column_schema": TableSchema(columns=columns)},
    )


@multi_asset(
    specs=[
        _spec(
            SALES_FORECAST_KEY,
            "Forecast per rep, team and org for each month of the as_of quarter and the next: closed, "
            "commit, best case, weighted and calibrated pipeline, run rate, forecast and its 80% interval.",
        ),
        _spec(
            FORECAST_ACCURACY_KEY,
            "Backtest of the last 8 completed months: each method's forecast from the pipeline as it stood "
            "on the month's first day, against actual bookings (error, absolute percentage error).",
        ),
        _spec(
            FORECAST_ACCURACY_SUMMARY_KEY,
            "MAPE and bias of each forecast method per level over the backtest months.",
        ),
        _spec(
            FORECAST_PROBABILITIES_KEY,
            "Calibrated probabilities behind the forecast: per stage, close-date offset and month offset, "
            "org-wide and per team, with their observation counts.",
        ),
    ],
    name="sales_forecast_assets",
)
def sales_forecast_assets(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[MaterializeResult]:
    """Reads staging, runs the backtest and the forecast in pandas, and swaps in the four tables."""
    as_of = settings.as_of()
    fiscal_start = fiscal_year_start_month()
    with warehouse.warehouse().connect() as connection:
        inputs = read_inputs(connection)
        result = build_forecast(inputs, as_of, fiscal_year_start_month=fiscal_start)
        del inputs
        frames = _frames(result)
        write_tables(connection, frames)
        if server_mode():  # BI tools reading the server's marts see the forecast too
            written = write_to_server(connection, MARTS_SCHEMA, frames)
            context.log.info(f"forecast: {len(written)} tables written to the server warehouse's marts")
    org = result.summary.loc[result.summary["level"] == "org"].set_index("method")
    mape = {f"mape_{method}": _number(org["mape"].get(method)) for method in METHODS}
    bias = {f"bias_{method}": _number(org["bias"].get(method)) for method in METHODS}
    context.log.info(
        "forecast backtest (org MAPE): " + ", ".join(f"{name}={value}" for name, value in mape.items())
    )
    shared = {"as_of": as_of.isoformat(), "fiscal_year_start_month": fiscal_start}
    yield MaterializeResult(
        asset_key=SALES_FORECAST_KEY,
        metadata={**shared, "dagster/row_count": len(frames["sales_forecast"]), **mape},
    )
    yield MaterializeResult(
        asset_key=FORECAST_ACCURACY_KEY,
        metadata={
            **shared,
            "dagster/row_count": len(frames["forecast_accuracy"]),
            "backtest_months": int(result.summary["months"].max()) if len(result.summary) else 0,
            **mape,
            **bias,
        },
    )
    yield MaterializeResult(
        asset_key=FORECAST_ACCURACY_SUMMARY_KEY,
        metadata={
            **shared,
            "dagster/row_count": len(frames["forecast_accuracy_summary"]),
            "summary": MetadataValue.md(_summary_markdown(result.summary)),
            **mape,
        },
    )
    yield MaterializeResult(
        asset_key=FORECAST_PROBABILITIES_KEY,
        metadata={**shared, "dagster/row_count": len(frames["forecast_stage_probabilities"])},
    )


def _frames(result: ForecastResult) -> dict[str, pd.DataFrame]:
    return {
        "sales_forecast": result.sales_forecast,
        "forecast_accuracy": result.accuracy,
        "forecast_accuracy_summary": result.summary,
        "forecast_stage_probabilities": result.probabilities,
    }


def _number(value: object) -> float | None:
    """A float for metadata; None (shown empty) when the backtest could not score the method."""
    if value is None or pd.isna(value):
        return None
    return round(float(value), 4)


def _summary_markdown(summary: pd.DataFrame) -> str:
    lines = ["| level | method | MAPE | bias | scored |", "|---|---|---|---|---|"]
    for row in summary.itertuples(index=False):
        mape = "" if pd.isna(row.mape) else f"{row.mape:.1%}"
        bias = "" if pd.isna(row.bias) else f"{row.bias:+.1%}"
        lines.append(f"| {row.level} | {row.method} | {mape} | {bias} | {row.observations} |")
    return "\n".join(lines)
