"""Replicas as teams have them: Fivetran, Airbyte and Stitch shapes, the field map, optional fields.

The column lists below are written from each tool's published schema (tests/replica_shapes.py
says which). The marts built from each tool's replica of one small org must equal those built
from the same org in Salesforce API names.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from ingestion.crm_load import load_crm_table
from ingestion.crm_sql import SqlCrmReader
from ingestion.errors import SourceError
from ingestion.replica_shape import ShapeError, parse_field_map, parse_shapes, resolve_table
from ingestion.warehouse import Warehouse
from tests.conftest import execute_nightly, pipeline_env
from tests.mart_compare import MART_MODELS, RUN_COLUMNS, duckdb_rows, table_differences
from tests.replica_shapes import (
    write_airbyte_replica,
    write_api_replica,
    write_fivetran_replica,
    write_stitch_replica,
)

# =========================================================== matching columns, by hand per tool

FIVETRAN_OPPORTUNITY = [
    "id", "_fivetran_start", "account_id", "amount", "campaign_id", "close_date", "created_date",
    "forecast_category_name", "is_closed", "is_deleted", "is_won", "lead_source", "name", "owner_id",
    "probability", "stage_name", "system_modstamp", "type", "next_step", "_fivetran_synced",
    "_fivetran_deleted", "_fivetran_active", "_fivetran_end",
]  # fmt: skip


def test_fivetran_columns_map_to_the_api_fields_and_history_mode_is_read_as_current_rows() -> None:
    table = resolve_table("opportunity", FIVETRAN_OPPORTUNITY)
    assert table.shape == "fivetran"
    assert table.columns["ownerid"] == "owner_id"
    assert table.columns["forecastcategoryname"] == "forecast_category_name"
    assert table.columns["systemmodstamp"] == "system_modstamp"
    assert table.columns["isdeleted"] == "is_deleted"
    assert table.active_column == "_fivetran_active"
    assert table.deleted_column == "_fivetran_deleted"
    # fields the pipeline does not read are kept in raw under their own names
    assert table.columns["next_step"] == "next_step"
    assert table.columns["_fivetran_synced"] == "_fivetran_synced"
    assert table.missing_optional == ()


def test_fivetran_without_system_modstamp_uses_fivetran_synced_as_the_cursor() -> None:
    columns = ["id", "name", "type", "status", "start_date", "end_date", "budgeted_cost", "actual_cost",
               "created_date", "is_deleted", "_fivetran_synced", "_fivetran_deleted"]  # fmt: skip
    table = resolve_table("campaign", columns)
    assert table.cursor_column == "_fivetran_synced"


def test_fivetran_without_is_deleted_reads_deletion_from_fivetran_deleted() -> None:
    columns = ["id", "who_id", "what_id", "owner_id", "subject", "task_subtype", "status", "activity_date",
               "created_date", "system_modstamp", "_fivetran_synced", "_fivetran_deleted"]  # fmt: skip
    table = resolve_table("task", columns)
    assert "isdeleted" not in table.columns
    assert table.deleted_column == "_fivetran_deleted"


def test_a_fivetran_table_without_fivetran_synced_or_system_modstamp_is_refused_naming_the_field() -> None:
    columns = ["id", "name", "type", "status", "start_date", "end_date", "budgeted_cost", "actual_cost",
               "created_date", "is_deleted", "_fivetran_deleted"]  # fmt: skip
    with pytest.raises(ShapeError, match="required column 'SystemModstamp' missing") as raised:
        resolve_table("campaign", columns)
    assert raised.value.rule == "required_column"


def test_airbyte_and_stitch_are_detected_by_their_metadata_columns() -> None:
    airbyte = ["Id", "Name", "ParentRoleId", "SystemModstamp", "_airbyte_raw_id", "_airbyte_extracted_at",
               "_airbyte_meta", "_airbyte_generation_id"]  # fmt: skip
    stitch = ["id", "name", "parentroleid", "systemmodstamp", "_sdc_batched_at", "_sdc_sequence"]
    assert resolve_table("userrole", airbyte).shape == "airbyte"
    assert resolve_table("userrole", stitch).shape == "stitch"
    assert resolve_table("userrole", stitch).columns["parentroleid"] == "parentroleid"
    assert resolve_table("userrole", airbyte, shape="api").shape == "api"


def test_two_columns_for_one_field_are_refused_naming_both() -> None:
    columns = ["Id", "Name", "ParentRoleId", "parent_role_id", "SystemModstamp"]
    with pytest.raises(ShapeError, match="'ParentRoleId', 'parent_role_id' could each hold ParentRoleId"):
        resolve_table("userrole", columns)


USER_WITHOUT_HIRE_DATE = ["Id", "Name", "Email", "Title", "UserRoleId", "ManagerId", "IsActive",
                          "TimeZoneSidKey", "CreatedDate", "SystemModstamp"]  # fmt: skip


def test_a_missing_custom_field_is_optional_and_a_field_map_points_at_the_orgs_own() -> None:
    assert resolve_table("user", USER_WITHOUT_HIRE_DATE).missing_optional == ("Hire_Date__c",)
    mapped = resolve_table(
        "user", [*USER_WITHOUT_HIRE_DATE, "Start_Date__c"], field_map={"Hire_Date__c": "start_date__C"}
    )
    assert mapped.columns["hire_date__c"] == "Start_Date__c"
    assert mapped.missing_optional == ()
    with pytest.raises(
        ShapeError, match="SALESOPS_FIELD_MAP maps user.Hire_Date__c to column 'Start_Date__c'"
    ):
        resolve_table("user", USER_WITHOUT_HIRE_DATE, field_map={"Hire_Date__c": "Start_Date__c"})


def test_settings_parse_and_bad_values_name_the_variable(tmp_path: Path) -> None:
    assert parse_field_map("user.Hire_Date__c=Start_Date__c") == {"user": {"Hire_Date__c": "Start_Date__c"}}
    mapping = tmp_path / "fields.yml"
    mapping.write_text(
        "user:\n  hire_date__c: Start_Date__c\nopportunity:\n  CampaignId: Primary_Campaign__c\n"
    )
    assert parse_field_map(str(mapping)) == {
        "user": {"Hire_Date__c": "Start_Date__c"},
        "opportunity": {"CampaignId": "Primary_Campaign__c"},
    }
    for value, message in (
        ("Hire_Date__c=Start_Date__c", "SALESOPS_FIELD_MAP entries look like"),
        ("users.Hire_Date__c=Start_Date__c", "SALESOPS_FIELD_MAP names table 'users'"),
        ("user.Start__c=Start_Date__c", "SALESOPS_FIELD_MAP names user.Start__c"),
        (str(tmp_path / "absent.yml"), "SALESOPS_FIELD_MAP file"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_field_map(value)
    assert parse_shapes("") == {"*": "auto"}
    assert parse_shapes("fivetran") == {"*": "fivetran"}
    assert parse_shapes("opportunity=stitch, task=api") == {"opportunity": "stitch", "task": "api"}
    with pytest.raises(ValueError, match="SALESOPS_REPLICA_SHAPE must be"):
        parse_shapes("hevo")


# ===================================================================== the loader, on SQLite


def _load(crm: Path, warehouse: Warehouse, table: str, **reader_options: object):
    reader = SqlCrmReader(f"sqlite:///{crm}", **reader_options)  # type: ignore[arg-type]
    try:
        return load_crm_table(reader, warehouse, table)
    finally:
        reader.close()


def _query(warehouse: Warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def _sqlite(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as connection:
        for statement in statements:
            connection.execute(statement)


def test_a_user_table_without_hire_date_loads_with_the_field_null_and_recorded(tmp_path: Path) -> None:
    crm, warehouse = tmp_path / "crm.sqlite", Warehouse(tmp_path / "wh.duckdb")
    _sqlite(
        crm,
        f"CREATE TABLE User ({', '.join(USER_WITHOUT_HIRE_DATE)})",
        "INSERT INTO User VALUES ('005A', 'Ann', 'ann@x.test', 'AE', NULL, NULL, 'true', 'UTC', "
        "'2026-01-05T09:00:00Z', '2026-05-01T00:00:00Z')",
    )
    result = _load(crm, warehouse, "user")
    assert result.missing_fields == ("Hire_Date__c",)
    assert _query(warehouse, "SELECT id, hire_date__c FROM raw.salesforce_user") == [("005A", None)]
    assert _query(warehouse, "SELECT table_name, field, marts FROM quality.missing_fields") == [
        ("user", "Hire_Date__c", "onboarding_progress")
    ]
    # the org adds the field: it is read, and no longer reported missing
    _sqlite(
        crm,
        "ALTER TABLE User ADD COLUMN Hire_Date__c TEXT",
        "UPDATE User SET Hire_Date__c = '2026-01-05', SystemModstamp = '2026-05-02T00:00:00Z'",
    )
    assert _load(crm, warehouse, "user").missing_fields == ()
    assert _query(warehouse, "SELECT hire_date__c FROM raw.salesforce_user") == [("2026-01-05",)]
    assert _query(warehouse, "SELECT count(*) FROM quality.missing_fields") == [(0,)]


def test_a_field_map_naming_an_absent_column_stops_the_load_in_one_line(tmp_path: Path) -> None:
    crm, warehouse = tmp_path / "crm.sqlite", Warehouse(tmp_path / "wh.duckdb")
    _sqlite(crm, f"CREATE TABLE User ({', '.join(USER_WITHOUT_HIRE_DATE)})")
    with pytest.raises(SourceError) as raised:
        _load(crm, warehouse, "user", field_map={"user": {"Hire_Date__c": "Start_Date__c"}})
    message = str(raised.value)
    assert "\n" not in message
    assert "SALESOPS_FIELD_MAP" in message and "'Start_Date__c'" in message and "table 'user'" in message


def test_an_optional_table_the_source_lacks_is_created_empty(tmp_path: Path) -> None:
    crm, warehouse = tmp_path / "crm.sqlite", Warehouse(tmp_path / "wh.duckdb")
    _sqlite(crm, "CREATE TABLE Account (Id TEXT)")
    result = _load(crm, warehouse, "opportunitystage")
    assert result.absent and result.rows_in_raw == 0
    columns = _query(
        warehouse,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'salesforce_opportunitystage' "
        "ORDER BY ordinal_position",
    )
    assert [c for (c,) in columns][:4] == ["id", "masterlabel", "apiname", "sortorder"]


USERROLE = "CREATE TABLE UserRole (Id TEXT, Name TEXT, ParentRoleId TEXT, SystemModstamp TEXT)"


def test_a_refused_table_keeps_its_last_good_rows_and_is_quarantined_until_it_loads(tmp_path: Path) -> None:
    crm, warehouse = tmp_path / "crm.sqlite", Warehouse(tmp_path / "wh.duckdb")
    _sqlite(crm, USERROLE, "INSERT INTO UserRole VALUES ('00E1', 'AE East', NULL, '2026-05-01T00:00:00Z')")
    assert _load(crm, warehouse, "userrole").rows_in_raw == 1
    # a replica rebuilt without a required column: the table is set aside, its rows kept
    _sqlite(
        crm, "DROP TABLE UserRole", "CREATE TABLE UserRole (Id TEXT, ParentRoleId TEXT, SystemModstamp TEXT)"
    )
    refused = _load(crm, warehouse, "userrole")
    assert refused.refused is not None and "required column 'Name' missing" in refused.refused
    assert _query(warehouse, "SELECT id, name FROM raw.salesforce_userrole") == [("00E1", "AE East")]
    assert _query(warehouse, "SELECT source, object, rule FROM quality.source_quarantine") == [
        ("crm", "userrole", "required_column")
    ]
    _sqlite(crm, "DROP TABLE UserRole", USERROLE, "INSERT INTO UserRole VALUES ('00E1', 'AE West', NULL, "
            "'2026-05-02T00:00:00Z')")  # fmt: skip
    assert _load(crm, warehouse, "userrole").refused is None
    assert _query(warehouse, "SELECT name FROM raw.salesforce_userrole") == [("AE West",)]
    assert _query(warehouse, "SELECT count(*) FROM quality.source_quarantine") == [(0,)]


def test_a_table_refused_on_its_first_load_stops_the_night(tmp_path: Path) -> None:
    crm, warehouse = tmp_path / "crm.sqlite", Warehouse(tmp_path / "wh.duckdb")
    _sqlite(crm, "CREATE TABLE UserRole (Id TEXT, ParentRoleId TEXT, SystemModstamp TEXT)")
    with pytest.raises(SourceError, match="no earlier load to fall back on"):
        _load(crm, warehouse, "userrole")


def test_fivetran_history_mode_and_deletion_flag_on_sqlite(tmp_path: Path) -> None:
    crm, warehouse = tmp_path / "crm.sqlite", Warehouse(tmp_path / "wh.duckdb")
    columns = "id, name, parent_role_id, system_modstamp, _fivetran_synced, _fivetran_deleted, " \
              "_fivetran_active, _fivetran_start, _fivetran_end"  # fmt: skip
    insert = "INSERT INTO user_role VALUES"
    _sqlite(
        crm,
        f"CREATE TABLE user_role ({columns})",
        f"{insert} ('00E1', 'AE', NULL, '2026-04-01 00:00:00', '2026-04-01 01:00:00', 0, 0, "
        "'2026-04-01', '2026-05-01')",
        f"{insert} ('00E1', 'AE East', NULL, '2026-05-01 00:00:00', '2026-05-01 01:00:00', "
        "0, 1, '2026-05-01', '9999-12-31')",
        f"{insert} ('00E2', 'AE West', NULL, '2026-05-01 00:00:00', '2026-05-01 01:00:00', "
        "1, 1, '2026-05-01', '9999-12-31')",
    )
    assert _load(crm, warehouse, "userrole").rows_in_raw == 2
    assert _query(warehouse, "SELECT id, name, isdeleted FROM raw.salesforce_userrole ORDER BY id") == [
        ("00E1", "AE East", "false"),
        ("00E2", "AE West", "true"),
    ]


# ============================================================ the whole job, one org, four shapes

AS_OF = "2026-05-20"


def _run(root: Path, crm_url: str, env: dict[str, str] | None = None) -> tuple[object, Path]:
    calendars = root / "calendars"
    calendars.mkdir(parents=True)
    (calendars / "alice@acme.example.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:m1@acme.example\r\n"
        "DTSTAMP:20260401T000000Z\r\nDTSTART:20260409T150000Z\r\nDTEND:20260409T160000Z\r\n"
        "SUMMARY:Globex demo\r\nORGANIZER:mailto:alice@acme.example\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:ann.lee@globex.example\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    warehouse = root / "warehouse.duckdb"
    base = pipeline_env(root / "unused.sqlite", calendars, warehouse, root / "dagster_home")
    result = execute_nightly({**base, "SALESOPS_CRM_URL": crm_url, "SALESOPS_AS_OF": AS_OF, **(env or {})})
    return result, warehouse


@pytest.fixture(scope="module")
def api_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api")
    write_api_replica(root / "crm.sqlite")
    result, warehouse = _run(root, f"sqlite:///{root / 'crm.sqlite'}")
    assert result.success
    return warehouse


def _assert_same_marts(warehouse: Path, reference: Path, except_marts: tuple[str, ...] = ()) -> None:
    problems = []
    for mart in MART_MODELS:
        if mart in except_marts:
            continue
        columns, rows = duckdb_rows(warehouse, "marts", mart)
        reference_columns, reference_rows = duckdb_rows(reference, "marts", mart)
        for problem in table_differences(
            columns, rows, reference_columns, reference_rows, ignore=RUN_COLUMNS
        ):
            problems.append(f"{mart}: {problem}")
    assert not problems, "\n".join(problems)


def _won_amount(warehouse: Path) -> float:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute("SELECT sum(amount) FROM marts.fct_opportunities WHERE is_won").fetchone()[
            0
        ]


@pytest.mark.slow
def test_the_api_replica_counts_the_hand_written_org(api_run: Path) -> None:
    # O1 won 10,000; O3 won 7,000 but in the recycle bin; O4 lost
    assert _won_amount(api_run) == 10000.0
    with duckdb.connect(str(api_run), read_only=True) as connection:
        stages = connection.execute(
            "SELECT opportunity_id, stage_name, amount FROM marts.fct_opportunities ORDER BY 1"
        ).fetchall()
    assert stages == [
        ("006000000000001AAA", "Closed Won", 10000.0),
        ("006000000000002AAA", "Negotiation/Review", 5000.0),
        ("006000000000004AAA", "Closed Lost", 3000.0),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["airbyte", "stitch"])
def test_airbyte_and_stitch_replicas_give_the_same_marts(
    tool: str, api_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp(tool)
    {"airbyte": write_airbyte_replica, "stitch": write_stitch_replica}[tool](root / "crm.sqlite")
    result, warehouse = _run(root, f"sqlite:///{root / 'crm.sqlite'}")
    assert result.success
    _assert_same_marts(warehouse, api_run)


@pytest.mark.slow
def test_a_fivetran_replica_on_postgresql_gives_the_same_marts(
    api_run: Path, postgres_server: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.postgres import fresh_database

    replica = fresh_database(postgres_server, "fivetran_salesforce")  # type: ignore[arg-type]
    write_fivetran_replica(replica.dsn)
    root = tmp_path_factory.mktemp("fivetran")
    result, warehouse = _run(root, replica.url)
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        # history mode: the current version only; the task deleted in Salesforce is marked deleted
        assert connection.execute(
            "SELECT stagename, amount FROM raw.salesforce_opportunity WHERE id = '006000000000002AAA'"
        ).fetchall() == [("Negotiation/Review", "5000")]
        assert connection.execute("SELECT id, isdeleted FROM raw.salesforce_task ORDER BY id").fetchall() == [
            ("00T000000000001AAA", "false"),
            ("00T000000000002AAA", "true"),
        ]
    _assert_same_marts(warehouse, api_run)


@pytest.mark.slow
def test_a_user_table_without_hire_date_builds_every_mart_and_warns(tmp_path: Path, api_run: Path) -> None:
    write_api_replica(tmp_path / "crm.sqlite", drop={"User": {"Hire_Date__c"}})
    result, warehouse = _run(tmp_path, f"sqlite:///{tmp_path / 'crm.sqlite'}")
    assert result.success
    checks = {
        (e.asset_key.path[-1], e.check_name): e
        for e in result.get_asset_check_evaluations()  # type: ignore[attr-defined]
    }
    warning = checks[("salesforce_user", "optional_fields_present")]
    assert not warning.passed
    assert warning.metadata["fields"].value == "Hire_Date__c"
    assert warning.metadata["partial_marts"].value == "onboarding_progress"
    assert checks[("salesforce_account", "optional_fields_present")].passed
    from orchestration.summary import summarize

    lines = summarize(result, str(warehouse)).render().splitlines()  # type: ignore[arg-type]
    assert "optional CRM fields missing, loaded as null: 1" in lines
    assert "  user.Hire_Date__c (onboarding_progress partial)" in lines
    # onboarding needs a hire date: it is empty; every other mart is as with the field
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM marts.onboarding_progress").fetchone() == (0,)
    with duckdb.connect(str(api_run), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM marts.onboarding_progress").fetchone() == (1,)
    _assert_same_marts(warehouse, api_run, except_marts=("onboarding_progress", "dim_reps"))
