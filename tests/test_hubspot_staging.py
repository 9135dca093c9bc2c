# ruff: noqa: E501  (hand-written rows read best one record per line)
"""HubSpot staging: hand-written raw HubSpot rows mapped onto the canonical CRM models (stg_crm__*).

Every expected value below is written out by hand from the rows, never computed by the models.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_DIR = PROJECT_ROOT / "dbt_project"
LOADED_AT = datetime(2026, 6, 15, 3, 0)

RAW_TABLES: dict[str, list[dict[str, str | None]]] = {
    "hubspot_owners": [
        {"id": "101", "email": "Ann.Lee@acme.example", "firstname": "Ann", "lastname": "Lee", "archived": "false",
         "createdat": "2024-01-02T09:00:00.000Z", "updatedat": "2026-01-02T09:00:00.000Z",
         "team_id": "7", "team_name": "East AE"},
        {"id": "102", "email": "bo@acme.example", "firstname": "Bo", "lastname": None, "archived": "true",
         "createdat": "2024-01-03T09:00:00.000Z", "updatedat": "2026-02-01T09:00:00.000Z",
         "team_id": "7", "team_name": "East AE"},
    ],
    "hubspot_deal_stages": [
        {"id": "s_open", "label": "Discovery", "displayorder": "0", "isclosed": "false", "probability": "0.2",
         "archived": "false", "pipeline_id": "default", "pipeline_displayorder": "0"},
        {"id": "s_commit", "label": "Contract Sent", "displayorder": "1", "isclosed": "false",
         "probability": "0.9", "archived": "false", "pipeline_id": "default", "pipeline_displayorder": "0"},
        {"id": "s_won", "label": "Closed Won", "displayorder": "2", "isclosed": "true", "probability": "1.0",
         "archived": "false", "pipeline_id": "default", "pipeline_displayorder": "0"},
        {"id": "s_lost", "label": "Closed Lost", "displayorder": "3", "isclosed": "true", "probability": "0.0",
         "archived": "false", "pipeline_id": "default", "pipeline_displayorder": "0"},
        # The same label in a later pipeline keeps the first pipeline's place.
        {"id": "p2_won", "label": "Closed Won", "displayorder": "0", "isclosed": "true", "probability": "1.0",
         "archived": "false", "pipeline_id": "renewals", "pipeline_displayorder": "1"},
    ],
    "hubspot_companies": [
        {"id": "201", "name": "Globex", "industry": "SOFTWARE", "numberofemployees": "250",
         "annualrevenue": "1200000.50", "country": "Germany", "hubspot_owner_id": "101",
         "createdate": "2025-01-05T10:00:00.000Z", "hs_lastmodifieddate": "2026-03-01T10:00:00.000Z",
         "archived": "false"},
        {"id": "202", "name": "Gone Inc", "industry": None, "numberofemployees": None, "annualrevenue": None,
         "country": None, "hubspot_owner_id": "101", "createdate": "2025-01-06T10:00:00.000Z",
         "hs_lastmodifieddate": "2026-03-02T10:00:00.000Z", "archived": "true"},
    ],
    "hubspot_contacts": [
        {"id": "301", "firstname": "Cy", "lastname": "Ng", "email": "CY@Globex.example", "jobtitle": "CFO",
         "company": "Globex", "industry": "SOFTWARE", "hs_analytics_source": "ORGANIC_SEARCH",
         "hs_lead_status": "CONNECTED", "lifecyclestage": "opportunity",
         "hs_lifecyclestage_opportunity_date": "2025-02-10T00:00:00.000Z",
         "hs_lifecyclestage_customer_date": "2025-03-01T00:00:00.000Z", "hubspot_owner_id": "101",
         "associatedcompanyid": "201", "createdate": "2025-02-01T08:30:00.000Z",
         "lastmodifieddate": "2026-03-03T10:00:00.000Z", "archived": "false"},
        {"id": "302", "firstname": "Di", "lastname": "Ro", "email": "di@globex.example", "jobtitle": None,
         "company": "Globex", "industry": None, "hs_analytics_source": "OFFLINE", "hs_lead_status": "NEW",
         "lifecyclestage": "customer", "hs_lifecyclestage_opportunity_date": None,
         "hs_lifecyclestage_customer_date": "2025-04-20T00:00:00.000Z", "hubspot_owner_id": "102",
         "associatedcompanyid": "201", "createdate": "2025-03-01T08:30:00.000Z",
         "lastmodifieddate": "2026-03-04T10:00:00.000Z", "archived": "false"},
        {"id": "303", "firstname": "Ed", "lastname": "Po", "email": "ed@else.example", "jobtitle": None,
         "company": "Else", "industry": None, "hs_analytics_source": None, "hs_lead_status": "NEW",
         "lifecyclestage": "lead", "hs_lifecyclestage_opportunity_date": None,
         "hs_lifecyclestage_customer_date": None, "hubspot_owner_id": None, "associatedcompanyid": None,
         "createdate": "2025-05-01T08:30:00.000Z", "lastmodifieddate": "2026-03-05T10:00:00.000Z",
         "archived": "false"},
    ],
    "hubspot_deals": [
        {"id": "401", "dealname": "Globex - Pilot", "amount": "50000", "dealstage": "s_won",
         "closedate": "2025-04-30T00:00:00.000Z", "dealtype": "newbusiness", "hs_analytics_source": "OFFLINE",
         "hs_deal_stage_probability": "1", "hs_manual_forecast_category": "CLOSED", "hs_is_closed": "true",
         "hs_is_closed_won": "true", "hubspot_owner_id": "101", "createdate": "2025-02-10T12:00:00.000Z",
         "hs_lastmodifieddate": "2026-03-06T10:00:00.000Z", "archived": "false",
         "associations_companies": "201,202", "associations_contacts": "301,302"},
        {"id": "402", "dealname": "Globex - Upsell", "amount": "12000.5", "dealstage": "s_commit",
         "closedate": "2026-07-15T00:00:00.000Z", "dealtype": "existingbusiness", "hs_analytics_source": None,
         "hs_deal_stage_probability": "0.9", "hs_manual_forecast_category": None, "hs_is_closed": "false",
         "hs_is_closed_won": "false", "hubspot_owner_id": "101", "createdate": "2026-05-01T12:00:00.000Z",
         "hs_lastmodifieddate": "2026-06-01T10:00:00.000Z", "archived": "false",
         "associations_companies": "201", "associations_contacts": None},
        {"id": "403", "dealname": "Bad amount", "amount": "lots", "dealstage": "s_open",
         "closedate": "2026-08-01T00:00:00.000Z", "dealtype": "newbusiness", "hs_analytics_source": None,
         "hs_deal_stage_probability": "0.2", "hs_manual_forecast_category": "PIPELINE", "hs_is_closed": "false",
         "hs_is_closed_won": "false", "hubspot_owner_id": "101", "createdate": "2026-05-02T12:00:00.000Z",
         "hs_lastmodifieddate": "2026-06-02T10:00:00.000Z", "archived": "false",
         "associations_companies": None, "associations_contacts": None},
        {"id": "404", "dealname": "No owner, odd probability", "amount": "100", "dealstage": "s_open",
         "closedate": "2026-08-01T00:00:00.000Z", "dealtype": "newbusiness", "hs_analytics_source": None,
         "hs_deal_stage_probability": "1.5", "hs_manual_forecast_category": None, "hs_is_closed": "false",
         "hs_is_closed_won": "false", "hubspot_owner_id": None, "createdate": "2026-05-03T12:00:00.000Z",
         "hs_lastmodifieddate": "2026-06-03T10:00:00.000Z", "archived": "false",
         "associations_companies": None, "associations_contacts": None},
    ],
    "hubspot_deal_property_history": [
        # Deal 401: created in Discovery for 40,000 closing in April; amount raised on Mar 1; won Apr 28.
        {"id": "401:dealstage:1", "deal_id": "401", "property": "dealstage", "value": "s_open",
         "timestamp": "2025-02-10T12:00:00.000Z"},
        {"id": "401:amount:1", "deal_id": "401", "property": "amount", "value": "40000",
         "timestamp": "2025-02-10T12:00:00.000Z"},
        {"id": "401:closedate:0", "deal_id": "401", "property": "closedate",
         "value": "2025-04-30T00:00:00.000Z", "timestamp": "2025-02-10T12:00:00.000Z"},
        {"id": "401:hs_deal_stage_probability:1", "deal_id": "401", "property": "hs_deal_stage_probability",
         "value": "0.2", "timestamp": "2025-02-10T12:00:00.000Z"},
        {"id": "401:amount:0", "deal_id": "401", "property": "amount", "value": "50000",
         "timestamp": "2025-03-01T09:00:00.000Z"},
        {"id": "401:dealstage:0", "deal_id": "401", "property": "dealstage", "value": "s_won",
         "timestamp": "2025-04-28T16:00:00.000Z"},
        {"id": "401:hs_deal_stage_probability:0", "deal_id": "401", "property": "hs_deal_stage_probability",
         "value": "1", "timestamp": "2025-04-28T16:00:00.000Z"},
        {"id": "401:hs_manual_forecast_category:0", "deal_id": "401",
         "property": "hs_manual_forecast_category", "value": "CLOSED", "timestamp": "2025-04-28T16:00:00.000Z"},
    ],
    "hubspot_calls": [
        {"id": "501", "hs_call_title": "Intro call", "hs_call_status": "COMPLETED", "hubspot_owner_id": "101",
         "hs_timestamp": "2025-02-01T09:15:00.000Z", "hs_createdate": "2025-02-01T09:20:00.000Z",
         "hs_lastmodifieddate": "2025-02-01T09:20:00.000Z", "archived": "false",
         "associations_contacts": "301", "associations_deals": None, "associations_companies": "201"},
    ],
    "hubspot_emails": [
        {"id": "502", "hs_email_subject": "Proposal", "hs_email_status": "SENT", "hubspot_owner_id": "101",
         "hs_timestamp": "2025-02-11T10:00:00.000Z", "hs_createdate": "2025-02-11T10:00:00.000Z",
         "hs_lastmodifieddate": "2025-02-11T10:00:00.000Z", "archived": "false",
         "associations_contacts": "301", "associations_deals": "401", "associations_companies": "201"},
        {"id": "503", "hs_email_subject": "Deleted", "hs_email_status": "SENT", "hubspot_owner_id": "101",
         "hs_timestamp": "2025-02-12T10:00:00.000Z", "hs_createdate": "2025-02-12T10:00:00.000Z",
         "hs_lastmodifieddate": "2025-02-12T10:00:00.000Z", "archived": "true",
         "associations_contacts": None, "associations_deals": None, "associations_companies": None},
    ],
    "hubspot_meetings": [
        {"id": "504", "hs_meeting_title": "Demo", "hs_meeting_outcome": "SCHEDULED", "hubspot_owner_id": "102",
         "hs_timestamp": "2025-02-20T15:00:00.000Z", "hs_createdate": "2025-02-12T08:00:00.000Z",
         "hs_lastmodifieddate": "2025-02-12T08:00:00.000Z", "archived": "false",
         "associations_contacts": "302", "associations_deals": None, "associations_companies": "201"},
    ],
    "hubspot_tasks": [
        {"id": "505", "hs_task_subject": "Send contract", "hs_task_status": "WAITING", "hubspot_owner_id": "101",
         "hs_timestamp": "2026-06-20T00:00:00.000Z", "hs_createdate": "2026-06-01T08:00:00.000Z",
         "hs_lastmodifieddate": "2026-06-01T08:00:00.000Z", "archived": "false",
         "associations_contacts": None, "associations_deals": "402", "associations_companies": None},
    ],
}  # fmt: skip


def _write_raw(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("CREATE SCHEMA raw")
        for table, rows in RAW_TABLES.items():
            columns = list(dict.fromkeys(column for row in rows for column in row))
            column_sql = ", ".join(f'"{c}" VARCHAR' for c in columns)
            connection.execute(
                f'CREATE TABLE raw."{table}" ({column_sql}, _loaded_at TIMESTAMP, _batch_id VARCHAR)'
            )
            for row in rows:
                values = [row.get(c) for c in columns]
                placeholders = ", ".join("?" for _ in range(len(columns) + 2))
                connection.execute(
                    f'INSERT INTO raw."{table}" VALUES ({placeholders})', [*values, LOADED_AT, "b1"]
                )


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hubspot_staging")
    warehouse = base / "warehouse.duckdb"
    _write_raw(warehouse)
    env = {
        **os.environ,
        "SALESOPS_CRM_SOURCE": "hubspot",
        "SALESOPS_WAREHOUSE": str(warehouse),
        "SALESOPS_AS_OF": "2026-06-15",
    }
    dbt = Path(sys.executable).with_name("dbt")
    completed = subprocess.run(
        [
            str(dbt), "build", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
            "--target-path", str(base / "target"), "--log-path", str(base / "logs"),
            "--select", "resource_type:seed path:models/staging/hubspot path:models/staging/crm quarantine raw_reconciliation",
        ],
        cwd=DBT_DIR, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-4000:]
    return warehouse


def rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_owners_and_teams_become_users_and_roles(staged: Path) -> None:
    assert rows(staged, "SELECT * FROM staging.stg_crm__users ORDER BY rep_id") == [
        ("101", "Ann Lee", "ann.lee@acme.example", "acme.example", None, "7", None, True, "UTC", None,
         datetime(2024, 1, 2, 9), datetime(2026, 1, 2, 9)),
        ("102", "Bo", "bo@acme.example", "acme.example", None, "7", None, False, "UTC", None,
         datetime(2024, 1, 3, 9), datetime(2026, 2, 1, 9)),
    ]  # fmt: skip
    assert rows(staged, "SELECT * FROM staging.stg_crm__user_roles") == [
        ("7", "East AE", None, datetime(2026, 2, 1, 9))
    ]


def test_companies_become_accounts_without_archived_ones(staged: Path) -> None:
    assert rows(staged, "SELECT * FROM staging.stg_crm__accounts") == [
        ("201", "Globex", "SOFTWARE", 250, 1200000.5, "Germany", "101",
         datetime(2025, 1, 5, 10), datetime(2026, 3, 1, 10)),
    ]  # fmt: skip


def test_pipeline_stages_in_order_with_categories_from_probability(staged: Path) -> None:
    assert rows(staged, "SELECT * FROM staging.stg_crm__opportunity_stages ORDER BY stage_order") == [
        ("Discovery", 1, False, False, 20.0, "Pipeline"),
        ("Contract Sent", 2, False, False, 90.0, "Commit"),
        ("Closed Won", 3, True, True, 100.0, "Closed"),
        ("Closed Lost", 4, True, False, 0.0, "Omitted"),
    ]


def test_deals_become_opportunities_and_bad_ones_are_quarantined(staged: Path) -> None:
    assert rows(staged, "SELECT * FROM staging.stg_crm__opportunities ORDER BY opportunity_id") == [
        ("401", "Globex - Pilot", "201", "101", "New Business", "OFFLINE", None, "Closed Won", 50000.0,
         100.0, "Closed", date(2025, 4, 30), True, True, datetime(2025, 2, 10, 12), datetime(2026, 3, 6, 10)),
        ("402", "Globex - Upsell", "201", "101", "Existing Business", None, None, "Contract Sent", 12000.5,
         90.0, "Commit", date(2026, 7, 15), False, False, datetime(2026, 5, 1, 12), datetime(2026, 6, 1, 10)),
    ]  # fmt: skip
    assert rows(staged, "SELECT source_table, record_id, rule FROM quality.quarantine ORDER BY 2, 3") == [
        ("deals", "403", "amount_not_a_number"),
        ("deals", "404", "missing_owner"),
        ("deals", "404", "probability_out_of_range"),
    ]


def test_property_history_becomes_one_snapshot_per_change(staged: Path) -> None:
    assert rows(
        staged,
        "SELECT opportunity_history_id, opportunity_id, stage_name, amount, probability, forecast_category, "
        "close_date, created_at FROM staging.stg_crm__opportunity_history ORDER BY created_at",
    ) == [
        ("401-1739188800000", "401", "Discovery", 40000.0, 20.0, None, date(2025, 4, 30),
         datetime(2025, 2, 10, 12)),
        ("401-1740819600000", "401", "Discovery", 50000.0, 20.0, None, date(2025, 4, 30),
         datetime(2025, 3, 1, 9)),
        ("401-1745856000000", "401", "Closed Won", 50000.0, 100.0, "Closed", date(2025, 4, 30),
         datetime(2025, 4, 28, 16)),
    ]  # fmt: skip


def test_every_contact_is_a_lead_converted_when_it_reached_opportunity_or_customer(staged: Path) -> None:
    assert rows(
        staged,
        "SELECT lead_id, email, lead_source, status, owner_id, is_converted, converted_date, "
        "converted_account_id, converted_contact_id, converted_opportunity_id, created_at "
        "FROM staging.stg_crm__leads ORDER BY lead_id",
    ) == [
        ("301", "cy@globex.example", "ORGANIC_SEARCH", "CONNECTED", "101", True, date(2025, 2, 10), "201",
         "301", "401", datetime(2025, 2, 1, 8, 30)),
        ("302", "di@globex.example", "OFFLINE", "NEW", "102", True, date(2025, 4, 20), "201", "302", None,
         datetime(2025, 3, 1, 8, 30)),
        ("303", "ed@else.example", None, "NEW", None, False, None, None, None, None,
         datetime(2025, 5, 1, 8, 30)),
    ]  # fmt: skip
    assert rows(staged, "SELECT contact_id, account_id, title FROM staging.stg_crm__contacts ORDER BY 1") == [
        ("301", "201", "CFO"),
        ("302", "201", None),
        ("303", None, None),
    ]


def test_calls_emails_meetings_and_tasks_become_tasks(staged: Path) -> None:
    assert rows(staged, "SELECT * FROM staging.stg_crm__tasks ORDER BY task_id") == [
        ("501", "301", "201", "101", "Intro call", "Call", "Completed", date(2025, 2, 1),
         datetime(2025, 2, 1, 9, 20), datetime(2025, 2, 1, 9, 20)),
        ("502", "301", "401", "101", "Proposal", "Email", "Completed", date(2025, 2, 11),
         datetime(2025, 2, 11, 10), datetime(2025, 2, 11, 10)),
        ("504", "302", "201", "102", "Demo", "Meeting", "Not Started", date(2025, 2, 20),
         datetime(2025, 2, 12, 8), datetime(2025, 2, 12, 8)),
        ("505", None, "402", "101", "Send contract", "Task", "Waiting on someone else", date(2026, 6, 20),
         datetime(2026, 6, 1, 8), datetime(2026, 6, 1, 8)),
    ]  # fmt: skip


def test_every_raw_record_is_reconciled(staged: Path) -> None:
    assert rows(
        staged,
        "SELECT source_table, raw_records, staging_records, quarantined_records, deleted_records, "
        "is_reconciled FROM quality.raw_reconciliation ORDER BY 1",
    ) == [
        ("calls", 1, 1, 0, 0, True),
        ("companies", 2, 1, 0, 1, True),
        ("contacts", 3, 3, 0, 0, True),
        ("deals", 4, 2, 2, 0, True),
        ("emails", 2, 1, 0, 1, True),
        ("meetings", 1, 1, 0, 0, True),
        ("owners", 2, 2, 0, 0, True),
        ("tasks", 1, 1, 0, 0, True),
    ]
