"""Great Expectations (GX Core 1.x) validation of tables inside a DuckDB warehouse file.

Every expectation is compiled by GX into SQL and executed *by DuckDB*: nothing pulls a table
into pandas. Only aggregate rows (counts, min/max) and small samples of unexpected values
(at most ``sample_size`` / GX's 200-record cap) cross into Python, so memory stays bounded
whatever the table size.

Why a custom SQLAlchemy dialect is needed
-----------------------------------------
GX talks to SQL engines through SQLAlchemy, i.e. through ``duckdb-engine``. Out of the box
that combination returns no rows on DuckDB (GX issues #10738, #11579) and, with the
SQLAlchemy 2.1 / duckdb 1.4 that this project pins, cannot even reflect columns. The private
dialect registered below (``duckdb+salesops_gx://``) subclasses duckdb-engine's and fixes:

1. *Lost results.* duckdb-engine runs every statement on the DuckDB connection itself and
   opens a real DuckDB transaction on SQLAlchemy's autobegin. GX executes a query inside
   ``with engine.connect()`` and fetches *after* the block; leaving the block rolls back,
   and a DuckDB ROLLBACK discards the pending (lazily streamed) result -> empty rows ->
   ``IndexError`` in ``resolve_metric_bundle``. Pool settings (``pool_reset_on_return=None``,
   ``StaticPool``) do not help because ``Connection.close()`` still rolls back the autobegun
   transaction. The dialect therefore runs DuckDB in autocommit mode (no BEGIN / COMMIT /
   ROLLBACK is ever sent), so a result survives until the next statement on that
   connection. GX always fetches right after ``execute_query()``. DuckDB streams results,
   so GX's ``fetchmany(200)`` on an unexpected-rows query stays cheap even with millions
   of matching rows.
2. *Column reflection.* SQLAlchemy >= 2.0.45 reflects PostgreSQL-style dialects through
   ``pg_catalog.pg_collation``, which DuckDB < 1.5 lacks (duckdb/duckdb#22069,
   Mause/duckdb_engine#1379), and duckdb-engine 0.17.0 calls a SQLAlchemy-2.0-only private
   helper. ``get_columns`` is reimplemented on ``duckdb_columns()``. Views are included.
3. *Regex.* GX only emits regex SQL for dialects it recognises. The execution engine is told
   to treat DuckDB like PostgreSQL, and the compiler maps PostgreSQL's ``~`` / ``!~``
   (partial match) to DuckDB's ``regexp_matches()``. DuckDB's own ``~`` is a *full* match,
   so it cannot be used. Patterns use RE2 syntax (no look-around, no back-references).

Custom SQL (``UnexpectedRowsExpectation``): ``{batch}`` is replaced by the quoted table name,
so it can be aliased like a table (``FROM {batch} AS o LEFT JOIN raw.account a ON ...``).
Literal braces must be doubled (``{{2,}}``), as GX requires.

Runtime dependency: ``duckdb-engine`` (PyPI), tested with 0.17.0.

The file is released after every call. Connections are opened read-only by default, every
DuckDB connection the dialect opens for a call is tracked and closed in a ``finally``, and
the SQLAlchemy engines are disposed, so a dbt subprocess can open the file read-write next.

GX itself takes ~6 s to import, so it is imported lazily inside the functions.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Formatter
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover - typing only
    import great_expectations as gx

__all__ = [
    "DIALECT_URL_SCHEME",
    "ExpectationOutcome",
    "ExpectationSpec",
    "SuiteOutcome",
    "TableNotFoundError",
    "TableSuite",
    "validate_table",
    "validate_tables",
]

Severity = Literal["error", "warning"]
_SEVERITIES: tuple[str, ...] = ("error", "warning")

DIALECT_URL_SCHEME = "duckdb+salesops_gx"
_DIALECT_REGISTRY_NAME = "duckdb.salesops_gx"
_SESSION_KEY = "salesops_gx_session"
_META_RULE_KEY = "salesops_rule"
_DATA_DOCS_SITE = "salesops_data_docs"
DEFAULT_SAMPLE_SIZE = 20
_CUSTOM_SQL_SUFFIX = "__custom_sql"
_MAX_MESSAGE_CHARS = 2000


class TableNotFoundError(LookupError):
    """The table or view to validate does not exist in the warehouse."""


# --------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectationSpec:
    """One rule: a stable name, a GX Core expectation instance and a severity.

    The expectation instance is never mutated; a copy is added to each GX suite.
    """

    name: str
    expectation: gx.expectations.Expectation
    severity: Severity = "error"

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("ExpectationSpec.name must be a non-empty string")
        if self.severity not in _SEVERITIES:
            raise ValueError(
                f"ExpectationSpec {self.name!r}: severity must be one of {_SEVERITIES}, got {self.severity!r}"
            )


@dataclass(frozen=True)
class TableSuite:
    """A suite of rules to run against one table or view (``schema.table``)."""

    schema: str
    table: str
    suite_name: str
    specs: Sequence[ExpectationSpec]

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class ExpectationOutcome:
    name: str
    severity: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    partial_unexpected: list[Any]
    observed_value: object | None
    expectation_type: str
    column: str | None
    # Set when GX could not evaluate the expectation (bad SQL, unknown column, ...).
    # Such an outcome is always a failure.
    exception_message: str | None = None


@dataclass(frozen=True)
class SuiteOutcome:
    suite_name: str
    table: str
    # True when no *error*-severity expectation failed (warnings never fail a suite).
    success: bool
    outcomes: list[ExpectationOutcome]
    # Path of the Data Docs index.html when Data Docs were requested, else None.
    data_docs_index: Path | None = None

    @property
    def errors(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "error"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]

    def outcome(self, name: str) -> ExpectationOutcome:
        """The outcome of the rule called ``name``."""
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)


# --------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------


def validate_table(
    warehouse_path: str | Path,
    schema: str,
    table: str,
    suite_name: str,
    specs: Sequence[ExpectationSpec],
    data_docs_dir: Path | None = None,
    *,
    read_only: bool = True,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    duckdb_config: Mapping[str, Any] | None = None,
) -> SuiteOutcome:
    """Validate one table or view of a DuckDB file. See :func:`validate_tables`."""
    (outcome,) = validate_tables(
        warehouse_path,
        [TableSuite(schema=schema, table=table, suite_name=suite_name, specs=specs)],
        data_docs_dir=data_docs_dir,
        read_only=read_only,
        sample_size=sample_size,
        duckdb_config=duckdb_config,
    )
    return outcome


def validate_tables(
    warehouse_path: str | Path,
    suites: Sequence[TableSuite],
    data_docs_dir: Path | None = None,
    *,
    read_only: bool = True,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    duckdb_config: Mapping[str, Any] | None = None,
) -> list[SuiteOutcome]:
    """Validate several tables of one DuckDB file with a single ephemeral GX context.

    Args:
        warehouse_path: An existing DuckDB database file.
        suites: One :class:`TableSuite` per table. Suite names must be unique.
        data_docs_dir: When given, GX Data Docs (static HTML) are built there, and
            ``SuiteOutcome.data_docs_index`` points at its ``index.html``.
        read_only: Open the file read-only (the default), so validation cannot modify the
            warehouse and other read-only readers are not blocked. Use ``False`` only when
            this process already holds a read-write connection to the same file, because
            DuckDB refuses two connections with different settings in one process.
        sample_size: At most this many unexpected values (or rows, for
            ``UnexpectedRowsExpectation``) are kept per expectation.
        duckdb_config: DuckDB settings for the validation connections, e.g.
            ``{"memory_limit": "2GB", "threads": 2}``.

    Returns:
        One :class:`SuiteOutcome` per suite, in input order. On return (normal or
        exceptional) no connection to the file is left open.

    Raises:
        FileNotFoundError: The warehouse file does not exist.
        TableNotFoundError: A table or view does not exist.
        ValueError: Duplicate suite or rule names, or duplicated expectations.
    """
    path = Path(warehouse_path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"DuckDB warehouse not found: {path}")
    if sample_size < 0:
        raise ValueError("sample_size must be >= 0")
    _check_unique_names(suites)
    if not suites:
        return []

    session = _open_session()
    try:
        return _run(path, suites, data_docs_dir, read_only, sample_size, dict(duckdb_config or {}), session)
    finally:
        _close_session(session)


# --------------------------------------------------------------------------------------
# Implementation
# --------------------------------------------------------------------------------------


def _check_unique_names(suites: Sequence[TableSuite]) -> None:
    seen_suites: set[str] = set()
    for suite in suites:
        if suite.suite_name in seen_suites:
            raise ValueError(f"duplicate suite name {suite.suite_name!r}")
        seen_suites.add(suite.suite_name)
        seen_rules: set[str] = set()
        for spec in suite.specs:
            if spec.name in seen_rules:
                raise ValueError(f"suite {suite.suite_name!r}: duplicate rule name {spec.name!r}")
            seen_rules.add(spec.name)


def _run(
    path: Path,
    suites: Sequence[TableSuite],
    data_docs_dir: Path | None,
    read_only: bool,
    sample_size: int,
    duckdb_config: dict[str, Any],
    session: str,
) -> list[SuiteOutcome]:
    import great_expectations as gx
    import sqlalchemy as sa

    _install_dialect()
    url = sa.engine.URL.create(DIALECT_URL_SCHEME, database=str(path)).render_as_string()
    context = _ephemeral_context(data_docs_dir)
    datasource = context.data_sources.add_sql(
        name="warehouse",
        connection_string=url,
        create_temp_table=False,
        kwargs={
            "connect_args": {
                "read_only": read_only,
                "config": duckdb_config,
                _SESSION_KEY: session,
            }
        },
    )
    engines = [datasource.get_engine()]
    try:
        execution_engine = datasource.get_execution_engine()
        engines.append(execution_engine.engine)
        # Make GX emit PostgreSQL-flavoured regex SQL (compiled to regexp_matches()).
        import sqlalchemy.dialects.postgresql as pg_dialect_module

        execution_engine.dialect_module = pg_dialect_module
        _check_tables_exist(execution_engine.engine, suites)

        runs = []
        asset_names: set[str] = set()
        for index, suite in enumerate(suites):
            asset_name = suite.qualified_name
            if asset_name in asset_names:
                asset_name = f"{asset_name}__{index}"
            asset_names.add(asset_name)
            with warnings.catch_warnings():
                # `schema_name` is deprecated for PostgreSQL-like sources in favour of the
                # connection's search path, but the generic SQL source has no other way.
                warnings.simplefilter("ignore", DeprecationWarning)
                asset = datasource.add_table_asset(
                    name=asset_name,
                    table_name=suite.table,
                    schema_name=suite.schema,
                )
            batch_definition = asset.add_batch_definition_whole_table("whole_table")
            by_id: dict[str, ExpectationSpec] = {}
            results = []
            for group, specs, result_format in _spec_groups(suite, sample_size):
                gx_suite = _build_suite(gx, context, suite, f"{suite.suite_name}{group}", specs, by_id)
                definition = context.validation_definitions.add(
                    gx.ValidationDefinition(
                        name=f"{suite.suite_name}{group}__{index}",
                        data=batch_definition,
                        suite=gx_suite,
                    )
                )
                results.append(definition.run(result_format=result_format))
            runs.append((suite, by_id, results))

        index_path = _build_data_docs(context, data_docs_dir) if data_docs_dir else None
        return [
            _suite_outcome(suite, by_id, results, sample_size, index_path) for suite, by_id, results in runs
        ]
    finally:
        for engine in engines:
            with contextlib.suppress(Exception):
                engine.dispose()


def _ephemeral_context(data_docs_dir: Path | None) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    if data_docs_dir is not None:
        config.data_docs_sites = {
            _DATA_DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(data_docs_dir).resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        }
    return gx.get_context(mode="ephemeral", project_config=config)


def _check_tables_exist(engine: Any, suites: Sequence[TableSuite]) -> None:
    import sqlalchemy as sa

    query = sa.text(
        "SELECT count(*) FROM ("
        " SELECT schema_name, table_name FROM duckdb_tables()"
        " WHERE database_name = current_database()"
        " UNION ALL SELECT schema_name, view_name FROM duckdb_views()"
        " WHERE database_name = current_database() AND NOT internal"
        ") WHERE schema_name = :schema AND table_name = :table"
    )
    with engine.connect() as connection:
        for suite in suites:
            found = connection.execute(query, {"schema": suite.schema, "table": suite.table}).scalar()
            if not found:
                raise TableNotFoundError(f"table or view {suite.qualified_name!r} not found in the warehouse")


def _spec_groups(
    suite: TableSuite, sample_size: int
) -> list[tuple[str, list[ExpectationSpec], dict[str, Any]]]:
    """Split a suite into GX runs by result format (GX applies one format per run).

    Column/table expectations run with SUMMARY: their unexpected-value samples are fetched
    with ``LIMIT sample_size``. ``UnexpectedRowsExpectation`` only reports its sample rows
    with COMPLETE; that adds no query (GX fetches <= 200 rows of the custom query anyway).
    """
    regular = [s for s in suite.specs if not _is_rows_query(s.expectation)]
    rows = [s for s in suite.specs if _is_rows_query(s.expectation)]
    groups: list[tuple[str, list[ExpectationSpec], dict[str, Any]]] = []
    if regular:
        summary = {"result_format": "SUMMARY", "partial_unexpected_count": sample_size}
        groups.append(("", regular, summary))
    if rows:
        complete = {"result_format": "COMPLETE", "partial_unexpected_count": sample_size}
        groups.append((_CUSTOM_SQL_SUFFIX if regular else "", rows, complete))
    return groups


def _is_rows_query(expectation: Any) -> bool:
    return getattr(expectation, "expectation_type", None) == "unexpected_rows_expectation"


def _quote_identifier(name: str) -> str:
    if "*/" in name:  # would end the marker comment written by _bind_batch
        raise ValueError(f"unsupported identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _bind_batch(query: str, suite: TableSuite) -> str:
    """Replace ``{batch}`` in custom SQL by the quoted table name.

    Validation always covers the whole table, so the two are equivalent. GX itself would
    substitute ``(SELECT * FROM t WHERE true) AS subselect`` -- already aliased -- unless
    the query contains the word JOIN, so the natural ``FROM {batch} AS child`` or
    ``FROM {batch} child`` would be a syntax error. Other ``{param}`` fields and the
    ``{{``/``}}`` escapes are kept for GX. A trailing ``/* {batch} */`` comment keeps GX's
    "query should contain {batch}" check (a ``print`` on every re-validation) quiet; GX
    substitutes its subquery into that comment, where it is inert.
    """
    table = f"{_quote_identifier(suite.schema)}.{_quote_identifier(suite.table)}"
    parts: list[str] = []
    for literal, field_name, format_spec, conversion in Formatter().parse(query):
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if field_name is None:
            continue
        if field_name == "batch" and not format_spec and not conversion:
            parts.append(table.replace("{", "{{").replace("}", "}}"))
        else:
            conv = f"!{conversion}" if conversion else ""
            spec = f":{format_spec}" if format_spec else ""
            parts.append(f"{{{field_name}{conv}{spec}}}")
    return "".join(parts) + "\n/* {batch} */"


def _build_suite(
    gx: Any,
    context: Any,
    suite: TableSuite,
    gx_suite_name: str,
    specs: Sequence[ExpectationSpec],
    by_id: dict[str, ExpectationSpec],
) -> Any:
    from great_expectations.expectations.metadata_types import FailureSeverity

    gx_suite = context.suites.add(gx.ExpectationSuite(name=gx_suite_name))
    for spec in specs:
        update: dict[str, Any] = {
            "id": None,
            "meta": {**(spec.expectation.meta or {}), _META_RULE_KEY: spec.name},
            "severity": FailureSeverity.CRITICAL if spec.severity == "error" else FailureSeverity.WARNING,
        }
        query = getattr(spec.expectation, "unexpected_rows_query", None)
        if _is_rows_query(spec.expectation) and isinstance(query, str):
            update["unexpected_rows_query"] = _bind_batch(query, suite)
        expectation = spec.expectation.copy(deep=True, update=update)
        before = len(gx_suite.expectations)
        added = gx_suite.add_expectation(expectation)
        if len(gx_suite.expectations) == before:
            raise ValueError(
                f"suite {gx_suite_name!r}: rule {spec.name!r} duplicates another rule's "
                "expectation (GX would silently drop it)"
            )
        by_id[added.id] = spec
    return gx_suite


def _build_data_docs(context: Any, data_docs_dir: Path) -> Path | None:
    context.build_data_docs(site_names=[_DATA_DOCS_SITE])
    index = Path(data_docs_dir).resolve() / "index.html"
    return index if index.is_file() else None


def _suite_outcome(
    suite: TableSuite,
    by_id: dict[str, ExpectationSpec],
    results: Sequence[Any],
    sample_size: int,
    index_path: Path | None,
) -> SuiteOutcome:
    outcomes_by_name: dict[str, ExpectationOutcome] = {}
    for item in (item for result in results for item in result.results):
        config = item.expectation_config
        spec = by_id.get(config.id)
        if spec is None:  # pragma: no cover - defensive: GX returned an unknown expectation
            name = (config.meta or {}).get(_META_RULE_KEY)
            spec = next(s for s in suite.specs if s.name == name)
        outcomes_by_name[spec.name] = _expectation_outcome(spec, item, sample_size)
    # Report in the caller's order.
    outcomes = [outcomes_by_name[spec.name] for spec in suite.specs]
    return SuiteOutcome(
        suite_name=suite.suite_name,
        table=suite.qualified_name,
        success=not any(not o.success and o.severity == "error" for o in outcomes),
        outcomes=outcomes,
        data_docs_index=index_path,
    )


def _exception_message(exception_info: Any) -> str | None:
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else exception_info.values()
    messages = [
        str(info.get("exception_message") or "unknown error")
        for info in infos
        if isinstance(info, dict) and info.get("raised_exception")
    ]
    message = "; ".join(dict.fromkeys(messages))
    return message[:_MAX_MESSAGE_CHARS] if message else None


def _expectation_outcome(spec: ExpectationSpec, item: Any, sample_size: int) -> ExpectationOutcome:
    config = item.expectation_config
    kwargs = config.kwargs or {}
    result: dict[str, Any] = dict(item.result or {})
    exception_message = _exception_message(item.exception_info)

    unexpected_count = result.get("unexpected_count")
    partial: list[Any] = list(result.get("partial_unexpected_list") or [])
    if config.type == "unexpected_rows_expectation":
        if isinstance(result.get("observed_value"), int):
            unexpected_count = result["observed_value"]
        partial = list((result.get("details") or {}).get("unexpected_rows") or [])

    if "column" in kwargs:
        column: str | None = str(kwargs["column"])
    elif "column_A" in kwargs and "column_B" in kwargs:
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    else:
        column = None

    return ExpectationOutcome(
        name=spec.name,
        severity=spec.severity,
        success=bool(item.success) and exception_message is None,
        element_count=result.get("element_count"),
        unexpected_count=unexpected_count,
        unexpected_percent=result.get("unexpected_percent"),
        partial_unexpected=partial[:sample_size],
        observed_value=result.get("observed_value"),
        expectation_type=config.type,
        column=column,
        exception_message=exception_message,
    )


# --------------------------------------------------------------------------------------
# DuckDB SQLAlchemy dialect and connection tracking
# --------------------------------------------------------------------------------------

_sessions_lock = threading.Lock()
_sessions: dict[str, list[Any]] = {}
_dialect_lock = threading.Lock()
# Set by _install_dialect(); SQLAlchemy's registry loads it from this module by name.
_SalesOpsDuckDBDialect: Any = None


def _open_session() -> str:
    session = uuid.uuid4().hex
    with _sessions_lock:
        _sessions[session] = []
    return session


def _track_connection(session: str | None, connection: Any) -> None:
    if session is None:
        return
    with _sessions_lock:
        _sessions.setdefault(session, []).append(connection)


def _close_session(session: str) -> None:
    with _sessions_lock:
        connections = _sessions.pop(session, [])
    for connection in connections:
        with contextlib.suppress(Exception):
            connection.close()


_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def _reflect_duckdb_type(data_type: str) -> Any:
    import sqlalchemy as sa

    simple = {
        "BOOLEAN": sa.Boolean,
        "TINYINT": sa.SmallInteger,
        "SMALLINT": sa.SmallInteger,
        "INTEGER": sa.Integer,
        "BIGINT": sa.BigInteger,
        "UTINYINT": sa.SmallInteger,
        "USMALLINT": sa.Integer,
        "UINTEGER": sa.BigInteger,
        "UBIGINT": sa.Numeric,
        "HUGEINT": sa.Numeric,
        "UHUGEINT": sa.Numeric,
        "FLOAT": sa.Float,
        "DOUBLE": sa.Double,
        "VARCHAR": sa.String,
        "DATE": sa.Date,
        "TIME": sa.Time,
        "INTERVAL": sa.Interval,
        "BLOB": sa.LargeBinary,
        "UUID": sa.Uuid,
    }
    if match := _DECIMAL.fullmatch(data_type):
        return sa.Numeric(int(match[1]), int(match[2]))
    if data_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return sa.DateTime(timezone=True)
    if data_type.startswith("TIMESTAMP"):
        return sa.DateTime()
    factory = simple.get(data_type)
    return factory() if factory is not None else sa.types.NullType()


def _install_dialect() -> None:
    """Define and register the ``duckdb+salesops_gx://`` SQLAlchemy dialect (idempotent)."""
    global _SalesOpsDuckDBDialect
    with _dialect_lock:
        if _SalesOpsDuckDBDialect is not None:
            return
        from ingestion.warehouse import connect_duckdb

        try:
            import duckdb_engine
        except ImportError as exc:  # pragma: no cover - environment problem
            raise ImportError(
                "expectations.gx_engine needs the 'duckdb-engine' package (SQLAlchemy driver for DuckDB)"
            ) from exc
        import sqlalchemy as sa
        from sqlalchemy.dialects import registry

        base_compiler: Any = duckdb_engine.Dialect.statement_compiler

        class _Compiler(base_compiler):  # type: ignore[misc, valid-type]
            """PostgreSQL's partial-match ``~`` / ``!~`` -> DuckDB ``regexp_matches``."""

            def _regexp(self, binary: Any, negate: bool, **kw: Any) -> str:
                call = (
                    f"regexp_matches({self.process(binary.left, **kw)}, {self.process(binary.right, **kw)})"
                )
                return f"(NOT {call})" if negate else call

            def visit_custom_op_binary(self, element: Any, operator: Any, **kw: Any) -> str:
                if operator.opstring in ("~", "!~"):
                    return self._regexp(element, operator.opstring == "!~", **kw)
                return super().visit_custom_op_binary(element, operator, **kw)

            def visit_regexp_match_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
                if binary.modifiers.get("flags"):
                    return super().visit_regexp_match_op_binary(binary, operator, **kw)
                return self._regexp(binary, False, **kw)

            def visit_not_regexp_match_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
                if binary.modifiers.get("flags"):
                    return super().visit_not_regexp_match_op_binary(binary, operator, **kw)
                return self._regexp(binary, True, **kw)

        class SalesOpsDuckDBDialect(duckdb_engine.Dialect):  # type: ignore[misc, valid-type]
            driver = "salesops_gx"
            supports_statement_cache = False
            statement_compiler = _Compiler

            # Autocommit: never BEGIN/COMMIT/ROLLBACK, so a result stays fetchable after
            # SQLAlchemy returns the connection to the pool (see module docstring).
            def do_begin(self, dbapi_connection: Any) -> None:
                return None

            def do_rollback(self, dbapi_connection: Any) -> None:
                return None

            def do_commit(self, dbapi_connection: Any) -> None:
                return None

            def connect(self, *cargs: Any, **cparams: Any) -> Any:
                # Plain duckdb.connect() (through connect_duckdb, which only pins the time zone
                # to UTC with SET, after connecting): duckdb-engine would add a custom_user_agent
                # setting, and DuckDB refuses a second in-process connection to a file that is
                # already open with different settings (e.g. by the caller's own read-write handle).
                session = cparams.pop(_SESSION_KEY, None)
                config = dict(cparams.pop("config", None) or {})
                config.update(cparams.pop("url_config", None) or {})
                connection = duckdb_engine.ConnectionWrapper(
                    connect_duckdb(
                        cparams.pop("database"),
                        read_only=bool(cparams.pop("read_only", False)),
                        config=config,
                    )
                )
                _track_connection(session, connection)
                return connection

            def get_columns(
                self,
                connection: Any,
                table_name: str,
                schema: str | None = None,
                **kw: Any,
            ) -> list[dict[str, Any]]:
                rows = connection.execute(
                    sa.text(
                        "SELECT column_name, data_type, is_nullable, column_default, comment"
                        " FROM duckdb_columns()"
                        " WHERE database_name = current_database()"
                        " AND schema_name = coalesce(:schema, current_schema())"
                        " AND table_name = :table"
                        " ORDER BY column_index"
                    ),
                    {"schema": schema, "table": str(table_name)},
                ).all()
                if not rows:
                    qualified = f"{schema}.{table_name}" if schema else str(table_name)
                    raise sa.exc.NoSuchTableError(qualified)
                return [
                    {
                        "name": name,
                        "type": _reflect_duckdb_type(data_type),
                        "nullable": bool(nullable),
                        "default": default,
                        "autoincrement": False,
                        "comment": comment,
                    }
                    for name, data_type, nullable, default, comment in rows
                ]

        _SalesOpsDuckDBDialect = SalesOpsDuckDBDialect
        registry.register(_DIALECT_REGISTRY_NAME, __name__, "_SalesOpsDuckDBDialect")
