"""Reader for the HubSpot CRM API (v3 objects, v4 associations, owners, deal pipelines).

Objects are read incrementally through the search API, one window per sync::

    <modified property> >= cursor - overlap  AND  < sync start  [AND hs_object_id > last id read]
    sorted by hs_object_id

The modified property is ``lastmodifieddate`` for contacts and ``hs_lastmodifieddate`` for every
other object. The search API never returns more than 10,000 results for one query, so paging
stops before that ceiling and the query restarts after the last id read. Sorting by id makes
that id a resume point too: a sync that stops half way resumes its window after the last id
whose batch was committed (see ``ingestion/hubspot_load.py``).

Archived (deleted) records are not searchable: they are listed with ``archived=true``. Deal
stage history comes from batch reads with ``propertiesWithHistory``; associations from the v4
batch association API. Every property value arrives as a string and is kept as text; staging
types it.

Authentication: a private app's access token, or an OAuth app's refresh token (the access token
is refreshed once on HTTP 401). HTTP 429 honours Retry-After when sent, else exponential backoff
with jitter; 5xx and connection failures are retried the same way, up to ``max_retries``.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

import requests

from ingestion.api_http import backoff_seconds, insecure_url_problem, retry_after_seconds, safe_url
from ingestion.crm_load import parse_source_datetime
from ingestion.crm_sql import warehouse_column_name
from ingestion.errors import SourceError

logger = logging.getLogger(__name__)

SOURCE_NAME = "hubspot"
DEFAULT_API_URL = "https://api.hubapi.com"
ENV_PREFIX = "SALESOPS_HUBSPOT_"
DEFAULT_LEAD_SOURCE_PROPERTY = "hs_analytics_source"
SEARCH_PAGE_SIZE = 200  # the search API's largest page
SEARCH_CEILING = 10_000  # the search API answers no further than this many results per query
LIST_PAGE_SIZE = 100
OWNERS_PAGE_SIZE = 500
HISTORY_BATCH_SIZE = 50  # batch reads with propertiesWithHistory take at most 50 ids
ASSOCIATION_BATCH_SIZE = 1000
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
REDACTED = "<redacted>"
HISTORY_PROPERTIES = (
    "dealstage",
    "amount",
    "closedate",
    "hs_deal_stage_probability",
    "hs_manual_forecast_category",
)
RECORD_COLUMNS = ("id", "archived", "archivedat", "createdat", "updatedat")
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class HubSpotObject:
    """A CRM object type read by search: the properties staging needs and its associations."""

    name: str
    modified_property: str
    required: tuple[str, ...]
    associations: tuple[str, ...] = ()

    @property
    def raw_table(self) -> str:
        return raw_table_name(self.name)

    def association_column(self, to_object: str) -> str:
        return f"associations_{to_object}"


_ENGAGEMENT_ASSOCIATIONS = ("contacts", "deals", "companies")


def _engagement(name: str, *properties: str) -> HubSpotObject:
    common = ("hubspot_owner_id", "hs_timestamp", "hs_createdate", "hs_lastmodifieddate")
    return HubSpotObject(name, "hs_lastmodifieddate", (*properties, *common), _ENGAGEMENT_ASSOCIATIONS)


def hubspot_objects(lead_source_property: str = DEFAULT_LEAD_SOURCE_PROPERTY) -> dict[str, HubSpotObject]:
    """The searchable objects, in load order, with the properties the staging models read."""
    objects = [
        HubSpotObject(
            "companies",
            "hs_lastmodifieddate",
            (
                "name",
                "industry",
                "numberofemployees",
                "annualrevenue",
                "country",
                "hubspot_owner_id",
                "createdate",
                "hs_lastmodifieddate",
            ),
        ),
        HubSpotObject(
            "contacts",
            "lastmodifieddate",
            (
                "firstname",
                "lastname",
                "email",
                "jobtitle",
                "company",
                "industry",
                "hs_lead_status",
                "lifecyclestage",
                "hs_lifecyclestage_opportunity_date",
                "hs_lifecyclestage_customer_date",
                "hubspot_owner_id",
                "associatedcompanyid",
                "createdate",
                "lastmodifieddate",
                lead_source_property,
            ),
        ),
        HubSpotObject(
            "deals",
            "hs_lastmodifieddate",
            (
                "dealname",
                "amount",
                "dealstage",
                "pipeline",
                "closedate",
                "dealtype",
                "hs_deal_stage_probability",
                "hs_manual_forecast_category",
                "hs_is_closed",
                "hs_is_closed_won",
                "hubspot_owner_id",
                "createdate",
                "hs_lastmodifieddate",
                lead_source_property,
            ),
            ("companies", "contacts"),
        ),
        _engagement("calls", "hs_call_title", "hs_call_status"),
        _engagement("emails", "hs_email_subject", "hs_email_status"),
        _engagement("meetings", "hs_meeting_title", "hs_meeting_outcome"),
        _engagement("tasks", "hs_task_subject", "hs_task_status"),
    ]
    return {obj.name: obj for obj in objects}


def raw_table_name(name: str) -> str:
    """Name of the warehouse table in schema ``raw`` that holds a HubSpot object or listing."""
    return f"hubspot_{name}"


@dataclass(frozen=True, repr=False)
class HubSpotSettings:
    """A private app's access token, or an OAuth app's client and refresh token."""

    api_url: str = DEFAULT_API_URL
    access_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    lead_source_property: str = DEFAULT_LEAD_SOURCE_PROPERTY
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_retries: int = 6
    backoff_base: float = 1.0  # seconds before the first retry (at most; jitter takes up to half)
    backoff_cap: float = 60.0
    max_retry_after: float = 600.0  # a longer Retry-After fails the load instead of blocking it
    search_ceiling: int = SEARCH_CEILING

    def __post_init__(self) -> None:
        _require_secure_url(self.api_url, "API URL")
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        if not self.access_token and not all(oauth):
            _config_error(
                "set SALESOPS_HUBSPOT_ACCESS_TOKEN (private app) or SALESOPS_HUBSPOT_CLIENT_ID, "
                "SALESOPS_HUBSPOT_CLIENT_SECRET and SALESOPS_HUBSPOT_REFRESH_TOKEN (OAuth app)"
            )
        if not _PROPERTY_NAME.match(self.lead_source_property):
            _config_error(f"lead source property {self.lead_source_property!r} is not a property name")
        if self.max_retries < 0 or self.backoff_base < 0 or self.backoff_cap < 0:
            _config_error("max_retries, backoff_base and backoff_cap must not be negative")
        if self.search_ceiling < SEARCH_PAGE_SIZE:
            _config_error(f"search_ceiling must be at least {SEARCH_PAGE_SIZE}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> HubSpotSettings:
        env = os.environ if environ is None else environ

        def value(name: str) -> str:
            return env.get(f"{ENV_PREFIX}{name}", "").strip()

        return cls(
            api_url=value("API_URL") or DEFAULT_API_URL,
            access_token=value("ACCESS_TOKEN"),
            client_id=value("CLIENT_ID"),
            client_secret=value("CLIENT_SECRET"),
            refresh_token=value("REFRESH_TOKEN"),
            lead_source_property=value("LEAD_SOURCE_PROPERTY") or DEFAULT_LEAD_SOURCE_PROPERTY,
            **overrides,
        )

    @property
    def uses_oauth(self) -> bool:
        return bool(self.refresh_token and self.client_id and self.client_secret)

    @property
    def secrets(self) -> tuple[str, ...]:
        values = (self.access_token, self.client_id, self.client_secret, self.refresh_token)
        return tuple(s for s in values if s)

    def __repr__(self) -> str:
        return (
            f"HubSpotSettings(api_url={safe_url(self.api_url)!r}, "
            f"auth={'oauth' if self.uses_oauth else 'private app'!r}, credentials={REDACTED!r}, "
            f"max_retries={self.max_retries})"
        )

    __str__ = __repr__


def _config_error(problem: str) -> NoReturn:
    raise SourceError(SOURCE_NAME, f"HubSpot settings: {problem}", rule="configuration")


def _require_secure_url(url: str, what: str) -> None:
    problem = insecure_url_problem(url, what)
    if problem:
        _config_error(problem)


def _error(obj: str, problem: str, rule: str) -> SourceError:
    return SourceError(SOURCE_NAME, problem, table=obj, rule=rule)


class _SearchCeiling(Exception):
    """The search API refused to page further: the query restarts after the last id read."""


class HubSpotClient:
    """Authenticated JSON requests with token refresh, retries and backoff."""

    def __init__(
        self,
        settings: HubSpotSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._jitter = jitter
        self._session = session or requests.Session()
        self._access_token: str | None = None if settings.uses_oauth else settings.access_token

    def __repr__(self) -> str:
        return f"HubSpotClient({self.settings!r})"

    def close(self) -> None:
        self._session.close()

    def scrub(self, text: str) -> str:
        for secret in (*self.settings.secrets, self._access_token or ""):
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def get(self, path: str, obj: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, obj, params=params)

    def post(self, path: str, obj: str, body: Mapping[str, Any]) -> Any:
        return self.request("POST", path, obj, body=body)

    def request(
        self,
        method: str,
        path: str,
        obj: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """The JSON answer of an API path; 200 and 207 (multi-status batch answers) succeed."""
        if self._access_token is None:
            self._refresh_token(obj)
        response = self._send(method, path, obj, params=params, body=body)
        if response.status_code not in (200, 207):
            self._raise_api_error(response, obj, has_after=bool(body and body.get("after")))
        return self._json(response, obj)

    def _refresh_token(self, obj: str) -> None:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret,
            "refresh_token": self.settings.refresh_token,
        }
        response = self._send("POST", "/oauth/v1/token", obj, form=form, authorized=False)
        if response.status_code != 200:
            problem = f"HubSpot OAuth token refresh failed: HTTP {response.status_code} {_category(response)}"
            raise _error(obj, self.scrub(problem.strip()), "authentication")
        payload = self._json(response, obj)
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise _error(obj, "HubSpot OAuth token response has no access token", "authentication")
        self._access_token = token
        logger.info("HubSpot: access token obtained for %s", safe_url(self.settings.api_url))

    def _send(
        self,
        method: str,
        path: str,
        obj: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        authorized: bool = True,
    ) -> requests.Response:
        """One request with retries; returns the last response, raises only once retries run out."""
        retries = 0
        refreshed = False
        while True:
            response, failure = self._attempt(method, path, obj, params, body, form, authorized)
            if response is not None and response.status_code == 401 and authorized:
                if self.settings.uses_oauth and not refreshed:
                    logger.info("HubSpot %s: HTTP 401, refreshing the access token", obj)
                    self._refresh_token(obj)
                    refreshed = True
                    continue
                return response
            if response is not None and response.status_code not in RETRYABLE_STATUSES:
                return response
            retries += 1
            if retries > self.settings.max_retries:
                problem = f"HubSpot {obj}: {failure}, still failing after {self.settings.max_retries} retries"
                raise _error(obj, self.scrub(problem), "retries_exhausted")
            delay = self._retry_delay(retries, response, obj, failure)
            logger.warning(
                "HubSpot %s: %s, retry %d of %d in %.2f s",
                obj,
                failure,
                retries,
                self.settings.max_retries,
                delay,
            )
            self._sleep(delay)

    def _attempt(
        self,
        method: str,
        path: str,
        obj: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        form: Mapping[str, str] | None,
        authorized: bool,
    ) -> tuple[requests.Response | None, str]:
        headers = {"Accept": "application/json"}
        if authorized:
            headers["Authorization"] = f"Bearer {self._access_token}"
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        try:
            response = self._session.request(
                method,
                f"{self.settings.api_url}{path}",
                headers=headers,
                params=params,
                json=body,
                data=form,
                timeout=timeout,
            )
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            return None, f"connection failed ({type(exc).__name__})"
        except requests.RequestException as exc:
            raise _error(obj, f"HubSpot {obj}: request failed ({type(exc).__name__})", "api_error") from None
        return response, f"HTTP {response.status_code} {_category(response)}".strip()

    def _retry_delay(self, retries: int, response: requests.Response | None, obj: str, failure: str) -> float:
        retry_after = retry_after_seconds(
            response.headers.get("Retry-After") if response is not None else None
        )
        if retry_after is not None:
            if retry_after > self.settings.max_retry_after:
                problem = f"HubSpot {obj}: {failure} asks to retry after {retry_after:g} s, too long to wait"
                raise _error(obj, problem, "retries_exhausted")
            return retry_after
        return backoff_seconds(retries, self.settings.backoff_base, self.settings.backoff_cap, self._jitter())

    def _raise_api_error(self, response: requests.Response, obj: str, has_after: bool) -> NoReturn:
        category = _category(response)
        if response.status_code == 400 and category == "VALIDATION_ERROR" and has_after:
            raise _SearchCeiling
        rule = {401: "authentication", 403: "permission", 404: "required_table"}.get(
            response.status_code, "api_error"
        )
        message = self.scrub(_message(response))
        problem = f"HubSpot {obj}: HTTP {response.status_code} {category}{': ' if message else ''}{message}"
        raise _error(obj, problem, rule)

    def _json(self, response: requests.Response, obj: str) -> Any:
        try:
            return json.loads(response.content)
        except ValueError:
            raise _error(
                obj, f"HubSpot {obj}: HTTP {response.status_code} answer is not JSON", "api_error"
            ) from None


def _error_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _category(response: requests.Response) -> str:
    if response.status_code < 400:
        return ""
    body = _error_body(response)
    code = body.get("category") or body.get("errorType") or body.get("status") or ""
    return code if isinstance(code, str) and re.fullmatch(r"[A-Za-z0-9_.]{1,80}", code) else ""


def _message(response: requests.Response) -> str:
    message = _error_body(response).get("message", "")
    return " ".join(message.split())[:200] if isinstance(message, str) else ""


def epoch_ms(moment: datetime) -> str:
    """A naive-UTC or aware datetime as the epoch milliseconds the search API filters on."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp() * 1000))


