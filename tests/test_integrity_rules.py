"""Every integrity rule, one violating record at a time: exact counts, quarantine rows and severities.

Three nightly runs (about 25-40 s each) and one direct validation:

* **clean**: the hand-written org of test_marts_handwritten.py with as_of 2026-05-19 (the data's
  SystemModstamp is 2026-05-19 00:00 UTC, so every raw table is 24 h old at the end of the as_of
  day): every check passes, nothing is quarantined, raw reconciles.
* **dirty**: the same org plus one dirty record per warning rule, quarantine rule and worklist
  check (tests/integrity_fixtures.py, and the two Salesforce Events of DIRTY_EVENTS below). Every
  failing rule counts exactly its planted record(s), the raw and staging checks only warn, and
  every mart is still built.
* **blocked**: the clean warehouse loaded again with a duplicated lead Id (an error rule) and three
  new user roles, with as_of 2026-05-25: the raw check fails with severity ERROR and nothing
  downstream of raw is built; the volume and freshness checks warn.
* **error rules**: one error rule at a time cannot be run through the whole job (64 runs), so the
  suites are run directly (``validate_tables``) on a copy of the dirty warehouse in which SQL
  plants one violation per error rule, layer by layer.

The hand-written org has no rows of the optional OpportunityStage and Event objects (the replica's
tables are empty), so raw.salesforce_opportunitystage and raw.salesforce_event are empty: their
rules pass, and the stage rules read the seed's stages. The dirty org adds two Events, never stages.

Uniqueness rules count every row holding a duplicated value, so one duplicated Id counts 2.
Rules that input cannot reach (a record would be quarantined or rejected first, or the calendar
reader normalises it) are among the planted ones.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.conftest import execute_nightly, pipeline_env
from tests.crm_fixtures import insert_rows
from tests.integrity_fixtures import (
    MODSTAMP,
    write_calendars,
    write_crm,
    write_dirty_calendars,
    write_dirty_crm,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-05-19"
LATER_AS_OF = "2026-05-25"
BUMPED_MODSTAMP = "2026-05-20T00:00:00Z"
FRESHNESS_TABLES = ("account", "contact", "lead", "opportunity", "opportunityhistory", "task")
CRM_TABLES = ("user", "userrole", "account", "contact", "lead", "opportunity", "opportunityhistory", "task",
              "campaign", "forecastingquota", "opportunitystage", "event")  # fmt: skip
TABLE_CHECKS = (
    "freshness",
    "volume",
    "quarantine_is_empty",
    "optional_fields_present",
    "sources_not_quarantined",
)
SUITE_CHECKS = {"raw": "raw_integrity", "staging": "staging_integrity", "marts": "mart_integrity"}

# ============================================================================ expected outcomes

# Dirty run: rule -> (unexpected_count, evidence). Evidence is the one bad value a column rule samples,
# or (column, value) identifying the one row a row rule returns. Every other rule counts 0.
DIRTY_FAILURES: dict[str, tuple[int, object]] = {
    # raw
    "user_email_well_formed": (1, ("id", "XU01")),
    "account_owner_exists": (1, ("id", "XA01")),
    "contact_email_well_formed": (1, ("id", "XC01")),
    "contact_account_exists": (1, ("id", "XC02")),
    "contact_owner_exists": (1, ("id", "XC03")),
    "lead_email_well_formed": (1, ("id", "XL01")),
    "lead_owner_exists": (1, ("id", "XL02")),
    "opportunity_stage_known": (1, ("id", "XO01")),  # Bogus Stage: in neither the org's stages nor the seed
    "opportunity_amount_is_number": (1, ("id", "XO02")),
    "opportunity_amount_not_negative": (1, ("id", "XO03")),
    "opportunity_close_date_not_before_created": (1, ("id", "XO04")),
    "opportunity_account_exists": (1, ("id", "XO05")),
    "opportunity_owner_exists": (1, ("id", "XO06")),
    "opportunityhistory_stage_known": (1, ("id", "XH01")),  # Bogus Stage
    "opportunityhistory_amount_is_number": (1, ("id", "XH02")),
    "opportunityhistory_amount_not_negative": (1, ("id", "XH03")),
    "opportunityhistory_opportunity_exists": (1, ("id", "XH04")),
    "task_subtype_known": (1, "Fax"),
    "task_owner_exists": (1, ("id", "XT02")),
    "campaign_actualcost_is_number": (1, ("id", "XK01")),
    "campaign_actualcost_not_negative": (1, ("id", "XK02")),
    "campaign_budgetedcost_is_number": (1, ("id", "XK03")),
    "campaign_budgetedcost_not_negative": (1, ("id", "XK04")),
    "forecastingquota_quotaamount_is_number": (1, ("id", "XQ01")),
    "forecastingquota_quotaamount_not_negative": (1, ("id", "XQ02")),
    "forecastingquota_owner_exists": (1, ("id", "XQ03")),
    "event_owner_exists": (1, ("id", "XE01")),
    "calendar_status_known": (1, "DRAFT"),
    "calendar_attendee_email_well_formed": (1, ("uid", "x-bad-attendee@acme.example")),
    # staging
    "stg_user_email_well_formed": (1, ("rep_id", "XU01")),
    "stg_account_owner_exists": (1, ("account_id", "XA01")),
    "stg_contact_account_exists": (1, ("contact_id", "XC02")),
    "stg_contact_owner_exists": (1, ("contact_id", "XC03")),
    "stg_contact_email_well_formed": (1, ("contact_id", "XC01")),
    "stg_lead_owner_exists": (1, ("lead_id", "XL02")),
    "stg_lead_email_well_formed": (1, ("lead_id", "XL01")),
    "stg_opportunity_stage_known": (1, ("opportunity_id", "XO01")),  # Bogus Stage: in neither process
    "stg_opportunity_close_not_before_created": (1, ("opportunity_id", "XO04")),
    "stg_opportunity_account_exists": (1, ("opportunity_id", "XO05")),
    "stg_opportunity_owner_exists": (1, ("opportunity_id", "XO06")),
    "stg_opportunity_history_opportunity_exists": (1, ("opportunity_history_id", "XH04")),
    "stg_task_owner_exists": (1, ("task_id", "XT02")),
    "stg_task_who_or_what_exists": (1, ("task_id", "XT03")),
    "stg_quota_owner_exists": (1, ("quota_id", "XQ03")),
    "stg_quota_starts_on_first_of_month": (1, ("quota_id", "XQ04")),
    # one series (of 1001 occurrences) over the bound: the rule counts series, not occurrences
    "stg_calendar_occurrences_per_series_bounded": (1, ("uid", "x-hourly@acme.example")),
    "stg_calendar_attendee_email_well_formed": (1, ("uid", "x-bad-attendee@acme.example")),
}

# (source_table, record_id, owner_id, rule, offending_values)
DIRTY_QUARANTINE = [
    ("account", "XA03", "U1", "invalid_created_date", '{"createddate":"not-a-date"}'),
    ("account", "XA04", "U2", "invalid_system_modstamp", '{"systemmodstamp":"2026-02-30T00:00:00Z"}'),
    ("campaign", "XK01", None, "actual_cost_not_a_number", '{"actualcost":"n/a"}'),
    ("campaign", "XK02", None, "actual_cost_negative", '{"actualcost":"-100"}'),
    ("campaign", "XK03", None, "budgeted_cost_not_a_number", '{"budgetedcost":"tbd"}'),
    ("campaign", "XK04", None, "budgeted_cost_negative", '{"budgetedcost":"-50"}'),
    ("campaign", "XK05", None, "invalid_created_date", '{"createddate":"garbage"}'),
    ("campaign", "XK06", None, "invalid_system_modstamp", '{"systemmodstamp":"2026-02-30T00:00:00Z"}'),
    ("contact", "XC06", "U1", "invalid_created_date", '{"createddate":"1850-01-01T00:00:00Z"}'),
    ("contact", "XC07", "U3", "invalid_system_modstamp", '{"systemmodstamp":"2026-05-18T25:00:00Z"}'),
    ("event", "XE02", "U1", "end_before_start",
     '{"startdatetime":"2026-05-12T10:00:00Z","enddatetime":"2026-05-12T09:00:00Z"}'),
    ("forecastingquota", "XQ01", "U3", "quota_amount_not_a_number", '{"quotaamount":"lots"}'),
    ("forecastingquota", "XQ02", "U3", "quota_amount_negative", '{"quotaamount":"-1000"}'),
    ("forecastingquota", "XQ05", "U3", "invalid_start_date", '{"startdate":"next month"}'),
    ("forecastingquota", "XQ06", "U3", "invalid_system_modstamp",
     '{"systemmodstamp":"2026-02-30T00:00:00Z"}'),
    ("lead", "XL06", "U1", "invalid_created_date", '{"createddate":"not-a-date"}'),
    ("lead", "XL07", "U1", "invalid_system_modstamp", '{"systemmodstamp":"2026-13-01T00:00:00Z"}'),
    ("opportunity", "XO02", "U1", "amount_not_a_number", '{"amount":"12k"}'),
    ("opportunity", "XO03", "U1", "amount_negative", '{"amount":"-5"}'),
    ("opportunity", "XO09", "U1", "invalid_created_date", '{"createddate":"1899-12-31T00:00:00Z"}'),
    ("opportunity", "XO10", "U2", "invalid_system_modstamp", '{"systemmodstamp":"2026-02-30T00:00:00Z"}'),
    ("opportunity", "XO11", "U1", "probability_out_of_range", '{"probability":"150"}'),
    ("opportunity", "XO12", "U1", "invalid_close_date", '{"closedate":"soon"}'),
    ("opportunity", "XO13", None, "missing_owner", '{"ownerid":null}'),
    ("opportunityhistory", "XH02", None, "amount_not_a_number", '{"amount":"abc"}'),
    ("opportunityhistory", "XH03", None, "amount_negative", '{"amount":"-1"}'),
    ("opportunityhistory", "XH05", None, "invalid_created_date", '{"createddate":"garbage"}'),
    ("opportunityhistory", "XH06", None, "invalid_system_modstamp",
     '{"systemmodstamp":"2026-04-31T00:00:00Z"}'),
    ("task", "XT04", "U3", "invalid_created_date", '{"createddate":"garbage"}'),
    ("task", "XT05", "U1", "invalid_system_modstamp", '{"systemmodstamp":"2026-00-10T00:00:00Z"}'),
]  # fmt: skip

# The not-null rules of the optional tables the hand-written org leaves empty (the dirty org fills event).
EMPTY_TABLE_NOT_NULL = {"opportunitystage_id_not_null", "event_id_not_null"}

STAGING_KEYS = {
    "account": ("stg_salesforce__accounts", "account_id"),
    "contact": ("stg_salesforce__contacts", "contact_id"),
    "lead": ("stg_salesforce__leads", "lead_id"),
    "opportunity": ("stg_salesforce__opportunities", "opportunity_id"),
    "opportunityhistory": ("stg_salesforce__opportunity_history", "opportunity_history_id"),
    "task": ("stg_salesforce__tasks", "task_id"),
    "campaign": ("stg_salesforce__campaigns", "campaign_id"),
    "forecastingquota": ("stg_salesforce__forecasting_quotas", "quota_id"),
    "event": ("stg_salesforce__events", "event_id"),
}

# (source_table, raw_records, staging_records, quarantined_records, deleted_records)
CLEAN_RECONCILIATION = [
    ("user", 5, 5, 0, 0), ("userrole", 3, 3, 0, 0), ("account", 7, 6, 0, 1), ("contact", 2, 2, 0, 0),
    ("lead", 12, 11, 0, 1), ("opportunity", 17, 16, 0, 1), ("opportunityhistory", 16, 15, 0, 1),
    ("task", 12, 11, 0, 1), ("campaign", 5, 4, 0, 1), ("forecastingquota", 11, 11, 0, 0),
    ("event", 0, 0, 0, 0),
]  # fmt: skip
# the clean counts plus the dirty records (1 user, 4 accounts, 7 contacts, 7 leads, 13 opportunities,
# 6 history rows, 5 tasks, 6 campaigns, 6 quotas), less the quarantined ones
DIRTY_RECONCILIATION = [
    ("user", 6, 6, 0, 0), ("userrole", 3, 3, 0, 0), ("account", 11, 8, 2, 1), ("contact", 9, 7, 2, 0),
    ("lead", 19, 16, 2, 1), ("opportunity", 30, 22, 7, 1), ("opportunityhistory", 22, 17, 4, 1),
    ("task", 17, 14, 2, 1), ("campaign", 11, 4, 6, 1), ("forecastingquota", 17, 13, 4, 0),
    ("event", 2, 1, 1, 0),  # XE01 (unknown owner, a warning) in staging; XE02 (ends before start) quarantined
]  # fmt: skip

# marts.crm_data_quality: (check_name, source_table, owner_id, record_count, record_ids)
CLEAN_WORKLIST = [
    ("lead_without_activity_7d", "lead", "U1", 1, "L05"),  # never answered (its call task is deleted)
    ("lead_without_activity_7d", "lead", "U2", 1, "L10"),  # only a cancelled meeting
    ("lead_without_owner", "lead", None, 1, "L11"),
    ("opportunity_missing_amount", "opportunity", "U1", 1, "O04"),
]
DIRTY_WORKLIST = [
    ("account_missing_industry", "account", "U1", 1, "XA02"),
    ("contact_missing_email", "contact", "U1", 1, "XC04"),
    ("duplicate_contact_email", "contact", "U1", 2, "CT2,XC05"),  # a duplicate is a pair of records
    ("duplicate_lead_email", "lead", "U1", 2, "L02,XL04"),  # (the emails differ in letter case)
    ("lead_without_activity_7d", "lead", "U1", 1, "L05"),
    ("lead_without_activity_7d", "lead", "U2", 2, "L10,XL05"),
    ("lead_without_owner", "lead", None, 2, "L11,XL03"),
    ("open_opportunity_past_close_date", "opportunity", "U1", 1, "XO08"),
    ("opportunity_missing_amount", "opportunity", "U1", 2, "O04,XO07"),
    ("unknown_stage", "opportunity", "U1", 1, "XO01"),  # Bogus Stage
]

# ======================================================================================= runs


@dataclass
class Run:
    root: Path
    env: dict[str, str]
    result: object  # dagster ExecuteInProcessResult

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def crm(self) -> Path:
        return self.root / "crm.sqlite"

    def query(self, sql: str, params: Iterable[object] = ()) -> list[tuple]:
        return query(self.warehouse, sql, params)

    def evaluations(self) -> dict[tuple[str, str], object]:
        evaluations = {}
        for evaluation in self.result.get_asset_check_evaluations():
            key = (evaluation.asset_key.to_user_string(), evaluation.check_name)
            assert key not in evaluations, f"{key} evaluated twice"
            evaluations[key] = evaluation
        return evaluations

    def materialized(self) -> set[str]:
        return {event.asset_key.to_user_string() for event in self.result.get_asset_materialization_events()}

    def rule_results(self) -> dict[str, dict]:
        """Every rule's persisted result of this run: quality.validation_results by rule name."""
        rows = query_dicts(
            self.warehouse,
            "SELECT runs.layer, runs.table_name, results.* FROM quality.validation_results AS results "
            "JOIN quality.validation_runs AS runs USING (validation_id) WHERE runs.dagster_run_id = ?",
            [self.result.run_id],
        )
        by_rule = {row["rule"]: row for row in rows}
        assert len(by_rule) == len(rows), "a rule was validated twice in one run"
        return by_rule


