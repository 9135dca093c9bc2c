"""Tests for expectations.gx_engine: GX Core expectations executed inside DuckDB."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from expectations.gx_engine import (
    ExpectationSpec,
    SuiteOutcome,
    TableNotFoundError,
    TableSuite,
    validate_table,
    validate_tables,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

OPPORTUNITY_ROWS = """
    ('OPP-1', 'ACC-1',   'ann@example.com',     'Closed Won',  1200.00,    '2024-01-10', '2024-02-01', '1200'),
    ('OPP-2', 'ACC-2',   'bob@example.org',     'Prospecting', 0.00,       '2024-01-15', '2024-01-15', '0'),
    ('OPP-3', 'ACC-404', 'not-an-email',        'Closed Lost', 500.00,     '2024-03-01', '2024-02-20', '500'),
    ('OPP-3', 'ACC-1',   'carol @example.com',  'Negotiation', -50.00,     '2024-02-01', '2024-03-01', '-50'),
    (NULL,    'ACC-3',   'dave@example.com',    'Teleport',    2500000.00, '2024-02-10', NULL,         'n/a'),
    ('OPP-6', NULL,      NULL,                  'Closed Won',  300.00,     '2024-04-01', '2024-03-31', '300'),
    ('OPP-7', 'ACC-999', 'eve@example.com',     'Closed Won',  75.50,      '2024-05-01', '2024-05-02', '75.5'),
    ('OPP-8', 'ACC-2',   'frank@example.co.uk', 'Prospecting', NULL,       '2024-06-01', '2024-06-30', NULL)
