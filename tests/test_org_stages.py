"""Stages from the org itself (issue 15, item 1): every mart and the forecast, values by hand.

Two tiny orgs, each built once by the real nightly job (as_of 2026-05-20, a Wednesday) from a
hand-written SQLite replica:

* **custom**: the org's own sales process in OpportunityStage, and only those names in
  Opportunity and OpportunityHistory: Discover (SortOrder 10, 10 %), Demo (20, 40 %; its label is
  "Product Demo"), Contracting (30, 80 %; no ApiName, so its label), Signed (40, closed won) and
  Lost (50, closed lost). Nothing of the standard process (the seed) appears anywhere.
* **unknown**: no OpportunityStage rows (the seed's standard process stands in), and five
  opportunities whose stages are in neither: Booked (won), Dead (lost), Intro Call (open, twice),
  plus history through Verbal Yes and Parked. They still count by their own IsClosed / IsWon /
  Probability, are listed in the coordinators' worklist (unknown_stage) and warn in the staging
  check stg_opportunity_stage_known.

History rows are at 10:00 UTC, so days in a stage are whole days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from ingestion.contract import CRM_CONTRACT
from tests.conftest import execute_nightly, pipeline_env
from tests.crm_fixtures import create_crm, insert_rows

AS_OF = date(2026, 5, 20)
MODSTAMP = "2026-05-19T00:00:00Z"
Q1, Q2 = date(2026, 1, 1), date(2026, 4, 1)
FORECAST_MONTHS = [date(2026, month, 1) for month in range(4, 10)]  # the as_of quarter and the next


def d(text: str) -> date:
    return date.fromisoformat(text)


# ======================================================================== the two orgs, by hand

USERROLES = [
    {"Id": "R0", "Name": "Sales", "ParentRoleId": None},
    {"Id": "R1", "Name": "AE", "ParentRoleId": "R0"},
]
USERS = [
    {"Id": "U0", "Name": "Mia Manager", "Email": "mia@acme.example", "UserRoleId": "R0", "IsActive": "true",
     "TimeZoneSidKey": "UTC"},
    {"Id": "U1", "Name": "Ana Ames", "Email": "ana@acme.example", "UserRoleId": "R1", "ManagerId": "U0",
     "IsActive": "true", "TimeZoneSidKey": "UTC"},
    {"Id": "U2", "Name": "Ben Burr", "Email": "ben@acme.example", "UserRoleId": "R1", "ManagerId": "U0",
     "IsActive": "true", "TimeZoneSidKey": "UTC"},
]  # fmt: skip
ACCOUNTS = [
    {"Id": "A1", "Name": "Globex", "Industry": "Manufacturing", "OwnerId": "U1"},
    {"Id": "A2", "Name": "Initech", "Industry": "Technology", "OwnerId": "U2"},
]

STAGE_COLUMNS = ("Id", "MasterLabel", "ApiName", "SortOrder", "IsActive", "IsClosed", "IsWon",
                 "DefaultProbability", "ForecastCategoryName")  # fmt: skip
CUSTOM_STAGES = [
    # listed out of order: SortOrder decides
    ("01J4", "Signed", "Signed", "40", "true", "true", "true", "100", "Closed"),
    ("01J1", "Discover", "Discover", "10", "true", "false", "false", "10", "Pipeline"),
    ("01J5", "Lost", "Lost", "50", "true", "true", "false", "0", "Omitted"),
    ("01J2", "Product Demo", "Demo", "20", "true", "false", "false", "40", "Pipeline"),
    ("01J3", "Contracting", None, "30", "true", "false", "false", "80", "Commit"),
]  # fmt: skip

OPPORTUNITY_COLUMNS = ("Id", "Name", "AccountId", "OwnerId", "StageName", "Amount", "Probability",
                       "ForecastCategoryName", "CloseDate", "IsClosed", "IsWon", "CreatedDate")  # fmt: skip
HISTORY_COLUMNS = ("Id", "OpportunityId", "StageName", "Amount", "Probability", "ForecastCategory",
                   "CloseDate", "CreatedDate")  # fmt: skip

CUSTOM_OPPORTUNITIES = [
    # Q1 2026 cohort
    ("O1", "Globex platform", "A1", "U1", "Signed", "10000", "100", "Closed", "2026-03-10", "true", "true",
     "2026-01-12T10:00:00Z"),
    ("O2", "Initech pilot", "A2", "U1", "Lost", "5000", "0", "Omitted", "2026-03-15", "true", "false",
     "2026-02-02T10:00:00Z"),
    ("O3", "Globex add-on", "A1", "U2", "Lost", "3000", "0", "Omitted", "2026-02-24", "true", "false",
     "2026-02-10T10:00:00Z"),
    # Q2 2026 cohort
    ("O4", "Initech rollout", "A2", "U1", "Contracting", "20000", "80", "Commit", "2026-06-15", "false",
     "false", "2026-04-06T10:00:00Z"),
    ("O5", "Globex analytics", "A1", "U2", "Demo", "8000", "40", "Pipeline", "2026-05-29", "false", "false",
     "2026-04-08T10:00:00Z"),
    ("O6", "Initech services", "A2", "U2", "Signed", "12000", "100", "Closed", "2026-05-12", "true", "true",
     "2026-04-15T10:00:00Z"),
    ("O7", "Globex training", "A1", "U1", "Discover", "4000", "10", "Pipeline", "2026-07-31", "false",
     "false", "2026-05-04T10:00:00Z"),
    ("O8", "Initech support", "A2", "U2", "Lost", "6000", "0", "Omitted", "2026-05-18", "true", "false",
     "2026-04-20T10:00:00Z"),
]  # fmt: skip

CUSTOM_HISTORY = [
    ("H01", "O1", "Discover", "10000", "10", "Pipeline", "2026-03-31", "2026-01-12T10:00:00Z"),
    ("H02", "O1", "Demo", "10000", "40", "Pipeline", "2026-03-31", "2026-01-26T10:00:00Z"),
    ("H03", "O1", "Contracting", "10000", "80", "Forecast", "2026-03-31", "2026-02-16T10:00:00Z"),
    ("H04", "O1", "Signed", "10000", "100", "Closed", "2026-03-10", "2026-03-10T10:00:00Z"),
    ("H05", "O2", "Discover", "5000", "10", "Pipeline", "2026-04-30", "2026-02-02T10:00:00Z"),
    ("H06", "O2", "Demo", "5000", "40", "Pipeline", "2026-04-30", "2026-02-20T10:00:00Z"),
    ("H07", "O2", "Lost", "5000", "0", "Omitted", "2026-03-15", "2026-03-15T10:00:00Z"),
    ("H08", "O3", "Discover", "3000", "10", "Pipeline", "2026-03-31", "2026-02-10T10:00:00Z"),
    ("H09", "O3", "Lost", "3000", "0", "Omitted", "2026-02-24", "2026-02-24T10:00:00Z"),
    ("H10", "O4", "Discover", "20000", "10", "Pipeline", "2026-06-15", "2026-04-06T10:00:00Z"),
    ("H11", "O4", "Demo", "20000", "40", "Pipeline", "2026-06-15", "2026-04-13T10:00:00Z"),
    ("H12", "O4", "Contracting", "20000", "80", "Forecast", "2026-06-15", "2026-04-27T10:00:00Z"),
    ("H13", "O5", "Discover", "8000", "10", "Pipeline", "2026-05-29", "2026-04-08T10:00:00Z"),
    ("H14", "O5", "Demo", "8000", "40", "Pipeline", "2026-05-29", "2026-04-22T10:00:00Z"),
    ("H15", "O6", "Discover", "12000", "10", "Pipeline", "2026-06-30", "2026-04-15T10:00:00Z"),
    ("H16", "O6", "Contracting", "12000", "80", "Forecast", "2026-06-30", "2026-04-29T10:00:00Z"),  # no Demo
    ("H17", "O6", "Signed", "12000", "100", "Closed", "2026-05-12", "2026-05-12T10:00:00Z"),
    ("H18", "O7", "Discover", "4000", "10", "Pipeline", "2026-07-31", "2026-05-04T10:00:00Z"),
    ("H19", "O8", "Discover", "6000", "10", "Pipeline", "2026-06-30", "2026-04-20T10:00:00Z"),
    ("H20", "O8", "Demo", "6000", "40", "Pipeline", "2026-06-30", "2026-05-05T10:00:00Z"),
    ("H21", "O8", "Lost", "6000", "0", "Omitted", "2026-05-18", "2026-05-18T10:00:00Z"),
]

# Standard stages (the seed) for some, stages nobody lists for P1, P2, P3, P5 and P7.
UNKNOWN_OPPORTUNITIES = [
    # Q1 2026 cohort
    ("P1", "Globex platform", "A1", "U1", "Booked", "10000", "100", "Closed", "2026-03-02", "true", "true",
     "2026-01-12T10:00:00Z"),
    ("P2", "Initech pilot", "A2", "U2", "Dead", "5000", "0", "Omitted", "2026-03-16", "true", "false",
     "2026-02-02T10:00:00Z"),
    ("P3", "Globex add-on", "A1", "U1", "Intro Call", "3000", "15", "Pipeline", "2026-06-30", "false",
     "false", "2026-02-10T10:00:00Z"),
    # Q2 2026 cohort
    ("P4", "Initech rollout", "A2", "U1", "Negotiation/Review", "20000", "90", "Commit", "2026-06-15",
     "false", "false", "2026-04-06T10:00:00Z"),
    ("P5", "Globex analytics", "A1", "U2", "Booked", "12000", "100", "Closed", "2026-05-12", "true", "true",
     "2026-04-08T10:00:00Z"),
    ("P6", "Initech services", "A2", "U2", "Closed Lost", "6000", "0", "Omitted", "2026-05-18", "true",
     "false", "2026-04-20T10:00:00Z"),
    ("P7", "Globex training", "A1", "U1", "Intro Call", "4000", "15", "Pipeline", "2026-07-31", "false",
     "false", "2026-05-04T10:00:00Z"),
    ("P8", "Initech support", "A2", "U2", "Closed Won", "7000", "100", "Closed", "2026-05-08", "true", "true",
     "2026-04-15T10:00:00Z"),
]  # fmt: skip

UNKNOWN_HISTORY = [
    ("K01", "P1", "Prospecting", "10000", "10", "Pipeline", "2026-03-31", "2026-01-12T10:00:00Z"),
    ("K02", "P1", "Qualification", "10000", "10", "Pipeline", "2026-03-31", "2026-01-20T10:00:00Z"),
    ("K03", "P1", "Verbal Yes", "10000", "90", "Forecast", "2026-03-31", "2026-02-10T10:00:00Z"),
    ("K04", "P1", "Booked", "10000", "100", "Closed", "2026-03-02", "2026-03-02T10:00:00Z"),
    ("K05", "P2", "Prospecting", "5000", "10", "Pipeline", "2026-04-30", "2026-02-02T10:00:00Z"),
    ("K06", "P2", "Parked", "5000", "5", "Pipeline", "2026-04-30", "2026-02-20T10:00:00Z"),
    ("K07", "P2", "Dead", "5000", "0", "Omitted", "2026-03-16", "2026-03-16T10:00:00Z"),
    ("K08", "P3", "Intro Call", "3000", "15", "Pipeline", "2026-06-30", "2026-02-10T10:00:00Z"),
    ("K09", "P4", "Prospecting", "20000", "10", "Pipeline", "2026-06-15", "2026-04-06T10:00:00Z"),
    ("K10", "P4", "Negotiation/Review", "20000", "90", "Forecast", "2026-06-15", "2026-04-27T10:00:00Z"),
    ("K11", "P5", "Intro Call", "12000", "15", "Pipeline", "2026-05-29", "2026-04-08T10:00:00Z"),
    ("K12", "P5", "Booked", "12000", "100", "Closed", "2026-05-12", "2026-05-12T10:00:00Z"),
    ("K13", "P6", "Prospecting", "6000", "10", "Pipeline", "2026-06-30", "2026-04-20T10:00:00Z"),
    ("K14", "P6", "Closed Lost", "6000", "0", "Omitted", "2026-05-18", "2026-05-18T10:00:00Z"),
    ("K15", "P7", "Intro Call", "4000", "15", "Pipeline", "2026-07-31", "2026-05-04T10:00:00Z"),
    ("K16", "P8", "Prospecting", "7000", "10", "Pipeline", "2026-05-31", "2026-04-15T10:00:00Z"),
    ("K17", "P8", "Qualification", "7000", "10", "Pipeline", "2026-05-31", "2026-04-22T10:00:00Z"),
    ("K18", "P8", "Closed Won", "7000", "100", "Closed", "2026-05-08", "2026-05-08T10:00:00Z"),
]

CALENDAR = "\r\n".join([
    "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//salesops//org stages test//EN",
    "BEGIN:VEVENT", "UID:e1-globex@acme.example", "DTSTAMP:20260301T000000Z", "DTSTART:20260414T140000Z",
    "DTEND:20260414T150000Z", "SUMMARY:Globex demo", "ORGANIZER;CN=Ana Ames:mailto:ana@acme.example",
    "ATTENDEE;CN=Mike Ross;PARTSTAT=ACCEPTED:mailto:mike@globex.example", "END:VEVENT",
    "END:VCALENDAR", "",
])  # fmt: skip


def write_org(root: Path, opportunities: list[tuple], history: list[tuple], stages: list[tuple]) -> Path:
    crm = root / "crm.sqlite"
    create_crm(crm)  # every contract table, OpportunityStage included
    tables = {
        "userrole": USERROLES,
        "user": USERS,
        "account": ACCOUNTS,
        "opportunity": [dict(zip(OPPORTUNITY_COLUMNS, row, strict=True)) for row in opportunities],
        "opportunityhistory": [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in history],
        "opportunitystage": [dict(zip(STAGE_COLUMNS, row, strict=True)) for row in stages],
    }
    for table, rows in tables.items():
        filled = []
        for row in rows:
            row = {"SystemModstamp": MODSTAMP, **row}
            if "IsDeleted" in CRM_CONTRACT[table]:
                row.setdefault("IsDeleted", "0")
            if "CreatedDate" in CRM_CONTRACT[table]:
                row.setdefault("CreatedDate", "2025-09-01T09:00:00Z")
            filled.append(row)
        insert_rows(crm, table, filled)
    calendars = root / "calendars"
    calendars.mkdir()
    (calendars / "ana@acme.example.ics").write_text(CALENDAR, encoding="utf-8")
    return crm


@dataclass
class Org:
    warehouse: Path
    serving: Path
    result: object  # dagster ExecuteInProcessResult

    def rows(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as connection:
            return connection.execute(sql).fetchall()

    def failed_checks(self) -> dict[str, str]:
        return {
            f"{e.asset_key.to_user_string()}:{e.check_name}": e.severity.value
            for e in self.result.get_asset_check_evaluations()
            if not e.passed
        }

    def check(self, asset: str, name: str):
        found = [
            e
            for e in self.result.get_asset_check_evaluations()
            if e.asset_key.to_user_string() == asset and e.check_name == name
        ]
        assert len(found) == 1, (asset, name, len(found))
        return found[0]


def build_org(root: Path, opportunities: list[tuple], history: list[tuple], stages: list[tuple]) -> Org:
    crm = write_org(root, opportunities, history, stages)
    warehouse = root / "warehouse.duckdb"
    env = {
        **pipeline_env(crm, root / "calendars", warehouse, root / "dagster_home"),
        "SALESOPS_AS_OF": "2026-05-20",
    }
    result = execute_nightly(env)
    return Org(warehouse, warehouse.with_name("serving.duckdb"), result)


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Org:
    return build_org(
        tmp_path_factory.mktemp("custom_stages"), CUSTOM_OPPORTUNITIES, CUSTOM_HISTORY, CUSTOM_STAGES
    )


@pytest.fixture(scope="module")
def unknown(tmp_path_factory: pytest.TempPathFactory) -> Org:
    return build_org(tmp_path_factory.mktemp("unknown_stages"), UNKNOWN_OPPORTUNITIES, UNKNOWN_HISTORY, [])


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def assert_rows(actual: list[tuple], expected: list[tuple]) -> None:
    """Same rows in the same order; floats within 1e-9."""
    assert len(actual) == len(expected), (actual, expected)
    for got, want in zip(actual, expected, strict=True):
        assert len(got) == len(want), (got, want)
        for a, b in zip(got, want, strict=True):
            if isinstance(b, float) or (isinstance(a, float) and b is not None):
                assert close(a, b), (got, want)
            else:
                assert a == b, (got, want)


def serving_tables(org: Org) -> set[str]:
    with duckdb.connect(str(org.serving), read_only=True) as connection:
        return {
            row[0]
            for row in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }


PUBLISHED = {"fct_opportunities", "stage_conversion", "crm_data_quality", "sales_velocity",
             "quota_attainment", "sales_forecast", "forecast_accuracy", "forecast_accuracy_summary",
             "forecast_stage_probabilities"}  # fmt: skip


def forecast_org_rows(org: Org) -> list[tuple]:
    return org.rows(
        "SELECT month_start, closed_to_date, commit, best_case, weighted_pipeline FROM marts.sales_forecast "
        "WHERE level = 'org' ORDER BY month_start"
    )


def assert_forecast_is_consistent(org: Org) -> None:
    rows = org.rows(
        "SELECT level, member, month_start, closed_to_date, calibrated_pipeline, run_rate, forecast, as_of "
        "FROM marts.sales_forecast"
    )
    assert {(level, member) for level, member, *_ in rows} >= {("org", "org"), ("team", "AE")}
    for _, _, _, closed, calibrated, run_rate, forecast, as_of in rows:
        assert as_of == AS_OF
        assert calibrated >= 0 and run_rate >= 0
        assert close(forecast, closed + calibrated + run_rate)
    summary = org.rows("SELECT level, method, months FROM marts.forecast_accuracy_summary ORDER BY 1, 2")
    assert len(summary) == 12 and {months for *_, months in summary} == {8}


class Marts:
    """One org's built tables, in DuckDB (the nightly job) or PostgreSQL (dbt on the same raw)."""

    def __init__(self, org: Org, dsn: str | None = None) -> None:
        self.org, self.dsn = org, dsn

    def rows(self, sql: str) -> list[tuple]:
        if self.dsn is None:
            return self.org.rows(sql)
        import psycopg

        with psycopg.connect(self.dsn) as connection:
            return [tuple(row) for row in connection.execute(sql).fetchall()]  # type: ignore[arg-type]


