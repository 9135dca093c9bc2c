"""Deterministic 18-character Salesforce-style record Ids.

An Id is ``<3-char key prefix><2-char instance>0<9-char base62 serial>`` (15 chars, case
sensitive) followed by Salesforce's 3-char case-insensitivity checksum. The base62 alphabet is
in ASCII order, so for one object the Ids sort in serial order.
"""

from __future__ import annotations

KEY_PREFIX = {
    "user": "005",
    "userrole": "00E",
    "account": "001",
    "contact": "003",
    "lead": "00Q",
    "opportunity": "006",
    "opportunityhistory": "008",
    "task": "00T",
    "campaign": "701",
    "forecastingquota": "0J9",
}
INSTANCE = "8c"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_INDEX = {c: i for i, c in enumerate(_B62)}
_CHECK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Serials start at a per-object offset so Ids do not all look like 0000001.
SERIAL_START = {
    "user": 2_113_407,
    "userrole": 91_320,
    "account": 38_204_117,
    "contact": 51_993_402,
    "lead": 77_120_559,
    "opportunity": 64_301_876,
    "opportunityhistory": 123_887_041,
    "task": 210_554_903,
    "campaign": 1_405_318,
    "forecastingquota": 8_870_212,
}


def _b62(n: int, width: int = 9) -> str:
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_B62[r])
    s = "".join(reversed(out))
    return s.rjust(width, "0")


def checksum(id15: str) -> str:
    suffix = []
    for chunk in range(3):
        bits = 0
        for pos in range(5):
            c = id15[chunk * 5 + pos]
            if "A" <= c <= "Z":
                bits |= 1 << pos
        suffix.append(_CHECK[bits])
    return "".join(suffix)


def make_id(obj: str, serial: int) -> str:
    id15 = KEY_PREFIX[obj] + INSTANCE + "0" + _b62(serial)
    return id15 + checksum(id15)


def serial_of(sf_id: str) -> int:
    """Inverse of :func:`make_id` (ignores prefix / checksum)."""
    n = 0
    for c in sf_id[6:15]:
        n = n * 62 + _B62_INDEX[c]
    return n


def is_valid(sf_id: str) -> bool:
    return len(sf_id) == 18 and checksum(sf_id[:15]) == sf_id[15:]


class IdFactory:
    """Hands out Ids per object in serial order."""

    def __init__(self, next_serial: dict[str, int] | None = None):
        self.next_serial = dict(SERIAL_START)
        if next_serial:
            self.next_serial.update(next_serial)

    def new(self, obj: str) -> str:
        s = self.next_serial[obj]
        self.next_serial[obj] = s + 1
        return make_id(obj, s)
