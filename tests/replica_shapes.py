# ruff: noqa: E501 - the org and the tools' names are tables, one record per line
"""One small org written, by hand, in the shapes replication tools give a Salesforce replica.

The org is written once in Salesforce API names (``ORG``). Each tool's replica is then written the
way that tool's published schema documentation describes it, with the table and column names
spelled out below rather than derived by our own naming rule:

- Fivetran (Salesforce connector ERD): snake_case tables and columns, custom fields with a single
  underscore before ``c`` (``hire_date_c``), ``_fivetran_synced`` and ``_fivetran_deleted`` on
  every table; ``opportunity`` in history mode (``_fivetran_active``, ``_fivetran_start``,
  ``_fivetran_end``, one row per version); ``task`` without ``is_deleted`` (a record deleted in
  Salesforce arrives as ``_fivetran_deleted = true``); ``campaign`` without ``system_modstamp``
  (a column deselected in the connector), so ``_fivetran_synced`` is its cursor. Written to
  PostgreSQL with real BOOLEAN, DATE, TIMESTAMPTZ and DOUBLE PRECISION columns, as Fivetran's
  PostgreSQL destination types them.
- Airbyte (Salesforce source, Destinations V2): tables named like the streams (the object API
  names), columns in API names, plus ``_airbyte_raw_id``, ``_airbyte_extracted_at``,
  ``_airbyte_meta`` and ``_airbyte_generation_id``.
- Stitch (Salesforce integration, PostgreSQL destination): lower-case table and column names (the
  destination folds case), plus ``_sdc_batched_at``, ``_sdc_extracted_at``,
  ``_sdc_received_at``, ``_sdc_sequence`` and ``_sdc_table_version``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

API_ORG: dict[str, list[dict[str, object]]] = {
    "UserRole": [
        {"Id": "00E000000000001AAA", "Name": "Sales Leadership", "ParentRoleId": None},
        {"Id": "00E000000000002AAA", "Name": "AE East", "ParentRoleId": "00E000000000001AAA"},
    ],
    "User": [
        {"Id": "005000000000001AAA", "Name": "Maria Manager", "Email": "maria@acme.example", "Title": "VP Sales",
         "UserRoleId": "00E000000000001AAA", "ManagerId": None, "IsActive": True,
         "TimeZoneSidKey": "America/New_York", "Hire_Date__c": None, "CreatedDate": "2024-01-02T09:00:00Z"},
        {"Id": "005000000000002AAA", "Name": "Alice Adams", "Email": "alice@acme.example",
         "Title": "Account Executive", "UserRoleId": "00E000000000002AAA", "ManagerId": "005000000000001AAA",
         "IsActive": True, "TimeZoneSidKey": "America/New_York", "Hire_Date__c": "2026-01-05",
         "CreatedDate": "2026-01-05T09:00:00Z"},
    ],
    "Account": [
        {"Id": "001000000000001AAA", "Name": "Globex", "Industry": "Manufacturing", "NumberOfEmployees": 2500,
         "AnnualRevenue": 500000000.0, "BillingCountry": "United States", "OwnerId": "005000000000002AAA",
         "IsDeleted": False},
        {"Id": "001000000000002AAA", "Name": "Initech", "Industry": "Technology", "NumberOfEmployees": 150,
         "AnnualRevenue": 20000000.0, "BillingCountry": "United States", "OwnerId": "005000000000002AAA",
         "IsDeleted": False},
    ],
    "Contact": [
        {"Id": "003000000000001AAA", "AccountId": "001000000000001AAA", "FirstName": "Mike",
         "LastName": "Ross", "Email": "mike@globex.example", "Title": "CTO", "OwnerId": "005000000000002AAA",
         "IsDeleted": False},
    ],
    "Lead": [
        {"Id": "00Q000000000001AAA", "FirstName": "Ann", "LastName": "Lee", "Email": "ann.lee@globex.example",
         "Company": "Globex", "Industry": "Manufacturing", "LeadSource": "Web", "Status": "Converted",
         "OwnerId": "005000000000002AAA", "IsConverted": True, "ConvertedDate": "2026-04-08",
         "ConvertedAccountId": "001000000000001AAA", "ConvertedContactId": "003000000000001AAA",
         "ConvertedOpportunityId": "006000000000001AAA", "CreatedDate": "2026-04-06T14:00:00Z",
         "IsDeleted": False},
        {"Id": "00Q000000000002AAA", "FirstName": "Peter", "LastName": "Park",
         "Email": "peter.park@initech.example", "Company": "Initech", "Industry": "Technology",
         "LeadSource": "Web", "Status": "Working", "OwnerId": "005000000000002AAA", "IsConverted": False,
         "ConvertedDate": None, "ConvertedAccountId": None, "ConvertedContactId": None,
         "ConvertedOpportunityId": None, "CreatedDate": "2026-04-07T20:00:00Z", "IsDeleted": False},
    ],
    "Opportunity": [
        {"Id": "006000000000001AAA", "Name": "Globex platform", "AccountId": "001000000000001AAA",
         "OwnerId": "005000000000002AAA", "Type": "New Business", "LeadSource": "Web",
         "CampaignId": "701000000000001AAA", "StageName": "Closed Won", "Amount": 10000.0, "Probability": 100.0,
         "ForecastCategoryName": "Closed", "CloseDate": "2026-04-20", "IsClosed": True, "IsWon": True,
         "CreatedDate": "2026-04-08T15:00:00Z", "IsDeleted": False},
        {"Id": "006000000000002AAA", "Name": "Initech pilot", "AccountId": "001000000000002AAA",
         "OwnerId": "005000000000002AAA", "Type": "New Business", "LeadSource": "Web", "CampaignId": None,
         "StageName": "Negotiation/Review", "Amount": 5000.0, "Probability": 90.0,
         "ForecastCategoryName": "Commit", "CloseDate": "2026-06-30", "IsClosed": False, "IsWon": False,
         "CreatedDate": "2026-04-09T15:00:00Z", "IsDeleted": False},
        {"Id": "006000000000003AAA", "Name": "Globex add-on", "AccountId": "001000000000001AAA",
         "OwnerId": "005000000000002AAA", "Type": "Existing Business", "LeadSource": "Partner",
         "CampaignId": None, "StageName": "Closed Won", "Amount": 7000.0, "Probability": 100.0,
         "ForecastCategoryName": "Closed", "CloseDate": "2026-05-02", "IsClosed": True, "IsWon": True,
         "CreatedDate": "2026-04-10T15:00:00Z", "IsDeleted": True},  # in the recycle bin
        {"Id": "006000000000004AAA", "Name": "Initech expansion", "AccountId": "001000000000002AAA",
         "OwnerId": "005000000000002AAA", "Type": "Existing Business", "LeadSource": "Web", "CampaignId": None,
         "StageName": "Closed Lost", "Amount": 3000.0, "Probability": 0.0, "ForecastCategoryName": "Omitted",
         "CloseDate": "2026-05-10", "IsClosed": True, "IsWon": False, "CreatedDate": "2026-04-12T15:00:00Z",
         "IsDeleted": False},
    ],
    "OpportunityHistory": [
        {"Id": "008000000000001AAA", "OpportunityId": "006000000000001AAA", "StageName": "Prospecting",
         "Amount": 10000.0, "Probability": 10.0, "ForecastCategory": "Pipeline", "CloseDate": "2026-05-31",
         "CreatedDate": "2026-04-08T15:00:00Z", "IsDeleted": False},
        {"Id": "008000000000002AAA", "OpportunityId": "006000000000001AAA", "StageName": "Closed Won",
         "Amount": 10000.0, "Probability": 100.0, "ForecastCategory": "Closed", "CloseDate": "2026-04-20",
         "CreatedDate": "2026-04-20T16:00:00Z", "IsDeleted": False},
        {"Id": "008000000000003AAA", "OpportunityId": "006000000000002AAA", "StageName": "Prospecting",
         "Amount": 4000.0, "Probability": 10.0, "ForecastCategory": "Pipeline", "CloseDate": "2026-06-30",
         "CreatedDate": "2026-04-09T15:00:00Z", "IsDeleted": False},
        {"Id": "008000000000004AAA", "OpportunityId": "006000000000002AAA", "StageName": "Negotiation/Review",
         "Amount": 5000.0, "Probability": 90.0, "ForecastCategory": "Forecast", "CloseDate": "2026-06-30",
         "CreatedDate": "2026-05-04T15:00:00Z", "IsDeleted": False},
        {"Id": "008000000000005AAA", "OpportunityId": "006000000000004AAA", "StageName": "Closed Lost",
         "Amount": 3000.0, "Probability": 0.0, "ForecastCategory": "Omitted", "CloseDate": "2026-05-10",
         "CreatedDate": "2026-05-10T15:00:00Z", "IsDeleted": False},
    ],
    "Task": [
        {"Id": "00T000000000001AAA", "WhoId": "00Q000000000001AAA", "WhatId": None,
         "OwnerId": "005000000000002AAA", "Subject": "Call", "TaskSubtype": "Call", "Status": "Completed",
         "ActivityDate": "2026-04-06", "CreatedDate": "2026-04-06T14:25:00Z", "IsDeleted": False},
        {"Id": "00T000000000002AAA", "WhoId": "00Q000000000002AAA", "WhatId": None,
         "OwnerId": "005000000000002AAA", "Subject": "Email", "TaskSubtype": "Email", "Status": "Completed",
         "ActivityDate": "2026-04-07", "CreatedDate": "2026-04-07T20:30:00Z", "IsDeleted": True},
    ],
    "Campaign": [
        {"Id": "701000000000001AAA", "Name": "Spring webinar", "Type": "Webinar", "Status": "Completed",
         "StartDate": "2026-03-01", "EndDate": "2026-03-31", "BudgetedCost": 1000.0, "ActualCost": 800.0,
         "CreatedDate": "2026-02-01T09:00:00Z", "IsDeleted": False},
    ],
    "ForecastingQuota": [
        {"Id": "0J9000000000001AAA", "QuotaOwnerId": "005000000000002AAA", "StartDate": "2026-04-01",
         "QuotaAmount": 20000.0},
        {"Id": "0J9000000000002AAA", "QuotaOwnerId": "005000000000002AAA", "StartDate": "2026-05-01",
         "QuotaAmount": 20000.0},
        {"Id": "0J9000000000003AAA", "QuotaOwnerId": "005000000000002AAA", "StartDate": "2026-06-01",
         "QuotaAmount": 20000.0},
    ],
}  # fmt: skip

for _row in [*API_ORG["Account"], *API_ORG["Contact"]]:
    _row["CreatedDate"] = "2024-09-02T09:00:00Z"

MODSTAMP = "2026-05-19T00:00:00Z"
SYNCED = "2026-05-19T01:00:00Z"

# Fivetran's names for each object and field (its Salesforce ERD), written out.
FIVETRAN_TABLES = {
    "UserRole": ("user_role", {"Id": "id", "Name": "name", "ParentRoleId": "parent_role_id"}),
    "User": ("user", {"Id": "id", "Name": "name", "Email": "email", "Title": "title",
                      "UserRoleId": "user_role_id", "ManagerId": "manager_id", "IsActive": "is_active",
                      "TimeZoneSidKey": "time_zone_sid_key", "Hire_Date__c": "hire_date_c",
                      "CreatedDate": "created_date"}),
    "Account": ("account", {"Id": "id", "Name": "name", "Industry": "industry",
                            "NumberOfEmployees": "number_of_employees", "AnnualRevenue": "annual_revenue",
                            "BillingCountry": "billing_country", "OwnerId": "owner_id", "IsDeleted": "is_deleted",
                            "CreatedDate": "created_date"}),
    "Contact": ("contact", {"Id": "id", "AccountId": "account_id", "FirstName": "first_name",
                            "LastName": "last_name", "Email": "email", "Title": "title", "OwnerId": "owner_id",
                            "IsDeleted": "is_deleted", "CreatedDate": "created_date"}),
    "Lead": ("lead", {"Id": "id", "FirstName": "first_name", "LastName": "last_name", "Email": "email",
                      "Company": "company", "Industry": "industry", "LeadSource": "lead_source",
                      "Status": "status", "OwnerId": "owner_id", "IsConverted": "is_converted",
                      "ConvertedDate": "converted_date", "ConvertedAccountId": "converted_account_id",
                      "ConvertedContactId": "converted_contact_id",
                      "ConvertedOpportunityId": "converted_opportunity_id", "CreatedDate": "created_date",
                      "IsDeleted": "is_deleted"}),
    "Opportunity": ("opportunity", {"Id": "id", "Name": "name", "AccountId": "account_id",
                                    "OwnerId": "owner_id", "Type": "type", "LeadSource": "lead_source",
                                    "CampaignId": "campaign_id", "StageName": "stage_name", "Amount": "amount",
                                    "Probability": "probability",
                                    "ForecastCategoryName": "forecast_category_name", "CloseDate": "close_date",
                                    "IsClosed": "is_closed", "IsWon": "is_won", "CreatedDate": "created_date",
                                    "IsDeleted": "is_deleted"}),
    "OpportunityHistory": ("opportunity_history", {"Id": "id", "OpportunityId": "opportunity_id",
                                                   "StageName": "stage_name", "Amount": "amount",
                                                   "Probability": "probability",
                                                   "ForecastCategory": "forecast_category",
                                                   "CloseDate": "close_date", "CreatedDate": "created_date",
                                                   "IsDeleted": "is_deleted"}),
    "Task": ("task", {"Id": "id", "WhoId": "who_id", "WhatId": "what_id", "OwnerId": "owner_id",
                      "Subject": "subject", "TaskSubtype": "task_subtype", "Status": "status",
                      "ActivityDate": "activity_date", "CreatedDate": "created_date"}),  # no is_deleted
    "Campaign": ("campaign", {"Id": "id", "Name": "name", "Type": "type", "Status": "status",
                              "StartDate": "start_date", "EndDate": "end_date", "BudgetedCost": "budgeted_cost",
                              "ActualCost": "actual_cost", "CreatedDate": "created_date",
                              "IsDeleted": "is_deleted"}),  # no system_modstamp
    "ForecastingQuota": ("forecasting_quota", {"Id": "id", "QuotaOwnerId": "quota_owner_id",
                                               "StartDate": "start_date", "QuotaAmount": "quota_amount"}),
}  # fmt: skip

# PostgreSQL types Fivetran gives the fields (everything else is TEXT).
_BOOLEAN = {"IsActive", "IsDeleted", "IsConverted", "IsClosed", "IsWon"}
_DATE = {"Hire_Date__c", "ConvertedDate", "CloseDate", "ActivityDate", "StartDate", "EndDate"}
_NUMBER = {
    "NumberOfEmployees",
    "AnnualRevenue",
    "Amount",
    "Probability",
    "BudgetedCost",
    "ActualCost",
    "QuotaAmount",
}
_TIMESTAMP = {"CreatedDate"}


def _api_value(value: object) -> object:
    """A value as a SQLite replica of the API holds it (text, like every other replica here)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _write_sqlite_replica(
    path: Path,
    lower_case: bool = False,
    meta: tuple[str, ...] = (),
    meta_values: object = None,
    drop: dict[str, set[str]] | None = None,
) -> None:
    """The org in SQLite under API names (lower-cased if asked), with a tool's metadata columns
    (``meta_values(table, row_number)`` gives their values)."""
    drop = drop or {}
    with sqlite3.connect(path) as connection:
        for api_table, rows in API_ORG.items():
            table = api_table.lower() if lower_case else api_table
            columns = [c for c in [*rows[0], "SystemModstamp"] if c not in drop.get(api_table, set())]
            names = [c.lower() if lower_case else c for c in columns] + list(meta)
            connection.execute(f'CREATE TABLE "{table}" ({", ".join(f"{n!r} TEXT" for n in names)})')
            for number, row in enumerate(rows):
                values = [_api_value({**row, "SystemModstamp": MODSTAMP}[c]) for c in columns]
                values += meta_values(api_table, number) if meta else []  # type: ignore[operator]
                marks = ", ".join("?" for _ in values)
                connection.execute(f'INSERT INTO "{table}" VALUES ({marks})', values)


