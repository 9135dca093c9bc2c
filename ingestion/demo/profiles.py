"""Scale profiles for the demo generator.

Each profile replicates a set of teams ``replicas`` times (the org grows by adding teams, so the
per-team generation unit -- and therefore peak memory -- stays the same at every scale).
Row volumes scale with ``leads_total`` and the number of account executives.

Sizes (two-year window; XS, S and M as generated with seed 42; L is M times 5 -- same teams,
five times the replicas and leads). "Reps" are account executives and SDRs; every user -- reps, team
managers and the VP -- has a mailbox file.

=====  ============  =====  ======  ======  =============  ============  =====  =======  =========
name   users/files   reps   teams   leads   opportunities  opp.history   tasks  VEVENTs  occurrences
=====  ============  =====  ======  ======  =============  ============  =====  =======  =========
XS     11            8      2       410     189            1.2k          2.1k   213      ~5.5k
S      42            36     5       19.9k   6.0k           37k           92k    3.9k     22k
M      411           360    50      200k    60k            375k          940k   39k      ~0.22M
L      2,051         1,800  250     ~1.0M   ~300k          ~1.87M        ~4.7M  ~195k    ~1.1M
=====  ============  =====  ======  ======  =============  ============  =====  =======  =========

L is the issue's "about 2,000 reps" org: 2,051 mailboxes (1,800 reps, 250 managers, the VP),
1M leads, 300k opportunities, ~2M history rows, ~5M tasks, ~200k VEVENTs expanding to ~1M
occurrences.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # (team template, active reps, reps who left during the window) per replica
    teams: tuple[tuple[str, int, int], ...]
    replicas: int
    leads_total: int
    campaigns_total: int
    # account executives' own pipeline, per AE and year
    book_accounts_per_ae: float = 12.0  # pre-window customers per AE
    prospect_opps_per_ae_year: float = 7.0  # AE-sourced new-business opportunities
    idle_accounts_per_ae_year: float = 4.0  # prospect accounts that never got an opportunity
    # how many reps per team were hired in the last ~9 months (at least one <90 days)
    new_hires_per_team: int = 1

    @property
    def reps(self) -> int:
        return self.replicas * sum(a + b for _, a, b in self.teams)


# The org shape of S; M and L replicate it (``replicas``) to reach their size.
STANDARD_TEAMS = (
    ("AMER Enterprise", 6, 1),
    ("AMER Mid-Market", 7, 1),
    ("EMEA", 6, 1),
    ("APAC", 5, 0),
    ("SDR", 8, 1),
)

PROFILES: dict[str, Profile] = {
    "XS": Profile(
        name="XS",
        teams=(("AMER Mid-Market", 4, 1), ("SDR", 3, 0)),
        replicas=1,
        leads_total=420,
        campaigns_total=8,
        book_accounts_per_ae=3.0,
        prospect_opps_per_ae_year=4.0,
        idle_accounts_per_ae_year=2.0,
    ),
    "S": Profile(
        name="S",
        teams=STANDARD_TEAMS,
        replicas=1,
        leads_total=20_000,
        campaigns_total=36,
    ),
    "M": Profile(
        name="M",
        teams=STANDARD_TEAMS,
        replicas=10,
        leads_total=200_000,
        campaigns_total=110,
    ),
    "L": Profile(
        name="L",
        teams=STANDARD_TEAMS,
        replicas=50,
        leads_total=1_000_000,
        campaigns_total=250,
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name.upper()]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
