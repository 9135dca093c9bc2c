"""A fake HubSpot CRM API on 127.0.0.1, serving a Salesforce-shaped org translated to HubSpot objects.

The org is the same SQL-replica SQLite file the Salesforce fake serves (``python -m ingestion.demo
generate`` or ``tests.crm_fixtures``): tables user, userrole, account, contact, lead, opportunity,
opportunityhistory, task, with Salesforce field names as columns (any letter case). The file is
checked on every request and translated again when it changed (mtime, size, SQLite change
counter); an unchanged file reuses the cached translation.

Translation: user -> owners (userrole -> teams), account -> companies, contact and lead ->
contacts (both; ``lifecyclestage`` tells them apart), opportunity -> deals (opportunityhistory ->
``propertiesWithHistory`` of dealstage, amount, closedate, hs_deal_stage_probability and
hs_manual_forecast_category), task -> calls / emails / tasks by TaskSubtype (ListEmail is not
served), ``add_meeting`` -> meetings. IsDeleted rows are archived records. Property values are
strings or null: datetimes as ``2024-01-15T14:22:10.123Z``, numbers as decimal text without a
trailing ``.0``, booleans ``"true"``/``"false"``; a stored value that cannot be typed is served
verbatim so that defects stay visible. Every Salesforce Id gets a numeric HubSpot id (``id_map``):
per kind a base plus the rank of the Id, in sorted order for the Ids of the first translation and
appended (again sorted) for Ids that appear later, so a record keeps its id when a test mutates
the file. References to records that do not exist (by Id prefix) get ids too and dangle.

Answers have the API's JSON shapes (CRM v3 objects, search, batch read, properties, owners,
pipelines; v4 association batch read; OAuth v1 token), errors as ``{"status": "error", "message",
"correlationId", "category"}``; multi-status answers (HTTP 207) carry ``numErrors`` and
``errors``. The search ceiling (``search_result_ceiling``, 10,000 in HubSpot) answers 400 once
``after + limit`` exceeds it.

Use: ``with FakeHubSpot(crm_path, search_result_ceiling=50) as hs: requests.get(hs.url + ...)``;
authenticate with ``Authorization: Bearer FAKE_PRIVATE_APP_TOKEN`` (never expires) or with an access
token from ``POST /oauth/v1/token`` (form: grant_type=refresh_token, FAKE_CLIENT_ID,
FAKE_CLIENT_SECRET, FAKE_REFRESH_TOKEN). ``hs.id_map`` / ``hs.hubspot_id(sf_id)`` give the HubSpot
ids, ``hs.user_id(sf_user_id)`` the owners' ``userId``, ``hs.stage_id(name)`` the dealstage served.

Fault knobs: ``expire_sessions`` (OAuth access tokens answer 401 until refreshed; the private-app
token stays valid); ``fail_next`` (any status and body, optionally with Retry-After, ``times`` in
a row, after letting ``skip`` requests through, only for paths containing ``path_contains``) and
its shortcuts ``rate_limit_next`` and ``server_error_next``; ``add_property`` and
``hide_property`` change what the properties API lists and records carry; ``add_meeting`` adds a
meeting engagement. Every request is recorded (``requests``, ``api_requests``, ``token_requests``,
``requests_to``, ``search_bodies``); ``translations`` counts translations of the file.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import os
import re
import sqlite3
import threading
import uuid
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache, partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

FAKE_CLIENT_ID = "fake-hubspot-client-id-5f2c9a71"
FAKE_CLIENT_SECRET = "fake-hubspot-client-secret-b83e04d6"
FAKE_REFRESH_TOKEN = "na1-fake-hubspot-refresh-token-7d41e2"
FAKE_PRIVATE_APP_TOKEN = "pat-na1-fake-hubspot-private-app-token-c09e35"
STAGES_CSV = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "opportunity_stages.csv"
TOKEN_PATH = "/oauth/v1/token"
ACCESS_TOKEN_LIFETIME = 1800
PIPELINE_ID = "default"
PIPELINE_LABEL = "Sales Pipeline"
PIPELINE_CREATED = "2019-01-01T00:00:00.000Z"
DEFAULT_SEARCH_CEILING = 10_000
MAX_SEARCH_LIMIT = 200
MAX_LIST_LIMIT = 100
MAX_HISTORY_LIMIT = 50
MAX_OWNER_LIMIT = 500
MAX_BATCH_INPUTS = 100
MAX_HISTORY_BATCH_INPUTS = 50
MAX_ASSOCIATION_INPUTS = 1000

OBJECT_TYPES = ("companies", "contacts", "deals", "calls", "emails", "meetings", "tasks")
ENGAGEMENT_TYPES = ("calls", "emails", "meetings", "tasks")
SINGULAR = {
    "companies": "company",
    "contacts": "contact",
    "deals": "deal",
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "tasks": "task",
}
OBJECT_TYPE_IDS = {
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
    "0-27": "tasks",
    "0-47": "meetings",
    "0-48": "calls",
    "0-49": "emails",
}
_ALIASES = {
    **{t: t for t in OBJECT_TYPES},
    **{s: t for t, s in SINGULAR.items()},
    **OBJECT_TYPE_IDS,
}
CREATED_PROPERTY = {t: "hs_createdate" if t in ENGAGEMENT_TYPES else "createdate" for t in OBJECT_TYPES}
MODIFIED_PROPERTY = {
    t: "lastmodifieddate" if t == "contacts" else "hs_lastmodifieddate" for t in OBJECT_TYPES
}

# HubSpot id bases per kind of record (the rank of the Salesforce Id is added, from 1)
ID_BASES = {
    "owner": 100_000_000,
    "team": 300_000_000,
    "company": 1_000_000_000,
    "contact": 2_000_000_000,
    "lead": 3_000_000_000,
    "deal": 4_000_000_000,
    "engagement": 5_000_000_000,
    "meeting": 6_000_000_000,
}
USER_ID_BASE = 200_000_000  # owners' userId = USER_ID_BASE + the owner's rank
TABLE_KINDS = {
    "user": "owner",
    "userrole": "team",
    "account": "company",
    "contact": "contact",
    "lead": "lead",
    "opportunity": "deal",
    "task": "engagement",
}
PREFIX_KINDS = {
    "005": "owner",
    "00E": "team",
    "001": "company",
    "003": "contact",
    "00Q": "lead",
    "006": "deal",
    "00T": "engagement",
}
KIND_TYPES = {"company": "companies", "contact": "contacts", "lead": "contacts", "deal": "deals"}

# Salesforce columns the translation reads: stored columns are matched case-insensitively
COLUMNS = {
    "user": ("Id", "Name", "Email", "UserRoleId", "IsActive", "CreatedDate", "SystemModstamp"),
    "userrole": ("Id", "Name", "SystemModstamp"),
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
}

ANALYTICS_SOURCES = {
    "web": "ORGANIC_SEARCH",
    "advertisement": "PAID_SEARCH",
    "employee referral": "REFERRALS",
    "partner referral": "REFERRALS",
    "trade show": "OFFLINE",
    "phone inquiry": "OFFLINE",
}
FORECAST_CATEGORIES = {  # labels (Opportunity) and API values (OpportunityHistory: BestCase, Forecast)
    "Pipeline": "PIPELINE",
    "Best Case": "BEST_CASE",
    "BestCase": "BEST_CASE",
    "Commit": "COMMIT",
    "Forecast": "COMMIT",
    "Closed": "CLOSED",
    "Omitted": "OMIT",
}
DEAL_TYPES = {"New Business": "newbusiness", "Existing Business": "existingbusiness"}
TASK_STATUSES = {
    "Completed": "COMPLETED",
    "Not Started": "NOT_STARTED",
    "In Progress": "IN_PROGRESS",
    "Waiting on someone else": "WAITING",
    "Deferred": "DEFERRED",
}
ENGAGEMENT_SUBTYPES = {"call": "calls", "email": "emails", "task": "tasks", "": "tasks"}
NOT_SERVED_SUBTYPES = frozenset({"listemail"})
HISTORY_PROPERTIES = (
    "dealstage",
    "amount",
    "closedate",
    "hs_deal_stage_probability",
    "hs_manual_forecast_category",
)

# association type ids (HUBSPOT_DEFINED): (from, to) -> [(typeId, label)]
ASSOCIATION_TYPES: dict[tuple[str, str], tuple[tuple[int, str | None], ...]] = {
    ("deals", "companies"): ((5, "Primary"), (341, None)),
    ("deals", "contacts"): ((3, None),),
    ("contacts", "deals"): ((4, None),),
    ("companies", "deals"): ((6, "Primary"), (342, None)),
    ("contacts", "companies"): ((1, "Primary"), (279, None)),
    ("companies", "contacts"): ((2, "Primary"), (280, None)),
    ("calls", "contacts"): ((194, None),),
    ("contacts", "calls"): ((193, None),),
    ("calls", "deals"): ((206, None),),
    ("deals", "calls"): ((205, None),),
    ("calls", "companies"): ((182, None),),
    ("companies", "calls"): ((181, None),),
    ("emails", "contacts"): ((198, None),),
    ("contacts", "emails"): ((197, None),),
    ("emails", "deals"): ((210, None),),
    ("deals", "emails"): ((209, None),),
    ("emails", "companies"): ((186, None),),
    ("companies", "emails"): ((185, None),),
    ("meetings", "contacts"): ((200, None),),
    ("contacts", "meetings"): ((199, None),),
    ("meetings", "deals"): ((212, None),),
    ("deals", "meetings"): ((211, None),),
    ("meetings", "companies"): ((188, None),),
    ("companies", "meetings"): ((187, None),),
    ("tasks", "contacts"): ((204, None),),
    ("contacts", "tasks"): ((203, None),),
    ("tasks", "deals"): ((216, None),),
    ("deals", "tasks"): ((215, None),),
    ("tasks", "companies"): ((192, None),),
    ("companies", "tasks"): ((191, None),),
}

# properties per object type: (name, label, type, fieldType)
_ENGAGEMENT_COMMON = (
    ("hubspot_owner_id", "Activity assigned to", "enumeration", "select"),
    ("hs_timestamp", "Activity date", "datetime", "date"),
    ("hs_createdate", "Create date", "datetime", "date"),
    ("hs_lastmodifieddate", "Last modified date", "datetime", "date"),
    ("hs_object_id", "Record ID", "number", "number"),
)
PROPERTIES: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "companies": (
        ("name", "Company name", "string", "text"),
        ("industry", "Industry", "enumeration", "select"),
        ("numberofemployees", "Number of Employees", "number", "number"),
        ("annualrevenue", "Annual Revenue", "number", "number"),
        ("country", "Country/Region", "string", "text"),
        ("hubspot_owner_id", "Company owner", "enumeration", "select"),
        ("createdate", "Create Date", "datetime", "date"),
        ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"),
        ("hs_object_id", "Record ID", "number", "number"),
    ),
    "contacts": (
        ("firstname", "First Name", "string", "text"),
        ("lastname", "Last Name", "string", "text"),
        ("email", "Email", "string", "text"),
        ("jobtitle", "Job Title", "string", "text"),
        ("company", "Company Name", "string", "text"),
        ("industry", "Industry", "string", "text"),
        ("hs_lead_status", "Lead Status", "enumeration", "radio"),
        ("lead_source", "Lead Source", "string", "text"),
        ("hs_analytics_source", "Original Traffic Source", "enumeration", "select"),
        ("hubspot_owner_id", "Contact owner", "enumeration", "select"),
        ("associatedcompanyid", "Primary Associated Company ID", "number", "number"),
        ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio"),
        ("hs_lifecyclestage_opportunity_date", "Date entered 'Opportunity'", "datetime", "date"),
        ("hs_lifecyclestage_customer_date", "Date entered 'Customer'", "datetime", "date"),
        ("createdate", "Create Date", "datetime", "date"),
        ("lastmodifieddate", "Last Modified Date", "datetime", "date"),
        ("hs_lastmodifieddate", "Object last modified date/time", "datetime", "date"),
        ("hs_object_id", "Record ID", "number", "number"),
    ),
    "deals": (
        ("dealname", "Deal Name", "string", "text"),
        ("amount", "Amount", "number", "number"),
        ("dealstage", "Deal Stage", "enumeration", "radio"),
        ("pipeline", "Pipeline", "enumeration", "select"),
        ("closedate", "Close Date", "datetime", "date"),
        ("createdate", "Create Date", "datetime", "date"),
        ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"),
        ("hubspot_owner_id", "Deal owner", "enumeration", "select"),
        ("dealtype", "Deal Type", "enumeration", "radio"),
        ("lead_source", "Lead Source", "string", "text"),
        ("hs_analytics_source", "Original Traffic Source", "enumeration", "select"),
        ("hs_deal_stage_probability", "Deal probability", "number", "number"),
        ("hs_manual_forecast_category", "Forecast category", "enumeration", "select"),
        ("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox"),
        ("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox"),
        ("hs_object_id", "Record ID", "number", "number"),
    ),
    "calls": (
        ("hs_call_title", "Call Title", "string", "text"),
        ("hs_call_status", "Call status", "enumeration", "select"),
        ("hs_call_direction", "Call direction", "enumeration", "select"),
        *_ENGAGEMENT_COMMON,
    ),
    "emails": (
        ("hs_email_subject", "Email subject", "string", "text"),
        ("hs_email_status", "Email send status", "enumeration", "select"),
        ("hs_email_direction", "Email direction", "enumeration", "select"),
        *_ENGAGEMENT_COMMON,
    ),
    "meetings": (
        ("hs_meeting_title", "Meeting name", "string", "text"),
        ("hs_meeting_start_time", "Start Time", "datetime", "date"),
        ("hs_meeting_end_time", "End Time", "datetime", "date"),
        ("hs_meeting_outcome", "Meeting outcome", "enumeration", "select"),
        *_ENGAGEMENT_COMMON,
    ),
    "tasks": (
        ("hs_task_subject", "Task Title", "string", "text"),
        ("hs_task_status", "Task Status", "enumeration", "select"),
        ("hs_task_type", "Task Type", "enumeration", "select"),
        *_ENGAGEMENT_COMMON,
    ),
}
CUSTOM_PROPERTIES = frozenset({"lead_source"})
GROUP_NAMES = {
    "companies": "companyinformation",
    "contacts": "contactinformation",
    "deals": "dealinformation",
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "tasks": "task",
}
ENUM_OPTIONS: dict[str, tuple[str, ...]] = {
    "lifecyclestage": (
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ),
    "hs_analytics_source": (
        "ORGANIC_SEARCH",
        "PAID_SEARCH",
        "EMAIL_MARKETING",
        "SOCIAL_MEDIA",
        "REFERRALS",
        "OTHER_CAMPAIGNS",
        "DIRECT_TRAFFIC",
        "OFFLINE",
        "PAID_SOCIAL",
    ),
    "dealtype": ("newbusiness", "existingbusiness"),
    "pipeline": (PIPELINE_ID,),
    "hs_manual_forecast_category": ("PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMIT"),
    "hs_call_status": ("BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED"),
    "hs_call_direction": ("INBOUND", "OUTBOUND"),
    "hs_email_status": ("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"),
    "hs_email_direction": ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"),
    "hs_meeting_outcome": ("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"),
    "hs_task_status": ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
    "hs_task_type": ("CALL", "EMAIL", "TODO"),
}
DEFAULT_PROPERTIES = {
    "companies": ("name", "domain"),
    "contacts": ("firstname", "lastname", "email"),
    "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage"),
    "calls": ("hs_call_title", "hs_timestamp"),
    "emails": ("hs_email_subject", "hs_timestamp"),
    "meetings": ("hs_meeting_title", "hs_timestamp"),
    "tasks": ("hs_task_subject", "hs_timestamp"),
}
SEARCH_OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    429: "RATE_LIMITS",
}
UNAUTHENTICATED_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
    "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
RATE_LIMIT_MESSAGE = "You have reached your ten_secondly_rolling limit."
BAD_GATEWAY_HTML = (
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)

_DATE = re.compile(r"^\d{4}-\d\d-\d\d")
_HS_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$")
_COMMON_DATETIME = re.compile(
    r"^(\d{4}-\d\d-\d\d)[T ]((?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d)(\.\d{3})?(?:Z|\+0000|\+00:00)?$"
)
_EPOCH_MS = re.compile(r"^-?\d+$")
_OBJECTS_PATH = re.compile(r"^/crm/v3/objects/(?P<type>[\w-]+)(?:/(?P<rest>[\w/-]+?))?/?$")
_PROPERTIES_PATH = re.compile(r"^/crm/v3/properties/(?P<type>[\w-]+)(?:/(?P<name>\w+))?/?$")
_ASSOCIATIONS_PATH = re.compile(r"^/crm/v4/associations/(?P<from>[\w-]+)/(?P<to>[\w-]+)/batch/read/?$")
_OWNERS_PATH = re.compile(r"^/crm/v3/owners(?:/(?P<id>\d+))?/?$")
_PIPELINES_PATH = re.compile(
    r"^/crm/v3/pipelines/(?P<type>[\w-]+)(?:/(?P<id>[\w-]+)(?P<stages>/stages)?)?/?$"
)


# --- requests and faults -------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake answered, with the status and error category it answered with."""

    method: str
    path: str
    params: dict[str, str]  # query parameters; repeated ones joined by ","
    headers: dict[str, str]  # lower-case names
    json: Any  # the parsed JSON body, else None
    form: dict[str, str]  # the form body of token requests
    status: int
    category: str | None

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None

    @property
    def is_token_request(self) -> bool:
        return self.path == TOKEN_PATH


