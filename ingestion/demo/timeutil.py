"""Time helpers: all internal datetimes are *naive UTC* unless named ``*_local``."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from .reference import TZ_REGION, holidays

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def to_local(t: datetime, tz: str) -> datetime:
    return t.replace(tzinfo=UTC).astimezone(zone(tz)).replace(tzinfo=None)


def to_utc(t_local: datetime, tz: str) -> datetime:
    return t_local.replace(tzinfo=zone(tz)).astimezone(UTC).replace(tzinfo=None)


@cache
def _holidays(region: str, year: int) -> frozenset[date]:
    return frozenset(holidays(region, year))


def is_holiday(d: date, tz: str) -> bool:
    return d in _holidays(TZ_REGION[tz], d.year)


def is_business_day(d: date, tz: str) -> bool:
    return d.weekday() < 5 and d not in _holidays(TZ_REGION[tz], d.year)


def business_slot(
    rng: random.Random, d: date, tz: str, start_h: float = 8.5, end_h: float = 17.5
) -> datetime:
    """A random UTC moment inside local business hours on local day ``d``."""
    minutes = int(start_h * 60 + rng.random() * (end_h - start_h) * 60)
    local = datetime(d.year, d.month, d.day, minutes // 60, minutes % 60, rng.randrange(60))
    return to_utc(local, tz)


def next_business_day(d: date, tz: str) -> date:
    d += DAY
    while not is_business_day(d, tz):
        d += DAY
    return d


def business_moment(rng: random.Random, t: datetime, tz: str) -> datetime:
    """``t`` if it falls in the owner's working hours, else early on the next business day."""
    loc = to_local(t, tz)
    d = loc.date()
    if is_business_day(d, tz) and 8 <= loc.hour < 18:
        return t
    if not is_business_day(d, tz) or loc.hour >= 18:
        d = next_business_day(d, tz)
    local = datetime(d.year, d.month, d.day, 8, 0) + timedelta(
        minutes=rng.randrange(5, 100), seconds=rng.randrange(60)
    )
    return to_utc(local, tz)


def random_business_time(rng: random.Random, lo: datetime, hi: datetime, tz: str) -> datetime:
    """A business-hours moment between lo and hi (UTC); falls back to a uniform time."""
    span = (hi - lo).total_seconds()
    if span <= 0:
        return lo
    for _ in range(4):
        t = lo + timedelta(seconds=rng.random() * span)
        d = to_local(t, tz).date()
        if is_business_day(d, tz):
            s = business_slot(rng, d, tz)
            if lo <= s < hi:
                return s
    return lo + timedelta(seconds=rng.random() * span)


def quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def quarter_end(d: date) -> date:
    m = 3 * ((d.month - 1) // 3) + 3
    return (date(d.year + (m == 12), m % 12 + 1, 1)) - DAY


def month_end(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1) - DAY


def add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, 1)


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)