def write_api_replica(path: Path, drop: dict[str, set[str]] | None = None) -> None:
    """API names in SQLite; ``drop`` leaves fields out of a table's columns (``{"User": {...}}``)."""
    _write_sqlite_replica(path, drop=drop)


def write_airbyte_replica(path: Path) -> None:
    _write_sqlite_replica(
        path,
        meta=("_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta", "_airbyte_generation_id"),
        meta_values=lambda table, number: [f"raw-{table}-{number}", SYNCED, json.dumps({"changes": []}), "1"],
    )


def write_stitch_replica(path: Path) -> None:
    _write_sqlite_replica(
        path,
        lower_case=True,
        meta=(
            "_sdc_batched_at",
            "_sdc_extracted_at",
            "_sdc_received_at",
            "_sdc_sequence",
            "_sdc_table_version",
        ),
        meta_values=lambda table, number: [SYNCED, SYNCED, SYNCED, str(1779152400000 + number), "0"],
    )


def _pg_type(field: str) -> str:
    if field in _BOOLEAN:
        return "BOOLEAN"
    if field in _DATE:
        return "DATE"
    if field in _NUMBER:
        return "DOUBLE PRECISION"
    if field in _TIMESTAMP or field == "SystemModstamp":
        return "TIMESTAMPTZ"
    return "TEXT"


