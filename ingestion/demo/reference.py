"""Static reference data for the demo generator (names, picklists, stages, time zones)."""

from __future__ import annotations

from datetime import date, timedelta

COMPANY_DOMAIN = "acme-sales.example"
COMPANY_NAME = "Acme Sales"

# --------------------------------------------------------------------------------------------
# Opportunity stages (Salesforce defaults) and the generator's *true* stage dynamics.
# --------------------------------------------------------------------------------------------
# (name, default probability, ForecastCategoryName label, ForecastCategory API value, closed, won)
STAGES: list[tuple[str, int, str, str, bool, bool]] = [
    ("Prospecting", 10, "Pipeline", "Pipeline", False, False),
    ("Qualification", 10, "Pipeline", "Pipeline", False, False),
    ("Needs Analysis", 20, "Pipeline", "Pipeline", False, False),
    ("Value Proposition", 50, "Pipeline", "Pipeline", False, False),
    ("Id. Decision Makers", 60, "Pipeline", "Pipeline", False, False),
    ("Perception Analysis", 70, "Pipeline", "Pipeline", False, False),
    ("Proposal/Price Quote", 75, "Best Case", "BestCase", False, False),
    ("Negotiation/Review", 90, "Commit", "Forecast", False, False),
    ("Closed Won", 100, "Closed", "Closed", True, True),
    ("Closed Lost", 0, "Omitted", "Omitted", True, False),
]
N_OPEN_STAGES = 8
WON = 8
LOST = 9
STAGE_NAMES = [s[0] for s in STAGES]

# Probability that an opportunity sitting in open stage i advances to the next stage (for the
# last open stage: to Closed Won) rather than being lost -- for a fully ramped rep.
STAGE_ADVANCE_PROBABILITY: list[float] = [0.62, 0.70, 0.80, 0.85, 0.88, 0.90, 0.80, 0.70]


def true_win_probabilities(advance: list[float] | None = None) -> list[float]:
    """P(eventually Closed Won | the opportunity has entered open stage i)."""
    adv = advance or STAGE_ADVANCE_PROBABILITY
    out = [0.0] * N_OPEN_STAGES
    acc = 1.0
    for i in range(N_OPEN_STAGES - 1, -1, -1):
        acc *= adv[i]
        out[i] = acc
    return out


# Ramp: multiplier applied to the advance probability of the last two open stages and to deal
# size, by the owner's tenure (days since Hire_Date__c) when the opportunity is created.
RAMP_RULES: list[tuple[int, float, float]] = [  # (tenure_days_lt, win_multiplier, amount_mult)
    (90, 0.70, 0.60),
    (180, 0.85, 0.80),
]

# --------------------------------------------------------------------------------------------
# Leads
# --------------------------------------------------------------------------------------------
LEAD_SOURCES: list[tuple[str | None, float, float]] = [  # (source, weight, conversion prob)
    ("Web", 0.33, 0.24),
    ("Phone Inquiry", 0.10, 0.30),
    ("Partner Referral", 0.10, 0.36),
    ("Trade Show", 0.13, 0.20),
    ("Advertisement", 0.14, 0.14),
    ("Employee Referral", 0.07, 0.42),
    (None, 0.13, 0.22),
]
LEAD_STATUS_OPEN = "Open - Not Contacted"
LEAD_STATUS_WORKING = "Working - Contacted"
LEAD_STATUS_CONVERTED = "Closed - Converted"
LEAD_STATUS_CLOSED = "Closed - Not Converted"

TASK_STATUSES_OPEN = ["Not Started", "In Progress", "Waiting on someone else", "Deferred"]