def on_postgres(org: Org, server: object, root: Path, name: str) -> Marts:
    """The org's raw tables (as the nightly job loaded them) in a fresh PostgreSQL database, and
    ``dbt build --target postgres`` there with the same as_of."""
    from ingestion.sql_warehouse import copy_duckdb_raw
    from tests.postgres import fresh_database, run_dbt_on_postgres

    database = fresh_database(server, name)  # type: ignore[arg-type]
    copy_duckdb_raw(org.warehouse, database.url)
    build = run_dbt_on_postgres(database, AS_OF.isoformat(), root)
    assert build.success, build.tail()
    return Marts(org, database.dsn)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def custom_marts(
    request: pytest.FixtureRequest, custom: Org, tmp_path_factory: pytest.TempPathFactory
) -> Marts:
    if request.param == "duckdb":
        return Marts(custom)
    server = request.getfixturevalue("postgres_server")
    return on_postgres(custom, server, tmp_path_factory.mktemp("custom_pg"), "salesops_custom_stages")


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def unknown_marts(
    request: pytest.FixtureRequest, unknown: Org, tmp_path_factory: pytest.TempPathFactory
) -> Marts:
    if request.param == "duckdb":
        return Marts(unknown)
    server = request.getfixturevalue("postgres_server")
    return on_postgres(unknown, server, tmp_path_factory.mktemp("unknown_pg"), "salesops_unknown_stages")


