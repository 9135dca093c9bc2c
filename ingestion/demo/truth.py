"""Ground truth: what the generator planted, computed in plain Python from the written rows.

Two implementations that must agree:

* :class:`TruthAccumulator` -- incremental, fed with the row tuples as they are written (and the
  calendar meetings as they are rendered); used by ``generate``.
* :func:`recompute` -- re-reads ``crm.sqlite`` and the ``.ics`` files (plain ``SELECT *`` scans,
  all logic in Python, bounded memory via numpy arrays indexed by Id serial); used by ``change``
  and by the tests to cross-check the incremental numbers.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from .ics import iter_vevents, list_calendar_files, parse_ics_datetime, split_prop
from .ids import serial_of
from .reference import STAGES
from .schema import COL_INDEX, COLUMNS, is_true, parse_dt

RESPONSE_SUBTYPES = ("Call", "Email")
RESPONSE_WINDOW = timedelta(days=7)

DEFECT_DEFINITIONS: dict[str, tuple[str, str]] = {
    "open_opportunity_past_close_date": (
        "opportunity",
        "IsClosed false and CloseDate < as_of (non-deleted).",
    ),
    "opportunity_missing_amount": ("opportunity", "Amount is null, any stage (non-deleted)."),
    "lead_without_activity_7d": (
        "lead",
        "Non-deleted lead with CreatedDate <= as_of 00:00 UTC - 7 days and IsConverted false and "
        "no response within [CreatedDate, CreatedDate + 7x24h]: a response is a non-deleted task "
        "with WhoId = lead, TaskSubtype in (Call, Email) and CreatedDate >= lead CreatedDate, or a "
        "non-cancelled calendar meeting (any mailbox) with an attendee whose email equals the "
        "lead's Email case-insensitively and whose booking time (CREATED, else DTSTART) is >= "
        "lead CreatedDate. By construction no lead is within a second of any boundary and "
        "comparing CreatedDate's date to as_of - 7 gives the same set.",
    ),
    "duplicate_lead_email": (
        "lead",
        "Every non-deleted lead whose lower(Email) is shared with at least one other non-deleted "
        "lead (all group members listed). Null/empty emails are never 'shared'.",
    ),
    "duplicate_contact_email": (
        "contact",
        "Every non-deleted contact whose lower(Email) is shared with at least one other "
        "non-deleted contact (all group members listed). Null/empty emails are never 'shared'.",
    ),
    "account_missing_industry": ("account", "Industry null or empty (non-deleted)."),
    "contact_missing_email": ("contact", "Email null or empty (non-deleted)."),
    "lead_without_owner": ("lead", "OwnerId null or empty (non-deleted); owner reported as null."),
}


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and v.strip() == "")


@dataclass
class Meeting:
    """A calendar VEVENT instance reduced to what the lead-response rule needs."""

    booking: datetime  # CREATED, else DTSTART (naive UTC)
    cancelled: bool
    emails: list[str]  # attendee emails, lower-cased


@dataclass
class DefectAcc:
    ids: list[str] = field(default_factory=list)
    owners: list[str | None] = field(default_factory=list)
    groups: list[list[str]] | None = None

    def add(self, rid: str, owner) -> None:
        self.ids.append(rid)
        self.owners.append(None if _blank(owner) else owner)

    def result(self, table_rows: int, name: str) -> dict:
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        ids = [self.ids[i] for i in order]
        owners = Counter(self.owners[i] for i in order)
        by_owner = [
            {"owner_id": k, "count": owners[k]} for k in sorted(owners, key=lambda x: (x is None, x or ""))
        ]
        table, definition = DEFECT_DEFINITIONS[name]
        out = {
            "table": table,
            "definition": definition,
            "count": len(ids),
            "rate": round(len(ids) / table_rows, 5) if table_rows else 0.0,
            "ids": ids,
            "by_owner": by_owner,
        }
        if self.groups is not None:
            out["group_count"] = len(self.groups)
            out["groups"] = sorted(sorted(g) for g in self.groups)
        return out


class TruthAccumulator:
    def __init__(self, as_of: date):
        self.as_of = as_of
        self.as_of_str = as_of.isoformat()
        self.as_of_ts = datetime(as_of.year, as_of.month, as_of.day)
        self.lead_cutoff = self.as_of_ts - RESPONSE_WINDOW
        self.counts = {t: [0, 0] for t in COLUMNS}
        self.defects = {k: DefectAcc() for k in DEFECT_DEFINITIONS}
        self.defects["duplicate_lead_email"].groups = []
        self.defects["duplicate_contact_email"].groups = []
        self.boundary_ambiguous = 0
        # empirical stage outcome counts: stage -> [closed opps that reached it, of which won]
        self.stage_reached = defaultdict(lambda: [0, 0])

    # ---- per-row checks ------------------------------------------------------------------
    def observe(self, table: str, rows: list[tuple]) -> None:
        c = self.counts[table]
        c[0] += len(rows)
        ix = COL_INDEX[table]
        if "IsDeleted" not in ix:
            c[1] += len(rows)
            return
        di = ix["IsDeleted"]
        live = [r for r in rows if not is_true(r[di])]
        c[1] += len(live)
        if table == "opportunity":
            closed, cd, amt, own = ix["IsClosed"], ix["CloseDate"], ix["Amount"], ix["OwnerId"]
            past = self.defects["open_opportunity_past_close_date"]
            miss = self.defects["opportunity_missing_amount"]
            for r in live:
                if not is_true(r[closed]) and r[cd] is not None and r[cd] < self.as_of_str:
                    past.add(r[0], r[own])
                if r[amt] is None:
                    miss.add(r[0], r[own])
        elif table == "account":
            ind, own = ix["Industry"], ix["OwnerId"]
            acc = self.defects["account_missing_industry"]
            for r in live:
                if _blank(r[ind]):
                    acc.add(r[0], r[own])
        elif table == "contact":
            em, own = ix["Email"], ix["OwnerId"]
            acc = self.defects["contact_missing_email"]
            for r in live:
                if _blank(r[em]):
                    acc.add(r[0], r[own])
        elif table == "lead":
            own = ix["OwnerId"]
            acc = self.defects["lead_without_owner"]
            for r in live:
                if _blank(r[own]):
                    acc.add(r[0], None)

    # ---- checks that need several tables; fed per generation unit -------------------------
    def observe_unit(
        self, leads: list[tuple], contacts: list[tuple], tasks: list[tuple], meetings: list[Meeting]
    ) -> None:
        """Duplicate emails and lead responses. Valid per unit because every lead/contact email
        of a unit is unique across units (distinct company domains) and all tasks/meetings that
        can answer a unit's leads are generated in that unit."""
        self._duplicates("lead", leads, self.defects["duplicate_lead_email"])
        self._duplicates("contact", contacts, self.defects["duplicate_contact_email"])
        li = COL_INDEX["lead"]
        ti = COL_INDEX["task"]
        cand = {}
        for r in leads:
            if is_true(r[li["IsDeleted"]]) or is_true(r[li["IsConverted"]]):
                continue
            created = parse_dt(r[li["CreatedDate"]])
            if created <= self.lead_cutoff:
                cand[r[0]] = (created, r)
            elif created.date() <= self.lead_cutoff.date():
                # would match under a date-only reading of the cutoff: must be answered
                cand[r[0]] = (created, r)
        if not cand:
            return
        answered = set()
        for t in tasks:
            who = t[ti["WhoId"]]
            if who not in cand or is_true(t[ti["IsDeleted"]]):
                continue
            if t[ti["TaskSubtype"]] not in RESPONSE_SUBTYPES:
                continue
            created = cand[who][0]
            tc = parse_dt(t[ti["CreatedDate"]])
            if created <= tc <= created + RESPONSE_WINDOW:
                answered.add(who)
        pending = {lid: v for lid, v in cand.items() if lid not in answered}
        if pending:
            by_email = defaultdict(list)
            for lid, (_, r) in pending.items():
                e = r[li["Email"]]
                if not _blank(e):
                    by_email[e.lower()].append(lid)
            for m in meetings:
                if m.cancelled:
                    continue
                for e in m.emails:
                    for lid in by_email.get(e, ()):
                        created = pending[lid][0]
                        if created <= m.booking <= created + RESPONSE_WINDOW:
                            answered.add(lid)
        acc = self.defects["lead_without_activity_7d"]
        for lid, (created, r) in pending.items():
            if lid in answered:
                continue
            if created > self.lead_cutoff:
                self.boundary_ambiguous += 1
                continue
            acc.add(lid, r[li["OwnerId"]])

    def _duplicates(self, table: str, rows: list[tuple], acc: DefectAcc) -> None:
        ix = COL_INDEX[table]
        di, ei, oi = ix["IsDeleted"], ix["Email"], ix["OwnerId"]
        groups = defaultdict(list)
        for r in rows:
            if is_true(r[di]) or _blank(r[ei]):
                continue
            groups[r[ei].lower()].append(r)
        for members in groups.values():
            if len(members) > 1:
                acc.groups.append([m[0] for m in members])
                for m in members:
                    acc.add(m[0], m[oi])

    def observe_stage_path(self, stages_reached: set[str], won: bool) -> None:
        for s in stages_reached:
            v = self.stage_reached[s]
            v[0] += 1
            v[1] += int(won)

    # ---- output -----------------------------------------------------------------------------
    def row_counts(self) -> dict:
        return {t: {"all": a, "non_deleted": n} for t, (a, n) in self.counts.items()}

    def defects_result(self) -> dict:
        out = {}
        for name, acc in self.defects.items():
            table = DEFECT_DEFINITIONS[name][0]
            out[name] = acc.result(self.counts[table][1], name)
        return out

    def empirical_stage_win_rate(self, stage_names: list[str]) -> dict:
        out = {}
        for s in stage_names:
            n, w = self.stage_reached.get(s, (0, 0))
            out[s] = {
                "closed_opportunities_reaching_stage": n,
                "won": w,
                "win_rate": round(w / n, 4) if n else None,
            }
        return out


