"""The CRM contract: Salesforce objects (lower-case table names) and the fields the pipeline needs."""

from __future__ import annotations

import os

CRM_CONTRACT: dict[str, tuple[str, ...]] = {
    "user": (
        "Id",
        "Name",
        "Email",
        "Title",
        "UserRoleId",
        "ManagerId",
        "IsActive",
        "TimeZoneSidKey",
        "Hire_Date__c",
        "CreatedDate",
        "SystemModstamp",
    ),
    "userrole": ("Id", "Name", "ParentRoleId", "SystemModstamp"),
    "account": (
        "Id",
        "Name",
        "Industry",
        "NumberOfEmployees",
        "AnnualRevenue",
        "BillingCountry",
        "OwnerId",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "contact": (
        "Id",
        "AccountId",
        "FirstName",
        "LastName",
        "Email",
        "Title",
        "OwnerId",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "lead": (
        "Id",
        "FirstName",
        "LastName",
        "Email",
        "Company",
        "Industry",
        "LeadSource",
        "Status",
        "OwnerId",
        "IsConverted",
        "ConvertedDate",
        "ConvertedAccountId",
        "ConvertedContactId",
        "ConvertedOpportunityId",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "opportunity": (
        "Id",
        "Name",
        "AccountId",
        "OwnerId",
        "Type",
        "LeadSource",
        "CampaignId",
        "StageName",
        "Amount",
        "Probability",
        "ForecastCategoryName",
        "CloseDate",
        "IsClosed",
        "IsWon",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "opportunityhistory": (
        "Id",
        "OpportunityId",
        "StageName",
        "Amount",
        "Probability",
        "ForecastCategory",
        "CloseDate",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "task": (
        "Id",
        "WhoId",
        "WhatId",
        "OwnerId",
        "Subject",
        "TaskSubtype",
        "Status",
        "ActivityDate",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "campaign": (
        "Id",
        "Name",
        "Type",
        "Status",
        "StartDate",
        "EndDate",
        "BudgetedCost",
        "ActualCost",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "forecastingquota": ("Id", "QuotaOwnerId", "StartDate", "QuotaAmount", "SystemModstamp"),
    # The org's own sales process (optional: the seed opportunity_stages stands in without it).
    "opportunitystage": (
        "Id",
        "MasterLabel",
        "ApiName",
        "SortOrder",
        "IsActive",
        "IsClosed",
        "IsWon",
        "DefaultProbability",
        "ForecastCategoryName",
        "SystemModstamp",
    ),
    # Meetings logged in the CRM (optional: merged with the mailbox calendars).
    "event": (
        "Id",
        "WhoId",
        "WhatId",
        "OwnerId",
        "Subject",
        "Type",
        "StartDateTime",
        "EndDateTime",
        "IsAllDayEvent",
        "IsDeleted",
        "SystemModstamp",
    ),
}

CRM_TABLES: tuple[str, ...] = tuple(CRM_CONTRACT)

# Tables an org or a replica may lack: without them the raw table is created empty and the marts
# fall back (stages from the seed, meetings from the mailbox calendars only).
OPTIONAL_TABLES: frozenset[str] = frozenset({"opportunitystage", "event"})

# Fields not every org or replica has, beside every custom field (``__c``): a missing one is
# loaded as null, and the marts that need it are partial (a warning check names them).
OPTIONAL_FIELDS: dict[str, frozenset[str]] = {
    "opportunity": frozenset({"CampaignId"}),
    "opportunitystage": frozenset({"ApiName", "ForecastCategoryName"}),
}

# What a missing optional field leaves partial, for the warning that names it.
FIELD_MARTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("user", "Hire_Date__c"): ("onboarding_progress",),
    ("opportunity", "CampaignId"): ("campaign_efficiency",),
}


def is_optional_field(table: str, field: str) -> bool:
    """A custom field, or a standard field some orgs or replicas do not have."""
    return field.lower().endswith("__c") or field in OPTIONAL_FIELDS.get(table, frozenset())


def required_fields(table: str) -> tuple[str, ...]:
    return tuple(f for f in CRM_CONTRACT[table] if not is_optional_field(table, f))


ID_COLUMN = "id"
MODSTAMP_COLUMN = "systemmodstamp"


def raw_table_name(crm_table: str) -> str:
    """Name of the warehouse table in schema ``raw`` that holds a CRM object."""
    return f"salesforce_{crm_table}"


def crm_family() -> str:
    """'hubspot' when SALESOPS_CRM_SOURCE is hubspot, else 'salesforce' (the SQL replica and the
    Salesforce API land the same raw tables). Mirrors the dbt macro crm_family()."""
    return "hubspot" if os.environ.get("SALESOPS_CRM_SOURCE", "sql") == "hubspot" else "salesforce"


HUBSPOT_STAGING_MODELS: dict[str, str] = {
    "users": "stg_hubspot__owners",
    "user_roles": "stg_hubspot__teams",
    "accounts": "stg_hubspot__companies",
    "contacts": "stg_hubspot__contacts",
    "leads": "stg_hubspot__leads",
    "opportunities": "stg_hubspot__deals",
    "opportunity_history": "stg_hubspot__deal_history",
    "tasks": "stg_hubspot__engagements",
    "campaigns": "stg_hubspot__campaigns",
    "forecasting_quotas": "stg_hubspot__quotas",
}


def staging_model(entity: str) -> str:
    """The source-specific staging model of a canonical CRM entity (dbt macro crm_staging_model)."""
    return HUBSPOT_STAGING_MODELS[entity] if crm_family() == "hubspot" else f"stg_salesforce__{entity}"


# Raw tables of each CRM family, with the column holding the last modification (None: no
# freshness check, the object may not change every working day).
SALESFORCE_FRESHNESS_TABLES = ("account", "contact", "lead", "opportunity", "opportunityhistory", "task")
HUBSPOT_RAW_TABLES: dict[str, str | None] = {
    "hubspot_owners": None,
    "hubspot_deal_stages": None,
    "hubspot_companies": "hs_lastmodifieddate",
    "hubspot_contacts": "lastmodifieddate",
    "hubspot_deals": "hs_lastmodifieddate",
    "hubspot_deal_property_history": None,
    "hubspot_calls": "hs_lastmodifieddate",
    "hubspot_emails": "hs_lastmodifieddate",
    "hubspot_meetings": None,
    "hubspot_tasks": "hs_lastmodifieddate",
}


def crm_raw_tables() -> dict[str, str | None]:
    """The raw tables of the CRM in use, each with its modification column for freshness checks."""
    if crm_family() == "hubspot":
        return dict(HUBSPOT_RAW_TABLES)
    return {
        raw_table_name(table): MODSTAMP_COLUMN if table in SALESFORCE_FRESHNESS_TABLES else None
        for table in CRM_TABLES
    }
