"""Every metric mart against values written out by hand (docs/metrics.md is the definition).

A small org is written below, row by row: four reps (one in Asia/Tokyo, one inactive user), six
live accounts and a deleted one, a dozen leads, seventeen opportunities, tasks, quotas, campaigns,
stage history and three mailbox calendars. It covers: deleted rows in every object, a task logged
before its lead existed, a lead never answered, a lead created on a Saturday (Tokyo time), a
meeting booked with the lead's email in another letter case, a cancelled meeting, a null Amount,
months and quarters without quota, a zero quota, a campaign without opportunities, a weekly
training series, an all-day event and the same meeting exported from several mailboxes.

The nightly job runs three times on it (as_of 2026-05-06, then 2026-05-20 twice); every mart is
then compared, whole, with the rows written out in this file for as_of 2026-05-20. The same
expectations hold on PostgreSQL: the raw tables are copied there and `dbt build --target
postgres` runs with the same three as_of dates (every test runs for [duckdb] and [postgres]).

Calendar facts used throughout: 2026-04-06, 04-13, 04-20, 04-27, 05-04, 05-11 and 05-18 are
Mondays; New York is UTC-4 in April 2026 (EDT), Tokyo is UTC+9 all year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import execute_nightly, pipeline_env
from tests.crm_fixtures import create_crm, insert_rows
from tests.postgres import DbtInvocation

AS_OF = date(2026, 5, 20)  # a Wednesday in Q2 2026; trailing four quarters = 2025-04-01 .. 2026-03-31
EARLIER_AS_OF = date(2026, 5, 6)  # first run: same quarters, before O10 (won 2026-05-08) closed
MODSTAMP = "2026-05-19T00:00:00Z"

Q2_2025, Q4_2024, Q2_2026, Q3_2026 = date(2025, 4, 1), date(2024, 10, 1), date(2026, 4, 1), date(2026, 7, 1)


def ts(text: str) -> datetime:
    """A naive UTC timestamp, as the marts hold them: ts('2026-04-06 14:20')."""
    return datetime.fromisoformat(text)


def d(text: str) -> date:
    return date.fromisoformat(text)


# =============================================================================== the CRM, by hand

USERROLES = [
    {"Id": "R0", "Name": "Sales Leadership", "ParentRoleId": None},
    {"Id": "R1", "Name": "AE East", "ParentRoleId": "R0"},
    {"Id": "R2", "Name": "AE APAC", "ParentRoleId": "R0"},
]

USER_COLUMNS = ("Id", "Name", "Email", "Title", "UserRoleId", "ManagerId", "IsActive", "TimeZoneSidKey",
                "Hire_Date__c")  # fmt: skip
USERS = [
    ("U0", "Maria Manager", "maria@acme.example", "VP Sales", "R0", None, "true", "America/New_York", None),
    ("U1", "Alice Adams", "alice@acme.example", "Account Executive", "R1", "U0", "true", "America/New_York",
     "2025-01-06"),
    ("U2", "Kenji Sato", "kenji@acme.example", "Account Executive", "R2", "U0", "true", "Asia/Tokyo",
     "2026-03-02"),
    ("U3", "Bob Brown", "bob@acme.example", "Sales Development Rep", "R1", "U1", "true", "UTC", "2025-06-02"),
    ("U4", "Olga Old", "olga@acme.example", "Account Executive", "R1", "U0", "false", "Europe/London", None),
]  # fmt: skip

ACCOUNT_COLUMNS = ("Id", "Name", "Industry", "NumberOfEmployees", "AnnualRevenue", "BillingCountry",
                   "OwnerId", "IsDeleted")  # fmt: skip
ACCOUNTS = [
    ("A1", "Globex", "Manufacturing", "2500", "500000000", "United States", "U1", "0"),
    ("A2", "Initech", "Technology", "150", "20000000", "United States", "U1", "0"),
    ("A3", "Umbrella", "Healthcare", "99", "8000000", "Japan", "U2", "0"),
    ("A4", "Hooli", "Technology", None, None, "Japan", "U2", "0"),
    ("A5", "Stark", "Energy", "100", "12000000", "United States", "U1", "0"),
    ("A6", "Wayne", "Security", "1000", "90000000", "United Kingdom", "U3", "0"),
    ("A7", "Tyrell", "Robotics", "5000", "700000000", "United States", "U1", "1"),  # deleted
]  # fmt: skip

CONTACTS = [
    {"Id": "CT1", "AccountId": "A6", "FirstName": "Bruce", "LastName": "Wayne",
     "Email": "bruce@wayne.example", "OwnerId": "U3", "IsDeleted": "0"},
    {"Id": "CT2", "AccountId": "A1", "FirstName": "Mike", "LastName": "Ross", "Email": "mike@globex.example",
     "OwnerId": "U1", "IsDeleted": "0"},
]  # fmt: skip

LEAD_COLUMNS = ("Id", "FirstName", "LastName", "Email", "Company", "LeadSource", "Status", "OwnerId",
                "IsConverted", "ConvertedOpportunityId", "CreatedDate", "IsDeleted")  # fmt: skip
LEADS = [
    # Alice (America/New_York, EDT = UTC-4)
    ("L01", "Ann", "Lee", "ann.lee@globex.example", "Globex", "Web", "Converted", "U1", "true", "O05",
     "2026-04-06T14:00:00Z", "0"),  # Mon 10:00 EDT
    ("L02", "Peter", "Park", "peter.park@initech.example", "Initech", "Web", "Working", "U1", "false", None,
     "2026-04-07T20:00:00Z", "0"),  # Tue 16:00 EDT
    ("L03", "Carol", "Jones", "Carol.Jones@Stark.Example", "Stark", "Trade Show", "Converted", "U1", "true",
     "O06", "2026-04-08T13:00:00Z", "0"),  # Wed 09:00 EDT; the meeting spells her CAROL.JONES@stark.example
    ("L04", "Dan", "Fox", "dan.fox@globex.example", "Globex", "Web", "Converted", "U1", "true", "O09",
     "2026-04-09T15:00:00Z", "0"),  # Thu 11:00 EDT; converted into the deleted O09
    ("L05", "Eve", "Stone", "eve.stone@initech.example", "Initech", None, "Open", "U1", "false", None,
     "2026-04-10T18:00:00Z", "0"),  # never answered (its only call task is deleted); no LeadSource
    ("L06", "Gus", "Grey", "gus.grey@initech.example", "Initech", "Web", "Converted", "U1", "true", "O07",
     "2026-04-07T12:00:00Z", "1"),  # deleted lead
    # Kenji (Asia/Tokyo, UTC+9)
    ("L07", "Aiko", "Tanaka", "aiko@umbrella.example", "Umbrella", "Partner", "Converted", "U2", "true",
     "O10", "2026-04-10T23:00:00Z", "0"),  # Saturday 2026-04-11 08:00 JST (still Friday in UTC)
    ("L08", "Ren", "Mori", "ren@umbrella.example", "Umbrella", "Partner", "Converted", "U2", "true", "O12",
     "2026-04-12T23:00:00Z", "0"),  # Monday 2026-04-13 08:00 JST (Sunday in UTC)
    ("L09", "Hiro", "Ito", "hiro@umbrella.example", "Umbrella", "Partner", "Converted", "U2", "true", "O10",
     "2026-04-14T02:00:00Z", "0"),  # Tue 11:00 JST; second lead converted into O10
    ("L10", "Yuki", "Abe", "yuki@initech.example", "Initech", "Web", "Open", "U2", "false", None,
     "2026-04-30T22:00:00Z", "0"),  # Fri 2026-05-01 07:00 JST (April in UTC); only a cancelled meeting
    # unowned
    ("L11", "Dana", "Hill", "dana@hooli.example", "Hooli", "Web", "Open", None, "false", None,
     "2026-04-13T16:30:00Z", "0"),
    # Bob (UTC)
    ("L12", "Lex", "Luthor", "lex@wayne.example", "Wayne", "Web", "Converted", "U3", "true", "O13",
     "2026-05-04T10:00:00Z", "0"),
]  # fmt: skip

OPPORTUNITY_COLUMNS = ("Id", "Name", "AccountId", "OwnerId", "Type", "LeadSource", "CampaignId", "StageName",
                       "Amount", "Probability", "ForecastCategoryName", "CloseDate", "IsClosed", "IsWon",
                       "CreatedDate", "IsDeleted")  # fmt: skip
OPPORTUNITIES = [
    # Alice's history: Q2 2025 cohort, closed in the trailing four quarters
    ("O14", "Initech starter", "A2", "U1", "New Business", "Web", "C1", "Closed Won", "5000", "100", "Closed",
     "2025-05-20", "true", "true", "2025-04-21T15:00:00Z", "0"),
    ("O01", "Globex expansion", "A1", "U1", "Existing Business", "Web", "C1", "Closed Won", "10000", "100",
     "Closed", "2025-08-15", "true", "true", "2025-06-02T15:00:00Z", "0"),
    ("O02", "Initech pilot", "A2", "U1", "New Business", "Web", "C1", "Closed Lost", "5000", "0", "Omitted",
     "2025-11-20", "true", "false", "2025-06-09T15:00:00Z", "0"),
    ("O03", "Globex platform", "A1", "U1", "Existing Business", "Partner", None, "Closed Won", "20000", "100",
     "Closed", "2026-02-10", "true", "true", "2025-06-23T15:00:00Z", "0"),
    # Alice, Q2 2026
    ("O04", "Initech renewal", "A2", "U1", "Renewal", "Trade Show", "C2", "Closed Won", None, "100", "Closed",
     "2026-04-15", "true", "true", "2026-04-01T14:00:00Z", "0"),  # null Amount
    ("O05", "Globex add-on", "A1", "U1", "Existing Business", "Web", "C2", "Closed Won", "8000", "100",
     "Closed", "2026-05-05", "true", "true", "2026-04-06T16:00:00Z", "0"),
    ("O06", "Stark rollout", "A5", "U1", "New Business", "Trade Show", "C2", "Negotiation/Review", "30000",
     "90", "Commit", "2026-06-20", "false", "false", "2026-04-08T16:00:00Z", "0"),
    ("O07", "Initech expansion", "A2", "U1", "Existing Business", "Web", None, "Proposal/Price Quote",
     "12000", "75", "Best Case", "2026-08-10", "false", "false", "2026-05-04T15:00:00Z", "0"),
    ("O08", "Wayne starter", "A6", "U1", "New Business", "Web", None, "Prospecting", "4000", "10", "Pipeline",
     "2026-06-30", "false", "false", "2026-05-05T15:00:00Z", "0"),
    ("O09", "Globex duplicate", "A1", "U1", "Existing Business", "Web", "C1", "Closed Won", "99999", "100",
     "Closed", "2026-05-01", "true", "true", "2026-04-09T16:00:00Z", "1"),  # deleted
    # Kenji, Q2 2026
    ("O10", "Umbrella clinic", "A3", "U2", "New Business", "Partner", "C4", "Closed Won", "6000", "100",
     "Closed", "2026-05-08", "true", "true", "2026-04-13T02:00:00Z", "0"),
    ("O11", "Hooli pilot", "A4", "U2", "New Business", "Web", "C2", "Value Proposition", "15000", "50",
     "Pipeline", "2026-06-15", "false", "false", "2026-04-20T02:00:00Z", "0"),
    ("O12", "Umbrella lab", "A3", "U2", "New Business", "Partner", None, "Closed Lost", "3000", "0",
     "Omitted", "2026-05-12", "true", "false", "2026-04-13T03:00:00Z", "0"),
    # Bob, Q2 2026
    ("O13", "Wayne services", "A6", "U3", "New Business", "Web", None, "Qualification", "2000", "10",
     "Pipeline", "2026-07-15", "false", "false", "2026-05-04T12:00:00Z", "0"),
    # Maria (the manager, no quota, no hire date), Q4 2024 cohort, closed before the trailing window
    ("O15", "Wayne security", "A6", "U0", "New Business", "Partner", None, "Closed Won", "7000", "100",
     "Closed", "2024-11-15", "true", "true", "2024-10-01T15:00:00Z", "0"),
    ("O16", "Wayne upgrade", "A6", "U0", "Existing Business", "Partner", None, "Closed Won", "9000", "100",
     "Closed", "2025-01-20", "true", "true", "2024-11-04T15:00:00Z", "0"),
    ("O17", "Hooli analytics", "A4", "U0", "New Business", "Web", None, "Closed Won", "4000", "100", "Closed",
     "2024-12-10", "true", "true", "2024-10-14T15:00:00Z", "0"),
]  # fmt: skip

HISTORY_COLUMNS = ("Id", "OpportunityId", "StageName", "CreatedDate", "IsDeleted")
OPPORTUNITY_HISTORY = [
    ("H01", "O12", "Prospecting", "2026-04-13T03:00:00Z", "0"),
    ("H02", "O12", "Prospecting", "2026-04-16T10:00:00Z", "0"),  # amount change, same stage
    ("H03", "O12", "Qualification", "2026-04-20T15:00:00Z", "0"),
    ("H04", "O12", "Closed Lost", "2026-05-12T03:00:00Z", "0"),  # lost from Qualification
    ("H05", "O10", "Prospecting", "2026-04-13T02:00:00Z", "0"),
    ("H06", "O10", "Proposal/Price Quote", "2026-04-23T14:00:00Z", "0"),  # skipped stages 2-6
    ("H07", "O10", "Closed Won", "2026-05-08T02:00:00Z", "0"),
    ("H08", "O06", "Prospecting", "2026-04-08T16:00:00Z", "0"),
    ("H09", "O06", "Qualification", "2026-04-10T16:00:00Z", "0"),
    ("H10", "O06", "Prospecting", "2026-04-13T04:00:00Z", "0"),  # back to Prospecting
    ("H11", "O06", "Qualification", "2026-04-14T16:00:00Z", "0"),
    ("H12", "O06", "Negotiation/Review", "2026-04-20T16:00:00Z", "0"),
    ("H13", "O08", "Negotiation/Review", "2026-05-06T09:00:00Z", "1"),  # deleted: O08 never left Prospecting
    ("H14", "O02", "Prospecting", "2025-06-09T15:00:00Z", "0"),
    ("H15", "O02", "Needs Analysis", "2025-06-19T03:00:00Z", "0"),
    ("H16", "O02", "Closed Lost", "2025-11-20T00:00:00Z", "0"),
]

TASK_COLUMNS = ("Id", "WhoId", "OwnerId", "Subject", "TaskSubtype", "Status", "CreatedDate", "IsDeleted")
TASKS = [
    ("T01", "L01", "U1", "Intro email", "Email", "Completed", "2026-04-06T14:20:00Z", "0"),
    ("T02", "L01", "U1", "Intro call", "Call", "Completed", "2026-04-06T14:20:00Z", "0"),  # tie: call wins
    ("T03", "L02", "U1", "Follow-up email", "Email", "Completed", "2026-04-08T14:00:00Z", "0"),
    # after the meeting booking
    ("T04", "L03", "U1", "Call", "Call", "Completed", "2026-04-08T15:00:00Z", "0"),
    ("T05", "L04", "U1", "Cold call", "Call", "Completed", "2026-04-09T14:00:00Z", "0"),  # before L04 existed
    ("T06", "L04", "U1", "Email", "Email", "Completed", "2026-04-09T18:00:00Z", "0"),
    ("T07", "L07", "U2", "Call", "Call", "Completed", "2026-04-13T00:30:00Z", "0"),  # Mon 09:30 JST
    ("T08", "L08", "U2", "Email", "Email", "Completed", "2026-04-13T01:15:00Z", "0"),  # Mon 10:15 JST
    ("T09", "L12", "U3", "Call", "Call", "Completed", "2026-05-04T10:05:00Z", "0"),
    ("T10", "L05", "U1", "Call", "Call", "Completed", "2026-04-10T18:30:00Z", "1"),  # deleted
    ("T11", "L02", "U1", "Send brochure", "Task", "Completed", "2026-04-07T20:05:00Z", "0"),  # not call/email
    ("T12", "CT1", "U1", "Partner call", "Call", "Completed", "2026-05-19T15:00:00Z", "0"),  # on a contact
]

CAMPAIGN_COLUMNS = ("Id", "Name", "Type", "Status", "StartDate", "EndDate", "BudgetedCost", "ActualCost",
                    "IsDeleted")  # fmt: skip
CAMPAIGNS = [
    ("C1", "Spring Webinar", "Webinar", "Completed", "2025-04-01", "2025-04-30", "2500", "2000", "0"),
    ("C2", "Trade Show 2026", "Trade Show", "Completed", "2026-03-15", "2026-03-17", "12000", "10000", "0"),
    # no opportunities
    ("C3", "Cold List", "Email", "Completed", "2026-04-01", "2026-04-30", "500", "500", "0"),
    ("C4", "Partner Referral", "Partners", "Active", "2026-01-01", None, "0", "0", "0"),  # free
    ("C5", "Old Campaign", "Webinar", "Completed", "2024-01-01", "2024-01-31", "100", "100", "1"),  # deleted
]  # fmt: skip

QUOTA_COLUMNS = ("Id", "QuotaOwnerId", "StartDate", "QuotaAmount")
QUOTAS = [
    ("Q01", "U1", "2025-04-01", "10000"),
    ("Q02", "U1", "2025-05-01", "10000"),
    ("Q03", "U1", "2025-06-01", "10000"),
    ("Q04", "U1", "2026-04-01", "15000"),
    ("Q05", "U1", "2026-05-01", "15000"),
    ("Q06", "U1", "2026-06-01", "15000"),
    ("Q07", "U1", "2026-07-01", "20000"),
    ("Q08", "U2", "2026-04-01", "2000"),
    ("Q09", "U2", "2026-05-01", "2000"),
    ("Q10", "U2", "2026-06-01", "0"),  # a zero quota: no attainment
    ("Q11", "U3", "2026-04-01", "8000"),
]


# =========================================================================== calendars, by hand


def vevent(uid: str, *lines: str, dtstamp: str = "20260301T000000Z") -> str:
    return "\n".join(["BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{dtstamp}", *lines, "END:VEVENT"])


def organizer(name: str, email: str) -> str:
    return f"ORGANIZER;CN={name}:mailto:{email}"


def attendee(name: str, email: str, partstat: str) -> str:
    return f"ATTENDEE;CN={name};ROLE=REQ-PARTICIPANT;PARTSTAT={partstat}:mailto:{email}"


ALICE = ("Alice Adams", "alice@acme.example")
KENJI = ("Kenji Sato", "kenji@acme.example")
BOB = ("Bob Brown", "bob@acme.example")
MARIA = ("Maria Manager", "maria@acme.example")

E1_STARK_DEMO = vevent(  # answers L03: booked Wed 13:45Z; her email in another letter case
    "e1-stark-demo@acme.example", "CREATED:20260408T134500Z", "DTSTART:20260410T140000Z",
    "DTEND:20260410T150000Z", "SUMMARY:Stark demo", organizer(*ALICE), attendee(*ALICE, "ACCEPTED"),
    attendee("Carol Jones", "CAROL.JONES@stark.example", "NEEDS-ACTION"),
)  # fmt: skip
# answers L09: booked Tue 03:00Z; Thu 10:00-11:00 JST; in Kenji's and Alice's files
E2_UMBRELLA_KICKOFF = vevent(
    "e2-umbrella-kickoff@acme.example", "CREATED:20260414T030000Z", "DTSTART;TZID=Asia/Tokyo:20260416T100000",
    "DTEND;TZID=Asia/Tokyo:20260416T110000", "SUMMARY:Umbrella kickoff", organizer(*KENJI),
    attendee(*KENJI, "ACCEPTED"), attendee("Hiro Ito", "hiro@umbrella.example", "ACCEPTED"),
    attendee(*ALICE, "ACCEPTED"),
)  # fmt: skip
E3_HOOLI_INTRO = vevent(  # answers L11: no CREATED, so booked at its start (not at DTSTAMP)
    "e3-hooli-intro@acme.example", "DTSTART:20260414T090000Z", "DTEND:20260414T093000Z",
    "SUMMARY:Hooli intro", organizer(*ALICE), attendee("Dana Hill", "dana@hooli.example", "ACCEPTED"),
    dtstamp="20260413T163500Z",
)  # fmt: skip
E4_INITECH_CANCELLED = vevent(  # would answer L10, but cancelled
    "e4-initech-call@acme.example", "CREATED:20260430T221000Z", "DTSTART:20260507T010000Z",
    "DTEND:20260507T020000Z", "STATUS:CANCELLED", "SUMMARY:Initech call", organizer(*KENJI),
    attendee("Yuki Abe", "yuki@initech.example", "ACCEPTED"),
)  # fmt: skip
E5_BOOTCAMP_SERIES = vevent(  # Tue 2026-03-03, 03-10, 03-17, 03-24 10:00Z; Kenji accepted, Bob declined
    "e5-sales-bootcamp@acme.example", "CREATED:20260225T090000Z", "DTSTART:20260303T100000Z",
    "DTEND:20260303T110000Z", "RRULE:FREQ=WEEKLY;COUNT=4", "CATEGORIES:Training", "SUMMARY:Sales bootcamp",
    organizer(*MARIA), attendee(*KENJI, "ACCEPTED"), attendee(*BOB, "DECLINED"),
)  # fmt: skip
E6_ONBOARDING = vevent(  # Bob, 8 days after his hire date
    "e6-onboarding-crm@acme.example", "DTSTART:20250610T090000Z", "DTEND:20250610T110000Z",
    "CATEGORIES:Onboarding", "SUMMARY:CRM basics", organizer(*MARIA), attendee(*BOB, "ACCEPTED"),
)  # fmt: skip
E7_NEGOTIATION_TRAINING = vevent(  # Bob, 105 days after his hire date
    "e7-negotiation-training@acme.example", "DTSTART:20250915T090000Z", "DTEND:20250915T100000Z",
    "CATEGORIES:Sales,Training", "SUMMARY:Negotiation training", organizer(*MARIA),
    attendee(*BOB, "ACCEPTED"),
)  # fmt: skip
E8_PIPELINE_REVIEW = vevent(  # internal; Bob accepted, Kenji only tentative; in Alice's and Bob's files
    "e8-pipeline-review@acme.example", "DTSTART:20260407T150000Z", "DTEND:20260407T160000Z",
    "SUMMARY:Pipeline review", organizer(*ALICE), attendee(*BOB, "ACCEPTED"), attendee(*KENJI, "TENTATIVE"),
)  # fmt: skip
E9_OFFSITE_ALL_DAY = vevent(  # all-day, with an outside guest: not a meeting
    "e9-offsite@acme.example", "DTSTART;VALUE=DATE:20260409", "DTEND;VALUE=DATE:20260410", "SUMMARY:Offsite",
    organizer(*ALICE), attendee("Guide", "guide@offsite.example", "ACCEPTED"),
)  # fmt: skip
E10_WAYNE_REVIEW = vevent(  # Bob's first customer meeting, 1.5 h
    "e10-wayne-review@acme.example", "CREATED:20260515T120000Z", "DTSTART:20260519T130000Z",
    "DTEND:20260519T143000Z", "SUMMARY:Wayne review", organizer(*BOB),
    attendee("Bruce Wayne", "bruce@wayne.example", "NEEDS-ACTION"),
)  # fmt: skip
E11_GLOBEX_QBR = vevent(  # Alice's customer meeting; Bob declined; in Alice's and Bob's files
    "e11-globex-qbr@acme.example", "CREATED:20260501T120000Z", "DTSTART:20260512T140000Z",
    "DTEND:20260512T150000Z", "SUMMARY:Globex QBR", organizer(*ALICE),
    attendee("Mike Ross", "mike@globex.example", "ACCEPTED"), attendee(*BOB, "DECLINED"),
)  # fmt: skip

CALENDARS = {
    "alice@acme.example": [E1_STARK_DEMO, E2_UMBRELLA_KICKOFF, E3_HOOLI_INTRO, E8_PIPELINE_REVIEW,
                           E9_OFFSITE_ALL_DAY, E11_GLOBEX_QBR],
    "kenji@acme.example": [E2_UMBRELLA_KICKOFF, E4_INITECH_CANCELLED, E5_BOOTCAMP_SERIES],
    "bob@acme.example": [E5_BOOTCAMP_SERIES, E6_ONBOARDING, E7_NEGOTIATION_TRAINING, E8_PIPELINE_REVIEW,
                         E10_WAYNE_REVIEW, E11_GLOBEX_QBR],
}  # fmt: skip


def ics_text(events: list[str]) -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//salesops//handwritten test//EN",
        *events,
        "END:VCALENDAR",
    ]
    return ("\r\n".join("\n".join(lines).split("\n")) + "\r\n").encode("utf-8")


# ====================================================================== writing and running it


def _with_defaults(table: str, row: dict[str, object]) -> dict[str, object]:
    from ingestion.contract import CRM_CONTRACT

    filled = {"SystemModstamp": MODSTAMP, **row}
    columns = CRM_CONTRACT[table]
    if "IsDeleted" in columns:
        filled.setdefault("IsDeleted", "0")
    if "CreatedDate" in columns:
        filled.setdefault("CreatedDate", "2024-09-02T09:00:00Z")
    return filled


def write_crm(path: Path) -> None:
    create_crm(path)
    tables: dict[str, list[dict[str, object]]] = {
        "userrole": USERROLES,
        "user": [dict(zip(USER_COLUMNS, r, strict=True)) for r in USERS],
        "account": [dict(zip(ACCOUNT_COLUMNS, r, strict=True)) for r in ACCOUNTS],
        "contact": CONTACTS,
        "lead": [dict(zip(LEAD_COLUMNS, r, strict=True)) for r in LEADS],
        "opportunity": [dict(zip(OPPORTUNITY_COLUMNS, r, strict=True)) for r in OPPORTUNITIES],
        "opportunityhistory": [dict(zip(HISTORY_COLUMNS, r, strict=True)) for r in OPPORTUNITY_HISTORY],
        "task": [dict(zip(TASK_COLUMNS, r, strict=True)) for r in TASKS],
        "campaign": [dict(zip(CAMPAIGN_COLUMNS, r, strict=True)) for r in CAMPAIGNS],
        "forecastingquota": [dict(zip(QUOTA_COLUMNS, r, strict=True)) for r in QUOTAS],
    }
    for table, rows in tables.items():
        insert_rows(path, table, [_with_defaults(table, row) for row in rows])


def write_calendars(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for mailbox, events in CALENDARS.items():
        (folder / f"{mailbox}.ics").write_bytes(ics_text(events))


@dataclass
class HandwrittenRun:
    warehouse: Path
    results: list  # dagster ExecuteInProcessResult per run: EARLIER_AS_OF, AS_OF, AS_OF again
    snapshots: list[list[dict]]  # marts.pipeline_snapshots after each run ([] when missing)
    postgres_dsn: str | None = None  # the marts were built on PostgreSQL (results: DbtInvocation)

    def rows(self, table: str) -> list[dict]:
        if self.postgres_dsn:
            return postgres_query_rows(self.postgres_dsn, f"SELECT * FROM marts.{table}")
        return query_rows(self.warehouse, f"SELECT * FROM marts.{table}")

    def has_mart(self, table: str) -> bool:
        if self.postgres_dsn:
            return postgres_mart_exists(self.postgres_dsn, table)
        return mart_exists(self.warehouse, table)


def query_rows(warehouse: Path, sql: str) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        cursor = connection.execute(sql)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def mart_exists(warehouse: Path, table: str) -> bool:
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts' AND table_name = ?"
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return bool(connection.execute(sql, [table]).fetchone()[0])


def postgres_query_rows(dsn: str, sql: str) -> list[dict]:
    with psycopg.connect(dsn, row_factory=dict_row) as connection:
        return connection.execute(sql).fetchall()  # type: ignore[arg-type]


def postgres_mart_exists(dsn: str, table: str) -> bool:
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts' AND table_name = %s"
    with psycopg.connect(dsn) as connection:
        return bool(connection.execute(sql, [table]).fetchone()[0])  # type: ignore[index]


@pytest.fixture(scope="module")
def duckdb_run(tmp_path_factory: pytest.TempPathFactory) -> HandwrittenRun:
    root = tmp_path_factory.mktemp("handwritten")
    write_crm(root / "crm.sqlite")
    write_calendars(root / "calendars")
    warehouse = root / "warehouse.duckdb"
    env = pipeline_env(root / "crm.sqlite", root / "calendars", warehouse, root / "dagster_home")
    results, snapshots = [], []
    for as_of in (EARLIER_AS_OF, AS_OF, AS_OF):
        results.append(execute_nightly({**env, "SALESOPS_AS_OF": as_of.isoformat()}))
        exists = warehouse.exists() and mart_exists(warehouse, "pipeline_snapshots")
        snapshots.append(query_rows(warehouse, "SELECT * FROM marts.pipeline_snapshots") if exists else [])
    return HandwrittenRun(warehouse, results, snapshots)


def postgres_run(
    duckdb_run: HandwrittenRun, server: object, tmp_path_factory: pytest.TempPathFactory
) -> HandwrittenRun:
    """The DuckDB run's raw tables (the same CRM and calendars each run) copied into a fresh
    PostgreSQL database, and dbt built there for each as_of in turn, as the nightly job would."""
    from ingestion.sql_warehouse import copy_duckdb_raw
    from tests.postgres import fresh_database, run_dbt_on_postgres

    database = fresh_database(server, "salesops_handwritten")  # type: ignore[arg-type]
    copy_duckdb_raw(duckdb_run.warehouse, database.url)
    root = tmp_path_factory.mktemp("handwritten_postgres")
    results, snapshots = [], []
    for index, as_of in enumerate((EARLIER_AS_OF, AS_OF, AS_OF)):
        build = run_dbt_on_postgres(database, as_of.isoformat(), root / f"run{index}")
        results.append(build)
        exists = build.success and postgres_mart_exists(database.dsn, "pipeline_snapshots")
        snapshots.append(
            postgres_query_rows(database.dsn, "SELECT * FROM marts.pipeline_snapshots") if exists else []
        )
    return HandwrittenRun(duckdb_run.warehouse, results, snapshots, postgres_dsn=database.dsn)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def run(
    request: pytest.FixtureRequest, duckdb_run: HandwrittenRun, tmp_path_factory: pytest.TempPathFactory
) -> HandwrittenRun:
    if request.param == "duckdb":
        return duckdb_run
    return postgres_run(duckdb_run, request.getfixturevalue("postgres_server"), tmp_path_factory)


# ========================================================================== comparing marts


def same(actual: object, expected: object) -> bool:
    """Exact for ints, dates, timestamps, strings and bools; math.isclose for floats."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if isinstance(expected, float):
        return (
            isinstance(actual, float | int | Decimal)
            and not isinstance(actual, bool)
            and math.isclose(float(actual), expected, rel_tol=1e-9, abs_tol=1e-9)
        )
    if isinstance(expected, int):
        return type(actual) is int and actual == expected
    if type(expected) is date:
        return type(actual) is date and actual == expected
    if isinstance(expected, datetime):
        return isinstance(actual, datetime) and actual.tzinfo is None and actual == expected
    return type(actual) is type(expected) and actual == expected


