"""Google Calendar API v3 connector: mailbox calendars into the same raw tables as the ICS loader.

One ``events.list`` stream per mailbox (calendar id = mailbox email) is turned into rows of
:data:`~ingestion.calendar_ics.OCCURRENCE_COLUMNS` / ``ATTENDEE_COLUMNS`` / ``PROBLEM_COLUMNS``
and written to ``raw.calendar_occurrences``, ``raw.calendar_attendees`` and
``quality.calendar_problems`` with ``source_file = 'google/<mailbox>'`` and
``mailbox = <mailbox>``.  ``uid`` is the event's ``iCalUID`` and ``occurrence_start`` the
instance start, so staging de-duplicates a meeting across mailboxes (and across ICS and
Google sources) exactly as for ICS files.

Sync protocol
-------------
* Always ``singleEvents=true`` (Google expands recurring series: instances carry
  ``recurringEventId`` and ``originalStartTime``) and ``showDeleted=true`` (required with a
  sync token; on a full sync it makes a resync keep the ``CANCELLED`` rows an incremental
  sync would have kept, instead of sweeping them).
* **Full sync**: ``timeMin``/``timeMax`` = the :class:`ExpansionWindow`, paged with
  ``pageToken`` until the last page, which carries ``nextSyncToken``.
* **Incremental sync**: ``syncToken`` only.  Google refuses ``timeMin``, ``timeMax``,
  ``orderBy``, ``q``, ``iCalUID``, ``updatedMin`` and the extended-property filters together
  with a sync token (and ``showDeleted=false``), so changes arrive for any time and are
  filtered to the window here: an instance that moves out of the window loses its row.
* **Window change**: new instances entering a moved window are not "changes" for Google,
  so the window of the last full sync is kept in the state and any other window starts a
  new full sync of the mailbox (the loader's window moves by whole months).
* **410 Gone** (expired sync token, or an expired page token from an earlier run): the
  mailbox starts a new full sync.  Its rows are *not* deleted up front: every key row
  carries the full sync's ``generation``, and the last page of a full sync deletes the
  mailbox's rows (and keys) not seen by that generation (mark and sweep).  The end state is
  that of "delete everything, then reload", but the previous rows stay readable until the
  new full sync has completed, and a resync that dies half way loses nothing.
* **Page-level commits**: each page's rows, its problems and the mailbox state (phase,
  sync token, next page token, generation, window) are written in one transaction.  A
  run killed mid-mailbox resumes with the stored page token (plus the same ``syncToken``
  for an incremental sync, or the same ``timeMin``/``timeMax`` for a full one).  Applying a
  page twice is harmless because every write is an upsert; if the stored page token is
  refused (HTTP 400 or 410) an incremental sync restarts from its stored sync token and a
  full sync starts over with a new generation (the sweep removes what the abandoned one
  left behind).  The sync token therefore only advances with the page that carries it.

Upsert key
----------
``meta.google_event_keys`` maps each Google event id (one per instance with
``singleEvents=true``; the id of an instance is stable even when the instance is moved)
to the ``(uid, occurrence_start)`` of its raw row.  An item replaces the row its id had
before *and* any row of the mailbox with its new ``(uid, occurrence_start)``, so
``(source_file, uid, occurrence_start)`` - the key staging joins attendees on - stays
unique.  ``raw.calendar_occurrences`` keeps its fixed columns.

Tombstones (``status: cancelled``): Google guarantees only ``id`` on deleted items.  The
row already loaded for that id is kept with status ``CANCELLED`` (like a cancelled ICS
override; its attendees are kept too).  A cancelled item for an id never loaded becomes
a ``CANCELLED`` row only when it carries ``iCalUID`` and ``start``; otherwise it is ignored
(an instance deleted before it was ever seen: the equivalent of an ICS ``EXDATE``).

Mapping
-------
``start``/``end``: ``dateTime`` (RFC 3339 with offset; a missing offset is read in
``timeZone``, else UTC) becomes naive UTC; ``date`` is all-day at midnight UTC with an
exclusive ``end.date`` (as ICS).  A missing ``end`` means one day (all-day) or zero length
(timed), as in ICS.  ``tzid`` = ``start.timeZone``; without it ``UTC`` for a zero offset,
else ``None``; all-day: ``None``.  ``is_recurring`` = has ``recurringEventId``;
``recurrence_id`` = ``originalStartTime`` in UTC (instance start when absent).  ``status``
upper-case (default ``CONFIRMED``); ``created`` -> ``created_at``, ``updated`` ->
``last_modified_at``; ``dtstamp`` is ``None`` (Google has no DTSTAMP); ``sequence``
(default/broken: 0); ``organizer.email`` lower-cased.  Attendees: ``email`` lower-cased
(first listing wins, no email: skipped), ``responseStatus`` accepted/declined/tentative/
needsAction -> ACCEPTED/DECLINED/TENTATIVE/NEEDS-ACTION, ``optional`` -> ``OPT-PARTICIPANT``
(else ``REQ-PARTICIPANT``), ``displayName`` -> ``common_name``.  Google has no CATEGORIES:
``extendedProperties.shared.categories`` (comma-separated) is read when present and
normalised like ICS (trimmed, de-duplicated case-insensitively, joined with ``,``).
Unknown fields are ignored.

Problems (rows in ``quality.calendar_problems``, the event is skipped and the load goes
on, as in the ICS reader): ``missing_field`` names the missing field (``id``,
``iCalUID``, ``start``, ``start.dateTime``/``start.date``); ``invalid_event`` an unreadable
value.  A mailbox's problems are cleared when a full sync of it starts; identical problems
are not repeated.  A page without both ``nextPageToken`` and ``nextSyncToken``, or that is
not JSON, is a :class:`SourceError` for the mailbox.

HTTP: OAuth refresh-token flow (token refreshed once on 401), 429/5xx (and Google's 403
``rateLimitExceeded``) retried honouring ``Retry-After`` or with exponential backoff and
jitter, up to ``max_attempts``; then a one-line :class:`SourceError` naming the mailbox
and the HTTP status.  Credentials are never put in URLs, logs or messages, and every
message built from a response is scrubbed of them.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa
import requests

from ingestion.api_http import backoff_seconds, retry_after_seconds
from ingestion.calendar_ics import RULE_INVALID_EVENT, ExpansionWindow
from ingestion.calendar_load import _DDL as CALENDAR_DDL
from ingestion.calendar_load import (
    ATTENDEE_SCHEMA,
    ATTENDEES_TABLE,
    OCCURRENCE_SCHEMA,
    OCCURRENCES_TABLE,
    CalendarLoadResult,
    _insert_rows,
)
from ingestion.errors import SourceError
from ingestion.warehouse import Warehouse, new_batch_id, utc_now

SOURCE_NAME = "google_calendar"
SOURCE_FILE_PREFIX = "google/"
DEFAULT_API_URL = "https://www.googleapis.com/calendar/v3"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"
DEFAULT_PAGE_SIZE = 250
MAX_PAGE_SIZE = 2500
RULE_MISSING_FIELD = "missing_field"
STATE_TABLE = "meta.google_calendar_state"
KEYS_TABLE = "meta.google_event_keys"
PHASE_FULL = "full"
PHASE_INCREMENTAL = "incremental"
MAX_RESTARTS_PER_MAILBOX = 3

ENV_CLIENT_ID = "SALESOPS_GOOGLE_CLIENT_ID"
ENV_CLIENT_SECRET = "SALESOPS_GOOGLE_CLIENT_SECRET"
ENV_REFRESH_TOKEN = "SALESOPS_GOOGLE_REFRESH_TOKEN"
ENV_MAILBOXES = "SALESOPS_GOOGLE_MAILBOXES"
ENV_API_URL = "SALESOPS_GOOGLE_API_URL"
ENV_TOKEN_URL = "SALESOPS_GOOGLE_TOKEN_URL"

_PARTSTATS = {
    "accepted": "ACCEPTED",
    "declined": "DECLINED",
    "tentative": "TENTATIVE",
    "needsaction": "NEEDS-ACTION",
}
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

logger = logging.getLogger(__name__)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def source_file_for(mailbox: str) -> str:
    """The ``source_file`` of a mailbox's rows (``google/<mailbox>``)."""
    return f"{SOURCE_FILE_PREFIX}{mailbox}"