@dataclass
class Fault:
    status: int
    body: Any  # JSON-able, or str for a text/html body
    retry_after: str | None
    remaining: int
    skip: int = 0  # matching requests to let through first
    path_contains: str | None = None  # None: every API request (not token requests)

    def applies(self, path: str) -> bool:
        if self.path_contains is None:
            return path != TOKEN_PATH
        return self.path_contains in path


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # JSON-able, or str sent as text/html
    headers: tuple[tuple[str, str], ...] = ()


class ApiError(Exception):
    def __init__(self, status: int, message: str, category: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.reply = error_reply(status, message, category, **extra)


def correlation_id() -> str:
    return str(uuid.uuid4())


def error_reply(
    status: int, message: str, category: str | None = None, retry_after: str | None = None, **extra: Any
) -> Reply:
    body = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category or CATEGORIES.get(status, "INTERNAL_ERROR"),
        **extra,
    }
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Reply(status, body, headers)


def rate_limit_body() -> dict[str, Any]:
    return {
        "status": "error",
        "message": RATE_LIMIT_MESSAGE,
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": "api",
    }


def default_fault_body(status: int) -> Any:
    if status == 429:
        return rate_limit_body()
    if status in (502, 503, 504):
        return BAD_GATEWAY_HTML.replace("502 Bad Gateway", f"{status} Bad Gateway")
    if status == 401:
        return error_reply(401, UNAUTHENTICATED_MESSAGE).body
    return error_reply(status, "internal error" if status >= 500 else f"HTTP {status}").body


# --- values --------------------------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime | None:
    """Any stored ISO-8601 spelling (Z, +0000, +00:00, none, space separator) as naive UTC."""
    if isinstance(value, datetime):
        return (value - value.utcoffset()).replace(tzinfo=None) if value.tzinfo else value  # type: ignore[operator]
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed
    offset = parsed.utcoffset()
    return (parsed - offset if offset else parsed).replace(tzinfo=None)