# ----------------------------------------------------------------------------------------------
# Recompute from files (bounded memory)
# ----------------------------------------------------------------------------------------------
class _SerialArray:
    """A growable numpy array indexed by Id serial."""

    def __init__(self, dtype, fill):
        self.base = None
        self.arr = np.zeros(0, dtype=dtype)
        self.fill = fill

    def _ensure(self, s: int) -> int:
        if self.base is None:
            self.base = s - 1024
        i = s - self.base
        if i < 0:
            shift = -i + 1024
            self.arr = np.concatenate([np.full(shift, self.fill, self.arr.dtype), self.arr])
            self.base -= shift
            i += shift
        if i >= len(self.arr):
            new = np.full(max(i + 1, 2 * len(self.arr), 4096), self.fill, self.arr.dtype)
            new[: len(self.arr)] = self.arr
            self.arr = new
        return i

    def set(self, s: int, v) -> None:
        i = self._ensure(s)  # may reallocate self.arr
        self.arr[i] = v

    def get(self, s: int):
        if self.base is None:
            return self.fill
        i = s - self.base
        if 0 <= i < len(self.arr):
            return self.arr[i]
        return self.fill


_EPOCH = datetime(1970, 1, 1)


def _epoch(t: datetime) -> int:
    return int((t - _EPOCH).total_seconds())