def normalize_mailboxes(mailboxes: Iterable[str]) -> tuple[str, ...]:
    """Trimmed, lower-cased, de-duplicated (first wins), empty entries dropped."""
    seen: dict[str, None] = {}
    for mailbox in mailboxes:
        text = mailbox.strip().lower()
        if text:
            seen.setdefault(text, None)
    return tuple(seen)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, repr=False)
class GoogleCalendarSettings:
    """OAuth client, refresh token and mailboxes; ``repr``/``str`` never show the secrets."""

    client_id: str
    client_secret: str
    refresh_token: str
    mailboxes: tuple[str, ...]
    api_url: str = DEFAULT_API_URL
    token_url: str = DEFAULT_TOKEN_URL

    def __post_init__(self) -> None:
        object.__setattr__(self, "mailboxes", normalize_mailboxes(self.mailboxes))
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))
        for name, url in (("api_url", self.api_url), ("token_url", self.token_url)):
            if not url.startswith(("https://", "http://")):
                raise SourceError(SOURCE_NAME, f"{name} must be an http(s) URL", rule="settings")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GoogleCalendarSettings:
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for name in (ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_REFRESH_TOKEN, ENV_MAILBOXES):
            value = env.get(name, "").strip()
            if not value:
                raise SourceError(SOURCE_NAME, f"environment variable {name} is not set", rule="settings")
            values[name] = value
        mailboxes = normalize_mailboxes(values[ENV_MAILBOXES].split(","))
        if not mailboxes:
            raise SourceError(SOURCE_NAME, f"environment variable {ENV_MAILBOXES} lists no mailbox")
        return cls(
            client_id=values[ENV_CLIENT_ID],
            client_secret=values[ENV_CLIENT_SECRET],
            refresh_token=values[ENV_REFRESH_TOKEN],
            mailboxes=mailboxes,
            api_url=env.get(ENV_API_URL, "").strip() or DEFAULT_API_URL,
            token_url=env.get(ENV_TOKEN_URL, "").strip() or DEFAULT_TOKEN_URL,
        )

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.client_id, self.client_secret, self.refresh_token) if s)

    def __repr__(self) -> str:
        return (
            f"GoogleCalendarSettings(client_id='***', client_secret='***', refresh_token='***', "
            f"mailboxes={self.mailboxes!r}, api_url={self.api_url!r}, token_url={self.token_url!r})"
        )

    __str__ = __repr__