def assert_mart(
    run: HandwrittenRun, table: str, key: tuple[str, ...], columns: tuple[str, ...], expected: list[tuple]
) -> None:
    if not run.has_mart(table):
        pytest.fail(f"marts.{table} was not built")
    assert_rows(run.rows(table), f"marts.{table}", key, columns, expected)


def assert_rows(
    actual_rows: list[dict], name: str, key: tuple[str, ...], columns: tuple[str, ...], expected: list[tuple]
) -> None:
    problems = row_differences(actual_rows, key, columns, expected)
    assert not problems, f"{name}: {len(problems)} differences\n" + "\n".join(problems)


def row_differences(
    actual_rows: list[dict], key: tuple[str, ...], columns: tuple[str, ...], expected: list[tuple]
) -> list[str]:
    """Every difference between the rows and the expected ones: missing, extra, duplicated, per column."""
    missing_columns = [c for c in columns if actual_rows and c not in actual_rows[0]]
    if missing_columns:
        return [f"no column {c}" for c in missing_columns]
    expected_rows = [dict(zip(columns, row, strict=True)) for row in expected]
    expected_by_key = {tuple(r[c] for c in key): r for r in expected_rows}
    assert len(expected_by_key) == len(expected_rows), "duplicate keys in the expected rows"
    actual_by_key: dict[tuple, dict] = {}
    problems = []
    for row in actual_rows:
        k = tuple(row[c] for c in key)
        if k in actual_by_key:
            problems.append(f"duplicate row {k}")
        actual_by_key[k] = row
    problems += [f"missing row {k}" for k in expected_by_key if k not in actual_by_key]
    problems += [f"unexpected row {k}: {actual_by_key[k]}" for k in actual_by_key if k not in expected_by_key]
    for k, want in expected_by_key.items():
        if k not in actual_by_key:
            continue
        got = actual_by_key[k]
        for column in columns:
            if not same(got[column], want[column]):
                problems.append(f"{k} {column}: mart {got[column]!r}, expected {want[column]!r}")
    return problems