# ================================================================ an org with only its own stages


def test_custom_org_builds_and_publishes_every_mart(custom: Org) -> None:
    failed = custom.failed_checks()
    assert custom.result.success, failed
    assert [check for check, severity in failed.items() if severity == "ERROR"] == []
    # the org's own names are the known stages: the staging stage check passes (the raw suites'
    # opportunity_stage_known still compares with the standard names and warns)
    assert custom.check("staging/stg_salesforce__opportunities", "staging_integrity").passed
    assert serving_tables(custom) >= PUBLISHED


def test_custom_org_stages_come_from_opportunity_stage(custom_marts: Marts) -> None:
    # renumbered by SortOrder (10..50), API name else label, ForecastCategoryName as given
    assert_rows(
        custom_marts.rows(
            "SELECT stage_name, stage_order, is_closed, is_won, default_probability, forecast_category, "
            "sort_order, stage_source FROM staging.stg_salesforce__opportunity_stages ORDER BY stage_order"
        ),
        [
            ("Discover", 1, False, False, 10.0, "Pipeline", 10.0, "OpportunityStage"),
            ("Demo", 2, False, False, 40.0, "Pipeline", 20.0, "OpportunityStage"),  # label Product Demo
            ("Contracting", 3, False, False, 80.0, "Commit", 30.0, "OpportunityStage"),  # no ApiName
            ("Signed", 4, True, True, 100.0, "Closed", 40.0, "OpportunityStage"),
            ("Lost", 5, True, False, 0.0, "Omitted", 50.0, "OpportunityStage"),
        ],
    )