def _scan(conn: sqlite3.Connection, table: str, batch: int = 50_000):
    cur = conn.execute(
        f'SELECT {", ".join(chr(34) + c + chr(34) for c in COLUMNS[table])} FROM "{table}" ORDER BY rowid'
    )
    while True:
        rows = cur.fetchmany(batch)
        if not rows:
            return
        yield rows


def recompute(out_dir: Path, as_of: date) -> dict:
    """Recomputes row counts, defects, stage statistics and calendar statistics from files."""
    out_dir = Path(out_dir)
    acc = TruthAccumulator(as_of)
    conn = sqlite3.connect(out_dir / "crm.sqlite")
    try:
        for table in ("user", "userrole", "account", "campaign", "forecastingquota", "opportunity"):
            for rows in _scan(conn, table):
                acc.observe(table, rows)
        _recompute_duplicates(conn, "contact", acc)
        _recompute_duplicates(conn, "lead", acc)
        _recompute_lead_activity(conn, out_dir, acc)
        _recompute_stage_paths(conn, acc)
    finally:
        conn.close()
    return {
        "row_counts": acc.row_counts(),
        "defects": acc.defects_result(),
        "empirical_stage_win_rate": acc.empirical_stage_win_rate([s[0] for s in STAGES]),
        "calendar": calendar_stats(out_dir / "calendars"),
        "lead_activity_boundary_ambiguous": acc.boundary_ambiguous,
    }