# Campaign type -> lead source it feeds
CAMPAIGN_TYPES: list[tuple[str, str, float, float, int]] = [
    # (type, lead source, min budget, max budget, duration days)
    ("Webinar", "Web", 2_000, 9_000, 1),
    ("Email", "Web", 1_000, 6_000, 14),
    ("Trade Show", "Trade Show", 20_000, 90_000, 3),
    ("Conference", "Trade Show", 15_000, 60_000, 2),
    ("Advertisement", "Advertisement", 10_000, 60_000, 45),
    ("Partners", "Partner Referral", 5_000, 25_000, 90),
    ("Referral Program", "Employee Referral", 2_000, 10_000, 120),
]
CAMPAIGN_THEMES = [
    "Revenue Operations Summit", "Pipeline Acceleration", "Data-Driven Selling", "Cloud Migration",
    "AI for Sales Teams", "Customer Success Forum", "Forecasting Masterclass", "Partner Connect",
    "Spring Launch", "Autumn Roadshow", "Industry Insights", "Executive Breakfast",
    "Digital Transformation", "Security & Compliance", "Growth Playbook", "Product Launch",
]

INDUSTRIES = [
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
    "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
    "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government", "Healthcare",
    "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit",
    "Recreation", "Retail", "Shipping", "Technology", "Telecommunications", "Transportation",
    "Utilities", "Other",
]

# --------------------------------------------------------------------------------------------
# Teams, time zones, countries
# --------------------------------------------------------------------------------------------
TIME_ZONES = [
    "America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London",
    "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney",
]
TZ_REGION = {
    "America/New_York": "US", "America/Chicago": "US", "America/Los_Angeles": "US",
    "Europe/London": "UK", "Europe/Berlin": "DE", "Asia/Tokyo": "JP", "Australia/Sydney": "AU",
}


class TeamTemplate:
    def __init__(self, name, segment, time_zones, countries, deal_median, cycle_days,
                 is_sdr=False, sync_day="MO", sync_time=(9, 30)):
        self.name = name
        self.segment = segment
        self.time_zones = time_zones
        self.countries = countries
        self.deal_median = deal_median
        self.cycle_days = cycle_days
        self.is_sdr = is_sdr
        self.sync_day = sync_day
        self.sync_time = sync_time


TEAM_TEMPLATES: dict[str, TeamTemplate] = {
    t.name: t
    for t in [
        TeamTemplate("AMER Enterprise", "Enterprise",
                     ["America/New_York", "America/Chicago", "America/Los_Angeles"],
                     [("United States", 0.85), ("Canada", 0.15)], 95_000, 120),
        TeamTemplate("AMER Mid-Market", "Mid-Market",
                     ["America/Chicago", "America/New_York", "America/Los_Angeles"],
                     [("United States", 0.8), ("Canada", 0.12), ("Mexico", 0.08)], 28_000, 55),
        TeamTemplate("EMEA", "Mid-Market", ["Europe/London", "Europe/Berlin"],
                     [("United Kingdom", 0.35), ("Germany", 0.3), ("France", 0.12),
                      ("Netherlands", 0.1), ("Sweden", 0.07), ("Spain", 0.06)],
                     42_000, 75, sync_day="MO", sync_time=(10, 0)),
        TeamTemplate("APAC", "Mid-Market", ["Australia/Sydney", "Asia/Tokyo"],
                     [("Australia", 0.45), ("Japan", 0.3), ("Singapore", 0.15),
                      ("New Zealand", 0.1)], 36_000, 70, sync_day="TU", sync_time=(9, 0)),
        TeamTemplate("SDR", "SDR", ["America/New_York", "America/Chicago", "Europe/London"],
                     [], 0, 0, is_sdr=True, sync_day="MO", sync_time=(8, 45)),
    ]
}

AE_TITLES = {
    "Enterprise": ["Enterprise Account Executive", "Senior Enterprise Account Executive"],
    "Mid-Market": ["Account Executive", "Senior Account Executive"],
    "SDR": ["Sales Development Representative", "Senior Sales Development Representative"],
}

# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------
FIRST_NAMES = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy Anthony "
    "Betty Mark Sandra Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle "
    "Kenneth Carol Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Ronald Rebecca "
    "Jason Sharon Edward Laura Jeffrey Cynthia Ryan Amy Jacob Kathleen Gary Angela Nicholas "
    "Shirley Eric Brenda Jonathan Emma Stephen Anna Larry Pamela Justin Nicole Scott Samantha "
    "Brandon Katherine Benjamin Christine Samuel Helen Gregory Debra Alexander Rachel Patrick "
    "Carolyn Frank Janet Raymond Maria Jack Olivia Dennis Heather Jerry Diane Tyler Julie Aaron "
    "Joyce Oliver Sophie Lukas Hannah Felix Lena Noah Mia Liam Chloe Lucas Camille Hugo Ines "
    "Mateo Lucia Hiroshi Yuki Kenji Aiko Takumi Sakura Wei Mei Arjun Priya Rohan Ananya Omar "
    "Layla Ahmed Fatima Ingrid Lars Astrid Nils Sven Freya Ethan Ava Mason Isla Harper Leo Zoe"
).split() + ["Zoë", "José", "Renée", "Björn", "Søren", "Chloé", "Jürgen", "Élodie"]

LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers "
    "Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo "
    "Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell "
    "Coleman Butler Henderson Barnes Fisher Vasquez Simmons Romero Jordan Patterson Alexander "
    "Hamilton Graham Reynolds Griffin Wallace West Cole Hayes Bryant Gibson Ellis Stevens Murray "
    "Ford Marshall Owens McDonald Harrison Kennedy Wells Schmidt Schneider Fischer Weber Meyer "
    "Wagner Becker Hoffmann Koch Richter Klein Wolf Schulz Dubois Laurent Bernard Moreau Lefebvre "
    "Rossi Russo Ferrari Esposito Bianchi Tanaka Suzuki Takahashi Watanabe Ito Yamamoto Nakamura "
    "Kobayashi Sato Chen Wang Li Zhang Liu Singh Kumar Sharma Gupta Khan Ali Hansen Johansson "
    "Larsen Andersen Nielsen Jensen Kowalski Novak O'Brien O'Connor MacLeod Fraser Walsh Byrne"
).split() + ["Müller", "García", "Sørensen", "Łukasiewicz", "Núñez", "Gröning", "Åberg"]

COMPANY_PREFIXES = (
    "Blue Red Green Silver Golden Iron Granite Cedar Maple Oak Pine Willow Summit Harbor River "
    "Lake Ocean Coastal Northern Southern Eastern Western Bright Clear Rapid Swift Prime Vital "
    "True Bold Noble Royal Grand Urban Metro Alpine Prairie Desert Canyon Falcon Eagle Hawk Fox "
    "Wolf Bear Lion Tiger Orion Apex Vertex Zenith Nova Stellar Lunar Solar Quantum Vector Matrix "
    "Nimbus Cirrus Aurora Polar Tidal Crystal Amber Cobalt Crimson Indigo Ivory Jade Onyx Ruby "
    "Sapphire Scarlet Emerald Copper Bronze Steel Stone Timber Meadow Valley Ridge Highland "
    "Lowland Island Bay Cape Delta Echo Atlas Titan Pioneer Frontier Heritage Liberty Unity "
    "Keystone Cornerstone Beacon Lighthouse Compass Anchor Sterling Crescent Horizon Pinnacle"
).split()
COMPANY_ROOTS = (
    "wave stone field works point gate bridge path line peak forge mark craft core logic labs "
    "scape view tech base flow sync cast leaf wood brook dale ford haven hurst land mere moor "
    "port shore side spring star sun ton vale well wind wing bank bell crest dock edge fall "
    "glen grove hill hold hope lane light mont nest north south east west rock root rose sea "
    "shield sky stream tide tower trail tree vine way wise yard zone arc axis beam bolt chip "
    "cloud code data dyne flux gear grid hub link mind net node pixel pulse quest scale shift "
    "signal spark sphere stack thread tron verse vista volt"
).split()
COMPANY_SECTORS = [
    "Logistics", "Systems", "Health", "Foods", "Energy", "Capital", "Analytics", "Robotics",
    "Pharma", "Media", "Foods", "Motors", "Telecom", "Retail", "Builders", "Insurance",
    "Software", "Networks", "Materials", "Labs", "Consulting", "Partners", "Industries",
    "Manufacturing", "Hospitality", "Learning", "Biotech", "Aerospace", "Marine", "Textiles",
    "Apparel", "Farms", "Utilities", "Security", "Finance", "Entertainment", "Devices",
    "Semiconductors", "Chemicals", "Mobility",
]
COMPANY_SUFFIXES = ["Inc.", "LLC", "Group", "Ltd", "GmbH", "Corp.", "AG", "Co.", "S.A.", "Pty Ltd"]
CUSTOMER_TLDS = ["example", "test"]

