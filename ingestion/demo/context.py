"""Shared generation state passed to every generation unit."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from .ics import CalendarWriter
from .ids import IdFactory
from .names import CompanyFactory
from .org import CampaignIndex, Org
from .profiles import Profile
from .sqlite_writer import CrmWriter
from .truth import TruthAccumulator

WINDOW_DAYS = 730

# planted defect rates (per eligible record)
P_LEAD_UNOWNED = 0.012
P_LEAD_DUPLICATE = 0.014
P_LEAD_NO_ACTIVITY = 0.022
P_CONTACT_MISSING_EMAIL = 0.025
P_CONTACT_DUPLICATE = 0.012
P_ACCOUNT_MISSING_INDUSTRY = 0.02
P_OPP_MISSING_AMOUNT = 0.015
P_OPEN_OPP_PAST_CLOSE = 0.3  # of opportunities still open at as_of (~1-2% of all)


@dataclass
class Ctx:
    seed: int
    profile: Profile
    as_of: date
    ids: IdFactory
    companies: CompanyFactory
    writer: CrmWriter
    truth: TruthAccumulator
    cal: CalendarWriter
    org: Org
    campaigns: CampaignIndex
    total_ae_slots: int
    empty_contact_email_used: bool = False
    planted: dict = field(default_factory=dict)

    @property
    def as_of_ts(self) -> datetime:
        return datetime(self.as_of.year, self.as_of.month, self.as_of.day)

    @property
    def window_start(self) -> datetime:
        return self.as_of_ts - timedelta(days=WINDOW_DAYS)

    def rng(self, *parts) -> random.Random:
        return make_rng(self.seed, self.profile.name, self.as_of, *parts)

    def write(self, batches: dict[str, list[tuple]]) -> None:
        self.writer.insert_many(batches)
        for table, rows in batches.items():
            if rows:
                self.truth.observe(table, rows)

    def p(self, name: str, base: float) -> float:
        """Planting probability: the first eligible record of each defect is always planted, so
        even the XS profile contains every defect; afterwards the base rate applies."""
        return base if self.planted.get(name) else 1.0

    def plant(self, name: str, *ids: str) -> None:
        """Records a deliberately planted defect (for tests: every reported id is planted)."""
        self.planted.setdefault(name, set()).update(ids)


def make_rng(seed: int, profile: str, as_of: date, *parts) -> random.Random:
    key = "|".join(str(p) for p in (seed, profile, as_of.isoformat(), *parts))
    return random.Random(key)


def new_uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper() + "@acme-sales.example"
