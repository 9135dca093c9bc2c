"""Incremental change set for incremental-run benchmarks.

``apply_change(out_dir, fraction=0.01, seed=7, as_of=None)`` moves the data set forward to a
new snapshot date (default: previous ``as_of`` + 1 day). Every change is stamped inside
``[previous as_of 00:00 UTC, new as_of 00:00 UTC)``, i.e. strictly after everything already in
the replica, so a ``SystemModstamp`` watermark picks up exactly the changed rows:

* updates ~``fraction`` of the rows of every table (bumping ``SystemModstamp``; opportunity
  changes also append ``opportunityhistory`` rows -- history itself is append-only),
* inserts ~``fraction`` new rows (new leads with their responses, accounts, contacts,
  opportunities, tasks, ...),
* soft-deletes a few rows (``IsDeleted``) with Salesforce-like cascades,
* keeps the world consistent as time moves on (answers leads that were still fresh, rolls
  forward close dates of open opportunities that just became stale),
* adds / reschedules / cancels events in a few mailbox files (only those files are rewritten),
* and rewrites ``ground_truth.json`` by recomputing it from the files.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

from tqdm import tqdm

from .context import make_rng, new_uid
from .generator import CALENDAR_DIR, CRM_FILE, GROUND_TRUTH_FILE
from .ics import (
    Attendee,
    Event,
    fmt_local,
    fmt_utc,
    fold,
    parse_ics_datetime,
    split_prop,
    unfold_lines,
    vtimezone,
)
from .ids import IdFactory, serial_of
from .names import CompanyFactory, ascii_slug, new_person
from .reference import CONTACT_TITLES, FIRST_NAMES, LAST_NAMES, LEAD_SOURCES, STAGES
from .schema import COL_INDEX, COLUMNS, DT, FALSE, TRUE, is_true, parse_dt
from .timeutil import month_end, to_local
from .truth import GroundTruth, recompute

DAY = timedelta(days=1)
_STAGE = {s[0]: i for i, s in enumerate(STAGES)}
_SOURCES = [s for s, _, _ in LEAD_SOURCES]
_SOURCE_W = [w for _, w, _ in LEAD_SOURCES]


class _Change:
    def __init__(self, out: Path, fraction: float, seed: int, as_of: date | None):
        self.out = out
        self.gt = GroundTruth.load(out / GROUND_TRUTH_FILE)
        self.prev = self.gt.as_of
        self.as_of = as_of or (self.prev + DAY)
        if self.as_of <= self.prev:
            raise ValueError(f"change --as-of must be after the data set's as_of ({self.prev})")
        self.lo = datetime(self.prev.year, self.prev.month, self.prev.day)
        self.hi = datetime(self.as_of.year, self.as_of.month, self.as_of.day)
        self.fraction = fraction
        self.seed = seed
        self.rng = make_rng(seed, self.gt.data["profile"], self.as_of, "change", fraction, self.prev)
        self.conn = sqlite3.connect(out / CRM_FILE, isolation_level=None)  # journaled: atomic
        state = self.gt.data.get("generator_state", {})
        nxt = dict(state.get("next_id_serial", {}))
        for t in COLUMNS:
            mx = self.conn.execute(f'SELECT max("Id") FROM "{t}"').fetchone()[0]
            if mx:
                nxt[t] = max(nxt.get(t, 0), serial_of(mx) + 1)
        self.ids = IdFactory(nxt)
        self.companies = CompanyFactory(state.get("next_company_serial", 1))
        self.local_serial = state.get("next_change_serial", 1)
        self.summary = {t: {"updated": 0, "inserted": 0, "deleted": 0} for t in COLUMNS}
        self.inserts: dict[str, list[tuple]] = {t: [] for t in COLUMNS}
        self.pending_meetings: list[tuple] = []
        self._load_users()

    # ---- helpers ---------------------------------------------------------------------------
    def _load_users(self) -> None:
        ui = COL_INDEX["user"]
        self.users = {}
        for r in self.conn.execute(f'SELECT {_cols("user")} FROM "user" ORDER BY rowid'):
            self.users[r[0]] = r
        active = [r for r in self.users.values() if is_true(r[ui["IsActive"]])]
        self.aes = [r for r in active if "Account Executive" in (r[ui["Title"]] or "")]
        self.sdrs = [r for r in active if "Development" in (r[ui["Title"]] or "")]
        self.reps = self.aes + self.sdrs

    def t(self) -> datetime:
        """A random change moment inside the change window."""
        span = (self.hi - self.lo).total_seconds()
        return self.lo + timedelta(seconds=int(60 + self.rng.random() * (span - 120)))

    def k(self, n: int, share: float = 1.0, minimum: int = 1) -> int:
        return max(minimum, round(self.fraction * n * share)) if n else 0

    def count(self, table: str) -> int:
        return self.conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]

    def sample(self, table: str, k: int, keep=None) -> list[tuple]:
        """k random rows (rowid first) satisfying keep(row)."""
        if k <= 0:
            return []
        mx = self.conn.execute(f'SELECT max(rowid) FROM "{table}"').fetchone()[0] or 0
        if not mx:
            return []
        picks = self.rng.sample(range(1, mx + 1), min(mx, k * 4 + 10))
        rows = []
        for i in range(0, len(picks), 500):
            chunk = picks[i : i + 500]
            q = f'SELECT rowid, {_cols(table)} FROM "{table}" WHERE rowid IN ({",".join("?" * len(chunk))})'
            got = {r[0]: r for r in self.conn.execute(q, chunk)}
            rows.extend(got[p] for p in chunk if p in got)
        out = [r for r in rows if keep is None or keep(r[1:])]
        return out[:k]

    def update(self, table: str, rowid: int, values: dict) -> None:
        sets = ", ".join(f'"{c}" = ?' for c in values)
        self.conn.execute(f'UPDATE "{table}" SET {sets} WHERE rowid = ?', [*values.values(), rowid])
        self.summary[table]["updated"] += 1

    def insert(self, table: str, row: tuple) -> None:
        self.inserts[table].append(row)
        self.summary[table]["inserted"] += 1

    def live(self, table: str, row: tuple) -> bool:
        ix = COL_INDEX[table]
        return "IsDeleted" not in ix or not is_true(row[ix["IsDeleted"]])

    def user_tz(self, uid: str | None) -> str:
        u = self.users.get(uid or "")
        return u[COL_INDEX["user"]["TimeZoneSidKey"]] if u else "America/New_York"

    def task_row(
        self, who, what, owner_id, subject, subtype, created, status="Completed", activity: date | None = None
    ) -> tuple:
        activity = activity or to_local(created, self.user_tz(owner_id)).date()
        return (
            self.ids.new("task"),
            who,
            what,
            owner_id,
            subject,
            subtype,
            status,
            activity.isoformat(),
            DT["task"](created),
            DT["task"](
                min(created + timedelta(minutes=self.rng.randint(1, 30)), self.hi - timedelta(seconds=1))
            ),
            FALSE["task"],
        )

    # ---- world maintenance -------------------------------------------------------------------
    def answer_fresh_leads(self) -> None:
        """Leads that were too fresh to be answered at the previous as_of get their response."""
        li = COL_INDEX["lead"]
        since = self.lo - 7 * DAY
        fresh = {}
        q = f'SELECT {_cols("lead")} FROM "lead" WHERE "CreatedDate" > ? ORDER BY rowid'
        for r in self.conn.execute(q, (DT["lead"](since),)):
            if not is_true(r[li["IsDeleted"]]) and not is_true(r[li["IsConverted"]]):
                fresh[r[0]] = r
        if not fresh:
            return
        ti = COL_INDEX["task"]
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS _ids (id TEXT PRIMARY KEY)")
        self.conn.execute("DELETE FROM _ids")
        self.conn.executemany("INSERT INTO _ids VALUES (?)", [(i,) for i in fresh])
        answered = set()
        q = f'SELECT {_cols("task")} FROM "task" WHERE "WhoId" IN (SELECT id FROM _ids)'
        for tr in self.conn.execute(q):
            if is_true(tr[ti["IsDeleted"]]) or tr[ti["TaskSubtype"]] not in ("Call", "Email"):
                continue
            created = parse_dt(fresh[tr[ti["WhoId"]]][li["CreatedDate"]])
            if created <= parse_dt(tr[ti["CreatedDate"]]) <= created + 7 * DAY:
                answered.add(tr[ti["WhoId"]])
        for lid, r in fresh.items():
            if lid in answered:
                continue
            created = parse_dt(r[li["CreatedDate"]])
            lo = max(self.lo, created) + timedelta(minutes=2)
            hi = min(self.hi, created + 7 * DAY) - timedelta(minutes=2)
            if hi <= lo:
                continue
            when = lo + (hi - lo) * self.rng.random()
            owner = r[li["OwnerId"]] or self.rng.choice(self.reps)[0]
            self.insert("task", self.task_row(lid, None, owner, "Call", "Call", when))
            if r[li["Status"]] == "Open - Not Contacted":
                self.conn.execute(
                    'UPDATE "lead" SET "Status" = ?, "SystemModstamp" = ? WHERE "Id" = ?',
                    ("Working - Contacted", DT["lead"](when), lid),
                )
                self.summary["lead"]["updated"] += 1

    def roll_forward_close_dates(self) -> None:
        """Open opportunities whose close date just slipped into the past get pushed (only those
        that were not already stale at the previous as_of)."""
        oi = COL_INDEX["opportunity"]
        q = (
            f'SELECT rowid, {_cols("opportunity")} FROM "opportunity" '
            f'WHERE "CloseDate" >= ? AND "CloseDate" < ?'
        )
        rows = self.conn.execute(q, (self.prev.isoformat(), self.as_of.isoformat())).fetchall()
        for r in rows:
            row = r[1:]
            if is_true(row[oi["IsClosed"]]) or not self.live("opportunity", row):
                continue
            nc = self.as_of + timedelta(days=self.rng.randint(10, 60))
            self.opp_change(r[0], row, self.t(), close=nc)

    # ---- per-table updates -----------------------------------------------------------------
    def opp_change(
        self,
        rowid: int,
        row: tuple,
        when: datetime,
        *,
        stage: int | None = None,
        close: date | None = None,
        amount: float | None = None,
    ) -> None:
        oi = COL_INDEX["opportunity"]
        s = _STAGE[row[oi["StageName"]]] if stage is None else stage
        name, prob, fc_label, fc_api, closed, won = STAGES[s]
        cd = close or date.fromisoformat(row[oi["CloseDate"]])
        if closed:
            cd = when.date()
        amt = row[oi["Amount"]] if amount is None else amount
        self.update(
            "opportunity",
            rowid,
            {
                "StageName": name,
                "Probability": float(prob),
                "ForecastCategoryName": fc_label,
                "CloseDate": cd.isoformat(),
                "Amount": amt,
                "IsClosed": TRUE["opportunity"] if closed else FALSE["opportunity"],
                "IsWon": TRUE["opportunity"] if won else FALSE["opportunity"],
                "SystemModstamp": DT["opportunity"](when),
            },
        )
        self.insert(
            "opportunityhistory",
            (
                self.ids.new("opportunityhistory"),
                row[0],
                name,
                amt,
                float(prob),
                fc_api,
                cd.isoformat(),
                DT["opportunityhistory"](when),
                DT["opportunityhistory"](when),
                FALSE["opportunityhistory"],
            ),
        )

    def update_opportunities(self) -> None:
        oi = COL_INDEX["opportunity"]
        rng = self.rng
        for r in self.sample(
            "opportunity", self.k(self.count("opportunity")), lambda x: self.live("opportunity", x)
        ):
            row = r[1:]
            when = self.t()
            if is_true(row[oi["IsClosed"]]):
                self.update("opportunity", r[0], {"SystemModstamp": DT["opportunity"](when)})
                continue
            s = _STAGE[row[oi["StageName"]]]
            x = rng.random()
            if x < 0.45:
                nxt = 8 if s == 7 and rng.random() < 0.7 else (9 if rng.random() < 0.2 else min(s + 1, 7))
                self.opp_change(r[0], row, when, stage=nxt)
            elif x < 0.75:
                cd = date.fromisoformat(row[oi["CloseDate"]])
                nc = max(cd, self.as_of) + timedelta(days=rng.randint(14, 45))
                self.opp_change(r[0], row, when, close=month_end(nc) if rng.random() < 0.5 else nc)
            else:
                base = row[oi["Amount"]]
                if base is None:
                    base = float(rng.randint(20, 200) * 500)
                self.opp_change(
                    r[0], row, when, amount=float(round(base * rng.uniform(0.85, 1.2) / 100) * 100)
                )

    def update_simple(self) -> None:
        rng = self.rng
        ui, ai = COL_INDEX["user"], COL_INDEX["account"]
        li, ti, gi = COL_INDEX["lead"], COL_INDEX["task"], COL_INDEX["campaign"]
        qi = COL_INDEX["forecastingquota"]
        for r in self.sample("user", self.k(self.count("user"))):
            title = r[1:][ui["Title"]] or ""
            if title.startswith("Senior ") or "Manager" in title or "VP" in title:
                new_title = title
            else:
                new_title = "Senior " + title
            self.update("user", r[0], {"Title": new_title, "SystemModstamp": DT["user"](self.t())})
        for r in self.sample("userrole", self.k(self.count("userrole"))):
            self.update("userrole", r[0], {"SystemModstamp": DT["userrole"](self.t())})
        for r in self.sample("account", self.k(self.count("account")), lambda x: self.live("account", x)):
            row = r[1:]
            vals = {
                "NumberOfEmployees": max(
                    5, int((row[ai["NumberOfEmployees"]] or 50) * rng.uniform(0.9, 1.25))
                ),
                "AnnualRevenue": float(round((row[ai["AnnualRevenue"]] or 1e6) * rng.uniform(0.9, 1.3), -3)),
                "SystemModstamp": DT["account"](self.t()),
            }
            if not row[ai["Industry"]] and rng.random() < 0.5:
                vals["Industry"] = "Technology"  # data steward fixed a missing industry
            self.update("account", r[0], vals)
        for r in self.sample("contact", self.k(self.count("contact")), lambda x: self.live("contact", x)):
            self.update(
                "contact",
                r[0],
                {"Title": rng.choice(CONTACT_TITLES), "SystemModstamp": DT["contact"](self.t())},
            )
        for r in self.sample(
            "lead",
            self.k(self.count("lead")),
            lambda x: self.live("lead", x) and not is_true(x[li["IsConverted"]]),
        ):
            row = r[1:]
            when = self.t()
            vals = {"SystemModstamp": DT["lead"](when)}
            if not row[li["OwnerId"]]:
                if rng.random() < 0.5:
                    vals["OwnerId"] = rng.choice(self.reps)[0]  # assigned from the queue
            elif row[li["Status"]] == "Working - Contacted":
                vals["Status"] = "Closed - Not Converted"
            elif row[li["Status"]] == "Open - Not Contacted":
                vals["Status"] = "Working - Contacted"
                self.insert("task", self.task_row(row[0], None, row[li["OwnerId"]], "Call", "Call", when))
            self.update("lead", r[0], vals)
        for r in self.sample("task", self.k(self.count("task")), lambda x: self.live("task", x)):
            row = r[1:]
            when = self.t()
            if row[ti["Status"]] != "Completed":
                vals = {"Status": "Completed", "ActivityDate": when.date().isoformat()}
            else:
                vals = {"Subject": (row[ti["Subject"]] or "")[:60] + " (edited)"}
            vals["SystemModstamp"] = DT["task"](when)
            self.update("task", r[0], vals)
        for r in self.sample("campaign", self.k(self.count("campaign")), lambda x: self.live("campaign", x)):
            row = r[1:]
            vals = {"SystemModstamp": DT["campaign"](self.t())}
            if row[gi["Status"]] == "Planned" and row[gi["StartDate"]] <= self.as_of.isoformat():
                vals["Status"] = "In Progress"
            if row[gi["BudgetedCost"]]:
                vals["ActualCost"] = round(
                    (row[gi["ActualCost"]] or 0.0) + row[gi["BudgetedCost"]] * rng.uniform(0.01, 0.1), 2
                )
            self.update("campaign", r[0], vals)
        for r in self.sample("forecastingquota", self.k(self.count("forecastingquota"))):
            row = r[1:]
            self.update(
                "forecastingquota",
                r[0],
                {
                    "QuotaAmount": float(round(row[qi["QuotaAmount"]] * rng.uniform(0.95, 1.05) / 500) * 500),
                    "SystemModstamp": DT["forecastingquota"](self.t()),
                },
            )

    # ---- inserts -----------------------------------------------------------------------------
    def insert_rows(self) -> None:
        rng = self.rng
        n_leads = self.k(self.count("lead"))
        n_accounts = self.k(self.count("account"))
        n_tasks = self.k(self.count("task"))
        for _ in range(n_leads):
            when = self.t()
            company = self.companies.new(rng)
            first, last, email = new_person(company, rng)
            owner = rng.choice(self.sdrs or self.aes)
            lid = self.ids.new("lead")
            source = rng.choices(_SOURCES, weights=_SOURCE_W)[0]
            answered = when + timedelta(minutes=rng.uniform(3, 240))
            status = "Open - Not Contacted"
            if answered < self.hi:
                status = "Working - Contacted"
                if rng.random() < 0.15:
                    self.pending_meetings.append((owner, first, last, email, company, answered))
                else:
                    self.insert("task", self.task_row(lid, None, owner[0], "Call", "Call", answered))
            self.insert(
                "lead",
                (
                    lid,
                    first,
                    last,
                    email,
                    company.name,
                    company.industry,
                    source,
                    status,
                    owner[0],
                    FALSE["lead"],
                    None,
                    None,
                    None,
                    None,
                    DT["lead"](when),
                    DT["lead"](min(answered, self.hi - timedelta(seconds=1))),
                    FALSE["lead"],
                ),
            )
        ai = COL_INDEX["account"]
        for _ in range(n_accounts):
            when = self.t()
            company = self.companies.new(rng)
            owner = rng.choice(self.aes or self.reps)
            aid = self.ids.new("account")
            self.insert(
                "account",
                (
                    aid,
                    company.name,
                    company.industry,
                    rng.randint(20, 5000),
                    float(rng.randint(2, 900) * 100_000),
                    "United States",
                    owner[0],
                    DT["account"](when),
                    DT["account"](when),
                    FALSE["account"],
                ),
            )
            first, last, email = new_person(company, rng)
            self.insert(
                "contact",
                (
                    self.ids.new("contact"),
                    aid,
                    first,
                    last,
                    email,
                    "Head of Operations",
                    owner[0],
                    DT["contact"](when),
                    DT["contact"](when),
                    FALSE["contact"],
                ),
            )
            if rng.random() < 0.6:
                oid = self.ids.new("opportunity")
                amount = float(rng.randint(20, 300) * 500)
                cd = self.as_of + timedelta(days=rng.randint(30, 150))
                self.insert(
                    "opportunity",
                    (
                        oid,
                        f"{company.name.split(' ')[0]} - Platform",
                        aid,
                        owner[0],
                        "New Business",
                        None,
                        None,
                        "Prospecting",
                        amount,
                        10.0,
                        "Pipeline",
                        cd.isoformat(),
                        FALSE["opportunity"],
                        FALSE["opportunity"],
                        DT["opportunity"](when),
                        DT["opportunity"](when),
                        FALSE["opportunity"],
                    ),
                )
                self.insert(
                    "opportunityhistory",
                    (
                        self.ids.new("opportunityhistory"),
                        oid,
                        "Prospecting",
                        amount,
                        10.0,
                        "Pipeline",
                        cd.isoformat(),
                        DT["opportunityhistory"](when),
                        DT["opportunityhistory"](when),
                        FALSE["opportunityhistory"],
                    ),
                )
        # contacts on existing accounts (local part with a change-only ".x<serial>" suffix so it
        # can never collide with a generated address)
        accs = self.sample(
            "account", self.k(self.count("contact"), minimum=1), lambda x: self.live("account", x)
        )
        domains = self._domains_for([a[1] for a in accs])
        for a in accs:
            dom = domains.get(a[1])
            if not dom:
                continue
            when = self.t()
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{ascii_slug(first)}.{ascii_slug(last)}.x{self.local_serial}@{dom}"
            self.local_serial += 1
            self.insert(
                "contact",
                (
                    self.ids.new("contact"),
                    a[1],
                    first,
                    last,
                    email,
                    "Procurement Manager",
                    a[1:][ai["OwnerId"]],
                    DT["contact"](when),
                    DT["contact"](when),
                    FALSE["contact"],
                ),
            )
        # tasks on open opportunities
        oi = COL_INDEX["opportunity"]
        opps = self.sample(
            "opportunity", n_tasks, lambda x: self.live("opportunity", x) and not is_true(x[oi["IsClosed"]])
        )
        for o in opps:
            when = self.t()
            sub = rng.choice(["Call", "Email", "Task"])
            self.insert(
                "task",
                self.task_row(
                    None,
                    o[1],
                    o[1:][oi["OwnerId"]],
                    {"Call": "Call", "Email": "Email: Next steps", "Task": "Send proposal"}[sub],
                    sub,
                    when,
                ),
            )
        n_camp = round(self.fraction * self.count("campaign"))
        for _ in range(n_camp):
            when = self.t()
            start = self.as_of + timedelta(days=rng.randint(20, 90))
            self.insert(
                "campaign",
                (
                    self.ids.new("campaign"),
                    f"{start.year} Customer Roundtable Webinar",
                    "Webinar",
                    "Planned",
                    start.isoformat(),
                    start.isoformat(),
                    float(rng.randint(4, 18) * 500),
                    None,
                    DT["campaign"](when),
                    DT["campaign"](when),
                    FALSE["campaign"],
                ),
            )

    def _domains_for(self, account_ids: list[str]) -> dict[str, str]:
        want = set(account_ids)
        out: dict[str, str] = {}
        q = 'SELECT "AccountId", "Email" FROM "contact" WHERE "Email" LIKE \'%@%\''
        for acc, email in self.conn.execute(q):
            if acc in want and acc not in out:
                out[acc] = email.split("@", 1)[1].lower()
        return out

    # ---- deletes -----------------------------------------------------------------------------
    def deletes(self) -> None:
        li = COL_INDEX["lead"]
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS _del (id TEXT PRIMARY KEY, ts TEXT)")
        self.conn.execute("DELETE FROM _del")
        # tasks
        for r in self.sample("task", self.k(self.count("task"), 0.2), lambda x: self.live("task", x)):
            self._soft_delete("task", r[0], self.t())
        # unconverted leads (their activities go with them)
        cascade = []
        for r in self.sample(
            "lead",
            self.k(self.count("lead"), 0.2),
            lambda x: self.live("lead", x) and not is_true(x[li["IsConverted"]]),
        ):
            when = self.t()
            self._soft_delete("lead", r[0], when)
            cascade.append((r[1], DT["task"](when)))
        # opportunities not created from a lead conversion (history + activities cascade)
        cands = self.sample(
            "opportunity",
            self.k(self.count("opportunity"), 0.2) * 10 + 20,
            lambda x: self.live("opportunity", x),
        )
        converted = self._referenced("lead", "ConvertedOpportunityId", [c[1] for c in cands])
        hist = []
        for r in [c for c in cands if c[1] not in converted][: self.k(self.count("opportunity"), 0.2)]:
            when = self.t()
            self._soft_delete("opportunity", r[0], when)
            cascade.append((r[1], DT["task"](when)))
            hist.append((r[1], DT["opportunityhistory"](when)))
        if hist:
            self.conn.execute("DELETE FROM _del")
            self.conn.executemany("INSERT OR REPLACE INTO _del VALUES (?, ?)", hist)
            cur = self.conn.execute(
                'UPDATE "opportunityhistory" SET "IsDeleted" = ?, "SystemModstamp" = '
                '(SELECT ts FROM _del WHERE id = "opportunityhistory"."OpportunityId") '
                'WHERE "OpportunityId" IN (SELECT id FROM _del)',
                (TRUE["opportunityhistory"],),
            )
            self.summary["opportunityhistory"]["deleted"] += cur.rowcount
        # contacts not referenced by converted leads
        cands = self.sample(
            "contact", self.k(self.count("contact"), 0.2) * 10 + 20, lambda x: self.live("contact", x)
        )
        converted = self._referenced("lead", "ConvertedContactId", [c[1] for c in cands])
        for r in [c for c in cands if c[1] not in converted][: self.k(self.count("contact"), 0.2)]:
            when = self.t()
            self._soft_delete("contact", r[0], when)
            cascade.append((r[1], DT["task"](when)))
        # accounts without opportunities or conversions
        cands = self.sample(
            "account", self.k(self.count("account"), 0.2) * 10 + 40, lambda x: self.live("account", x)
        )
        ids = [c[1] for c in cands]
        used = self._referenced("opportunity", "AccountId", ids) | self._referenced(
            "lead", "ConvertedAccountId", ids
        )
        acc_del = {}
        for r in [c for c in cands if c[1] not in used][: self.k(self.count("account"), 0.2)]:
            when = self.t()
            self._soft_delete("account", r[0], when)
            cascade.append((r[1], DT["task"](when)))
            acc_del[r[1]] = when
        if acc_del:  # an account's contacts (and their activities) go with it
            self.conn.execute("DELETE FROM _del")
            self.conn.executemany(
                "INSERT OR REPLACE INTO _del VALUES (?, ?)",
                [(a, DT["contact"](w)) for a, w in acc_del.items()],
            )
            gone = self.conn.execute(
                'SELECT "Id", "AccountId" FROM "contact" '
                'WHERE "AccountId" IN (SELECT id FROM _del) AND "IsDeleted" = ? ORDER BY rowid',
                (FALSE["contact"],),
            ).fetchall()
            cur = self.conn.execute(
                'UPDATE "contact" SET "IsDeleted" = ?, "SystemModstamp" = '
                '(SELECT ts FROM _del WHERE id = "contact"."AccountId") '
                'WHERE "AccountId" IN (SELECT id FROM _del) AND "IsDeleted" = ?',
                (TRUE["contact"], FALSE["contact"]),
            )
            self.summary["contact"]["deleted"] += cur.rowcount
            cascade.extend((cid, DT["task"](acc_del[aid])) for cid, aid in gone)
        if cascade:  # activities of deleted records go to the recycle bin with them
            self.conn.execute("DELETE FROM _del")
            self.conn.executemany("INSERT OR REPLACE INTO _del VALUES (?, ?)", cascade)
            for col in ("WhoId", "WhatId"):
                cur = self.conn.execute(
                    f'UPDATE "task" SET "IsDeleted" = ?, "SystemModstamp" = '
                    f'(SELECT ts FROM _del WHERE id = "task"."{col}") '
                    f'WHERE "{col}" IN (SELECT id FROM _del) AND "IsDeleted" = ?',
                    (TRUE["task"], FALSE["task"]),
                )
                self.summary["task"]["deleted"] += cur.rowcount

    def _soft_delete(self, table: str, rowid: int, when: datetime) -> None:
        self.conn.execute(
            f'UPDATE "{table}" SET "IsDeleted" = ?, "SystemModstamp" = ? WHERE rowid = ?',
            (TRUE[table], DT[table](when), rowid),
        )
        self.summary[table]["deleted"] += 1

    def _referenced(self, table: str, col: str, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        want = set(ids)
        out = set()
        for (v,) in self.conn.execute(f'SELECT "{col}" FROM "{table}" WHERE "{col}" IS NOT NULL'):
            if v in want:
                out.add(v)
        return out

    # ---- calendars ----------------------------------------------------------------------------
    def calendars(self) -> list[str]:
        """Adds booked meetings for new leads and reschedules/cancels one future meeting in a
        few mailboxes; returns the files touched."""
        rng = self.rng
        ui, ci = COL_INDEX["user"], COL_INDEX["contact"]
        by_owner: dict[str, list] = {}
        for m in self.pending_meetings:
            by_owner.setdefault(m[0][0], []).append(m)
        # new contacts of reps get a first meeting too
        contact_meetings: dict[str, list] = {}
        for c in self.inserts["contact"]:
            owner = self.users.get(c[ci["OwnerId"]])
            if owner is None or not c[ci["Email"]]:
                continue
            booked = parse_dt(c[ci["CreatedDate"]]) + timedelta(minutes=rng.randint(5, 120))
            if booked < self.hi:
                contact_meetings.setdefault(owner[0], []).append(
                    (owner, c[ci["FirstName"]], c[ci["LastName"]], c[ci["Email"]], None, booked)
                )
        owners = sorted(by_owner)[:4]
        for oid in sorted(contact_meetings):
            if len(owners) >= 4:
                break
            if oid not in owners:
                owners.append(oid)
        # leads whose meeting owner is not among the touched mailboxes get a task instead
        for oid, ms in by_owner.items():
            if oid in owners:
                continue
            for owner, _first, _last, email, _company, answered in ms:
                lid = self._lead_id_for(email)
                self.insert("task", self.task_row(lid, None, owner[0], "Call", "Call", answered))
        if not owners:
            owners = [r[0] for r in rng.sample(self.reps, min(2, len(self.reps)))]
        touched = []
        for uid in owners:
            u = self.users[uid]
            email, tz, name = u[ui["Email"]], u[ui["TimeZoneSidKey"]], u[ui["Name"]]
            path = self.out / CALENDAR_DIR / f"{email}.ics"
            if not path.exists():
                continue
            new_blocks = []
            todo = by_owner.get(uid, []) + contact_meetings.get(uid, [])[:2]
            for _owner, first, last, lemail, company, answered in todo:
                start = answered + timedelta(days=rng.randint(1, 6))
                start = start.replace(minute=0, second=0)
                title = (
                    f"Intro call: {company.name} <> Acme"
                    if company
                    else (f"Kick-off call with {first} {last}")
                )
                ev = Event(
                    uid=new_uid(rng),
                    summary=title,
                    created=answered,
                    organizer_name=name,
                    organizer_email=email,
                    start=start,
                    end=start + timedelta(minutes=30),
                    attendees=[
                        Attendee(name, email, "ACCEPTED"),
                        Attendee(
                            f"{first} {last}",
                            lemail.upper() if rng.random() < 0.3 else lemail,
                            "NEEDS-ACTION",
                        ),
                    ],
                )
                new_blocks.append(ev.render(fmt_utc(self.hi), tz)[0])
            self._rewrite_calendar(path, email, tz, new_blocks)
            touched.append(path.name)
        return touched

    def _lead_id_for(self, email: str) -> str | None:
        for r in self.inserts["lead"]:
            if r[COL_INDEX["lead"]["Email"]] == email:
                return r[0]
        return None

    def _rewrite_calendar(self, path: Path, mailbox: str, tz: str, new_blocks: list[str]) -> None:
        rng = self.rng
        lines = list(unfold_lines(path))
        head, blocks, tzids = [], [], set()
        cur = None
        in_tz = False
        for line in lines:
            if line == "BEGIN:VEVENT":
                cur = [line]
            elif line == "END:VEVENT" and cur is not None:
                cur.append(line)
                blocks.append(cur)
                cur = None
            elif cur is not None:
                cur.append(line)
            elif line == "END:VCALENDAR":
                continue
            else:
                if line == "BEGIN:VTIMEZONE":
                    in_tz = True
                elif line == "END:VTIMEZONE":
                    in_tz = False
                elif in_tz and line.startswith("TZID:"):
                    tzids.add(line[5:])
                head.append(line)
        # reschedule or cancel one future single meeting organized by the mailbox owner that has
        # no other internal attendee (so no other file carries a copy)
        cands = []
        for i, b in enumerate(blocks):
            if any(x.startswith(("RRULE", "RECURRENCE-ID", "STATUS:CANCELLED")) for x in b):
                continue
            if not any(x.startswith("ORGANIZER") and x.lower().endswith(mailbox) for x in b):
                continue
            internal = [
                x
                for x in b
                if x.startswith("ATTENDEE")
                and "@acme-sales.example" in x.lower()
                and not x.lower().endswith(mailbox)
            ]
            start = next((x for x in b if x.startswith("DTSTART")), None)
            if internal or start is None or ";VALUE=DATE" in start:
                continue
            _, params, value = split_prop(start)
            if parse_ics_datetime(value, params) > self.hi:
                cands.append(i)
        if cands:
            b = blocks[rng.choice(cands)]
            cancel = rng.random() < 0.4
            out = []
            for x in b:
                name = x.split(":", 1)[0].split(";", 1)[0]
                if name == "SEQUENCE":
                    x = f"SEQUENCE:{int(x.split(':', 1)[1]) + 1}"
                elif name == "LAST-MODIFIED":
                    continue
                elif name == "STATUS" and cancel:
                    x = "STATUS:CANCELLED"
                elif name in ("DTSTART", "DTEND") and not cancel:
                    _, params, value = split_prop(x)
                    t = parse_ics_datetime(value, params) + DAY
                    x = f"{name};TZID={tz}:{fmt_local(to_local(t, tz))}"
                out.append(x)
                if name == "CREATED":
                    out.append(f"LAST-MODIFIED:{fmt_utc(self.t())}")
            b[:] = out
        if tz not in tzids:
            # insert the missing VTIMEZONE before the first event
            head.extend(vtimezone(tz).rstrip("\r\n").split("\r\n"))
        text = "\r\n".join(fold(x) for x in head) + "\r\n"
        text += "".join("\r\n".join(fold(x) for x in b) + "\r\n" for b in blocks)
        text += "".join(new_blocks)
        text += "END:VCALENDAR\r\n"
        path.write_text(text, encoding="utf-8", newline="")

    # ---- run ---------------------------------------------------------------------------------
    def run(self, quiet: bool) -> GroundTruth:
        steps = [
            self.answer_fresh_leads,
            self.roll_forward_close_dates,
            self.update_opportunities,
            self.update_simple,
            self.insert_rows,
        ]
        bar = tqdm(total=len(steps) + 3, desc="demo change", disable=quiet, leave=False)
        self.conn.execute("BEGIN")
        try:
            for step in steps:
                step()
                bar.update(1)
            touched = self.calendars()
            for t, rows in self.inserts.items():
                if rows:
                    cols = COLUMNS[t]
                    self.conn.executemany(
                        f'INSERT INTO "{t}" ({_cols(t)}) VALUES ({",".join("?" * len(cols))})', rows
                    )
            bar.update(1)
            self.deletes()
            bar.update(1)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        finally:
            self.conn.close()
        data = dict(self.gt.data)
        fresh = recompute(self.out, self.as_of)
        data.update(fresh)
        data["as_of"] = self.as_of.isoformat()
        data["as_of_timestamp_utc"] = self.hi.isoformat() + "Z"
        data["generator_state"] = {
            "next_company_serial": self.companies.next_serial,
            "next_id_serial": dict(self.ids.next_serial),
            "next_change_serial": self.local_serial,
        }
        data.setdefault("change_sets", []).append(
            {
                "seed": self.seed,
                "fraction": self.fraction,
                "previous_as_of": self.prev.isoformat(),
                "as_of": self.as_of.isoformat(),
                "window_utc": [self.lo.isoformat() + "Z", self.hi.isoformat() + "Z"],
                "rows": self.summary,
                "calendar_files_touched": touched,
            }
        )
        gt = GroundTruth(data)
        gt.write(self.out / GROUND_TRUTH_FILE)
        bar.update(1)
        bar.close()
        return gt


def _cols(table: str) -> str:
    return ", ".join(f'"{c}"' for c in COLUMNS[table])


def apply_change(
    out_dir: Path | str,
    fraction: float = 0.01,
    seed: int = 7,
    as_of: date | None = None,
    *,
    quiet: bool = False,
) -> GroundTruth:
    """Applies one change set to a generated directory and returns the new ground truth."""
    if not 0 < fraction <= 0.5:
        raise ValueError("fraction must be in (0, 0.5]")
    return _Change(Path(out_dir), fraction, seed, as_of).run(quiet)