@dataclass
class SearchPage:
    """One page of search results, flattened to rows, and the id to resume after."""

    rows: list[dict[str, str | None]]
    last_id: int | None


@dataclass
class HubSpotReader:
    """Reads HubSpot objects, owners, pipelines, histories and associations as text rows."""

    client: HubSpotClient
    objects: dict[str, HubSpotObject] = field(default_factory=dict)
    _properties: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.objects:
            self.objects = hubspot_objects(self.client.settings.lead_source_property)

    def close(self) -> None:
        self.client.close()

    def properties(self, obj: HubSpotObject) -> list[str]:
        """Every readable property of the object; the ones staging needs must be among them."""
        if obj.name not in self._properties:
            payload = self.client.get(f"/crm/v3/properties/{obj.name}", obj.name)
            results = payload.get("results") if isinstance(payload, dict) else None
            if not isinstance(results, list):
                raise _error(obj.name, f"HubSpot {obj.name}: properties answer has no results", "api_error")
            names = sorted(
                {
                    item["name"]
                    for item in results
                    if isinstance(item, dict) and isinstance(item.get("name"), str) and not item.get("hidden")
                }
            )
            missing = [name for name in obj.required if name not in names]
            if missing:
                raise _error(
                    obj.name,
                    f"required property {', '.join(repr(m) for m in missing)} missing from HubSpot object "
                    f"{obj.name}",
                    "required_column",
                )
            self._properties[obj.name] = names
        return self._properties[obj.name]

    def columns(self, obj: HubSpotObject) -> list[str]:
        """The raw table's columns: record fields, properties, association id lists."""
        properties = [warehouse_column_name(name) for name in self.properties(obj)]
        extra = [c for c in properties if c not in RECORD_COLUMNS]
        return [*RECORD_COLUMNS, *extra, *(obj.association_column(to) for to in obj.associations)]

    def search_pages(
        self, obj: HubSpotObject, low: datetime | None, high: datetime, after_id: int | None
    ) -> Iterator[SearchPage]:
        """Records modified in [low, high) with an id above ``after_id``, in id order."""
        properties = self.properties(obj)
        while True:
            query_started_after = after_id
            body = _search_body(obj, properties, low, high, after_id)
            while True:
                try:
                    payload = self.client.post(f"/crm/v3/objects/{obj.name}/search", obj.name, body)
                except _SearchCeiling:
                    break
                rows = [_record_row(record, obj.name) for record in _results(payload, obj.name)]
                if rows:
                    after_id = _numeric_id(rows[-1]["id"], obj.name)
                yield SearchPage(self._with_associations(obj, rows), after_id)
                offset = _next_after(payload)
                if offset is None:
                    return
                if _beyond_ceiling(offset, self.client.settings.search_ceiling):
                    break
                body = {**body, "after": offset}
            if after_id == query_started_after:
                raise _error(obj.name, f"HubSpot {obj.name}: search paging made no progress", "api_error")
            logger.info("HubSpot %s: restarting the search after id %s (result ceiling)", obj.name, after_id)

    def archived_pages(self, obj: HubSpotObject) -> Iterator[list[dict[str, str | None]]]:
        """Every archived record, with the properties staging needs."""
        properties = ",".join(sorted({*obj.required, obj.modified_property}))
        params = {"archived": "true", "limit": str(LIST_PAGE_SIZE), "properties": properties}
        yield from self._listing(f"/crm/v3/objects/{obj.name}", obj.name, params, _record_row)

    def owners(self) -> Iterator[list[dict[str, str | None]]]:
        """Active owners, then archived (deactivated) ones."""
        for archived in ("false", "true"):
            params = {"archived": archived, "limit": str(OWNERS_PAGE_SIZE)}
            yield from self._listing("/crm/v3/owners", "owners", params, _owner_row)

    def deal_stages(self) -> list[dict[str, str | None]]:
        payload = self.client.get("/crm/v3/pipelines/deals", "deal_stages")
        rows = []
        for pipeline in _results(payload, "deal_stages"):
            for stage in pipeline.get("stages") or []:
                if isinstance(stage, dict):
                    rows.append(_stage_row(pipeline, stage))
        return rows

    def deal_histories(self, deal_ids: Sequence[str]) -> list[dict[str, str | None]]:
        """Every recorded value of the tracked deal properties, one row per value."""
        rows: list[dict[str, str | None]] = []
        for start in range(0, len(deal_ids), HISTORY_BATCH_SIZE):
            body = {
                "inputs": [{"id": deal_id} for deal_id in deal_ids[start : start + HISTORY_BATCH_SIZE]],
                "properties": ["hs_object_id"],
                "propertiesWithHistory": list(HISTORY_PROPERTIES),
            }
            payload = self.client.post("/crm/v3/objects/deals/batch/read", "deals", body)
            for record in _results(payload, "deals"):
                rows.extend(_history_rows(record))
        return rows

    def associations(self, from_object: str, to_object: str, ids: Sequence[str]) -> dict[str, str]:
        """Associated ids of each record as comma-separated text, primary association first.

        A record with more associations than one answer holds has ``paging.next.after`` in its
        result: it is asked for again with that ``after`` until its last page is read.
        """
        path = f"/crm/v4/associations/{from_object}/{to_object}/batch/read"
        targets: dict[str, list[dict[str, Any]]] = {}
        inputs: list[dict[str, str]] = [{"id": record_id} for record_id in ids]
        asked: set[tuple[str, str]] = set()
        while inputs:
            batch, inputs = inputs[:ASSOCIATION_BATCH_SIZE], inputs[ASSOCIATION_BATCH_SIZE:]
            payload = self.client.post(path, from_object, {"inputs": batch})
            for result in _results(payload, from_object):
                source = result.get("from", {}).get("id") if isinstance(result.get("from"), dict) else None
                if source is None:
                    continue
                page = [t for t in result.get("to") or [] if isinstance(t, dict) and "toObjectId" in t]
                targets.setdefault(str(source), []).extend(page)
                after = _next_after(result)
                if after is not None and (str(source), after) not in asked:
                    asked.add((str(source), after))
                    inputs.append({"id": str(source), "after": after})
        found: dict[str, str] = {}
        for source, listed in targets.items():
            if listed:
                listed.sort(key=lambda t: (not _is_primary(t), _sort_number(t["toObjectId"])))
                found[source] = ",".join(dict.fromkeys(str(t["toObjectId"]) for t in listed))
        return found

    def earliest_created_at(self) -> datetime | None:
        """The oldest creation date among contacts and deals (where the CRM's history starts)."""
        earliest: datetime | None = None
        for name in ("contacts", "deals"):
            body = {
                "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
                "properties": ["createdate"],
                "limit": 1,
            }
            payload = self.client.post(f"/crm/v3/objects/{name}/search", name, body)
            records = _results(payload, name)
            value = records[0].get("properties", {}).get("createdate") if records else None
            parsed = parse_source_datetime(value) if isinstance(value, str) else None
            if parsed is not None and (earliest is None or parsed < earliest):
                earliest = parsed
        return earliest

    def _with_associations(self, obj: HubSpotObject, rows: list[dict[str, str | None]]) -> list[dict]:
        ids = [str(row["id"]) for row in rows]
        for to_object in obj.associations:
            associated = self.associations(obj.name, to_object, ids) if ids else {}
            column = obj.association_column(to_object)
            for row in rows:
                row[column] = associated.get(str(row["id"]))
        return rows

    def _listing(
        self,
        path: str,
        obj: str,
        params: dict[str, str],
        to_row: Callable[[dict[str, Any], str], dict[str, str | None]],
    ) -> Iterator[list[dict[str, str | None]]]:
        after: str | None = None
        while True:
            payload = self.client.get(path, obj, {**params, **({"after": after} if after else {})})
            yield [to_row(record, obj) for record in _results(payload, obj)]
            after = _next_after(payload)
            if after is None:
                return


