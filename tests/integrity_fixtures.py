"""The clean hand-written org of test_marts_handwritten.py, plus one dirty record per integrity rule.

Every dirty record has an Id starting with X and breaks exactly the rules named beside it (a record
may break the raw rule and its staging twin, never two rules of one suite). Everything else about
it is kept harmless: leads are recent (no 7-day activity finding), opportunities are open with a
future close date and an Amount, tasks are plain tasks on a contact, and so on, so the
coordinators' worklist only gains the findings that are planted on purpose.
"""

from __future__ import annotations

from pathlib import Path

from ingestion.contract import CRM_CONTRACT
from tests.crm_fixtures import insert_rows
from tests.test_marts_handwritten import (
    MODSTAMP,
    attendee,
    ics_text,
    organizer,
    vevent,
    write_calendars,
    write_crm,
)

__all__ = ["MODSTAMP", "write_calendars", "write_crm", "write_dirty_calendars", "write_dirty_crm"]

RECENT = "2026-05-15T10:00:00Z"  # within 7 days of the as_of date used with the dirty org (2026-05-19)

DEFAULTS: dict[str, dict[str, str | None]] = {
    "user": {"Name": "X User", "Title": "Account Executive", "UserRoleId": "R1", "ManagerId": "U0",
             "IsActive": "true", "TimeZoneSidKey": "UTC"},
    "account": {"Name": "X Account", "Industry": "Retail", "BillingCountry": "United States",
                "OwnerId": "U1", "CreatedDate": "2026-05-01T09:00:00Z"},
    "contact": {"AccountId": "A1", "FirstName": "X", "LastName": "Contact", "OwnerId": "U1",
                "CreatedDate": "2026-05-01T09:00:00Z"},
    "lead": {"FirstName": "X", "LastName": "Lead", "Company": "X Corp", "LeadSource": "Web",
             "Status": "Open", "OwnerId": "U1", "IsConverted": "false", "CreatedDate": RECENT},
    "opportunity": {"Name": "X deal", "AccountId": "A1", "OwnerId": "U1", "Type": "New Business",
                    "LeadSource": "Web", "StageName": "Prospecting", "Amount": "1000", "Probability": "10",
                    "ForecastCategoryName": "Pipeline", "CloseDate": "2026-09-30", "IsClosed": "false",
                    "IsWon": "false", "CreatedDate": "2026-05-01T09:00:00Z"},
    "opportunityhistory": {"OpportunityId": "XO07", "StageName": "Prospecting", "Amount": "1000",
                           "CreatedDate": "2026-05-01T09:00:00Z"},
    "task": {"WhoId": "CT1", "OwnerId": "U3", "Subject": "X task", "TaskSubtype": "Task",
             "Status": "Completed", "CreatedDate": "2026-05-18T10:00:00Z"},
    "campaign": {"Name": "X campaign", "Type": "Webinar", "Status": "Completed", "StartDate": "2026-01-01",
                 "EndDate": "2026-01-31", "BudgetedCost": "100", "ActualCost": "100",
                 "CreatedDate": "2025-12-01T09:00:00Z"},
    "forecastingquota": {"QuotaOwnerId": "U3", "QuotaAmount": "1000"},
}  # fmt: skip