# ================================================================================== the run


def test_every_run_succeeds(run: HandwrittenRun) -> None:
    for as_of, result in zip((EARLIER_AS_OF, AS_OF, AS_OF), run.results, strict=True):
        if isinstance(result, DbtInvocation):
            assert result.success, f"dbt build --target postgres with as_of {as_of} failed:\n{result.tail()}"
            continue
        failed = [
            (f"{e.asset_key.to_user_string()}:{e.check_name}", e.severity.value)
            for e in result.get_asset_check_evaluations()
            if not e.passed
        ]
        assert result.success, f"run with as_of {as_of} failed; failed checks: {failed}"
        assert [name for name, severity in failed if severity == "ERROR"] == [], failed


# ============================================================================= quota_attainment

QUOTA_ATTAINMENT = ("rep_id", "period_type", "period_start", "quota_amount", "bookings_amount", "won_deals",
                    "attainment")  # fmt: skip


def test_quota_attainment(run: HandwrittenRun) -> None:
    expected = [
        # Maria: bookings without any quota (O15 Nov, O17 Dec 2024, O16 Jan 2025)
        ("U0", "month", d("2024-11-01"), None, 7000.0, 1, None),
        ("U0", "month", d("2024-12-01"), None, 4000.0, 1, None),
        ("U0", "month", d("2025-01-01"), None, 9000.0, 1, None),
        ("U0", "quarter", d("2024-10-01"), None, 11000.0, 2, None),  # 7000 + 4000
        ("U0", "quarter", d("2025-01-01"), None, 9000.0, 1, None),
        # Alice
        ("U1", "month", d("2025-04-01"), 10000.0, 0.0, 0, 0.0),
        ("U1", "month", d("2025-05-01"), 10000.0, 5000.0, 1, 0.5),  # O14
        ("U1", "month", d("2025-06-01"), 10000.0, 0.0, 0, 0.0),
        ("U1", "month", d("2025-08-01"), None, 10000.0, 1, None),  # O01, no quota that month
        ("U1", "month", d("2026-02-01"), None, 20000.0, 1, None),  # O03
        ("U1", "month", d("2026-04-01"), 15000.0, 0.0, 1, 0.0),  # O04 won with a null Amount counts 0
        ("U1", "month", d("2026-05-01"), 15000.0, 8000.0, 1, 8000 / 15000),  # O05; deleted O09 ignored
        ("U1", "month", d("2026-06-01"), 15000.0, 0.0, 0, 0.0),
        ("U1", "month", d("2026-07-01"), 20000.0, 0.0, 0, 0.0),
        ("U1", "quarter", d("2025-04-01"), 30000.0, 5000.0, 1, 5000 / 30000),
        ("U1", "quarter", d("2025-07-01"), None, 10000.0, 1, None),  # a quarter without quota
        ("U1", "quarter", d("2026-01-01"), None, 20000.0, 1, None),
        ("U1", "quarter", d("2026-04-01"), 45000.0, 8000.0, 2, 8000 / 45000),  # O04 (0) + O05
        ("U1", "quarter", d("2026-07-01"), 20000.0, 0.0, 0, 0.0),
        # Kenji: June's quota is 0, so no attainment there
        ("U2", "month", d("2026-04-01"), 2000.0, 0.0, 0, 0.0),
        ("U2", "month", d("2026-05-01"), 2000.0, 6000.0, 1, 3.0),  # O10
        ("U2", "month", d("2026-06-01"), 0.0, 0.0, 0, None),
        ("U2", "quarter", d("2026-04-01"), 4000.0, 6000.0, 1, 1.5),
        # Bob: a quota, never a booking
        ("U3", "month", d("2026-04-01"), 8000.0, 0.0, 0, 0.0),
        ("U3", "quarter", d("2026-04-01"), 8000.0, 0.0, 0, 0.0),
    ]
    assert_mart(run, "quota_attainment", QUOTA_ATTAINMENT[:3], QUOTA_ATTAINMENT, expected)