def _search_body(
    obj: HubSpotObject, properties: Sequence[str], low: datetime | None, high: datetime, after_id: int | None
) -> dict[str, Any]:
    filters = [{"propertyName": obj.modified_property, "operator": "LT", "value": epoch_ms(high)}]
    if low is not None:
        filters.append({"propertyName": obj.modified_property, "operator": "GTE", "value": epoch_ms(low)})
    if after_id is not None:
        filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(after_id)})
    return {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": SEARCH_PAGE_SIZE,
    }


def _results(payload: Any, obj: str) -> list[dict[str, Any]]:
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        raise _error(obj, f"HubSpot {obj}: answer has no results list", "api_error")
    return [record for record in results if isinstance(record, dict)]


def _next_after(payload: Any) -> str | None:
    paging = payload.get("paging") if isinstance(payload, dict) else None
    next_page = paging.get("next") if isinstance(paging, dict) else None
    after = next_page.get("after") if isinstance(next_page, dict) else None
    return str(after) if after not in (None, "") else None


def _beyond_ceiling(offset: str, ceiling: int) -> bool:
    return offset.isdigit() and int(offset) + SEARCH_PAGE_SIZE > ceiling


def _numeric_id(value: str | None, obj: str) -> int:
    if value is None or not value.isdigit():
        raise _error(obj, f"HubSpot {obj}: record id {value!r} is not numeric", "required_column")
    return int(value)