def _recompute_duplicates(conn, table: str, acc: TruthAccumulator) -> None:
    ix = COL_INDEX[table]
    di, ei = ix["IsDeleted"], ix["Email"]
    hashes = []
    for rows in _scan(conn, table):
        acc.observe(table, rows)
        for r in rows:
            if not is_true(r[di]) and not _blank(r[ei]):
                hashes.append(hash(r[ei].lower()))
    if not hashes:
        return
    h = np.array(hashes, dtype=np.int64)
    uniq, counts = np.unique(h, return_counts=True)
    multi = set(uniq[counts > 1].tolist())
    if not multi:
        return
    groups = defaultdict(list)
    for rows in _scan(conn, table):
        for r in rows:
            if not is_true(r[di]) and not _blank(r[ei]):
                e = r[ei].lower()
                if hash(e) in multi:
                    groups[e].append(r)
    name = "duplicate_lead_email" if table == "lead" else "duplicate_contact_email"
    d = acc.defects[name]
    oi = ix["OwnerId"]
    for members in groups.values():
        if len(members) > 1:
            d.groups.append([m[0] for m in members])
            for m in members:
                d.add(m[0], m[oi])


def _recompute_lead_activity(conn, out_dir: Path, acc: TruthAccumulator) -> None:
    li = COL_INDEX["lead"]
    created_s = _SerialArray(np.int64, -1)  # epoch seconds of candidate leads, -1 = not a cand.
    cutoff = acc.lead_cutoff
    n_cand = 0
    for rows in _scan(conn, "lead"):
        for r in rows:
            if is_true(r[li["IsDeleted"]]) or is_true(r[li["IsConverted"]]):
                continue
            created = parse_dt(r[li["CreatedDate"]])
            if created <= cutoff or created.date() <= cutoff.date():
                created_s.set(serial_of(r[0]), _epoch(created))
                n_cand += 1
    answered = _SerialArray(np.bool_, False)
    ti = COL_INDEX["task"]
    win = int(RESPONSE_WINDOW.total_seconds())
    for rows in _scan(conn, "task"):
        acc.observe("task", rows)
        for t in rows:
            who = t[ti["WhoId"]]
            if not who or not who.startswith("00Q") or is_true(t[ti["IsDeleted"]]):
                continue
            if t[ti["TaskSubtype"]] not in RESPONSE_SUBTYPES:
                continue
            s = serial_of(who)
            c = created_s.get(s)
            if c < 0:
                continue
            tc = _epoch(parse_dt(t[ti["CreatedDate"]]))
            if c <= tc <= c + win:
                answered.set(s, True)
    pending = {}
    for rows in _scan(conn, "lead"):
        for r in rows:
            s = serial_of(r[0])
            c = created_s.get(s)
            if c < 0 or answered.get(s):
                continue
            pending[r[0]] = (int(c), r)
    by_email = defaultdict(list)
    for lid, (_, r) in pending.items():
        e = r[li["Email"]]
        if not _blank(e):
            by_email[e.lower()].append(lid)
    done = set()
    if by_email:
        for path in list_calendar_files(out_dir / "calendars"):
            for block in iter_vevents(path):
                m = _meeting_from_block(block, by_email)
                if m is None or m.cancelled:
                    continue
                b = _epoch(m.booking)
                for e in m.emails:
                    for lid in by_email.get(e, ()):
                        c = pending[lid][0]
                        if c <= b <= c + win:
                            done.add(lid)
    d = acc.defects["lead_without_activity_7d"]
    cutoff_epoch = _epoch(cutoff)
    for lid, (c, r) in pending.items():
        if lid in done:
            continue
        if c > cutoff_epoch:
            acc.boundary_ambiguous += 1
            continue
        d.add(lid, r[li["OwnerId"]])


