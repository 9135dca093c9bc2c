"""The Salesforce REST connector against a fake Salesforce on 127.0.0.1 (tests/fakes/salesforce_server.py).

Equality with the SQL-replica reader is proven on the XS demo org (plus a few OpportunityStage and
Event rows written here: the demo org has neither object) twice: raw tables value by value after
normalising only the representational differences listed in ``normalised`` (datetime spelling,
booleans stored 0/1, '' that the API sends as null), and the dbt staging models plus the
quarantine built from either warehouse, compared exactly.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import requests

from ingestion.contract import CRM_CONTRACT, CRM_TABLES
from ingestion.crm_load import LoadResult, load_crm_table, parse_source_datetime
from ingestion.crm_sql import SourceTable, SqlCrmReader
from ingestion.errors import SourceError
from ingestion.salesforce_api import (
    API_OBJECTS,
    SalesforceApiReader,
    SalesforceClient,
    SalesforceSettings,
    api_value_text,
)
from ingestion.warehouse import Warehouse
from tests.conftest import E2E_AS_OF
from tests.crm_fixtures import create_crm, execute, insert_rows
from tests.fakes.salesforce_server import (
    FAKE_CLIENT_ID,
    FAKE_CLIENT_SECRET,
    FAKE_REFRESH_TOKEN,
    FakeSalesforce,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRETS = (FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_REFRESH_TOKEN)
SYNC_START = datetime(2024, 2, 1)  # the reader's clock for the small org
API_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
WINDOW = re.compile(
    r"WHERE (?:SystemModstamp >= (\S+) AND )?SystemModstamp < (\S+) ORDER BY SystemModstamp, Id$"
)
LEAD_FIELDS = ", ".join(CRM_CONTRACT["lead"])
L1, L2, L3, L4, L5, L6, L7 = (f"00Q00000000000{n}AAA" for n in range(1, 8))


# --- helpers -------------------------------------------------------------------------------------


class Sleeps(list[float]):
    """Stands in for time.sleep: records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def settings_for(fake: FakeSalesforce, **overrides: Any) -> SalesforceSettings:
    values: dict[str, Any] = {"backoff_base": 0.01, "backoff_cap": 0.04, **overrides}
    return SalesforceSettings(fake.url, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_REFRESH_TOKEN, **values)


@contextmanager
def api_reader(
    fake: FakeSalesforce,
    batch_size: int = 10_000,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], datetime] = lambda: SYNC_START,
    jitter: Callable[[], float] | None = None,
    field_map: dict[str, dict[str, str]] | None = None,
    **settings: Any,
) -> Iterator[SalesforceApiReader]:
    extra: dict[str, Any] = {"jitter": jitter} if jitter else {}
    if field_map:
        extra["field_map"] = field_map
    reader = SalesforceApiReader(
        settings_for(fake, **settings),
        batch_size,
        sleep=Sleeps() if sleep is None else sleep,
        clock=clock,
        **extra,
    )
    try:
        yield reader
    finally:
        reader.close()


def load_api(
    fake: FakeSalesforce,
    warehouse: Warehouse,
    table: str = "lead",
    overlap: timedelta = timedelta(hours=1),
    **kw: Any,
) -> LoadResult:
    with api_reader(fake, **kw) as reader:
        return load_crm_table(reader, warehouse, table, overlap=overlap)


def raw_rows(warehouse: Warehouse, table: str = "lead", columns: str = "id") -> list[tuple]:
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        return connection.execute(f"SELECT {columns} FROM raw.salesforce_{table} ORDER BY id").fetchall()


def lead_windows(fake: FakeSalesforce) -> list[tuple[str | None, str]]:
    """(lower, upper) SystemModstamp bounds of every windowed Lead query, in request order."""
    found = [WINDOW.search(q) for q in fake.soql_queries() if " FROM Lead " in q]
    return [(m[1], m[2]) for m in found if m]


def lead(lead_id: str, modstamp: str, **fields: object) -> dict[str, object]:
    return {
        "Id": lead_id,
        "Email": f"{lead_id}@x.test",
        "SystemModstamp": modstamp,
        "IsDeleted": "false",
        **fields,
    }


def assert_no_secret(text: str, tokens: tuple[str, ...] = ()) -> None:
    for secret in (*SECRETS, *tokens):
        assert secret not in text


@pytest.fixture
def crm(tmp_path: Path) -> Path:
    """A small org: five leads, one a day at 10:00 from 2024-01-01, and one user."""
    path = tmp_path / "crm.sqlite"
    create_crm(path)
    insert_rows(
        path, "lead", [lead(i, f"2024-01-0{n}T10:00:00Z") for n, i in enumerate((L1, L2, L3, L4, L5), 1)]
    )
    insert_rows(
        path,
        "user",
        [{"Id": "0050000000000001AAA", "IsActive": "1", "SystemModstamp": "2024-01-01 08:00:00"}],
    )
    return path


@pytest.fixture
def fake(crm: Path) -> Iterator[FakeSalesforce]:
    with FakeSalesforce(crm) as server:
        yield server


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "wh.duckdb")


# --- equality with the SQL replica reader on the demo org ----------------------------------------


@dataclass(frozen=True)
class DemoWarehouses:
    api: Path
    sql: Path
    api_earliest: datetime | None
    sql_earliest: datetime | None


