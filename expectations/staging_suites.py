"""Great Expectations suites for the staging layer: typed rules after quarantine.

Errors here mean a record broke through quarantine or the typing went wrong: they block the
marts. Referential integrity and hygiene rules warn; the coordinators' worklist
(marts.crm_data_quality) lists the records to fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from expectations.builders import (
    between,
    not_null,
    reference,
    rows_query,
    unique,
    well_formed_email,
)
from ingestion.contract import crm_family, staging_model

if TYPE_CHECKING:
    from expectations.gx_engine import ExpectationSpec

USERS = f"staging.{staging_model('users')}"
ACCOUNTS = f"staging.{staging_model('accounts')}"
OPPORTUNITIES = f"staging.{staging_model('opportunities')}"
CONTACTS = f"staging.{staging_model('contacts')}"
HUBSPOT_STAGES = "staging.stg_hubspot__deal_stages"
SALESFORCE_STAGES = "staging.stg_salesforce__opportunity_stages"


def _keys(prefix: str, column: str) -> list[ExpectationSpec]:
    return [not_null(f"stg_{prefix}_id_not_null", column), unique(f"stg_{prefix}_id_unique", column)]


def _users() -> list[ExpectationSpec]:
    return [*_keys("user", "rep_id"), well_formed_email("stg_user_email_well_formed", "email")]


def _accounts() -> list[ExpectationSpec]:
    return [
        *_keys("account", "account_id"),
        reference("stg_account_owner_exists", "owner_id", USERS, "rep_id"),
    ]


def _contacts() -> list[ExpectationSpec]:
    return [
        *_keys("contact", "contact_id"),
        reference("stg_contact_account_exists", "account_id", ACCOUNTS, "account_id"),
        reference("stg_contact_owner_exists", "owner_id", USERS, "rep_id"),
        well_formed_email("stg_contact_email_well_formed", "email"),
    ]


def _leads() -> list[ExpectationSpec]:
    return [
        *_keys("lead", "lead_id"),
        not_null("stg_lead_created_at_not_null", "created_at"),
        reference("stg_lead_owner_exists", "owner_id", USERS, "rep_id"),
        well_formed_email("stg_lead_email_well_formed", "email"),
    ]


def _stage_known() -> ExpectationSpec:
    """Salesforce stages come from the org's OpportunityStage (else the seed's standard process,
    both in staging.stg_salesforce__opportunity_stages), HubSpot's from its pipelines. An empty
    stage is unknown too: the coordinators' worklist lists the same opportunities (unknown_stage)."""
    if crm_family() == "hubspot":
        return reference("stg_opportunity_stage_known", "stage_name", HUBSPOT_STAGES, "stage_name")
    return rows_query(
        "stg_opportunity_stage_known",
        "warning",
        "SELECT * FROM {batch} AS o WHERE NOT EXISTS (SELECT 1 FROM "
        f"{SALESFORCE_STAGES} AS s WHERE s.stage_name = o.stage_name)",
        "stage_name is a stage of the org's sales process (OpportunityStage, else the seed)",
    )


def _who_or_what_exists() -> ExpectationSpec:
    if crm_family() == "hubspot":
        return rows_query(
            "stg_task_who_or_what_exists",
            "warning",
            "SELECT * FROM {batch} AS t WHERE "
            f"(t.who_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {CONTACTS} c "
            "WHERE c.contact_id = t.who_id)) "
            f"OR (t.what_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {OPPORTUNITIES} o "
            "WHERE o.opportunity_id = t.what_id) "
            f"AND NOT EXISTS (SELECT 1 FROM {ACCOUNTS} a WHERE a.account_id = t.what_id))",
            "An engagement's contact, deal and company exist",
        )
    return rows_query(
        "stg_task_who_or_what_exists",
        "warning",
        "SELECT * FROM {batch} AS t WHERE "
        "(t.who_id IS NOT NULL "
        " AND NOT EXISTS (SELECT 1 FROM staging.stg_salesforce__leads l WHERE l.lead_id = t.who_id) "
        " AND NOT EXISTS (SELECT 1 FROM staging.stg_salesforce__contacts c "
        "WHERE c.contact_id = t.who_id)) "
        "OR (t.what_id LIKE '006%' AND NOT EXISTS ("
        "SELECT 1 FROM staging.stg_salesforce__opportunities o WHERE o.opportunity_id = t.what_id))",
        "WhoId refers to a lead or contact, and an opportunity WhatId to an opportunity",
    )