def format_datetime(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"


def _blank(value: Any) -> bool:
    return value is None or (value.__class__ is str and not value.strip())


def _verbatim(value: Any) -> str:
    return value if value.__class__ is str else str(value)


def _datetime_text(value: str) -> str | None:
    """A stored datetime text normalised to ``YYYY-MM-DDTHH:MM:SS.mmmZ``; None when it is no datetime."""
    if _HS_DATETIME.match(value):
        return value if _valid_date(value[:10]) else None
    fast = _COMMON_DATETIME.match(value)  # the usual spellings, without a datetime round trip
    if fast and _valid_date(fast[1]):
        return f"{fast[1]}T{fast[2]}{fast[3] or '.000'}Z"
    moment = parse_datetime(value)
    return format_datetime(moment) if moment else None


@lru_cache(maxsize=100_000)
def _valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _text(value: Any) -> str:
    return "" if value is None else _verbatim(value)


def hs_datetime(value: Any) -> str | None:
    """A stored datetime as HubSpot sends it; verbatim text when it cannot be parsed."""
    if _blank(value):
        return None
    if isinstance(value, datetime | date):
        return format_datetime(parse_datetime(value))  # type: ignore[arg-type]
    text = _verbatim(value)
    return _datetime_text(text) or text


def hs_midnight(value: Any) -> str | None:
    """A stored date as a HubSpot datetime at 00:00:00.000Z; verbatim text when it is no date."""
    if _blank(value):
        return None
    text = _verbatim(value).strip()
    moment = parse_datetime(text[:10]) if _DATE.match(text) else None
    return f"{text[:10]}T00:00:00.000Z" if moment else _verbatim(value)


def decimal_text(number: Decimal) -> str:
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


@lru_cache(maxsize=200_000)
def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    return _decimal(value) if isinstance(value, str) and "_" not in value else None


def hs_number(value: Any) -> str | None:
    """A stored number as decimal text ("54500", "6195.54"); verbatim text when it is no number."""
    if _blank(value):
        return None
    number = to_decimal(value)
    return decimal_text(number) if number is not None else _verbatim(value)


def hs_percent_fraction(value: Any) -> str | None:
    """A stored percentage as a fraction ("10" -> "0.1"); verbatim text when it is no number."""
    if _blank(value):
        return None
    number = to_decimal(value)
    return decimal_text(number / 100) if number is not None else _verbatim(value)


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"1": True, "true": True, "0": False, "false": False}.get(text)


def hs_bool(value: Any) -> str | None:
    if _blank(value):
        return None
    parsed = parse_bool(value)
    return _verbatim(value) if parsed is None else ("true" if parsed else "false")


def hs_text(value: Any) -> str | None:
    if value is None:
        return None
    if value.__class__ is str:
        return value if value.strip() else None
    return str(value)


def hs_mapped(value: Any, mapping: dict[str, str]) -> str | None:
    """A stored picklist value mapped to its HubSpot enumeration value; unknown values verbatim."""
    if _blank(value):
        return None
    text = _verbatim(value)
    return mapping.get(text, text)