# table -> (Id, the fields that differ from DEFAULTS); the comment names the rules it breaks.
DIRTY: dict[str, list[tuple[str, dict[str, str | None]]]] = {
    "user": [
        ("XU01", {"Email": "xu01-at-acme.example"}),  # user_email_well_formed, stg_user_email_well_formed
    ],
    "account": [
        ("XA01", {"OwnerId": "U9"}),  # account_owner_exists, stg_account_owner_exists
        ("XA02", {"Industry": None}),  # worklist: account_missing_industry
        ("XA03", {"CreatedDate": "not-a-date"}),  # quarantine: invalid_created_date
        ("XA04", {"SystemModstamp": "2026-02-30T00:00:00Z", "OwnerId": "U2"}),  # invalid_system_modstamp
    ],
    "contact": [
        ("XC01", {"Email": "bruce.at.wayne"}),  # contact_email_well_formed, stg_contact_email_well_formed
        ("XC02", {"Email": "xc02@globex.example", "AccountId": "A99"}),  # contact_account_exists (+stg)
        ("XC03", {"Email": "xc03@globex.example", "OwnerId": "U9"}),  # contact_owner_exists (+stg)
        ("XC04", {"Email": None}),  # worklist: contact_missing_email
        ("XC05", {"Email": "MIKE@globex.example"}),  # worklist: duplicate_contact_email, with CT2
        (
            "XC06",
            {"Email": "xc06@globex.example", "CreatedDate": "1850-01-01T00:00:00Z"},
        ),  # invalid_created_date
        (
            "XC07",
            {"Email": "xc07@globex.example", "SystemModstamp": "2026-05-18T25:00:00Z", "OwnerId": "U3"},
        ),  # invalid_system_modstamp
    ],
    "lead": [
        ("XL01", {"Email": "xl01@@initech"}),  # lead_email_well_formed, stg_lead_email_well_formed
        ("XL02", {"Email": "xl02@initech.example", "OwnerId": "U9"}),  # lead_owner_exists (+stg)
        ("XL03", {"Email": "xl03@initech.example", "OwnerId": None}),  # worklist: lead_without_owner
        ("XL04", {"Email": "PETER.PARK@initech.example"}),  # worklist: duplicate_lead_email, with L02
        (
            "XL05",
            {"Email": "xl05@initech.example", "CreatedDate": "2026-04-01T10:00:00Z", "OwnerId": "U2"},
        ),  # worklist: lead_without_activity_7d
        ("XL06", {"Email": "xl06@initech.example", "CreatedDate": "not-a-date"}),  # invalid_created_date
        ("XL07", {"Email": "xl07@initech.example", "SystemModstamp": "2026-13-01T00:00:00Z"}),  # modstamp
    ],
    "opportunity": [
        ("XO01", {"StageName": "Bogus Stage"}),  # opportunity_stage_known, stg_opportunity_stage_known
        ("XO02", {"Amount": "12k"}),  # quarantine amount_not_a_number; opportunity_amount_is_number
        ("XO03", {"Amount": "-5"}),  # quarantine amount_negative; opportunity_amount_not_negative
        # opportunity_close_date_not_before_created, stg_opportunity_close_not_before_created (closed lost,
        # so not an open opportunity past its close date)
        (
            "XO04",
            {
                "CloseDate": "2026-04-01",
                "StageName": "Closed Lost",
                "Probability": "0",
                "IsClosed": "true",
                "ForecastCategoryName": "Omitted",
            },
        ),
        ("XO05", {"AccountId": "A99"}),  # opportunity_account_exists, stg_opportunity_account_exists
        ("XO06", {"OwnerId": "U9"}),  # opportunity_owner_exists, stg_opportunity_owner_exists
        ("XO07", {"Amount": None}),  # worklist: opportunity_missing_amount
        ("XO08", {"CloseDate": "2026-05-01", "CreatedDate": "2026-04-01T09:00:00Z"}),  # worklist: past close
        ("XO09", {"CreatedDate": "1899-12-31T00:00:00Z"}),  # quarantine: invalid_created_date
        ("XO10", {"SystemModstamp": "2026-02-30T00:00:00Z", "OwnerId": "U2"}),  # invalid_system_modstamp
        ("XO11", {"Probability": "150"}),  # quarantine: probability_out_of_range
        ("XO12", {"CloseDate": "soon"}),  # quarantine: invalid_close_date
        ("XO13", {"OwnerId": None}),  # quarantine: missing_owner
    ],
    "opportunityhistory": [
        ("XH01", {"StageName": "Bogus Stage"}),  # opportunityhistory_stage_known
        ("XH02", {"Amount": "abc"}),  # quarantine amount_not_a_number; opportunityhistory_amount_is_number
        ("XH03", {"Amount": "-1"}),  # quarantine amount_negative; opportunityhistory_amount_not_negative
        ("XH04", {"OpportunityId": "O99"}),  # opportunityhistory_opportunity_exists (+stg twin)
        ("XH05", {"CreatedDate": "garbage"}),  # quarantine: invalid_created_date
        ("XH06", {"SystemModstamp": "2026-04-31T00:00:00Z"}),  # quarantine: invalid_system_modstamp
    ],
    "task": [
        ("XT01", {"TaskSubtype": "Fax"}),  # task_subtype_known
        ("XT02", {"OwnerId": "U9"}),  # task_owner_exists, stg_task_owner_exists
        ("XT03", {"WhoId": "L99"}),  # stg_task_who_or_what_exists
        ("XT04", {"CreatedDate": "garbage"}),  # quarantine: invalid_created_date
        ("XT05", {"SystemModstamp": "2026-00-10T00:00:00Z", "OwnerId": "U1"}),  # invalid_system_modstamp
    ],
    "campaign": [
        ("XK01", {"ActualCost": "n/a"}),  # quarantine actual_cost_not_a_number; campaign_actualcost_is_number
        ("XK02", {"ActualCost": "-100"}),  # quarantine actual_cost_negative; campaign_actualcost_not_negative
        ("XK03", {"BudgetedCost": "tbd"}),  # campaign_budgetedcost_is_number, quarantined
        ("XK04", {"BudgetedCost": "-50"}),  # campaign_budgetedcost_not_negative, quarantined
        ("XK05", {"CreatedDate": "garbage"}),  # quarantine: invalid_created_date
        ("XK06", {"SystemModstamp": "2026-02-30T00:00:00Z"}),  # quarantine: invalid_system_modstamp
    ],
    "forecastingquota": [
        # one month each, after the hand-written quotas, so no two quotas share an owner and month
        ("XQ01", {"StartDate": "2026-08-01", "QuotaAmount": "lots"}),  # quota_amount_not_a_number (+raw)
        ("XQ02", {"StartDate": "2026-09-01", "QuotaAmount": "-1000"}),  # quota_amount_negative (+raw)
        ("XQ03", {"StartDate": "2026-10-01", "QuotaOwnerId": "U9"}),  # forecastingquota_owner_exists (+stg)
        ("XQ04", {"StartDate": "2026-11-15"}),  # stg_quota_starts_on_first_of_month
        ("XQ05", {"StartDate": "next month"}),  # quarantine: invalid_start_date
        ("XQ06", {"StartDate": "2027-01-01", "SystemModstamp": "2026-02-30T00:00:00Z"}),  # modstamp
    ],
}


