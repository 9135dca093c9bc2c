"""The HubSpot CRM connector (ingestion/hubspot_api.py, ingestion/hubspot_load.py) against the fake
HubSpot API on 127.0.0.1 (tests/fakes/hubspot_server.py).

The org is a tiny Salesforce-shaped SQLite file the fake translates (built here by hand), plus generated
tasks where paging, the search ceiling and resuming need more records than a page; one test loads the
XS demo org. No test sleeps: the client gets a recording ``sleep`` and, where it matters, a fixed
``jitter``. The fake's deals have no ``hs_analytics_source``, so the lead source property is the
fake's custom ``lead_source`` (as in the pipeline test through HubSpot).
"""

from __future__ import annotations

import logging
import shutil
import socket
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from ingestion.crm_load import LoadResult, parse_source_datetime
from ingestion.errors import SourceError
from ingestion.hubspot_api import (
    HubSpotClient,
    HubSpotReader,
    HubSpotSettings,
    epoch_ms,
    hubspot_objects,
)
from ingestion.hubspot_load import load_hubspot_deal_stages, load_hubspot_object, load_hubspot_owners
from ingestion.warehouse import Warehouse, utc_now
from tests.crm_fixtures import create_crm, execute, insert_rows
from tests.fakes.hubspot_server import (
    FAKE_CLIENT_ID,
    FAKE_CLIENT_SECRET,
    FAKE_PRIVATE_APP_TOKEN,
    FAKE_REFRESH_TOKEN,
    FakeHubSpot,
    encode_cursor,
)

SECRETS = (FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_REFRESH_TOKEN, FAKE_PRIVATE_APP_TOKEN)
LEAD_SOURCE = "lead_source"
OBJECTS = hubspot_objects(LEAD_SOURCE)
LOAD_COLUMNS = ("_loaded_at", "_batch_id")

U1, U2 = "005000000000001AAA", "005000000000002AAA"
R1, R2 = "00E000000000001AAA", "00E000000000002AAA"
A1, A2 = "001000000000001AAA", "001000000000002AAA"
C1 = "003000000000001AAA"
L1, L2 = "00Q000000000001AAA", "00Q000000000002AAA"
O1, O2, O3, O4, O5 = (f"00600000000000{n}AAA" for n in range(1, 6))
H1, H2, H3, H4 = (f"00800000000000{n}AAA" for n in range(1, 5))
T1, T2, T3, T4 = (f"00T00000000000{n}AAA" for n in range(1, 5))
# the HubSpot ids the fake gives them (a base per kind plus the rank of the Salesforce Id)
OWNER_ADA, OWNER_GRACE = "100000001", "100000002"
TEAM_REPS, TEAM_VPS = "300000001", "300000002"
ACME, OLD_CO = "1000000001", "1000000002"
ALAN, BARBARA, EDSGER = "2000000001", "3000000001", "3000000002"
DEAL_NEW, DEAL_UPSELL, DEAL_LOST = "4000000001", "4000000002", "4000000003"
CALL, EMAIL, TASK, TASK_GONE = "5000000001", "5000000002", "5000000003", "5000000004"
MEETING = "6000000001"


# --- helpers -------------------------------------------------------------------------------------


class Sleeps(list[float]):
    """Stands in for time.sleep: records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def settings_for(fake: FakeHubSpot, oauth: bool = False, **overrides: Any) -> HubSpotSettings:
    credentials = (
        {
            "client_id": FAKE_CLIENT_ID,
            "client_secret": FAKE_CLIENT_SECRET,
            "refresh_token": FAKE_REFRESH_TOKEN,
        }
        if oauth
        else {"access_token": FAKE_PRIVATE_APP_TOKEN}
    )
    values: dict[str, Any] = {
        "lead_source_property": LEAD_SOURCE,
        "backoff_base": 0.01,
        "backoff_cap": 0.04,
        **credentials,
        **overrides,
    }
    return HubSpotSettings(api_url=fake.url, **values)


@contextmanager
def hubspot_reader(
    fake: FakeHubSpot,
    sleep: Callable[[float], None] | None = None,
    jitter: Callable[[], float] | None = None,
    oauth: bool = False,
    **settings: Any,
) -> Iterator[HubSpotReader]:
    extra: dict[str, Any] = {"jitter": jitter} if jitter else {}
    client = HubSpotClient(
        settings_for(fake, oauth, **settings), sleep=Sleeps() if sleep is None else sleep, **extra
    )
    reader = HubSpotReader(client)
    try:
        yield reader
    finally:
        reader.close()


def load(
    fake: FakeHubSpot,
    warehouse: Warehouse,
    name: str,
    overlap: timedelta = timedelta(hours=1),
    batch_size: int = 10_000,
    **kw: Any,
) -> LoadResult:
    with hubspot_reader(fake, **kw) as reader:
        return load_hubspot_object(reader, warehouse, reader.objects[name], overlap, batch_size)


def load_everything(fake: FakeHubSpot, warehouse: Warehouse, **kw: Any) -> dict[str, LoadResult]:
    with hubspot_reader(fake, **kw) as reader:
        results = {name: load_hubspot_object(reader, warehouse, obj) for name, obj in reader.objects.items()}
        results["owners"] = load_hubspot_owners(reader, warehouse)
        results["deal_stages"] = load_hubspot_deal_stages(reader, warehouse)
    return results


def raw_rows(warehouse: Warehouse, name: str, load_columns: bool = False) -> dict[str, dict[str, Any]]:
    """raw.hubspot_<name> by id, each row a dict (without _loaded_at and _batch_id unless asked)."""
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        relation = connection.execute(f"SELECT * FROM raw.hubspot_{name} ORDER BY id")
        columns = [d[0] for d in relation.description]
        rows = [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]
    if not load_columns:
        rows = [{k: v for k, v in row.items() if k not in LOAD_COLUMNS} for row in rows]
    found = {row["id"]: row for row in rows}
    assert len(found) == len(rows), f"duplicate ids in raw.hubspot_{name}"
    return found


def query(warehouse: Warehouse, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        return connection.execute(sql, params or []).fetchall()


def resume_points(warehouse: Warehouse) -> list[tuple]:
    return query(warehouse, "SELECT table_name, window_start, window_end, after_id FROM meta.hubspot_resume")


def cursor(warehouse: Warehouse, name: str) -> datetime | None:
    found = query(
        warehouse,
        "SELECT cursor_value FROM meta.sync_state WHERE source = 'hubspot' AND table_name = ?",
        [f"hubspot_{name}"],
    )
    return found[0][0] if found else None


def served(fake: FakeHubSpot, name: str, archived: bool, properties: list[str]) -> list[dict[str, Any]]:
    """Every live or archived record of an object as the fake serves it (its list endpoint, paged)."""
    records: list[dict[str, Any]] = []
    params = {"archived": str(archived).lower(), "limit": "100", "properties": ",".join(properties)}
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {FAKE_PRIVATE_APP_TOKEN}"
        while True:
            page = session.get(f"{fake.url}/crm/v3/objects/{name}", params=params, timeout=10).json()
            records += page["results"]
            if "paging" not in page:
                return records
            params["after"] = page["paging"]["next"]["after"]


def served_rows(fake: FakeHubSpot, name: str, columns: list[str]) -> dict[str, dict[str, Any]]:
    """The raw rows the fake's records make: record fields, property values as sent, else null.

    Live records carry every listed property (the search asks for all of them); archived ones the
    properties staging needs (all the list endpoint is asked for). Association columns are left out.
    """
    obj = OBJECTS[name]
    listed = [c for c in columns if not c.startswith("associations_") and c not in LOAD_COLUMNS]
    everything = [c for c in listed if c not in ("id", "archived", "archivedat", "createdat", "updatedat")]
    rows = {}
    for archived, names in ((False, everything), (True, sorted({*obj.required, obj.modified_property}))):
        for record in served(fake, name, archived, names):
            row: dict[str, Any] = dict.fromkeys(listed)
            row.update(record["properties"])
            row.update(
                id=record["id"],
                archived=str(record["archived"]).lower(),
                archivedat=record.get("archivedAt"),
                createdat=record["createdAt"],
                updatedat=record["updatedAt"],
            )
            rows[record["id"]] = row
    return rows


def without_associations(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i: {k: v for k, v in row.items() if not k.startswith("associations_")} for i, row in rows.items()}


def hs_time(moment: datetime) -> str:
    """A naive-UTC datetime as the SQLite org stores it, in HubSpot's spelling."""
    return moment.isoformat(timespec="milliseconds") + "Z"