def property_text(value: Any, kind: str = "string") -> str | None:
    """A Python value (from an added property) as a HubSpot property value."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date) or kind in ("datetime", "date"):
        return hs_datetime(value)
    if isinstance(value, int | float | Decimal) or kind == "number":
        return hs_number(value)
    return _verbatim(value)


def stage_id(stage_name: str) -> str:
    """The deal stage id of a pipeline stage name: "Negotiation/Review" -> "negotiationreview"."""
    return re.sub(r"[^a-z0-9]", "", stage_name.lower())


def unknown_stage_id(stage_name: str, pipeline_ids: Iterable[str]) -> str:
    """The stage id served for a StageName that is not a pipeline stage: never a pipeline stage id."""
    slug = re.sub(r"[^a-z0-9]+", "_", stage_name.lower()).strip("_")
    return slug if slug and slug not in set(pipeline_ids) else f"{slug}_unmapped".lstrip("_")


def analytics_source(lead_source: Any) -> str | None:
    if _blank(lead_source):
        return None
    return ANALYTICS_SOURCES.get(_verbatim(lead_source).strip().lower(), "OTHER_CAMPAIGNS")


def deal_type(value: Any) -> str | None:
    if _blank(value):
        return None
    text = _verbatim(value)
    return DEAL_TYPES.get(text, re.sub(r"\s+", "", text.lower()))


def encode_cursor(hubspot_id: int) -> str:
    return base64.b64encode(f"{hubspot_id}\n".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        return int(base64.b64decode(cursor.encode(), validate=True).decode().strip())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(400, f"Invalid 'after' paging cursor: {cursor}") from None


# --- the translated org --------------------------------------------------------------------------


@dataclass
class HsRecord:
    """A HubSpot CRM record: its properties as served (strings or null) and its stored source row."""

    id: str
    num: int
    object_type: str
    properties: dict[str, str | None]
    created_at: str | None
    updated_at: str | None
    archived: bool
    row: dict[str, Any]
    sf_id: str | None = None
    history: dict[str, list[dict[str, Any]]] | None = None  # newest first
    history_factory: Callable[[], dict[str, list[dict[str, Any]]]] | None = None  # computes ``history``

    def property_history(self) -> dict[str, list[dict[str, Any]]] | None:
        if self.history is None and self.history_factory is not None:
            self.history = self.history_factory()
        return self.history


@dataclass
class Stage:
    id: str
    label: str
    display_order: int
    is_closed: bool
    probability: str


@dataclass
class Org:
    """One translation of the SQLite file (or its meeting overlay)."""

    key: tuple
    records: dict[str, list[HsRecord]]  # per object type, ordered by id
    by_id: dict[str, dict[str, HsRecord]]
    owners: list[dict[str, Any]]  # ordered by id
    stages: list[Stage]
    # (from type, to type) -> from id -> {to id: association types}
    associations: dict[tuple[str, str], dict[str, dict[int, tuple[tuple[int, str | None], ...]]]]

    def with_records(self, object_type: str, records: list[HsRecord]) -> Org:
        return Org(
            self.key,
            {**self.records, object_type: records},
            {**self.by_id, object_type: {r.id: r for r in records}},
            self.owners,
            self.stages,
            dict(self.associations),
        )


class IdAllocator:
    """Stable numeric HubSpot ids per kind: new Salesforce Ids are ranked (sorted) after the known ones."""

    def __init__(self) -> None:
        self.ids: dict[str, dict[str, int]] = {kind: {} for kind in ID_BASES}

    def assign(self, kind: str, sf_ids: Iterable[Any]) -> None:
        known = self.ids[kind]
        new = sorted({str(i) for i in sf_ids if not _blank(i)} - known.keys())
        start = ID_BASES[kind] + len(known) + 1
        for offset, sf_id in enumerate(new):
            known[sf_id] = start + offset

    def get(self, kind: str, sf_id: Any) -> int | None:
        return None if _blank(sf_id) else self.ids[kind].get(_verbatim(sf_id))

    def rank(self, kind: str, sf_id: Any) -> int | None:
        found = self.get(kind, sf_id)
        return None if found is None else found - ID_BASES[kind]

    def resolve(self, sf_id: Any, kinds: tuple[str, ...]) -> tuple[str, int] | None:
        """The (kind, id) of a reference among ``kinds``: a known Id first, else by Id prefix."""
        if _blank(sf_id):
            return None
        text = _verbatim(sf_id)
        for kind in kinds:
            if text in self.ids[kind]:
                return kind, self.ids[kind][text]
        kind = PREFIX_KINDS.get(text[:3])
        if kind in kinds:
            self.assign(kind, [text])
            return kind, self.ids[kind][text]
        return None

    def mapping(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for kind in ("meeting", "engagement", "deal", "lead", "contact", "company", "team", "owner"):
            found.update({sf_id: str(number) for sf_id, number in self.ids[kind].items()})
        return found


def read_stages(path: Path) -> list[Stage]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: int(r["stage_order"]))
    return [
        Stage(
            stage_id(row["stage_name"]),
            row["stage_name"],
            int(row["stage_order"]) - 1,
            row["is_closed"].strip().lower() == "true",
            str(float(row["default_probability"]) / 100),
        )
        for row in rows
    ]


def read_tables(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of every translated table (missing tables empty), columns renamed to the field names."""
    tables: dict[str, list[dict[str, Any]]] = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        names = {row[0].lower(): row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        for table, columns in COLUMNS.items():
            if table not in names:
                tables[table] = []
                continue
            canonical = {c.lower(): c for c in columns}
            cursor = connection.execute(f'SELECT * FROM "{names[table]}"')
            keys = [canonical.get(d[0].lower(), d[0]) for d in cursor.description]
            tables[table] = [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
    return tables


class Translator:
    """Translates the Salesforce-shaped tables into HubSpot records, owners and associations."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]], ids: IdAllocator, stages: list[Stage]):
        self.tables, self.ids, self.stages = tables, ids, stages
        self.stage_ids = {s.label: s.id for s in stages}
        self.associations: dict[tuple[str, str], dict[str, dict[int, tuple]]] = {}

    def translate(self, key: tuple) -> Org:
        for table, kind in TABLE_KINDS.items():
            self.ids.assign(kind, (row.get("Id") for row in self.tables[table]))
        self._assign_references()
        records: dict[str, list[HsRecord]] = {t: [] for t in OBJECT_TYPES}
        records["companies"] = [self._company(row) for row in self._rows("account", "company")]
        records["contacts"] = [self._contact(row) for row in self._rows("contact", "contact")]
        records["contacts"] += [self._lead(row) for row in self._rows("lead", "lead")]
        history = self._history()
        records["deals"] = [self._deal(row, history) for row in self._rows("opportunity", "deal")]
        for row in self._rows("task", "engagement"):
            engagement = self._engagement(row)
            if engagement is not None:
                records[engagement.object_type].append(engagement)
        for object_type in OBJECT_TYPES:
            records[object_type].sort(key=lambda r: r.num)
        owners = self._owners()
        by_id = {t: {r.id: r for r in records[t]} for t in OBJECT_TYPES}
        return Org(key, records, by_id, owners, self.stages, self.associations)

    # ids and references

    def _rows(self, table: str, kind: str) -> list[dict[str, Any]]:
        return [row for row in self.tables[table] if self.ids.get(kind, row.get("Id")) is not None]

    def _assign_references(self) -> None:
        """Dangling references (no such record) get ids too, in sorted order, before translation."""
        references: list[tuple[Any, tuple[str, ...]]] = []
        for table in ("account", "contact", "lead", "opportunity", "task"):
            references += [(row.get("OwnerId"), ("owner",)) for row in self.tables[table]]
        references += [(row.get("UserRoleId"), ("team",)) for row in self.tables["user"]]
        for table in ("contact", "opportunity"):
            references += [(row.get("AccountId"), ("company",)) for row in self.tables[table]]
        for row in self.tables["task"]:
            references.append((row.get("WhoId"), ("contact", "lead")))
            references.append((row.get("WhatId"), ("deal", "company")))
        known = self.ids.ids
        unknown = [(r, kinds) for r, kinds in references if not any(_text(r) in known[k] for k in kinds)]
        for sf_id, kinds in sorted(unknown, key=lambda r: _text(r[0])):
            self.ids.resolve(sf_id, kinds)

    def _id_text(self, sf_id: Any, kinds: tuple[str, ...]) -> str | None:
        """A reference as a property value: the HubSpot id, else the stored text (a visible defect)."""
        found = self.ids.resolve(sf_id, kinds)
        return str(found[1]) if found else hs_text(sf_id)

    def _owner_id(self, sf_id: Any) -> str | None:
        return self._id_text(sf_id, ("owner",))

    def _link(self, from_type: str, from_id: int, to_type: str, to_id: int) -> None:
        """Both directions of an association (when HubSpot defines the pair)."""
        forward = ASSOCIATION_TYPES.get((from_type, to_type))
        if forward:
            self.associations.setdefault((from_type, to_type), {}).setdefault(str(from_id), {})[to_id] = (
                forward
            )
        backward = ASSOCIATION_TYPES.get((to_type, from_type))
        if backward:
            self.associations.setdefault((to_type, from_type), {}).setdefault(str(to_id), {})[from_id] = (
                backward
            )

    # records

    def _record(
        self,
        object_type: str,
        kind: str,
        row: dict[str, Any],
        properties: dict[str, str | None],
    ) -> HsRecord:
        number = self.ids.get(kind, row.get("Id"))
        assert number is not None
        created = properties.get(CREATED_PROPERTY[object_type])
        updated = properties.get(MODIFIED_PROPERTY[object_type])
        properties["hs_object_id"] = str(number)
        archived = parse_bool(row.get("IsDeleted")) is True
        return HsRecord(
            str(number),
            number,
            object_type,
            properties,
            created,
            updated,
            archived,
            row,
            _verbatim(row["Id"]),
        )

    def _company(self, row: dict[str, Any]) -> HsRecord:
        properties = {
            "name": hs_text(row.get("Name")),
            "industry": hs_text(row.get("Industry")),
            "numberofemployees": hs_number(row.get("NumberOfEmployees")),
            "annualrevenue": hs_number(row.get("AnnualRevenue")),
            "country": hs_text(row.get("BillingCountry")),
            "hubspot_owner_id": self._owner_id(row.get("OwnerId")),
            "createdate": hs_datetime(row.get("CreatedDate")),
            "hs_lastmodifieddate": hs_datetime(row.get("SystemModstamp")),
        }
        return self._record("companies", "company", row, properties)

    def _contact(self, row: dict[str, Any]) -> HsRecord:
        modified = hs_datetime(row.get("SystemModstamp"))
        properties = {
            "firstname": hs_text(row.get("FirstName")),
            "lastname": hs_text(row.get("LastName")),
            "email": hs_text(row.get("Email")),
            "jobtitle": hs_text(row.get("Title")),
            "hubspot_owner_id": self._owner_id(row.get("OwnerId")),
            "associatedcompanyid": self._id_text(row.get("AccountId"), ("company",)),
            "lifecyclestage": "customer",
            "createdate": hs_datetime(row.get("CreatedDate")),
            "lastmodifieddate": modified,
            "hs_lastmodifieddate": modified,
        }
        record = self._record("contacts", "contact", row, properties)
        company = self.ids.resolve(row.get("AccountId"), ("company",))
        if company:
            self._link("contacts", record.num, "companies", company[1])
        return record

    def _lead(self, row: dict[str, Any]) -> HsRecord:
        modified = hs_datetime(row.get("SystemModstamp"))
        converted = parse_bool(row.get("IsConverted")) is True
        properties = {
            "firstname": hs_text(row.get("FirstName")),
            "lastname": hs_text(row.get("LastName")),
            "email": hs_text(row.get("Email")),
            "company": hs_text(row.get("Company")),
            "industry": hs_text(row.get("Industry")),
            "hs_lead_status": hs_text(row.get("Status")),
            "lead_source": hs_text(row.get("LeadSource")),
            "hs_analytics_source": analytics_source(row.get("LeadSource")),
            "hubspot_owner_id": self._owner_id(row.get("OwnerId")),
            "lifecyclestage": "opportunity" if converted else "lead",
            "hs_lifecyclestage_opportunity_date": hs_midnight(row.get("ConvertedDate"))
            if converted
            else None,
            "createdate": hs_datetime(row.get("CreatedDate")),
            "lastmodifieddate": modified,
            "hs_lastmodifieddate": modified,
        }
        return self._record("contacts", "lead", row, properties)

    def _stage(self, name: Any) -> str | None:
        if _blank(name):
            return None
        text = _verbatim(name)
        return self.stage_ids.get(text) or unknown_stage_id(text, self.stage_ids.values())

    def _deal(self, row: dict[str, Any], history: dict[str, list[dict[str, Any]]]) -> HsRecord:
        properties = {
            "dealname": hs_text(row.get("Name")),
            "amount": hs_number(row.get("Amount")),
            "dealstage": self._stage(row.get("StageName")),
            "pipeline": PIPELINE_ID,
            "closedate": hs_midnight(row.get("CloseDate")),
            "createdate": hs_datetime(row.get("CreatedDate")),
            "hs_lastmodifieddate": hs_datetime(row.get("SystemModstamp")),
            "hubspot_owner_id": self._owner_id(row.get("OwnerId")),
            "dealtype": deal_type(row.get("Type")),
            "lead_source": hs_text(row.get("LeadSource")),
            "hs_analytics_source": analytics_source(row.get("LeadSource")),
            "hs_deal_stage_probability": hs_percent_fraction(row.get("Probability")),
            "hs_manual_forecast_category": hs_mapped(row.get("ForecastCategoryName"), FORECAST_CATEGORIES),
            "hs_is_closed": hs_bool(row.get("IsClosed")),
            "hs_is_closed_won": hs_bool(row.get("IsWon")),
        }
        record = self._record("deals", "deal", row, properties)
        record.history_factory = partial(
            self._deal_history, history.get(_verbatim(row["Id"]), []), row.get("OwnerId")
        )
        company = self.ids.resolve(row.get("AccountId"), ("company",))
        if company:
            self._link("deals", record.num, "companies", company[1])
        converted_lead = self._converted_leads().get(_verbatim(row["Id"]))
        lead = self.ids.resolve(converted_lead, ("lead",)) if converted_lead else None
        if lead:  # the contact whose conversion created the deal
            self._link("deals", record.num, "contacts", lead[1])
        return record

    def _converted_leads(self) -> dict[str, Any]:
        """ConvertedOpportunityId -> the converted lead's Id."""
        if not hasattr(self, "_converted_lead_by_opportunity"):
            self._converted_lead_by_opportunity = {
                _verbatim(row["ConvertedOpportunityId"]): row.get("Id")
                for row in self.tables["lead"]
                if not _blank(row.get("ConvertedOpportunityId"))
            }
        return self._converted_lead_by_opportunity

    def _history(self) -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in self.tables["opportunityhistory"]:
            if parse_bool(row.get("IsDeleted")) is not True and not _blank(row.get("OpportunityId")):
                rows.setdefault(_verbatim(row["OpportunityId"]), []).append(row)
        for changes in rows.values():
            changes.sort(
                key=lambda r: (
                    parse_datetime(r.get("CreatedDate")) or datetime.max,
                    _verbatim(r.get("Id") or ""),
                )
            )
        return rows

    def _deal_history(self, rows: list[dict[str, Any]], owner_sf_id: Any) -> dict[str, list[dict[str, Any]]]:
        user_rank = self.ids.rank("owner", owner_sf_id)
        source: dict[str, Any] = {"sourceType": "CRM_UI"}
        if user_rank is not None:
            source |= {
                "sourceId": f"userId:{USER_ID_BASE + user_rank}",
                "updatedByUserId": USER_ID_BASE + user_rank,
            }
        values: dict[str, Callable[[dict[str, Any]], str | None]] = {
            "dealstage": lambda r: self._stage(r.get("StageName")),
            "amount": lambda r: hs_number(r.get("Amount")),
            "closedate": lambda r: hs_midnight(r.get("CloseDate")),
            "hs_deal_stage_probability": lambda r: hs_percent_fraction(r.get("Probability")),
            "hs_manual_forecast_category": lambda r: hs_mapped(
                r.get("ForecastCategory"), FORECAST_CATEGORIES
            ),
        }
        history: dict[str, list[dict[str, Any]]] = {}
        for name, value_of in values.items():
            entries: list[dict[str, Any]] = []
            previous: str | None = None
            for row in rows:
                value = value_of(row)
                if value != previous:
                    timestamp = hs_datetime(row.get("CreatedDate"))
                    entries.append(
                        {"value": value if value is not None else "", "timestamp": timestamp, **source}
                    )
                previous = value
            history[name] = entries[::-1]
        return history

    def _engagement(self, row: dict[str, Any]) -> HsRecord | None:
        subtype = (hs_text(row.get("TaskSubtype")) or "").strip().lower()
        if subtype in NOT_SERVED_SUBTYPES:
            return None
        object_type = ENGAGEMENT_SUBTYPES.get(subtype, "tasks")
        subject = hs_text(row.get("Subject"))
        properties: dict[str, str | None]
        if object_type == "calls":
            properties = {
                "hs_call_title": subject,
                "hs_call_status": "COMPLETED",
                "hs_call_direction": "OUTBOUND",
            }
        elif object_type == "emails":
            properties = {
                "hs_email_subject": subject,
                "hs_email_status": "SENT",
                "hs_email_direction": "EMAIL",
            }
        else:
            properties = {
                "hs_task_subject": subject,
                "hs_task_status": hs_mapped(row.get("Status"), TASK_STATUSES),
                "hs_task_type": "TODO",
            }
        created = hs_datetime(row.get("CreatedDate"))
        properties |= {
            "hubspot_owner_id": self._owner_id(row.get("OwnerId")),
            "hs_timestamp": self._activity_timestamp(row.get("ActivityDate"), created),
            "hs_createdate": created,
            "hs_lastmodifieddate": hs_datetime(row.get("SystemModstamp")),
        }
        record = self._record(object_type, "engagement", row, properties)
        who = self.ids.resolve(row.get("WhoId"), ("contact", "lead"))
        what = self.ids.resolve(row.get("WhatId"), ("deal", "company"))
        for found in (who, what):
            if found:
                self._link(object_type, record.num, KIND_TYPES[found[0]], found[1])
        return record

    @staticmethod
    def _activity_timestamp(activity_date: Any, created_text: str | None) -> str | None:
        """CreatedDate when ActivityDate is its (UTC) date or missing, else ActivityDate at midnight."""
        if _blank(activity_date):
            return created_text
        same_day = _verbatim(activity_date).strip()[:10] == (created_text or "")[:10]
        if same_day and created_text and _HS_DATETIME.match(created_text):
            return created_text
        return hs_midnight(activity_date)

    def _owners(self) -> list[dict[str, Any]]:
        roles = {_verbatim(r["Id"]): r for r in self.tables["userrole"] if not _blank(r.get("Id"))}
        owners = []
        for row in self._rows("user", "owner"):
            rank = self.ids.rank("owner", row["Id"])
            assert rank is not None
            name = hs_text(row.get("Name")) or ""
            first, _, last = name.strip().partition(" ")
            archived = parse_bool(row.get("IsActive")) is False
            teams = []
            team = self.ids.resolve(row.get("UserRoleId"), ("team",))
            if team:
                role = roles.get(_verbatim(row["UserRoleId"]), {})
                teams.append({"id": str(team[1]), "name": hs_text(role.get("Name")), "primary": True})
            owners.append(
                {
                    "id": str(ID_BASES["owner"] + rank),
                    "email": hs_text(row.get("Email")),
                    "type": "PERSON",
                    "firstName": first,
                    "lastName": last.strip(),
                    "userId": None if archived else USER_ID_BASE + rank,
                    "userIdIncludingInactive": USER_ID_BASE + rank,
                    "createdAt": hs_datetime(row.get("CreatedDate")),
                    "updatedAt": hs_datetime(row.get("SystemModstamp")),
                    "archived": archived,
                    "teams": teams,
                }
            )
        owners.sort(key=lambda o: int(o["id"]))
        return owners


# --- meetings added by tests ---------------------------------------------------------------------


@dataclass
class MeetingSpec:
    number: int
    owner_sf_id: str | None
    start: Any
    end: Any
    title: str | None
    contact_sf_id: str | None
    deal_sf_id: str | None
    company_sf_id: str | None
    created: Any
    modified: Any
    outcome: str
    archived: bool


@dataclass(frozen=True)
class AddedProperty:
    name: str
    kind: str
    value: Callable[[dict[str, Any]], Any]


# --- the fake ------------------------------------------------------------------------------------


class FakeHubSpot:
    """The fake server; use as a context manager: ``with FakeHubSpot(path) as hs: hs.url``."""

    def __init__(
        self,
        crm_path: Path,
        *,
        search_result_ceiling: int = DEFAULT_SEARCH_CEILING,
        association_page_size: int = 500,
        stages_csv: Path = STAGES_CSV,
        client_id: str = FAKE_CLIENT_ID,
        client_secret: str = FAKE_CLIENT_SECRET,
        refresh_token: str = FAKE_REFRESH_TOKEN,
        private_app_token: str = FAKE_PRIVATE_APP_TOKEN,
    ) -> None:
        self.crm_path = Path(crm_path)
        self.search_result_ceiling = search_result_ceiling
        self.association_page_size = association_page_size
        self.stages_csv = Path(stages_csv)
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.private_app_token = private_app_token
        self.requests: list[RecordedRequest] = []
        self.translations = 0  # how often the SQLite file was translated (not served from cache)
        self._faults: list[Fault] = []
        self._added: dict[str, list[AddedProperty]] = {}
        self._hidden: dict[str, set[str]] = {}
        self._meetings: list[MeetingSpec] = []
        self._tokens: set[str] = set()
        self._expired: set[str] = set()
        self._ids = IdAllocator()
        self._org: Org | None = None
        self._search_cache: dict[str, list[HsRecord]] = {}
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def __enter__(self) -> FakeHubSpot:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ids

    @property
    def id_map(self) -> dict[str, str]:
        """Salesforce Id -> HubSpot id of every record, owner and team of the file (and of dangling Ids)."""
        with self._lock:
            self._current()
            return self._ids.mapping()

    def hubspot_id(self, sf_id: str) -> str:
        """The HubSpot id of a Salesforce Id (KeyError when the file has no such record)."""
        return self.id_map[sf_id]

    def user_id(self, sf_user_id: str) -> int:
        """The HubSpot ``userId`` (not the owner id) of a Salesforce user, as in history ``sourceId``."""
        with self._lock:
            self._current()
            rank = self._ids.rank("owner", sf_user_id)
        if rank is None:
            raise KeyError(sf_user_id)
        return USER_ID_BASE + rank

    def stage_id(self, stage_name: str) -> str:
        """The ``dealstage`` value served for a StageName (pipeline stage id, or an unmapped slug)."""
        stages = read_stages(self.stages_csv)
        known = {s.label: s.id for s in stages}
        return known.get(stage_name) or unknown_stage_id(stage_name, known.values())

    # knobs

    def expire_sessions(self) -> None:
        """Every OAuth access token issued so far answers 401 until a new one is fetched."""
        with self._lock:
            self._expired |= self._tokens
            self._tokens.clear()

    def fail_next(
        self,
        status: int,
        body: Any = None,
        *,
        retry_after: str | int | None = None,
        times: int = 1,
        skip: int = 0,
        path_contains: str | None = None,
    ) -> None:
        """The next ``times`` matching requests, after ``skip`` more, get this status (and body).

        Without ``path_contains`` every API request matches (token requests do not); with it, every
        request whose path contains the text (the token path too). A ``str`` body is sent as HTML.
        """
        retry = None if retry_after is None else str(retry_after)
        with self._lock:
            self._faults.append(Fault(status, body, retry, times, skip, path_contains))

    def rate_limit_next(self, retry_after: str | int | None = None, times: int = 1, **kwargs: Any) -> None:
        self.fail_next(429, None, retry_after=retry_after, times=times, **kwargs)

    def server_error_next(self, times: int = 1, status: int = 500, **kwargs: Any) -> None:
        """500 with a JSON error body, or 502/503/504 with an HTML body (as from a gateway)."""
        self.fail_next(status, None, times=times, **kwargs)

    def add_property(
        self,
        object_type: str,
        name: str,
        value_for_record: Callable[[dict[str, Any]], Any] | Any = None,
        kind: str = "string",
    ) -> None:
        """A property the translation does not have: listed by the properties API, served when requested.

        A callable gets the record's stored row (Salesforce column names; for meetings the
        ``add_meeting`` arguments); its result (or the constant) is served as a property string.
        """
        compute = value_for_record if callable(value_for_record) else (lambda _row: value_for_record)
        with self._lock:
            self._added.setdefault(self._object_type(object_type), []).append(
                AddedProperty(name, kind, compute)
            )
            self._search_cache.clear()

    def hide_property(self, object_type: str, name: str) -> None:
        """The properties API no longer lists the property and records no longer carry it."""
        with self._lock:
            self._hidden.setdefault(self._object_type(object_type), set()).add(name)
            self._search_cache.clear()

    def add_meeting(
        self,
        owner_sf_id: str | None,
        start: datetime | str,
        end: datetime | str,
        title: str | None,
        contact_sf_id: str | None = None,
        *,
        deal_sf_id: str | None = None,
        company_sf_id: str | None = None,
        created: datetime | str | None = None,
        modified: datetime | str | None = None,
        outcome: str = "COMPLETED",
        archived: bool = False,
    ) -> str:
        """A meeting engagement (naive datetimes are UTC); answers its HubSpot id.

        ``created`` defaults to ``start``, ``modified`` to ``created``. The contact may be a
        Salesforce contact or lead Id.
        """
        with self._lock:
            number = ID_BASES["meeting"] + len(self._meetings) + 1
            self._meetings.append(
                MeetingSpec(
                    number,
                    owner_sf_id,
                    start,
                    end,
                    title,
                    contact_sf_id,
                    deal_sf_id,
                    company_sf_id,
                    created,
                    modified,
                    outcome,
                    archived,
                )
            )
            self._search_cache.clear()
            return str(number)

    # inspection

    def api_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if not r.is_token_request]

    def token_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.is_token_request]

    def requests_to(self, path_fragment: str) -> list[RecordedRequest]:
        return [r for r in self.requests if path_fragment in r.path]

    def search_bodies(self, object_type: str) -> list[Any]:
        """The JSON bodies of the search requests for that object type, in request order."""
        wanted = self._object_type(object_type)
        found = []
        for r in self.requests:
            match = _OBJECTS_PATH.match(r.path)
            if match and match["rest"] == "search" and _ALIASES.get(match["type"].lower()) == wanted:
                found.append(r.json)
        return found

    # request handling

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        params = {k: ",".join(v) for k, v in parse_qs(parts.query).items()}
        form: dict[str, str] = {}
        payload: Any = None
        text = body.decode("utf-8", errors="replace")
        if parts.path == TOKEN_PATH:
            form = {k: v[0] for k, v in parse_qs(text).items()}
        elif text.strip():
            try:
                payload = json.loads(text)
            except ValueError:
                payload = _INVALID_JSON
        with self._lock:
            try:
                reply = self._route(method, parts.path, params, headers, form, payload)
            except ApiError as error:
                reply = error.reply
            failed = reply.status >= 400 and isinstance(reply.body, dict)
            category = (reply.body.get("category") or reply.body.get("status")) if failed else None
            recorded_json = None if payload is _INVALID_JSON else payload
            self.requests.append(
                RecordedRequest(
                    method, parts.path, params, headers, recorded_json, form, reply.status, category
                )
            )
        return reply

    def _route(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
        form: dict[str, str],
        payload: Any,
    ) -> Reply:
        fault = self._take_fault(path)
        if fault is not None:
            body = default_fault_body(fault.status) if fault.body is None else fault.body
            headers_out = (("Retry-After", fault.retry_after),) if fault.retry_after is not None else ()
            return Reply(fault.status, body, headers_out)
        if path == TOKEN_PATH:
            return self._token(form) if method == "POST" else error_reply(405, "POST only")
        authorization = headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else None
        if token in self._expired:
            return error_reply(
                401, "The OAuth token used to make this call expired.", "EXPIRED_AUTHENTICATION"
            )
        if token != self.private_app_token and token not in self._tokens:
            return error_reply(401, UNAUTHENTICATED_MESSAGE, "INVALID_AUTHENTICATION")
        if payload is _INVALID_JSON:
            raise ApiError(400, "Invalid input JSON on line 1, column 1: Cannot parse the request body")
        return self._api(method, path, params, payload if isinstance(payload, dict) else {})

    def _take_fault(self, path: str) -> Fault | None:
        for index, fault in enumerate(self._faults):
            if not fault.applies(path):
                continue
            if fault.skip > 0:
                fault.skip -= 1
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(index)
            return fault
        return None

    def _token(self, form: dict[str, str]) -> Reply:
        def bad(status: str, message: str) -> Reply:
            return Reply(400, {"status": status, "message": message, "correlationId": correlation_id()})

        if form.get("grant_type") != "refresh_token":
            return bad("BAD_GRANT_TYPE", "missing or unknown grant type")
        if form.get("client_id") != self.client_id:
            return bad("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != self.client_secret:
            return bad("BAD_CLIENT_SECRET", "missing or unknown client secret")
        if form.get("refresh_token") != self.refresh_token:
            return bad("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        token = f"CKfake-hubspot-access-{len(self._tokens) + len(self._expired) + 1:04d}-{uuid.uuid4().hex}"
        self._tokens.add(token)
        body = {
            "token_type": "bearer",
            "refresh_token": self.refresh_token,
            "access_token": token,
            "expires_in": ACCESS_TOKEN_LIFETIME,
        }
        return Reply(200, body)

    def _api(self, method: str, path: str, params: dict[str, str], body: dict[str, Any]) -> Reply:
        if match := _OBJECTS_PATH.match(path):
            object_type = self._object_type(match["type"])
            rest = match["rest"] or ""
            if rest == "search":
                self._require(method, "POST")
                return self._search(object_type, body)
            if rest == "batch/read":
                self._require(method, "POST")
                return self._batch_read(object_type, params, body)
            if rest == "":
                self._require(method, "GET")
                return self._list(object_type, path, params)
            if re.fullmatch(r"[\w-]+", rest):
                self._require(method, "GET")
                return self._read_one(object_type, rest, params)
        elif match := _PROPERTIES_PATH.match(path):
            self._require(method, "GET")
            return self._properties(self._object_type(match["type"]), match["name"])
        elif match := _ASSOCIATIONS_PATH.match(path):
            self._require(method, "POST")
            return self._associations(self._object_type(match["from"]), self._object_type(match["to"]), body)
        elif match := _OWNERS_PATH.match(path):
            self._require(method, "GET")
            return self._owners(path, params, match["id"])
        elif match := _PIPELINES_PATH.match(path):
            self._require(method, "GET")
            return self._pipelines(match["type"], match["id"], bool(match["stages"]))
        raise ApiError(404, f"No route found for {method} {path}", "OBJECT_NOT_FOUND")

    @staticmethod
    def _require(method: str, wanted: str) -> None:
        if method != wanted:
            raise ApiError(405, f"HTTP method {method} is not supported by this endpoint")

    @staticmethod
    def _object_type(name: str) -> str:
        found = _ALIASES.get(name.lower())
        if found is None:
            raise ApiError(404, f"Unable to infer object type from: {name}", "OBJECT_NOT_FOUND")
        return found

    # the org

    def _file_key(self) -> tuple:
        stat = os.stat(self.crm_path)
        with self.crm_path.open("rb") as handle:
            header = handle.read(100)
        wal = Path(f"{self.crm_path}-wal")
        wal_stat = os.stat(wal) if wal.exists() else None
        wal_key = (wal_stat.st_mtime_ns, wal_stat.st_size) if wal_stat else None
        return (stat.st_mtime_ns, stat.st_size, header[24:28], wal_key)

    def _current(self) -> Org:
        key = self._file_key()
        if self._org is None or self._org.key != key:
            stages = read_stages(self.stages_csv)
            self._org = Translator(read_tables(self.crm_path), self._ids, stages).translate(key)
            self.translations += 1
            self._search_cache.clear()
        return self._org

    def _view(self) -> Org:
        """The current translation plus the meetings added by the test."""
        org = self._current()
        if not self._meetings:
            return org
        meetings = []
        view = org.with_records("meetings", [])
        for spec in self._meetings:
            meetings.append(self._meeting(spec))
            for sf_id, kinds in (
                (spec.contact_sf_id, ("contact", "lead")),
                (spec.deal_sf_id, ("deal",)),
                (spec.company_sf_id, ("company",)),
            ):
                found = self._ids.resolve(sf_id, kinds)
                if found:
                    self._link_view(view, spec.number, KIND_TYPES[found[0]], found[1])
        view.records["meetings"] = meetings
        view.by_id["meetings"] = {r.id: r for r in meetings}
        return view

    @staticmethod
    def _link_view(view: Org, meeting: int, to_type: str, to_id: int) -> None:
        for a, a_id, b, b_id in (
            ("meetings", meeting, to_type, to_id),
            (to_type, to_id, "meetings", meeting),
        ):
            index = dict(view.associations.get((a, b), {}))
            index[str(a_id)] = {**index.get(str(a_id), {}), b_id: ASSOCIATION_TYPES[(a, b)]}
            view.associations[(a, b)] = index

    def _meeting(self, spec: MeetingSpec) -> HsRecord:
        owner = self._ids.resolve(spec.owner_sf_id, ("owner",))
        start = hs_datetime(spec.start)
        created = hs_datetime(spec.created) if spec.created is not None else start
        modified = hs_datetime(spec.modified) if spec.modified is not None else created
        properties = {
            "hs_meeting_title": hs_text(spec.title),
            "hs_meeting_start_time": start,
            "hs_meeting_end_time": hs_datetime(spec.end),
            "hs_meeting_outcome": spec.outcome,
            "hubspot_owner_id": str(owner[1]) if owner else hs_text(spec.owner_sf_id),
            "hs_timestamp": start,
            "hs_createdate": created,
            "hs_lastmodifieddate": modified,
            "hs_object_id": str(spec.number),
        }
        row = {k: v for k, v in vars(spec).items() if k != "number"}
        return HsRecord(
            str(spec.number), spec.number, "meetings", properties, created, modified, spec.archived, row
        )

    # properties

    def _property_names(self, object_type: str) -> set[str]:
        names = {p[0] for p in PROPERTIES[object_type]} | {a.name for a in self._added.get(object_type, [])}
        return names - self._hidden.get(object_type, set())

    def _property_kind(self, object_type: str, name: str) -> str:
        for added in self._added.get(object_type, []):
            if added.name == name:
                return added.kind
        return next((p[2] for p in PROPERTIES[object_type] if p[0] == name), "string")

    def _value(self, record: HsRecord, name: str) -> str | None:
        if name in self._hidden.get(record.object_type, ()):
            return None
        for added in reversed(self._added.get(record.object_type, [])):
            if added.name == name:
                return property_text(added.value(record.row), added.kind)
        return record.properties.get(name)

    def _properties(self, object_type: str, name: str | None) -> Reply:
        org = self._view()
        hidden = self._hidden.get(object_type, set())
        definitions = [
            self._definition(object_type, *p, org) for p in PROPERTIES[object_type] if p[0] not in hidden
        ]
        for added in self._added.get(object_type, []):
            if added.name not in hidden and added.name not in {d["name"] for d in definitions}:
                field_type = {
                    "number": "number",
                    "datetime": "date",
                    "date": "date",
                    "bool": "booleancheckbox",
                }
                definitions.append(
                    self._definition(
                        object_type,
                        added.name,
                        added.name,
                        added.kind,
                        field_type.get(added.kind, "text"),
                        org,
                    )
                )
        if name is None:
            return Reply(200, {"results": definitions})
        found = next((d for d in definitions if d["name"] == name), None)
        if found is None:
            raise ApiError(
                404, f"Unable to find property {name} on object type {object_type}", "OBJECT_NOT_FOUND"
            )
        return Reply(200, found)

    def _definition(
        self, object_type: str, name: str, label: str, kind: str, field_type: str, org: Org
    ) -> dict:
        custom = name in CUSTOM_PROPERTIES or name not in {p[0] for p in PROPERTIES[object_type]}
        options: list[dict[str, Any]] = []
        if kind == "enumeration":
            if name == "dealstage":
                values = [(s.label, s.id) for s in org.stages]
            elif name in ENUM_OPTIONS:
                values = [(v.replace("_", " ").title(), v) for v in ENUM_OPTIONS[name]]
            elif name == "hubspot_owner_id":
                values = [(f"{o['firstName']} {o['lastName']}".strip(), o["id"]) for o in org.owners]
            else:  # picklists of the org: the values in use
                used = {r.properties.get(name) for r in org.records[object_type]} - {None}
                values = [(v, v) for v in sorted(used)]  # type: ignore[type-var]
            options = [
                {"label": label_, "value": value, "displayOrder": order, "hidden": False}
                for order, (label_, value) in enumerate(values)
            ]
        definition: dict[str, Any] = {
            "updatedAt": PIPELINE_CREATED,
            "createdAt": PIPELINE_CREATED,
            "name": name,
            "label": label,
            "type": kind,
            "fieldType": field_type,
            "description": "",
            "groupName": GROUP_NAMES[object_type],
            "options": options,
            "displayOrder": -1,
            "calculated": False,
            "externalOptions": name == "hubspot_owner_id",
            "hasUniqueValue": False,
            "hidden": False,
            "hubspotDefined": not custom,
            "modificationMetadata": {
                "archivable": True,
                "readOnlyDefinition": not custom,
                "readOnlyValue": name in ("hs_object_id", "hs_lastmodifieddate", "lastmodifieddate"),
            },
            "formField": custom,
            "dataSensitivity": "non_sensitive",
        }
        if name == "hubspot_owner_id":
            definition["referencedObjectType"] = "OWNER"
        return definition

    # records as served

    def _requested(self, object_type: str, names: Any) -> list[str]:
        """The requested property names (list or comma text) plus those HubSpot always sends."""
        if isinstance(names, str):
            names = [n for n in names.split(",") if n.strip()]
        chosen = [str(n).strip() for n in names or []] or list(DEFAULT_PROPERTIES[object_type])
        always = ["hs_object_id", CREATED_PROPERTY[object_type], MODIFIED_PROPERTY[object_type]]
        known = self._property_names(object_type)
        return sorted({n for n in [*chosen, *always] if n in known})

    def _served(
        self,
        record: HsRecord,
        properties: list[str],
        with_history: list[str] | None = None,
    ) -> dict[str, Any]:
        served: dict[str, Any] = {
            "id": record.id,
            "properties": {name: self._value(record, name) for name in properties},
        }
        if with_history:
            served["propertiesWithHistory"] = {
                name: self._history(record, name)
                for name in with_history
                if name in self._property_names(record.object_type)
            }
        served |= {
            "createdAt": record.created_at,
            "updatedAt": record.updated_at,
            "archived": record.archived,
        }
        if record.archived:
            served["archivedAt"] = record.updated_at
        return served

    def _history(self, record: HsRecord, name: str) -> list[dict[str, Any]]:
        added = {a.name for a in self._added.get(record.object_type, [])}
        history = record.property_history()
        if history is not None and name in history and name not in added:
            return history[name]
        value = self._value(record, name)
        if value is None:
            return []
        return [{"value": value, "timestamp": record.created_at, "sourceType": "CRM_UI"}]

    @staticmethod
    def _names(value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [n.strip() for n in value.split(",") if n.strip()]
        return [str(n).strip() for n in value]

    @staticmethod
    def _limit(value: Any, default: int, maximum: int) -> int:
        if value is None or value == "":
            return default
        try:
            limit = int(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"Invalid limit: {value}") from None
        if limit < 1 or limit > maximum:
            raise ApiError(400, f"limit must be between 1 and {maximum} (got {limit})")
        return limit

    @staticmethod
    def _archived_flag(params: dict[str, str]) -> bool:
        return params.get("archived", "false").strip().lower() == "true"

    # GET /crm/v3/objects/{type}

    def _list(self, object_type: str, path: str, params: dict[str, str]) -> Reply:
        org = self._view()
        history = self._names(params.get("propertiesWithHistory"))
        limit = self._limit(params.get("limit"), 10, MAX_HISTORY_LIMIT if history else MAX_LIST_LIMIT)
        archived = self._archived_flag(params)
        start = decode_cursor(params["after"]) if params.get("after") else 0
        properties = self._requested(object_type, params.get("properties"))
        records = org.records[object_type]  # ordered by id
        matching = []
        for record in records[bisect_left(records, start, key=lambda r: r.num) :]:
            if record.archived == archived:
                matching.append(record)
                if len(matching) > limit:
                    break
        body: dict[str, Any] = {"results": [self._served(r, properties, history) for r in matching[:limit]]}
        if len(matching) > limit:
            cursor = encode_cursor(matching[limit].num)
            link = f"{self.url}{path}?{urlencode({**params, 'after': cursor})}"
            body["paging"] = {"next": {"after": cursor, "link": link}}
        return Reply(200, body)

    # GET /crm/v3/objects/{type}/{id}

    def _read_one(self, object_type: str, object_id: str, params: dict[str, str]) -> Reply:
        org = self._view()
        archived = self._archived_flag(params)
        found = self._find(org, object_type, [object_id], params.get("idProperty"), archived)
        if not found:
            raise ApiError(
                404,
                "Object not found.  objectId are usually numeric.",
                "OBJECT_NOT_FOUND",
                context={"id": [object_id]},
            )
        properties = self._requested(object_type, params.get("properties"))
        history = self._names(params.get("propertiesWithHistory"))
        return Reply(200, self._served(found[0][1], properties, history))

    def _find(
        self, org: Org, object_type: str, ids: list[str], id_property: str | None, archived: bool
    ) -> list[tuple[str, HsRecord]]:
        found = []
        if id_property and id_property != "hs_object_id":
            by_value: dict[str, HsRecord] = {}
            for record in org.records[object_type]:
                value = self._value(record, id_property)
                if value is not None and record.archived == archived:
                    by_value.setdefault(value.lower(), record)
            for wanted in ids:
                if wanted.lower() in by_value:
                    found.append((wanted, by_value[wanted.lower()]))
            return found
        for wanted in ids:
            record = org.by_id[object_type].get(wanted.strip())
            if record is not None and record.archived == archived:
                found.append((wanted, record))
        return found

    # POST /crm/v3/objects/{type}/batch/read

    def _batch_read(self, object_type: str, params: dict[str, str], body: dict[str, Any]) -> Reply:
        started = format_datetime(datetime.now(UTC).replace(tzinfo=None))
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise ApiError(400, "Invalid input JSON: 'inputs' is required")
        history = self._names(body.get("propertiesWithHistory"))
        maximum = MAX_HISTORY_BATCH_INPUTS if history else MAX_BATCH_INPUTS
        if len(inputs) > maximum:
            raise ApiError(
                400, f"Batch input limit exceeded: {len(inputs)} inputs given, at most {maximum} allowed"
            )
        ids = list(dict.fromkeys(str(i.get("id") if isinstance(i, dict) else i) for i in inputs))
        org = self._view()
        archived = self._archived_flag(params) or body.get("archived") is True
        found = self._find(org, object_type, ids, body.get("idProperty"), archived)
        properties = self._requested(object_type, body.get("properties"))
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": [self._served(record, properties, history) for _, record in found],
            "startedAt": started,
            "completedAt": format_datetime(datetime.now(UTC).replace(tzinfo=None)),
        }
        missing = [i for i in ids if i not in {wanted for wanted, _ in found}]
        if not missing:
            return Reply(200, answer)
        error = {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {SINGULAR[object_type].upper()} objects, they may be deleted "
            "or not exist. Check that ids are valid.",
            "context": {"ids": missing},
        }
        return Reply(207, {**answer, "numErrors": 1, "errors": [error]})

    # POST /crm/v3/objects/{type}/search

    def _search(self, object_type: str, body: dict[str, Any]) -> Reply:
        limit = self._limit(body.get("limit"), 10, MAX_SEARCH_LIMIT)
        after_text = body.get("after")
        try:
            after = int(after_text) if after_text not in (None, "") else 0
        except (TypeError, ValueError):
            raise ApiError(400, f"Invalid 'after' value: {after_text}") from None
        if after < 0:
            raise ApiError(400, f"Invalid 'after' value: {after_text}")
        if after + limit > self.search_result_ceiling:
            raise ApiError(
                400,
                f"The search API cannot page beyond {self.search_result_ceiling} results "
                f"(after={after}, limit={limit}); narrow the query instead.",
            )
        groups = body.get("filterGroups") or []
        sorts = [_sort_spec(s) for s in body.get("sorts") or []]
        self._check_query(groups, sorts)
        org = self._view()
        cache_key = json.dumps(
            [org.key, object_type, groups, sorts, len(self._meetings)], sort_keys=True, default=str
        )
        matched = self._search_cache.get(cache_key)
        if matched is None:
            matched = [
                r
                for r in org.records[object_type]
                if not r.archived and (not groups or any(self._group_matches(r, g) for g in groups))
            ]
            matched = self._sorted(object_type, matched, sorts)
            if len(self._search_cache) > 32:
                self._search_cache.clear()
            self._search_cache[cache_key] = matched
        properties = self._requested(object_type, body.get("properties"))
        answer: dict[str, Any] = {
            "total": len(matched),
            "results": [self._served(r, properties) for r in matched[after : after + limit]],
        }
        if after + limit < len(matched):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return Reply(200, answer)

    @staticmethod
    def _check_query(groups: Any, sorts: Any) -> None:
        if not isinstance(groups, list) or not isinstance(sorts, list):
            raise ApiError(400, "Invalid input JSON: filterGroups and sorts must be lists")
        if len(groups) > 5:
            raise ApiError(400, f"Too many filter groups: {len(groups)} (at most 5)")
        total = 0
        for group in groups:
            filters = group.get("filters") if isinstance(group, dict) else None
            if not isinstance(filters, list):
                raise ApiError(400, "Invalid input JSON: every filter group needs 'filters'")
            if len(filters) > 10:
                raise ApiError(400, f"Too many filters in a group: {len(filters)} (at most 10)")
            total += len(filters)
            for f in filters:
                if (
                    not isinstance(f, dict)
                    or not f.get("propertyName")
                    or f.get("operator") not in SEARCH_OPERATORS
                ):
                    raise ApiError(400, f"Invalid filter: {json.dumps(f)}")
        if total > 25:
            raise ApiError(400, f"Too many filters: {total} (at most 25)")
        for s in sorts:
            if not isinstance(s, dict) or not s.get("propertyName"):
                raise ApiError(400, f"Invalid sort: {json.dumps(s)}")
            if s.get("direction", "ASCENDING") not in ("ASCENDING", "DESCENDING"):
                raise ApiError(400, f"Invalid sort direction: {s.get('direction')}")

    def _group_matches(self, record: HsRecord, group: dict[str, Any]) -> bool:
        return all(self._filter_matches(record, f) for f in group["filters"])

    def _filter_matches(self, record: HsRecord, f: dict[str, Any]) -> bool:
        name, operator = f["propertyName"], f["operator"]
        value = self._value(record, name)
        if operator == "HAS_PROPERTY":
            return value is not None
        if operator == "NOT_HAS_PROPERTY":
            return value is None
        kind = "number" if name == "hs_object_id" else self._property_kind(record.object_type, name)
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = str(f.get("value", "")).strip("*").lower()
            contains = value is not None and token in value.lower()
            return contains == (operator == "CONTAINS_TOKEN")
        if operator in ("IN", "NOT_IN"):
            values = f.get("values") or []
            inside = any(_compare(kind, value, str(v)) == 0 for v in values)
            return inside == (operator == "IN")
        if operator == "BETWEEN":
            low, high = _compare(kind, value, f.get("value")), _compare(kind, value, f.get("highValue"))
            return low is not None and high is not None and low >= 0 and high <= 0
        order = _compare(kind, value, f.get("value"))
        if operator == "NEQ":
            return order != 0
        if order is None:
            return False
        return {"EQ": order == 0, "LT": order < 0, "LTE": order <= 0, "GT": order > 0, "GTE": order >= 0}[
            operator
        ]

    def _sorted(
        self, object_type: str, records: list[HsRecord], sorts: list[dict[str, Any]]
    ) -> list[HsRecord]:
        for s in reversed(sorts):  # stable sorts, least significant first; ids break ties
            name = s["propertyName"]
            kind = "number" if name == "hs_object_id" else self._property_kind(object_type, name)
            keyed = [(_sort_key(kind, self._value(r, name)), r) for r in records]
            present = [(k, r) for k, r in keyed if k is not None]
            missing = [r for k, r in keyed if k is None]
            present.sort(key=lambda pair: pair[0], reverse=s.get("direction") == "DESCENDING")
            records = [r for _, r in present] + missing
        return records

    # POST /crm/v4/associations/{from}/{to}/batch/read

    def _associations(self, from_type: str, to_type: str, body: dict[str, Any]) -> Reply:
        started = format_datetime(datetime.now(UTC).replace(tzinfo=None))
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise ApiError(400, "Invalid input JSON: 'inputs' is required")
        if len(inputs) > MAX_ASSOCIATION_INPUTS:
            raise ApiError(
                400, f"Batch input limit exceeded: {len(inputs)} inputs given, at most 1000 allowed"
            )
        index = self._view().associations.get((from_type, to_type), {})
        results, errors = [], []
        for item in inputs:
            from_id = str(item.get("id") if isinstance(item, dict) else item).strip()
            start = decode_cursor(item["after"]) if isinstance(item, dict) and item.get("after") else 0
            targets = sorted((t, types) for t, types in index.get(from_id, {}).items() if t >= start)
            if not targets:
                errors.append(self._no_associations(from_type, to_type, from_id))
                continue
            page = targets[: self.association_page_size]
            result: dict[str, Any] = {
                "from": {"id": from_id},
                "to": [
                    {
                        "toObjectId": target,
                        "associationTypes": [
                            {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label}
                            for type_id, label in types
                        ],
                    }
                    for target, types in page
                ],
            }
            if len(targets) > len(page):
                cursor = encode_cursor(targets[len(page)][0])
                result["paging"] = {"next": {"after": cursor, "link": None}}
            results.append(result)
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": format_datetime(datetime.now(UTC).replace(tzinfo=None)),
        }
        if not errors:
            return Reply(200, answer)
        return Reply(207, {**answer, "numErrors": len(errors), "errors": errors})

    @staticmethod
    def _no_associations(from_type: str, to_type: str, from_id: str) -> dict[str, Any]:
        return {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
            "message": f"No {SINGULAR[to_type]} is associated with {SINGULAR[from_type]} {from_id}.",
            "context": {
                "fromObjectId": [from_id],
                "fromObjectType": [SINGULAR[from_type]],
                "toObjectType": [SINGULAR[to_type]],
            },
        }

    # GET /crm/v3/owners

    def _owners(self, path: str, params: dict[str, str], owner_id: str | None) -> Reply:
        owners = self._view().owners
        if owner_id is not None:
            found = next((o for o in owners if o["id"] == owner_id), None)
            if found is None:
                raise ApiError(404, f"Owner {owner_id} not found", "OBJECT_NOT_FOUND")
            return Reply(200, found)
        limit = self._limit(params.get("limit"), 100, MAX_OWNER_LIMIT)
        archived = self._archived_flag(params)
        start = decode_cursor(params["after"]) if params.get("after") else 0
        email = params.get("email", "").strip().lower()
        matching = [
            o
            for o in owners
            if o["archived"] == archived
            and int(o["id"]) >= start
            and (not email or (o["email"] or "").lower() == email)
        ]
        body: dict[str, Any] = {"results": matching[:limit]}
        if len(matching) > limit:
            cursor = encode_cursor(int(matching[limit]["id"]))
            body["paging"] = {
                "next": {
                    "after": cursor,
                    "link": f"{self.url}{path}?{urlencode({**params, 'after': cursor})}",
                }
            }
        return Reply(200, body)

    # GET /crm/v3/pipelines/deals

    def _pipelines(self, object_type: str, pipeline_id: str | None, stages_only: bool) -> Reply:
        if self._object_type(object_type) != "deals":
            return Reply(200, {"results": []})
        stages = [
            {
                "label": s.label,
                "displayOrder": s.display_order,
                "metadata": {"isClosed": "true" if s.is_closed else "false", "probability": s.probability},
                "id": s.id,
                "createdAt": PIPELINE_CREATED,
                "updatedAt": PIPELINE_CREATED,
                "archived": False,
                "writePermissions": "CRUD_ALL",
            }
            for s in self._view().stages
        ]
        pipeline = {
            "label": PIPELINE_LABEL,
            "displayOrder": 0,
            "id": PIPELINE_ID,
            "stages": stages,
            "createdAt": PIPELINE_CREATED,
            "updatedAt": PIPELINE_CREATED,
            "archived": False,
        }
        if pipeline_id is None:
            return Reply(200, {"results": [pipeline]})
        if pipeline_id != PIPELINE_ID:
            raise ApiError(404, f"Unable to find pipeline {pipeline_id}", "OBJECT_NOT_FOUND")
        return Reply(200, {"results": stages} if stages_only else pipeline)


_INVALID_JSON = object()


def _filter_value(kind: str, value: Any) -> Any:
    """A filter value in the comparable form of the property's kind (400 when it has none)."""
    if value is None:
        raise ApiError(400, "Invalid filter: a value is required for this operator")
    return _filter_text(kind, _verbatim(value).strip())


@lru_cache(maxsize=4096)
def _filter_text(kind: str, text: str) -> Any:
    if kind in ("datetime", "date"):
        if _EPOCH_MS.match(text):
            return format_datetime(datetime.fromtimestamp(int(text) / 1000, UTC).replace(tzinfo=None))
        moment = parse_datetime(text)
        if moment is None:
            raise ApiError(400, f"Invalid filter value for a datetime property: {text}")
        return format_datetime(moment)
    if kind == "number":
        number = to_decimal(text)
        if number is None:
            raise ApiError(400, f"Invalid filter value for a number property: {text}")
        return number
    return text.lower()


def _sort_spec(sort: Any) -> Any:
    """A sort as an object; the short form "name" / "-name" is accepted as well."""
    if isinstance(sort, str) and sort.strip():
        name = sort.strip()
        descending = name.startswith("-")
        return {"propertyName": name.lstrip("-"), "direction": "DESCENDING" if descending else "ASCENDING"}
    return sort


def _sort_key(kind: str, value: str | None) -> Any:
    """The comparable form of a served value; None when it has none (missing, or untypeable)."""
    if value is None:
        return None
    if kind in ("datetime", "date"):
        return _datetime_text(value)
    if kind == "number":
        return to_decimal(value)
    return value.lower()


def _compare(kind: str, value: str | None, wanted: Any) -> int | None:
    """-1/0/1 comparing a served value with a filter value; None when they cannot be compared."""
    target = _filter_value(kind, wanted)
    mine = _sort_key(kind, value)
    if mine is None:
        return None
    return (mine > target) - (mine < target)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeHubSpot


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        self._answer()

    def do_PUT(self) -> None:  # noqa: N802
        self._answer()

    def do_PATCH(self) -> None:  # noqa: N802
        self._answer()

    def do_DELETE(self) -> None:  # noqa: N802
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        """Silence the default request log on stderr."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.fake.handle(self.command, self.path, headers, body)
        if isinstance(reply.body, str):
            payload, content_type = reply.body.encode("utf-8"), "text/html; charset=utf-8"
        else:
            payload, content_type = json.dumps(reply.body).encode("utf-8"), "application/json;charset=utf-8"
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
