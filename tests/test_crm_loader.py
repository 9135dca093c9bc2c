"""The CRM SQL reader and the raw loader: idempotency, cursor overlap, deletes, schema tolerance."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ingestion.crm_load import load_crm_table, parse_source_datetime
from ingestion.crm_sql import SqlCrmReader
from ingestion.errors import SourceError
from ingestion.warehouse import Warehouse
from tests.crm_fixtures import create_crm, execute, insert_rows


def lead(lead_id: str, modstamp: str, **fields: object) -> dict[str, object]:
    return {
        "Id": lead_id,
        "Email": f"{lead_id}@x.test",
        "SystemModstamp": modstamp,
        "IsDeleted": "0",
        **fields,
    }


@pytest.fixture
def crm(tmp_path: Path) -> Path:
    path = tmp_path / "crm.sqlite"
    create_crm(path)
    return path


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "wh.duckdb")


def raw_rows(warehouse: Warehouse, table: str, columns: str = "id") -> list[tuple]:
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        return connection.execute(f"SELECT {columns} FROM raw.{table} ORDER BY id").fetchall()


def load(crm: Path, warehouse: Warehouse, table: str = "lead", batch_size: int = 1000, **kwargs):
    reader = SqlCrmReader(f"sqlite:///{crm}", batch_size=batch_size)
    try:
        return load_crm_table(reader, warehouse, table, **kwargs)
    finally:
        reader.close()


def test_rerun_never_duplicates_and_keeps_values_as_text(crm: Path, warehouse: Warehouse) -> None:
    insert_rows(crm, "lead", [lead("00Q1", "2024-01-01T10:00:00Z"), lead("00Q2", "2024-01-02T10:00:00Z")])
    first = load(crm, warehouse)
    second = load(crm, warehouse)
    assert (first.rows_read, first.rows_in_raw) == (2, 2)
    assert second.rows_in_raw == 2
    assert raw_rows(warehouse, "salesforce_lead", "id, email, isdeleted") == [
        ("00Q1", "00Q1@x.test", "0"),
        ("00Q2", "00Q2@x.test", "0"),
    ]


def test_incremental_reads_only_the_overlap_window_and_applies_updates(
    crm: Path, warehouse: Warehouse
) -> None:
    insert_rows(crm, "lead", [lead("00Q1", "2024-01-01T10:00:00Z"), lead("00Q2", "2024-01-10T10:00:00Z")])
    load(crm, warehouse)
    execute(
        crm, "UPDATE lead SET Email = 'new@x.test', SystemModstamp = '2024-01-10T12:00:00Z' WHERE Id = '00Q1'"
    )
    insert_rows(crm, "lead", [lead("00Q3", "2024-01-10T13:00:00Z")])
    result = load(crm, warehouse, overlap=timedelta(hours=1))
    # The cursor was 2024-01-10 10:00; minus one hour, compared by date: rows of 2024-01-10 on.
    assert result.cursor_before == datetime(2024, 1, 10, 10, 0)
    assert result.rows_read == 3
    assert result.cursor_after == datetime(2024, 1, 10, 13, 0)
    assert raw_rows(warehouse, "salesforce_lead", "id, email") == [
        ("00Q1", "new@x.test"),
        ("00Q2", "00Q2@x.test"),
        ("00Q3", "00Q3@x.test"),
    ]
    # 00Q2 was read again unchanged: it keeps the batch that first wrote it; the updated and the
    # new row carry this load's batch.
    batches = dict(raw_rows(warehouse, "salesforce_lead", "id, _batch_id"))
    assert batches["00Q1"] == batches["00Q3"] == result.batch_id != batches["00Q2"]


def test_deleted_rows_are_kept_in_raw_with_their_flag(crm: Path, warehouse: Warehouse) -> None:
    insert_rows(crm, "lead", [lead("00Q1", "2024-01-01T10:00:00Z")])
    load(crm, warehouse)
    execute(crm, "UPDATE lead SET IsDeleted = 'true', SystemModstamp = '2024-01-05T00:00:00Z'")
    load(crm, warehouse)
    assert raw_rows(warehouse, "salesforce_lead", "id, isdeleted") == [("00Q1", "true")]


def test_tables_and_columns_match_case_insensitively(tmp_path: Path, warehouse: Warehouse) -> None:
    crm = tmp_path / "upper.sqlite"
    create_crm(crm, column_case="upper")
    insert_rows(crm, "LEAD", [{"ID": "00Q1", "EMAIL": "a@x.test", "SYSTEMMODSTAMP": "2024-01-01T00:00:00Z"}])
    result = load(crm, warehouse)
    assert result.rows_in_raw == 1
    assert raw_rows(warehouse, "salesforce_lead", "id, email") == [("00Q1", "a@x.test")]


def test_unknown_extra_columns_are_kept_and_added_when_they_appear(crm: Path, warehouse: Warehouse) -> None:
    insert_rows(crm, "lead", [lead("00Q1", "2024-01-01T00:00:00Z")])
    load(crm, warehouse)
    execute(crm, "ALTER TABLE lead ADD COLUMN Region__c TEXT")
    insert_rows(crm, "lead", [lead("00Q2", "2024-01-02T00:00:00Z", Region__c="EMEA")])
    load(crm, warehouse)
    assert raw_rows(warehouse, "salesforce_lead", "id, region__c") == [("00Q1", None), ("00Q2", "EMEA")]


def test_missing_required_column_is_one_line_naming_table_and_column(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    crm = tmp_path / "crm.sqlite"
    execute(crm, "CREATE TABLE lead (Id TEXT, SystemModstamp TEXT)")
    with pytest.raises(SourceError) as raised:
        load(crm, warehouse)
    message = str(raised.value)
    assert "\n" not in message
    assert "table 'lead'" in message and "'Email'" in message and "required_column" in message


def test_missing_table_and_missing_file_are_clear_errors(tmp_path: Path, warehouse: Warehouse) -> None:
    crm = tmp_path / "crm.sqlite"
    execute(crm, "CREATE TABLE other (x TEXT)")
    with pytest.raises(SourceError, match=r"table 'lead'.*missing"):
        load(crm, warehouse)
    with pytest.raises(SourceError, match="CRM database file not found"):
        load(tmp_path / "absent.sqlite", warehouse)
    assert not (tmp_path / "absent.sqlite").exists()


def test_cursor_never_passes_the_sync_start(crm: Path, warehouse: Warehouse) -> None:
    insert_rows(crm, "lead", [lead("00Q1", "2999-01-01T00:00:00Z")])
    before = datetime.utcnow()
    result = load(crm, warehouse)
    assert result.cursor_after is not None
    assert before - timedelta(seconds=5) <= result.cursor_after <= datetime.utcnow()


class CrashAfterFirstBatch(SqlCrmReader):
    """A real reader that dies after handing over its first batch, like a killed process."""

    def iter_batches(self, *args, **kwargs):
        for number, batch in enumerate(super().iter_batches(*args, **kwargs)):
            if number == 1:
                raise RuntimeError("simulated crash")
            yield batch


def test_crash_mid_table_keeps_committed_batches_and_rerun_completes(crm: Path, warehouse: Warehouse) -> None:
    insert_rows(crm, "lead", [lead(f"00Q{i}", f"2024-01-0{i}T00:00:00Z") for i in range(1, 6)])
    with pytest.raises(RuntimeError):
        load_crm_table(CrashAfterFirstBatch(f"sqlite:///{crm}", batch_size=2), warehouse, "lead")
    assert [r[0] for r in raw_rows(warehouse, "salesforce_lead")] == ["00Q1", "00Q2"]
    result = load(crm, warehouse, batch_size=2)
    assert result.cursor_before == datetime(2024, 1, 2)
    assert [r[0] for r in raw_rows(warehouse, "salesforce_lead")] == [f"00Q{i}" for i in range(1, 6)]


def test_rows_without_id_go_to_load_rejects_once(crm: Path, warehouse: Warehouse) -> None:
    insert_rows(crm, "lead", [lead("00Q1", "2024-01-01T00:00:00Z"), lead("", "2024-01-01T00:00:00Z")])
    assert load(crm, warehouse).rows_rejected == 1
    load(crm, warehouse, full_refresh=True)
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        rejects = connection.execute("SELECT table_name, rule FROM quality.load_rejects").fetchall()
    assert rejects == [("lead", "missing_id")]
    assert [r[0] for r in raw_rows(warehouse, "salesforce_lead")] == ["00Q1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15T14:22:10.000+0000", datetime(2024, 1, 15, 14, 22, 10)),
        ("2024-01-15T14:22:10Z", datetime(2024, 1, 15, 14, 22, 10)),
        ("2024-01-15 14:22:10", datetime(2024, 1, 15, 14, 22, 10)),
        ("2024-01-15T23:22:10+09:00", datetime(2024, 1, 15, 14, 22, 10)),
        ("not a date", None),
        ("", None),
    ],
)
def test_parse_source_datetime(text: str, expected: datetime | None) -> None:
    assert parse_source_datetime(text) == expected


def test_unparseable_modstamp_does_not_stop_the_cursor(crm: Path, warehouse: Warehouse) -> None:
    # As text, 2026-13-01 sorts after every real date; the cursor must still come from real dates.
    insert_rows(crm, "lead", [lead("00Q1", "2024-01-05T00:00:00Z"), lead("00Q2", "2026-13-01T00:00:00Z")])
    result = load(crm, warehouse)
    assert result.cursor_after == datetime(2024, 1, 5)
    assert result.rows_in_raw == 2