CONTACT_TITLES = [
    "CEO", "CFO", "COO", "CTO", "CIO", "VP of Operations", "VP of Sales", "VP Finance",
    "Director of IT", "IT Manager", "Head of Procurement", "Procurement Manager",
    "Operations Manager", "Director of Engineering", "Head of Revenue Operations",
    "Finance Manager", "Office Manager", "Project Manager", "Business Analyst",
    "Chief Digital Officer", "Head of Customer Success", "Marketing Director",
]


# --------------------------------------------------------------------------------------------
# Holidays (approximate, good enough for EXDATEs and business-day scheduling)
# --------------------------------------------------------------------------------------------
def _easter(year: int) -> date:
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    la = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * la) // 451
    month = (h + la - 7 * m + 114) // 31
    day = ((h + la - 7 * m + 114) % 31) + 1
    return date(year, month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """n-th (1-based) weekday of month; n=-1 for the last one."""
    if n > 0:
        d = date(year, month, 1)
        d += timedelta(days=(weekday - d.weekday()) % 7)
        return d + timedelta(weeks=n - 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - weekday) % 7)


def holidays(region: str, year: int) -> set[date]:
    e = _easter(year)
    if region == "US":
        return {
            date(year, 1, 1), _nth_weekday(year, 1, 0, 3), _nth_weekday(year, 2, 0, 3),
            _nth_weekday(year, 5, 0, -1), date(year, 7, 4), _nth_weekday(year, 9, 0, 1),
            _nth_weekday(year, 11, 3, 4), _nth_weekday(year, 11, 3, 4) + timedelta(days=1),
            date(year, 12, 24), date(year, 12, 25), date(year, 12, 31),
        }
    if region == "UK":
        return {
            date(year, 1, 1), e - timedelta(days=2), e + timedelta(days=1),
            _nth_weekday(year, 5, 0, 1), _nth_weekday(year, 5, 0, -1),
            _nth_weekday(year, 8, 0, -1), date(year, 12, 25), date(year, 12, 26),
        }
    if region == "DE":
        return {
            date(year, 1, 1), e - timedelta(days=2), e + timedelta(days=1), date(year, 5, 1),
            e + timedelta(days=39), e + timedelta(days=50), date(year, 10, 3),
            date(year, 12, 24), date(year, 12, 25), date(year, 12, 26), date(year, 12, 31),
        }
    if region == "JP":
        return {
            date(year, 1, 1), date(year, 1, 2), date(year, 1, 3), _nth_weekday(year, 1, 0, 2),
            date(year, 2, 11), date(year, 2, 23), date(year, 3, 20), date(year, 4, 29),
            date(year, 5, 3), date(year, 5, 4), date(year, 5, 5), _nth_weekday(year, 7, 0, 3),
            date(year, 8, 11), _nth_weekday(year, 9, 0, 3), date(year, 9, 23),
            _nth_weekday(year, 10, 0, 2), date(year, 11, 3), date(year, 11, 23),
        }
    if region == "AU":
        return {
            date(year, 1, 1), date(year, 1, 26), e - timedelta(days=2), e + timedelta(days=1),
            date(year, 4, 25), _nth_weekday(year, 6, 0, 2), _nth_weekday(year, 10, 0, 1),
            date(year, 12, 25), date(year, 12, 26),
        }
    return set()


# Seasonality of lead / opportunity creation by calendar month (1..12): Q4 high, summer dip.
MONTH_SEASONALITY = {
    1: 0.92, 2: 1.00, 3: 1.08, 4: 1.00, 5: 1.02, 6: 1.00,
    7: 0.78, 8: 0.72, 9: 1.05, 10: 1.12, 11: 1.18, 12: 0.88,
}
# Lead arrival share by weekday (Mon..Sun)
WEEKDAY_WEIGHTS = [1.15, 1.2, 1.2, 1.1, 0.95, 0.22, 0.18]