# ========================================================================== lead_response_times

LEAD_RESPONSE_TIMES = ("lead_id", "owner_id", "lead_source", "created_at", "first_response_at",
                       "response_channel", "response_minutes", "business_response_minutes", "owner_time_zone",
                       "is_responded", "within_sla")  # fmt: skip
NEW_YORK, TOKYO = "America/New_York", "Asia/Tokyo"


def test_lead_response_times(run: HandwrittenRun) -> None:
    expected = [
        # email and call logged at the same minute: call wins
        ("L01", "U1", "Web", ts("2026-04-06 14:00"), ts("2026-04-06 14:20"), "call", 20.0, 20.0, NEW_YORK,
         True, True),
        # Tue 16:00 EDT -> Wed 10:00 EDT: 18 h wall clock; 60 (Tue 16-17) + 60 (Wed 9-10) business minutes.
        # The 'Task' subtype T11 at 20:05Z is not a response.
        ("L02", "U1", "Web", ts("2026-04-07 20:00"), ts("2026-04-08 14:00"), "email", 1080.0, 120.0, NEW_YORK,
         True, False),
        # meeting E1 booked 13:45Z, with CAROL.JONES@stark.example vs Carol.Jones@Stark.Example; the call
        # T04 (15:00Z) came later
        ("L03", "U1", "Trade Show", ts("2026-04-08 13:00"), ts("2026-04-08 13:45"), "meeting", 45.0, 45.0,
         NEW_YORK, True, True),
        # the call T05 (14:00Z) was logged before the lead existed (15:00Z); first response is the
        # email T06 at 18:00Z: 11:00 -> 14:00 EDT = 180 minutes either way
        ("L04", "U1", "Web", ts("2026-04-09 15:00"), ts("2026-04-09 18:00"), "email", 180.0, 180.0, NEW_YORK,
         True, False),
        # never answered (its call T10 is deleted); no LeadSource: Unknown, as in the funnel
        ("L05", "U1", "Unknown", ts("2026-04-10 18:00"), None, None, None, None, NEW_YORK, False, False),
        # Sat 08:00 JST -> Mon 09:30 JST: 49.5 h = 2970 wall-clock minutes, 30 business minutes
        ("L07", "U2", "Partner", ts("2026-04-10 23:00"), ts("2026-04-13 00:30"), "call", 2970.0, 30.0, TOKYO,
         True, True),
        # Mon 08:00 -> 10:15 JST: 135 wall-clock minutes, 75 business minutes (from 09:00)
        ("L08", "U2", "Partner", ts("2026-04-12 23:00"), ts("2026-04-13 01:15"), "email", 135.0, 75.0, TOKYO,
         True, False),
        # meeting E2 booked Tue 12:00 JST, one hour after the lead: exactly the 60-minute SLA
        ("L09", "U2", "Partner", ts("2026-04-14 02:00"), ts("2026-04-14 03:00"), "meeting", 60.0, 60.0, TOKYO,
         True, True),
        # only the cancelled meeting E4
        ("L10", "U2", "Web", ts("2026-04-30 22:00"), None, None, None, None, TOKYO, False, False),
        # unowned, so UTC: meeting E3 has no CREATED and counts at its start, Tue 09:00Z:
        # 16.5 h = 990 wall-clock minutes; business 30 (Mon 16:30-17:00) + 0 (Tue from 09:00)
        ("L11", None, "Web", ts("2026-04-13 16:30"), ts("2026-04-14 09:00"), "meeting", 990.0, 30.0, "UTC",
         True, True),
        ("L12", "U3", "Web", ts("2026-05-04 10:00"), ts("2026-05-04 10:05"), "call", 5.0, 5.0, "UTC", True,
         True),
        # L06 is deleted: no row
    ]  # fmt: skip
    assert_mart(run, "lead_response_times", ("lead_id",), LEAD_RESPONSE_TIMES, expected)


