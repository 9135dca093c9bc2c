"""The fake HubSpot CRM API itself (tests/fakes/hubspot_server.py), on a tiny hand-built org.

The org is Salesforce-shaped and messy on purpose (booleans 0/1 and 'true'/'false', datetimes in
several ISO spellings, '' for null, text in a number field, a dangling owner); the tests pin the
exact HubSpot payloads the fake serves for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.crm_fixtures import create_crm, insert_rows
from tests.fakes.hubspot_server import (
    FAKE_CLIENT_ID,
    FAKE_CLIENT_SECRET,
    FAKE_PRIVATE_APP_TOKEN,
    FAKE_REFRESH_TOKEN,
    FakeHubSpot,
)

U1, U2, U_GONE = "005000000000001AAA", "005000000000002AAA", "005000000000009AAA"
R1, R2 = "00E000000000001AAA", "00E000000000002AAA"
A1, A2 = "001000000000001AAA", "001000000000002AAA"
C1 = "003000000000001AAA"
L1, L2 = "00Q000000000001AAA", "00Q000000000002AAA"
O1, O2 = "006000000000001AAA", "006000000000002AAA"
H1, H2, H3, H4 = (f"00800000000000{n}AAA" for n in range(1, 5))
T1, T2, T3, T4 = (f"00T00000000000{n}AAA" for n in range(1, 5))
SOURCE = {"sourceType": "CRM_UI", "sourceId": "userId:200000001", "updatedByUserId": 200000001}


def epoch_ms(text: str) -> str:
    return str(int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000))


def make_org(path: Path) -> Path:
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
                "Name": "Grace Brewster Hopper",
                "Email": "grace@sales.example",
                "UserRoleId": R2,
                "IsActive": 0,
                "CreatedDate": "2020-02-01T10:00:00.000+0000",
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
                "SystemModstamp": "2024-03-01T08:00:00.000+0000",
                "IsDeleted": 0,
            },
            {
                "Id": A2,
                "Name": "Old Co",
                "Industry": "",
                "AnnualRevenue": "n/a",
                "OwnerId": U_GONE,
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
                "Industry": "Consulting",
                "LeadSource": "Web",
                "Status": "Closed - Converted",
                "OwnerId": U2,
                "IsConverted": "true",
                "ConvertedDate": "2024-02-10",
                "CreatedDate": "2024-01-05T12:00:00Z",
                "SystemModstamp": "2024-02-10T12:30:00.000+0000",
                "IsDeleted": 0,
            },
            {
                "Id": L2,
                "FirstName": "Edsger",
                "LastName": "Dijkstra",
                "Email": "",
                "Company": "EWD",
                "Industry": "",
                "LeadSource": "Partner Referral",
                "Status": "Working - Contacted",
                "OwnerId": "",
                "IsConverted": 0,
                "ConvertedDate": "",
                "CreatedDate": "2024-01-20 08:15:00",
                "SystemModstamp": "2024-01-21T08:15:00Z",
                "IsDeleted": "false",
            },
        ],
    )
    insert_rows(
        path,
        "opportunity",
        [
            {
                "Id": O1,
                "Name": "Acme - New Deal",
                "AccountId": A1,
                "OwnerId": U1,
                "Type": "New Business",
                "LeadSource": "Web",
                "StageName": "Closed Won",
                "Amount": "54500.0",
                "Probability": 100,
                "ForecastCategoryName": "Closed",
                "CloseDate": "2024-03-30",
                "IsClosed": 1,
                "IsWon": "true",
                "CreatedDate": "2024-01-10T09:00:00.000+0000",
                "SystemModstamp": "2024-03-30T16:00:00.000+0000",
                "IsDeleted": 0,
            },
            {
                "Id": O2,
                "Name": "Acme - Upsell",
                "AccountId": A1,
                "OwnerId": U2,
                "Type": "Existing Business",
                "LeadSource": "",
                "StageName": "Negotiation/Review",
                "Amount": "TBD",
                "Probability": "90",
                "ForecastCategoryName": "Commit",
                "CloseDate": "2024-06-30",
                "IsClosed": "false",
                "IsWon": 0,
                "CreatedDate": "2024-02-15 10:00:00",
                "SystemModstamp": "2024-02-20T10:00:00Z",
                "IsDeleted": "0",
            },
        ],
    )
    history = [  # stored out of order; H4 is deleted
        (H3, "2024-03-30 16:00:00", "Closed Won", 54500, 100, "Closed", "2024-03-30", 0),
        (H1, "2024-01-10T09:00:00.000+0000", "Prospecting", 50000, 10, "Pipeline", "2024-03-31", 0),
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
                "CreatedDate": "2024-01-12T15:00:00.000+0000",
                "SystemModstamp": "2024-01-12T15:30:00Z",
            },
            {
                **task,
                "Id": T2,
                "WhoId": L2,
                "WhatId": "",
                "OwnerId": U2,
                "Subject": "Intro",
                "TaskSubtype": "Email",
                "ActivityDate": "2024-01-25",
                "CreatedDate": "2024-01-22 10:00:00",
                "SystemModstamp": "2024-01-22T10:00:00Z",
                "IsDeleted": "false",
            },
            {
                **task,
                "Id": T3,
                "WhoId": "",
                "WhatId": A1,
                "Subject": "Send contract",
                "TaskSubtype": "Task",
                "Status": "Waiting on someone else",
                "ActivityDate": "",
                "CreatedDate": "2024-02-01T09:00:00Z",
                "SystemModstamp": "2024-02-02T09:00:00Z",
            },
            {
                **task,
                "Id": T4,
                "WhoId": L1,
                "Subject": "Newsletter",
                "TaskSubtype": "ListEmail",
                "ActivityDate": "2024-02-05",
                "CreatedDate": "2024-02-05T08:00:00Z",
                "SystemModstamp": "2024-02-05T08:00:00Z",
            },
        ],
    )
    return path


@pytest.fixture
def crm(tmp_path: Path) -> Path:
    return make_org(tmp_path / "crm.sqlite")


@pytest.fixture
def hs(crm: Path) -> Iterator[FakeHubSpot]:
    with FakeHubSpot(crm, search_result_ceiling=50) as server:
        yield server


class Api:
    """A tiny client: JSON requests with the private-app token."""

    def __init__(self, fake: FakeHubSpot, token: str = FAKE_PRIVATE_APP_TOKEN) -> None:
        self.url = fake.url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.url + path, params=params, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=10)


@pytest.fixture
def api(hs: FakeHubSpot) -> Api:
    return Api(hs)


def ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def props(api: Api, object_type: str, sf_ids: list[str], fake: FakeHubSpot, **body: Any) -> list[dict]:
    ids = [{"id": fake.hubspot_id(i)} for i in sf_ids]
    answer = ok(api.post(f"/crm/v3/objects/{object_type}/batch/read", {"inputs": ids, **body}))
    by_id = {r["id"]: r for r in answer["results"]}
    return [by_id[i["id"]] for i in ids]


# --- translation ---------------------------------------------------------------------------------


def test_ids_are_numeric_ranks_per_kind_and_stay_stable_when_the_org_changes(
    hs: FakeHubSpot, crm: Path
) -> None:
    expected = {
        U1: "100000001",
        U2: "100000002",
        U_GONE: "100000003",  # a dangling owner reference gets an id too
        R1: "300000001",
        R2: "300000002",
        A1: "1000000001",
        A2: "1000000002",
        C1: "2000000001",
        L1: "3000000001",
        L2: "3000000002",
        O1: "4000000001",
        O2: "4000000002",
        T1: "5000000001",
        T2: "5000000002",
        T3: "5000000003",
        T4: "5000000004",  # ListEmail: mapped, never served
    }
    assert hs.id_map == expected
    assert hs.hubspot_id(L2) == "3000000002"
    assert hs.user_id(U2) == 200000002
    # a new lead whose Id sorts first is appended: existing ids do not move
    insert_rows(crm, "lead", [{"Id": "00Q000000000000AAA", "LastName": "New", "IsDeleted": "false"}])
    assert hs.id_map == {**expected, "00Q000000000000AAA": "3000000003"}


def test_companies_and_archived_companies(hs: FakeHubSpot, api: Api) -> None:
    names = "name,industry,numberofemployees,annualrevenue,country,hubspot_owner_id,createdate"
    listed = ok(api.get("/crm/v3/objects/companies", properties=names))
    assert listed == {
        "results": [
            {
                "id": "1000000001",
                "properties": {
                    "annualrevenue": "1500000",
                    "country": "Germany",
                    "createdate": "2023-03-01T08:00:00.000Z",
                    "hs_lastmodifieddate": "2024-03-01T08:00:00.000Z",
                    "hs_object_id": "1000000001",
                    "hubspot_owner_id": "100000001",
                    "industry": "Technology",
                    "name": "Acme GmbH",
                    "numberofemployees": "250",
                },
                "createdAt": "2023-03-01T08:00:00.000Z",
                "updatedAt": "2024-03-01T08:00:00.000Z",
                "archived": False,
            }
        ]
    }
    archived = ok(api.get("/crm/v3/objects/companies", archived="true", properties=names))["results"]
    assert [r["id"] for r in archived] == [hs.hubspot_id(A2)]
    assert archived[0]["archived"] is True
    assert archived[0]["archivedAt"] == "2024-04-01T10:00:00.000Z"  # +02:00 normalised to UTC
    assert archived[0]["properties"]["annualrevenue"] == "n/a"  # untypeable: verbatim
    assert archived[0]["properties"]["industry"] is None  # '' is null
    assert archived[0]["properties"]["hubspot_owner_id"] == "100000003"  # dangling owner
    # archived records never match a search
    assert ok(api.post("/crm/v3/objects/companies/search", {}))["total"] == 1


def test_contacts_come_from_contacts_and_leads(hs: FakeHubSpot, api: Api) -> None:
    names = [
        "firstname",
        "lastname",
        "email",
        "jobtitle",
        "company",
        "industry",
        "hs_lead_status",
        "lead_source",
        "hs_analytics_source",
        "hubspot_owner_id",
        "associatedcompanyid",
        "lifecyclestage",
        "hs_lifecyclestage_opportunity_date",
        "hs_lastmodifieddate",
    ]
    contact, converted, unconverted = props(api, "contacts", [C1, L1, L2], hs, properties=names)
    assert contact["properties"] == {
        "associatedcompanyid": "1000000001",
        "company": None,
        "createdate": "2023-03-02T10:00:00.000Z",
        "email": "alan@acme.example",
        "firstname": "Alan",
        "hs_analytics_source": None,
        "hs_lastmodifieddate": "2024-03-05T10:00:00.250Z",
        "hs_lead_status": None,
        "hs_lifecyclestage_opportunity_date": None,
        "hs_object_id": "2000000001",
        "hubspot_owner_id": "100000001",
        "industry": None,
        "jobtitle": "CTO",
        "lastmodifieddate": "2024-03-05T10:00:00.250Z",
        "lastname": "Turing",
        "lead_source": None,
        "lifecyclestage": "customer",
    }
    assert converted["properties"] == {
        "associatedcompanyid": None,
        "company": "Liskov LLC",
        "createdate": "2024-01-05T12:00:00.000Z",
        "email": "barbara@liskov.example",
        "firstname": "Barbara",
        "hs_analytics_source": "ORGANIC_SEARCH",
        "hs_lastmodifieddate": "2024-02-10T12:30:00.000Z",
        "hs_lead_status": "Closed - Converted",
        "hs_lifecyclestage_opportunity_date": "2024-02-10T00:00:00.000Z",
        "hs_object_id": "3000000001",
        "hubspot_owner_id": "100000002",
        "industry": "Consulting",
        "jobtitle": None,
        "lastmodifieddate": "2024-02-10T12:30:00.000Z",
        "lastname": "Liskov",
        "lead_source": "Web",
        "lifecyclestage": "opportunity",
    }
    assert {
        k: unconverted["properties"][k] for k in ("email", "hs_analytics_source", "hubspot_owner_id")
    } == {
        "email": None,
        "hs_analytics_source": "REFERRALS",
        "hubspot_owner_id": None,
    }
    assert unconverted["properties"]["lifecyclestage"] == "lead"
    assert unconverted["properties"]["hs_lifecyclestage_opportunity_date"] is None
    assert unconverted["createdAt"] == "2024-01-20T08:15:00.000Z"


def test_deals_and_their_history_newest_first_with_value_changes_only(hs: FakeHubSpot, api: Api) -> None:
    history = [
        "dealstage",
        "amount",
        "closedate",
        "hs_deal_stage_probability",
        "hs_manual_forecast_category",
    ]
    names = [
        *history,
        "dealname",
        "pipeline",
        "hubspot_owner_id",
        "dealtype",
        "lead_source",
        "hs_is_closed",
        "hs_is_closed_won",
    ]
    won, open_ = props(api, "deals", [O1, O2], hs, properties=names, propertiesWithHistory=history)
    assert won["properties"] == {
        "amount": "54500",
        "closedate": "2024-03-30T00:00:00.000Z",
        "createdate": "2024-01-10T09:00:00.000Z",
        "dealname": "Acme - New Deal",
        "dealstage": "closedwon",
        "dealtype": "newbusiness",
        "hs_deal_stage_probability": "1",
        "hs_is_closed": "true",
        "hs_is_closed_won": "true",
        "hs_lastmodifieddate": "2024-03-30T16:00:00.000Z",
        "hs_manual_forecast_category": "CLOSED",
        "hs_object_id": "4000000001",
        "hubspot_owner_id": "100000001",
        "lead_source": "Web",
        "pipeline": "default",
    }
    assert {k: open_["properties"][k] for k in names if k != "dealname"} == {
        "dealstage": "negotiationreview",
        "amount": "TBD",  # untypeable: verbatim
        "closedate": "2024-06-30T00:00:00.000Z",
        "hs_deal_stage_probability": "0.9",
        "hs_manual_forecast_category": "COMMIT",
        "pipeline": "default",
        "hubspot_owner_id": "100000002",
        "dealtype": "existingbusiness",
        "lead_source": None,
        "hs_is_closed": "false",
        "hs_is_closed_won": "false",
    }

    def entries(*pairs: tuple[str, str]) -> list[dict]:
        return [{"value": value, "timestamp": timestamp, **SOURCE} for value, timestamp in pairs]

    first, second, last = "2024-01-10T09:00:00.000Z", "2024-02-01T11:30:00.000Z", "2024-03-30T16:00:00.000Z"
    assert won["propertiesWithHistory"] == {
        "dealstage": entries(("closedwon", last), ("prospecting", first)),
        "amount": entries(("54500", second), ("50000", first)),
        "closedate": entries(("2024-03-30T00:00:00.000Z", last), ("2024-03-31T00:00:00.000Z", first)),
        "hs_deal_stage_probability": entries(("1", last), ("0.1", first)),
        "hs_manual_forecast_category": entries(("CLOSED", last), ("PIPELINE", first)),
    }
    assert open_["propertiesWithHistory"]["dealstage"] == []  # no OpportunityHistory rows


def test_engagements_by_subtype_and_list_email_not_served(hs: FakeHubSpot, api: Api) -> None:
    def results(object_type: str, properties: str) -> list[dict]:
        return ok(api.get(f"/crm/v3/objects/{object_type}", properties=properties))["results"]

    [call] = results("calls", "hs_call_title,hs_call_status,hs_call_direction,hubspot_owner_id")
    assert call["id"] == hs.hubspot_id(T1)
    assert call["properties"] == {
        "hs_call_direction": "OUTBOUND",
        "hs_call_status": "COMPLETED",
        "hs_call_title": "Discovery call",
        "hs_createdate": "2024-01-12T15:00:00.000Z",
        "hs_lastmodifieddate": "2024-01-12T15:30:00.000Z",
        "hs_object_id": "5000000001",
        "hubspot_owner_id": "100000001",
    }
    [email] = results("emails", "hs_email_subject,hs_email_status,hs_email_direction,hs_timestamp")
    assert email["properties"] == {
        "hs_createdate": "2024-01-22T10:00:00.000Z",
        "hs_email_direction": "EMAIL",
        "hs_email_status": "SENT",
        "hs_email_subject": "Intro",
        "hs_lastmodifieddate": "2024-01-22T10:00:00.000Z",
        "hs_object_id": "5000000002",
        "hs_timestamp": "2024-01-25T00:00:00.000Z",  # ActivityDate differs from the created date
    }
    [task] = results("tasks", "hs_task_subject,hs_task_status,hs_task_type,hs_timestamp")
    assert task["properties"] == {
        "hs_createdate": "2024-02-01T09:00:00.000Z",
        "hs_lastmodifieddate": "2024-02-02T09:00:00.000Z",
        "hs_object_id": "5000000003",
        "hs_task_status": "WAITING",
        "hs_task_subject": "Send contract",
        "hs_task_type": "TODO",
        "hs_timestamp": "2024-02-01T09:00:00.000Z",  # no ActivityDate: CreatedDate
    }
    call_time = ok(api.get(f"/crm/v3/objects/calls/{call['id']}", properties="hs_timestamp"))
    assert call_time["properties"]["hs_timestamp"] == "2024-01-12T15:00:00.000Z"  # same day: CreatedDate
    assert ok(api.get("/crm/v3/objects/meetings"))["results"] == []
    served = {r["id"] for t in ("calls", "emails", "tasks") for r in results(t, "hs_timestamp")}
    assert hs.hubspot_id(T4) not in served


def test_associations(hs: FakeHubSpot, api: Api) -> None:
    def read(from_type: str, to_type: str, *sf_ids: str, status: int = 200) -> dict:
        inputs = [{"id": hs.hubspot_id(i)} for i in sf_ids]
        return ok(
            api.post(f"/crm/v4/associations/{from_type}/{to_type}/batch/read", {"inputs": inputs}), status
        )

    def to(sf_id: str, *types: tuple[int, str | None]) -> dict:
        return {
            "toObjectId": int(hs.hubspot_id(sf_id)),
            "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": t, "label": label} for t, label in types
            ],
        }

    deals = read("deals", "companies", O1, O2)
    assert deals["status"] == "COMPLETE" and {"startedAt", "completedAt"} <= deals.keys()
    assert deals["results"] == [
        {"from": {"id": hs.hubspot_id(O1)}, "to": [to(A1, (5, "Primary"), (341, None))]},
        {"from": {"id": hs.hubspot_id(O2)}, "to": [to(A1, (5, "Primary"), (341, None))]},
    ]
    assert read("companies", "deals", A1)["results"][0]["to"] == [
        to(O1, (6, "Primary"), (342, None)),
        to(O2, (6, "Primary"), (342, None)),
    ]
    assert read("calls", "contacts", T1)["results"][0]["to"] == [to(C1, (194, None))]
    assert read("calls", "deals", T1)["results"][0]["to"] == [to(O1, (206, None))]
    assert read("emails", "contacts", T2)["results"][0]["to"] == [to(L2, (198, None))]
    assert read("tasks", "companies", T3)["results"][0]["to"] == [to(A1, (192, None))]
    partial = read("contacts", "companies", C1, L1, status=207)
    assert partial["results"] == [
        {"from": {"id": hs.hubspot_id(C1)}, "to": [to(A1, (1, "Primary"), (279, None))]}
    ]
    assert partial["numErrors"] == 1
    assert partial["errors"] == [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
            "message": f"No company is associated with contact {hs.hubspot_id(L1)}.",
            "context": {
                "fromObjectId": [hs.hubspot_id(L1)],
                "fromObjectType": ["contact"],
                "toObjectType": ["company"],
            },
        }
    ]
    assert read("contacts", "emails", L1, status=207)["results"] == []  # the ListEmail is not served
    too_many = api.post("/crm/v4/associations/deals/companies/batch/read", {"inputs": [{"id": "1"}] * 1001})
    assert ok(too_many, 400)["category"] == "VALIDATION_ERROR"


def test_meetings_added_by_the_test(hs: FakeHubSpot, api: Api) -> None:
    start, end = datetime(2024, 3, 1, 15, 0), datetime(2024, 3, 1, 15, 30, tzinfo=UTC)
    meeting_id = hs.add_meeting(U1, start, end, "Demo", L1, deal_sf_id=O1)
    names = "hs_meeting_title,hs_meeting_start_time,hs_meeting_end_time,hs_meeting_outcome,hs_timestamp"
    [meeting] = ok(api.get("/crm/v3/objects/meetings", properties=f"{names},hubspot_owner_id"))["results"]
    assert meeting["id"] == meeting_id
    assert meeting["properties"] == {
        "hs_createdate": "2024-03-01T15:00:00.000Z",
        "hs_lastmodifieddate": "2024-03-01T15:00:00.000Z",
        "hs_meeting_end_time": "2024-03-01T15:30:00.000Z",
        "hs_meeting_outcome": "COMPLETED",
        "hs_meeting_start_time": "2024-03-01T15:00:00.000Z",
        "hs_meeting_title": "Demo",
        "hs_object_id": meeting_id,
        "hs_timestamp": "2024-03-01T15:00:00.000Z",
        "hubspot_owner_id": "100000001",
    }
    body = {"inputs": [{"id": meeting_id}]}
    linked = ok(api.post("/crm/v4/associations/meetings/contacts/batch/read", body))["results"][0]["to"]
    assert linked == [
        {
            "toObjectId": int(hs.hubspot_id(L1)),
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 200, "label": None}],
        }
    ]
    back = {"inputs": [{"id": hs.hubspot_id(O1)}]}
    assert ok(api.post("/crm/v4/associations/deals/meetings/batch/read", back))["results"][0]["to"][0][
        "associationTypes"
    ] == [{"category": "HUBSPOT_DEFINED", "typeId": 211, "label": None}]


# --- endpoints -----------------------------------------------------------------------------------


def test_search_filters_sorts_pages_and_ceiling(hs: FakeHubSpot, api: Api) -> None:
    def search(body: dict, status: int = 200) -> dict:
        return ok(api.post("/crm/v3/objects/contacts/search", body), status)

    since = {"propertyName": "lastmodifieddate", "operator": "GT", "value": epoch_ms("2024-01-21T08:15:00")}
    body = {
        "filterGroups": [{"filters": [since]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "no_such_property"],
        "limit": 1,
    }
    first = search(body)
    assert first == {
        "total": 2,
        "results": [
            {
                "id": hs.hubspot_id(L1),
                "properties": {
                    "createdate": "2024-01-05T12:00:00.000Z",
                    "email": "barbara@liskov.example",
                    "hs_object_id": hs.hubspot_id(L1),
                    "lastmodifieddate": "2024-02-10T12:30:00.000Z",
                },
                "createdAt": "2024-01-05T12:00:00.000Z",
                "updatedAt": "2024-02-10T12:30:00.000Z",
                "archived": False,
            }
        ],
        "paging": {"next": {"after": "1"}},
    }
    second = search({**body, "after": first["paging"]["next"]["after"]})
    assert [r["id"] for r in second["results"]] == [hs.hubspot_id(C1)] and "paging" not in second
    iso = {**since, "value": "2024-01-21T08:15:00Z"}  # ISO filter values work as well
    assert search({**body, "filterGroups": [{"filters": [iso]}], "limit": 10})["total"] == 2

    def ids(*filter_groups: list[dict], sorts: list[dict] | None = None) -> list[str]:
        found = search(
            {"filterGroups": [{"filters": f} for f in filter_groups], "sorts": sorts or [], "limit": 10}
        )
        return [r["id"] for r in found["results"]]

    lead = {"propertyName": "lifecyclestage", "operator": "EQ", "value": "LEAD"}  # case-insensitive
    contact = {"propertyName": "hs_object_id", "operator": "EQ", "value": hs.hubspot_id(C1)}
    assert ids([lead], [contact]) == [hs.hubspot_id(C1), hs.hubspot_id(L2)]  # groups are ORed
    assert ids([lead, contact]) == []  # filters are ANDed
    above = {"propertyName": "hs_object_id", "operator": "GT", "value": "2000000001"}  # numeric
    newest = [{"propertyName": "hs_object_id", "direction": "DESCENDING"}]
    assert ids([above], sorts=newest) == [hs.hubspot_id(L2), hs.hubspot_id(L1)]
    assert ids([{"propertyName": "email", "operator": "NOT_HAS_PROPERTY"}]) == [hs.hubspot_id(L2)]
    assert ids([{"propertyName": "hs_analytics_source", "operator": "HAS_PROPERTY"}]) == [
        hs.hubspot_id(L1),
        hs.hubspot_id(L2),
    ]

    ceiling = search({"limit": 10, "after": "45"}, status=400)  # the fake's ceiling is 50 here
    assert ceiling["category"] == "VALIDATION_ERROR" and ceiling["status"] == "error"
    assert search({"limit": 201}, status=400)["category"] == "VALIDATION_ERROR"
    assert hs.search_bodies("contacts")[0] == body
    assert hs.search_bodies("0-1")[1]["after"] == "1"


def test_list_paging_and_batch_read_errors(hs: FakeHubSpot, api: Api) -> None:
    page = ok(api.get("/crm/v3/objects/contacts", limit=2, properties="email"))
    assert [r["id"] for r in page["results"]] == [hs.hubspot_id(C1), hs.hubspot_id(L1)]
    cursor = page["paging"]["next"]["after"]
    assert page["paging"]["next"]["link"].startswith(f"{hs.url}/crm/v3/objects/contacts?")
    rest = ok(api.get("/crm/v3/objects/contacts", limit=2, properties="email", after=cursor))
    assert [r["id"] for r in rest["results"]] == [hs.hubspot_id(L2)] and "paging" not in rest
    assert ok(api.get("/crm/v3/objects/contacts", limit=101), 400)["category"] == "VALIDATION_ERROR"
    assert ok(api.get("/crm/v3/objects/deals", limit=51, propertiesWithHistory="dealstage"), 400)

    inputs = [{"id": hs.hubspot_id(O1)}, {"id": "999"}]
    partial = ok(
        api.post("/crm/v3/objects/deals/batch/read", {"inputs": inputs, "properties": ["amount"]}), 207
    )
    assert [r["id"] for r in partial["results"]] == [hs.hubspot_id(O1)]
    assert partial["status"] == "COMPLETE" and partial["numErrors"] == 1
    assert partial["errors"] == [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some DEAL objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            "context": {"ids": ["999"]},
        }
    ]
    many = {"inputs": [{"id": str(n)} for n in range(101)]}
    assert ok(api.post("/crm/v3/objects/deals/batch/read", many), 400)["category"] == "VALIDATION_ERROR"
    with_history = {"inputs": many["inputs"][:51], "propertiesWithHistory": ["dealstage"]}
    assert (
        ok(api.post("/crm/v3/objects/deals/batch/read", with_history), 400)["category"] == "VALIDATION_ERROR"
    )


def test_owners_with_teams_and_the_pipeline(hs: FakeHubSpot, api: Api) -> None:
    active = ok(api.get("/crm/v3/owners"))
    assert active == {
        "results": [
            {
                "id": "100000001",
                "email": "ada@sales.example",
                "type": "PERSON",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "userId": 200000001,
                "userIdIncludingInactive": 200000001,
                "createdAt": "2020-01-01T09:00:00.000Z",
                "updatedAt": "2024-01-15T14:22:10.123Z",
                "archived": False,
                "teams": [{"id": hs.hubspot_id(R1), "name": "Sales Rep", "primary": True}],
            }
        ]
    }
    [inactive] = ok(api.get("/crm/v3/owners", archived="true"))["results"]
    assert (inactive["firstName"], inactive["lastName"], inactive["archived"]) == (
        "Grace",
        "Brewster Hopper",
        True,
    )
    assert (inactive["userId"], inactive["userIdIncludingInactive"]) == (None, 200000002)
    assert inactive["teams"] == [{"id": "300000002", "name": "VP Sales", "primary": True}]

    [pipeline] = ok(api.get("/crm/v3/pipelines/deals"))["results"]
    assert (pipeline["id"], pipeline["label"], pipeline["displayOrder"], pipeline["archived"]) == (
        "default",
        "Sales Pipeline",
        0,
        False,
    )
    stages = {s["id"]: s for s in pipeline["stages"]}
    assert list(stages)[:2] == ["prospecting", "qualification"] and len(stages) == 10
    assert stages["prospecting"]["metadata"] == {"isClosed": "false", "probability": "0.1"}
    assert stages["closedwon"]["metadata"] == {"isClosed": "true", "probability": "1.0"}
    assert stages["closedlost"]["metadata"] == {"isClosed": "true", "probability": "0.0"}
    assert (stages["negotiationreview"]["label"], stages["negotiationreview"]["displayOrder"]) == (
        "Negotiation/Review",
        7,
    )
    assert hs.stage_id("Negotiation/Review") == "negotiationreview"


def test_properties_api_and_property_knobs(hs: FakeHubSpot, api: Api) -> None:
    listed = {p["name"]: p for p in ok(api.get("/crm/v3/properties/deals"))["results"]}
    assert set(listed) == {
        "dealname",
        "amount",
        "dealstage",
        "pipeline",
        "closedate",
        "createdate",
        "hs_lastmodifieddate",
        "hubspot_owner_id",
        "dealtype",
        "lead_source",
        "hs_analytics_source",
        "hs_deal_stage_probability",
        "hs_manual_forecast_category",
        "hs_is_closed",
        "hs_is_closed_won",
        "hs_object_id",
    }
    assert {
        n: listed[n]["type"] for n in ("amount", "closedate", "dealstage", "hs_is_closed", "dealname")
    } == {
        "amount": "number",
        "closedate": "datetime",
        "dealstage": "enumeration",
        "hs_is_closed": "bool",
        "dealname": "string",
    }
    assert listed["amount"]["modificationMetadata"]["archivable"] is True
    assert [o["value"] for o in listed["dealstage"]["options"]][-2:] == ["closedwon", "closedlost"]
    contact_names = {p["name"] for p in ok(api.get("/crm/v3/properties/contacts"))["results"]}
    assert {"lastmodifieddate", "hs_lastmodifieddate", "lead_source", "hs_object_id"} <= contact_names
    unknown = ok(api.get("/crm/v3/properties/widgets"), 404)
    assert (unknown["category"], unknown["message"]) == (
        "OBJECT_NOT_FOUND",
        "Unable to infer object type from: widgets",
    )

    hs.add_property("deals", "deal_code", lambda row: row["Name"].upper())
    hs.hide_property("deals", "lead_source")
    names = {p["name"] for p in ok(api.get("/crm/v3/properties/deals"))["results"]}
    assert "deal_code" in names and "lead_source" not in names
    [deal] = props(api, "deals", [O1], hs, properties=["deal_code", "lead_source"])
    assert deal["properties"] == {
        "createdate": "2024-01-10T09:00:00.000Z",
        "deal_code": "ACME - NEW DEAL",
        "hs_lastmodifieddate": "2024-03-30T16:00:00.000Z",
        "hs_object_id": "4000000001",
    }


def test_the_file_is_reread_when_it_changes_and_cached_otherwise(
    hs: FakeHubSpot, api: Api, crm: Path
) -> None:
    def deal() -> dict:
        return props(api, "deals", [O2], hs, properties=["amount", "dealstage"])[0]["properties"]

    assert deal()["amount"] == "TBD"
    assert deal()["dealstage"] == "negotiationreview"
    assert hs.translations == 1
    with sqlite3.connect(crm) as connection:
        connection.execute(
            "UPDATE opportunity SET Amount = '61000.50', StageName = 'Verbal Commit' WHERE Id = ?", (O2,)
        )
    changed = deal()
    assert (changed["amount"], changed["dealstage"]) == ("61000.5", "verbal_commit")  # not a pipeline stage
    assert hs.translations == 2


# --- authentication and faults -------------------------------------------------------------------


def test_authentication_refresh_and_expiry(hs: FakeHubSpot) -> None:
    anonymous = requests.get(f"{hs.url}/crm/v3/owners", timeout=10)
    body = ok(anonymous, 401)
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found.") and body["correlationId"]

    form = {
        "grant_type": "refresh_token",
        "client_id": FAKE_CLIENT_ID,
        "client_secret": FAKE_CLIENT_SECRET,
        "refresh_token": "wrong",
    }
    bad = ok(requests.post(f"{hs.url}/oauth/v1/token", data=form, timeout=10), 400)
    assert bad["status"] == "BAD_REFRESH_TOKEN" and bad["message"]
    granted = ok(
        requests.post(f"{hs.url}/oauth/v1/token", data={**form, "refresh_token": FAKE_REFRESH_TOKEN})
    )
    assert (granted["token_type"], granted["refresh_token"], granted["expires_in"]) == (
        "bearer",
        FAKE_REFRESH_TOKEN,
        1800,
    )
    client = Api(hs, granted["access_token"])
    assert ok(client.get("/crm/v3/owners"))["results"]
    hs.expire_sessions()
    assert ok(client.get("/crm/v3/owners"), 401)["category"] in (
        "EXPIRED_AUTHENTICATION",
        "INVALID_AUTHENTICATION",
    )
    assert ok(Api(hs).get("/crm/v3/owners"))["results"]  # the private-app token never expires
    again = ok(requests.post(f"{hs.url}/oauth/v1/token", data={**form, "refresh_token": FAKE_REFRESH_TOKEN}))
    assert again["access_token"] != granted["access_token"]
    assert ok(Api(hs, again["access_token"]).get("/crm/v3/owners"))["results"]
    assert [r.status for r in hs.token_requests()] == [400, 200, 200]
    assert hs.requests[0].bearer is None and hs.requests_to("/owners")[1].bearer == granted["access_token"]


def test_rate_limits_and_server_errors(hs: FakeHubSpot, api: Api) -> None:
    hs.rate_limit_next()
    limited = api.get("/crm/v3/owners")
    assert limited.status_code == 429 and "Retry-After" not in limited.headers
    body = limited.json()
    assert {k: body[k] for k in ("status", "message", "errorType", "policyName", "groupName")} == {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": "api",
    }
    assert body["correlationId"]
    hs.rate_limit_next(retry_after=3, times=2)
    assert [api.get("/crm/v3/owners").headers.get("Retry-After") for _ in range(2)] == ["3", "3"]
    assert ok(api.get("/crm/v3/owners"))["results"]

    hs.server_error_next(status=502)
    gateway = api.get("/crm/v3/owners")
    assert gateway.status_code == 502 and gateway.headers["Content-Type"].startswith("text/html")
    hs.server_error_next()
    assert ok(api.get("/crm/v3/owners"), 500)["status"] == "error"

    hs.fail_next(503, {"status": "error", "message": "busy"}, skip=1, path_contains="/search")
    assert api.get("/crm/v3/owners").status_code == 200  # another path: not counted
    assert api.post("/crm/v3/objects/deals/search", {}).status_code == 200  # skipped
    assert ok(api.post("/crm/v3/objects/deals/search", {}), 503) == {"status": "error", "message": "busy"}
    assert api.post("/crm/v3/objects/deals/search", {}).status_code == 200
    assert ok(api.get("/crm/v3/nothing/here"), 404)["status"] == "error"