# --------------------------------------------------------------------------- HTTP client


class GoogleApiError(SourceError):
    """An HTTP error answer that is not retried (or no longer); ``status`` is the HTTP status."""

    def __init__(self, status: int, problem: str) -> None:
        self.status = status
        super().__init__(SOURCE_NAME, problem, rule="google_api")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.problem))


class GoogleAuthError(GoogleApiError):
    """The OAuth token endpoint refused the refresh token: no mailbox can be read."""


class EventsClient(Protocol):
    """What the loader needs: one ``events.list`` call, raising :class:`GoogleApiError`."""

    def list_events(self, calendar_id: str, params: Mapping[str, str]) -> dict[str, Any]: ...


class GoogleCalendarClient:
    """``events.list`` over HTTP with the OAuth refresh-token flow, retries and backoff.

    ``sleep`` and ``jitter`` (a ``random()``-like callable) are injectable for tests.  The
    n-th retry waits ``Retry-After`` seconds when the answer has one (capped at
    ``max_retry_after``), else ``d/2 + d/2 * jitter()`` with ``d = min(backoff_max,
    backoff_base * 2 ** (n - 1))``.  ``max_attempts`` counts every request, the first one
    included; the single token refresh after a 401 is not counted.
    """

    def __init__(
        self,
        settings: GoogleCalendarSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        max_attempts: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 64.0,
        max_retry_after: float = 900.0,
        timeout: tuple[float, float] = (10.0, 60.0),
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.settings = settings
        self._session = session or requests.Session()
        self._sleep = sleep
        self._jitter = jitter
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.timeout = timeout
        self._access_token: str | None = None
        self._expires_at = 0.0
        self._old_tokens: list[str] = []

    def __repr__(self) -> str:
        return (
            f"GoogleCalendarClient(api_url={self.settings.api_url!r}, mailboxes={self.settings.mailboxes!r})"
        )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GoogleCalendarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public

    def list_events(self, calendar_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.settings.api_url}/calendars/{quote(calendar_id, safe='')}/events"
        what = f"events.list for mailbox '{calendar_id}'"
        response = self._request("GET", url, what, params=dict(params), authorized=True)
        return self._json_object(response, what)

    # -- internals

    def redact(self, text: str) -> str:
        """``text`` without any credential (client id/secret, refresh and access tokens)."""
        secrets = [*self.settings.secrets(), *self._old_tokens]
        if self._access_token:
            secrets.append(self._access_token)
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _json_object(self, response: requests.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise GoogleApiError(response.status_code, f"{what}: answer is not JSON") from None
        if not isinstance(body, dict):
            raise GoogleApiError(response.status_code, f"{what}: answer is not a JSON object")
        return body

    def _token(self) -> str:
        if self._access_token is None or time.monotonic() >= self._expires_at:
            self._refresh()
        assert self._access_token is not None
        return self._access_token

    def _refresh(self) -> None:
        if self._access_token:
            self._old_tokens.append(self._access_token)
        self._access_token = None
        what = "OAuth token refresh"
        response = self._request(
            "POST",
            self.settings.token_url,
            what,
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.settings.refresh_token,
                "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret,
            },
            authorized=False,
        )
        body = self._json_object(response, what)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise GoogleAuthError(response.status_code, f"{what}: answer has no 'access_token'")
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        self._access_token = token
        self._expires_at = time.monotonic() + max(lifetime - 60.0, 0.0)

    def _request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        authorized: bool,
    ) -> requests.Response:
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            headers = {"Accept": "application/json"}
            if authorized:
                headers["Authorization"] = f"Bearer {self._token()}"
            try:
                response = self._session.request(
                    method, url, params=params, data=data, headers=headers, timeout=self.timeout
                )
            except requests.RequestException as err:  # connection, timeout, broken transfer
                problem = f"{what} failed: {type(err).__name__}"
                if attempt >= self.max_attempts:
                    raise GoogleApiError(0, f"{problem} after {attempt} attempts") from None
                self._wait(attempt, None, problem)
                continue
            status = response.status_code
            if status < 400:
                return response
            if status == 401 and authorized and not refreshed:
                refreshed = True
                attempt -= 1
                logger.info("%s: HTTP 401, refreshing the access token once", what)
                self._refresh()
                continue
            message, reason = self._error_details(response)
            retryable = status in _RETRY_STATUSES or (status == 403 and reason in _RATE_LIMIT_REASONS)
            detail = f"{what} failed with HTTP {status}"
            if retryable and attempt < self.max_attempts:
                self._wait(attempt, response.headers.get("Retry-After"), detail)
                continue
            if retryable:
                detail += f" after {attempt} attempts"
            if status == 401 and authorized:
                detail += " even after refreshing the access token"
            if message:
                detail += f": {message}"
            if not authorized and status in (400, 401, 403):
                raise GoogleAuthError(status, detail)
            raise GoogleApiError(status, detail)

    def _error_details(self, response: requests.Response) -> tuple[str, str]:
        """Google's error message (scrubbed, short) and first reason, if the body has them."""
        try:
            body = response.json()
        except ValueError:
            return "", ""
        if not isinstance(body, dict):
            return "", ""
        error = body.get("error")
        message, reason = "", ""
        if isinstance(error, dict):
            message = str(error.get("message") or "")
            errors = error.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                reason = str(errors[0].get("reason") or "")
        elif isinstance(error, str):  # OAuth token endpoint: {"error": "invalid_grant", ...}
            message = error
        return _one_line(self.redact(message), 200), reason

    def _wait(self, attempt: int, retry_after: str | None, detail: str) -> None:
        delay = retry_after_seconds(retry_after)
        if delay is not None:
            delay = min(delay, self.max_retry_after)
        else:
            delay = backoff_seconds(attempt, self.backoff_base, self.backoff_max, self._jitter())
        logger.warning(
            "%s; retrying in %.1f s (attempt %d of %d)", detail, delay, attempt + 1, self.max_attempts
        )
        self._sleep(delay)