LEAD_RESPONSE_BY_REP_WEEK = ("owner_id", "week_start", "leads", "responded",
                             "median_business_response_minutes",
                             "p90_business_response_minutes", "sla_rate")  # fmt: skip


def test_lead_response_by_rep_week(run: HandwrittenRun) -> None:
    expected = [
        # L01 20, L02 120, L03 45, L04 180, L05 unanswered. Sorted 20, 45, 120, 180:
        # median (45 + 120) / 2 = 82.5; p90 at position 0.9 * 3 = 2.7: 120 + 0.7 * 60 = 162; SLA L01, L03
        ("U1", d("2026-04-06"), 5, 4, 82.5, 162.0, 2 / 5),
        # L07 (30) and L08 (75): both created in the UTC week of Monday 04-06 (L08 is Sunday 23:00Z)
        # median 52.5; p90 30 + 0.9 * 45 = 70.5; SLA L07 only
        ("U2", d("2026-04-06"), 2, 2, 52.5, 70.5, 0.5),
        ("U2", d("2026-04-13"), 1, 1, 60.0, 60.0, 1.0),  # L09
        ("U2", d("2026-04-27"), 1, 0, None, None, 0.0),  # L10, Thursday 2026-04-30 in UTC
        (None, d("2026-04-13"), 1, 1, 30.0, 30.0, 1.0),  # L11, unowned
        ("U3", d("2026-05-04"), 1, 1, 5.0, 5.0, 1.0),  # L12
    ]
    assert_mart(
        run, "lead_response_by_rep_week", ("owner_id", "week_start"), LEAD_RESPONSE_BY_REP_WEEK, expected
    )


# ============================================================================= funnel_conversion

FUNNEL_CONVERSION = ("cohort_month", "lead_source", "leads", "converted_leads", "opportunities",
                     "won_opportunities", "won_amount", "lead_to_opportunity_rate", "win_rate",
                     "lead_to_win_rate")  # fmt: skip


def test_funnel_conversion(run: HandwrittenRun) -> None:
    april, may = d("2026-04-01"), d("2026-05-01")
    expected = [
        # L01 (-> O05, won 8000), L02, L04 (-> deleted O09: converted, no opportunity), L10
        # (2026-04-30 22:00Z, May only in Tokyo), L11; the deleted L06 does not count
        (april, "Web", 5, 2, 1, 1, 8000.0, 1 / 5, 1.0, 1 / 5),
        (april, "Trade Show", 1, 1, 1, 0, 0.0, 1.0, None, 0.0),  # L03 -> O06, still open
        (april, "Unknown", 1, 0, 0, 0, 0.0, 0.0, None, 0.0),  # L05 has no LeadSource
        # L07 and L09 -> O10 (won 6000, counted once), L08 -> O12 (lost): win rate 1 of 2 closed
        (april, "Partner", 3, 3, 2, 1, 6000.0, 2 / 3, 1 / 2, 1 / 3),
        (may, "Web", 1, 1, 1, 0, 0.0, 1.0, None, 0.0),  # L12 -> O13, open
    ]
    assert_mart(run, "funnel_conversion", ("cohort_month", "lead_source"), FUNNEL_CONVERSION, expected)


# ============================================================================== stage_conversion

STAGE_CONVERSION = ("cohort_quarter", "stage_name", "stage_order", "reached", "advanced", "conversion_rate",
                    "median_days_in_stage")  # fmt: skip
STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
          "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won")  # fmt: skip


