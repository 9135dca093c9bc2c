"""A fake Salesforce REST API on 127.0.0.1, serving an org read from a SQL-replica SQLite file.

The org is the SQLite file written by ``python -m ingestion.demo generate`` (or by
``tests.crm_fixtures``): one table per object (lower-case name), columns named like the fields.
The file is read afresh for every new query, so a test changes the org by writing to the file.
An object whose table the file lacks is one the org does not have: its describe answers 404
NOT_FOUND and queries INVALID_TYPE, as Salesforce answers for an object the user cannot see (the
demo org has neither OpportunityStage nor Event; ``tests.crm_fixtures.create_crm`` makes both).

Stored values are served as the API types them (by declared SQLite type, else by field name):
booleans (0/1 or 'true'/'false') as JSON true/false, INTEGER as JSON integers, REAL as JSON
numbers (integral text stays an integer), datetimes in any ISO-8601 spelling as
``2024-01-15T14:22:10.000+0000``, dates as ``YYYY-MM-DD``, empty strings as null (the API never
sends ''). A stored value that cannot be typed is served verbatim as a string, so that the
pipeline's quarantine sees the same defects as through the replica.

Answers have the API's JSON shapes: query results ``{"totalSize", "done", "records",
"nextRecordsUrl"}`` with an ``attributes`` object per record, errors as ``[{"message",
"errorCode"}]``, OAuth errors as ``{"error", "error_description"}``. Supported SOQL: ``SELECT
<fields> FROM <Object> [WHERE <field> <op> <datetime literal or null> [AND ...]] [ORDER BY <field>
[ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n]``.

Fault knobs: ``expire_sessions`` (API requests get 401 INVALID_SESSION_ID until the token is
refreshed); ``fail_next`` (any status and error code, optionally with Retry-After, ``times`` in a
row, after letting ``skip`` requests through, e.g. to fail a later page) and its shortcuts
``rate_limit_next``, ``server_error_next``, ``request_limit_next``; ``query_timeout_wider_than``
(QUERY_TIMEOUT for a SystemModstamp window wider than that, or unbounded; ``LIMIT`` queries are
index lookups and never time out); ``add_field`` and ``hide_field`` change what describe lists and
queries return. Every request is recorded.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

OBJECT_NAMES: dict[str, str] = {
    "user": "User",
    "userrole": "UserRole",
    "account": "Account",
    "contact": "Contact",
    "lead": "Lead",
    "opportunity": "Opportunity",
    "opportunityhistory": "OpportunityHistory",
    "task": "Task",
    "campaign": "Campaign",
    "forecastingquota": "ForecastingQuota",
    "opportunitystage": "OpportunityStage",
    "event": "Event",
}
FAKE_CLIENT_ID = "3MVG9fake-client-id-PX7Q2"
FAKE_CLIENT_SECRET = "fake-client-secret-ZK81W4"
FAKE_REFRESH_TOKEN = "5Aep861fake-refresh-token-M3D9"
DATETIME_FIELDS = frozenset(
    {"CreatedDate", "SystemModstamp", "LastModifiedDate", "StartDateTime", "EndDateTime"}
)
# Numeric fields of the optional objects, typed by name when the replica declares them as text.
NUMBER_FIELDS = {"SortOrder": "int", "DefaultProbability": "percent"}
COMPOUND_TYPES = frozenset({"address", "location"})
MODSTAMP = "SystemModstamp"

_DATA_PATH = re.compile(r"^/services/data/(?P<version>v\d+\.\d)(?P<rest>/.*)$")
_DESCRIBE_PATH = re.compile(r"^/sobjects/(?P<object>\w+)/describe/?$")
_QUERY_PATH = re.compile(r"^/(?P<endpoint>query|queryAll)/?$")
_NEXT_PATH = re.compile(r"^/(?P<endpoint>query|queryAll)/(?P<locator>01g\w+)-(?P<offset>\d+)$")
_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(r"^(?P<field>\w+)\s*(?P<op>>=|<=|!=|=|<|>)\s*(?P<value>\S+)$")
_ORDER_ITEM = re.compile(
    r"^(?P<field>\w+)(?:\s+(?P<dir>ASC|DESC))?(?:\s+NULLS\s+(?P<nulls>FIRST|LAST))?$", re.I
)
_DATETIME_LITERAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?(?:Z|[+-]\d\d:\d\d)$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d")
_INTEGER = re.compile(r"^[+-]?\d+$")


# --- requests and faults -------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake answered, with the status and error code it answered with."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]
    status: int
    error_code: str | None

    @property
    def soql(self) -> str | None:
        return self.params.get("q")

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None

    @property
    def is_token_request(self) -> bool:
        return self.path == "/services/oauth2/token"


@dataclass
class Fault:
    status: int
    error_code: str
    message: str
    retry_after: str | None
    remaining: int
    skip: int = 0  # API requests to let through first


@dataclass(frozen=True)
class FieldSpec:
    """A field of an object: its API name and type, and where its value comes from."""

    name: str
    type: str
    column: str | None = None  # the SQLite column; None for added and compound fields
    value: Callable[[dict[str, Any]], Any] | None = None  # added fields: value from the stored row


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


class SoqlError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.reply = error_reply(status, code, message)


def error_reply(status: int, code: str, message: str, retry_after: str | None = None) -> Reply:
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Reply(status, [{"message": message, "errorCode": code}], headers)


# --- SOQL ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: datetime | None  # None: the literal null


@dataclass(frozen=True)
class OrderItem:
    field: str
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class SoqlQuery:
    fields: tuple[str, ...]
    object: str
    conditions: tuple[Condition, ...]
    order: tuple[OrderItem, ...]
    limit: int | None

    def modstamp_window(self) -> tuple[datetime | None, datetime | None]:
        lower = [
            c.value for c in self.conditions if c.field.lower() == "systemmodstamp" and c.op in (">=", ">")
        ]
        upper = [
            c.value for c in self.conditions if c.field.lower() == "systemmodstamp" and c.op in ("<", "<=")
        ]
        return max((v for v in lower if v), default=None), min((v for v in upper if v), default=None)


def parse_soql(text: str) -> SoqlQuery:
    match = _SOQL.match(text)
    if not match:
        raise SoqlError(400, "MALFORMED_QUERY", f"unexpected token in query: {text[:60]}")
    fields = tuple(f.strip() for f in match["fields"].split(","))
    if not all(re.fullmatch(r"\w+", f) for f in fields):
        raise SoqlError(400, "MALFORMED_QUERY", "only plain field names are supported in SELECT")
    where = re.split(r"\s+AND\s+", match["where"], flags=re.I) if match["where"] else []
    order = [item.strip() for item in match["order"].split(",")] if match["order"] else []
    limit = int(match["limit"]) if match["limit"] else None
    return SoqlQuery(fields, match["object"], tuple(map(_condition, where)), tuple(map(_order, order)), limit)


def _condition(text: str) -> Condition:
    match = _CONDITION.match(text.strip())
    if not match:
        raise SoqlError(400, "MALFORMED_QUERY", f"unsupported condition: {text[:60]}")
    literal = match["value"]
    if literal.lower() == "null":
        if match["op"] not in ("=", "!="):
            raise SoqlError(400, "MALFORMED_QUERY", "null is only compared with = and !=")
        return Condition(match["field"], match["op"], None)
    if not _DATETIME_LITERAL.match(literal):
        raise SoqlError(
            400, "INVALID_FIELD", f"value of filter criterion for field is not a datetime: {literal}"
        )
    return Condition(match["field"], match["op"], parse_datetime(literal))


def _order(text: str) -> OrderItem:
    match = _ORDER_ITEM.match(text)
    if not match:
        raise SoqlError(400, "MALFORMED_QUERY", f"unsupported ORDER BY item: {text[:60]}")
    descending = (match["dir"] or "ASC").upper() == "DESC"
    nulls = (match["nulls"] or ("LAST" if descending else "FIRST")).upper()
    return OrderItem(match["field"], descending, nulls == "LAST")


# --- values --------------------------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime | None:
    """Any stored ISO-8601 spelling (Z, +0000, +00:00, none, space separator) as naive UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    text = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def api_datetime(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


def field_type(name: str, declared: str) -> str:
    """The API type of a replica column, from its declared type, else from its name."""
    declared = declared.upper()
    if name == "Id":
        return "id"
    if "BOOL" in declared or (declared in ("", "TEXT") and re.match(r"^Is[A-Z]", name)):
        return "boolean"
    if declared in ("INTEGER", "INT", "BIGINT"):
        return "int"
    if declared in ("REAL", "FLOAT", "DOUBLE", "NUMERIC", "DECIMAL"):
        return "double"
    if declared in ("", "TEXT") and name in NUMBER_FIELDS:
        return NUMBER_FIELDS[name]
    if "DATETIME" in declared or "TIMESTAMP" in declared or name in DATETIME_FIELDS:
        return "datetime"
    if declared == "DATE" or name.endswith(("Date", "Date__c")):
        return "date"
    return "reference" if name.endswith("Id") else "string"


def api_value(kind: str, value: Any) -> Any:
    """A stored value as the API sends it; verbatim text when it cannot be typed."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    converter = _CONVERTERS.get(kind)
    converted = converter(value) if converter else None
    if converted is not None:
        return converted
    return value if isinstance(value, str) else str(value)


def _boolean(value: Any) -> bool | None:
    text = str(value).strip().lower()
    return {"1": True, "true": True, "0": False, "false": False}.get(text)


def _integer(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(value) if isinstance(value, str) and _INTEGER.match(value.strip()) else None


def _number(value: Any) -> int | float | None:
    if isinstance(value, int | float):
        return value if not isinstance(value, float) or math.isfinite(value) else None
    if _integer(value) is not None:
        return _integer(value)
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _date(value: Any) -> str | None:
    text = str(value).strip()
    return text[:10] if _DATE.match(text) and parse_datetime(text[:10]) else None


def _datetime(value: Any) -> str | None:
    moment = parse_datetime(value)
    return api_datetime(moment) if moment else None


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "boolean": _boolean,
    "int": _integer,
    "double": _number,
    "currency": _number,
    "percent": _number,
    "date": _date,
    "datetime": _datetime,
}


def _sort_key(value: Any) -> tuple:
    if isinstance(value, bool | int | float):
        return (1, float(value), "")
    moment = parse_datetime(value) if isinstance(value, str) and _DATE.match(value) else None
    return (0, moment, "") if moment else (2, 0.0, str(value))


# --- the fake ------------------------------------------------------------------------------------


class FakeSalesforce:
    """The fake server; use as a context manager: ``with FakeSalesforce(path) as sf: sf.url``."""

    def __init__(
        self,
        crm_path: Path,
        *,
        page_size: int = 200,
        client_id: str = FAKE_CLIENT_ID,
        client_secret: str = FAKE_CLIENT_SECRET,
        refresh_token: str = FAKE_REFRESH_TOKEN,
    ) -> None:
        self.crm_path = Path(crm_path)
        self.page_size = page_size
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.query_timeout_wider_than: timedelta | None = None
        self.requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._added: dict[str, list[FieldSpec]] = {}
        self._hidden: dict[str, set[str]] = {}
        self._tokens: set[str] = set()
        self._tokens_issued = 0
        self._locators: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def __enter__(self) -> FakeSalesforce:
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

    # knobs

    def expire_sessions(self) -> None:
        """Every access token issued so far becomes invalid (HTTP 401 INVALID_SESSION_ID)."""
        with self._lock:
            self._tokens.clear()

    def fail_next(
        self,
        status: int,
        error_code: str,
        message: str = "",
        *,
        retry_after: str | None = None,
        times: int = 1,
        skip: int = 0,
    ) -> None:
        """The next ``times`` API requests (token requests excepted), after ``skip`` more, get this error."""
        with self._lock:
            self._faults.append(Fault(status, error_code, message or error_code, retry_after, times, skip))

    def rate_limit_next(self, retry_after: str | None = None, times: int = 1) -> None:
        self.fail_next(429, "TOO_MANY_REQUESTS", "Too many requests", retry_after=retry_after, times=times)

    def server_error_next(self, times: int = 1) -> None:
        self.fail_next(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.", times=times)

    def request_limit_next(self, times: int = 1) -> None:
        self.fail_next(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", times=times)

    def add_field(
        self, obj: str, name: str, kind: str = "string", value: Callable[[dict[str, Any]], Any] | Any = None
    ) -> None:
        """A field the replica does not have: listed by describe, its value computed from the stored row."""
        compute = value if callable(value) else (lambda _row: value)
        with self._lock:
            self._added.setdefault(obj.lower(), []).append(FieldSpec(name, kind, None, compute))

    def hide_field(self, obj: str, name: str) -> None:
        """Describe no longer lists the field and queries naming it fail (INVALID_FIELD)."""
        with self._lock:
            self._hidden.setdefault(obj.lower(), set()).add(name.lower())

    # inspection

    def api_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if not r.is_token_request]

    def token_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.is_token_request]

    def soql_queries(self) -> list[str]:
        return [r.soql for r in self.requests if r.soql]

    # request handling

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()} if method == "POST" else {}
        with self._lock:
            reply = self._route(method, parts.path, params, headers, form)
            error_code = _reply_error_code(reply)
            self.requests.append(
                RecordedRequest(method, parts.path, params, headers, form, reply.status, error_code)
            )
        return reply

    def _route(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str], form: dict[str, str]
    ) -> Reply:
        if path == "/services/oauth2/token":
            return (
                self._token(form) if method == "POST" else error_reply(405, "METHOD_NOT_ALLOWED", "POST only")
            )
        match = _DATA_PATH.match(path)
        if not match or method != "GET":
            return error_reply(404, "NOT_FOUND", "The requested resource does not exist")
        fault = self._take_fault()
        if fault is not None:
            return error_reply(fault.status, fault.error_code, fault.message, fault.retry_after)
        if headers.get("authorization", "").removeprefix("Bearer ") not in self._tokens:
            return error_reply(401, "INVALID_SESSION_ID", "Session expired or invalid")
        try:
            return self._api(match["version"], match["rest"], params, headers)
        except SoqlError as error:
            return error.reply

    def _take_fault(self) -> Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        if fault.skip > 0:
            fault.skip -= 1
            return None
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.pop(0)
        return fault

    def _token(self, form: dict[str, str]) -> Reply:
        if form.get("grant_type") != "refresh_token":
            return Reply(
                400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
            )
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return Reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        if form.get("refresh_token") != self.refresh_token:
            return Reply(400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})
        self._tokens_issued += 1
        token = f"00DFAKE0000001!AQ4AQfake-access-token-{self._tokens_issued:04d}"
        self._tokens.add(token)
        body = {
            "access_token": token,
            "instance_url": self.url,
            "id": f"{self.url}/id/00DFAKE0000001AAA/0058c0000008rnDAAQ",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "signature": "ZmFrZS1zaWduYXR1cmU=",
            "scope": "api refresh_token",
        }
        return Reply(200, body)

    def _api(self, version: str, rest: str, params: dict[str, str], headers: dict[str, str]) -> Reply:
        if match := _DESCRIBE_PATH.match(rest):
            return self._describe(match["object"])
        page_size = self._page_size(headers)
        if match := _QUERY_PATH.match(rest):
            if "q" not in params:
                return error_reply(400, "MALFORMED_QUERY", "q parameter is required")
            records = self._query(version, params["q"], include_deleted=match["endpoint"] == "queryAll")
            return self._page(version, match["endpoint"], self._new_locator(records), 0, page_size)
        if match := _NEXT_PATH.match(rest):
            if match["locator"] not in self._locators:
                return error_reply(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._page(version, match["endpoint"], match["locator"], int(match["offset"]), page_size)
        return error_reply(404, "NOT_FOUND", "The requested resource does not exist")

    def _page_size(self, headers: dict[str, str]) -> int:
        options = headers.get("sforce-query-options", "")
        match = re.search(r"batchSize=(\d+)", options)
        return min(self.page_size, max(200, min(2000, int(match[1])))) if match else self.page_size

    def _new_locator(self, records: list[dict[str, Any]]) -> str:
        locator = f"01gFAKE{len(self._locators) + 1:011d}"
        self._locators[locator] = records
        return locator

    def _page(self, version: str, endpoint: str, locator: str, offset: int, size: int) -> Reply:
        records = self._locators[locator]
        body: dict[str, Any] = {
            "totalSize": len(records),
            "done": offset + size >= len(records),
            "records": records[offset : offset + size],
        }
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/{version}/{endpoint}/{locator}-{offset + size}"
        return Reply(200, body)

    # the org

    def _table(self, obj: str) -> str | None:
        with self._connect() as connection:
            names = [
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
        return next((name for name in names if name.lower() == obj.lower()), None)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.crm_path}?mode=ro", uri=True)

    def _fields(self, obj: str) -> list[FieldSpec]:
        table = self._table(obj)
        if table is None:
            raise SoqlError(404, "NOT_FOUND", "The requested resource does not exist")
        with self._connect() as connection:
            columns = [(row[1], row[2] or "") for row in connection.execute(f'PRAGMA table_info("{table}")')]
        hidden = self._hidden.get(obj.lower(), set())
        fields = [FieldSpec(name, field_type(name, declared), name) for name, declared in columns]
        if any(f.name == "BillingCountry" for f in fields):
            fields.append(FieldSpec("BillingAddress", "address"))
        fields.extend(self._added.get(obj.lower(), []))
        return [f for f in fields if f.name.lower() not in hidden]

    def _describe(self, obj: str) -> Reply:
        fields = self._fields(obj)
        name = OBJECT_NAMES.get(obj.lower(), obj)
        described = [
            {
                "name": f.name,
                "type": f.type,
                "label": f.name,
                "nillable": f.name != "Id",
                "compoundFieldName": "BillingAddress"
                if f.name.startswith("Billing") and f.type != "address"
                else None,
                "deprecatedAndHidden": False,
            }
            for f in fields
        ]
        return Reply(200, {"name": name, "label": name, "queryable": True, "fields": described})

    def _query(self, version: str, soql: str, include_deleted: bool) -> list[dict[str, Any]]:
        query = parse_soql(soql)
        obj = OBJECT_NAMES.get(query.object.lower(), query.object)
        try:
            fields = {f.name.lower(): f for f in self._fields(obj) if f.type not in COMPOUND_TYPES}
        except SoqlError:
            raise SoqlError(400, "INVALID_TYPE", f"sObject type '{query.object}' is not supported.") from None
        used = [*query.fields, *(c.field for c in query.conditions), *(o.field for o in query.order)]
        for name in used:
            if name.lower() not in fields:
                raise SoqlError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{obj}'.")
        self._check_timeout(query)
        records = [self._record(row, fields) for row in self._rows(obj)]
        if not include_deleted and "isdeleted" in fields:
            records = [r for r in records if r.get("IsDeleted") is not True]
        records = [r for r in records if all(_matches(r, c, fields) for c in query.conditions)]
        records = _sorted(records, query.order, fields)
        if query.limit is not None:
            records = records[: query.limit]
        return [self._projected(version, obj, record, query.fields, fields) for record in records]

    def _check_timeout(self, query: SoqlQuery) -> None:
        if self.query_timeout_wider_than is None or query.limit is not None:
            return
        lower, upper = query.modstamp_window()
        if lower is None or upper is None or upper - lower > self.query_timeout_wider_than:
            raise SoqlError(400, "QUERY_TIMEOUT", "Your query request was running for too long.")

    def _rows(self, obj: str) -> list[dict[str, Any]]:
        with self._connect() as connection:
            cursor = connection.execute(f'SELECT * FROM "{self._table(obj)}"')
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    @staticmethod
    def _record(row: dict[str, Any], fields: dict[str, FieldSpec]) -> dict[str, Any]:
        record = {}
        for spec in fields.values():
            stored = spec.value(row) if spec.value is not None else row.get(spec.column or "")
            record[spec.name] = api_value(spec.type, stored)
        return record

    @staticmethod
    def _projected(
        version: str,
        obj: str,
        record: dict[str, Any],
        selected: tuple[str, ...],
        fields: dict[str, FieldSpec],
    ) -> dict[str, Any]:
        attributes = {"type": obj, "url": f"/services/data/{version}/sobjects/{obj}/{record.get('Id')}"}
        return {
            "attributes": attributes,
            **{fields[n.lower()].name: record[fields[n.lower()].name] for n in selected},
        }


def _matches(record: dict[str, Any], condition: Condition, fields: dict[str, FieldSpec]) -> bool:
    value = record[fields[condition.field.lower()].name]
    if condition.value is None:
        return (value is None) == (condition.op == "=")
    moment = parse_datetime(value)
    if moment is None:
        return False
    compare: dict[str, Callable[[datetime, datetime], bool]] = {
        ">=": lambda a, b: a >= b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
    }
    return compare[condition.op](moment, condition.value)


def _sorted(
    records: list[dict[str, Any]], order: tuple[OrderItem, ...], fields: dict[str, FieldSpec]
) -> list[dict[str, Any]]:
    for item in reversed(order):  # stable sorts, least significant key first
        name = fields[item.field.lower()].name
        present = [r for r in records if r[name] is not None]
        missing = [r for r in records if r[name] is None]
        present.sort(key=lambda r, n=name: _sort_key(r[n]), reverse=item.descending)
        records = present + missing if item.nulls_last else missing + present
    return records


def _reply_error_code(reply: Reply) -> str | None:
    body = reply.body
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("errorCode")
    return body.get("error") if isinstance(body, dict) else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSalesforce


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        """Silence the default request log on stderr."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.fake.handle(self.command, self.path, headers, body)
        payload = json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
