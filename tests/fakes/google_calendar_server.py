"""A fake Google Calendar API v3 (``events.list``) and OAuth token endpoint on 127.0.0.1.

A real :class:`http.server.ThreadingHTTPServer` on an ephemeral port, answering

* ``GET /calendar/v3/calendars/{calendarId}/events`` with ``singleEvents``, ``showDeleted``,
  ``timeMin``, ``timeMax``, ``maxResults``, ``pageToken`` and ``syncToken`` like Google:
  ``{"kind": "calendar#events", "items": [...], "nextPageToken" | "nextSyncToken"}``;
  ``timeMin``/``timeMax``/``orderBy``/``q``/``iCalUID``/``updatedMin``/extended-property
  filters (and ``showDeleted=false``) are refused with a sync token (HTTP 400); an expired
  sync token answers HTTP 410; an unknown page token HTTP 400;
* ``POST /token`` (``grant_type=refresh_token``) issuing bearer tokens checked by the API.

Tests hold the calendars in memory as Google event resources (single events, recurring
masters with ``recurrence: ["RRULE:...", "EXDATE;TZID=...:...", "RDATE..."]`` and exceptions) and
mutate them between syncs:
:meth:`put_event`, :meth:`delete_event`, :meth:`put_instance`, :meth:`cancel_instance`,
:meth:`purge_event`.  With ``singleEvents=true`` masters are expanded with dateutil in
their own time zone (instance ids ``<master>_<UTC start>Z`` / ``<master>_<date>``).  A full
listing is a snapshot: page tokens page through the snapshot taken by the first page,
whose ``nextSyncToken`` is the change counter at that moment; an incremental listing
returns every instance whose resource (or master) changed after the token.  Deleted
items are returned as Google does: ``id`` and ``status: cancelled`` (plus
``recurringEventId``/``originalStartTime`` for instances) unless ``full_tombstones``.

Fault knobs: :meth:`fail_next` (any status, with/without ``Retry-After``, for the API or the
token endpoint), :meth:`invalidate_access_tokens` (next API call answers 401),
:meth:`expire_sync_tokens` (next incremental call answers 410), :meth:`expire_page_tokens`,
``extra_item_fields`` (unknown fields added to every item).  Every request is recorded in
:attr:`requests`.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

API_PREFIX = "/calendar/v3/calendars/"
TOKEN_PATH = "/token"
SYNC_TOKEN_INCOMPATIBLE = (
    "timeMin",
    "timeMax",
    "orderBy",
    "q",
    "iCalUID",
    "updatedMin",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)


@dataclass
class RecordedRequest:
    method: str
    path: str
    calendar_id: str | None
    params: dict[str, str]
    authorization: str | None
    form: dict[str, str] = field(default_factory=dict)
    status: int = 0


@dataclass
class _Fault:
    target: str  # "events" | "token"
    status: int
    retry_after: str | None
    reason: str | None
    message: str


@dataclass
class _Stored:
    resource: dict[str, Any]
    version: int


@dataclass
class _Snapshot:
    calendar_id: str
    signature: tuple[tuple[str, str], ...]
    items: list[dict[str, Any]]
    next_sync_token: str


def google_time(moment: datetime | date, zone: str | None = None) -> dict[str, str]:
    """A Google ``start``/``end`` object: ``{"date"}`` for a date, else ``{"dateTime", "timeZone"}``.

    A naive ``moment`` is wall time in ``zone`` (UTC when ``zone`` is None).
    """
    if not isinstance(moment, datetime):
        return {"date": moment.isoformat()}
    tz = ZoneInfo(zone) if zone else UTC
    aware = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    text = aware.isoformat()
    if zone is None and text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return {"dateTime": text, "timeZone": zone} if zone else {"dateTime": text}


def _instant(value: dict[str, Any]) -> datetime:
    """Start of a Google time object as aware UTC (dates at midnight UTC)."""
    if "dateTime" in value:
        moment = datetime.fromisoformat(value["dateTime"])
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(value.get("timeZone") or "UTC"))
        return moment.astimezone(UTC)
    day = date.fromisoformat(value["date"])
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _instant_or_none(value: Any) -> datetime | None:
    try:
        return _instant(value)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _recurrence_dates(line: str, zone: Any, *, all_day: bool) -> list[datetime]:
    """The moments of an ``RDATE``/``EXDATE`` line (``;TZID=``, ``;VALUE=DATE``, ``Z`` or the series' zone).

    Timed values come back aware (in ``zone`` unless TZID or ``Z`` say otherwise), dates naive.
    """
    head, _, values = line.partition(":")
    params = dict(part.split("=", 1) for part in head.split(";")[1:] if "=" in part)
    tzid = params.get("TZID")
    value_zone = ZoneInfo(tzid) if tzid else zone
    moments = []
    for text in (v.strip() for v in values.split(",")):
        if not text:
            continue
        if len(text) == 8:  # VALUE=DATE
            moment = datetime.strptime(text, "%Y%m%d")
            moments.append(moment if all_day else moment.replace(tzinfo=value_zone))
            continue
        moment = datetime.strptime(text.rstrip("Zz"), "%Y%m%dT%H%M%S")
        moment = moment.replace(tzinfo=UTC) if text[-1] in "Zz" else moment.replace(tzinfo=value_zone)
        moments.append(moment.replace(tzinfo=None) if all_day else moment.astimezone(zone))
    return moments


def _same_key(moment: datetime) -> datetime:
    """Instances compare as instants (timed) or wall dates (all-day, naive)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment


def _instance_suffix(start: dict[str, Any]) -> str:
    if "date" in start and "dateTime" not in start:
        return date.fromisoformat(start["date"]).strftime("%Y%m%d")
    return _instant(start).strftime("%Y%m%dT%H%M%SZ")


class FakeGoogleCalendar:
    """In-memory Google Calendar behind a real HTTP server; use as a context manager."""

    CLIENT_ID = "fake-client-id-4711.apps.googleusercontent.com"
    CLIENT_SECRET = "GOCSPX-fake-client-secret-s3cr3t"
    REFRESH_TOKEN = "1//fake-refresh-token-r3fr3sh-xyz"

    def __init__(
        self,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        refresh_token: str = REFRESH_TOKEN,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.requests: list[RecordedRequest] = []
        self.extra_item_fields: dict[str, Any] = {}
        self.full_tombstones = False
        self.horizon = datetime(2031, 1, 1, tzinfo=UTC)  # singleEvents expansion without timeMax
        self.max_instances = 2000
        self._lock = threading.RLock()
        self._calendars: dict[str, dict[str, _Stored]] = {}
        self._version = 0
        self._sync_epoch: dict[str, int] = {}
        self._snapshots: dict[str, _Snapshot] = {}
        self._snapshot_ids = itertools.count(1)
        self._token_ids = itertools.count(1)
        self._access_tokens: set[str] = set()
        self._faults: deque[_Fault] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeGoogleCalendar:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-google", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGoogleCalendar:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/calendar/v3"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}{TOKEN_PATH}"

    # ------------------------------------------------------------------ data

    def add_calendar(self, calendar_id: str) -> None:
        with self._lock:
            self._calendars.setdefault(calendar_id, {})

    def _bump(self) -> int:
        self._version += 1
        return self._version

    def put_event(self, calendar_id: str, event: dict[str, Any]) -> None:
        """Add or replace an event resource (single event, recurring master or exception)."""
        with self._lock:
            resource = copy.deepcopy(event)
            resource.setdefault("kind", "calendar#event")
            resource.setdefault("status", "confirmed")
            self._calendars.setdefault(calendar_id, {})[resource["id"]] = _Stored(resource, self._bump())

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._calendars[calendar_id][event_id].resource)

    def update_event(self, calendar_id: str, event_id: str, **changes: Any) -> None:
        event = self.get_event(calendar_id, event_id)
        event.update(changes)
        self.put_event(calendar_id, event)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event (or a whole series): it becomes a ``cancelled`` tombstone."""
        self.update_event(calendar_id, event_id, status="cancelled")

    def purge_event(self, calendar_id: str, event_id: str) -> None:
        """Forget an event without a tombstone (Google drops old deletions): only a full sync notices."""
        with self._lock:
            del self._calendars[calendar_id][event_id]

    def put_instance(
        self, calendar_id: str, master_id: str, original_start: dict[str, Any], **changes: Any
    ) -> str:
        """Create/replace the exception of one instance of a series; returns its id."""
        with self._lock:
            master = self._calendars[calendar_id][master_id].resource
            instance = self._instance_of(master, original_start)
            instance.update(changes)
            self.put_event(calendar_id, instance)
            return str(instance["id"])

    def cancel_instance(self, calendar_id: str, master_id: str, original_start: dict[str, Any]) -> str:
        return self.put_instance(calendar_id, master_id, original_start, status="cancelled")

    # ------------------------------------------------------------------ fault knobs

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        reason: str | None = None,
        message: str = "Fake failure",
        target: str = "events",
    ) -> None:
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(target, status, retry_after, reason, message))

    def invalidate_access_tokens(self) -> None:
        with self._lock:
            self._access_tokens.clear()

    def expire_sync_tokens(self, calendar_id: str | None = None) -> None:
        """Every sync token issued so far (for one calendar, or all) answers 410 from now on."""
        with self._lock:
            for name in [calendar_id] if calendar_id else list(self._calendars):
                self._sync_epoch[name] = self._sync_epoch.get(name, 0) + 1

    def expire_page_tokens(self) -> None:
        with self._lock:
            self._snapshots.clear()

    # ------------------------------------------------------------------ inspection

    def event_requests(self, calendar_id: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.calendar_id is not None and (calendar_id is None or r.calendar_id == calendar_id)
            ]

    def token_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == TOKEN_PATH]

    # ------------------------------------------------------------------ expansion

    def _instance_of(self, master: dict[str, Any], start: dict[str, Any]) -> dict[str, Any]:
        base_start = _instant(master["start"])
        duration = _instant(master["end"]) - base_start if master.get("end") else timedelta(0)
        instance = {k: copy.deepcopy(v) for k, v in master.items() if k not in ("recurrence", "etag")}
        instance["id"] = f"{master['id']}_{_instance_suffix(start)}"
        instance["recurringEventId"] = master["id"]
        instance["originalStartTime"] = dict(start)
        instance["start"] = dict(start)
        if "dateTime" in start:
            zone = start.get("timeZone") or master["end"].get("timeZone")
            end = _instant(start) + duration
            instance["end"] = google_time(end.astimezone(ZoneInfo(zone)) if zone else end, zone)
        else:
            end_day = date.fromisoformat(start["date"]) + timedelta(days=duration.days)
            instance["end"] = {"date": end_day.isoformat()}
        return instance

    def _expand(self, master: dict[str, Any], until: datetime) -> list[dict[str, Any]]:
        lines = master.get("recurrence", [])
        rules = [line for line in lines if line.upper().startswith("RRULE:")]
        start = master["start"]
        if "dateTime" in start:
            zone_name = start.get("timeZone")
            zone = ZoneInfo(zone_name) if zone_name else UTC
            first = datetime.fromisoformat(start["dateTime"])
            first = first.replace(tzinfo=zone) if first.tzinfo is None else first.astimezone(zone)
        else:
            zone_name = None
            zone = UTC
            day = date.fromisoformat(start["date"])
            first = datetime(day.year, day.month, day.day)
        starts: set[datetime] = set()
        for rule in rules:
            for count, moment in enumerate(rrulestr(rule, dtstart=first)):
                comparable = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
                if comparable >= until or count >= self.max_instances:
                    break
                starts.add(moment)
        if not rules:
            starts.add(first)
        # RDATE / EXDATE lines (as Google accepts them in ``recurrence``) add / remove instances.
        for line in lines:
            name = line.split(";", 1)[0].split(":", 1)[0].upper()
            if name in ("RDATE", "EXDATE"):
                moments = _recurrence_dates(line, zone, all_day=first.tzinfo is None)
                if name == "RDATE":
                    starts.update(m for m in moments if (m if m.tzinfo else m.replace(tzinfo=UTC)) < until)
                else:
                    excluded = {_same_key(m) for m in moments}
                    starts = {m for m in starts if _same_key(m) not in excluded}
        instances = []
        for moment in sorted(starts):
            if "dateTime" in start:
                instance_start = google_time(moment, zone_name)
            else:
                instance_start = {"date": moment.date().isoformat()}
            instances.append(self._instance_of(master, instance_start))
        return instances

    def _tombstone(self, resource: dict[str, Any]) -> dict[str, Any]:
        if self.full_tombstones:
            return {**resource, "status": "cancelled"}
        out = {
            "kind": "calendar#event",
            "etag": f'"{resource["id"]}-x"',
            "id": resource["id"],
            "status": "cancelled",
        }
        for key in ("recurringEventId", "originalStartTime"):
            if key in resource:
                out[key] = resource[key]
        return out

    def _single_items(self, calendar_id: str, until: datetime) -> list[tuple[dict[str, Any], int]]:
        """(item as returned with singleEvents=true, version) for every instance/event."""
        stored = self._calendars[calendar_id]
        out: list[tuple[dict[str, Any], int]] = []
        for entry in stored.values():
            resource = entry.resource
            if resource.get("recurringEventId"):
                if resource["recurringEventId"] not in stored:
                    out.append((resource, entry.version))  # orphan exception
                continue
            if not resource.get("recurrence"):
                out.append((resource, entry.version))
                continue
            master_cancelled = resource.get("status") == "cancelled"
            for instance in self._expand(resource, until):
                exception = stored.get(instance["id"])
                if exception is not None:
                    item, version = exception.resource, max(exception.version, entry.version)
                else:
                    item, version = instance, entry.version
                if master_cancelled:
                    item = {**item, "status": "cancelled"}
                out.append((item, version))
        return out

    def _present(self, item: dict[str, Any]) -> dict[str, Any]:
        if item.get("status") == "cancelled":
            result = self._tombstone(item)
        else:
            result = copy.deepcopy(item)
            result.setdefault("etag", f'"{item["id"]}"')
        result.update(copy.deepcopy(self.extra_item_fields))
        return result

    # ------------------------------------------------------------------ HTTP

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        form = dict(parse_qsl(body.decode("utf-8"))) if body else {}
        calendar_id = None
        if parts.path.startswith(API_PREFIX) and parts.path.endswith("/events"):
            calendar_id = unquote(parts.path[len(API_PREFIX) : -len("/events")])
        record = RecordedRequest(
            method, parts.path, calendar_id, params, handler.headers.get("Authorization"), form
        )
        with self._lock:
            self.requests.append(record)
            if method == "POST" and parts.path == TOKEN_PATH:
                status, payload, headers = self._token(form)
            elif method == "GET" and calendar_id is not None:
                status, payload, headers = self._events(calendar_id, params, record.authorization)
            else:
                status, payload, headers = 404, _error(404, "Not Found", "notFound"), {}
            record.status = status
        data = json.dumps(payload).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _fault(self, target: str) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        if not self._faults or self._faults[0].target != target:
            return None
        fault = self._faults.popleft()
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if target == "token":
            return fault.status, {"error": fault.reason or "temporarily_unavailable"}, headers
        return fault.status, _error(fault.status, fault.message, fault.reason or "backendError"), headers

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        fault = self._fault("token")
        if fault is not None:
            return fault
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}, {}
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            return 400, {"error": "invalid_grant", "error_description": "Bad Request"}, {}
        token = f"ya29.fake-access-token-{next(self._token_ids)}"
        self._access_tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}, {}

    def _events(
        self, calendar_id: str, params: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        fault = self._fault("events")
        if fault is not None:
            return fault
        token = (authorization or "").removeprefix("Bearer ")
        if token not in self._access_tokens:
            return 401, _error(401, "Request had invalid authentication credentials.", "authError"), {}
        if calendar_id not in self._calendars:
            return 404, _error(404, "Not Found", "notFound"), {}
        try:
            page_size = min(int(params.get("maxResults", "250")), 2500)
        except ValueError:
            return 400, _error(400, "Invalid value for maxResults", "invalid"), {}
        if page_size < 1:
            return 400, _error(400, "Invalid value for maxResults", "invalid"), {}
        sync_token = params.get("syncToken")
        if sync_token is not None:
            clash = [name for name in SYNC_TOKEN_INCOMPATIBLE if name in params]
            if clash or params.get("showDeleted") == "false":
                return 400, _error(400, f"Sync token cannot be combined with {clash or 'showDeleted'}"), {}
        page_token = params.get("pageToken")
        signature = tuple(sorted((k, v) for k, v in params.items() if k != "pageToken"))
        if page_token is not None:
            snapshot_id, _, offset_text = page_token.removeprefix("fake-page~").partition("~")
            snapshot = self._snapshots.get(snapshot_id)
            if snapshot is None or snapshot.calendar_id != calendar_id or snapshot.signature != signature:
                return 400, _error(400, "Invalid page token value.", "invalid"), {}
            return self._page(snapshot_id, snapshot, int(offset_text), page_size)
        if sync_token is not None:
            name, _, version_text = sync_token.removeprefix("fake-sync~").rpartition("~")
            name, _, epoch_text = name.rpartition("~")
            if name != calendar_id or not version_text.isdigit() or not epoch_text.isdigit():
                return 400, _error(400, "Invalid sync token value.", "invalid"), {}
            since = int(version_text)
            if int(epoch_text) != self._sync_epoch.get(calendar_id, 0):
                return (
                    410,
                    _error(
                        410, "Sync token is no longer valid, a full sync is required.", "fullSyncRequired"
                    ),
                    {},
                )
            items = self._changes(calendar_id, params, since)
        else:
            items = self._listing(calendar_id, params)
        snapshot_id = str(next(self._snapshot_ids))
        epoch = self._sync_epoch.get(calendar_id, 0)
        snapshot = _Snapshot(
            calendar_id, signature, items, f"fake-sync~{calendar_id}~{epoch}~{self._version}"
        )
        self._snapshots[snapshot_id] = snapshot
        return self._page(snapshot_id, snapshot, 0, page_size)

    def _page(
        self, snapshot_id: str, snapshot: _Snapshot, offset: int, page_size: int
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        items = snapshot.items[offset : offset + page_size]
        payload: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": '"fake"',
            "summary": snapshot.calendar_id,
            "timeZone": "UTC",
            "accessRole": "owner",
            "defaultReminders": [],
            "items": items,
        }
        if offset + page_size < len(snapshot.items):
            payload["nextPageToken"] = f"fake-page~{snapshot_id}~{offset + page_size}"
        else:
            payload["nextSyncToken"] = snapshot.next_sync_token
        return 200, payload, {}

    def _listing(self, calendar_id: str, params: dict[str, str]) -> list[dict[str, Any]]:
        time_min = datetime.fromisoformat(params["timeMin"]) if "timeMin" in params else None
        time_max = datetime.fromisoformat(params["timeMax"]) if "timeMax" in params else None
        show_deleted = params.get("showDeleted") == "true"
        if params.get("singleEvents") == "true":
            candidates = [item for item, _ in self._single_items(calendar_id, time_max or self.horizon)]
        else:
            candidates = [entry.resource for entry in self._calendars[calendar_id].values()]
        selected = []
        for item in candidates:
            if item.get("status") == "cancelled" and not show_deleted:
                continue
            start = _instant_or_none(item.get("start") or item.get("originalStartTime"))
            end = _instant_or_none(item.get("end")) or start
            if start is not None and end is not None:  # unreadable times: listed (the client must cope)
                if time_min is not None and end <= time_min and not (end == start == time_min):
                    continue
                if time_max is not None and start >= time_max:
                    continue
            selected.append(item)
        epoch = datetime(1, 1, 1, tzinfo=UTC)
        selected.sort(
            key=lambda i: (
                _instant_or_none(i.get("start") or i.get("originalStartTime")) or epoch,
                str(i["id"]),
            )
        )
        return [self._present(item) for item in selected]

    def _changes(self, calendar_id: str, params: dict[str, str], since: int) -> list[dict[str, Any]]:
        if params.get("singleEvents") == "true":
            changed = [
                item for item, version in self._single_items(calendar_id, self.horizon) if version > since
            ]
        else:
            changed = [e.resource for e in self._calendars[calendar_id].values() if e.version > since]
        return [self._present(item) for item in changed]


def _error(code: int, message: str, reason: str = "invalid") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "errors": [{"reason": reason, "message": message}]}}