def stage_rows(
    cohort: date, reached: list[int], advanced: list[int], medians: list[float | None]
) -> list[tuple]:
    """The nine rows of one cohort; conversion_rate written out per row in the test."""
    return [
        (cohort, stage, order, r, (a if order < 9 else None), (a / r if order < 9 else None), m)
        for order, (stage, r, a, m) in enumerate(
            zip(STAGES, reached, advanced, medians, strict=True), start=1
        )
    ]


def test_stage_conversion(run: HandwrittenRun) -> None:
    # Closed Won is the last stage: it has no next stage, so docs/metrics.md leaves its advanced and
    # conversion_rate empty (stage_rows turns the 0 written for it into None).
    expected = [
        # Q4 2024: O15, O16, O17, all won, no history: each reached every stage; nobody left a stage
        # by a history row, so no medians
        *stage_rows(Q4_2024, [3] * 9, [3] * 8 + [0], [None] * 9),
        # Q2 2025: O14, O01, O03 won (no history); O02 lost from Needs Analysis (history Prospecting ->
        # Needs Analysis -> Closed Lost), so it reached stages 1-3 (Qualification through the later
        # Needs Analysis). Prospecting: 06-09 15:00 -> 06-19 03:00 = 9.5 days; Needs Analysis:
        # 06-19 03:00 -> 11-20 00:00 = 153 days 21 h = 153.875 days
        *stage_rows(Q2_2025, [4, 4, 4, 3, 3, 3, 3, 3, 3], [4, 4, 3, 3, 3, 3, 3, 3, 0],
                    [9.5, None, 153.875, None, None, None, None, None, None]),
        # Q2 2026: O04, O05, O10 won (reach 1-9); O06 at Negotiation (1-8); O07 at Proposal (1-7);
        # O11 at Value Proposition (1-4); O13 at Qualification (1-2); O12 lost from Qualification (1-2);
        # O08 at Prospecting (1; its Negotiation history row is deleted).
        # Prospecting left: O12 04-13 03:00 -> 04-20 15:00 = 7.5 (the same-stage row H02 does not end
        # it), O10 04-13 02:00 -> 04-23 14:00 = 10.5, O06 2.0 + 1.5 = 3.5 (entered twice) -> median 7.5.
        # Qualification left: O12 04-20 15:00 -> 05-12 03:00 = 21.5, O06 2.5 + 6.0 = 8.5 -> median 15.0.
        # Proposal left: O10 04-23 14:00 -> 05-08 02:00 = 14.5. Negotiation: O06 has not left it.
        *stage_rows(Q2_2026, [9, 8, 6, 6, 5, 5, 5, 4, 3], [8, 6, 6, 5, 5, 5, 4, 3, 0],
                    [7.5, 15.0, None, None, None, None, 14.5, None, None]),
    ]  # fmt: skip
    # the conversion rates the helper derives, spelled out for Q2 2026: 8/9, 6/8, 6/6, 5/6, 5/5, 5/5, 4/5, 3/4
    assert [row[5] for row in expected[18:26]] == [8 / 9, 0.75, 1.0, 5 / 6, 1.0, 1.0, 0.8, 0.75]
    assert_mart(run, "stage_conversion", ("cohort_quarter", "stage_name"), STAGE_CONVERSION, expected)


# ==================================================================== pipeline coverage, snapshots

PIPELINE_COVERAGE = ("rep_id", "quarter_start", "quota_amount", "bookings_to_date", "remaining_quota",
                     "open_opportunities", "open_pipeline", "weighted_pipeline", "commit_amount",
                     "best_case_amount", "coverage_ratio", "trailing_win_rate", "trailing_avg_won_amount",
                     "trailing_avg_sales_cycle_days", "pipeline_velocity_per_day")  # fmt: skip

# Alice's trailing four quarters (2025-04-01 .. 2026-03-31 by CloseDate): won O14 (5000, 2025-04-21 ->
# 05-20 = 29 days), O01 (10000, 06-02 -> 08-15 = 74 days), O03 (20000, 06-23 -> 2026-02-10 = 232 days),
# lost O02: win rate 3/4, average won 35000/3, average cycle (29 + 74 + 232) / 3 = 335/3 days.
# Maria's wins closed before 2025-04-01; Kenji and Bob closed nothing then: their trailing values are unknown.
ALICE_WIN_RATE, ALICE_AVG_WON, ALICE_CYCLE = 3 / 4, 35000 / 3, 335 / 3


def coverage_rows(u2_bookings_to_date: float) -> list[tuple]:
    u2_remaining = max(4000.0 - u2_bookings_to_date, 0.0)
    return [
        # quota 15000 * 3; booked O04 (null Amount: 0) + O05 8000; open O06 (30000, 90 %, Commit, 06-20) and
        # O08 (4000, 10 %, Pipeline, 06-30): weighted 27000 + 400
        ("U1", Q2_2026, 45000.0, 8000.0, 37000.0, 2, 34000.0, 27400.0, 30000.0, 30000.0, 34000 / 37000,
         ALICE_WIN_RATE, ALICE_AVG_WON, ALICE_CYCLE, 2 * ALICE_WIN_RATE * ALICE_AVG_WON / ALICE_CYCLE),
        # quota July only; open O07 (12000, 75 %, Best Case, 08-10)
        ("U1", Q3_2026, 20000.0, 0.0, 20000.0, 1, 12000.0, 9000.0, 0.0, 12000.0, 12000 / 20000,
         ALICE_WIN_RATE, ALICE_AVG_WON, ALICE_CYCLE, 1 * ALICE_WIN_RATE * ALICE_AVG_WON / ALICE_CYCLE),
        # quota 2000 + 2000 + 0; open O11 (15000, 50 %, Pipeline); nothing remains once O10 (6000) is booked
        ("U2", Q2_2026, 4000.0, u2_bookings_to_date, u2_remaining, 1, 15000.0, 7500.0, 0.0, 0.0,
         15000 / u2_remaining if u2_remaining else None, None, None, None, None),
        # a quota and nothing open: coverage 0 / 8000
        ("U3", Q2_2026, 8000.0, 0.0, 8000.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, None, None, None, None),
        # open pipeline without a quota: O13 (2000, 10 %). quota_amount is empty, so max(empty - 0, 0) is
        # empty too: 0 would claim the quota is met, while the rep has none (like attainment, left empty)
        ("U3", Q3_2026, None, 0.0, None, 1, 2000.0, 200.0, 0.0, 0.0, None, None, None, None, None),
    ]  # fmt: skip


def test_pipeline_coverage(run: HandwrittenRun) -> None:
    expected = coverage_rows(u2_bookings_to_date=6000.0)  # O10 closed 2026-05-08, before 05-20
    assert expected[2][4] == 0.0 and expected[2][10] is None  # Kenji: remaining max(4000 - 6000, 0) = 0
    assert_mart(run, "pipeline_coverage", ("rep_id", "quarter_start"), PIPELINE_COVERAGE, expected)


def test_pipeline_snapshots(run: HandwrittenRun) -> None:
    if not any(run.snapshots):
        pytest.fail("marts.pipeline_snapshots was not built")
    columns = ("as_of", *PIPELINE_COVERAGE)
    key = ("as_of", "rep_id", "quarter_start")
    # as_of 2026-05-06: O10 (won 2026-05-08) is not booked yet: Kenji has 4000 remaining, coverage 15000/4000
    earlier = [(EARLIER_AS_OF, *row) for row in coverage_rows(u2_bookings_to_date=0.0)]
    assert earlier[2][11] == 3.75
    later = [(AS_OF, *row) for row in coverage_rows(u2_bookings_to_date=6000.0)]
    # each run adds its as_of's rows; the second 2026-05-20 run replaces them (no duplicates)
    problems = [
        f"after the {label} run: {problem}"
        for label, rows, want in (
            ("2026-05-06", run.snapshots[0], earlier),
            ("first 2026-05-20", run.snapshots[1], earlier + later),
            ("second 2026-05-20", run.snapshots[2], earlier + later),
        )
        for problem in row_differences(rows, key, columns, want)
    ]
    assert not problems, f"marts.pipeline_snapshots: {len(problems)} differences\n" + "\n".join(problems)


# ================================================================================ sales_velocity

SALES_VELOCITY = ("rep_id", "quarter_start", "won_deals", "lost_deals", "win_rate", "won_amount",
                  "avg_deal_size", "avg_sales_cycle_days")  # fmt: skip