def dirty_rows(table: str) -> list[dict[str, str | None]]:
    columns = CRM_CONTRACT[table]
    rows = []
    for record_id, values in DIRTY[table]:
        row: dict[str, str | None] = {
            "Id": record_id,
            "SystemModstamp": MODSTAMP,
            **DEFAULTS[table],
            **values,
        }
        if "IsDeleted" in columns:
            row.setdefault("IsDeleted", "0")
        if table == "contact" and "Email" not in values:
            row["Email"] = f"{record_id.lower()}@globex.example"
        if table == "lead" and "Email" not in values:
            row["Email"] = f"{record_id.lower()}@initech.example"
        unknown = set(row) - set(columns)
        assert not unknown, f"{table}: not contract columns {unknown}"
        rows.append(row)
    return rows


def write_dirty_crm(path: Path) -> None:
    write_crm(path)
    for table in DIRTY:
        insert_rows(path, table, dirty_rows(table))


OPS = ("Sales Ops", "ops@acme.example")
# An hourly series of 1001 occurrences: one more than the staging bound; the loader keeps it all
# when SALESOPS_CALENDAR_MAX_OCCURRENCES is raised (the default cap of 1000 would truncate it).
SERIES_OCCURRENCES = 1001
X_DIRTY_EVENTS = [
    vevent(  # calendar_status_known: STATUS is not CONFIRMED/TENTATIVE/CANCELLED
        "x-draft@acme.example", "DTSTART:20260506T150000Z", "DTEND:20260506T160000Z", "STATUS:DRAFT",
        "SUMMARY:Draft", organizer(*OPS),
    ),
    vevent(  # calendar_attendee_email_well_formed, stg_calendar_attendee_email_well_formed
        "x-bad-attendee@acme.example", "DTSTART:20260507T150000Z", "DTEND:20260507T160000Z",
        "SUMMARY:Bad attendee", organizer(*OPS), attendee("Nobody", "not-an-email", "ACCEPTED"),
    ),
    vevent(  # stg_calendar_occurrences_per_series_bounded
        "x-hourly@acme.example", "DTSTART:20260501T000000Z", "DTEND:20260501T001500Z",
        f"RRULE:FREQ=HOURLY;COUNT={SERIES_OCCURRENCES}", "SUMMARY:Heartbeat", organizer(*OPS),
    ),
]  # fmt: skip


def write_dirty_calendars(folder: Path) -> None:
    write_calendars(folder)
    (folder / f"{OPS[1]}.ics").write_bytes(ics_text(X_DIRTY_EVENTS))