# The optional objects, added to a copy of the demo org (which has neither).
DEMO_STAGES = [
    {"Id": "01J000000000001", "MasterLabel": "Prospecting", "ApiName": "Prospecting", "SortOrder": "1",
     "IsActive": "1", "IsClosed": "0", "IsWon": "0", "DefaultProbability": "10",
     "ForecastCategoryName": "Pipeline", "SystemModstamp": "2024-01-01 08:00:00"},
    {"Id": "01J000000000002", "MasterLabel": "Closed Won", "ApiName": "Closed Won", "SortOrder": "2",
     "IsActive": "1", "IsClosed": "1", "IsWon": "1", "DefaultProbability": "100",
     "ForecastCategoryName": "Closed", "SystemModstamp": "2024-01-01T08:00:00Z"},
]  # fmt: skip
DEMO_EVENTS = [
    {"Id": "00U000000000001", "WhoId": "00Q000000000001", "WhatId": None, "OwnerId": "005000000000001",
     "Subject": "Intro", "Type": "Meeting", "StartDateTime": "2026-06-01 14:00:00",
     "EndDateTime": "2026-06-01T15:00:00Z", "IsAllDayEvent": "0", "IsDeleted": "0",
     "SystemModstamp": "2026-06-01T15:05:00Z"},
    {"Id": "00U000000000002", "WhoId": None, "WhatId": None, "OwnerId": "005000000000001",
     "Subject": "Offsite", "Type": "Other", "StartDateTime": "2026-06-03T00:00:00Z",
     "EndDateTime": "2026-06-04T00:00:00Z", "IsAllDayEvent": "1", "IsDeleted": "1",
     "SystemModstamp": "2026-06-02T09:00:00Z"},  # deleted
    {"Id": "00U000000000003", "WhoId": None, "WhatId": None, "OwnerId": "005000000000001",
     "Subject": "Backwards", "Type": "Meeting", "StartDateTime": "2026-06-05T10:00:00.000+0000",
     "EndDateTime": "2026-06-05T09:00:00.000+0000", "IsAllDayEvent": "0", "IsDeleted": "0",
     "SystemModstamp": "2026-06-05T10:00:00Z"},  # ends before it starts: quarantined (its values
    # in the API's spelling, which the quarantine shows as read)
]  # fmt: skip


@pytest.fixture(scope="module")
def demo_warehouses(
    demo_org: tuple[Path, object], tmp_path_factory: pytest.TempPathFactory
) -> DemoWarehouses:
    root = tmp_path_factory.mktemp("salesforce_api")
    crm = root / "crm.sqlite"
    shutil.copyfile(demo_org[0] / "crm.sqlite", crm)
    with sqlite3.connect(crm) as connection:
        assert not {"opportunitystage", "event"} & {
            row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    create_crm(crm)  # creates only the missing tables: the optional objects
    insert_rows(crm, "opportunitystage", DEMO_STAGES)
    insert_rows(crm, "event", DEMO_EVENTS)
    api, sql = Warehouse(root / "api.duckdb"), Warehouse(root / "sql.duckdb")
    snapshot = datetime.combine(E2E_AS_OF, datetime.min.time())
    with (
        FakeSalesforce(crm, page_size=200) as server,
        api_reader(server, 500, clock=lambda: snapshot) as reader,
    ):
        for table in CRM_TABLES:
            load_crm_table(reader, api, table)
        api_earliest = reader.earliest_created_at()
    sql_reader = SqlCrmReader(f"sqlite:///{crm}")
    try:
        for table in CRM_TABLES:
            load_crm_table(sql_reader, sql, table)
        sql_earliest = sql_reader.earliest_created_at()
    finally:
        sql_reader.close()
    return DemoWarehouses(api.path, sql.path, api_earliest, sql_earliest)


BOOLEAN_TEXT = {"0": "false", "1": "true", "false": "false", "true": "true"}


def normalised(column: str, value: str | None) -> object:
    """Only the representational differences between a replica and the API are normalised:
    '' (the API sends null), booleans stored 0/1, and the spelling of datetimes."""
    if value == "":
        return None
    if value is not None and column.startswith("is"):
        return BOOLEAN_TEXT[value]
    if value is not None and column in ("createddate", "systemmodstamp", "startdatetime", "enddatetime"):
        return parse_source_datetime(value)
    return value


def raw_table(path: Path, table: str) -> tuple[list[str], dict[str, tuple]]:
    with duckdb.connect(str(path), read_only=True) as connection:
        relation = connection.execute(f"SELECT * EXCLUDE (_loaded_at, _batch_id) FROM raw.salesforce_{table}")
        columns = [d[0] for d in relation.description]
        return columns, {row[columns.index("id")]: row for row in relation.fetchall()}


@pytest.mark.parametrize("table", CRM_TABLES)
def test_raw_tables_equal_the_sql_replica_reader(demo_warehouses: DemoWarehouses, table: str) -> None:
    api_columns, api_rows = raw_table(demo_warehouses.api, table)
    sql_columns, sql_rows = raw_table(demo_warehouses.sql, table)
    assert api_columns == sql_columns
    assert api_rows.keys() == sql_rows.keys() and len(api_rows) > 0

    def comparable(row: tuple) -> tuple:
        return tuple(normalised(c, v) for c, v in zip(api_columns, row, strict=True))

    assert {k: comparable(v) for k, v in api_rows.items()} == {k: comparable(v) for k, v in sql_rows.items()}
    for row in api_rows.values():  # and the API spelling is the one documented
        values = dict(zip(api_columns, row, strict=True))
        assert API_DATETIME.match(values["systemmodstamp"])
        assert all(values[c] in ("true", "false") for c in api_columns if c.startswith("is"))


def test_earliest_created_at_equals_the_sql_replica_reader(demo_warehouses: DemoWarehouses) -> None:
    assert demo_warehouses.api_earliest is not None
    assert demo_warehouses.api_earliest == demo_warehouses.sql_earliest


def run_dbt_staging(warehouses: list[Path], work: Path) -> None:
    """dbt build of the Salesforce staging models, the quarantine and the seed of stages they fall back
    on (no tests), one process per warehouse at once."""
    dbt = str(Path(sys.executable).with_name("dbt"))
    processes = []
    for index, warehouse in enumerate(warehouses):
        env = {**os.environ, "SALESOPS_WAREHOUSE": str(warehouse), "SALESOPS_AS_OF": E2E_AS_OF.isoformat()}
        env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        command = [
            dbt, "build", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
            "--target-path", str(work / f"target{index}"), "--log-path", str(work / f"logs{index}"),
            "--select", "path:models/staging/salesforce quarantine opportunity_stages",
            "--resource-type", "model", "--resource-type", "seed",
            "--vars", json.dumps({"as_of": E2E_AS_OF.isoformat()}), "--no-use-colors",
        ]  # fmt: skip
        processes.append(
            subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
        )
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-3000:]