def test_sales_velocity(run: HandwrittenRun) -> None:
    expected = [
        # O15 (7000, 10-01 -> 11-15 = 45 days), O17 (4000, 10-14 -> 12-10 = 57 days)
        ("U0", d("2024-10-01"), 2, 0, 1.0, 11000.0, 5500.0, 51.0),
        ("U0", d("2025-01-01"), 1, 0, 1.0, 9000.0, 9000.0, 77.0),  # O16, 2024-11-04 -> 2025-01-20
        ("U1", d("2025-04-01"), 1, 0, 1.0, 5000.0, 5000.0, 29.0),  # O14
        ("U1", d("2025-07-01"), 1, 0, 1.0, 10000.0, 10000.0, 74.0),  # O01
        ("U1", d("2025-10-01"), 0, 1, 0.0, 0.0, None, None),  # O02 lost
        ("U1", d("2026-01-01"), 1, 0, 1.0, 20000.0, 20000.0, 232.0),  # O03
        # O04 (null Amount, 04-01 -> 04-15 = 14 days) and O05 (8000, 04-06 -> 05-05 = 29 days):
        # the average deal size counts only O05; the cycle averages both: (14 + 29) / 2
        ("U1", d("2026-04-01"), 2, 0, 1.0, 8000.0, 8000.0, 21.5),
        ("U2", d("2026-04-01"), 1, 1, 0.5, 6000.0, 6000.0, 25.0),  # O10 won (04-13 -> 05-08), O12 lost
    ]
    assert_mart(run, "sales_velocity", ("rep_id", "quarter_start"), SALES_VELOCITY, expected)


# ================================================================================== rep_activity

REP_ACTIVITY = ("rep_id", "week_start", "calls", "emails", "customer_meetings", "customer_meeting_hours",
                "internal_meetings", "training_sessions", "opportunities_created")  # fmt: skip


def test_rep_activity(run: HandwrittenRun) -> None:
    expected = [
        # Maria organised every training (E5 series x 4, E6, E7) and owns O15, O17, O16
        ("U0", d("2024-09-30"), 0, 0, 0, 0.0, 0, 0, 1),  # O15 created Tue 2024-10-01
        ("U0", d("2024-10-14"), 0, 0, 0, 0.0, 0, 0, 1),  # O17
        ("U0", d("2024-11-04"), 0, 0, 0, 0.0, 0, 0, 1),  # O16
        ("U0", d("2025-06-09"), 0, 0, 0, 0.0, 0, 1, 0),  # E6 (Onboarding)
        ("U0", d("2025-09-15"), 0, 0, 0, 0.0, 0, 1, 0),  # E7
        ("U0", d("2026-03-02"), 0, 0, 0, 0.0, 0, 1, 0),  # E5 occurrences, Tuesdays 03-03 .. 03-24
        ("U0", d("2026-03-09"), 0, 0, 0, 0.0, 0, 1, 0),
        ("U0", d("2026-03-16"), 0, 0, 0, 0.0, 0, 1, 0),
        ("U0", d("2026-03-23"), 0, 0, 0, 0.0, 0, 1, 0),
        # Alice
        ("U1", d("2025-04-21"), 0, 0, 0, 0.0, 0, 0, 1),  # O14
        ("U1", d("2025-06-02"), 0, 0, 0, 0.0, 0, 0, 1),  # O01
        ("U1", d("2025-06-09"), 0, 0, 0, 0.0, 0, 0, 1),  # O02
        ("U1", d("2025-06-23"), 0, 0, 0, 0.0, 0, 0, 1),  # O03
        ("U1", d("2026-03-30"), 0, 0, 0, 0.0, 0, 0, 1),  # O04, Wed 2026-04-01
        # calls T02, T04, T05 (the pre-lead call is still a call); emails T01, T03, T06 (T10 deleted, T11
        # a plain task); customer E1 (1 h); internal E8; the all-day E9 does not count; O05, O06 (O09 deleted)
        ("U1", d("2026-04-06"), 3, 3, 1, 1.0, 1, 0, 2),
        ("U1", d("2026-04-13"), 0, 0, 2, 1.5, 0, 0, 0),  # E3 (0.5 h, organised), E2 (1 h, accepted)
        ("U1", d("2026-05-04"), 0, 0, 0, 0.0, 0, 0, 2),  # O07, O08
        ("U1", d("2026-05-11"), 0, 0, 1, 1.0, 0, 0, 0),  # E11
        ("U1", d("2026-05-18"), 1, 0, 0, 0.0, 0, 0, 0),  # T12, a call on a contact
        # Kenji: accepted the four bootcamp sessions; organised E2 (once, though in two mailboxes); the
        # cancelled E4 and the internal E8 he was only tentative for do not count
        ("U2", d("2026-03-02"), 0, 0, 0, 0.0, 0, 1, 0),
        ("U2", d("2026-03-09"), 0, 0, 0, 0.0, 0, 1, 0),
        ("U2", d("2026-03-16"), 0, 0, 0, 0.0, 0, 1, 0),
        ("U2", d("2026-03-23"), 0, 0, 0, 0.0, 0, 1, 0),
        ("U2", d("2026-04-13"), 1, 1, 1, 1.0, 0, 0, 2),  # T07, T08 (Mon 00:30Z, 01:15Z), E2, O10, O12
        ("U2", d("2026-04-20"), 0, 0, 0, 0.0, 0, 0, 1),  # O11
        # Bob: declined the bootcamp and E11
        ("U3", d("2025-06-09"), 0, 0, 0, 0.0, 0, 1, 0),  # E6
        ("U3", d("2025-09-15"), 0, 0, 0, 0.0, 0, 1, 0),  # E7
        ("U3", d("2026-04-06"), 0, 0, 0, 0.0, 1, 0, 0),  # E8, accepted (once, though in two mailboxes)
        ("U3", d("2026-05-04"), 1, 0, 0, 0.0, 0, 0, 1),  # T09, O13
        ("U3", d("2026-05-18"), 0, 0, 1, 1.5, 0, 0, 0),  # E10, 13:00 -> 14:30
    ]
    assert_mart(run, "rep_activity", ("rep_id", "week_start"), REP_ACTIVITY, expected)


# =========================================================================== onboarding_progress

ONBOARDING_PROGRESS = ("rep_id", "hire_date", "tenure_days", "trainings_attended_90d",
                       "first_customer_meeting_at",
                       "first_opportunity_at", "first_won_at", "days_to_first_win",
                       "first_full_quarter_attainment", "ramp_status")  # fmt: skip


def test_onboarding_progress(run: HandwrittenRun) -> None:
    expected = [
        # hired 2025-01-06: 499 days to 2026-05-20; no training; first customer meeting E1 (the all-day E9 on
        # 04-09 does not count); first win O14 on 2025-05-20 = 134 days; first full quarter Q2 2025:
        # 5000 / 30000
        ("U1", d("2025-01-06"), 499, 0, ts("2026-04-10 14:00"), ts("2025-04-21 15:00"), d("2025-05-20"), 134,
         5000 / 30000, "ramped"),
        # hired 2026-03-02: 79 days (ramping); the 4 bootcamp sessions (03-03 .. 03-24) are within 90 days;
        # first win O10 2026-05-08 = 67 days; first full quarter Q2 2026 has not ended
        ("U2", d("2026-03-02"), 79, 4, ts("2026-04-16 01:00"), ts("2026-04-13 02:00"), d("2026-05-08"), 67,
         None, "ramping"),
        # hired 2025-06-02: 352 days, no win: behind. E6 (day 8) counts, E7 (day 105) does not; declined E11
        # (05-12) is not his first customer meeting, E10 (05-19) is; Q3 2025 ended but he had no quota
        ("U3", d("2025-06-02"), 352, 1, ts("2026-05-19 13:00"), ts("2026-05-04 12:00"), None, None, None,
         "behind"),
        # Maria and Olga have no hire date: no rows
    ]  # fmt: skip
    assert_mart(run, "onboarding_progress", ("rep_id",), ONBOARDING_PROGRESS, expected)


# =========================================================================== campaign_efficiency

CAMPAIGN_EFFICIENCY = ("campaign_id", "campaign_name", "actual_cost", "opportunities", "won_deals",
                       "won_amount", "cost_per_opportunity", "cost_per_sale", "roi")  # fmt: skip


def test_campaign_efficiency(run: HandwrittenRun) -> None:
    expected = [
        # O14 (won 5000), O01 (won 10000), O02 (lost); the deleted O09 does not count
        ("C1", "Spring Webinar", 2000.0, 3, 2, 15000.0, 2000 / 3, 1000.0, (15000 - 2000) / 2000),
        # O04 (won, null Amount), O05 (won 8000), O06 and O11 (open)
        ("C2", "Trade Show 2026", 10000.0, 4, 2, 8000.0, 2500.0, 5000.0, (8000 - 10000) / 10000),
        ("C3", "Cold List", 500.0, 0, 0, 0.0, None, None, (0 - 500) / 500),  # no opportunities
        ("C4", "Partner Referral", 0.0, 1, 1, 6000.0, 0.0, 0.0, None),  # O10; no cost, so no ROI
        # C5 is deleted: no row
    ]
    assert_mart(run, "campaign_efficiency", ("campaign_id",), CAMPAIGN_EFFICIENCY, expected)


# ============================================================================= customer_segments

CUSTOMER_SEGMENTS = ("account_id", "account_name", "size_segment", "industry", "won_deals",
                     "lifetime_won_amount",
                     "last_won_date", "recency_days", "recency_score", "frequency_score", "monetary_score",
                     "rfm_segment")  # fmt: skip


