"""Reader for the Salesforce REST API: a drop-in replacement for the SQL-replica reader.

``SalesforceApiReader`` has the interface of ``ingestion.crm_sql.SqlCrmReader`` (``describe``,
``iter_batches``, ``earliest_created_at``, ``close``), so ``ingestion.crm_load.load_crm_table``
loads either into identical raw tables: one text column per field (lower-case name), booleans as
'true'/'false', numbers as their decimal text, datetimes and dates exactly as the API sends them,
nulls as None.

Per contract object the reader lists the fields with ``/sobjects/<Object>/describe`` (the
contract's fields plus every other non-compound field, so new fields are picked up), matches them
to the contract as the SQL reader matches a replica (``ingestion.replica_shape.resolve_table``):
an optional field the org lacks (``Hire_Date__c`` in a standard org) is loaded as null, a field
map (``SALESOPS_FIELD_MAP``, e.g. ``user.Hire_Date__c=Start_Date__c``) reads a contract field
from the org's own field, and an object the org does not have (describe answers 404:
OpportunityStage and Event are optional) is refused with rule ``required_table``, which the
loader treats as absent for optional objects. Then it runs one SOQL query, following
``nextRecordsUrl``::

    SELECT <fields> FROM <Object>
    WHERE SystemModstamp >= <cursor - overlap> AND SystemModstamp < <sync start>
    ORDER BY SystemModstamp, Id

through ``/queryAll`` when the object has ``IsDeleted`` (the recycle bin is included, deleted
rows arrive with isdeleted 'true'), else through ``/query``. The upper bound keeps every page of
one sync inside the same window; rows changed later are read by the next sync, because the
loader never sets the cursor past the moment the sync started.

Resilience: the OAuth access token is obtained with the refresh-token flow and refreshed once
per request on HTTP 401; HTTP 429, 5xx, ``REQUEST_LIMIT_EXCEEDED`` and connection failures are
retried up to ``max_retries`` times (``Retry-After`` honoured when sent, otherwise exponential
backoff with jitter); a ``QUERY_TIMEOUT`` splits the time window in halves, down to
``min_window``; an expired query locator restarts the window from the last record read.
Credentials and access tokens never appear in logs, ``repr`` or error messages.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn
from urllib.parse import urlencode

import pyarrow as pa
import requests

from ingestion.api_http import backoff_seconds, insecure_url_problem, retry_after_seconds, safe_url
from ingestion.contract import CRM_CONTRACT, ID_COLUMN, MODSTAMP_COLUMN, is_optional_field
from ingestion.crm_load import parse_source_datetime
from ingestion.crm_sql import SOURCE_NAME, SourceTable, warehouse_column_name
from ingestion.errors import SourceError
from ingestion.replica_shape import ShapeError, resolve_table
from ingestion.warehouse import utc_now

logger = logging.getLogger(__name__)

# Salesforce API name of each contract object (the contract uses them in lower case).
API_OBJECTS: dict[str, str] = {
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

DEFAULT_API_VERSION = "v60.0"
ENV_PREFIX = "SALESOPS_SALESFORCE_"
# Compound fields repeat their components (BillingAddress = BillingStreet, ...); base64 bodies
# can only be read one record at a time.
UNSELECTED_FIELD_TYPES = frozenset({"address", "location", "base64"})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_ERROR_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE"})
MAX_QUERY_URL_LENGTH = 16_000  # the REST API refuses URIs over 16,384 bytes
REDACTED = "<redacted>"

_API_VERSION = re.compile(r"^v\d{2,3}\.\d$")
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.]{1,80}$")


@dataclass(frozen=True, repr=False)
class SalesforceSettings:
    """Connection settings: a connected app's OAuth client and a refresh token for the API user."""

    login_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    api_version: str = DEFAULT_API_VERSION
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_retries: int = 6
    backoff_base: float = 1.0  # seconds before the first retry (at most; jitter takes up to half)
    backoff_cap: float = 60.0
    max_retry_after: float = 600.0  # a longer Retry-After fails the load instead of blocking it
    page_size: int = 2000  # Sforce-Query-Options batchSize: records per API page (200..2000)
    min_window: timedelta = timedelta(minutes=1)  # narrowest window a timed-out query is split to

    def __post_init__(self) -> None:
        if not _API_VERSION.match(self.api_version):
            _config_error(f"API version must look like 'v60.0', not {self.api_version!r}")
        _require_secure_url(self.login_url, "login URL")
        object.__setattr__(self, "login_url", self.login_url.rstrip("/"))
        if self.max_retries < 0 or self.backoff_base < 0 or self.backoff_cap < 0:
            _config_error("max_retries, backoff_base and backoff_cap must not be negative")
        if not 200 <= self.page_size <= 2000:
            _config_error(f"page_size must be between 200 and 2000, not {self.page_size}")
        if self.min_window < timedelta(seconds=2):
            _config_error("min_window must be at least 2 seconds")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> SalesforceSettings:
        """Settings from SALESOPS_SALESFORCE_{LOGIN_URL,CLIENT_ID,CLIENT_SECRET,REFRESH_TOKEN,API_VERSION}."""
        env = os.environ if environ is None else environ
        names = ("login_url", "client_id", "client_secret", "refresh_token")
        values = {name: _required_env(env, name) for name in names}
        version = env.get(f"{ENV_PREFIX}API_VERSION", "").strip()
        return cls(**values, api_version=version or DEFAULT_API_VERSION, **overrides)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown anywhere."""
        return tuple(s for s in (self.client_id, self.client_secret, self.refresh_token) if s)

    def __repr__(self) -> str:
        return (
            f"SalesforceSettings(login_url={safe_url(self.login_url)!r}, api_version={self.api_version!r}, "
            f"client_id={REDACTED!r}, client_secret={REDACTED!r}, refresh_token={REDACTED!r}, "
            f"max_retries={self.max_retries}, page_size={self.page_size})"
        )

    __str__ = __repr__


def _required_env(environ: Mapping[str, str], name: str) -> str:
    variable = f"{ENV_PREFIX}{name.upper()}"
    value = environ.get(variable, "").strip()
    if not value:
        _config_error(f"environment variable {variable} is not set")
    return value


def _config_error(problem: str) -> NoReturn:
    raise SourceError(SOURCE_NAME, f"Salesforce settings: {problem}", rule="configuration")


def _require_secure_url(url: str, what: str) -> None:
    problem = insecure_url_problem(url, what)
    if problem:
        _config_error(problem)


class _QueryTimeout(Exception):
    """The API gave up on a query (QUERY_TIMEOUT): its window is split in halves."""


class _QueryLocatorExpired(Exception):
    """A paging cursor expired (INVALID_QUERY_LOCATOR): the window restarts from the last record."""


class SalesforceClient:
    """Authenticated JSON requests with token refresh, retries and backoff."""

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._jitter = jitter
        self._session = session or requests.Session()
        self._access_token: str | None = None
        self._instance_url: str | None = None

    def close(self) -> None:
        self._session.close()
        self._access_token = None

    def __repr__(self) -> str:
        return f"SalesforceClient({self.settings!r})"

    def get_json(
        self, path: str, obj: str, params: Mapping[str, str] | None = None, not_found_rule: str = "api_error"
    ) -> Any:
        """GET an API path (``/services/data/...``) and return its JSON, numbers with exact decimals."""
        if not path.startswith("/services/data/"):
            raise _error(obj, f"Salesforce {obj}: refusing to follow URL {safe_url(path)!r}", "api_error")
        if self._access_token is None:
            self._refresh_token(obj)
        response = self._send("GET", path, obj, authorized=True, params=params)
        if response.status_code != 200:
            self._raise_api_error(response, obj, not_found_rule)
        return _json(response, obj, self.scrub)

    def scrub(self, text: str) -> str:
        """The text with any credential or access token replaced."""
        for secret in (*self.settings.secrets, self._access_token or ""):
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def _refresh_token(self, obj: str) -> None:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret,
            "refresh_token": self.settings.refresh_token,
        }
        url = f"{self.settings.login_url}/services/oauth2/token"
        response = self._send("POST", url, obj, authorized=False, data=form)
        if response.status_code != 200:
            problem = f"OAuth token refresh failed: HTTP {response.status_code} {_error_code(response)}"
            raise _error(obj, problem.strip(), "authentication")
        payload = _json(response, obj, self.scrub)
        token, instance_url = payload.get("access_token"), payload.get("instance_url")
        if not isinstance(token, str) or not token or not isinstance(instance_url, str):
            raise _error(obj, "OAuth token response has no access token", "authentication")
        _require_secure_url(instance_url, "instance URL")
        self._access_token, self._instance_url = token, instance_url.rstrip("/")
        logger.info("Salesforce: access token obtained for %s", safe_url(self._instance_url))

    def _send(
        self, method: str, target: str, obj: str, *, authorized: bool, **kwargs: Any
    ) -> requests.Response:
        """One request with retries; returns the last response, raises only once retries run out."""
        retries = 0
        refreshed = False
        while True:
            response, failure = self._attempt(method, target, obj, authorized=authorized, **kwargs)
            if response is not None and response.status_code == 401 and authorized and not refreshed:
                logger.info(
                    "Salesforce %s: HTTP 401 %s, refreshing the access token", obj, _error_code(response)
                )
                self._refresh_token(obj)
                refreshed = True
                continue
            if response is not None and not _is_transient(response):
                return response
            retries += 1
            if retries > self.settings.max_retries:
                problem = (
                    f"Salesforce {obj}: {failure}, still failing after {self.settings.max_retries} retries"
                )
                raise _error(obj, problem, "retries_exhausted")
            delay = self._retry_delay(retries, response, obj, failure)
            logger.warning(
                "Salesforce %s: %s, retry %d of %d in %.2f s",
                obj,
                failure,
                retries,
                self.settings.max_retries,
                delay,
            )
            self._sleep(delay)

    def _attempt(
        self, method: str, target: str, obj: str, *, authorized: bool, **kwargs: Any
    ) -> tuple[requests.Response | None, str]:
        """The response (None after a network failure, which is worth retrying) and a one-line summary."""
        headers = {"Accept": "application/json"}
        url = target
        if authorized:
            headers["Authorization"] = f"Bearer {self._access_token}"
            headers["Sforce-Query-Options"] = f"batchSize={self.settings.page_size}"
            url = f"{self._instance_url}{target}"
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        try:
            response = self._session.request(method, url, headers=headers, timeout=timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            return None, f"connection failed ({type(exc).__name__})"
        except requests.RequestException as exc:
            raise _error(
                obj, f"Salesforce {obj}: request failed ({type(exc).__name__})", "api_error"
            ) from None
        return response, f"HTTP {response.status_code} {_error_code(response)}".strip()

    def _retry_delay(self, retries: int, response: requests.Response | None, obj: str, failure: str) -> float:
        """Retry-After when the server sent one, else exponential backoff with jitter (half to full)."""
        retry_after = retry_after_seconds(
            response.headers.get("Retry-After") if response is not None else None
        )
        if retry_after is not None:
            if retry_after > self.settings.max_retry_after:
                problem = (
                    f"Salesforce {obj}: {failure} asks to retry after {retry_after:g} s, too long to wait"
                )
                raise _error(obj, problem, "retries_exhausted")
            return retry_after
        return backoff_seconds(retries, self.settings.backoff_base, self.settings.backoff_cap, self._jitter())

    def _raise_api_error(self, response: requests.Response, obj: str, not_found_rule: str) -> NoReturn:
        code = _error_code(response)
        if code == "QUERY_TIMEOUT":
            raise _QueryTimeout
        if code == "INVALID_QUERY_LOCATOR":
            raise _QueryLocatorExpired
        rule = {401: "authentication", 404: not_found_rule}.get(response.status_code, "api_error")
        message = self.scrub(_error_message(response))
        problem = f"Salesforce {obj}: HTTP {response.status_code} {code}{': ' if message else ''}{message}"
        raise _error(obj, problem, rule)


def _json(response: requests.Response, obj: str, scrub: Callable[[str], str]) -> Any:
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        problem = f"Salesforce {obj}: HTTP {response.status_code} response is not JSON"
        raise _error(obj, scrub(problem), "api_error") from None


def _error_body(response: requests.Response) -> dict[str, Any]:
    """The first error of a Salesforce error list, or an OAuth error object."""
    try:
        body = response.json()
    except ValueError:
        return {}
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0]
    return body if isinstance(body, dict) else {}


def _error_code(response: requests.Response) -> str:
    if response.status_code < 400:
        return ""
    body = _error_body(response)
    code = body.get("errorCode", body.get("error", ""))
    return code if isinstance(code, str) and _ERROR_CODE.match(code) else ""


def _error_message(response: requests.Response) -> str:
    message = _error_body(response).get("message", "")
    return " ".join(message.split())[:200] if isinstance(message, str) else ""


def _is_transient(response: requests.Response) -> bool:
    return response.status_code in RETRYABLE_STATUSES or (
        response.status_code in (400, 403) and _error_code(response) in RETRYABLE_ERROR_CODES
    )


@dataclass(frozen=True)
class _Query:
    """The SOQL query of one object over a SystemModstamp window."""

    obj: str
    fields: tuple[str, ...]
    endpoint: str  # "query" or "queryAll"
    modstamp: str
    id_field: str

    def soql(self, low: datetime | None, high: datetime) -> str:
        conditions = [f"{self.modstamp} < {soql_datetime(high)}"]
        if low is not None:
            conditions.insert(0, f"{self.modstamp} >= {soql_datetime(low)}")
        return (
            f"SELECT {', '.join(self.fields)} FROM {self.obj} WHERE {' AND '.join(conditions)} "
            f"ORDER BY {self.modstamp}, {self.id_field}"
        )


def soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC) for a naive UTC or aware datetime."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_second(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


class SalesforceApiReader:
    """Streams the CRM contract's objects from the Salesforce REST API, like ``SqlCrmReader``."""

    def __init__(
        self,
        settings: SalesforceSettings,
        batch_size: int = 10_000,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
        field_map: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        self.settings = settings
        self.batch_size = batch_size
        # contract table -> contract field -> the org's field holding it (replica_shape.parse_field_map)
        self.field_map = {table: dict(fields) for table, fields in (field_map or {}).items()}
        self._clock = clock
        self._client = SalesforceClient(settings, sleep=sleep, jitter=jitter, session=session)
        self._fields: dict[str, list[str]] = {}

    def __repr__(self) -> str:
        return f"SalesforceApiReader({self.settings!r}, batch_size={self.batch_size})"

    def close(self) -> None:
        self._client.close()

    @property
    def _api_base(self) -> str:
        return f"/services/data/{self.settings.api_version}"

    def describe(self, contract_name: str, require_contract: bool = True) -> SourceTable:
        """The object's selectable fields, matched to the contract as the SQL reader matches a
        replica's columns (``replica_shape.resolve_table``, API names): contract fields under their
        lower-case name, read from the field the field map names, if any; every other field under
        its own. A missing optional field (any custom field, ...) is listed in ``missing`` and
        loaded as null; a missing required field raises (rule ``required_column``). An object the
        org does not have (describe answers 404) raises rule ``required_table``."""
        table = contract_name.lower()
        obj = _object_name(table)
        try:
            resolved = resolve_table(
                table, self._describe_fields(obj), "api", self.field_map.get(table), require_all=False
            )
        except ShapeError as error:
            raise SourceError(
                SOURCE_NAME, f"Salesforce {obj}: {error}", table=table, rule=error.rule
            ) from None
        missing = [
            field
            for field in CRM_CONTRACT[table]
            if field.lower() not in resolved.columns and not is_optional_field(table, field)
        ]
        if missing and require_contract:
            raise SourceError(
                SOURCE_NAME,
                f"required field {', '.join(repr(c) for c in missing)} missing from Salesforce object {obj}",
                table=contract_name,
                rule="required_column",
            )
        columns = self._within_url_limit(obj, resolved.columns, table)
        return SourceTable(
            contract_name, obj, columns, modstamp_is_text=True, missing=resolved.missing_optional
        )

    def earliest_created_at(self, tables: Sequence[str] = ("lead", "opportunity")) -> datetime | None:
        """The oldest CreatedDate among the given objects (deleted records included)."""
        earliest: datetime | None = None
        for name in tables:
            table = self.describe(name, require_contract=False)
            if "createddate" not in table.columns:
                continue
            endpoint = "queryAll" if "isdeleted" in table.columns else "query"
            value = self._smallest(table.actual_name, table.columns["createddate"], endpoint)
            if value is not None and (earliest is None or value < earliest):
                earliest = value
        return earliest

    def iter_batches(
        self, table: SourceTable, since: datetime | None, overlap: timedelta
    ) -> Iterator[pa.Table]:
        """Yield Arrow tables of strings, oldest SystemModstamp first, from ``since - overlap`` on."""
        high = _whole_second(self._clock())
        low = None if since is None else _whole_second(since - overlap)
        query = self._query(table)
        logger.info(
            "Salesforce %s: reading %s from %s to %s",
            query.obj,
            query.endpoint,
            soql_datetime(low) if low else "the start",
            soql_datetime(high),
        )
        pending: list[dict[str, Any]] = []
        for page in self._pages_in_window(query, low, high):
            pending.extend(page)
            while len(pending) >= self.batch_size:
                yield _records_to_arrow(
                    table.columns, _latest_per_id(pending[: self.batch_size], query.id_field)
                )
                pending = pending[self.batch_size :]
        if pending:
            yield _records_to_arrow(table.columns, _latest_per_id(pending, query.id_field))

    def _describe_fields(self, obj: str) -> list[str]:
        if obj not in self._fields:
            payload = self._client.get_json(
                f"{self._api_base}/sobjects/{obj}/describe", obj, not_found_rule="required_table"
            )
            self._fields[obj] = _selectable_fields(payload, obj)
        return self._fields[obj]

    def _within_url_limit(self, obj: str, columns: dict[str, str], contract_name: str) -> dict[str, str]:
        """Drop trailing non-contract fields while the query URL would be too long for the API."""
        required = {c.lower() for c in CRM_CONTRACT[contract_name]}
        kept = dict(columns)
        extras = [name for name in columns if name not in required]
        while extras and _query_url_length(self._api_base, obj, kept.values()) > MAX_QUERY_URL_LENGTH:
            del kept[extras.pop()]
        if len(kept) < len(columns):
            logger.warning(
                "Salesforce %s: %d optional fields left out, the query would exceed the URL length limit",
                obj,
                len(columns) - len(kept),
            )
        return kept

    def _query(self, table: SourceTable) -> _Query:
        for column, field in ((ID_COLUMN, "Id"), (MODSTAMP_COLUMN, "SystemModstamp")):
            if column not in table.columns:
                raise SourceError(
                    SOURCE_NAME,
                    f"required field '{field}' missing from Salesforce object {table.actual_name}",
                    table=table.contract_name,
                    rule="required_column",
                )
        return _Query(
            obj=table.actual_name,
            fields=tuple(table.columns.values()),
            endpoint="queryAll" if "isdeleted" in table.columns else "query",
            modstamp=table.columns[MODSTAMP_COLUMN],
            id_field=table.columns[ID_COLUMN],
        )

    def _pages_in_window(
        self, query: _Query, low: datetime | None, high: datetime
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of records in [low, high), in order, splitting windows whose query times out."""
        windows: list[tuple[datetime | None, datetime]] = [(low, high)]
        restarts = 0
        while windows:
            start, end = windows.pop()
            if start is not None and start >= end:
                continue
            last_seen: list[datetime] = []  # SystemModstamp of the last record yielded
            try:
                for page in self._pages(query, start, end):
                    _remember_last_modstamp(page, query.modstamp, last_seen)
                    yield page
            except _QueryTimeout:
                resume = last_seen[-1] if last_seen else start
                windows.extend(reversed(self._halves(query, resume, end)))
            except _QueryLocatorExpired:
                restarts += 1
                if restarts > self.settings.max_retries:
                    raise _error(
                        query.obj,
                        f"Salesforce {query.obj}: query locator kept expiring while paging",
                        "retries_exhausted",
                    ) from None
                logger.warning("Salesforce %s: query locator expired, resuming the window", query.obj)
                windows.append((last_seen[-1] if last_seen else start, end))

    def _halves(
        self, query: _Query, start: datetime | None, end: datetime
    ) -> list[tuple[datetime | None, datetime]]:
        if start is None:
            start = self._smallest_modstamp(query, end)
            if start is None:
                return []
        if end - start <= self.settings.min_window:
            raise _error(
                query.obj,
                f"Salesforce {query.obj}: query times out even for the window "
                f"{soql_datetime(start)} to {soql_datetime(end)}",
                "query_timeout",
            )
        middle = _whole_second(start + (end - start) / 2)
        logger.warning(
            "Salesforce %s: query timed out for %s to %s, splitting at %s",
            query.obj,
            soql_datetime(start),
            soql_datetime(end),
            soql_datetime(middle),
        )
        return [(start, middle), (middle, end)]

    def _pages(self, query: _Query, low: datetime | None, high: datetime) -> Iterator[list[dict[str, Any]]]:
        soql = query.soql(low, high)
        logger.debug("Salesforce %s: %s", query.obj, soql)
        payload = self._client.get_json(f"{self._api_base}/{query.endpoint}", query.obj, params={"q": soql})
        while True:
            yield _page_records(payload, query.obj)
            if payload.get("done") is True:
                return
            next_url = payload.get("nextRecordsUrl")
            if not isinstance(next_url, str):
                raise _error(
                    query.obj, f"Salesforce {query.obj}: unfinished query without nextRecordsUrl", "api_error"
                )
            payload = self._client.get_json(next_url, query.obj)

    def _smallest_modstamp(self, query: _Query, before: datetime) -> datetime | None:
        where = f"{query.modstamp} < {soql_datetime(before)}"
        return self._smallest(query.obj, query.modstamp, query.endpoint, where)

    def _smallest(self, obj: str, field: str, endpoint: str, where: str = "") -> datetime | None:
        """The smallest value of a datetime field: an index lookup (ORDER BY ... LIMIT 1)."""
        condition = f" WHERE {where}" if where else ""
        soql = f"SELECT {field} FROM {obj}{condition} ORDER BY {field} ASC NULLS LAST LIMIT 1"
        payload = self._client.get_json(f"{self._api_base}/{endpoint}", obj, params={"q": soql})
        records = _page_records(payload, obj)
        value = records[0].get(field) if records else None
        return parse_source_datetime(value) if isinstance(value, str) else None


def _error(obj: str, problem: str, rule: str) -> SourceError:
    """A load-stopping error about a Salesforce object (its contract table is the lower-case name)."""
    return SourceError(SOURCE_NAME, problem, table=obj.lower(), rule=rule)


def _object_name(contract_name: str) -> str:
    obj = API_OBJECTS.get(contract_name.lower())
    if obj is None:
        raise SourceError(
            SOURCE_NAME, "not an object of the CRM contract", table=contract_name, rule="required_table"
        )
    return obj


def _selectable_fields(payload: Any, obj: str) -> list[str]:
    """Field names from a describe result, without compound fields and hidden or odd names."""
    fields = payload.get("fields") if isinstance(payload, dict) else None
    if not isinstance(fields, list):
        raise _error(obj, f"Salesforce {obj}: describe result has no fields", "api_error")
    names = []
    for field in fields:
        if not isinstance(field, dict) or field.get("type") in UNSELECTED_FIELD_TYPES:
            continue
        name = field.get("name")
        if isinstance(name, str) and _FIELD_NAME.match(name) and not field.get("deprecatedAndHidden"):
            names.append(name)
    return names


def _query_url_length(api_base: str, obj: str, fields: Any) -> int:
    widest = _Query(obj, tuple(fields), "queryAll", "SystemModstamp", "Id").soql(
        datetime(2000, 1, 1), datetime(2000, 1, 1)
    )
    return len(f"{api_base}/queryAll?") + len(urlencode({"q": widest}))


def _page_records(payload: Any, obj: str) -> list[dict[str, Any]]:
    records = payload.get("records") if isinstance(payload, dict) else None
    if not isinstance(records, list):
        raise _error(obj, f"Salesforce {obj}: query result has no records list", "api_error")
    return [
        {k: v for k, v in record.items() if k != "attributes"}
        for record in records
        if isinstance(record, dict)
    ]


def _remember_last_modstamp(page: list[dict[str, Any]], modstamp: str, last_seen: list[datetime]) -> None:
    if page:
        value = page[-1].get(modstamp)
        parsed = parse_source_datetime(value) if isinstance(value, str) else None
        if parsed is not None:
            last_seen.append(_whole_second(parsed))


def api_value_text(value: Any) -> str | None:
    """A JSON value from the API as raw text: 'true'/'false', decimal text of numbers, strings as sent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return json.dumps(value, sort_keys=True, default=str)


def _latest_per_id(records: list[dict[str, Any]], id_field: str) -> list[dict[str, Any]]:
    """One record per Id, the last read (a window restarted after a failure re-reads a few records)."""
    latest = {record.get(id_field): record for record in records}
    return records if len(latest) == len(records) else list(latest.values())


def _records_to_arrow(columns: Mapping[str, str], records: list[dict[str, Any]]) -> pa.Table:
    """One text column per warehouse column, read from the field it maps to (a mapped custom field
    lands under the contract's name)."""
    rows = [{warehouse_column_name(key): value for key, value in record.items()} for record in records]
    return pa.table(
        {
            name: pa.array(
                [api_value_text(row.get(warehouse_column_name(field))) for row in rows], pa.string()
            )
            for name, field in columns.items()
        }
    )
