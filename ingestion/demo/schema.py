"""The CRM replica contract: tables, columns, declared SQLite types and value styles.

Tables are Salesforce objects in lower case, columns are field API names in API case. Value
styles deliberately differ between tables (but never within a column) so that readers have to be
tolerant: several ISO-8601 datetime spellings (all UTC) and booleans stored either as 0/1 or as
'true'/'false' text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

# column kinds: id, ref (Id reference), text, real, int, bool, datetime, date
TABLES: dict[str, list[tuple[str, str, str]]] = {
    "user": [
        ("Id", "TEXT", "id"),
        ("Name", "TEXT", "text"),
        ("Email", "TEXT", "text"),
        ("Title", "TEXT", "text"),
        ("UserRoleId", "TEXT", "ref"),
        ("ManagerId", "TEXT", "ref"),
        ("IsActive", "BOOLEAN", "bool"),
        ("TimeZoneSidKey", "TEXT", "text"),
        ("Hire_Date__c", "DATE", "date"),
        ("CreatedDate", "DATETIME", "datetime"),
        ("SystemModstamp", "DATETIME", "datetime"),
    ],
    "userrole": [
        ("Id", "TEXT", "id"),
        ("Name", "TEXT", "text"),
        ("ParentRoleId", "TEXT", "ref"),
        ("SystemModstamp", "DATETIME", "datetime"),
    ],
    "account": [
        ("Id", "TEXT", "id"),
        ("Name", "TEXT", "text"),
        ("Industry", "TEXT", "text"),
        ("NumberOfEmployees", "INTEGER", "int"),
        ("AnnualRevenue", "REAL", "real"),
        ("BillingCountry", "TEXT", "text"),
        ("OwnerId", "TEXT", "ref"),
        ("CreatedDate", "DATETIME", "datetime"),
        ("SystemModstamp", "DATETIME", "datetime"),
        ("IsDeleted", "BOOLEAN", "bool"),
    ],
    "contact": [
        ("Id", "TEXT", "id"),
        ("AccountId", "TEXT", "ref"),
        ("FirstName", "TEXT", "text"),
        ("LastName", "TEXT", "text"),
        ("Email", "TEXT", "text"),
        ("Title", "TEXT", "text"),
        ("OwnerId", "TEXT", "ref"),
        ("CreatedDate", "DATETIME", "datetime"),
        ("SystemModstamp", "DATETIME", "datetime"),
        ("IsDeleted", "BOOLEAN", "bool"),
    ],
    "lead": [
        ("Id", "TEXT", "id"),
        ("FirstName", "TEXT", "text"),
        ("LastName", "TEXT", "text"),
        ("Email", "TEXT", "text"),
        ("Company", "TEXT", "text"),
        ("Industry", "TEXT", "text"),
        ("LeadSource", "TEXT", "text"),
        ("Status", "TEXT", "text"),
        ("OwnerId", "TEXT", "ref"),
        ("IsConverted", "BOOLEAN", "bool"),
        ("ConvertedDate", "DATE", "date"),
        ("ConvertedAccountId", "TEXT", "ref"),
        ("ConvertedContactId", "TEXT", "ref"),
        ("ConvertedOpportunityId", "TEXT", "ref"),
        ("CreatedDate", "DATETIME", "datetime"),
        ("SystemModstamp", "DATETIME", "datetime"),
        ("IsDeleted", "BOOLEAN", "bool"),
    ],
    "opportunity": [
        ("Id", "TEXT", "id"),
        ("Name", "TEXT", "text"),
        ("AccountId", "TEXT", "ref"),
        ("OwnerId", "TEXT", "ref"),
        ("Type", "TEXT", "text"),
        ("LeadSource", "TEXT", "text"),
        ("CampaignId", "TEXT", "ref"),
        ("StageName", "TEXT", "text"),
        ("Amount", "REAL", "real"),
        ("Probability", "REAL", "real"),
        ("ForecastCategoryName", "TEXT", "text"),
        ("CloseDate", "DATE", "date"),
        ("IsClosed", "BOOLEAN", "bool"),
        ("IsWon", "BOOLEAN", "bool"),
        ("CreatedDate", "DATETIME", "datetime"),
        ("SystemModstamp", "DATETIME", "datetime"),
        ("IsDeleted", "BOOLEAN", "bool"),
    ],
    "opportunityhistory": [
        ("Id", "TEXT", "id"),
        ("OpportunityId", "TEXT", "ref"),
        ("StageName", "TEXT", "text"),
        ("Amount", "REAL", "real"),
        ("Probability", "REAL", "real"),
        ("ForecastCategory", "TEXT", "text"),
        ("CloseDate", "DATE", "date"),
        ("CreatedDate", "DATETIME", "datetime"),
        ("SystemModstamp", "DATETIME", "datetime"),
        ("IsDeleted", "BOOLEAN", "bool"),
    ],
    "task": [
        ("Id", "TEXT", "id"),
        ("WhoId", "TEXT", "ref"),
        ("WhatId", "TEXT", "ref"),
        ("OwnerId", "TEXT", "ref"),
        ("Subject", "TEXT", "text"),
        ("TaskSubtype", "TEXT", "text"),
        ("Status", "TEXT", "text"),
        ("ActivityDate", "DATE", "date"),
        ("CreatedDate", "DATETIME", "datetime"),
        ("SystemModstamp", "DATETIME", "datetime"),
        ("IsDeleted", "BOOLEAN", "bool"),
    ],
    "campaign": [
        ("Id", "TEXT", "id"),
        ("Name", "TEXT", "text"),
        ("Type", "TEXT", "text"),
        ("Status", "TEXT", "text"),
        ("StartDate", "DATE", "date"),
        ("EndDate", "DATE", "date"),
        ("BudgetedCost", "REAL", "real"),
        ("ActualCost", "REAL", "real"),
        ("CreatedDate", "DATETIME", "datetime"),
        ("SystemModstamp", "DATETIME", "datetime"),
        ("IsDeleted", "BOOLEAN", "bool"),
    ],
    "forecastingquota": [
        ("Id", "TEXT", "id"),
        ("QuotaOwnerId", "TEXT", "ref"),
        ("StartDate", "DATE", "date"),
        ("QuotaAmount", "REAL", "real"),
        ("SystemModstamp", "DATETIME", "datetime"),
    ],
}

COLUMNS: dict[str, list[str]] = {t: [c[0] for c in cols] for t, cols in TABLES.items()}
COL_INDEX: dict[str, dict[str, int]] = {t: {c: i for i, c in enumerate(cols)} for t, cols in COLUMNS.items()}
DELETABLE = [t for t, cols in COLUMNS.items() if "IsDeleted" in cols]

# Per-table datetime spelling (all UTC).
DATETIME_STYLE: dict[str, str] = {
    "user": "ms_z",  # 2024-01-15T14:22:10.000Z
    "userrole": "ms_z",
    "account": "space",  # 2024-01-15 14:22:10
    "contact": "z",  # 2024-01-15T14:22:10Z
    "lead": "z",
    "opportunity": "sf",  # 2024-01-15T14:22:10.000+0000
    "opportunityhistory": "sf",
    "task": "sf",
    "campaign": "offset",  # 2024-01-15T14:22:10+00:00
    "forecastingquota": "sf",
}
# Per-table boolean spelling: "int" -> 0/1, "text" -> 'true'/'false'.
BOOL_STYLE: dict[str, str] = {
    "user": "text",
    "userrole": "int",
    "account": "int",
    "contact": "text",
    "lead": "text",
    "opportunity": "int",
    "opportunityhistory": "int",
    "task": "int",
    "campaign": "int",
    "forecastingquota": "int",
}


def _fmt_sf(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds") + ".000+0000"


def _fmt_z(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds") + "Z"


def _fmt_ms_z(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds") + ".000Z"


def _fmt_space(dt: datetime) -> str:
    return dt.isoformat(sep=" ", timespec="seconds")


def _fmt_offset(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds") + "+00:00"


_FORMATTERS = {
    "sf": _fmt_sf,
    "z": _fmt_z,
    "ms_z": _fmt_ms_z,
    "space": _fmt_space,
    "offset": _fmt_offset,
}
DT: dict[str, Callable[[datetime], str]] = {t: _FORMATTERS[s] for t, s in DATETIME_STYLE.items()}
TRUE: dict[str, object] = {t: ("true" if s == "text" else 1) for t, s in BOOL_STYLE.items()}
FALSE: dict[str, object] = {t: ("false" if s == "text" else 0) for t, s in BOOL_STYLE.items()}


def is_true(v) -> bool:
    """Reads a stored boolean in any of the styles used."""
    if v is None:
        return False
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "t", "yes")
    return bool(v)


def parse_dt(s: str) -> datetime:
    """Parses any of the stored datetime spellings into a naive UTC datetime."""
    return datetime.fromisoformat(s[:19])


def ddl(table: str) -> str:
    cols = ",\n  ".join(f'"{name}" {typ}' for name, typ, _ in TABLES[table])
    return f'CREATE TABLE "{table}" (\n  {cols}\n)'


def index_ddl(table: str) -> list[str]:
    return [
        f'CREATE UNIQUE INDEX "ix_{table}_id" ON "{table}" ("Id")',
        f'CREATE INDEX "ix_{table}_systemmodstamp" ON "{table}" ("SystemModstamp")',
    ]
