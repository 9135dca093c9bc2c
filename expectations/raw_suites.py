"""Great Expectations suites for the raw layer: one per raw table.

Raw keeps every value as text. Structural rules (Ids) are errors that block everything
downstream; value rules warn here, because the failing records are quarantined between raw and
staging (dbt_project/macros/quarantine_rules.sql) and never reach the marts.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from expectations.builders import in_set, not_null, reference, rows_query, unique, well_formed_email
from ingestion.contract import crm_family, raw_table_name

if TYPE_CHECKING:
    from expectations.gx_engine import ExpectationSpec

TASK_SUBTYPES = ["Call", "Email", "Task", "ListEmail", "Cadence", "LinkedIn"]
CALENDAR_STATUSES = ["CONFIRMED", "TENTATIVE", "CANCELLED"]
STAGES_SEED = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds" / "opportunity_stages.csv"


def seed_stage_names() -> list[str]:
    """The stages of the seed opportunity_stages, the fallback sales process."""
    with STAGES_SEED.open(newline="", encoding="utf-8") as handle:
        return [row["stage_name"] for row in csv.DictReader(handle)]


def raw(table: str) -> str:
    return f"raw.{raw_table_name(table)}"


def _ids(prefix: str) -> list[ExpectationSpec]:
    return [not_null(f"{prefix}_id_not_null", "id"), unique(f"{prefix}_id_unique", "id")]


def _numeric(prefix: str, column: str) -> list[ExpectationSpec]:
    return [
        rows_query(
            f"{prefix}_{column}_is_number",
            "warning",
            f"SELECT * FROM {{batch}} WHERE nullif(trim({column}), '') IS NOT NULL "
            f"AND try_cast({column} AS DOUBLE) IS NULL",
            f"{column} is a number when present (else quarantined)",
        ),
        rows_query(
            f"{prefix}_{column}_not_negative",
            "warning",
            f"SELECT * FROM {{batch}} WHERE try_cast({column} AS DOUBLE) < 0",
            f"{column} is not negative (else quarantined)",
        ),
    ]


def _close_after_created(prefix: str) -> ExpectationSpec:
    return rows_query(
        f"{prefix}_close_date_not_before_created",
        "warning",
        "SELECT * FROM {batch} WHERE try_cast(closedate AS DATE) "
        "< CAST(timezone('UTC', try_cast(createddate AS TIMESTAMPTZ)) AS DATE)",
        "CloseDate is not before the CreatedDate",
    )


def _user() -> list[ExpectationSpec]:
    return [*_ids("user"), well_formed_email("user_email_well_formed", "email")]


def _userrole() -> list[ExpectationSpec]:
    return _ids("userrole")


def _account() -> list[ExpectationSpec]:
    return [*_ids("account"), reference("account_owner_exists", "ownerid", raw("user"), "id")]


def _contact() -> list[ExpectationSpec]:
    return [
        *_ids("contact"),
        well_formed_email("contact_email_well_formed", "email"),
        reference("contact_account_exists", "accountid", raw("account"), "id"),
        reference("contact_owner_exists", "ownerid", raw("user"), "id"),
    ]


def _lead() -> list[ExpectationSpec]:
    return [
        *_ids("lead"),
        well_formed_email("lead_email_well_formed", "email"),
        reference("lead_owner_exists", "ownerid", raw("user"), "id"),
    ]


def _opportunity() -> list[ExpectationSpec]:
    return [
        *_ids("opportunity"),
        _stage_known("opportunity"),
        *_numeric("opportunity", "amount"),
        _close_after_created("opportunity"),
        reference("opportunity_account_exists", "accountid", raw("account"), "id"),
        reference("opportunity_owner_exists", "ownerid", raw("user"), "id"),
    ]


def _opportunityhistory() -> list[ExpectationSpec]:
    return [
        *_ids("opportunityhistory"),
        _stage_known("opportunityhistory"),
        *_numeric("opportunityhistory", "amount"),
        reference("opportunityhistory_opportunity_exists", "opportunityid", raw("opportunity"), "id"),
    ]


def _stage_known(prefix: str) -> ExpectationSpec:
    """StageName is one of the org's stages (OpportunityStage's ApiName, else its label, as the
    marts match them) or, for a replica without them, of the seed's. Unknown stages still count by
    their own flags."""
    stages = raw("opportunitystage")
    seed = ", ".join("'" + name.replace("'", "''") + "'" for name in seed_stage_names())
    return rows_query(
        f"{prefix}_stage_known",
        "warning",
        f"SELECT * FROM {{batch}} AS o WHERE nullif(trim(o.stagename), '') IS NOT NULL AND CASE "
        f"WHEN EXISTS (SELECT 1 FROM {stages}) THEN NOT EXISTS (SELECT 1 FROM {stages} AS s "
        f"WHERE o.stagename = coalesce(s.apiname, s.masterlabel)) ELSE o.stagename NOT IN ({seed}) END",
        "StageName is a stage of the org's sales process (OpportunityStage, else the seed)",
    )


def _opportunitystage() -> list[ExpectationSpec]:
    return [*_ids("opportunitystage")]


def _event() -> list[ExpectationSpec]:
    return [*_ids("event"), reference("event_owner_exists", "ownerid", raw("user"), "id")]


def _task() -> list[ExpectationSpec]:
    return [
        *_ids("task"),
        in_set("task_subtype_known", "tasksubtype", TASK_SUBTYPES),
        reference("task_owner_exists", "ownerid", raw("user"), "id"),
    ]


def _campaign() -> list[ExpectationSpec]:
    return [*_ids("campaign"), *_numeric("campaign", "actualcost"), *_numeric("campaign", "budgetedcost")]


def _forecastingquota() -> list[ExpectationSpec]:
    return [
        *_ids("forecastingquota"),
        *_numeric("forecastingquota", "quotaamount"),
        reference("forecastingquota_owner_exists", "quotaownerid", raw("user"), "id"),
    ]


def _calendar_occurrences() -> list[ExpectationSpec]:
    return [
        not_null("calendar_uid_not_null", "uid"),
        not_null("calendar_start_not_null", "occurrence_start"),
        in_set("calendar_status_known", "status", CALENDAR_STATUSES),
    ]


def _calendar_attendees() -> list[ExpectationSpec]:
    return [well_formed_email("calendar_attendee_email_well_formed", "email")]


def _hubspot_ids(table: str) -> Callable[[], list[ExpectationSpec]]:
    return lambda: _ids(table)


def _hubspot_owners() -> list[ExpectationSpec]:
    return [*_ids("hubspot_owner"), well_formed_email("hubspot_owner_email_well_formed", "email")]


def _hubspot_deals() -> list[ExpectationSpec]:
    return [
        *_ids("hubspot_deal"),
        *_numeric("hubspot_deal", "amount"),
        reference("hubspot_deal_stage_in_a_pipeline", "dealstage", "raw.hubspot_deal_stages", "id"),
        reference("hubspot_deal_owner_exists", "hubspot_owner_id", "raw.hubspot_owners", "id"),
    ]


HUBSPOT_RAW_SUITES: dict[str, Callable[[], list[ExpectationSpec]]] = {
    "hubspot_owners": _hubspot_owners,
    "hubspot_deal_stages": _hubspot_ids("hubspot_deal_stage"),
    "hubspot_companies": _hubspot_ids("hubspot_company"),
    "hubspot_contacts": _hubspot_ids("hubspot_contact"),
    "hubspot_deals": _hubspot_deals,
    "hubspot_deal_property_history": _hubspot_ids("hubspot_deal_property_history"),
    "hubspot_calls": _hubspot_ids("hubspot_call"),
    "hubspot_emails": _hubspot_ids("hubspot_email"),
    "hubspot_meetings": _hubspot_ids("hubspot_meeting"),
    "hubspot_tasks": _hubspot_ids("hubspot_task"),
}

SALESFORCE_RAW_SUITES: dict[str, Callable[[], list[ExpectationSpec]]] = {
    raw_table_name("user"): _user,
    raw_table_name("userrole"): _userrole,
    raw_table_name("account"): _account,
    raw_table_name("contact"): _contact,
    raw_table_name("lead"): _lead,
    raw_table_name("opportunity"): _opportunity,
    raw_table_name("opportunityhistory"): _opportunityhistory,
    raw_table_name("task"): _task,
    raw_table_name("campaign"): _campaign,
    raw_table_name("forecastingquota"): _forecastingquota,
    raw_table_name("opportunitystage"): _opportunitystage,
    raw_table_name("event"): _event,
}

CALENDAR_RAW_SUITES: dict[str, Callable[[], list[ExpectationSpec]]] = {
    "calendar_occurrences": _calendar_occurrences,
    "calendar_attendees": _calendar_attendees,
}

# The suites of the CRM in use (SALESOPS_CRM_SOURCE) and of the calendars.
RAW_SUITES: dict[str, Callable[[], list[ExpectationSpec]]] = {
    **(HUBSPOT_RAW_SUITES if crm_family() == "hubspot" else SALESFORCE_RAW_SUITES),
    **CALENDAR_RAW_SUITES,
}