def query(warehouse: Path, sql: str, params: Iterable[object] = ()) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def query_dicts(warehouse: Path, sql: str, params: Iterable[object] = ()) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        cursor = connection.execute(sql, list(params))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def run_nightly(root: Path, as_of: str, **extra_env: str) -> Run:
    env = pipeline_env(root / "crm.sqlite", root / "calendars", root / "warehouse.duckdb", root / "home")
    env = {**env, "SALESOPS_AS_OF": as_of, **extra_env}
    return Run(root, env, execute_nightly(env))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("clean")
    write_crm(root / "crm.sqlite")
    write_calendars(root / "calendars")
    return run_nightly(root, AS_OF)


# The dirty org's Events (tests/integrity_fixtures.py has none), one per Event rule; no Who, so neither
# answers a lead. XE01 is kept (a meeting of nobody's: no user U9) and XE02 is quarantined.
EVENT_COLUMNS = ("Id", "WhoId", "WhatId", "OwnerId", "Subject", "Type", "StartDateTime", "EndDateTime",
                 "IsAllDayEvent", "IsDeleted", "SystemModstamp")  # fmt: skip
DIRTY_EVENTS = [
    # event_owner_exists
    ("XE01", None, None, "U9", "X event", "Meeting", "2026-05-13T15:00:00Z", "2026-05-13T16:00:00Z", "false",
     "false", MODSTAMP),
    # quarantine: end_before_start
    ("XE02", None, None, "U1", "X event", "Meeting", "2026-05-12T10:00:00Z", "2026-05-12T09:00:00Z", "false",
     "false", MODSTAMP),
]  # fmt: skip


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("dirty")
    write_dirty_crm(root / "crm.sqlite")
    insert_rows(
        root / "crm.sqlite", "event", [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in DIRTY_EVENTS]
    )
    write_dirty_calendars(root / "calendars")
    # A cap of 1001 occurrences per series: the 1001-occurrence series reaches it, which the staging
    # rule reports as a series that was (or would have been) cut off.
    return run_nightly(root, AS_OF, SALESOPS_CALENDAR_MAX_OCCURRENCES="1001")


