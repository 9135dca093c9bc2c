"""Scale profiles for the demo generator.

Each profile replicates a set of teams ``replicas`` times (the org grows by adding teams, so the
per-team generation unit -- and therefore peak memory -- stays the same at every scale).
Row volumes scale with ``leads_total`` and the number of account executives.

Approximate sizes (two-year window):

=====  =======  ======  =========  ============  ==========  ========  ===========
name   reps     teams   leads      opportunities  opp.history  tasks     VEVENTs
=====  =======  ======  =========  ============  ==========  ========  ===========
XS     8        2       ~400       ~150          ~1k          ~3k       ~200
S      ~40      5       ~20k       ~6k           ~40k         ~100k     ~4k
M      ~400     50      ~200k      ~60k          ~400k        ~1M       ~40k
L      ~2,000   250     ~1M        ~300k         ~2M          ~5M       ~200k
=====  =======  ======  =========  ============  ==========  ========  ===========
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