def _opportunities() -> list[ExpectationSpec]:
    return [
        *_keys("opportunity", "opportunity_id"),
        between("stg_opportunity_amount_not_negative", "amount", min_value=0),
        between("stg_opportunity_probability_0_100", "probability", min_value=0, max_value=100),
        not_null("stg_opportunity_close_date_not_null", "close_date"),
        not_null("stg_opportunity_owner_not_null", "owner_id"),
        _stage_known(),
        rows_query(
            "stg_opportunity_close_not_before_created",
            "warning",
            "SELECT * FROM {batch} WHERE close_date < CAST(created_at AS DATE)",
            "CloseDate is not before the creation date",
        ),
        reference("stg_opportunity_account_exists", "account_id", ACCOUNTS, "account_id"),
        reference("stg_opportunity_owner_exists", "owner_id", USERS, "rep_id"),
    ]


def _opportunity_history() -> list[ExpectationSpec]:
    return [
        *_keys("opportunity_history", "opportunity_history_id"),
        between("stg_opportunity_history_amount_not_negative", "amount", min_value=0),
        reference(
            "stg_opportunity_history_opportunity_exists",
            "opportunity_id",
            OPPORTUNITIES,
            "opportunity_id",
        ),
    ]


def _tasks() -> list[ExpectationSpec]:
    return [
        *_keys("task", "task_id"),
        not_null("stg_task_created_at_not_null", "created_at"),
        reference("stg_task_owner_exists", "owner_id", USERS, "rep_id"),
        _who_or_what_exists(),
    ]


def _campaigns() -> list[ExpectationSpec]:
    return [
        *_keys("campaign", "campaign_id"),
        between("stg_campaign_actual_cost_not_negative", "actual_cost", min_value=0),
    ]


def _quotas() -> list[ExpectationSpec]:
    return [
        *_keys("quota", "quota_id"),
        between("stg_quota_amount_not_negative", "quota_amount", min_value=0),
        reference("stg_quota_owner_exists", "quota_owner_id", USERS, "rep_id"),
        rows_query(
            "stg_quota_starts_on_first_of_month",
            "warning",
            "SELECT * FROM {batch} WHERE extract(day FROM start_date) <> 1",
            "StartDate is the first day of a month",
        ),
    ]


def max_occurrences_per_series() -> int:
    """The same cap the calendar readers expand series to (SALESOPS_CALENDAR_MAX_OCCURRENCES)."""
    return int(os.environ.get("SALESOPS_CALENDAR_MAX_OCCURRENCES", "1000"))


def _calendar_events() -> list[ExpectationSpec]:
    limit = max_occurrences_per_series()
    return [
        *_keys("calendar_event", "event_occurrence_id"),
        rows_query(
            "stg_calendar_end_after_start",
            "warning",
            "SELECT * FROM {batch} WHERE end_at < start_at",
            "A meeting ends at or after it starts",
        ),
        rows_query(
            "stg_calendar_occurrences_per_series_bounded",
            "warning",
            f"SELECT uid, count(*) AS occurrences FROM {{batch}} GROUP BY uid HAVING count(*) >= {limit}",
            f"A recurring series stays below the expansion cap of {limit} occurrences (else it was cut off)",
        ),
    ]


def _calendar_attendees() -> list[ExpectationSpec]:
    return [
        *_keys("calendar_attendee", "event_attendee_id"),
        well_formed_email("stg_calendar_attendee_email_well_formed", "email"),
    ]


STAGING_SUITES: dict[str, Callable[[], list[ExpectationSpec]]] = {
    staging_model("users"): _users,
    staging_model("accounts"): _accounts,
    staging_model("contacts"): _contacts,
    staging_model("leads"): _leads,
    staging_model("opportunities"): _opportunities,
    staging_model("opportunity_history"): _opportunity_history,
    staging_model("tasks"): _tasks,
    staging_model("campaigns"): _campaigns,
    staging_model("forecasting_quotas"): _quotas,
    "stg_calendar__events": _calendar_events,
    "stg_calendar__attendees": _calendar_attendees,
}
