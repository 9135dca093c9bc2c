"""HTTP helpers shared by the API connectors (Salesforce, HubSpot, Google Calendar)."""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def safe_url(url: str) -> str:
    """scheme://host[:port]/path of a URL: no user info, query or fragment."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def insecure_url_problem(url: str, what: str) -> str | None:
    """Why ``url`` must not carry tokens, or None: HTTPS only (plain HTTP to a loopback address,
    for tests), and no credentials inside the URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or not host or parts.username or parts.password:
        return f"{what} {safe_url(url)!r} is not a valid URL without credentials"
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return f"{what} {safe_url(url)!r} must use https"
    return None


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def backoff_seconds(retry: int, base: float, cap: float, jitter: float) -> float:
    """Exponential backoff with jitter: the ``retry``-th wait (1-based) lies between half and all
    of ``min(cap, base * 2 ** (retry - 1))``; ``jitter`` is a number in [0, 1)."""
    ceiling = min(cap, base * 2 ** (retry - 1))
    return ceiling / 2 + jitter * ceiling / 2