# --------------------------------------------------------------------------- event mapping


class _FieldProblem(Exception):
    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True)
class _Upsert:
    event_id: str
    uid: str
    start: datetime
    end: datetime
    recurring_event_id: str | None
    cancelled: bool
    occurrence: tuple  # OCCURRENCE_COLUMNS order
    attendees: tuple[tuple, ...]  # ATTENDEE_COLUMNS order


@dataclass(frozen=True)
class _Tombstone:
    event_id: str
    updated: datetime | None
    full: _Upsert | None  # the row to insert when the id was never loaded (needs iCalUID and start)


@dataclass
class _Page:
    upserts: list[_Upsert] = field(default_factory=list)
    tombstones: list[_Tombstone] = field(default_factory=list)
    problems: list[tuple] = field(default_factory=list)  # PROBLEM_COLUMNS order


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _parse_instant(value: Any, field_name: str) -> datetime:
    """An RFC 3339 timestamp (``created``, ``updated``, ``dateTime``) as aware or naive datetime."""
    if not isinstance(value, str):
        raise _FieldProblem(RULE_INVALID_EVENT, f"field '{field_name}' is not a string")
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise _FieldProblem(
            RULE_INVALID_EVENT,
            f"field '{field_name}' is not an RFC 3339 date-time ({_one_line(value, 60)!r})",
        ) from None


def _optional_stamp(item: Mapping[str, Any], name: str) -> datetime | None:
    """``created``/``updated`` as naive UTC; missing or unreadable: ``None`` (as ICS)."""
    value = item.get(name)
    if value is None:
        return None
    try:
        moment = _parse_instant(value, name)
    except _FieldProblem:
        return None
    return _naive_utc(moment) if moment.tzinfo is not None else moment