def _meeting_from_block(block: list[str], wanted: dict | None = None) -> Meeting | None:
    created = dtstart = None
    cancelled = False
    emails = []
    for line in block:
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if name == "ATTENDEE":
            _, _, value = split_prop(line)
            if value.lower().startswith("mailto:"):
                e = value[7:].strip().lower()
                if wanted is None or e in wanted:
                    emails.append(e)
        elif name == "STATUS":
            cancelled = line.split(":", 1)[1].strip().upper() == "CANCELLED"
        elif name == "CREATED":
            _, params, value = split_prop(line)
            created = parse_ics_datetime(value, params)
        elif name == "DTSTART":
            _, params, value = split_prop(line)
            dtstart = parse_ics_datetime(value, params)
    if not emails:
        return None
    booking = created or dtstart
    if booking is None:
        return None
    return Meeting(booking=booking, cancelled=cancelled, emails=emails)


def _recompute_stage_paths(conn, acc: TruthAccumulator) -> None:
    oi = COL_INDEX["opportunity"]
    hi = COL_INDEX["opportunityhistory"]
    stage_bit = {s[0]: 1 << i for i, s in enumerate(STAGES)}
    masks = _SerialArray(np.int32, 0)
    for rows in _scan(conn, "opportunityhistory"):
        acc.observe("opportunityhistory", rows)
        for r in rows:
            b = stage_bit.get(r[hi["StageName"]])
            if b:
                s = serial_of(r[hi["OpportunityId"]])
                masks.set(s, masks.get(s) | b)
    for rows in _scan(conn, "opportunity"):
        for r in rows:
            if is_true(r[oi["IsDeleted"]]) or not is_true(r[oi["IsClosed"]]):
                continue
            m = int(masks.get(serial_of(r[0])))
            reached = {name for name, b in stage_bit.items() if m & b}
            acc.observe_stage_path(reached, is_true(r[oi["IsWon"]]))


def calendar_stats(cal_dir: Path) -> dict:
    files = list_calendar_files(cal_dir)
    uids = set()
    instances = set()
    series = set()
    overrides = set()
    cancelled = set()
    all_day = set()
    components = 0
    for path in files:
        for block in iter_vevents(path):
            components += 1
            uid = rid = None
            rrule = False
            is_cancel = False
            is_all_day = False
            for line in block:
                name = line.split(":", 1)[0].split(";", 1)[0].upper()
                if name == "UID":
                    uid = line.split(":", 1)[1]
                elif name == "RECURRENCE-ID":
                    _, params, value = split_prop(line)
                    rid = value
                elif name == "RRULE":
                    rrule = True
                elif name == "STATUS":
                    is_cancel = line.split(":", 1)[1].strip().upper() == "CANCELLED"
                elif name == "DTSTART":
                    _, params, _ = split_prop(line)
                    is_all_day = params.get("VALUE") == "DATE"
            key = (uid, rid)
            instances.add(key)
            if rid is None:
                uids.add(uid)
                if rrule:
                    series.add(uid)
                if is_all_day:
                    all_day.add(uid)
            else:
                overrides.add(key)
            if is_cancel:
                cancelled.add(key)
    return {
        "files": len(files),
        "vevent_components": components,
        "unique_uids": len(uids),
        "unique_instances": len(instances),
        "recurring_series": len(series),
        "recurrence_overrides": len(overrides),
        "cancelled_instances": len(cancelled),
        "all_day_events": len(all_day),
    }


# ----------------------------------------------------------------------------------------------
@dataclass
class GroundTruth:
    """The parsed ``ground_truth.json`` (``data``) with convenience accessors."""

    data: dict
    # ids the generator deliberately planted per defect (set by ``generate``; not serialized).
    # Every id reported in ``defects`` is among them -- non-planted rows never match a rule.
    planted: dict[str, set[str]] | None = None

    @property
    def as_of(self) -> date:
        return date.fromisoformat(self.data["as_of"])

    @property
    def row_counts(self) -> dict:
        return self.data["row_counts"]

    @property
    def defects(self) -> dict:
        return self.data["defects"]

    @property
    def stages(self) -> list[dict]:
        return self.data["stages"]

    @property
    def true_stage_win_probability(self) -> dict[str, float]:
        return self.data["true_stage_win_probability"]

    def defect_ids(self, name: str) -> list[str]:
        return self.data["defects"][name]["ids"]

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    def write(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        p = Path(path)
        if p.is_dir():
            p = p / "ground_truth.json"
        return cls(json.loads(p.read_text(encoding="utf-8")))
