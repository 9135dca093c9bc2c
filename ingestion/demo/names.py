"""Collision-free fake companies, people and email addresses.

Every company gets a globally unique domain by construction (a bijection from a company serial
onto word combinations), and every person's email local part is unique within its company, so
no two generated emails ever collide by chance -- duplicates exist only where they are planted.
"""

from __future__ import annotations

import math
import random
import unicodedata

from .reference import (
    COMPANY_PREFIXES,
    COMPANY_ROOTS,
    COMPANY_SECTORS,
    COMPANY_SUFFIXES,
    CUSTOMER_TLDS,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
)

_SECTORS = list(dict.fromkeys(COMPANY_SECTORS))
_PREFIXES = list(dict.fromkeys(COMPANY_PREFIXES))
_ROOTS = list(dict.fromkeys(COMPANY_ROOTS))
_DOMAIN_VARIANTS = ["", "-group", "-global", "-hq", "-co"]
_DIMS = [len(_PREFIXES), len(_ROOTS), len(_SECTORS), len(_DOMAIN_VARIANTS), len(CUSTOMER_TLDS)]
DOMAIN_SPACE = math.prod(_DIMS)
_MULT = 2_654_435_761
while math.gcd(_MULT, DOMAIN_SPACE) != 1:
    _MULT += 2
_OFFSET = 48_271

_TRANSLIT = str.maketrans(
    {"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "Æ": "AE", "đ": "d", "Đ": "D"}
)

SECTOR_INDUSTRY = {
    "Logistics": "Transportation",
    "Systems": "Technology",
    "Health": "Healthcare",
    "Foods": "Food & Beverage",
    "Energy": "Energy",
    "Capital": "Finance",
    "Analytics": "Technology",
    "Robotics": "Machinery",
    "Pharma": "Biotechnology",
    "Media": "Media",
    "Motors": "Manufacturing",
    "Telecom": "Telecommunications",
    "Retail": "Retail",
    "Builders": "Construction",
    "Insurance": "Insurance",
    "Software": "Technology",
    "Networks": "Communications",
    "Materials": "Chemicals",
    "Labs": "Biotechnology",
    "Consulting": "Consulting",
    "Partners": "Consulting",
    "Industries": "Manufacturing",
    "Manufacturing": "Manufacturing",
    "Hospitality": "Hospitality",
    "Learning": "Education",
    "Biotech": "Biotechnology",
    "Aerospace": "Engineering",
    "Marine": "Shipping",
    "Textiles": "Apparel",
    "Apparel": "Apparel",
    "Farms": "Agriculture",
    "Utilities": "Utilities",
    "Security": "Technology",
    "Finance": "Banking",
    "Entertainment": "Entertainment",
    "Devices": "Electronics",
    "Semiconductors": "Electronics",
    "Chemicals": "Chemicals",
    "Mobility": "Transportation",
}


def ascii_slug(s: str) -> str:
    s = unicodedata.normalize("NFKD", s.translate(_TRANSLIT))
    return "".join(c for c in s if c.isascii() and c.isalnum()).lower()


class Company:
    __slots__ = ("serial", "name", "domain", "industry", "pattern", "used")

    def __init__(self, serial: int, name: str, domain: str, industry: str, pattern: int):
        self.serial = serial
        self.name = name
        self.domain = domain
        self.industry = industry
        self.pattern = pattern
        self.used: set[str] = set()


def company_from_serial(serial: int, rng: random.Random) -> Company:
    idx = (serial * _MULT + _OFFSET) % DOMAIN_SPACE
    parts = []
    for d in _DIMS:
        idx, r = divmod(idx, d)
        parts.append(r)
    p, r, s, v, t = parts
    prefix, root, sector = _PREFIXES[p], _ROOTS[r], _SECTORS[s]
    domain = f"{prefix.lower()}-{root}-{sector.lower()}{_DOMAIN_VARIANTS[v]}.{CUSTOMER_TLDS[t]}"
    name = f"{prefix}{root} {sector}"
    if rng.random() < 0.7:
        name += " " + rng.choice(COMPANY_SUFFIXES)
    industry = SECTOR_INDUSTRY.get(sector) if rng.random() < 0.85 else rng.choice(INDUSTRIES)
    pattern = rng.choices(range(5), weights=[60, 18, 10, 7, 5])[0]
    return Company(serial, name, domain, industry or "Other", pattern)


class CompanyFactory:
    def __init__(self, next_serial: int = 1):
        self.next_serial = next_serial

    def new(self, rng: random.Random) -> Company:
        s = self.next_serial
        self.next_serial += 1
        if s >= DOMAIN_SPACE:
            raise RuntimeError("company name space exhausted")
        return company_from_serial(s, rng)


def _local_part(first: str, last: str, pattern: int) -> str:
    f, ln = ascii_slug(first) or "x", ascii_slug(last) or "y"
    if pattern == 0:
        return f"{f}.{ln}"
    if pattern == 1:
        return f"{f[0]}{ln}"
    if pattern == 2:
        return f"{f}_{ln}"
    if pattern == 3:
        return f"{ln}.{f}"
    return f"{f}{ln[0]}"


def new_person(company: Company, rng: random.Random) -> tuple[str, str, str]:
    """(first, last, email) with a local part unique within the company (lower case)."""
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    base = _local_part(first, last, company.pattern)
    local = base
    n = 1
    while local in company.used:
        n += 1
        local = f"{base}{n}"
    company.used.add(local)
    return first, last, f"{local}@{company.domain}"


def stored_case(email: str, rng: random.Random, first: str, last: str) -> str:
    """How a (lower-case) email is typed into the CRM: mostly lower case, sometimes Title.Case."""
    x = rng.random()
    if x < 0.86:
        return email
    local, _, domain = email.partition("@")
    if x < 0.96:
        return ".".join(p[:1].upper() + p[1:] for p in local.split(".")) + "@" + domain
    return local.capitalize() + "@" + domain.capitalize()


def case_variant(email: str, rng: random.Random) -> str:
    """A different letter-case spelling of the same address (for planted duplicates)."""
    for _ in range(4):
        x = rng.random()
        if x < 0.4:
            v = email.upper()
        elif x < 0.7:
            local, _, domain = email.partition("@")
            v = local.title() + "@" + domain
        else:
            v = email.lower()
        if v != email or rng.random() < 0.3:
            return v
    return email.swapcase()