def _event_time(value: Any, field_name: str) -> tuple[datetime, bool, str | None]:
    """(naive UTC start, is_all_day, tzid) of a Google ``start``/``end``/``originalStartTime``."""
    if not isinstance(value, Mapping):
        raise _FieldProblem(RULE_INVALID_EVENT, f"field '{field_name}' is not an object")
    if value.get("dateTime") is not None:
        moment = _parse_instant(value["dateTime"], f"{field_name}.dateTime")
        zone_name = value.get("timeZone")
        tzid = zone_name if isinstance(zone_name, str) and zone_name else None
        if moment.tzinfo is None:
            try:
                zone = ZoneInfo(tzid) if tzid else UTC
            except (ZoneInfoNotFoundError, ValueError):
                zone = UTC
            moment = moment.replace(tzinfo=zone)
        elif tzid is None and moment.utcoffset() == timedelta(0):
            tzid = "UTC"
        return _naive_utc(moment), False, tzid
    if value.get("date") is not None:
        text = value["date"]
        try:
            day = date.fromisoformat(text.strip()) if isinstance(text, str) else None
        except ValueError:
            day = None
        if day is None:
            raise _FieldProblem(RULE_INVALID_EVENT, f"field '{field_name}.date' is not a date")
        return datetime(day.year, day.month, day.day), True, None
    raise _FieldProblem(
        RULE_MISSING_FIELD, f"missing required field '{field_name}.dateTime' or '{field_name}.date'"
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _email(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return text.strip().lower() or None


def _categories(item: Mapping[str, Any]) -> str | None:
    properties = item.get("extendedProperties")
    shared = properties.get("shared") if isinstance(properties, Mapping) else None
    raw = shared.get("categories") if isinstance(shared, Mapping) else None
    if not isinstance(raw, str):
        return None
    categories: dict[str, str] = {}
    for part in raw.split(","):
        category = part.strip()
        if category and category.lower() not in categories:
            categories[category.lower()] = category
    return ",".join(categories.values()) or None


def _sequence(value: Any) -> int:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else 0
    except (TypeError, ValueError):
        return 0


def _attendees(item: Mapping[str, Any], source_file: str, uid: str, start: datetime) -> tuple[tuple, ...]:
    listed = item.get("attendees")
    if not isinstance(listed, list):
        return ()
    rows: dict[str, tuple] = {}
    for attendee in listed:
        if not isinstance(attendee, Mapping):
            continue
        address = _email(attendee.get("email"))
        if address is None or address in rows:
            continue
        response = str(attendee.get("responseStatus") or "needsAction")
        partstat = _PARTSTATS.get(response.lower(), response.upper())
        role = "OPT-PARTICIPANT" if attendee.get("optional") is True else "REQ-PARTICIPANT"
        name = attendee.get("displayName")
        common_name = name if isinstance(name, str) and name else None
        rows[address] = (source_file, uid, start, address, partstat, role, common_name)
    return tuple(rows.values())


def _describe(mailbox: str, event_id: str | None) -> str:
    return (
        f"google event '{event_id}' in mailbox '{mailbox}'"
        if event_id
        else f"google event in mailbox '{mailbox}'"
    )


def _full_row(
    item: Mapping[str, Any], event_id: str, mailbox: str, source_file: str, cancelled: bool
) -> _Upsert:
    uid = item.get("iCalUID")
    if not isinstance(uid, str) or not uid.strip():
        raise _FieldProblem(RULE_MISSING_FIELD, "missing required field 'iCalUID'")
    uid = uid.strip()
    if item.get("start") is None:
        raise _FieldProblem(RULE_MISSING_FIELD, "missing required field 'start'")
    start, all_day, tzid = _event_time(item["start"], "start")
    if item.get("end") is None:
        end = start + timedelta(days=1) if all_day else start
    else:
        end, _, _ = _event_time(item["end"], "end")
    recurring_event_id = _text(item.get("recurringEventId")) or None
    recurrence_id: datetime | None = None
    if recurring_event_id is not None:
        original = item.get("originalStartTime")
        recurrence_id = _event_time(original, "originalStartTime")[0] if original is not None else start
    status = "CANCELLED" if cancelled else (str(item.get("status") or "").strip().upper() or "CONFIRMED")
    organizer = item.get("organizer")
    occurrence = (
        source_file,
        mailbox,
        uid,
        start,
        end,
        all_day,
        recurring_event_id is not None,
        recurrence_id,
        status,
        _text(item.get("summary")),
        _text(item.get("location")),
        _email(organizer.get("email")) if isinstance(organizer, Mapping) else None,
        _categories(item),
        _optional_stamp(item, "created"),
        _optional_stamp(item, "updated"),
        None,  # dtstamp: Google has none
        _sequence(item.get("sequence")),
        tzid if not all_day else None,
    )
    return _Upsert(
        event_id=event_id,
        uid=uid,
        start=start,
        end=end,
        recurring_event_id=recurring_event_id,
        cancelled=cancelled,
        occurrence=occurrence,
        attendees=_attendees(item, source_file, uid, start),
    )


def map_items(items: Sequence[Any], mailbox: str, source_file: str | None = None) -> _Page:
    """Upserts, tombstones and problem rows of one page of ``events.list`` items.

    An id listed twice in the page keeps its last listing.
    """
    source_file = source_file or source_file_for(mailbox)
    page = _Page()
    by_id: dict[str, _Upsert | _Tombstone] = {}
    for item in items:
        if not isinstance(item, Mapping):
            page.problems.append(
                (
                    source_file,
                    None,
                    RULE_INVALID_EVENT,
                    f"{_describe(mailbox, None)}: item is not a JSON object",
                )
            )
            continue
        raw_uid = item.get("iCalUID")
        uid_hint = (raw_uid.strip() or None) if isinstance(raw_uid, str) else None
        event_id = item.get("id")
        if not isinstance(event_id, str) or not event_id.strip():
            detail = f"{_describe(mailbox, None)}"
            detail += f" (iCalUID '{uid_hint}')" if uid_hint else ""
            page.problems.append(
                (source_file, uid_hint, RULE_MISSING_FIELD, f"{detail}: missing required field 'id'; skipped")
            )
            continue
        event_id = event_id.strip()
        cancelled = str(item.get("status") or "").strip().lower() == "cancelled"
        try:
            if cancelled:
                try:
                    full: _Upsert | None = _full_row(item, event_id, mailbox, source_file, True)
                except _FieldProblem:
                    full = None  # a bare tombstone: only the id is guaranteed
                by_id.pop(event_id, None)
                by_id[event_id] = _Tombstone(event_id, _optional_stamp(item, "updated"), full)
            else:
                upsert = _full_row(item, event_id, mailbox, source_file, False)
                by_id.pop(event_id, None)
                by_id[event_id] = upsert
        except _FieldProblem as problem:
            page.problems.append(
                (
                    source_file,
                    uid_hint,
                    problem.rule,
                    f"{_describe(mailbox, event_id)}: {problem.detail}; skipped",
                )
            )
    for entry in by_id.values():
        if isinstance(entry, _Upsert):
            page.upserts.append(entry)
        else:
            page.tombstones.append(entry)
    return page


# --------------------------------------------------------------------------- warehouse state


_GOOGLE_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
        mailbox VARCHAR, source_file VARCHAR, phase VARCHAR, sync_token VARCHAR, page_token VARCHAR,
        generation BIGINT, window_start TIMESTAMP, window_end TIMESTAMP, updated_at TIMESTAMP,
        last_full_sync_at TIMESTAMP)""",
    f"""CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (
        mailbox VARCHAR, event_id VARCHAR, uid VARCHAR, occurrence_start TIMESTAMP,
        recurring_event_id VARCHAR, generation BIGINT)""",
)


@dataclass(frozen=True)
class _SyncState:
    phase: str
    sync_token: str | None
    page_token: str | None
    generation: int
    window_start: datetime
    window_end: datetime
    last_full_sync_at: datetime | None = None


def _read_state(connection: duckdb.DuckDBPyConnection, mailbox: str) -> _SyncState | None:
    row = connection.execute(
        f"SELECT phase, sync_token, page_token, generation, window_start, window_end, last_full_sync_at "
        f"FROM {STATE_TABLE} WHERE mailbox = ?",
        [mailbox],
    ).fetchone()
    if row is None or row[0] not in (PHASE_FULL, PHASE_INCREMENTAL):
        return None
    return _SyncState(row[0], row[1], row[2], int(row[3] or 0), row[4], row[5], row[6])


def _write_state(connection: duckdb.DuckDBPyConnection, mailbox: str, state: _SyncState) -> None:
    connection.execute(f"DELETE FROM {STATE_TABLE} WHERE mailbox = ?", [mailbox])
    connection.execute(
        f"INSERT INTO {STATE_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            mailbox,
            source_file_for(mailbox),
            state.phase,
            state.sync_token,
            state.page_token,
            state.generation,
            state.window_start,
            state.window_end,
            utc_now(),
            state.last_full_sync_at,
        ],
    )


def _fresh_full_sync(previous: _SyncState | None, window: tuple[datetime, datetime]) -> _SyncState:
    generation = (previous.generation if previous else 0) + 1
    last = previous.last_full_sync_at if previous else None
    return _SyncState(PHASE_FULL, None, None, generation, window[0], window[1], last)


def _delete_mailbox(connection: duckdb.DuckDBPyConnection, mailbox: str) -> None:
    source_file = source_file_for(mailbox)
    for table in (f"raw.{OCCURRENCES_TABLE}", f"raw.{ATTENDEES_TABLE}", "quality.calendar_problems"):
        connection.execute(f"DELETE FROM {table} WHERE source_file = ?", [source_file])
    connection.execute(f"DELETE FROM {KEYS_TABLE} WHERE mailbox = ?", [mailbox])
    connection.execute(f"DELETE FROM {STATE_TABLE} WHERE mailbox = ?", [mailbox])


def _in_window(start: datetime, end: datetime, window: tuple[datetime, datetime]) -> bool:
    """Overlaps ``[window_start, window_end)``; a zero-length event must start inside it."""
    if end > start:
        return start < window[1] and end > window[0]
    return window[0] <= start < window[1]


def _register(connection: duckdb.DuckDBPyConnection, name: str, columns: dict[str, pa.Array]) -> None:
    connection.register(name, pa.table(columns))


def _apply_page(
    connection: duckdb.DuckDBPyConnection,
    mailbox: str,
    page: _Page,
    state_after: _SyncState,
    *,
    batch_id: str,
    clear_problems: bool,
    sweep: bool,
) -> None:
    """Write one page and the state that follows it in a single transaction."""
    source_file = source_file_for(mailbox)
    window = (state_after.window_start, state_after.window_end)
    generation = state_after.generation
    loaded_at = utc_now()
    connection.begin()
    try:
        if clear_problems:
            connection.execute("DELETE FROM quality.calendar_problems WHERE source_file = ?", [source_file])
        upserts = list(page.upserts)
        if page.tombstones:
            ids = [t.event_id for t in page.tombstones]
            known = {
                row[0]
                for row in connection.execute(
                    f"SELECT event_id FROM {KEYS_TABLE} WHERE mailbox = ? AND event_id IN "
                    f"(SELECT unnest(?::VARCHAR[]))",
                    [mailbox, ids],
                ).fetchall()
            }
            marks = [t for t in page.tombstones if t.event_id in known]
            upserts.extend(t.full for t in page.tombstones if t.event_id not in known and t.full is not None)
            if marks:
                _register(
                    connection,
                    "_g_tombstones",
                    {
                        "event_id": pa.array([t.event_id for t in marks], pa.string()),
                        "updated": pa.array([t.updated for t in marks], pa.timestamp("us")),
                    },
                )
                try:
                    connection.execute(
                        f"""UPDATE raw.{OCCURRENCES_TABLE} AS o
                        SET status = 'CANCELLED', last_modified_at = coalesce(s.updated, o.last_modified_at),
                            _loaded_at = $loaded_at, _batch_id = $batch_id
                        FROM (SELECT k.uid, k.occurrence_start, t.updated FROM {KEYS_TABLE} k
                              JOIN _g_tombstones t ON k.event_id = t.event_id WHERE k.mailbox = $mailbox) AS s
                        WHERE o.source_file = $source_file AND o.uid = s.uid
                        AND o.occurrence_start = s.occurrence_start""",
                        {
                            "loaded_at": loaded_at,
                            "batch_id": batch_id,
                            "mailbox": mailbox,
                            "source_file": source_file,
                        },
                    )
                    connection.execute(
                        f"UPDATE {KEYS_TABLE} SET generation = ? WHERE mailbox = ? "
                        "AND event_id IN (SELECT event_id FROM _g_tombstones)",
                        [generation, mailbox],
                    )
                finally:
                    connection.unregister("_g_tombstones")
        if upserts:
            _apply_upserts(connection, mailbox, upserts, window, generation, batch_id, loaded_at)
        for problem in page.problems:
            connection.execute(
                """INSERT INTO quality.calendar_problems
                SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (
                    SELECT 1 FROM quality.calendar_problems WHERE source_file = ?
                    AND uid IS NOT DISTINCT FROM ? AND rule = ? AND detail = ?)""",
                [*problem, batch_id, loaded_at, *problem],
            )
        if sweep:
            connection.execute(
                f"DELETE FROM {KEYS_TABLE} WHERE mailbox = ? AND generation < ?", [mailbox, generation]
            )
            for table in (f"raw.{OCCURRENCES_TABLE}", f"raw.{ATTENDEES_TABLE}"):
                connection.execute(
                    f"""DELETE FROM {table} AS o WHERE o.source_file = ? AND NOT EXISTS (
                        SELECT 1 FROM {KEYS_TABLE} k WHERE k.mailbox = ? AND k.uid = o.uid
                        AND k.occurrence_start = o.occurrence_start)""",
                    [source_file, mailbox],
                )
        _write_state(connection, mailbox, state_after)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


def _apply_upserts(
    connection: duckdb.DuckDBPyConnection,
    mailbox: str,
    upserts: list[_Upsert],
    window: tuple[datetime, datetime],
    generation: int,
    batch_id: str,
    loaded_at: datetime,
) -> None:
    source_file = source_file_for(mailbox)
    winners: dict[tuple[str, datetime], _Upsert] = {}
    for upsert in upserts:
        if _in_window(upsert.start, upsert.end, window):
            winners.pop((upsert.uid, upsert.start), None)
            winners[(upsert.uid, upsert.start)] = upsert  # same natural key twice: the last wins
    kept = {id(u) for u in winners.values()}
    _register(
        connection,
        "_g_upserts",
        {
            "event_id": pa.array([u.event_id for u in upserts], pa.string()),
            "uid": pa.array([u.uid for u in upserts], pa.string()),
            "occurrence_start": pa.array([u.start for u in upserts], pa.timestamp("us")),
            "recurring_event_id": pa.array([u.recurring_event_id for u in upserts], pa.string()),
            "keep": pa.array([id(u) in kept for u in upserts], pa.bool_()),
        },
    )
    try:
        replaced = f"""SELECT k.uid, k.occurrence_start FROM {KEYS_TABLE} k
            JOIN _g_upserts u ON k.event_id = u.event_id WHERE k.mailbox = ?
            UNION ALL SELECT uid, occurrence_start FROM _g_upserts WHERE keep"""
        for table in (f"raw.{OCCURRENCES_TABLE}", f"raw.{ATTENDEES_TABLE}"):
            connection.execute(
                f"""DELETE FROM {table} AS o WHERE o.source_file = ? AND EXISTS (
                    SELECT 1 FROM ({replaced}) AS d
                    WHERE d.uid = o.uid AND d.occurrence_start = o.occurrence_start)""",
                [source_file, mailbox],
            )
        connection.execute(
            f"""DELETE FROM {KEYS_TABLE} AS k WHERE k.mailbox = ? AND (
                k.event_id IN (SELECT event_id FROM _g_upserts)
                OR EXISTS (SELECT 1 FROM _g_upserts u WHERE u.keep AND u.uid = k.uid
                           AND u.occurrence_start = k.occurrence_start))""",
            [mailbox],
        )
        connection.execute(
            f"""INSERT INTO {KEYS_TABLE} SELECT ?, event_id, uid, occurrence_start, recurring_event_id, ?
            FROM _g_upserts WHERE keep""",
            [mailbox, generation],
        )
    finally:
        connection.unregister("_g_upserts")
    rows = list(winners.values())
    _insert_rows(
        connection,
        f"raw.{OCCURRENCES_TABLE}",
        [u.occurrence for u in rows],
        OCCURRENCE_SCHEMA,
        loaded_at,
        batch_id,
    )
    _insert_rows(
        connection,
        f"raw.{ATTENDEES_TABLE}",
        [a for u in rows for a in u.attendees],
        ATTENDEE_SCHEMA,
        loaded_at,
        batch_id,
    )


# --------------------------------------------------------------------------- loader


@dataclass
class GoogleCalendarLoadResult(CalendarLoadResult):
    """:class:`CalendarLoadResult` with one "file" per mailbox, plus sync counters.

    ``files_total``: mailboxes asked for; ``files_parsed``: mailboxes synced without error;
    ``files_unchanged``: of these, incremental syncs that received no item;
    ``files_removed``: mailboxes no longer asked for, whose rows were deleted.
    """

    full_syncs: int = 0
    pages: int = 0
    items: int = 0


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _params(state: _SyncState, page_size: int) -> dict[str, str]:
    params = {"singleEvents": "true", "showDeleted": "true", "maxResults": str(page_size)}
    if state.phase == PHASE_FULL:
        params["timeMin"] = _rfc3339(state.window_start.replace(tzinfo=UTC))
        params["timeMax"] = _rfc3339(state.window_end.replace(tzinfo=UTC))
    else:
        assert state.sync_token is not None
        params["syncToken"] = state.sync_token
    if state.page_token:
        params["pageToken"] = state.page_token
    return params


def _page_tokens(body: Mapping[str, Any], mailbox: str) -> tuple[list[Any], str | None, str | None]:
    items = body.get("items", [])
    if not isinstance(items, list):
        raise SourceError(SOURCE_NAME, f"events.list for mailbox '{mailbox}': field 'items' is not a list")
    next_page = body.get("nextPageToken")
    next_sync = body.get("nextSyncToken")
    if isinstance(next_page, str) and next_page:
        return items, next_page, None
    if isinstance(next_sync, str) and next_sync:
        return items, None, next_sync
    raise SourceError(
        SOURCE_NAME,
        f"events.list for mailbox '{mailbox}': page has neither 'nextPageToken' nor 'nextSyncToken'",
    )


@dataclass
class _MailboxOutcome:
    pages: int = 0
    items: int = 0
    full_syncs: int = 0
    incremental: bool = False


def _sync_mailbox(
    connection: duckdb.DuckDBPyConnection,
    client: EventsClient,
    mailbox: str,
    window: tuple[datetime, datetime],
    page_size: int,
    batch_id: str,
) -> _MailboxOutcome:
    outcome = _MailboxOutcome()
    state = _read_state(connection, mailbox)
    if state is None or (state.window_start, state.window_end) != window:
        if state is not None:
            logger.info("google calendar mailbox '%s': window changed, full sync", mailbox)
        state = _fresh_full_sync(state, window)
    outcome.incremental = state.phase == PHASE_INCREMENTAL
    outcome.full_syncs = int(state.phase == PHASE_FULL)
    restarts = 0
    resumed_page = state.page_token is not None  # a page token committed by an earlier run
    while True:
        try:
            body = client.list_events(mailbox, _params(state, page_size))
        except GoogleApiError as err:
            stale_page = resumed_page and err.status in (400, 410)
            gone = err.status == 410 and state.phase == PHASE_INCREMENTAL
            if not (stale_page or gone) or restarts >= MAX_RESTARTS_PER_MAILBOX:
                raise
            restarts += 1
            resumed_page = False
            if state.phase == PHASE_INCREMENTAL and not gone:
                logger.info(
                    "google calendar mailbox '%s': stored page token refused, re-reading changes", mailbox
                )
                state = replace(state, page_token=None)
            else:
                logger.info(
                    "google calendar mailbox '%s': HTTP %d, starting a full sync", mailbox, err.status
                )
                state = _fresh_full_sync(state, window)
                outcome.full_syncs += 1
                outcome.incremental = False
            continue
        resumed_page = False
        items, next_page, next_sync = _page_tokens(body, mailbox)
        page = map_items(items, mailbox)
        fresh_full = state.phase == PHASE_FULL and state.page_token is None
        if next_page is not None:
            after = replace(state, page_token=next_page)
        else:
            after = _SyncState(
                PHASE_INCREMENTAL,
                next_sync,
                None,
                state.generation,
                state.window_start,
                state.window_end,
                utc_now() if state.phase == PHASE_FULL else state.last_full_sync_at,
            )
        _apply_page(
            connection,
            mailbox,
            page,
            after,
            batch_id=batch_id,
            clear_problems=fresh_full,
            sweep=state.phase == PHASE_FULL and next_page is None,
        )
        outcome.pages += 1
        outcome.items += len(items)
        state = after
        if next_page is None:
            return outcome


def load_google_calendars(
    client: EventsClient,
    mailboxes: Sequence[str],
    warehouse: Warehouse,
    window: ExpansionWindow,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    remove_missing: bool = True,
) -> GoogleCalendarLoadResult:
    """Sync each mailbox's primary calendar into the raw calendar tables.

    Each page commits on its own (with the mailbox's sync state).  A mailbox that fails
    with a :class:`SourceError` keeps what it committed, is reported in ``errors`` (one
    line each) and does not stop the others; a refused refresh token
    (:class:`GoogleAuthError`) stops the load.  With ``remove_missing``, mailboxes synced
    before but not listed now lose their rows and state (like removed ICS files).
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    wanted = normalize_mailboxes(mailboxes)
    result = GoogleCalendarLoadResult(batch_id=new_batch_id(), files_total=len(wanted))
    bounds = (_naive_utc(window.start), _naive_utc(window.end))
    with warehouse.connect() as connection:
        for statement in (*CALENDAR_DDL, *_GOOGLE_DDL):
            connection.execute(statement)
        if remove_missing:
            known = [row[0] for row in connection.execute(f"SELECT mailbox FROM {STATE_TABLE}").fetchall()]
            for mailbox in sorted(set(known) - set(wanted)):
                connection.begin()
                _delete_mailbox(connection, mailbox)
                connection.commit()
                result.files_removed += 1
        for mailbox in wanted:
            try:
                outcome = _sync_mailbox(connection, client, mailbox, bounds, page_size, result.batch_id)
            except GoogleAuthError:
                raise
            except SourceError as err:
                logger.warning("google calendar mailbox '%s' not synced: %s", mailbox, err.problem)
                result.errors.append(err.problem)
                continue
            result.files_parsed += 1
            result.full_syncs += outcome.full_syncs
            result.pages += outcome.pages
            result.items += outcome.items
            if outcome.incremental and outcome.items == 0:
                result.files_unchanged += 1
            logger.info(
                "google calendar mailbox '%s': %s, %d pages, %d items",
                mailbox,
                "incremental sync" if outcome.incremental else "full sync",
                outcome.pages,
                outcome.items,
            )
        result.occurrences_in_raw = warehouse.row_count(connection, "raw", OCCURRENCES_TABLE)
        result.attendees_in_raw = warehouse.row_count(connection, "raw", ATTENDEES_TABLE)
        result.problems = warehouse.row_count(connection, "quality", "calendar_problems")
    return result


def google_sync_error(errors: list[str]) -> SourceError | None:
    """One error for the run: the first failed mailbox, and how many more failed."""
    if not errors:
        return None
    more = f" (and {len(errors) - 1} more failed Google mailboxes)" if len(errors) > 1 else ""
    return SourceError(SOURCE_NAME, f"{errors[0]}{more}", rule="google_sync")
