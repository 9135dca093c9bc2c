"""Great Expectations suites for the raw layer, as code: one suite per raw table.

Severity ``error`` blocks every asset downstream of the table; ``warning`` is reported only.
Raw CRM columns are text, so typed rules are written as SQL over ``try_cast`` values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ingestion.contract import raw_table_name

if TYPE_CHECKING:
    from expectations.gx_engine import ExpectationSpec

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
TASK_SUBTYPES = ["Call", "Email", "Task", "ListEmail", "Cadence", "LinkedIn"]
CALENDAR_STATUSES = ["CONFIRMED", "TENTATIVE", "CANCELLED"]
STAGE_NAMES = [
    "Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
    "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost",
]  # fmt: skip


def _spec(name: str, severity: str, expectation: object) -> ExpectationSpec:
    from expectations.gx_engine import ExpectationSpec

    return ExpectationSpec(name=name, expectation=expectation, severity=severity)  # type: ignore[arg-type]


def _id_rules(prefix: str) -> list[ExpectationSpec]:
    import great_expectations as gx

    return [
        _spec(f"{prefix}_id_not_null", "error", gx.expectations.ExpectColumnValuesToNotBeNull(column="id")),
        _spec(f"{prefix}_id_unique", "error", gx.expectations.ExpectColumnValuesToBeUnique(column="id")),
    ]


def _sql_rule(name: str, severity: str, query: str, description: str) -> ExpectationSpec:
    import great_expectations as gx

    return _spec(
        name,
        severity,
        gx.expectations.UnexpectedRowsExpectation(unexpected_rows_query=query, description=description),
    )


def _email_rule(name: str, column: str) -> ExpectationSpec:
    return _sql_rule(
        name,
        "warning",
        f"SELECT * FROM {{batch}} WHERE nullif(trim({column}), '') IS NOT NULL "
        f"AND NOT regexp_full_match(trim({column}), '{EMAIL_PATTERN}')",
        f"{column} is a well-formed email address",
    )


def _reference_rule(name: str, column: str, target_table: str, severity: str = "warning") -> ExpectationSpec:
    return _sql_rule(
        name,
        severity,
        f"SELECT * FROM {{batch}} AS child WHERE nullif(trim(child.{column}), '') IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM raw.{target_table} AS parent WHERE parent.id = child.{column})",
        f"{column} refers to an existing raw.{target_table} row",
    )


def _amount_rules(prefix: str, column: str) -> list[ExpectationSpec]:
    return [
        _sql_rule(
            f"{prefix}_{column}_is_number",
            "error",
            f"SELECT * FROM {{batch}} WHERE nullif(trim({column}), '') IS NOT NULL "
            f"AND try_cast({column} AS DOUBLE) IS NULL",
            f"{column} is a number when present",
        ),
        _sql_rule(
            f"{prefix}_{column}_not_negative",
            "error",
            f"SELECT * FROM {{batch}} WHERE try_cast({column} AS DOUBLE) < 0",
            f"{column} is not negative",
        ),
    ]


def _close_after_created_rule(prefix: str) -> ExpectationSpec:
    return _sql_rule(
        f"{prefix}_close_date_not_before_created",
        "warning",
        "SELECT * FROM {batch} WHERE try_cast(closedate AS DATE) "
        "< CAST(timezone('UTC', try_cast(createddate AS TIMESTAMPTZ)) AS DATE)",
        "CloseDate is not before the CreatedDate",
    )


def _user_suite() -> list[ExpectationSpec]:
    return [*_id_rules("user"), _email_rule("user_email_well_formed", "email")]


def _userrole_suite() -> list[ExpectationSpec]:
    return _id_rules("userrole")


def _account_suite() -> list[ExpectationSpec]:
    return [
        *_id_rules("account"),
        _reference_rule("account_owner_exists", "ownerid", raw_table_name("user")),
    ]


def _contact_suite() -> list[ExpectationSpec]:
    return [
        *_id_rules("contact"),
        _email_rule("contact_email_well_formed", "email"),
        _reference_rule("contact_account_exists", "accountid", raw_table_name("account")),
        _reference_rule("contact_owner_exists", "ownerid", raw_table_name("user")),
    ]


def _lead_suite() -> list[ExpectationSpec]:
    return [
        *_id_rules("lead"),
        _email_rule("lead_email_well_formed", "email"),
        _reference_rule("lead_owner_exists", "ownerid", raw_table_name("user")),
    ]


def _opportunity_suite() -> list[ExpectationSpec]:
    import great_expectations as gx

    return [
        *_id_rules("opportunity"),
        _spec(
            "opportunity_stage_known",
            "warning",
            gx.expectations.ExpectColumnValuesToBeInSet(column="stagename", value_set=STAGE_NAMES),
        ),
        *_amount_rules("opportunity", "amount"),
        _close_after_created_rule("opportunity"),
        _reference_rule("opportunity_account_exists", "accountid", raw_table_name("account")),
        _reference_rule("opportunity_owner_exists", "ownerid", raw_table_name("user")),
    ]


def _opportunityhistory_suite() -> list[ExpectationSpec]:
    import great_expectations as gx

    return [
        *_id_rules("opportunityhistory"),
        _spec(
            "opportunityhistory_stage_known",
            "warning",
            gx.expectations.ExpectColumnValuesToBeInSet(column="stagename", value_set=STAGE_NAMES),
        ),
        *_amount_rules("opportunityhistory", "amount"),
        _reference_rule(
            "opportunityhistory_opportunity_exists", "opportunityid", raw_table_name("opportunity")
        ),
    ]


def _task_suite() -> list[ExpectationSpec]:
    import great_expectations as gx

    return [
        *_id_rules("task"),
        _spec(
            "task_subtype_known",
            "warning",
            gx.expectations.ExpectColumnValuesToBeInSet(column="tasksubtype", value_set=TASK_SUBTYPES),
        ),
        _reference_rule("task_owner_exists", "ownerid", raw_table_name("user")),
        _sql_rule(
            "task_who_exists",
            "warning",
            "SELECT * FROM {batch} AS t WHERE nullif(trim(t.whoid), '') IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM raw.{raw_table_name('lead')} AS l WHERE l.id = t.whoid) "
            f"AND NOT EXISTS (SELECT 1 FROM raw.{raw_table_name('contact')} AS c WHERE c.id = t.whoid)",
            "WhoId refers to an existing lead or contact",
        ),
    ]


def _campaign_suite() -> list[ExpectationSpec]:
    return [
        *_id_rules("campaign"),
        *_amount_rules("campaign", "actualcost"),
        *_amount_rules("campaign", "budgetedcost"),
    ]


def _forecastingquota_suite() -> list[ExpectationSpec]:
    return [
        *_id_rules("forecastingquota"),
        *_amount_rules("forecastingquota", "quotaamount"),
        _reference_rule(
            "forecastingquota_owner_exists", "quotaownerid", raw_table_name("user"), severity="warning"
        ),
    ]


def _calendar_occurrences_suite() -> list[ExpectationSpec]:
    import great_expectations as gx

    return [
        _spec("calendar_uid_not_null", "error", gx.expectations.ExpectColumnValuesToNotBeNull(column="uid")),
        _spec(
            "calendar_start_not_null",
            "error",
            gx.expectations.ExpectColumnValuesToNotBeNull(column="occurrence_start"),
        ),
        _spec(
            "calendar_end_not_before_start",
            "warning",
            gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="occurrence_end",
                column_B="occurrence_start",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
        ),
        _spec(
            "calendar_status_known",
            "warning",
            gx.expectations.ExpectColumnValuesToBeInSet(column="status", value_set=CALENDAR_STATUSES),
        ),
    ]


def _calendar_attendees_suite() -> list[ExpectationSpec]:
    return [_email_rule("calendar_attendee_email_well_formed", "email")]


RAW_SUITES: dict[str, Callable[[], list[ExpectationSpec]]] = {
    raw_table_name("user"): _user_suite,
    raw_table_name("userrole"): _userrole_suite,
    raw_table_name("account"): _account_suite,
    raw_table_name("contact"): _contact_suite,
    raw_table_name("lead"): _lead_suite,
    raw_table_name("opportunity"): _opportunity_suite,
    raw_table_name("opportunityhistory"): _opportunityhistory_suite,
    raw_table_name("task"): _task_suite,
    raw_table_name("campaign"): _campaign_suite,
    raw_table_name("forecastingquota"): _forecastingquota_suite,
    "calendar_occurrences": _calendar_occurrences_suite,
    "calendar_attendees": _calendar_attendees_suite,
}