def write_fivetran_replica(dsn: str) -> None:
    """Fivetran's shape in a PostgreSQL database (the ``public`` schema standing for its schema)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        for api_table, (table, names) in FIVETRAN_TABLES.items():
            fields = list(names)
            history = table == "opportunity"
            modstamp = table != "campaign"
            columns = [f"{names[f]} {_pg_type(f)}" for f in fields]
            if modstamp:
                columns.append("system_modstamp TIMESTAMPTZ")
            columns += ["_fivetran_synced TIMESTAMPTZ", "_fivetran_deleted BOOLEAN"]
            if history:
                columns += [
                    "_fivetran_active BOOLEAN",
                    "_fivetran_start TIMESTAMPTZ",
                    "_fivetran_end TIMESTAMPTZ",
                ]
            connection.execute(f'CREATE TABLE "{table}" ({", ".join(columns)})')
            for row in API_ORG[api_table]:
                values = [row[f] for f in fields]
                deleted = False
                if table == "task" and row["IsDeleted"]:
                    deleted = True  # no is_deleted column: the deletion arrives as _fivetran_deleted
                extra: list[object] = [MODSTAMP] if modstamp else []
                extra += [SYNCED, deleted]
                if history:
                    extra += [True, "2026-05-18T00:00:00Z", "9999-12-31T23:59:59Z"]
                _insert(connection, table, values + extra)
                if history and row["Id"] == "006000000000002AAA":
                    # the version before the last change, kept by history mode
                    old = {**row, "StageName": "Prospecting", "Amount": 4000.0, "Probability": 10.0,
                           "ForecastCategoryName": "Pipeline"}  # fmt: skip
                    _insert(
                        connection,
                        table,
                        [old[f] for f in fields]
                        + ["2026-04-09T15:00:00Z", SYNCED, False, False, "2026-04-09T15:00:00Z",
                           "2026-05-17T23:59:59Z"],
                    )  # fmt: skip


def _insert(connection: object, table: str, values: list[object]) -> None:
    marks = ", ".join("%s" for _ in values)
    connection.execute(f'INSERT INTO "{table}" VALUES ({marks})', values)  # type: ignore[attr-defined]