def test_customer_segments(run: HandwrittenRun) -> None:
    # Five accounts have a win, so score = 1 + floor(5 * (rank - 1) / 5) = rank, rank 1 being the worst.
    # recency days: A4 526, A6 485, A2 35, A1 15, A3 12 -> ranks 1, 2, 3, 4, 5
    # won deals: A3 1, A4 1 (rank 1), A2 2, A6 2 (rank 3), A1 3 (rank 5) -> scores 1, 1, 3, 3, 5
    # amount: A4 4000, A2 5000, A3 6000, A6 16000, A1 38000 -> ranks 1 .. 5
    expected = [
        # O01 + O03 + O05 (the deleted O09 does not count); R4 F5 -> Champions
        ("A1", "Globex", "Enterprise", "Manufacturing", 3, 38000.0, d("2026-05-05"), 15, 4, 5, 5,
         "Champions"),
        # O14 5000 + O04 (null Amount); R3 F3 -> Loyal
        ("A2", "Initech", "Mid-Market", "Technology", 2, 5000.0, d("2026-04-15"), 35, 3, 3, 2, "Loyal"),
        # 99 employees; R5 F1 -> New
        ("A3", "Umbrella", "SMB", "Healthcare", 1, 6000.0, d("2026-05-08"), 12, 5, 1, 3, "New"),
        # employees unknown; R1 F1 -> Hibernating
        ("A4", "Hooli", "Unknown", "Technology", 1, 4000.0, d("2024-12-10"), 526, 1, 1, 1, "Hibernating"),
        # 100 employees; only an open opportunity -> Prospect
        ("A5", "Stark", "Mid-Market", "Energy", 0, 0.0, None, None, None, None, None, "Prospect"),
        # 1000 employees; O15 + O16; R2 F3 -> At Risk
        ("A6", "Wayne", "Enterprise", "Security", 2, 16000.0, d("2025-01-20"), 485, 2, 3, 4, "At Risk"),
        # A7 is deleted: no row
    ]  # fmt: skip
    assert_mart(run, "customer_segments", ("account_id",), CUSTOMER_SEGMENTS, expected)


# =================================================================== conformed fact and dimensions

FCT_OPPORTUNITIES = ("opportunity_id", "opportunity_name", "account_id", "owner_id", "campaign_id",
                     "source_lead_id", "opportunity_type", "lead_source", "stage_name", "stage_order",
                     "forecast_category", "amount", "probability", "close_date", "created_at", "is_closed",
                     "is_won", "is_open", "days_open")  # fmt: skip


def test_fct_opportunities(run: HandwrittenRun) -> None:
    won, lost = ("Closed Won", 9, "Closed"), ("Closed Lost", 10, "Omitted")
    expected = [
        # days_open: to the close date once closed, to as_of 2026-05-20 while open
        ("O01", "Globex expansion", "A1", "U1", "C1", None, "Existing Business", "Web", *won, 10000.0, 100.0,
         d("2025-08-15"), ts("2025-06-02 15:00"), True, True, False, 74),
        ("O02", "Initech pilot", "A2", "U1", "C1", None, "New Business", "Web", *lost, 5000.0, 0.0,
         d("2025-11-20"), ts("2025-06-09 15:00"), True, False, False, 164),
        ("O03", "Globex platform", "A1", "U1", None, None, "Existing Business", "Partner", *won, 20000.0,
         100.0,
         d("2026-02-10"), ts("2025-06-23 15:00"), True, True, False, 232),
        ("O04", "Initech renewal", "A2", "U1", "C2", None, "Renewal", "Trade Show", *won, None, 100.0,
         d("2026-04-15"), ts("2026-04-01 14:00"), True, True, False, 14),
        ("O05", "Globex add-on", "A1", "U1", "C2", "L01", "Existing Business", "Web", *won, 8000.0, 100.0,
         d("2026-05-05"), ts("2026-04-06 16:00"), True, True, False, 29),
        ("O06", "Stark rollout", "A5", "U1", "C2", "L03", "New Business", "Trade Show",
         "Negotiation/Review", 8,
         "Commit", 30000.0, 90.0, d("2026-06-20"), ts("2026-04-08 16:00"), False, False, True, 42),
        # converted from the deleted L06 only: no source lead
        ("O07", "Initech expansion", "A2", "U1", None, None, "Existing Business", "Web",
         "Proposal/Price Quote",
         7, "Best Case", 12000.0, 75.0, d("2026-08-10"), ts("2026-05-04 15:00"), False, False, True, 16),
        ("O08", "Wayne starter", "A6", "U1", None, None, "New Business", "Web", "Prospecting", 1, "Pipeline",
         4000.0, 10.0, d("2026-06-30"), ts("2026-05-05 15:00"), False, False, True, 15),
        # L07 (created 04-10) and L09 (04-14) were converted into it: the earliest is L07
        ("O10", "Umbrella clinic", "A3", "U2", "C4", "L07", "New Business", "Partner", *won, 6000.0, 100.0,
         d("2026-05-08"), ts("2026-04-13 02:00"), True, True, False, 25),
        ("O11", "Hooli pilot", "A4", "U2", "C2", None, "New Business", "Web", "Value Proposition", 4,
         "Pipeline", 15000.0, 50.0, d("2026-06-15"), ts("2026-04-20 02:00"), False, False, True, 30),
        ("O12", "Umbrella lab", "A3", "U2", None, "L08", "New Business", "Partner", *lost, 3000.0, 0.0,
         d("2026-05-12"), ts("2026-04-13 03:00"), True, False, False, 29),
        ("O13", "Wayne services", "A6", "U3", None, "L12", "New Business", "Web", "Qualification", 2,
         "Pipeline", 2000.0, 10.0, d("2026-07-15"), ts("2026-05-04 12:00"), False, False, True, 16),
        ("O14", "Initech starter", "A2", "U1", "C1", None, "New Business", "Web", *won, 5000.0, 100.0,
         d("2025-05-20"), ts("2025-04-21 15:00"), True, True, False, 29),
        ("O15", "Wayne security", "A6", "U0", None, None, "New Business", "Partner", *won, 7000.0, 100.0,
         d("2024-11-15"), ts("2024-10-01 15:00"), True, True, False, 45),
        ("O16", "Wayne upgrade", "A6", "U0", None, None, "Existing Business", "Partner", *won, 9000.0, 100.0,
         d("2025-01-20"), ts("2024-11-04 15:00"), True, True, False, 77),
        ("O17", "Hooli analytics", "A4", "U0", None, None, "New Business", "Web", *won, 4000.0, 100.0,
         d("2024-12-10"), ts("2024-10-14 15:00"), True, True, False, 57),
        # O09 is deleted: no row
    ]  # fmt: skip
    assert_mart(run, "fct_opportunities", ("opportunity_id",), FCT_OPPORTUNITIES, expected)


DIM_REPS = ("rep_id", "rep_name", "email", "title", "team", "user_role_id", "manager_id", "manager_name",
            "time_zone", "hire_date", "is_active")  # fmt: skip


def test_dim_reps(run: HandwrittenRun) -> None:
    expected = [
        ("U0", "Maria Manager", "maria@acme.example", "VP Sales", "Sales Leadership", "R0", None, None,
         NEW_YORK, None, True),
        ("U1", "Alice Adams", "alice@acme.example", "Account Executive", "AE East", "R1", "U0",
         "Maria Manager", NEW_YORK, d("2025-01-06"), True),
        ("U2", "Kenji Sato", "kenji@acme.example", "Account Executive", "AE APAC", "R2", "U0",
         "Maria Manager", TOKYO, d("2026-03-02"), True),
        ("U3", "Bob Brown", "bob@acme.example", "Sales Development Rep", "AE East", "R1", "U1", "Alice Adams",
         "UTC", d("2025-06-02"), True),
        ("U4", "Olga Old", "olga@acme.example", "Account Executive", "AE East", "R1", "U0", "Maria Manager",
         "Europe/London", None, False),
    ]  # fmt: skip
    assert_mart(run, "dim_reps", ("rep_id",), DIM_REPS, expected)


DIM_ACCOUNTS = ("account_id", "account_name", "industry", "size_segment", "number_of_employees",
                "annual_revenue", "billing_country", "owner_id")  # fmt: skip


def test_dim_accounts(run: HandwrittenRun) -> None:
    expected = [
        ("A1", "Globex", "Manufacturing", "Enterprise", 2500, 500000000.0, "United States", "U1"),
        ("A2", "Initech", "Technology", "Mid-Market", 150, 20000000.0, "United States", "U1"),
        ("A3", "Umbrella", "Healthcare", "SMB", 99, 8000000.0, "Japan", "U2"),  # just under 100
        ("A4", "Hooli", "Technology", "Unknown", None, None, "Japan", "U2"),
        ("A5", "Stark", "Energy", "Mid-Market", 100, 12000000.0, "United States", "U1"),  # exactly 100
        ("A6", "Wayne", "Security", "Enterprise", 1000, 90000000.0, "United Kingdom", "U3"),  # exactly 1000
        # A7 is deleted: no row
    ]
    assert_mart(run, "dim_accounts", ("account_id",), DIM_ACCOUNTS, expected)