def from_epoch_ms(text: str) -> datetime:
    return datetime.fromtimestamp(int(text) / 1000, UTC).replace(tzinfo=None)


def search_filters(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    [group] = body["filterGroups"]
    return [(f["propertyName"], f["operator"], f["value"]) for f in group["filters"]]


def add_tasks(crm: Path, count: int, deleted: bool = False, prefix: str = "00T1") -> list[str]:
    """``count`` tasks (TaskSubtype Task) with increasing Ids and modification dates."""
    start = datetime(2024, 5, 1)
    rows = [
        {
            "Id": f"{prefix}{n:011d}AAA"[:18],
            "OwnerId": U1,
            "Subject": f"Follow-up {n}",
            "TaskSubtype": "Task",
            "Status": "Not Started",
            "CreatedDate": hs_time(start + timedelta(minutes=n)),
            "SystemModstamp": hs_time(start + timedelta(minutes=n, seconds=30)),
            "IsDeleted": "true" if deleted else "false",
        }
        for n in range(count)
    ]
    insert_rows(crm, "task", rows)
    return [row["Id"] for row in rows]


def assert_no_secret(text: str, tokens: tuple[str, ...] = ()) -> None:
    for secret in (*SECRETS, *tokens):
        assert secret not in text


def make_org(path: Path) -> Path:
    """Two owners in two teams, two companies (one deleted), a contact and two leads, three deals (one
    deleted; one with stage history), a call, an email and two tasks (one deleted)."""
    create_crm(path)
    insert_rows(path, "userrole", [{"Id": R1, "Name": "Sales Rep"}, {"Id": R2, "Name": "VP Sales"}])
    insert_rows(
        path,
        "user",
        [
            {
                "Id": U1,
                "Name": "Ada Lovelace",
                "Email": "ada@sales.example",
                "UserRoleId": R1,
                "IsActive": "true",
                "CreatedDate": "2020-01-01 09:00:00",
                "SystemModstamp": "2024-01-15T14:22:10.123Z",
            },
            {
                "Id": U2,
                "Name": "Grace Hopper",
                "Email": "grace@sales.example",
                "UserRoleId": R2,
                "IsActive": 0,
                "CreatedDate": "2020-02-01T10:00:00Z",
                "SystemModstamp": "2024-02-01T00:00:00Z",
            },
        ],
    )
    insert_rows(
        path,
        "account",
        [
            {
                "Id": A1,
                "Name": "Acme GmbH",
                "Industry": "Technology",
                "NumberOfEmployees": "250",
                "AnnualRevenue": 1500000.0,
                "BillingCountry": "Germany",
                "OwnerId": U1,
                "CreatedDate": "2023-03-01 08:00:00",
                "SystemModstamp": "2024-03-01T08:00:00Z",
                "IsDeleted": 0,
            },
            {
                "Id": A2,
                "Name": "Old Co",
                "Industry": "Retail",
                "AnnualRevenue": "n/a",
                "OwnerId": U2,
                "CreatedDate": "2022-01-01T00:00:00Z",
                "SystemModstamp": "2024-04-01T12:00:00+02:00",
                "IsDeleted": "true",
            },
        ],
    )
    insert_rows(
        path,
        "contact",
        [
            {
                "Id": C1,
                "AccountId": A1,
                "FirstName": "Alan",
                "LastName": "Turing",
                "Email": "alan@acme.example",
                "Title": "CTO",
                "OwnerId": U1,
                "CreatedDate": "2023-03-02T10:00:00Z",
                "SystemModstamp": "2024-03-05T10:00:00.250Z",
                "IsDeleted": "false",
            }
        ],
    )
    insert_rows(
        path,
        "lead",
        [
            {
                "Id": L1,
                "FirstName": "Barbara",
                "LastName": "Liskov",
                "Email": "barbara@liskov.example",
                "Company": "Liskov LLC",
                "LeadSource": "Web",
                "Status": "Closed - Converted",
                "OwnerId": U2,
                "IsConverted": "true",
                "ConvertedDate": "2024-02-10",
                "ConvertedOpportunityId": O1,
                "CreatedDate": "2024-01-05T12:00:00Z",
                "SystemModstamp": "2024-02-10T12:30:00Z",
                "IsDeleted": 0,
            },
            {
                "Id": L2,
                "FirstName": "Edsger",
                "LastName": "Dijkstra",
                "Company": "EWD",
                "LeadSource": "Partner Referral",
                "Status": "Working - Contacted",
                "OwnerId": "",
                "IsConverted": 0,
                "CreatedDate": "2024-01-20 08:15:00",
                "SystemModstamp": "2024-01-21T08:15:00Z",
                "IsDeleted": "false",
            },
        ],
    )
    deal = {"AccountId": A1, "OwnerId": U1, "Type": "New Business", "IsDeleted": 0}
    insert_rows(
        path,
        "opportunity",
        [
            {
                **deal,
                "Id": O1,
                "Name": "Acme - New Deal",
                "LeadSource": "Web",
                "StageName": "Closed Won",
                "Amount": "54500.0",
                "Probability": 100,
                "ForecastCategoryName": "Closed",
                "CloseDate": "2024-03-30",
                "IsClosed": 1,
                "IsWon": "true",
                "CreatedDate": "2024-01-10T09:00:00Z",
                "SystemModstamp": "2024-03-30T16:00:00Z",
            },
            {
                **deal,
                "Id": O2,
                "Name": "Acme - Upsell",
                "OwnerId": U2,
                "Type": "Existing Business",
                "StageName": "Negotiation/Review",
                "Amount": 61000.5,
                "Probability": "90",
                "ForecastCategoryName": "Commit",
                "CloseDate": "2024-06-30",
                "IsClosed": "false",
                "IsWon": 0,
                "CreatedDate": "2024-02-15 10:00:00",
                "SystemModstamp": "2024-02-20T10:00:00Z",
            },
            {
                **deal,
                "Id": O3,
                "Name": "Old Co - Pilot",
                "AccountId": A2,
                "StageName": "Closed Lost",
                "Amount": 1000,
                "Probability": 0,
                "ForecastCategoryName": "Omitted",
                "CloseDate": "2024-01-31",
                "IsClosed": 1,
                "IsWon": 0,
                "CreatedDate": "2023-12-01T00:00:00Z",
                "SystemModstamp": "2024-04-01T10:00:00Z",
                "IsDeleted": "true",
            },
        ],
    )
    history = [  # stored out of order; H4 is deleted
        (H3, "2024-03-30 16:00:00", "Closed Won", 54500, 100, "Closed", "2024-03-30", 0),
        (H1, "2024-01-10T09:00:00Z", "Prospecting", 50000, 10, "Pipeline", "2024-03-31", 0),
        (H4, "2024-02-15T00:00:00Z", "Needs Analysis", 1, 20, "Pipeline", "2024-04-30", "true"),
        (H2, "2024-02-01T11:30:00Z", "Prospecting", "54500.0", "10.0", "Pipeline", "2024-03-31", "false"),
    ]
    columns = ("Id", "CreatedDate", "StageName", "Amount", "Probability", "ForecastCategory", "CloseDate")
    insert_rows(
        path,
        "opportunityhistory",
        [{**dict(zip(columns, h[:7], strict=True)), "OpportunityId": O1, "IsDeleted": h[7]} for h in history],
    )
    task = {"OwnerId": U1, "Status": "Completed", "IsDeleted": 0}
    insert_rows(
        path,
        "task",
        [
            {
                **task,
                "Id": T1,
                "WhoId": C1,
                "WhatId": O1,
                "Subject": "Discovery call",
                "TaskSubtype": "Call",
                "ActivityDate": "2024-01-12",
                "CreatedDate": "2024-01-12T15:00:00Z",
                "SystemModstamp": "2024-01-12T15:30:00Z",
            },
            {
                **task,
                "Id": T2,
                "WhoId": L2,
                "OwnerId": U2,
                "Subject": "Intro",
                "TaskSubtype": "Email",
                "ActivityDate": "2024-01-25",
                "CreatedDate": "2024-01-22 10:00:00",
                "SystemModstamp": "2024-01-22T10:00:00Z",
            },
            {
                **task,
                "Id": T3,
                "WhatId": A1,
                "Subject": "Send contract",
                "TaskSubtype": "Task",
                "Status": "Waiting on someone else",
                "CreatedDate": "2024-02-01T09:00:00Z",
                "SystemModstamp": "2024-02-02T09:00:00Z",
            },
            {
                **task,
                "Id": T4,
                "WhoId": C1,
                "Subject": "Old follow-up",
                "TaskSubtype": "Task",
                "Status": "Not Started",
                "CreatedDate": "2024-01-03T09:00:00Z",
                "SystemModstamp": "2024-01-04T09:00:00Z",
                "IsDeleted": "true",
            },
        ],
    )
    return path


@pytest.fixture(scope="module")
def org_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_org(tmp_path_factory.mktemp("hubspot_org") / "crm.sqlite")


@pytest.fixture
def crm(org_file: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny org for each test (building it is slower than copying it)."""
    return Path(shutil.copy(org_file, tmp_path / "crm.sqlite"))


@pytest.fixture
def fake(crm: Path) -> Iterator[FakeHubSpot]:
    with FakeHubSpot(crm) as server:
        server.add_meeting(
            U1,
            datetime(2024, 3, 1, 15),
            datetime(2024, 3, 1, 15, 30),
            "Demo",
            L1,
            deal_sf_id=O1,
            company_sf_id=A1,
        )
        yield server


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "wh.duckdb")


# --- full load -----------------------------------------------------------------------------------


def test_full_load_copies_every_record_of_every_object_as_text(
    fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    now = utc_now()
    started = now.replace(microsecond=now.microsecond // 1000 * 1000)  # windows end on whole milliseconds
    results = load_everything(fake, warehouse)

    assert {sf: fake.hubspot_id(sf) for sf in (A1, A2, C1, L1, L2, O1, O2, O3, T1, T2, T3, T4)} == {
        A1: ACME, A2: OLD_CO, C1: ALAN, L1: BARBARA, L2: EDSGER, O1: DEAL_NEW, O2: DEAL_UPSELL,
        O3: DEAL_LOST, T1: CALL, T2: EMAIL, T3: TASK, T4: TASK_GONE,
    }  # fmt: skip
    ids = {name: {i: row["archived"] for i, row in raw_rows(warehouse, name).items()} for name in OBJECTS}
    assert ids == {
        "companies": {ACME: "false", OLD_CO: "true"},
        "contacts": {ALAN: "false", BARBARA: "false", EDSGER: "false"},
        "deals": {DEAL_NEW: "false", DEAL_UPSELL: "false", DEAL_LOST: "true"},
        "calls": {CALL: "false"},
        "emails": {EMAIL: "false"},
        "meetings": {MEETING: "false"},
        "tasks": {TASK: "false", TASK_GONE: "true"},
    }
    assert {name: (r.rows_read, r.rows_in_raw) for name, r in results.items()} == {
        "companies": (2, 2), "contacts": (3, 3), "deals": (3, 3), "calls": (1, 1), "emails": (1, 1),
        "meetings": (1, 1), "tasks": (2, 2), "owners": (2, 2), "deal_stages": (10, 10),
    }  # fmt: skip
    for name in OBJECTS:  # every value exactly as the fake serves it, properties as strings
        rows = raw_rows(warehouse, name)
        columns = list(next(iter(rows.values())))
        assert without_associations(rows) == served_rows(fake, name, columns), name
        assert all(isinstance(v, str) for row in rows.values() for v in row.values() if v is not None)

    deals = raw_rows(warehouse, "deals")
    won = ("amount", "dealstage", "closedate", "hs_deal_stage_probability")
    assert {k: deals[DEAL_NEW][k] for k in won} == {
        "amount": "54500", "dealstage": "closedwon", "closedate": "2024-03-30T00:00:00.000Z",
        "hs_deal_stage_probability": "1",
    }  # fmt: skip
    assert {k: deals[DEAL_UPSELL][k] for k in ("amount", "hs_is_closed", "hs_manual_forecast_category")} == {
        "amount": "61000.5", "hs_is_closed": "false", "hs_manual_forecast_category": "COMMIT",
    }  # fmt: skip
    assert (deals[DEAL_LOST]["archivedat"], deals[DEAL_LOST]["dealname"]) == (
        "2024-04-01T10:00:00.000Z",
        "Old Co - Pilot",
    )
    companies = raw_rows(warehouse, "companies")
    assert (companies[ACME]["annualrevenue"], companies[OLD_CO]["annualrevenue"]) == ("1500000", "n/a")
    assert companies[OLD_CO]["archivedat"] == "2024-04-01T10:00:00.000Z"  # +02:00 in the org
    contacts = raw_rows(warehouse, "contacts")
    assert [contacts[i][LEAD_SOURCE] for i in (ALAN, BARBARA, EDSGER)] == [None, "Web", "Partner Referral"]

    # association columns: the associated ids, comma-separated (archived records have none)
    def associations(name: str) -> dict[str, tuple]:
        columns = [f"associations_{to}" for to in OBJECTS[name].associations]
        return {i: tuple(row[c] for c in columns) for i, row in raw_rows(warehouse, name).items()}

    assert OBJECTS["deals"].associations == ("companies", "contacts")
    assert associations("deals") == {
        DEAL_NEW: (ACME, BARBARA),  # the lead converted into the deal
        DEAL_UPSELL: (ACME, None),
        DEAL_LOST: (None, None),
    }
    assert OBJECTS["calls"].associations == ("contacts", "deals", "companies")
    assert associations("calls") == {CALL: (ALAN, DEAL_NEW, None)}
    assert associations("emails") == {EMAIL: (EDSGER, None, None)}
    assert associations("meetings") == {MEETING: (BARBARA, DEAL_NEW, ACME)}
    assert associations("tasks") == {TASK: (None, None, ACME), TASK_GONE: (None, None, None)}
    assert associations("companies") == {ACME: (), OLD_CO: ()}

    # owners with their primary team, active and archived
    assert raw_rows(warehouse, "owners") == {
        OWNER_ADA: {
            "id": OWNER_ADA, "email": "ada@sales.example", "firstname": "Ada", "lastname": "Lovelace",
            "userid": "200000001", "archived": "false", "createdat": "2020-01-01T09:00:00.000Z",
            "updatedat": "2024-01-15T14:22:10.123Z", "team_id": TEAM_REPS, "team_name": "Sales Rep",
            "teams": f'[{{"id": "{TEAM_REPS}", "name": "Sales Rep", "primary": true}}]',
        },
        OWNER_GRACE: {
            "id": OWNER_GRACE, "email": "grace@sales.example", "firstname": "Grace", "lastname": "Hopper",
            "userid": None, "archived": "true", "createdat": "2020-02-01T10:00:00.000Z",
            "updatedat": "2024-02-01T00:00:00.000Z", "team_id": TEAM_VPS, "team_name": "VP Sales",
            "teams": f'[{{"id": "{TEAM_VPS}", "name": "VP Sales", "primary": true}}]',
        },
    }  # fmt: skip

    # deal stages of the one pipeline
    stages = raw_rows(warehouse, "deal_stages")
    assert len(stages) == 10 and {s["pipeline_id"] for s in stages.values()} == {"default"}
    assert stages["closedwon"] == {
        "id": "closedwon", "label": "Closed Won", "displayorder": "8", "isclosed": "true",
        "probability": "1.0", "archived": "false", "createdat": "2019-01-01T00:00:00.000Z",
        "updatedat": "2019-01-01T00:00:00.000Z",
        "pipeline_id": "default", "pipeline_label": "Sales Pipeline", "pipeline_displayorder": "0",
    }  # fmt: skip
    assert (stages["prospecting"]["displayorder"], stages["prospecting"]["isclosed"]) == ("0", "false")

    # deal property history: one row per history entry (newest first per property)
    history = query(
        warehouse,
        "SELECT id, deal_id, property, value, timestamp, sourcetype, sourceid, updatedbyuserid, position "
        "FROM raw.hubspot_deal_property_history ORDER BY id",
    )
    first, second, last = "2024-01-10T09:00:00.000Z", "2024-02-01T11:30:00.000Z", "2024-03-30T16:00:00.000Z"
    entries = {
        "amount": [("54500", second), ("50000", first)],
        "closedate": [("2024-03-30T00:00:00.000Z", last), ("2024-03-31T00:00:00.000Z", first)],
        "dealstage": [("closedwon", last), ("prospecting", first)],
        "hs_deal_stage_probability": [("1", last), ("0.1", first)],
        "hs_manual_forecast_category": [("CLOSED", last), ("PIPELINE", first)],
    }
    assert history == [
        (
            f"{DEAL_NEW}:{name}:{n}",
            DEAL_NEW,
            name,
            value,
            at,
            "CRM_UI",
            "userId:200000001",
            "200000001",
            str(n),
        )
        for name, values in entries.items()
        for n, (value, at) in enumerate(values)
    ]

    # every window ends at its sync start; no resume point is left
    assert resume_points(warehouse) == []
    for name in OBJECTS:
        assert started <= cursor(warehouse, name) == results[name].cursor_after <= utc_now()
    assert results["owners"].cursor_after is None


def test_associations_follow_paging_and_list_the_primary_first_then_by_number(
    fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    def target(number: int) -> dict[str, Any]:
        return {
            "toObjectId": number,
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None}],
        }

    # the first page of the won deal's companies lists two without a label and says there is more;
    # the next page (the fake's own answer, after that cursor) holds Acme, the primary company
    more = encode_cursor(int(ACME))
    first_page = {
        "status": "COMPLETE",
        "results": [
            {
                "from": {"id": DEAL_NEW},
                "to": [target(1000000009), target(999)],
                "paging": {"next": {"after": more, "link": None}},
            },
            {"from": {"id": DEAL_UPSELL}, "to": [target(1000000005)]},
        ],
    }
    fake.fail_next(200, first_page, path_contains="/crm/v4/associations/deals/companies/")
    load(fake, warehouse, "deals")
    asked = [r.json["inputs"] for r in fake.requests_to("/crm/v4/associations/deals/companies/")]
    assert asked == [[{"id": DEAL_NEW}, {"id": DEAL_UPSELL}], [{"id": DEAL_NEW, "after": more}]]
    deals = raw_rows(warehouse, "deals")
    assert deals[DEAL_NEW]["associations_companies"] == f"{ACME},999,1000000009"
    assert deals[DEAL_UPSELL]["associations_companies"] == "1000000005"
    assert deals[DEAL_NEW]["associations_contacts"] == BARBARA


# --- search paging, the result ceiling, increments, archived records -----------------------------


def test_search_paging_follows_paging_next_after(crm: Path, warehouse: Warehouse) -> None:
    tasks = add_tasks(crm, 450)
    with FakeHubSpot(crm) as fake:
        result = load(fake, warehouse, "tasks")
        bodies = fake.search_bodies("tasks")
        expected = {fake.hubspot_id(t) for t in [T3, *tasks]}
    assert [b.get("after") for b in bodies] == [None, "200", "400"]
    assert {b["limit"] for b in bodies} == {200}
    assert all(b["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}] for b in bodies)
    [(name, operator, high)] = search_filters(bodies[0])
    assert (name, operator, high) == ("hs_lastmodifieddate", "LT", epoch_ms(result.cursor_after))
    assert all(search_filters(b) == search_filters(bodies[0]) for b in bodies)
    assert (result.rows_read, result.rows_in_raw) == (452, 452)  # with the archived task
    assert set(raw_rows(warehouse, "tasks")) == expected | {TASK_GONE}


@pytest.mark.parametrize(
    ("fake_ceiling", "reader_ceiling", "statuses", "pages"),
    [
        # HubSpot refuses the page beyond its ceiling: the query restarts after the last id read
        (
            250,
            10_000,
            [200, 400, 200, 400, 200],
            [(None, None), (None, "200"), (200, None), (200, "200"), (400, None)],
        ),
        # the reader knows the ceiling and restarts before asking for a page beyond it
        (10_000, 400, [200, 200, 200], [(None, None), (None, "200"), (400, None)]),
    ],
)
def test_search_restarts_after_the_last_id_at_the_result_ceiling(
    crm: Path,
    warehouse: Warehouse,
    fake_ceiling: int,
    reader_ceiling: int,
    statuses: list[int],
    pages: list[tuple[int | None, str | None]],
) -> None:
    tasks = add_tasks(crm, 450)
    execute(crm, "DELETE FROM task WHERE Id IN (?, ?)", [T3, T4])
    with FakeHubSpot(crm, search_result_ceiling=fake_ceiling) as fake:
        result = load(fake, warehouse, "tasks", search_ceiling=reader_ceiling)
        ordered = sorted(int(fake.hubspot_id(t)) for t in tasks)
        searches = fake.requests_to("/crm/v3/objects/tasks/search")
        bodies = fake.search_bodies("tasks")
        # what each successful search answered, asked again: every record exactly once, in id order
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {FAKE_PRIVATE_APP_TOKEN}"
            answered = [
                record["id"]
                for request in searches
                if request.status == 200
                for record in session.post(
                    f"{fake.url}/crm/v3/objects/tasks/search", json=request.json, timeout=10
                ).json()["results"]
            ]

    assert [r.status for r in searches] == statuses
    assert [r.json for r in searches] == bodies

    def restart_id(body: dict[str, Any]) -> int | None:
        above = [v for name, op, v in search_filters(body) if (name, op) == ("hs_object_id", "GT")]
        return int(above[0]) if above else None

    assert [(restart_id(b), b.get("after")) for b in bodies] == [
        (None if n is None else ordered[n - 1], after) for n, after in pages
    ]
    assert answered == [str(i) for i in ordered]
    assert (result.rows_read, result.rows_in_raw) == (450, 450)
    assert set(raw_rows(warehouse, "tasks")) == {str(i) for i in ordered}


def test_incremental_load_searches_from_cursor_minus_overlap_to_the_sync_start(
    crm: Path, fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    first = load(fake, warehouse, "deals")
    synced = first.cursor_after
    assert synced is not None and first.cursor_before is None
    execute(
        crm,
        "UPDATE opportunity SET Amount = 70000, StageName = 'Closed Won', SystemModstamp = ? WHERE Id = ?",
        [hs_time(synced - timedelta(minutes=30)), O2],
    )
    # HubSpot keeps a limited number of values per property: the oldest entry of the won deal expires
    # (the deal's modification lands exactly on the window's start, which is inclusive)
    execute(crm, "DELETE FROM opportunityhistory WHERE Id = ?", [H1])
    execute(
        crm,
        "UPDATE opportunity SET SystemModstamp = ? WHERE Id = ?",
        [hs_time(synced - timedelta(hours=1)), O1],
    )
    new = {"AccountId": A1, "OwnerId": U1, "StageName": "Prospecting", "IsDeleted": 0}
    insert_rows(
        crm,
        "opportunity",
        [
            {**new, "Id": O4, "Name": "Acme - Renewal", "Amount": 5000, "CreatedDate": hs_time(synced),
             "SystemModstamp": hs_time(synced - timedelta(minutes=10))},
            # changed after the next sync starts: waits for the sync after it
            {**new, "Id": O5, "Name": "Acme - Later", "CreatedDate": hs_time(synced),
             "SystemModstamp": hs_time(utc_now() + timedelta(days=1))},
        ],
    )  # fmt: skip
    insert_rows(
        crm,
        "opportunityhistory",
        [{"Id": "008000000000005AAA", "OpportunityId": O4, "StageName": "Prospecting", "Amount": 5000,
          "CreatedDate": hs_time(synced - timedelta(minutes=10)), "IsDeleted": 0}],
    )  # fmt: skip
    fake.requests.clear()

    second = load(fake, warehouse, "deals", overlap=timedelta(hours=1))

    [body] = fake.search_bodies("deals")
    assert search_filters(body) == [
        ("hs_lastmodifieddate", "LT", epoch_ms(second.cursor_after)),
        ("hs_lastmodifieddate", "GTE", epoch_ms(synced - timedelta(hours=1))),
    ]
    assert second.cursor_before == synced
    assert synced < second.cursor_after == cursor(warehouse, "deals") <= utc_now()
    # the changed deals and the new one; the archived deal was archived before the window
    assert second.rows_read == 3
    rows = raw_rows(warehouse, "deals", load_columns=True)
    renewal = fake.hubspot_id(O4)
    assert {i: row["_batch_id"] for i, row in rows.items()} == {
        DEAL_NEW: second.batch_id,
        DEAL_UPSELL: second.batch_id,
        DEAL_LOST: first.batch_id,
        renewal: second.batch_id,
    }
    assert (rows[DEAL_UPSELL]["amount"], rows[DEAL_UPSELL]["dealstage"]) == ("70000", "closedwon")
    assert (rows[renewal]["dealname"], rows[renewal]["associations_companies"]) == ("Acme - Renewal", ACME)
    assert second.rows_in_raw == 4
    history = query(
        warehouse, "SELECT deal_id, count(*) FROM raw.hubspot_deal_property_history GROUP BY 1 ORDER BY 1"
    )
    assert history == [(DEAL_NEW, 9), (renewal, 2)]  # a deal's history is replaced whole; nothing duplicated
    amounts = query(
        warehouse,
        "SELECT id, value, timestamp FROM raw.hubspot_deal_property_history "
        "WHERE property = 'amount' ORDER BY id",
    )
    assert amounts == [
        (f"{DEAL_NEW}:amount:0", "54500", "2024-02-01T11:30:00.000Z"),  # the 50000 before it has expired
        (f"{renewal}:amount:0", "5000", hs_time(synced - timedelta(minutes=10))),
    ]


def test_archived_records_arrive_through_the_archived_listing(
    crm: Path, fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    gone = add_tasks(crm, 120, deleted=True)
    first = load(fake, warehouse, "tasks")
    listings = [r for r in fake.requests_to("/crm/v3/objects/tasks") if r.method == "GET"]
    assert [(r.params["archived"], "after" in r.params) for r in listings] == [
        ("true", False),
        ("true", True),
    ]
    rows = raw_rows(warehouse, "tasks")
    assert (first.rows_read, len(rows)) == (122, 122)
    assert {i for i, row in rows.items() if row["archived"] == "true"} == {TASK_GONE} | {
        fake.hubspot_id(t) for t in gone
    }
    assert rows[TASK_GONE]["archivedat"] == "2024-01-04T09:00:00.000Z"
    assert rows[TASK_GONE]["hs_task_subject"] == "Old follow-up"
    assert not any(TASK_GONE in str(body) for body in fake.search_bodies("tasks"))

    # a live task deleted since: the next sync upserts it as archived (older archived ones stay as they are)
    deleted_at = first.cursor_after + timedelta(seconds=1)
    execute(
        crm, "UPDATE task SET IsDeleted = 'true', SystemModstamp = ? WHERE Id = ?", [hs_time(deleted_at), T3]
    )
    second = load(fake, warehouse, "tasks")
    rows = raw_rows(warehouse, "tasks")
    assert (second.rows_read, second.rows_in_raw) == (1, 122)
    assert (rows[TASK]["archived"], rows[TASK]["archivedat"]) == ("true", hs_time(deleted_at))
    assert rows[TASK]["hs_task_subject"] == "Send contract"


# --- authentication ------------------------------------------------------------------------------


def test_oauth_obtains_a_token_first_and_refreshes_it_once_on_401(
    fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    sleeps = Sleeps()
    fake.server_error_next(status=503, path_contains="/oauth/v1/token")  # token requests are retried too
    with hubspot_reader(fake, sleep=sleeps, oauth=True) as reader:
        reader.properties(reader.objects["companies"])
        [_, token_request] = fake.token_requests()
        assert fake.requests[1] is token_request  # before any API request
        assert token_request.form == {
            "grant_type": "refresh_token",
            "client_id": FAKE_CLIENT_ID,
            "client_secret": FAKE_CLIENT_SECRET,
            "refresh_token": FAKE_REFRESH_TOKEN,
        }
        fake.expire_sessions()
        result = load_hubspot_object(reader, warehouse, reader.objects["companies"])
    api = fake.api_requests()
    assert [(r.path.rsplit("/", 1)[-1], r.status) for r in api] == [
        ("companies", 200), ("search", 401), ("search", 200), ("companies", 200),
    ]  # fmt: skip
    assert api[1].category == "EXPIRED_AUTHENTICATION"
    assert [r.status for r in fake.token_requests()] == [503, 200, 200]
    assert len(sleeps) == 1
    assert api[0].bearer == api[1].bearer != api[2].bearer == api[3].bearer
    assert api[0].bearer.startswith("CKfake-hubspot-access-")
    assert result.rows_in_raw == 2


def test_rejected_again_after_the_refresh_is_an_authentication_error(
    fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    fake.fail_next(401, times=2)
    with pytest.raises(SourceError) as caught:
        load(fake, warehouse, "companies", oauth=True)
    assert caught.value.rule == "authentication"
    assert str(caught.value) == (
        "source 'hubspot', table 'companies', rule 'authentication': HubSpot companies: HTTP 401 "
        "INVALID_AUTHENTICATION: Authentication credentials not found. This API supports OAuth 2.0 "
        "authentication and you can find more details at "
        "https://developers.hubspot.com/docs/methods/auth/oauth-overview"
    )
    assert [r.status for r in fake.api_requests()] == [401, 401]
    assert len(fake.token_requests()) == 2  # the first token and one refresh


def test_a_bad_refresh_token_is_a_one_line_error_without_secrets(
    fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    revoked = "na1-revoked-refresh-token-9e8d7c"
    with pytest.raises(SourceError) as caught:
        load(fake, warehouse, "companies", oauth=True, refresh_token=revoked)
    assert str(caught.value) == (
        "source 'hubspot', table 'companies', rule 'authentication': "
        "HubSpot OAuth token refresh failed: HTTP 400 BAD_REFRESH_TOKEN"
    )
    assert fake.api_requests() == [] and len(fake.token_requests()) == 1
    assert_no_secret(str(caught.value), (revoked,))


def test_a_rejected_private_app_token_is_an_authentication_error_without_refresh(
    fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    revoked = "pat-na1-revoked-private-app-token-11aa22"
    with pytest.raises(SourceError) as caught:
        load(fake, warehouse, "companies", access_token=revoked)
    assert caught.value.rule == "authentication"
    assert str(caught.value).startswith(
        "source 'hubspot', table 'companies', rule 'authentication': HubSpot companies: HTTP 401 "
        "INVALID_AUTHENTICATION: Authentication credentials not found."
    )
    assert "\n" not in str(caught.value)
    assert fake.token_requests() == [] and [r.status for r in fake.api_requests()] == [401]
    assert_no_secret(str(caught.value), (revoked,))


# --- rate limits, server errors, retries ---------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "slept"),
    [("7", 7.0), ("0.25", 0.25), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],  # a date in the past: at once
)
def test_rate_limit_with_retry_after_sleeps_exactly_that(
    fake: FakeHubSpot, warehouse: Warehouse, retry_after: str, slept: float
) -> None:
    sleeps = Sleeps()
    fake.rate_limit_next(retry_after=retry_after, path_contains="/search")
    result = load(fake, warehouse, "companies", sleep=sleeps)
    assert sleeps == [slept]
    assert [r.status for r in fake.requests_to("/search")] == [429, 200]
    assert result.rows_in_raw == 2


def test_rate_limit_without_retry_after_backs_off_exponentially_with_jitter(
    fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    fixed, drawn = Sleeps(), Sleeps()
    fake.rate_limit_next(times=5)
    jitters = iter([0.0, 1.0, 0.5, 0.25, 0.75])
    load(
        fake, warehouse, "companies", sleep=fixed, jitter=lambda: next(jitters), backoff_base=1, backoff_cap=4
    )
    fake.rate_limit_next(times=5)
    load(fake, warehouse, "companies", sleep=drawn, backoff_base=1, backoff_cap=4)

    # 1 s doubling up to the 4 s cap; the jitter draws between half and all of it
    assert fixed == [0.5, 2.0, 3.0, 2.5, 3.5]
    ceilings = [1, 2, 4, 4, 4]
    assert all(c / 2 <= s <= c for s, c in zip(drawn, ceilings, strict=True)), drawn
    assert [r.status for r in fake.api_requests()][:6] == [429] * 5 + [200]


def test_server_errors_are_retried(fake: FakeHubSpot, warehouse: Warehouse) -> None:
    sleeps = Sleeps()
    fake.server_error_next()
    fake.server_error_next(status=502, path_contains="/search")
    fake.server_error_next(status=504, path_contains="/batch/read")
    result = load(fake, warehouse, "deals", sleep=sleeps)
    assert [(r.path, r.status) for r in fake.api_requests() if r.status >= 500] == [
        ("/crm/v3/properties/deals", 500),
        ("/crm/v3/objects/deals/search", 502),
        ("/crm/v4/associations/deals/companies/batch/read", 504),  # the first batch read
    ]
    assert len(sleeps) == 3
    assert result.rows_in_raw == 3


def test_retries_run_out_with_a_one_line_error_naming_the_object(
    fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    sleeps = Sleeps()
    fake.server_error_next(times=100, status=503, path_contains="/crm/v3/objects/contacts")
    with pytest.raises(SourceError) as caught:
        load(fake, warehouse, "contacts", sleep=sleeps, max_retries=3)
    assert caught.value.rule == "retries_exhausted" and caught.value.table == "contacts"
    assert str(caught.value) == (
        "source 'hubspot', table 'contacts', rule 'retries_exhausted': "
        "HubSpot contacts: HTTP 503, still failing after 3 retries"
    )
    assert (len(fake.requests_to("/search")), len(sleeps)) == (4, 3)


def test_connection_failures_are_retried_then_reported(warehouse: Warehouse) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    settings = HubSpotSettings(
        api_url=f"http://127.0.0.1:{port}", access_token=FAKE_PRIVATE_APP_TOKEN, max_retries=2
    )
    reader = HubSpotReader(HubSpotClient(settings, sleep=sleeps, jitter=lambda: 1.0))
    with pytest.raises(SourceError) as caught:
        load_hubspot_object(reader, warehouse, reader.objects["companies"])
    reader.close()
    assert str(caught.value) == (
        "source 'hubspot', table 'companies', rule 'retries_exhausted': "
        "HubSpot companies: connection failed (ConnectionError), still failing after 2 retries"
    )
    assert sleeps == [1.0, 2.0]


def test_too_long_retry_after_fails_instead_of_blocking(fake: FakeHubSpot, warehouse: Warehouse) -> None:
    sleeps = Sleeps()
    fake.rate_limit_next(retry_after=3600)
    with pytest.raises(SourceError) as caught:
        load(fake, warehouse, "companies", sleep=sleeps, max_retry_after=60)
    assert str(caught.value) == (
        "source 'hubspot', table 'companies', rule 'retries_exhausted': "
        "HubSpot companies: HTTP 429 RATE_LIMIT asks to retry after 3600 s, too long to wait"
    )
    assert sleeps == [] and len(fake.api_requests()) == 1


@pytest.mark.parametrize(
    ("status", "category", "rule"),
    [
        (403, "MISSING_SCOPES", "permission"),
        (404, "OBJECT_NOT_FOUND", "required_table"),
        (400, "VALIDATION_ERROR", "api_error"),
    ],
)
def test_other_client_errors_are_not_retried(
    fake: FakeHubSpot, warehouse: Warehouse, status: int, category: str, rule: str
) -> None:
    sleeps = Sleeps()
    body = {
        "status": "error",
        "message": "refused\nfor a reason",
        "correlationId": "c0ffee",
        "category": category,
    }
    fake.fail_next(status, body, path_contains="/search")
    with pytest.raises(SourceError) as caught:
        load(fake, warehouse, "companies", sleep=sleeps)
    assert str(caught.value) == (
        f"source 'hubspot', table 'companies', rule '{rule}': "
        f"HubSpot companies: HTTP {status} {category}: refused for a reason"
    )
    assert sleeps == [] and len(fake.requests_to("/search")) == 1


# --- schema changes ------------------------------------------------------------------------------


def test_a_new_property_lands_as_a_new_raw_column(crm: Path, fake: FakeHubSpot, warehouse: Warehouse) -> None:
    first = load(fake, warehouse, "companies")
    fake.add_property("companies", "partner_tier", lambda row: "gold" if row["Id"] == A1 else None)
    fake.add_property("companies", "seats", 12, kind="number")
    execute(crm, "UPDATE account SET SystemModstamp = ? WHERE Id = ?", [hs_time(first.cursor_after), A1])
    second = load(fake, warehouse, "companies")
    assert second.rows_read == 1
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        columns = [r[0] for r in connection.execute("DESCRIBE raw.hubspot_companies").fetchall()]
    assert columns[-4:] == ["_loaded_at", "_batch_id", "partner_tier", "seats"]  # added to the existing table
    rows = raw_rows(warehouse, "companies")
    assert (rows[ACME]["partner_tier"], rows[ACME]["seats"]) == ("gold", "12")
    assert (rows[OLD_CO]["partner_tier"], rows[OLD_CO]["seats"]) == (None, None)  # not read again
    assert "partner_tier" in fake.search_bodies("companies")[-1]["properties"]


def test_a_hidden_required_property_is_an_error_naming_object_and_property(
    fake: FakeHubSpot, warehouse: Warehouse
) -> None:
    fake.hide_property("deals", "dealstage")
    with pytest.raises(SourceError) as caught:
        load(fake, warehouse, "deals")
    assert str(caught.value) == (
        "source 'hubspot', table 'deals', rule 'required_column': "
        "required property 'dealstage' missing from HubSpot object deals"
    )
    assert fake.search_bodies("deals") == []
    fake.hide_property("deals", "hs_is_closed_won")
    with pytest.raises(
        SourceError, match="'dealstage', 'hs_is_closed_won' missing from HubSpot object deals"
    ):
        load(fake, warehouse, "deals")
    assert load(fake, warehouse, "companies").rows_in_raw == 2  # other objects still load


# --- resume --------------------------------------------------------------------------------------


def test_a_killed_load_resumes_after_the_last_committed_id(crm: Path, tmp_path: Path) -> None:
    add_tasks(crm, 450)
    warehouse, clean = Warehouse(tmp_path / "resumed.duckdb"), Warehouse(tmp_path / "clean.duckdb")
    with FakeHubSpot(crm) as fake:
        # the third search page fails until the retries run out: two batches were committed
        fake.server_error_next(times=3, skip=2, path_contains="/crm/v3/objects/tasks/search")
        with pytest.raises(SourceError, match="HTTP 500 INTERNAL_ERROR, still failing after 2 retries"):
            load(fake, warehouse, "tasks", batch_size=200, max_retries=2)
        [(_, _, killed_high)] = search_filters(fake.search_bodies("tasks")[0])
        ordered = sorted(int(i) for i in raw_rows(warehouse, "tasks"))
        assert len(ordered) == 400
        assert resume_points(warehouse) == [("hubspot_tasks", None, from_epoch_ms(killed_high), ordered[-1])]
        assert cursor(warehouse, "tasks") is None
        assert query(warehouse, "SELECT rows FROM meta.load_batches ORDER BY committed_at") == [
            (200,),
            (200,),
        ]
        fake.requests.clear()

        result = load(fake, warehouse, "tasks", batch_size=200)
        resumed = fake.search_bodies("tasks")
        load(fake, clean, "tasks", batch_size=200)

    assert [search_filters(b) for b in resumed] == [
        [("hs_lastmodifieddate", "LT", killed_high), ("hs_object_id", "GT", str(ordered[-1]))]
    ]
    assert (result.rows_read, result.rows_in_raw) == (52, 452)  # 51 searched, the archived task listed
    assert result.cursor_after == cursor(warehouse, "tasks") == from_epoch_ms(killed_high)
    assert resume_points(warehouse) == []
    assert raw_rows(warehouse, "tasks") == raw_rows(clean, "tasks")


# --- earliest creation date ----------------------------------------------------------------------


def test_earliest_created_at_is_the_oldest_createdate_of_contacts_and_deals(
    crm: Path, fake: FakeHubSpot
) -> None:
    with hubspot_reader(fake) as reader:
        assert reader.earliest_created_at() == datetime(2023, 3, 2, 10)  # the contact Alan Turing
        execute(crm, "UPDATE opportunity SET CreatedDate = '2022-07-01T06:30:00Z' WHERE Id = ?", [O2])
        assert reader.earliest_created_at() == datetime(2022, 7, 1, 6, 30)  # now a deal
    for name in ("contacts", "deals"):
        [body] = [b for b in fake.search_bodies(name) if "filterGroups" not in b][:1]
        assert body == {
            "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
            "properties": ["createdate"],
            "limit": 1,
        }


# --- secrets -------------------------------------------------------------------------------------


def test_credentials_and_tokens_never_appear_in_logs_reprs_errors_or_the_warehouse(
    fake: FakeHubSpot, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = [repr(settings_for(fake, oauth=True)), str(settings_for(fake)), repr(settings_for(fake))]
    errors = []
    with hubspot_reader(fake, oauth=True) as reader:
        texts.append(repr(reader))
        reader.properties(reader.objects["companies"])
        texts.append(repr(reader.client))
        fake.expire_sessions()
        fake.rate_limit_next()
        fake.server_error_next()
        texts.append(repr(load_hubspot_object(reader, warehouse, reader.objects["companies"])))
        texts.append(repr(load_hubspot_owners(reader, warehouse)))
        token = fake.api_requests()[-1].bearer
        echo = f"echo {token} {FAKE_CLIENT_ID} {FAKE_CLIENT_SECRET} {FAKE_REFRESH_TOKEN}"
        fake.fail_next(400, {"status": "error", "message": echo, "category": "VALIDATION_ERROR"})
        with pytest.raises(SourceError) as caught:
            load_hubspot_object(reader, warehouse, reader.objects["deals"])
        errors.append(str(caught.value))
        texts.append(repr(reader))
    fake.fail_next(403, {"status": "error", "message": f"token {FAKE_PRIVATE_APP_TOKEN} lacks scopes"})
    with pytest.raises(SourceError) as caught:
        load(fake, warehouse, "contacts")
    errors.append(str(caught.value))
    fake.server_error_next(times=10, status=502)
    with pytest.raises(SourceError) as caught:
        load(fake, warehouse, "contacts", max_retries=2)
    errors.append(str(caught.value))
    with pytest.raises(SourceError) as caught:
        load(fake, warehouse, "contacts", oauth=True, client_secret="wrong-" + FAKE_CLIENT_SECRET)
    errors.append(str(caught.value))
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        for schema, table in connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'meta')"
        ).fetchall():
            texts.append(repr(connection.execute(f'SELECT * FROM {schema}."{table}"').fetchall()))

    tokens = tuple({r.bearer for r in fake.requests if r.bearer} - {FAKE_PRIVATE_APP_TOKEN})
    assert len(tokens) == 2 and token in tokens
    assert texts[0] == (
        f"HubSpotSettings(api_url='{fake.url}', auth='oauth', credentials='<redacted>', max_retries=6)"
    )
    assert errors == [
        "source 'hubspot', table 'deals', rule 'api_error': "
        "HubSpot deals: HTTP 400 VALIDATION_ERROR: echo <redacted> <redacted> <redacted> <redacted>",
        "source 'hubspot', table 'contacts', rule 'permission': "
        "HubSpot contacts: HTTP 403 error: token <redacted> lacks scopes",
        "source 'hubspot', table 'contacts', rule 'retries_exhausted': "
        "HubSpot contacts: HTTP 502, still failing after 2 retries",
        "source 'hubspot', table 'contacts', rule 'authentication': "
        "HubSpot OAuth token refresh failed: HTTP 400 BAD_CLIENT_SECRET",
    ]
    assert any("refreshing the access token" in r.getMessage() for r in caplog.records)
    assert any("retry 1 of 6" in r.getMessage() for r in caplog.records)
    everything = [*texts, *errors, caplog.text, *(r.getMessage() for r in caplog.records)]
    assert_no_secret("\n".join(everything), tokens)


# --- settings ------------------------------------------------------------------------------------


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    oauth = {
        "SALESOPS_HUBSPOT_CLIENT_ID": FAKE_CLIENT_ID,
        "SALESOPS_HUBSPOT_CLIENT_SECRET": FAKE_CLIENT_SECRET,
        "SALESOPS_HUBSPOT_REFRESH_TOKEN": f" {FAKE_REFRESH_TOKEN}\n",
    }
    settings = HubSpotSettings.from_env(oauth)
    assert (settings.api_url, settings.uses_oauth, settings.refresh_token, settings.lead_source_property) == (
        "https://api.hubapi.com", True, FAKE_REFRESH_TOKEN, "hs_analytics_source",
    )  # fmt: skip
    assert repr(settings) == (
        "HubSpotSettings(api_url='https://api.hubapi.com', auth='oauth', credentials='<redacted>', "
        "max_retries=6)"
    )
    private = {
        "SALESOPS_HUBSPOT_API_URL": "http://127.0.0.1:8080/",
        "SALESOPS_HUBSPOT_ACCESS_TOKEN": FAKE_PRIVATE_APP_TOKEN,
        "SALESOPS_HUBSPOT_LEAD_SOURCE_PROPERTY": LEAD_SOURCE,
    }
    for name, value in private.items():
        monkeypatch.setenv(name, value)
    for name in oauth:
        monkeypatch.delenv(name, raising=False)
    settings = HubSpotSettings.from_env(max_retries=2)
    assert (settings.api_url, settings.uses_oauth, settings.access_token, settings.max_retries) == (
        "http://127.0.0.1:8080", False, FAKE_PRIVATE_APP_TOKEN, 2,
    )  # fmt: skip
    assert settings.secrets == (FAKE_PRIVATE_APP_TOKEN,)
    assert str(settings) == (
        "HubSpotSettings(api_url='http://127.0.0.1:8080', auth='private app', credentials='<redacted>', "
        "max_retries=2)"
    )
    objects = hubspot_objects(settings.lead_source_property)
    assert [name for name, obj in objects.items() if LEAD_SOURCE in obj.required] == ["contacts", "deals"]
    assert not any("hs_analytics_source" in obj.required for obj in objects.values())


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"api_url": "http://api.hubapi.com"}, "API URL 'http://api.hubapi.com' must use https"),
        ({"api_url": "http://10.0.0.5:8080"}, "API URL 'http://10.0.0.5:8080' must use https"),
        ({"api_url": "https://user:pw@api.hubapi.com"}, "'https://api.hubapi.com' is not a valid URL"),
        ({"api_url": "api.hubapi.com"}, "is not a valid URL without credentials"),
        (
            {"access_token": ""},
            "set SALESOPS_HUBSPOT_ACCESS_TOKEN (private app) or SALESOPS_HUBSPOT_CLIENT_ID",
        ),
        (
            {"access_token": "", "client_id": FAKE_CLIENT_ID, "client_secret": FAKE_CLIENT_SECRET},
            "SALESOPS_HUBSPOT_CLIENT_SECRET and SALESOPS_HUBSPOT_REFRESH_TOKEN (OAuth app)",
        ),
        (
            {"lead_source_property": "Lead Source"},
            "lead source property 'Lead Source' is not a property name",
        ),
        (
            {"lead_source_property": "source;drop"},
            "lead source property 'source;drop' is not a property name",
        ),
        ({"search_ceiling": 100}, "search_ceiling must be at least 200"),
        ({"max_retries": -1}, "max_retries, backoff_base and backoff_cap must not be negative"),
    ],
)
def test_settings_refuse_what_would_leak_tokens_or_cannot_work(
    overrides: dict[str, Any], problem: str
) -> None:
    values = {"api_url": "https://api.hubapi.com", "access_token": FAKE_PRIVATE_APP_TOKEN, **overrides}
    with pytest.raises(SourceError) as caught:
        HubSpotSettings(**values)
    assert caught.value.rule == "configuration"
    assert problem in str(caught.value) and str(caught.value).startswith(
        "source 'hubspot', rule 'configuration': "
    )
    assert "pw" not in str(caught.value)
    assert_no_secret(str(caught.value))


def test_loopback_urls_may_use_plain_http() -> None:
    for url in ("http://127.0.0.1:9000", "http://localhost:9000/", "http://[::1]:9000"):
        assert HubSpotSettings(api_url=url, access_token=FAKE_PRIVATE_APP_TOKEN).api_url == url.rstrip("/")


# --- the demo org --------------------------------------------------------------------------------


def test_the_demo_org_loads_exactly_the_fakes_records(demo_org: tuple[Path, object], tmp_path: Path) -> None:
    """The XS demo org (``python -m ingestion.demo generate --profile XS --seed 7 --as-of 2026-06-15``,
    the session's ``demo_org``), with a search ceiling of 400 so that the larger objects restart."""
    warehouse = Warehouse(tmp_path / "wh.duckdb")
    live: dict[str, int] = {}
    with FakeHubSpot(demo_org[0] / "crm.sqlite", search_result_ceiling=400) as fake:
        first = load_everything(fake, warehouse)
        restarts = {  # the ids each query restarted after
            name: len(
                {f for b in fake.search_bodies(name) for f in search_filters(b) if f[0] == "hs_object_id"}
            )
            for name in OBJECTS
        }
        for name in OBJECTS:
            rows = raw_rows(warehouse, name)
            columns = list(next(iter(rows.values()))) if rows else []
            assert without_associations(rows) == served_rows(fake, name, columns), name
            live[name] = sum(1 for row in rows.values() if row["archived"] == "false")
        with hubspot_reader(fake) as reader:
            earliest = reader.earliest_created_at()
            second = {
                name: load_hubspot_object(reader, warehouse, obj, timedelta(0))
                for name, obj in OBJECTS.items()
            }
    assert [name for name in OBJECTS if first[name].rows_in_raw == 0] == ["meetings"]  # only add_meeting
    assert all(first[name].rows_read == first[name].rows_in_raw for name in OBJECTS)
    # a query reads at most 400 live records (pages at 0 and 200), then restarts after the last id
    assert restarts == {name: max(count - 1, 0) // 400 for name, count in live.items()}
    assert sum(restarts.values()) >= 3, live
    assert {name: (r.rows_read, r.rows_in_raw) for name, r in second.items()} == {
        name: (0, first[name].rows_in_raw) for name in OBJECTS
    }
    with sqlite3.connect(demo_org[0] / "crm.sqlite") as connection:
        created = [
            parse_source_datetime(row[0])
            for table in ("contact", "lead", "opportunity")
            for row in connection.execute(
                f"SELECT CreatedDate FROM {table} WHERE IsDeleted IN (0, '0', 'false')"
            )
        ]
    assert earliest == min(c for c in created if c is not None)  # live contacts (and leads) and deals