"""  # noqa: E501

EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
STAGES = ["Prospecting", "Negotiation", "Closed Won", "Closed Lost"]
ORPHAN_SQL = (
    "SELECT o.opportunity_id, o.account_id FROM {batch} o "
    "LEFT JOIN raw.salesforce_account a ON o.account_id = a.account_id "
    "WHERE o.account_id IS NOT NULL AND a.account_id IS NULL"
)
# `{batch}` aliased without a JOIN, and a doubled brace (GX's escape for a literal brace).
ORPHAN_NOT_EXISTS_SQL = (
    "SELECT * FROM {batch} AS child WHERE child.account_id IS NOT NULL AND NOT EXISTS"
    " (SELECT 1 FROM raw.salesforce_account AS parent"
    " WHERE parent.account_id = child.account_id)"
)
LOCAL_PART_SQL = (
    "SELECT * FROM {batch} WHERE contact_email IS NOT NULL"
    " AND NOT regexp_full_match(contact_email, '[a-z]{{3,}}@.*')"
)

# rule name -> (element_count, unexpected_count) for raw.salesforce_opportunity.
EXPECTED_OPPORTUNITY = {
    "opportunity_id_not_null": (8, 1),
    "opportunity_id_unique": (8, 2),  # both OPP-3 rows
    "stage_name_in_set": (8, 1),  # Teleport
    "amount_between": (8, 2),  # -50 and 2.5M; the NULL amount is not counted
    "contact_email_format": (8, 2),  # not-an-email, 'carol @example.com'; NULL ignored
    "contact_email_has_at": (8, 1),  # unanchored pattern: partial-match semantics
    "contact_email_no_whitespace": (8, 1),
    "close_not_before_created": (8, 2),  # OPP-3, OPP-6; the row with no close date is skipped
    "account_exists": (None, 2),  # ACC-404, ACC-999; NULL account is not an orphan
    "account_exists_not_exists": (None, 2),
    "contact_email_local_part": (None, 2),  # not-an-email, 'carol @example.com'
}
ERROR_RULES = {
    "opportunity_id_not_null",
    "opportunity_id_unique",
    "amount_between",
    "contact_email_format",
    "close_not_before_created",
    "account_exists",
}
WARNING_RULES = {
    "stage_name_in_set",
    "contact_email_has_at",
    "contact_email_no_whitespace",
    "row_count_in_range",
    "account_exists_not_exists",
    "contact_email_local_part",
}


def _gx_expectations() -> Any:
    import great_expectations as gx

    return gx.expectations


def _build_small_warehouse(path: Path) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA raw; CREATE SCHEMA staging")
        con.execute(
            "CREATE TABLE raw.salesforce_account (account_id VARCHAR, name VARCHAR);"
            "INSERT INTO raw.salesforce_account VALUES"
            " ('ACC-1', 'Acme'), ('ACC-2', 'Globex'), ('ACC-3', 'Initech')"
        )
        con.execute(
            "CREATE TABLE raw.salesforce_opportunity (opportunity_id VARCHAR,"
            " account_id VARCHAR, contact_email VARCHAR, stage_name VARCHAR,"
            " amount DECIMAL(18, 2), created_date DATE, close_date DATE, amount_text VARCHAR)"
        )
        con.execute(f"INSERT INTO raw.salesforce_opportunity VALUES {OPPORTUNITY_ROWS}")
        con.execute(
            "CREATE VIEW staging.stg_opportunity AS SELECT opportunity_id,"
            " TRY_CAST(amount_text AS DOUBLE) AS amount_num FROM raw.salesforce_opportunity"
        )
    finally:
        con.close()


def _opportunity_specs() -> list[ExpectationSpec]:
    E = _gx_expectations()
    return [
        ExpectationSpec("opportunity_id_not_null", E.ExpectColumnValuesToNotBeNull(column="opportunity_id")),
        ExpectationSpec("opportunity_id_unique", E.ExpectColumnValuesToBeUnique(column="opportunity_id")),
        ExpectationSpec(
            "stage_name_in_set",
            E.ExpectColumnValuesToBeInSet(column="stage_name", value_set=STAGES),
            "warning",
        ),
        ExpectationSpec(
            "amount_between",
            E.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=1_000_000),
        ),
        ExpectationSpec(
            "contact_email_format",
            E.ExpectColumnValuesToMatchRegex(column="contact_email", regex=EMAIL_REGEX),
        ),
        ExpectationSpec(
            "contact_email_has_at",
            E.ExpectColumnValuesToMatchRegex(column="contact_email", regex="@"),
            "warning",
        ),
        ExpectationSpec(
            "contact_email_no_whitespace",
            E.ExpectColumnValuesToNotMatchRegex(column="contact_email", regex=r"\s"),
            "warning",
        ),
        ExpectationSpec(
            "close_not_before_created",
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="close_date",
                column_B="created_date",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
        ),
        ExpectationSpec(
            "row_count_in_range",
            E.ExpectTableRowCountToBeBetween(min_value=1, max_value=5),
            "warning",
        ),
        ExpectationSpec("account_exists", E.UnexpectedRowsExpectation(unexpected_rows_query=ORPHAN_SQL)),
        ExpectationSpec(
            "account_exists_not_exists",
            E.UnexpectedRowsExpectation(unexpected_rows_query=ORPHAN_NOT_EXISTS_SQL),
            "warning",
        ),
        ExpectationSpec(
            "contact_email_local_part",
            E.UnexpectedRowsExpectation(unexpected_rows_query=LOCAL_PART_SQL),
            "warning",
        ),
    ]


def _account_specs() -> list[ExpectationSpec]:
    E = _gx_expectations()
    return [
        ExpectationSpec("account_id_not_null", E.ExpectColumnValuesToNotBeNull(column="account_id")),
        ExpectationSpec("account_id_unique", E.ExpectColumnValuesToBeUnique(column="account_id")),
        ExpectationSpec(
            "account_id_format",
            E.ExpectColumnValuesToMatchRegex(column="account_id", regex=r"^ACC-\d+$"),
        ),
        ExpectationSpec("row_count", E.ExpectTableRowCountToBeBetween(min_value=3, max_value=3), "warning"),
    ]


def _staging_specs() -> list[ExpectationSpec]:
    E = _gx_expectations()
    return [
        ExpectationSpec(
            "amount_num_between",
            E.ExpectColumnValuesToBeBetween(column="amount_num", min_value=0, max_value=10_000),
        ),
        ExpectationSpec(
            "amount_num_parsed",
            E.ExpectColumnValuesToNotBeNull(column="amount_num"),
            "warning",
        ),
    ]


def _assert_file_released(path: Path) -> None:
    """The file opens read-write, and is writable, in this process and in another one."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE OR REPLACE TABLE main.lock_probe AS SELECT 1 AS x")
    finally:
        con.close()
    script = textwrap.dedent(
        f"""
        import duckdb
        con = duckdb.connect({str(path)!r})
        con.execute("CREATE OR REPLACE TABLE main.lock_probe AS SELECT 2 AS x")
        con.close()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gx_small") / "warehouse.duckdb"
    _build_small_warehouse(path)
    return path


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gx_docs") / "data_docs"


@pytest.fixture(scope="module")
def small_outcomes(small_warehouse: Path, docs_dir: Path) -> dict[str, SuiteOutcome]:
    """One GX run (one context) over all small-warehouse suites, shared by the tests."""
    E = _gx_expectations()
    suites = [
        TableSuite("raw", "salesforce_opportunity", "opportunity", _opportunity_specs()),
        TableSuite("staging", "stg_opportunity", "stg_opportunity", _staging_specs()),
        TableSuite("raw", "salesforce_account", "account", _account_specs()),
        TableSuite(
            "raw",
            "salesforce_opportunity",
            "opportunity_warnings_only",
            [
                ExpectationSpec(
                    "stage_name_in_set",
                    E.ExpectColumnValuesToBeInSet(column="stage_name", value_set=STAGES),
                    "warning",
                )
            ],
        ),
    ]
    outcomes = validate_tables(small_warehouse, suites, data_docs_dir=docs_dir)
    return {outcome.suite_name: outcome for outcome in outcomes}


@pytest.mark.parametrize(("rule", "expected"), sorted(EXPECTED_OPPORTUNITY.items()))
def test_exact_unexpected_counts(
    small_outcomes: dict[str, SuiteOutcome], rule: str, expected: tuple[int | None, int]
) -> None:
    outcome = small_outcomes["opportunity"].outcome(rule)
    element_count, unexpected_count = expected
    assert outcome.exception_message is None
    assert outcome.success is False
    assert outcome.unexpected_count == unexpected_count
    assert outcome.element_count == element_count


def test_outcome_details(small_outcomes: dict[str, SuiteOutcome]) -> None:
    suite = small_outcomes["opportunity"]
    assert suite.table == "raw.salesforce_opportunity"
    assert [o.name for o in suite.outcomes] == [s.name for s in _opportunity_specs()]

    stage = suite.outcome("stage_name_in_set")
    assert stage.partial_unexpected == ["Teleport"]
    assert stage.expectation_type == "expect_column_values_to_be_in_set"
    assert stage.column == "stage_name"
    assert stage.unexpected_percent == pytest.approx(12.5)

    unique = suite.outcome("opportunity_id_unique")
    assert unique.partial_unexpected == ["OPP-3", "OPP-3"]

    amounts = sorted(float(v) for v in suite.outcome("amount_between").partial_unexpected)
    assert amounts == [-50.0, 2_500_000.0]

    emails = sorted(suite.outcome("contact_email_format").partial_unexpected)
    assert emails == ["carol @example.com", "not-an-email"]

    pair = suite.outcome("close_not_before_created")
    assert pair.column == "close_date,created_date"
    assert len(pair.partial_unexpected) == 2

    rows = suite.outcome("row_count_in_range")
    assert rows.observed_value == 8
    assert rows.column is None

    orphans = suite.outcome("account_exists")
    assert orphans.expectation_type == "unexpected_rows_expectation"
    assert orphans.observed_value == 2
    assert sorted(r["account_id"] for r in orphans.partial_unexpected) == ["ACC-404", "ACC-999"]


def test_severity_split(small_outcomes: dict[str, SuiteOutcome]) -> None:
    suite = small_outcomes["opportunity"]
    assert suite.success is False
    assert {o.name for o in suite.errors} == ERROR_RULES
    assert {o.name for o in suite.warnings} == WARNING_RULES
    assert all(o.severity == "error" for o in suite.errors)
    assert all(o.severity == "warning" for o in suite.warnings)


def test_warning_failures_do_not_fail_suite(small_outcomes: dict[str, SuiteOutcome]) -> None:
    suite = small_outcomes["opportunity_warnings_only"]
    assert suite.success is True
    assert suite.errors == []
    assert [o.name for o in suite.warnings] == ["stage_name_in_set"]
    assert suite.warnings[0].unexpected_count == 1


def test_clean_table_passes(small_outcomes: dict[str, SuiteOutcome]) -> None:
    suite = small_outcomes["account"]
    assert suite.success is True
    assert suite.errors == [] and suite.warnings == []
    assert all(o.success for o in suite.outcomes)
    assert suite.outcome("account_id_not_null").unexpected_count == 0
    assert suite.outcome("account_id_not_null").element_count == 3
    assert suite.outcome("row_count").observed_value == 3


def test_view_in_staging_schema(small_outcomes: dict[str, SuiteOutcome]) -> None:
    suite = small_outcomes["stg_opportunity"]
    assert suite.table == "staging.stg_opportunity"
    between = suite.outcome("amount_num_between")
    assert (between.element_count, between.unexpected_count) == (8, 1)
    assert between.partial_unexpected == [-50.0]
    parsed = suite.outcome("amount_num_parsed")
    assert (parsed.unexpected_count, parsed.severity) == (2, "warning")
    assert [o.name for o in suite.errors] == ["amount_num_between"]
    assert [o.name for o in suite.warnings] == ["amount_num_parsed"]


def test_data_docs_built(small_outcomes: dict[str, SuiteOutcome], docs_dir: Path) -> None:
    index = docs_dir / "index.html"
    assert index.is_file()
    assert all(o.data_docs_index == index.resolve() for o in small_outcomes.values())
    html = index.read_text()
    assert "opportunity" in html and "stg_opportunity" in html
    assert not (REPO_ROOT / "gx").exists()


def test_file_released_after_validation(
    small_outcomes: dict[str, SuiteOutcome], small_warehouse: Path
) -> None:
    assert small_outcomes  # validation has run in this process
    _assert_file_released(small_warehouse)


def test_file_released_after_failure(small_warehouse: Path) -> None:
    E = _gx_expectations()
    spec = ExpectationSpec("x", E.ExpectColumnValuesToNotBeNull(column="x"))
    with pytest.raises(TableNotFoundError, match="raw.no_such_table"):
        validate_table(small_warehouse, "raw", "no_such_table", "missing", [spec])
    _assert_file_released(small_warehouse)


def test_specs_are_reusable_and_not_mutated(small_warehouse: Path) -> None:
    specs = _account_specs()
    first = validate_table(small_warehouse, "raw", "salesforce_account", "reuse", specs)
    second = validate_table(small_warehouse, "raw", "salesforce_account", "reuse", specs)
    assert first.success and second.success
    assert all(spec.expectation.id is None for spec in specs)
    assert all(not (spec.expectation.meta or {}) for spec in specs)


def test_custom_sql_is_quiet(small_warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    E = _gx_expectations()
    spec = ExpectationSpec(
        "orphans", E.UnexpectedRowsExpectation(unexpected_rows_query=ORPHAN_NOT_EXISTS_SQL)
    )
    suite = validate_table(small_warehouse, "raw", "salesforce_opportunity", "quiet", [spec])
    assert suite.outcome("orphans").unexpected_count == 2
    captured = capsys.readouterr()
    assert captured.out == ""


def test_unknown_column_is_reported_as_failure(small_warehouse: Path) -> None:
    E = _gx_expectations()
    spec = ExpectationSpec("ghost", E.ExpectColumnValuesToNotBeNull(column="ghost"))
    suite = validate_table(small_warehouse, "raw", "salesforce_account", "ghost", [spec])
    assert suite.success is False
    assert suite.errors[0].exception_message


def test_invalid_specs_rejected(small_warehouse: Path) -> None:
    E = _gx_expectations()
    not_null = E.ExpectColumnValuesToNotBeNull(column="account_id")
    with pytest.raises(ValueError, match="severity"):
        ExpectationSpec("bad", not_null, "fatal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicate rule name"):
        validate_table(
            small_warehouse,
            "raw",
            "salesforce_account",
            "dupes",
            [ExpectationSpec("a", not_null), ExpectationSpec("a", not_null)],
        )
    with pytest.raises(ValueError, match="duplicates another rule"):
        validate_table(
            small_warehouse,
            "raw",
            "salesforce_account",
            "dupes",
            [ExpectationSpec("a", not_null), ExpectationSpec("b", not_null)],
        )
    with pytest.raises(FileNotFoundError):
        validate_table(small_warehouse.with_name("nope.duckdb"), "raw", "t", "s", [])


def test_read_write_mode_coexists_with_open_connection(small_warehouse: Path) -> None:
    E = _gx_expectations()
    spec = ExpectationSpec("nn", E.ExpectColumnValuesToNotBeNull(column="account_id"))
    held = duckdb.connect(str(small_warehouse))
    try:
        suite = validate_table(small_warehouse, "raw", "salesforce_account", "rw", [spec], read_only=False)
        assert suite.success
        # The caller's own connection is untouched.
        assert held.execute("SELECT count(*) FROM raw.salesforce_account").fetchone() == (3,)
    finally:
        held.close()
    _assert_file_released(small_warehouse)


def test_module_import_is_cheap() -> None:
    code = (
        "import sys, expectations.gx_engine; "
        "assert 'great_expectations' not in sys.modules; "
        "assert 'duckdb_engine' not in sys.modules"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------------------
# Large table: the work happens in DuckDB, Python memory stays bounded
# --------------------------------------------------------------------------------------

BIG_ROWS = 2_000_000


def _proc_status_mib(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so the next peak is this test's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def test_large_table_validated_in_duckdb_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.account AS SELECT 'A' || i AS account_id FROM range(1000) t(i)")
        con.execute(
            f"""
            CREATE TABLE raw.big_opportunity AS SELECT
              i AS opportunity_id,
              'A' || (i % 1001) AS account_id,
              CASE WHEN i % 1000 = 0 THEN 'bad' || i ELSE 'user' || i || '@example.com' END
                AS contact_email,
              CASE WHEN i % 500 = 0 THEN 'Bogus' ELSE 'Closed Won' END AS stage_name,
              (i % 10000)::DECIMAL(18, 2) - CASE WHEN i % 250 = 0 THEN 20000 ELSE 0 END
                AS amount,
              DATE '2024-01-01' + (i % 300)::INTEGER AS created_date,
              DATE '2024-01-01' + (i % 300)::INTEGER + CASE WHEN i % 400 = 0 THEN -1 ELSE 3 END
                AS close_date,
              'Opportunity ' || i || ' renewal for account A' || (i % 1001) || ', call back'
                AS description
            FROM range({BIG_ROWS}) t(i)
            """
        )
        sample = con.execute("SELECT * FROM raw.big_opportunity LIMIT 20000").df()
        pandas_mib = sample.memory_usage(deep=True).sum() * (BIG_ROWS / len(sample)) / 2**20
        del sample
    finally:
        con.close()
    gc.collect()

    E = _gx_expectations()
    specs = [
        ExpectationSpec("id_not_null", E.ExpectColumnValuesToNotBeNull(column="opportunity_id")),
        ExpectationSpec("id_unique", E.ExpectColumnValuesToBeUnique(column="opportunity_id")),
        ExpectationSpec(
            "stage_in_set",
            E.ExpectColumnValuesToBeInSet(column="stage_name", value_set=STAGES),
            "warning",
        ),
        ExpectationSpec(
            "amount_between",
            E.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=1_000_000),
        ),
        ExpectationSpec(
            "email_format",
            E.ExpectColumnValuesToMatchRegex(column="contact_email", regex=EMAIL_REGEX),
        ),
        ExpectationSpec(
            "close_not_before_created",
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="close_date", column_B="created_date", or_equal=True
            ),
        ),
        ExpectationSpec("row_count", E.ExpectTableRowCountToBeBetween(min_value=1, max_value=BIG_ROWS)),
        ExpectationSpec(
            "account_exists",
            E.UnexpectedRowsExpectation(
                unexpected_rows_query=(
                    "SELECT b.* FROM {batch} b LEFT JOIN raw.account a"
                    " ON b.account_id = a.account_id WHERE a.account_id IS NULL"
                )
            ),
        ),
    ]

    statements: list[str] = []

    def _capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _capture)
    has_peak = _reset_peak_rss()
    baseline = _proc_status_mib("VmRSS")
    started = time.perf_counter()
    try:
        suite = validate_table(path, "raw", "big_opportunity", "big", specs)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", _capture)
    elapsed = time.perf_counter() - started
    peak = _proc_status_mib("VmHWM")

    counts = {o.name: o.unexpected_count for o in suite.outcomes}
    assert counts == {
        "id_not_null": 0,
        "id_unique": 0,
        "stage_in_set": BIG_ROWS // 500,
        "amount_between": BIG_ROWS // 250,
        "email_format": BIG_ROWS // 1000,
        "close_not_before_created": BIG_ROWS // 400,
        "row_count": None,
        "account_exists": 1998,  # i % 1001 == 1000 -> 'A1000' has no account
    }
    assert suite.outcome("row_count").observed_value == BIG_ROWS
    assert all(len(o.partial_unexpected) <= 20 for o in suite.outcomes)
    assert {o.name for o in suite.errors} == {
        "amount_between",
        "email_format",
        "close_not_before_created",
        "account_exists",
    }
    assert elapsed < 30

    # The checks ran as SQL aggregates / LIMITed samples inside DuckDB ...
    on_table = [s for s in statements if "raw.big_opportunity" in s]
    assert any("sum(CASE WHEN" in s for s in on_table)
    assert any("regexp_matches(contact_email" in s for s in on_table)
    assert any("count(*) OVER (PARTITION BY opportunity_id)" in s for s in on_table)
    # ... and the only statements without an aggregate or a LIMIT are GX's existence probe
    # and the custom unexpected-rows query, which GX reads with fetchmany(200) from DuckDB's
    # streaming result.
    unbounded = [
        s for s in on_table if "LIMIT" not in s and "count(" not in s.lower() and "sum(" not in s.lower()
    ]
    assert all("LEFT JOIN raw.account" in s for s in unbounded), unbounded

    # ... so Python never holds the table: peak RSS growth is far below its pandas size.
    if has_peak and baseline is not None and peak is not None:
        growth = peak - baseline
        assert growth < 0.5 * pandas_mib, (growth, pandas_mib)
    _assert_file_released(path)