def _sort_number(value: Any) -> tuple[int, str]:
    text = str(value)
    return (int(text), text) if text.isdigit() else (0, text)


def _is_primary(target: dict[str, Any]) -> bool:
    types = target.get("associationTypes") or []
    return any(isinstance(t, dict) and str(t.get("label") or "").lower() == "primary" for t in types)


def value_text(value: Any) -> str | None:
    """A JSON value as raw text: strings as sent, booleans 'true'/'false', others as JSON."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _record_row(record: dict[str, Any], obj: str) -> dict[str, str | None]:
    record_id = record.get("id")
    if record_id in (None, ""):
        raise _error(obj, f"HubSpot {obj}: a record has no id", "required_column")
    properties = record.get("properties") or {}
    row: dict[str, str | None] = {
        warehouse_column_name(name): value_text(value) for name, value in properties.items()
    }
    row.update(
        {
            "id": str(record_id),
            "archived": value_text(bool(record.get("archived", False))),
            "archivedat": value_text(record.get("archivedAt")),
            "createdat": value_text(record.get("createdAt")),
            "updatedat": value_text(record.get("updatedAt")),
        }
    )
    return row


def _owner_row(owner: dict[str, Any], obj: str) -> dict[str, str | None]:
    if owner.get("id") in (None, ""):
        raise _error(obj, "HubSpot owners: an owner has no id", "required_column")
    teams = [team for team in owner.get("teams") or [] if isinstance(team, dict)]
    primary = next((team for team in teams if team.get("primary")), teams[0] if teams else {})
    return {
        "id": str(owner["id"]),
        "email": value_text(owner.get("email")),
        "firstname": value_text(owner.get("firstName")),
        "lastname": value_text(owner.get("lastName")),
        "userid": value_text(owner.get("userId")),
        "archived": value_text(bool(owner.get("archived", False))),
        "createdat": value_text(owner.get("createdAt")),
        "updatedat": value_text(owner.get("updatedAt")),
        "team_id": value_text(primary.get("id")),
        "team_name": value_text(primary.get("name")),
        "teams": json.dumps(teams, sort_keys=True) if teams else None,
    }


def _stage_row(pipeline: dict[str, Any], stage: dict[str, Any]) -> dict[str, str | None]:
    metadata = stage.get("metadata") if isinstance(stage.get("metadata"), dict) else {}
    return {
        "id": value_text(stage.get("id")),
        "label": value_text(stage.get("label")),
        "displayorder": value_text(stage.get("displayOrder")),
        "isclosed": value_text(metadata.get("isClosed")),
        "probability": value_text(metadata.get("probability")),
        "archived": value_text(bool(stage.get("archived", False))),
        "createdat": value_text(stage.get("createdAt")),
        "updatedat": value_text(stage.get("updatedAt")),
        "pipeline_id": value_text(pipeline.get("id")),
        "pipeline_label": value_text(pipeline.get("label")),
        "pipeline_displayorder": value_text(pipeline.get("displayOrder")),
    }


def _history_rows(record: dict[str, Any]) -> list[dict[str, str | None]]:
    deal_id = str(record.get("id"))
    rows = []
    for name, entries in (record.get("propertiesWithHistory") or {}).items():
        for position, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            rows.append(
                {
                    "id": f"{deal_id}:{name}:{position}",
                    "deal_id": deal_id,
                    "property": name,
                    "value": value_text(entry.get("value")),
                    "timestamp": value_text(entry.get("timestamp")),
                    "sourcetype": value_text(entry.get("sourceType")),
                    "sourceid": value_text(entry.get("sourceId")),
                    "updatedbyuserid": value_text(entry.get("updatedByUserId")),
                    "position": str(position),
                }
            )
    return rows


OWNER_COLUMNS = (
    "id",
    "email",
    "firstname",
    "lastname",
    "userid",
    "archived",
    "createdat",
    "updatedat",
    "team_id",
    "team_name",
    "teams",
)
STAGE_COLUMNS = (
    "id",
    "label",
    "displayorder",
    "isclosed",
    "probability",
    "archived",
    "createdat",
    "updatedat",
    "pipeline_id",
    "pipeline_label",
    "pipeline_displayorder",
)
HISTORY_COLUMNS = (
    "id",
    "deal_id",
    "property",
    "value",
    "timestamp",
    "sourcetype",
    "sourceid",
    "updatedbyuserid",
    "position",
)