@pytest.fixture(scope="module")
def blocked(clean: Run, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The clean warehouse, then a second run with a duplicated lead Id and three new user roles."""
    root = tmp_path_factory.mktemp("blocked")
    shutil.copy(clean.crm, root / "crm.sqlite")
    shutil.copytree(clean.root / "calendars", root / "calendars")
    shutil.copy(clean.warehouse, root / "warehouse.duckdb")
    with sqlite3.connect(root / "crm.sqlite") as connection:
        # The replica has no unique index on Id (a real one may: drop it first, as test_bad_input does).
        connection.execute("INSERT INTO lead SELECT * FROM lead WHERE Id = 'L01'")
        # Both copies changed after the cursor, so the incremental load reads both.
        connection.execute("UPDATE lead SET SystemModstamp = ? WHERE Id = 'L01'", [BUMPED_MODSTAMP])
        connection.executemany(
            "INSERT INTO userrole (Id, Name, ParentRoleId, SystemModstamp) VALUES (?, ?, 'R0', ?)",
            [(f"R{i}", f"Role {i}", BUMPED_MODSTAMP) for i in (3, 4, 5)],
        )
    return run_nightly(root, LATER_AS_OF)


# ===================================================================================== rules


def all_rules() -> dict[str, tuple[str, str, str]]:
    """rule -> (layer, table, severity), from the suite builders."""
    from expectations.mart_suites import MART_SUITES
    from expectations.raw_suites import RAW_SUITES
    from expectations.staging_suites import STAGING_SUITES

    rules: dict[str, tuple[str, str, str]] = {}
    for layer, suites in (("raw", RAW_SUITES), ("staging", STAGING_SUITES), ("marts", MART_SUITES)):
        for table, build in suites.items():
            for spec in build():
                assert spec.name not in rules, f"rule {spec.name} is defined twice"
                rules[spec.name] = (layer, table, spec.severity)
    return rules


def quarantine_rule_names() -> set[str]:
    """The Salesforce rules (the macro quarantine_rules; HubSpot's mirror them over its properties)."""
    text = (PROJECT_ROOT / "dbt_project" / "macros" / "quarantine_rules.sql").read_text()
    salesforce = text.split("{% macro quarantine_rules()", 1)[1].split("endmacro", 1)[0]
    return set(re.findall(r"'rule':\s*'([a-z0-9_]+)'", salesforce))


def hygiene_check_names() -> set[str]:
    text = (
        PROJECT_ROOT / "dbt_project" / "models" / "intermediate" / "int_crm_hygiene_findings.sql"
    ).read_text()
    return set(re.findall(r"select '([a-z0-9_]+)'", text))


def test_rule_inventory() -> None:
    rules = all_rules()
    by_layer = {
        (layer, severity): sum(1 for r in rules.values() if r[0] == layer and r[2] == severity)
        for layer in ("raw", "staging", "marts")
        for severity in ("error", "warning")
    }
    assert by_layer == {
        ("raw", "error"): 26, ("raw", "warning"): 29,
        ("staging", "error"): 31, ("staging", "warning"): 19,
        ("marts", "error"): 11, ("marts", "warning"): 0,
    }  # fmt: skip
    # Every warning rule is planted in the dirty org or in the warehouse; every error rule in the warehouse.
    warnings = {name for name, (_, _, severity) in rules.items() if severity == "warning"}
    assert warnings == set(DIRTY_FAILURES) | {"stg_calendar_end_after_start"}
    assert {name for name, (_, _, s) in rules.items() if s == "error"} == set(ERROR_INJECTIONS)
    assert quarantine_rule_names() == {rule for _, _, _, rule, _ in DIRTY_QUARANTINE}
    assert hygiene_check_names() == {check for check, *_ in DIRTY_WORKLIST}


# ================================================================================ clean run


def test_clean_org_passes_every_check(clean: Run) -> None:
    assert clean.result.success
    evaluations = clean.evaluations()
    failed = {key: e.severity.value for key, e in evaluations.items() if not e.passed}
    assert failed == {}
    ours = {key for key in evaluations if key[1] in (*TABLE_CHECKS, *SUITE_CHECKS.values())}
    rules = all_rules()
    suites = {(layer, table) for layer, table, _ in rules.values()}
    assert ours == (
        {(f"{layer}/{table}", SUITE_CHECKS[layer]) for layer, table in suites}
        | {(f"raw/salesforce_{t}", "volume") for t in CRM_TABLES}
        | {(f"raw/salesforce_{t}", "freshness") for t in FRESHNESS_TABLES}
        | {("quality/quarantine", "quarantine_is_empty")}
        | {(f"raw/salesforce_{t}", "optional_fields_present") for t in CRM_TABLES}
        | {(f"raw/salesforce_{t}", "sources_not_quarantined") for t in CRM_TABLES}
        | {("raw/calendar_occurrences", "sources_not_quarantined")}
    )
    assert len(ours) == 14 + 11 + 6 + 12 + 6 + 1 + 12 + 13
    # The replica has every contract field and every table reads: no field missing, no source set aside.
    assert check_metadata(clean, "optional_fields_present") == {
        t: {"passed": True, "missing_fields": 0} for t in CRM_TABLES
    }
    assert check_metadata(clean, "sources_not_quarantined") == {
        **{t: {"passed": True, "quarantined_sources": 0} for t in CRM_TABLES},
        "raw/calendar_occurrences": {"passed": True, "quarantined_sources": 0},
    }

    results = clean.rule_results()
    assert set(results) == set(rules)
    # On an empty table GX's not_null reports no unexpected_count (None, not 0); unique reports 0.
    assert {r: (v["success"], v["unexpected_count"], v["exception_message"]) for r, v in results.items()} == {
        rule: (True, None if rule in EMPTY_TABLE_NOT_NULL else 0, None) for rule in rules
    }
    assert clean.query("SELECT count(*) FROM quality.quarantine") == [(0,)]
    assert quarantine_is_empty_metadata(evaluations) == {"quarantined_records": 0}
    assert reconciliation(clean) == CLEAN_RECONCILIATION
    assert worklist(clean) == CLEAN_WORKLIST


def quarantine_is_empty_metadata(evaluations: dict) -> dict:
    evaluation = evaluations[("quality/quarantine", "quarantine_is_empty")]
    return {k: v.value for k, v in evaluation.metadata.items()}


def reconciliation(run: Run) -> list[tuple]:
    rows = run.query(
        "SELECT source_table, raw_records, staging_records, quarantined_records, deleted_records, "
        "unaccounted_records, is_reconciled FROM quality.raw_reconciliation"
    )
    assert [row[5:] for row in rows] == [(0, True)] * len(rows), rows
    order = {t: i for i, t in enumerate(CRM_TABLES)}
    return sorted((row[:5] for row in rows), key=lambda row: order[row[0]])


def worklist(run: Run) -> list[tuple]:
    return run.query(
        "SELECT check_name, source_table, owner_id, record_count, record_ids FROM marts.crm_data_quality "
        "ORDER BY check_name, owner_id NULLS FIRST"
    )


# ================================================================================ dirty run


def expected_warned_checks() -> dict[tuple[str, str], int]:
    """(asset, check) -> failed warning rules, for the suites the dirty org makes warn."""
    rules = all_rules()
    counts: dict[tuple[str, str], int] = {}
    for rule in DIRTY_FAILURES:
        layer, table, _ = rules[rule]
        key = (f"{layer}/{table}", SUITE_CHECKS[layer])
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_dirty_org_only_warns_and_builds_every_mart(dirty: Run) -> None:
    assert dirty.result.success
    evaluations = dirty.evaluations()
    failed = {key: e.severity.value for key, e in evaluations.items() if not e.passed}
    warned = expected_warned_checks()
    assert len(warned) == 12 + 10  # all raw tables but user roles and stages; staging tables but campaigns
    assert failed == {**dict.fromkeys(warned, "WARN"), ("quality/quarantine", "quarantine_is_empty"): "WARN"}
    for key, failed_warnings in warned.items():
        metadata = evaluations[key].metadata
        assert (metadata["failed_errors"].value, metadata["failed_warnings"].value) == (0, failed_warnings), (
            key
        )
    # Warnings do not block: every staging model and mart was built in this run.
    from expectations.mart_suites import MART_SUITES
    from expectations.staging_suites import STAGING_SUITES

    materialized = dirty.materialized()
    built = {f"staging/{t}" for t in STAGING_SUITES} | {f"marts/{t}" for t in MART_SUITES}
    built |= {"marts/crm_data_quality", "quality/quarantine", "quality/raw_reconciliation"}
    assert built - materialized == set()
    assert {key for key in evaluations if key[1] == "mart_integrity"} == {
        (f"marts/{t}", "mart_integrity") for t in MART_SUITES
    }


def assert_evidence(rule: str, sample_json: str, evidence: object) -> None:
    sample = json.loads(sample_json)
    if isinstance(evidence, tuple):
        column, value = evidence
        assert [row[column] for row in sample] == [value], (rule, sample)
    else:
        assert sample == [evidence], (rule, sample)


def test_dirty_org_counts_each_warning_rule_exactly(dirty: Run) -> None:
    rules = all_rules()
    results = dirty.rule_results()
    assert set(results) == set(rules)
    actual = {
        rule: (row["success"], row["unexpected_count"], row["severity"], row["exception_message"])
        for rule, row in results.items()
    }
    # raw.salesforce_opportunitystage stays empty: GX's not_null reports no unexpected_count (None)
    expected = {
        rule: (False, DIRTY_FAILURES[rule][0], "warning", None)
        if rule in DIRTY_FAILURES
        else (True, None if rule == "opportunitystage_id_not_null" else 0, rules[rule][2], None)
        for rule in rules
    }
    assert actual == expected
    for rule, (_, evidence) in DIRTY_FAILURES.items():
        assert_evidence(rule, results[rule]["sample"], evidence)
    # the staging series bound counts one series of 1001 occurrences
    assert json.loads(results["stg_calendar_occurrences_per_series_bounded"]["sample"]) == [
        {"uid": "x-hourly@acme.example", "occurrences": 1001}
    ]


def test_dirty_records_are_quarantined_with_their_values_and_kept_out_of_staging(dirty: Run) -> None:
    rows = dirty.query(
        "SELECT source_table, record_id, owner_id, rule, offending_values FROM quality.quarantine "
        "ORDER BY source_table, record_id, rule"
    )
    assert rows == DIRTY_QUARANTINE
    # batch: the load that brought the record; first and last seen: this (first) run
    for source_table, record_id, *_ in DIRTY_QUARANTINE:
        (batch_id, first_seen, last_seen), *more = dirty.query(
            "SELECT batch_id, first_seen, last_seen FROM quality.quarantine "
            "WHERE source_table = ? AND record_id = ?",
            [source_table, record_id],
        )
        assert more == []
        assert first_seen == last_seen
        assert dirty.query(
            f"SELECT _batch_id FROM raw.salesforce_{source_table} WHERE id = ?", [record_id]
        ) == [(batch_id,)]
        model, key = STAGING_KEYS[source_table]
        assert dirty.query(f"SELECT count(*) FROM staging.{model} WHERE {key} = ?", [record_id]) == [(0,)]

    counts: dict[str, int] = {}
    for source_table, _, _, rule, _ in DIRTY_QUARANTINE:
        counts[f"{source_table}.{rule}"] = counts.get(f"{source_table}.{rule}", 0) + 1
    assert quarantine_is_empty_metadata(dirty.evaluations()) == {"quarantined_records": 30, **counts}
    assert reconciliation(dirty) == DIRTY_RECONCILIATION


def test_dirty_org_worklist_lists_the_planted_records(dirty: Run) -> None:
    assert worklist(dirty) == DIRTY_WORKLIST


# ====================================================================== error rules, planted


def _copy_and_null_key(table: str, key: str, where: str) -> list[str]:
    """A row with a null key and a duplicate of an existing row, both copied from a clean row."""
    return [
        f"INSERT INTO {table} SELECT * REPLACE (NULL AS {key}) FROM {table} WHERE {where}",
        f"INSERT INTO {table} SELECT * FROM {table} WHERE {where} AND {key} IS NOT NULL",
    ]


def _key_injections(table: str, key: str, where: str, prefix: str) -> dict[str, tuple[int, list[str]]]:
    null_copy, duplicate = _copy_and_null_key(table, key, where)
    return {f"{prefix}_id_not_null": (1, [null_copy]), f"{prefix}_id_unique": (2, [duplicate])}


RAW_KEYS = {  # raw table -> a record to copy, clean for the raw rules (XE02 is only quarantined)
    "user": "U4", "userrole": "R2", "account": "A5", "contact": "CT1", "lead": "L12", "opportunity": "O13",
    "opportunityhistory": "H16", "task": "T09", "campaign": "C3", "forecastingquota": "Q11",
    "opportunitystage": "XS01", "event": "XE02",
}  # fmt: skip


def _org_stages() -> str:
    """The seed's stages loaded as the org's OpportunityStage rows XS01.. (the dirty org has none), so
    the stage Id rules have a row to copy and the stage rules, which read the org's stages once there
    are any, still count only Bogus Stage."""
    from expectations.raw_suites import seed_stage_names

    rows = []
    for order, name in enumerate(seed_stage_names(), 1):
        label = name.replace("'", "''")
        rows.append(f"('XS{order:02d}', '{label}', '{label}', '{order}')")
    values = ", ".join(rows)
    return (
        f"INSERT INTO raw.salesforce_opportunitystage (id, masterlabel, apiname, sortorder) VALUES {values}"
    )


STAGING_KEYS_TO_COPY = {  # staging table -> (rule prefix, key column, a clean record to copy)
    "stg_salesforce__users": ("stg_user", "rep_id", "rep_id = 'U4'"),
    "stg_salesforce__accounts": ("stg_account", "account_id", "account_id = 'A5'"),
    "stg_salesforce__contacts": ("stg_contact", "contact_id", "contact_id = 'CT1'"),
    "stg_salesforce__leads": ("stg_lead", "lead_id", "lead_id = 'L12'"),
    "stg_salesforce__opportunities": ("stg_opportunity", "opportunity_id", "opportunity_id = 'O13'"),
    "stg_salesforce__opportunity_history": (
        "stg_opportunity_history", "opportunity_history_id", "opportunity_history_id = 'H16'"),
    "stg_salesforce__tasks": ("stg_task", "task_id", "task_id = 'T09'"),
    "stg_salesforce__campaigns": ("stg_campaign", "campaign_id", "campaign_id = 'C3'"),
    "stg_salesforce__forecasting_quotas": ("stg_quota", "quota_id", "quota_id = 'Q11'"),
    "stg_calendar__events": (
        "stg_calendar_event", "event_occurrence_id", "uid = 'e10-wayne-review@acme.example'"),
    "stg_calendar__attendees": (
        "stg_calendar_attendee", "event_attendee_id", "email = 'bruce@wayne.example'"),
}  # fmt: skip


def _error_injections() -> dict[str, tuple[int, list[str]]]:
    """error rule -> (unexpected_count, SQL planting it), each on its own row of the dirty warehouse."""
    injections: dict[str, tuple[int, list[str]]] = {}
    for table, record in RAW_KEYS.items():
        injections |= _key_injections(f"raw.salesforce_{table}", "id", f"id = '{record}'", table)
    occurrences, e10 = "raw.calendar_occurrences", "uid = 'e10-wayne-review@acme.example'"
    injections["calendar_uid_not_null"] = (1, [_copy_and_null_key(occurrences, "uid", e10)[0]])
    injections["calendar_start_not_null"] = (1, [_copy_and_null_key(occurrences, "occurrence_start", e10)[0]])
    for table, (prefix, key, where) in STAGING_KEYS_TO_COPY.items():
        injections |= _key_injections(f"staging.{table}", key, where, prefix)
    updates = {
        "stg_lead_created_at_not_null": "stg_salesforce__leads SET created_at = NULL WHERE lead_id = 'L07'",
        "stg_opportunity_amount_not_negative":
            "stg_salesforce__opportunities SET amount = -1 WHERE opportunity_id = 'O01'",
        "stg_opportunity_probability_0_100":
            "stg_salesforce__opportunities SET probability = 101 WHERE opportunity_id = 'O02'",
        "stg_opportunity_close_date_not_null":
            "stg_salesforce__opportunities SET close_date = NULL WHERE opportunity_id = 'O03'",
        "stg_opportunity_owner_not_null":
            "stg_salesforce__opportunities SET owner_id = NULL WHERE opportunity_id = 'O14'",
        "stg_opportunity_history_amount_not_negative":
            "stg_salesforce__opportunity_history SET amount = -1 WHERE opportunity_history_id = 'H01'",
        "stg_task_created_at_not_null": "stg_salesforce__tasks SET created_at = NULL WHERE task_id = 'T01'",
        "stg_campaign_actual_cost_not_negative":
            "stg_salesforce__campaigns SET actual_cost = -1 WHERE campaign_id = 'C1'",
        "stg_quota_amount_not_negative":
            "stg_salesforce__forecasting_quotas SET quota_amount = -1 WHERE quota_id = 'Q01'",
    }  # fmt: skip
    injections |= {rule: (1, [f"UPDATE staging.{sql}"]) for rule, sql in updates.items()}
    marts = {  # one row each, every other column null; the leads of the rate rows are 0 so the funnel adds up
        "attainment_not_negative":
            "quota_attainment BY NAME SELECT 'quarter' AS period_type, -0.5 AS attainment",
        "bookings_reconcile_with_won_opportunities":
            "quota_attainment BY NAME SELECT 'month' AS period_type, 100.0 AS bookings_amount",
        "lead_to_opportunity_rate_is_a_rate":
            "funnel_conversion BY NAME SELECT 0 AS leads, 1.5 AS lead_to_opportunity_rate",
        "win_rate_is_a_rate": "funnel_conversion BY NAME SELECT 0 AS leads, -0.1 AS win_rate",
        "lead_to_win_rate_is_a_rate": "funnel_conversion BY NAME SELECT 0 AS leads, 2.0 AS lead_to_win_rate",
        "funnel_leads_reconcile_with_leads": "funnel_conversion BY NAME SELECT 1 AS leads",
        "sla_rate_is_a_rate": "lead_response_by_rep_week BY NAME SELECT 1.2 AS sla_rate",
        "stage_conversion_rate_is_a_rate": "stage_conversion BY NAME SELECT 1.5 AS conversion_rate",
        "sales_win_rate_is_a_rate": "sales_velocity BY NAME SELECT 1.1 AS win_rate",
        "trailing_win_rate_is_a_rate": "pipeline_coverage BY NAME SELECT 1.3 AS trailing_win_rate",
        "coverage_ratio_not_negative": "pipeline_coverage BY NAME SELECT -1.0 AS coverage_ratio",
    }  # fmt: skip
    injections |= {rule: (1, [f"INSERT INTO marts.{sql}"]) for rule, sql in marts.items()}
    return injections


ERROR_INJECTIONS = _error_injections()
# A warning rule that no input reaches: the calendar reader swaps a DTEND before DTSTART.
END_BEFORE_START = (
    "UPDATE staging.stg_calendar__events SET end_at = start_at - INTERVAL 1 HOUR "
    "WHERE uid = 'e1-stark-demo@acme.example'"
)


def test_each_error_rule_counts_its_planted_row_and_fails_its_suite(dirty: Run, tmp_path: Path) -> None:
    from expectations.gx_engine import TableSuite, validate_tables
    from expectations.mart_suites import MART_SUITES
    from expectations.raw_suites import RAW_SUITES
    from expectations.staging_suites import STAGING_SUITES

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(dirty.warehouse, warehouse)
    rules = all_rules()
    # Marts first: the funnel rule counts staging leads, which the staging plants change.
    for layer, suites in (("marts", MART_SUITES), ("staging", STAGING_SUITES), ("raw", RAW_SUITES)):
        planted = {r: v for r, v in ERROR_INJECTIONS.items() if rules[r][0] == layer}
        with duckdb.connect(str(warehouse)) as connection:
            if layer == "raw":
                connection.execute(_org_stages())
            for _, statements in planted.values():
                for statement in statements:
                    connection.execute(statement)
            if layer == "staging":
                connection.execute(END_BEFORE_START)
        if layer == "staging":
            planted["stg_calendar_end_after_start"] = (1, [END_BEFORE_START])
        outcomes = validate_tables(
            warehouse,
            [TableSuite(layer, table, f"{layer}.{table}", build()) for table, build in suites.items()],
        )
        for outcome in outcomes:
            counts = {
                o.name: (o.success, o.unexpected_count, o.severity, o.exception_message)
                for o in outcome.outcomes
            }
            expected = {}
            for o in outcome.outcomes:
                count = planted.get(o.name, (0,))[0] + DIRTY_FAILURES.get(o.name, (0,))[0]
                expected[o.name] = (count == 0, count, rules[o.name][2], None)
            assert counts == expected, outcome.table
            # An error rule failing fails the suite: the Dagster check is ERROR and blocks downstream.
            planted_errors = sorted(
                o.name for o in outcome.outcomes if o.name in planted and o.severity == "error"
            )
            assert sorted(o.name for o in outcome.errors) == planted_errors, outcome.table
            assert outcome.success is (not planted_errors), outcome.table


# =============================================================================== blocking run


def test_error_rule_blocks_everything_downstream_of_raw(blocked: Run) -> None:
    assert not blocked.result.success
    evaluations = blocked.evaluations()
    lead_check = evaluations[("raw/salesforce_lead", "raw_integrity")]
    assert (lead_check.passed, lead_check.severity.value) == (False, "ERROR")
    assert (lead_check.metadata["failed_errors"].value, lead_check.metadata["failed_warnings"].value) == (
        1,
        0,
    )
    failed = {key: e.severity.value for key, e in evaluations.items() if not e.passed}
    assert failed == {
        ("raw/salesforce_lead", "raw_integrity"): "ERROR",
        ("raw/salesforce_userrole", "volume"): "WARN",
        **{(f"raw/salesforce_{t}", "freshness"): "WARN" for t in FRESHNESS_TABLES},
    }
    results = blocked.rule_results()
    lead_rules = {r: (v["success"], v["unexpected_count"], v["severity"]) for r, v in results.items()
                  if v["table_name"] == "raw.salesforce_lead"}  # fmt: skip
    # both rows holding the duplicated Id are unexpected
    assert lead_rules == {
        "lead_id_not_null": (True, 0, "error"),
        "lead_id_unique": (False, 2, "error"),
        "lead_email_well_formed": (True, 0, "warning"),
        "lead_owner_exists": (True, 0, "warning"),
    }
    assert json.loads(results["lead_id_unique"]["sample"]) == ["L01", "L01"]
    # Nothing after raw ran: no staging, quality or mart asset built, no check of theirs evaluated.
    assert {key.split("/")[0] for key in blocked.materialized()} == {"raw"}
    assert {(key[0].split("/")[0], key[1]) for key in evaluations} == {
        ("raw", "raw_integrity"),
        ("raw", "volume"),
        ("raw", "freshness"),
        ("raw", "optional_fields_present"),
        ("raw", "sources_not_quarantined"),
    }
    assert {layer for layer, in blocked.query(
        "SELECT DISTINCT layer FROM quality.validation_runs WHERE dagster_run_id = ?", [blocked.result.run_id]
    )} == {"raw"}  # fmt: skip


# ============================================================================== table checks


def check_metadata(run: Run, check_name: str) -> dict[str, dict]:
    return {
        asset.removeprefix("raw/salesforce_"): {
            "passed": e.passed,
            **{k: v.value for k, v in e.metadata.items()},
        }
        for (asset, name), e in run.evaluations().items()
        if name == check_name
    }


def test_volume_warns_past_fifty_percent_change(clean: Run, blocked: Run) -> None:
    # the optional tables are empty (the org has no OpportunityStage or Event rows)
    clean_raw = {table: raw for table, raw, *_ in CLEAN_RECONCILIATION}
    clean_rows = {table: clean_raw.get(table, 0) for table in CRM_TABLES}
    assert list(clean_rows) == list(CRM_TABLES)
    # first run: no baseline, so no change
    assert check_metadata(clean, "volume") == {
        table: {"passed": True, "rows": rows, "previous_rows": None, "change": None}
        for table, rows in clean_rows.items()
    }
    # second run: three roles on three (+100%) warn; one lead row on twelve (+8.3%) passes
    expected = {
        table: {"passed": True, "rows": rows, "previous_rows": rows, "change": 0.0}
        for table, rows in clean_rows.items()
    }
    # the empty tables stay empty: a baseline of 0 rows measures no change
    expected["opportunitystage"] = {"passed": True, "rows": 0, "previous_rows": 0, "change": None}
    expected["event"] = {"passed": True, "rows": 0, "previous_rows": 0, "change": None}
    expected["userrole"] = {"passed": False, "rows": 6, "previous_rows": 3, "change": 1.0}
    expected["lead"] = {"passed": True, "rows": 13, "previous_rows": 12, "change": 1 / 12}
    assert check_metadata(blocked, "volume") == expected
    assert blocked.query(
        "SELECT dagster_run_id, row_count FROM quality.table_volumes "
        "WHERE table_name = 'salesforce_userrole' ORDER BY measured_at"
    ) == [(clean.result.run_id, 3), (blocked.result.run_id, 6)]


def test_freshness_passes_within_36_hours_and_warns_after(clean: Run, blocked: Run) -> None:
    # as_of 2026-05-19: reference 2026-05-20 00:00, 24 h after the newest SystemModstamp
    assert check_metadata(clean, "freshness") == {
        table: {"passed": True, "newest_system_modstamp": "2026-05-19 00:00:00", "age_hours": 24.0,
                "limit_hours": 36.0}
        for table in FRESHNESS_TABLES
    }  # fmt: skip
    # as_of 2026-05-25: reference 2026-05-26 00:00; the leads were touched on 2026-05-20
    expected = {
        table: {"passed": False, "newest_system_modstamp": "2026-05-19 00:00:00", "age_hours": 168.0,
                "limit_hours": 36.0}
        for table in FRESHNESS_TABLES
    }  # fmt: skip
    expected["lead"] = {
        **expected["lead"],
        "newest_system_modstamp": "2026-05-20 00:00:00",
        "age_hours": 144.0,
    }
    assert check_metadata(blocked, "freshness") == expected
    assert {e.severity.value for (_, name), e in blocked.evaluations().items() if name == "freshness"} == {
        "WARN"
    }


# ===================================================================================== docs


def test_data_quality_doc_names_every_rule() -> None:
    doc = PROJECT_ROOT / "docs" / "data-quality.md"
    assert doc.is_file(), "docs/data-quality.md is missing"
    text = doc.read_text()
    names = set(all_rules()) | quarantine_rule_names() | hygiene_check_names() | set(TABLE_CHECKS)
    missing = sorted(name for name in names if not re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text))
    assert missing == []