def staging_tables(path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging' "
                "AND table_name LIKE 'stg_salesforce__%' ORDER BY 1"
            ).fetchall()
        ]
        tables = {
            name: connection.execute(f"SELECT * FROM staging.{name} ORDER BY ALL").fetchall()
            for name in names
        }
        tables["quality.quarantine"] = connection.execute(
            "SELECT * EXCLUDE (batch_id, first_seen, last_seen) FROM quality.quarantine ORDER BY ALL"
        ).fetchall()
        return tables


def test_staging_models_equal_the_sql_replica_reader(demo_warehouses: DemoWarehouses, tmp_path: Path) -> None:
    run_dbt_staging([demo_warehouses.api, demo_warehouses.sql], tmp_path)
    api, sql = staging_tables(demo_warehouses.api), staging_tables(demo_warehouses.sql)
    assert len(api) == len(CRM_TABLES) + 1
    assert all(api[name] for name in api if name.startswith("stg_"))
    for name in api:
        assert api[name] == sql[name], name


# --- queries, paging, increments, deletes --------------------------------------------------------


def test_contract_objects_have_their_api_names() -> None:
    assert list(API_OBJECTS) == list(CRM_TABLES)
    assert all(name.lower() == table for table, name in API_OBJECTS.items())


def test_full_load_queries_contract_and_scalar_fields_up_to_the_sync_start(
    fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    fake.add_field("Account", "Region__c")
    load_api(fake, warehouse, "lead")
    load_api(fake, warehouse, "account")
    lead_query, account_query = fake.soql_queries()
    assert lead_query == (
        f"SELECT {LEAD_FIELDS} FROM Lead "
        "WHERE SystemModstamp < 2024-02-01T00:00:00Z ORDER BY SystemModstamp, Id"
    )
    # BillingAddress is compound (describe type 'address'): its component BillingCountry is read instead.
    assert account_query.startswith(f"SELECT {', '.join(CRM_CONTRACT['account'])}, Region__c FROM Account ")
    assert [r.path for r in fake.api_requests() if r.soql] == ["/services/data/v60.0/queryAll"] * 2


def test_paging_follows_next_records_url(crm: Path, warehouse: Warehouse) -> None:
    with FakeSalesforce(crm, page_size=2) as fake:
        result = load_api(fake, warehouse)
        paths = [r.path for r in fake.api_requests()]
    assert paths == [
        "/services/data/v60.0/sobjects/Lead/describe",
        "/services/data/v60.0/queryAll",
        "/services/data/v60.0/queryAll/01gFAKE00000000001-2",
        "/services/data/v60.0/queryAll/01gFAKE00000000001-4",
    ]
    assert (result.rows_read, result.rows_in_raw) == (5, 5)
    assert raw_rows(warehouse, columns="id, email") == [(i, f"{i}@x.test") for i in (L1, L2, L3, L4, L5)]


def test_incremental_load_reads_from_cursor_minus_overlap_and_only_changed_rows(
    crm: Path, fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    first = load_api(fake, warehouse)
    execute(
        crm,
        f"UPDATE lead SET Email = 'new@x.test', SystemModstamp = '2024-01-10T00:00:00Z' WHERE Id = '{L2}'",
    )
    insert_rows(crm, "lead", [lead(L6, "2024-01-11T00:00:00Z"), lead(L7, "2024-03-01T00:00:00Z")])
    fake.requests.clear()

    second = load_api(fake, warehouse, overlap=timedelta(hours=1))

    assert first.cursor_after == datetime(2024, 1, 5, 10)
    assert lead_windows(fake) == [("2024-01-05T09:00:00Z", "2024-02-01T00:00:00Z")]
    assert second.rows_read == 3  # L5 (inside the overlap), the changed L2 and the new L6
    assert second.cursor_after == datetime(2024, 1, 11)
    assert raw_rows(warehouse, columns="id, email")[:2] == [(L1, f"{L1}@x.test"), (L2, "new@x.test")]
    assert second.rows_in_raw == 6  # L7, changed after the sync started, waits for the next sync

    third = load_api(fake, warehouse, overlap=timedelta(0), clock=lambda: datetime(2024, 4, 1))
    assert (third.rows_read, third.rows_in_raw) == (2, 7)  # L6 again (>= cursor) and L7


def test_deleted_rows_arrive_through_query_all_and_users_through_query(
    crm: Path, fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    execute(crm, f"UPDATE lead SET IsDeleted = 'true' WHERE Id = '{L3}'")
    load_api(fake, warehouse, "lead")
    load_api(fake, warehouse, "user")
    assert raw_rows(warehouse, columns="id, isdeleted") == [
        (L1, "false"), (L2, "false"), (L3, "true"), (L4, "false"), (L5, "false"),
    ]  # fmt: skip
    assert raw_rows(warehouse, "user", "id, isactive, systemmodstamp") == [
        ("0050000000000001AAA", "true", "2024-01-01T08:00:00.000+0000")
    ]
    assert [r.path for r in fake.api_requests() if r.soql] == [
        "/services/data/v60.0/queryAll",
        "/services/data/v60.0/query",
    ]


def test_the_fake_answers_like_salesforce(fake: FakeSalesforce) -> None:
    token = requests.post(
        f"{fake.url}/services/oauth2/token",
        data={"grant_type": "refresh_token", "client_id": FAKE_CLIENT_ID, "client_secret": FAKE_CLIENT_SECRET,
              "refresh_token": FAKE_REFRESH_TOKEN},
        timeout=5,
    ).json()  # fmt: skip
    headers = {"Authorization": f"Bearer {token['access_token']}"}

    def get(path: str, **params: str) -> requests.Response:
        return requests.get(
            f"{token['instance_url']}/services/data/v60.0/{path}", params, headers=headers, timeout=5
        )

    soql = "SELECT Id FROM Lead ORDER BY Id"
    fake.hide_field("Lead", "Email")
    execute(fake.crm_path, f"UPDATE lead SET IsDeleted = 1 WHERE Id = '{L3}'")
    assert get("query", q=soql).json()["totalSize"] == 4
    answer = get("queryAll", q=soql).json()
    assert (answer["totalSize"], answer["done"]) == (5, True)
    assert answer["records"][0] == {
        "attributes": {"type": "Lead", "url": f"/services/data/v60.0/sobjects/Lead/{L1}"},
        "Id": L1,
    }
    assert get("query", q="SELECT Email FROM Lead").json() == [
        {"message": "No such column 'Email' on entity 'Lead'.", "errorCode": "INVALID_FIELD"}
    ]
    account = {f["name"]: f["type"] for f in get("sobjects/Account/describe").json()["fields"]}
    assert (account["BillingCountry"], account["BillingAddress"], account["IsDeleted"]) == (
        "string", "address", "boolean",
    )  # fmt: skip
    assert get("sobjects/Nothing/describe").status_code == 404
    anonymous = requests.get(f"{fake.url}/services/data/v60.0/query", {"q": soql}, timeout=5)
    assert (anonymous.status_code, anonymous.json()[0]["errorCode"]) == (401, "INVALID_SESSION_ID")
    refused = requests.post(
        f"{fake.url}/services/oauth2/token", data={"grant_type": "refresh_token"}, timeout=5
    )
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client")


# --- authentication, retries, timeouts -----------------------------------------------------------


def test_expired_session_is_refreshed_once_and_the_request_retried(
    fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    with api_reader(fake) as reader:
        reader.describe("lead")
        fake.expire_sessions()
        result = load_crm_table(reader, warehouse, "lead")
    api = fake.api_requests()
    assert len(fake.token_requests()) == 2
    assert [(r.path.rsplit("/", 1)[-1], r.status) for r in api] == [
        ("describe", 200), ("queryAll", 401), ("queryAll", 200),
    ]  # fmt: skip
    assert api[0].bearer == api[1].bearer != api[2].bearer
    assert result.rows_in_raw == 5


def test_rejected_again_after_refresh_is_a_source_error(fake: FakeSalesforce, warehouse: Warehouse) -> None:
    fake.fail_next(401, "INVALID_SESSION_ID", "Session expired or invalid", times=2)
    with pytest.raises(SourceError) as caught:
        load_api(fake, warehouse)
    assert caught.value.rule == "authentication"
    assert str(caught.value) == (
        "source 'crm', table 'lead', rule 'authentication': "
        "Salesforce Lead: HTTP 401 INVALID_SESSION_ID: Session expired or invalid"
    )
    assert len(fake.token_requests()) == 2


def test_invalid_refresh_token_is_a_source_error_without_secrets(fake: FakeSalesforce) -> None:
    settings = SalesforceSettings(fake.url, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, "revoked-refresh-token-QQ42")
    reader = SalesforceApiReader(settings, sleep=Sleeps())
    with pytest.raises(SourceError) as caught:
        reader.describe("lead")
    reader.close()
    assert str(caught.value) == (
        "source 'crm', table 'lead', rule 'authentication': "
        "OAuth token refresh failed: HTTP 400 invalid_grant"
    )
    assert_no_secret(str(caught.value), ("revoked-refresh-token-QQ42",))


def test_rate_limit_with_retry_after_sleeps_that_long(fake: FakeSalesforce, warehouse: Warehouse) -> None:
    sleeps = Sleeps()
    fake.rate_limit_next(retry_after="7")
    result = load_api(fake, warehouse, sleep=sleeps)
    assert sleeps == [7.0]
    assert [r.status for r in fake.api_requests()] == [429, 200, 200]
    assert result.rows_in_raw == 5


def test_rate_limit_without_retry_after_backs_off_exponentially_with_jitter(
    fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    fixed, drawn = Sleeps(), Sleeps()
    fake.rate_limit_next(times=4)
    jitters = iter([0.0, 1.0, 0.5, 0.25])
    load_api(fake, warehouse, sleep=fixed, jitter=lambda: next(jitters))
    fake.rate_limit_next(times=4)
    load_api(fake, warehouse, sleep=drawn)

    # backoff_base 0.01 s doubling to the 0.04 s cap; the jitter draws between half and all of it.
    assert fixed == pytest.approx([0.005, 0.02, 0.03, 0.025])
    ceilings = [0.01, 0.02, 0.04, 0.04]
    assert all(c / 2 <= s <= c for s, c in zip(drawn, ceilings, strict=True)), drawn


def test_server_error_and_request_limit_are_retried(fake: FakeSalesforce, warehouse: Warehouse) -> None:
    sleeps = Sleeps()
    fake.server_error_next()
    fake.request_limit_next()
    result = load_api(fake, warehouse, sleep=sleeps)
    assert [(r.status, r.error_code) for r in fake.api_requests()] == [
        (500, "UNKNOWN_EXCEPTION"), (403, "REQUEST_LIMIT_EXCEEDED"), (200, None), (200, None),
    ]  # fmt: skip
    assert len(sleeps) == 2
    assert result.rows_in_raw == 5


def test_retries_stop_at_the_cap_with_a_one_line_error(fake: FakeSalesforce, warehouse: Warehouse) -> None:
    sleeps = Sleeps()
    fake.fail_next(503, "SERVER_UNAVAILABLE", "Server unavailable\nplease retry", times=100)
    with pytest.raises(SourceError) as caught:
        load_api(fake, warehouse, sleep=sleeps, max_retries=3)
    assert str(caught.value) == (
        "source 'crm', table 'lead', rule 'retries_exhausted': "
        "Salesforce Lead: HTTP 503 SERVER_UNAVAILABLE, still failing after 3 retries"
    )
    assert (len(fake.api_requests()), len(sleeps)) == (4, 3)


def test_too_long_retry_after_fails_instead_of_blocking(fake: FakeSalesforce, warehouse: Warehouse) -> None:
    fake.rate_limit_next(retry_after="3600")
    with pytest.raises(SourceError, match="asks to retry after 3600 s") as caught:
        load_api(fake, warehouse, max_retry_after=60)
    assert caught.value.rule == "retries_exhausted"


def test_query_timeout_splits_the_window_in_halves(fake: FakeSalesforce, warehouse: Warehouse) -> None:
    fake.query_timeout_wider_than = timedelta(days=2)
    result = load_api(fake, warehouse, clock=lambda: datetime(2024, 1, 9))
    assert lead_windows(fake) == [
        (None, "2024-01-09T00:00:00Z"),  # times out; the earliest SystemModstamp is looked up
        ("2024-01-01T10:00:00Z", "2024-01-05T05:00:00Z"),  # times out
        ("2024-01-01T10:00:00Z", "2024-01-03T07:30:00Z"),
        ("2024-01-03T07:30:00Z", "2024-01-05T05:00:00Z"),
        ("2024-01-05T05:00:00Z", "2024-01-09T00:00:00Z"),  # times out
        ("2024-01-05T05:00:00Z", "2024-01-07T02:30:00Z"),
        ("2024-01-07T02:30:00Z", "2024-01-09T00:00:00Z"),
    ]
    assert [r.error_code for r in fake.api_requests() if r.soql and "LIMIT" not in r.soql].count(
        "QUERY_TIMEOUT"
    ) == 3
    assert "ORDER BY SystemModstamp ASC NULLS LAST LIMIT 1" in fake.soql_queries()[1]
    assert (result.rows_read, result.rows_in_raw) == (5, 5)
    assert raw_rows(warehouse) == [(i,) for i in (L1, L2, L3, L4, L5)]


def test_expired_query_locator_resumes_from_the_last_record_without_duplicates(
    crm: Path, warehouse: Warehouse
) -> None:
    with FakeSalesforce(crm, page_size=2) as fake:
        fake.fail_next(400, "INVALID_QUERY_LOCATOR", "invalid query locator", skip=2)  # the second page
        result = load_api(fake, warehouse)
        windows = lead_windows(fake)
    assert windows == [(None, "2024-02-01T00:00:00Z"), ("2024-01-02T10:00:00Z", "2024-02-01T00:00:00Z")]
    assert (result.rows_read, result.rows_in_raw) == (5, 5)  # L2, read twice, is loaded once
    assert raw_rows(warehouse, columns="id, count(*) OVER (PARTITION BY id)") == [
        (i, 1) for i in (L1, L2, L3, L4, L5)
    ]


def test_query_timing_out_below_the_minimum_window_is_a_source_error(
    fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    fake.query_timeout_wider_than = timedelta(0)
    with pytest.raises(SourceError) as caught:
        load_api(fake, warehouse, clock=lambda: datetime(2024, 1, 9), min_window=timedelta(days=1))
    assert caught.value.rule == "query_timeout"
    assert str(caught.value).endswith(
        "query times out even for the window 2024-01-01T10:00:00Z to 2024-01-02T08:45:00Z"
    )


# --- schema changes ------------------------------------------------------------------------------


def test_unknown_new_fields_are_kept_as_raw_columns(
    crm: Path, fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    load_api(fake, warehouse)
    fake.add_field("Lead", "Region__c", "picklist", lambda row: "EMEA" if row["Id"] == L2 else None)
    fake.add_field("Lead", "Score__c", "double", 1250.5)
    fake.add_field("Lead", "Seats__c", "int", 100000)
    fake.add_field("Lead", "Is_Hot__c", "boolean", True)
    execute(crm, f"UPDATE lead SET SystemModstamp = '2024-01-10T00:00:00Z' WHERE Id = '{L2}'")
    result = load_api(fake, warehouse)
    assert result.rows_read == 2
    assert raw_rows(warehouse, columns="id, region__c, score__c, seats__c, is_hot__c") == [
        (L1, None, None, None, None),
        (L2, "EMEA", "1250.5", "100000", "true"),
        (L3, None, None, None, None),
        (L4, None, None, None, None),
        (L5, None, "1250.5", "100000", "true"),  # inside the overlap window
    ]


def test_missing_required_field_is_a_source_error_naming_object_and_field(
    fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    fake.hide_field("Lead", "Email")
    with pytest.raises(SourceError) as caught:
        load_api(fake, warehouse)
    assert str(caught.value) == (
        "source 'crm', table 'lead', rule 'required_column': "
        "required field 'Email' missing from Salesforce object Lead (and no earlier load to fall back on)"
    )
    with api_reader(fake) as reader:
        assert "email" not in reader.describe("lead", require_contract=False).columns


# --- optional objects, optional fields, field map -----------------------------------------------

STAGE_FIELDS = ", ".join(CRM_CONTRACT["opportunitystage"])
USER_ID = "0050000000000001AAA"


def raw_columns(warehouse: Warehouse, table: str) -> list[str]:
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        return [
            row[0]
            for row in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' "
                "AND table_name = ? ORDER BY ordinal_position",
                [f"salesforce_{table}"],
            ).fetchall()
        ]


def test_opportunity_stages_and_events_load_from_the_api(
    crm: Path, fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    insert_rows(crm, "opportunitystage", [
        {"Id": "01J000000000001", "MasterLabel": "Discovery", "ApiName": "Discovery", "SortOrder": "1",
         "IsActive": "1", "IsClosed": "0", "IsWon": "0", "DefaultProbability": "20",
         "ForecastCategoryName": "Pipeline", "SystemModstamp": "2024-01-02T08:00:00Z"},
        {"Id": "01J000000000002", "MasterLabel": "Signed", "ApiName": "Signed", "SortOrder": "2",
         "IsActive": "1", "IsClosed": "1", "IsWon": "1", "DefaultProbability": "100",
         "ForecastCategoryName": "Closed", "SystemModstamp": "2024-01-02T09:00:00Z"},
    ])  # fmt: skip
    insert_rows(crm, "event", [
        {"Id": "00U000000000001", "WhoId": L1, "WhatId": None, "OwnerId": USER_ID, "Subject": "Intro",
         "Type": "Meeting", "StartDateTime": "2024-01-15 14:00:00", "EndDateTime": "2024-01-15T15:00:00Z",
         "IsAllDayEvent": "0", "IsDeleted": "0", "SystemModstamp": "2024-01-10T12:00:00Z"},
        {"Id": "00U000000000002", "WhoId": None, "WhatId": None, "OwnerId": USER_ID, "Subject": "Offsite",
         "Type": "Other", "StartDateTime": "2024-01-20T00:00:00Z", "EndDateTime": "2024-01-21T00:00:00Z",
         "IsAllDayEvent": "1", "IsDeleted": "1", "SystemModstamp": "2024-01-11T12:00:00Z"},
    ])  # fmt: skip

    stages = load_api(fake, warehouse, "opportunitystage")
    events = load_api(fake, warehouse, "event")

    assert (stages.rows_in_raw, stages.absent, events.rows_in_raw, events.absent) == (2, False, 2, False)
    assert raw_rows(warehouse, "opportunitystage", "id, apiname, sortorder, isclosed, iswon, "
                    "defaultprobability, forecastcategoryname, systemmodstamp") == [
        ("01J000000000001", "Discovery", "1", "false", "false", "20", "Pipeline",
         "2024-01-02T08:00:00.000+0000"),
        ("01J000000000002", "Signed", "2", "true", "true", "100", "Closed", "2024-01-02T09:00:00.000+0000"),
    ]  # fmt: skip
    assert raw_rows(warehouse, "event", "id, whoid, ownerid, subject, startdatetime, enddatetime, "
                    "isalldayevent, isdeleted") == [
        ("00U000000000001", L1, USER_ID, "Intro", "2024-01-15T14:00:00.000+0000",
         "2024-01-15T15:00:00.000+0000", "false", "false"),
        ("00U000000000002", None, USER_ID, "Offsite", "2024-01-20T00:00:00.000+0000",
         "2024-01-21T00:00:00.000+0000", "true", "true"),  # deleted: read through queryAll
    ]  # fmt: skip
    # OpportunityStage has no IsDeleted: /query; Event has: /queryAll
    assert [(r.path, r.soql) for r in fake.api_requests() if r.soql] == [
        ("/services/data/v60.0/query",
         f"SELECT {STAGE_FIELDS} FROM OpportunityStage "
         "WHERE SystemModstamp < 2024-02-01T00:00:00Z ORDER BY SystemModstamp, Id"),
        ("/services/data/v60.0/queryAll",
         f"SELECT {', '.join(CRM_CONTRACT['event'])} FROM Event "
         "WHERE SystemModstamp < 2024-02-01T00:00:00Z ORDER BY SystemModstamp, Id"),
    ]  # fmt: skip


def test_an_org_without_opportunity_stages_and_events_loads_them_empty(
    crm: Path, fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    execute(crm, "DROP TABLE opportunitystage")
    execute(crm, "DROP TABLE event")
    with api_reader(fake) as reader, pytest.raises(SourceError) as caught:
        reader.describe("event")
    assert str(caught.value) == (
        "source 'crm', table 'event', rule 'required_table': "
        "Salesforce Event: HTTP 404 NOT_FOUND: The requested resource does not exist"
    )

    stages = load_api(fake, warehouse, "opportunitystage")
    events = load_api(fake, warehouse, "event")

    assert (stages.absent, stages.rows_in_raw, events.absent, events.rows_in_raw) == (True, 0, True, 0)
    assert raw_columns(warehouse, "event") == [
        "id", "whoid", "whatid", "ownerid", "subject", "type", "startdatetime", "enddatetime",
        "isalldayevent", "isdeleted", "systemmodstamp", "_loaded_at", "_batch_id",
    ]  # fmt: skip
    assert raw_columns(warehouse, "opportunitystage")[:3] == ["id", "masterlabel", "apiname"]
    assert fake.soql_queries() == []  # nothing queried from objects the org does not have


def test_a_user_object_without_hire_date_loads_with_the_field_null(
    fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    fake.hide_field("User", "Hire_Date__c")  # a standard org has no such custom field
    result = load_api(fake, warehouse, "user")
    assert (result.rows_in_raw, result.missing_fields) == (1, ("Hire_Date__c",))
    assert raw_rows(warehouse, "user", "id, isactive, hire_date__c") == [(USER_ID, "true", None)]
    assert "Hire_Date__c" not in fake.soql_queries()[0]
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        assert connection.execute(
            "SELECT source, table_name, field, marts FROM quality.missing_fields"
        ).fetchall() == [("crm", "user", "Hire_Date__c", "onboarding_progress")]


def test_a_field_map_reads_the_hire_date_from_the_orgs_own_field(
    fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    from orchestration.resources import SalesforceApiResource

    fake.hide_field("User", "Hire_Date__c")
    fake.add_field("User", "Start_Date__c", "date", "2023-09-04")
    resource = SalesforceApiResource(
        login_url=fake.url,
        client_id=FAKE_CLIENT_ID,
        client_secret=FAKE_CLIENT_SECRET,
        refresh_token=FAKE_REFRESH_TOKEN,
        field_map="user.Hire_Date__c=Start_Date__c",
    )
    reader = resource.reader()
    try:
        result = load_crm_table(reader, warehouse, "user")  # type: ignore[arg-type]
    finally:
        reader.close()
    assert (result.rows_in_raw, result.missing_fields) == (1, ())
    assert raw_rows(warehouse, "user", "id, hire_date__c") == [(USER_ID, "2023-09-04")]
    assert "start_date__c" not in raw_columns(warehouse, "user")  # read as the contract's field only
    assert fake.soql_queries()[0].startswith(
        "SELECT Id, Name, Email, Title, UserRoleId, ManagerId, IsActive, TimeZoneSidKey, Start_Date__c, "
        "CreatedDate, SystemModstamp FROM User WHERE SystemModstamp < "
    )


def test_a_field_map_naming_a_field_the_object_lacks_stops_the_load(
    fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    with pytest.raises(SourceError) as caught:
        load_api(fake, warehouse, "user", field_map={"user": {"Hire_Date__c": "Start_Dat__c"}})
    assert str(caught.value) == (
        "source 'crm', table 'user', rule 'field_map_column': Salesforce User: SALESOPS_FIELD_MAP maps "
        "user.Hire_Date__c to column 'Start_Dat__c', which the table does not have"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"v": true}', "true"),
        ('{"v": false}', "false"),
        ('{"v": 100000}', "100000"),
        ('{"v": 1250.5}', "1250.5"),
        ('{"v": 100000.0}', "100000.0"),
        ('{"v": 1.39E9}', "1390000000"),
        ('{"v": -0.25}', "-0.25"),
        ('{"v": "2024-01-15T14:22:10.000+0000"}', "2024-01-15T14:22:10.000+0000"),
        ('{"v": "2024-01-15"}', "2024-01-15"),
        ('{"v": null}', None),
        ('{"v": {"city": "Oslo"}}', '{"city": "Oslo"}'),
    ],
)
def test_api_values_become_raw_text(text: str, expected: str | None) -> None:
    from decimal import Decimal

    assert api_value_text(json.loads(text, parse_float=Decimal)["v"]) == expected


# --- resume and secrets --------------------------------------------------------------------------


class Killed(Exception):
    pass


class KilledAfterFirstBatch:
    """A reader whose run is killed right after the loader received its first batch."""

    def __init__(self, reader: SalesforceApiReader) -> None:
        self.reader = reader

    def describe(self, contract_name: str, require_contract: bool = True) -> SourceTable:
        return self.reader.describe(contract_name, require_contract)

    def iter_batches(
        self, table: SourceTable, since: datetime | None, overlap: timedelta
    ) -> Iterator[pa.Table]:
        batches = self.reader.iter_batches(table, since, overlap)
        yield next(batches)
        raise Killed


def test_a_killed_load_resumes_without_losing_or_duplicating_rows(
    crm: Path, fake: FakeSalesforce, warehouse: Warehouse
) -> None:
    execute(crm, f"UPDATE lead SET SystemModstamp = '2024-01-02T10:00:00Z' WHERE Id = '{L3}'")  # same as L2
    with api_reader(fake, batch_size=2) as reader, pytest.raises(Killed):
        load_crm_table(KilledAfterFirstBatch(reader), warehouse, "lead", overlap=timedelta(0))  # type: ignore[arg-type]
    assert raw_rows(warehouse) == [(L1,), (L2,)]

    result = load_api(fake, warehouse, overlap=timedelta(0), batch_size=2)

    assert result.cursor_before == datetime(2024, 1, 2, 10)
    assert lead_windows(fake)[-1] == ("2024-01-02T10:00:00Z", "2024-02-01T00:00:00Z")
    assert raw_rows(warehouse, columns="id, count(*) OVER (PARTITION BY id)") == [
        (i, 1) for i in (L1, L2, L3, L4, L5)
    ]
    assert result.cursor_after == datetime(2024, 1, 5, 10)


def test_credentials_never_appear_in_logs_reprs_errors_or_the_warehouse(
    crm: Path, fake: FakeSalesforce, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = SalesforceClient(settings_for(fake))
    texts = [repr(client), str(client.settings)]
    client.close()
    with api_reader(fake) as reader:
        texts.append(repr(reader))
        reader.describe("lead")
        fake.expire_sessions()
        fake.rate_limit_next()
        fake.server_error_next()
        texts.append(repr(load_crm_table(reader, warehouse, "lead")))
    fake.fail_next(400, "INVALID_FIELD", f"echo {FAKE_REFRESH_TOKEN} {FAKE_CLIENT_ID}")
    fake.fail_next(503, "SERVER_UNAVAILABLE", f"echo {FAKE_CLIENT_SECRET}", times=3)
    errors = []
    for max_retries in (6, 2):
        with pytest.raises(SourceError) as caught:
            load_api(fake, warehouse, max_retries=max_retries)
        errors.append(str(caught.value))
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        for schema, table in connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'meta', 'quality')"
        ).fetchall():
            texts.append(repr(connection.execute(f'SELECT * FROM {schema}."{table}"').fetchall()))

    tokens = tuple({r.bearer for r in fake.requests if r.bearer})
    assert len(tokens) == 4 and "client_secret='<redacted>'" in texts[1]
    assert errors[0].endswith("Salesforce Lead: HTTP 400 INVALID_FIELD: echo <redacted> <redacted>")
    assert errors[1].endswith("Salesforce Lead: HTTP 503 SERVER_UNAVAILABLE, still failing after 2 retries")
    assert any("retry 1 of 6" in r.getMessage() for r in caplog.records)
    everything = [*texts, *errors, caplog.text, *(r.getMessage() for r in caplog.records)]
    assert_no_secret("\n".join(everything), tokens)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {
        "SALESOPS_SALESFORCE_LOGIN_URL": "https://login.salesforce.com/",
        "SALESOPS_SALESFORCE_CLIENT_ID": FAKE_CLIENT_ID,
        "SALESOPS_SALESFORCE_CLIENT_SECRET": FAKE_CLIENT_SECRET,
        "SALESOPS_SALESFORCE_REFRESH_TOKEN": FAKE_REFRESH_TOKEN,
    }
    settings = SalesforceSettings.from_env(environ)
    assert (settings.login_url, settings.api_version, settings.max_retries) == (
        "https://login.salesforce.com", "v60.0", 6,
    )  # fmt: skip
    assert repr(settings) == (
        "SalesforceSettings(login_url='https://login.salesforce.com', api_version='v60.0', "
        "client_id='<redacted>', client_secret='<redacted>', refresh_token='<redacted>', "
        "max_retries=6, page_size=2000)"
    )
    for name, value in {**environ, "SALESOPS_SALESFORCE_API_VERSION": "v61.0"}.items():
        monkeypatch.setenv(name, value)
    assert SalesforceSettings.from_env().api_version == "v61.0"
    with pytest.raises(SourceError, match="SALESOPS_SALESFORCE_CLIENT_SECRET is not set"):
        SalesforceSettings.from_env({**environ, "SALESOPS_SALESFORCE_CLIENT_SECRET": " "})


@pytest.mark.parametrize(
    ("login_url", "problem"),
    [
        ("http://login.salesforce.com", "'http://login.salesforce.com' must use https"),
        ("https://user:pw@login.salesforce.com", "'https://login.salesforce.com' is not a valid URL"),
        ("login.salesforce.com", "is not a valid URL"),
    ],
)
def test_settings_refuse_urls_that_would_leak_tokens(login_url: str, problem: str) -> None:
    with pytest.raises(SourceError, match=re.escape(problem)) as caught:
        SalesforceSettings(login_url, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_REFRESH_TOKEN)
    assert caught.value.rule == "configuration" and "pw" not in str(caught.value)