def test_custom_org_fct_opportunities(custom_marts: Marts) -> None:
    assert_rows(
        custom_marts.rows(
            "SELECT opportunity_id, stage_name, stage_order, is_closed, is_won, is_open, days_open "
            "FROM marts.fct_opportunities ORDER BY opportunity_id"
        ),
        [
            ("O1", "Signed", 4, True, True, False, 57),  # 01-12 -> 03-10
            ("O2", "Lost", 5, True, False, False, 41),  # 02-02 -> 03-15
            ("O3", "Lost", 5, True, False, False, 14),  # 02-10 -> 02-24
            ("O4", "Contracting", 3, False, False, True, 44),  # 04-06 -> as_of 05-20
            ("O5", "Demo", 2, False, False, True, 42),  # 04-08 -> 05-20
            ("O6", "Signed", 4, True, True, False, 27),  # 04-15 -> 05-12
            ("O7", "Discover", 1, False, False, True, 16),  # 05-04 -> 05-20
            ("O8", "Lost", 5, True, False, False, 28),  # 04-20 -> 05-18
        ],
    )


def test_custom_org_stage_conversion(custom_marts: Marts) -> None:
    """Lost has no row (closed and not won). Furthest stage reached:
    Q1: O1 Signed (4), O2 Demo (2; lost from Demo), O3 Discover (1; lost from Discover).
    Q2: O4 Contracting (3), O5 Demo (2), O6 Signed (4; skipped Demo), O7 Discover (1), O8 Demo (2).
    Days in a stage that was left: Q1 Discover O1 14, O2 18, O3 14 -> 14; Demo O1 21, O2 23 -> 22;
    Contracting O1 22. Q2 Discover O4 7, O5 14, O6 14, O8 15 -> 14; Demo O4 14, O8 13 -> 13.5;
    Contracting O6 13 (O4 is still in it).
    """
    assert_rows(
        custom_marts.rows(
            "SELECT cohort_quarter, stage_name, stage_order, reached, advanced, conversion_rate, "
            "median_days_in_stage FROM marts.stage_conversion ORDER BY cohort_quarter, stage_order"
        ),
        [
            (Q1, "Discover", 1, 3, 2, 2 / 3, 14.0),
            (Q1, "Demo", 2, 2, 1, 0.5, 22.0),
            (Q1, "Contracting", 3, 1, 1, 1.0, 22.0),
            (Q1, "Signed", 4, 1, None, None, None),
            (Q2, "Discover", 1, 5, 4, 0.8, 14.0),
            (Q2, "Demo", 2, 4, 2, 0.5, 13.5),
            (Q2, "Contracting", 3, 2, 1, 0.5, 13.0),
            (Q2, "Signed", 4, 1, None, None, None),
        ],
    )


def test_custom_org_has_nothing_in_the_worklist(custom_marts: Marts) -> None:
    assert custom_marts.rows("SELECT check_name, record_ids FROM marts.crm_data_quality") == []


def test_custom_org_forecast(custom: Org) -> None:
    """Cutoff 2026-05-20 00:00. Open then: O4 Contracting (20000, 80 %, Forecast = Commit, due 06-15),
    O5 Demo (8000, 40 %, due 05-29), O7 Discover (4000, 10 %, due 07-31); O6 won 05-12 (12000).

    Calibration, snapshots on the 20th at 00:00 (outcomes as of the cutoff):
      01-20: O1 Discover due March (close offset 2), won in March (month offset 2).
      02-20: O1 Contracting due March (1), won in March (1); O2 Discover due April (2) and O3
             Discover due March (1), both lost.
      04-20: O4 Demo (2), O5 Discover (1), O6 Discover (2); only month offset 0 (April) is resolved.
    May: O5 Demo (0, 0) never observed: Demo's default 40 % -> 3200; O4 Contracting (1, 0): O1 not
    won the month after its snapshot -> 0; O7 Discover (2, 0): 0 of 3.
    June: O4 (Contracting 1, 1): O1 -> 1.0 x 20000. July: O7 (Discover 2, 2): O1 won, O2 not -> 0.5
    x 4000. Run rate 0: no deal was created and won in the same month.
    Backtest: only March has bookings (O1 10000). At 03-01 O1 is in Contracting due March
    (Forecast = Commit): weighted and calibrated 80 % (Contracting was never observed: its
    default) = 8000, commit and best case 10000. Interval: the one calibrated relative error,
    (10000 - 8000) / 8000 = 0.25, so low = high = closed + to come x 1.25.
    """
    assert_rows(
        custom.rows(
            "SELECT month_start, closed_to_date, commit, best_case, weighted_pipeline, calibrated_pipeline, "
            "run_rate, forecast, forecast_low, forecast_high FROM marts.sales_forecast "
            "WHERE level = 'org' ORDER BY month_start"
        ),
        [
            (FORECAST_MONTHS[0], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            (FORECAST_MONTHS[1], 12000.0, 0.0, 0.0, 3200.0, 3200.0, 0.0, 15200.0, 16000.0, 16000.0),
            (FORECAST_MONTHS[2], 0.0, 20000.0, 20000.0, 16000.0, 20000.0, 0.0, 20000.0, 25000.0, 25000.0),
            (FORECAST_MONTHS[3], 0.0, 0.0, 0.0, 400.0, 2000.0, 0.0, 2000.0, 2500.0, 2500.0),
            (FORECAST_MONTHS[4], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            (FORECAST_MONTHS[5], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        ],
    )
    assert_forecast_is_consistent(custom)
    assert_rows(
        custom.rows(
            "SELECT method, month_start, forecast, actual FROM marts.forecast_accuracy "
            "WHERE level = 'org' ORDER BY method, month_start"
        ),
        [
            ("best_case", d("2026-03-01"), 10000.0, 10000.0),
            ("calibrated", d("2026-03-01"), 8000.0, 10000.0),
            ("commit", d("2026-03-01"), 10000.0, 10000.0),
            ("weighted_pipeline", d("2026-03-01"), 8000.0, 10000.0),
        ],
    )
    # calibrated on the org's own open stages only, with their default probabilities as fractions
    assert custom.rows(
        "SELECT DISTINCT stage_name, default_probability FROM marts.forecast_stage_probabilities ORDER BY 1"
    ) == [("Contracting", 0.8), ("Demo", 0.4), ("Discover", 0.1)]
    assert_rows(
        custom.rows(
            "SELECT stage_name, close_offset, month_offset, observations, won_in_month, applied_probability, "
            "probability_source FROM marts.forecast_stage_probabilities WHERE level = 'org' AND "
            "(stage_name, close_offset, month_offset) IN (('Contracting', 1, 1), ('Discover', 2, 2), "
            "('Demo', 0, 0)) ORDER BY stage_name"
        ),
        [("Contracting", 1, 1, 1, 1, 1.0, "org"), ("Demo", 0, 0, 0, 0, 0.4, "default"),
         ("Discover", 2, 2, 2, 1, 0.5, "org")],
    )  # fmt: skip


# ============================================================ stages in neither OpportunityStage nor the seed


def test_unknown_stages_build_publish_and_warn(unknown: Org) -> None:
    failed = unknown.failed_checks()
    assert unknown.result.success, failed
    assert [check for check, severity in failed.items() if severity == "ERROR"] == []
    assert serving_tables(unknown) >= PUBLISHED
    # the warning check: P1, P2, P3, P5 and P7 are in stages of neither source
    check = unknown.check("staging/stg_salesforce__opportunities", "staging_integrity")
    assert (check.passed, check.severity.value) == (False, "WARN")
    assert check.metadata["failed_rules"].value == "stg_opportunity_stage_known (warning, 5 rows)"
    assert unknown.rows(
        "SELECT r.severity, r.success, r.unexpected_count FROM quality.validation_results r "
        "JOIN quality.validation_runs v USING (validation_id) WHERE r.rule = 'stg_opportunity_stage_known'"
    ) == [("warning", False, 5)]
    # no OpportunityStage rows: the seed's standard process stands in, and its checks pass
    evaluations = unknown.result.get_asset_check_evaluations()
    stage_model = [
        e for e in evaluations if e.asset_key.to_user_string() == "staging/stg_salesforce__opportunity_stages"
    ]
    assert stage_model and all(e.passed for e in stage_model)


def test_unknown_stages_fall_back_to_the_seed(unknown_marts: Marts) -> None:
    assert unknown_marts.rows(
        "SELECT stage_name, stage_order, stage_source FROM staging.stg_salesforce__opportunity_stages "
        "ORDER BY stage_order"
    ) == [
        ("Prospecting", 1, "seed"), ("Qualification", 2, "seed"), ("Needs Analysis", 3, "seed"),
        ("Value Proposition", 4, "seed"), ("Id. Decision Makers", 5, "seed"),
        ("Perception Analysis", 6, "seed"), ("Proposal/Price Quote", 7, "seed"),
        ("Negotiation/Review", 8, "seed"), ("Closed Won", 9, "seed"), ("Closed Lost", 10, "seed"),
    ]  # fmt: skip


def test_unknown_stages_in_fct_opportunities_keep_their_own_flags(unknown_marts: Marts) -> None:
    assert_rows(
        unknown_marts.rows(
            "SELECT opportunity_id, stage_name, stage_order, is_closed, is_won, is_open, days_open "
            "FROM marts.fct_opportunities ORDER BY opportunity_id"
        ),
        [
            ("P1", "Booked", None, True, True, False, 49),  # 01-12 -> 03-02
            ("P2", "Dead", None, True, False, False, 42),  # 02-02 -> 03-16
            ("P3", "Intro Call", None, False, False, True, 99),  # 02-10 -> as_of 05-20
            ("P4", "Negotiation/Review", 8, False, False, True, 44),
            ("P5", "Booked", None, True, True, False, 34),  # 04-08 -> 05-12
            ("P6", "Closed Lost", 10, True, False, False, 28),
            ("P7", "Intro Call", None, False, False, True, 16),
            ("P8", "Closed Won", 9, True, True, False, 23),
        ],
    )


def test_unknown_stages_in_stage_conversion(unknown_marts: Marts) -> None:
    """Furthest stage reached (stages 1-9, Closed Won last):
    Q1: P1 won (IsWon) in Booked: every stage up to Closed Won (its history shows only stages 1-2
        of the process); P2 lost in Dead: Prospecting (1), from its history; P3 open in Intro Call,
        no stage of the process anywhere: the first stage (1).
    Q2: P4 Negotiation/Review (8); P5 won in Booked, history only Intro Call: Closed Won (9);
        P6 lost from Prospecting (1); P7 open in Intro Call: the first stage (1); P8 Closed Won (9).
    Days in a stage left: Q1 Prospecting P1 8, P2 18 -> 13; Qualification P1 21 (into Verbal Yes).
    Q2 Prospecting P4 21, P6 28, P8 7 -> 21; Qualification P8 16.
    """
    stages = ["Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
              "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won"]  # fmt: skip
    q1 = [(3, 1, 1 / 3, 13.0), (1, 1, 1.0, 21.0), *[(1, 1, 1.0, None)] * 6, (1, None, None, None)]
    q2 = [(5, 3, 0.6, 21.0), (3, 3, 1.0, 16.0), *[(3, 3, 1.0, None)] * 5, (3, 2, 2 / 3, None),
          (2, None, None, None)]  # fmt: skip
    expected = [
        (Q1, name, order, *values) for order, (name, values) in enumerate(zip(stages, q1, strict=True), 1)
    ]
    expected += [
        (Q2, name, order, *values) for order, (name, values) in enumerate(zip(stages, q2, strict=True), 1)
    ]
    assert_rows(
        unknown_marts.rows(
            "SELECT cohort_quarter, stage_name, stage_order, reached, advanced, conversion_rate, "
            "median_days_in_stage FROM marts.stage_conversion ORDER BY cohort_quarter, stage_order"
        ),
        expected,
    )


def test_unknown_stages_count_by_their_own_flags_in_sales_velocity(unknown_marts: Marts) -> None:
    assert_rows(
        unknown_marts.rows(
            "SELECT rep_id, quarter_start, won_deals, lost_deals, win_rate, won_amount, avg_deal_size, "
            "avg_sales_cycle_days FROM marts.sales_velocity ORDER BY rep_id, quarter_start"
        ),
        [
            ("U1", Q1, 1, 0, 1.0, 10000.0, 10000.0, 49.0),  # P1 (Booked)
            ("U2", Q1, 0, 1, 0.0, 0.0, None, None),  # P2 (Dead)
            ("U2", Q2, 2, 1, 2 / 3, 19000.0, 9500.0, 28.5),  # P5 (Booked, 34 days), P8 (23 days); P6 lost
        ],
    )


def test_unknown_stages_are_in_the_coordinators_worklist(unknown_marts: Marts) -> None:
    assert_rows(
        unknown_marts.rows(
            "SELECT check_name, source_table, owner_id, owner_name, record_count, owner_records, "
            "share_of_owner_records, record_ids FROM marts.crm_data_quality ORDER BY check_name, owner_id"
        ),
        [
            ("unknown_stage", "opportunity", "U1", "Ana Ames", 3, 4, 0.75, "P1,P3,P7"),
            ("unknown_stage", "opportunity", "U2", "Ben Burr", 2, 4, 0.5, "P2,P5"),
        ],
    )


def test_unknown_stages_forecast(unknown: Org) -> None:
    """The seed is the stage table; the forecast takes the flags of stages it does not list from the
    opportunities now in them (Booked: P1 and P5, won; Dead: P2, lost; Intro Call: P3 and P7, open),
    else from the history row (Verbal Yes, Forecast = Commit at 90 %: open).

    Cutoff 2026-05-20 00:00: won in May P5 (Booked, 12000) and P8 (7000); open P3 Intro Call (3000,
    15 %, due 06-30), P4 Negotiation/Review (20000, 90 %, Commit, due 06-15), P7 Intro Call (4000,
    15 %, due 07-31). Calibrated: P4 (Negotiation 1, 1) never observed: the seed's 90 % -> 18000;
    P3 (Intro Call 1, 1) and P7 (Intro Call 2, 2) never observed, no default: their own 15 % ->
    450 and 600. Backtest March: P1 in Verbal Yes (10000, 90 %, Commit) -> weighted and calibrated
    9000 (its own 90 %), actual 10000; interval factor 1 + 1000 / 9000 = 10 / 9.
    """
    assert_rows(
        unknown.rows(
            "SELECT month_start, closed_to_date, commit, best_case, weighted_pipeline, calibrated_pipeline, "
            "run_rate, forecast, forecast_low, forecast_high FROM marts.sales_forecast "
            "WHERE level = 'org' ORDER BY month_start"
        ),
        [
            (FORECAST_MONTHS[0], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            (FORECAST_MONTHS[1], 19000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 19000.0, 19000.0, 19000.0),
            (FORECAST_MONTHS[2], 0.0, 20000.0, 20000.0, 18450.0, 18450.0, 0.0, 18450.0, 20500.0, 20500.0),
            (FORECAST_MONTHS[3], 0.0, 0.0, 0.0, 600.0, 600.0, 0.0, 600.0, 6000 / 9, 6000 / 9),
            (FORECAST_MONTHS[4], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            (FORECAST_MONTHS[5], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        ],
    )
    assert_forecast_is_consistent(unknown)
    assert_rows(
        unknown.rows(
            "SELECT method, month_start, forecast, actual FROM marts.forecast_accuracy "
            "WHERE level = 'org' ORDER BY method, month_start"
        ),
        [
            ("best_case", d("2026-03-01"), 10000.0, 10000.0),
            ("calibrated", d("2026-03-01"), 9000.0, 10000.0),
            ("commit", d("2026-03-01"), 10000.0, 10000.0),
            ("weighted_pipeline", d("2026-03-01"), 9000.0, 10000.0),
        ],
    )
    # an unlisted stage's cell without observations: no probability of its own, each deal's Probability
    assert_rows(
        unknown.rows(
            "SELECT observations, applied_probability, probability_source, default_probability "
            "FROM marts.forecast_stage_probabilities WHERE level = 'org' AND stage_name = 'Intro Call' "
            "AND close_offset = 1 AND month_offset = 1"
        ),
        [(0, None, "own", None)],
    )


# ================================================================== rules on the OpportunityStage table


def test_opportunity_stage_table_with_duplicate_sort_orders_and_no_closed_won_stage_warns(
    custom: Org, tmp_path: Path
) -> None:
    """The custom org's raw OpportunityStage changed: Demo shares Discover's SortOrder 10, and Signed is
    no longer won. dbt builds the staging model (tests warn, the build succeeds); ties are broken by
    name, so stage_order stays unique."""
    import json
    import shutil

    from tests.postgres import run_dbt

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(custom.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "UPDATE raw.salesforce_opportunitystage SET sortorder = '10' WHERE apiname = 'Demo'"
        )
        connection.execute("UPDATE raw.salesforce_opportunitystage SET iswon = 'false' WHERE id = '01J4'")
    build = run_dbt(
        "duckdb",
        ["build", "--select", "stg_salesforce__opportunity_stages"],
        tmp_path / "dbt",
        {"SALESOPS_WAREHOUSE": str(warehouse)},
        AS_OF.isoformat(),
    )
    assert build.success, build.tail()
    results = json.loads((tmp_path / "dbt" / "target" / "run_results.json").read_text())
    statuses = {r["unique_id"].split(".")[2]: (r["status"], r["failures"]) for r in results["results"]}
    # one sort order held by two stages (Discover and Demo): dbt counts the repeated value once
    assert statuses["opportunity_stages_sort_order_unique"] == ("warn", 1)
    assert statuses["opportunity_stages_have_a_closed_won_stage"] == ("warn", 1)
    assert statuses["stg_salesforce__opportunity_stages"] == ("success", None)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "SELECT stage_name, stage_order, is_closed, is_won, sort_order "
            "FROM staging.stg_salesforce__opportunity_stages ORDER BY stage_order"
        ).fetchall()
    assert rows == [
        ("Demo", 1, False, False, 10.0),
        ("Discover", 2, False, False, 10.0),
        ("Contracting", 3, False, False, 30.0),
        ("Signed", 4, True, False, 40.0),
        ("Lost", 5, True, False, 50.0),
    ]
