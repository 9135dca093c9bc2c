"""Server warehouse mode (SALESOPS_WAREHOUSE_URL): dbt builds the marts in PostgreSQL.

The DuckDB file stays the landing store: ingestion loads into it as always (cursors, batches,
calendar fingerprints, rejects), then

1. ``server_warehouse/raw`` ships each raw table whose content changed since its last shipment
   into schema ``raw`` of the server (whole, one transaction per table, COPY on PostgreSQL);
2. dbt builds staging and then the marts there (target ``postgres``, orchestration/settings.py);
3. each dbt step, after its ``dbt build``, copies the tables it built back into the DuckDB file
   (``mirror_dbt_step``), so that the Great Expectations suites, the forecast, the serving
   publication and the report read the server's tables unchanged, in the same order as before;
4. the forecast asset also writes its four mart tables into the server's ``marts`` schema.

Unset SALESOPS_WAREHOUSE_URL: the shipment asset does not exist and the job is DuckDB only.
The URL carries a password: it is never logged, put in metadata or in an error message.
"""

from collections.abc import Callable, Iterable
from typing import TypeVar

import duckdb
import sqlalchemy as sa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ingestion.sql_warehouse import (
    SqlWarehouseWriter,
    copy_duckdb_table,
    mirror_postgres_tables,
    utc_engine,
)
from ingestion.warehouse import META_SCHEMA, RAW_SCHEMA, ingested_fingerprints, utc_now
from orchestration import settings
from orchestration.assets.ingestion import ingestion_assets
from orchestration.resources import WarehouseResource

SERVER_GROUP = "server_warehouse"
SERVER_OWNERS = ["team:data-engineering"]
RAW_SHIPMENT_KEY = AssetKey(["server_warehouse", "raw"])

SHIPPED_TABLE = f"{META_SCHEMA}.server_raw_shipped"
_SHIPPED_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SHIPPED_TABLE} (
        server VARCHAR NOT NULL, table_name VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL,
        rows BIGINT NOT NULL, shipped_at TIMESTAMP NOT NULL, PRIMARY KEY (server, table_name))""",
)

T = TypeVar("T")


def server_mode() -> bool:
    return settings.uses_server_warehouse()


def server_identity(url: sa.URL) -> str:
    """Which server and database, without user or password: what shipments are recorded against."""
    return f"{url.host or '127.0.0.1'}:{url.port or 5432}/{url.database}"


def safe_message(error: BaseException, url: sa.URL) -> str:
    """One line about a failure against the server, with no password in it."""
    detail = " ".join(str(error).split()) or type(error).__name__
    if url.password:
        detail = detail.replace(str(url.password), "***")
    detail = detail.split(" (Background on this error at")[0]
    return f"server warehouse {url.render_as_string(hide_password=True)}: {detail[:500]}"


def on_server(action: Callable[[sa.URL], T]) -> T:
    """``action(url)`` against SALESOPS_WAREHOUSE_URL; any error becomes a Failure whose message and
    stack trace carry no password."""
    url = settings.server_warehouse_url()
    try:
        return action(url)
    except Failure:
        raise
    except Exception as error:  # noqa: BLE001 - reported below, without the URL's password
        message = safe_message(error, url)
    # Raised outside the except block, so the original exception is not chained onto the Failure.
    raise Failure(description=message, allow_retries=False)


def _shipped_fingerprints(connection: duckdb.DuckDBPyConnection, server: str) -> dict[str, str]:
    for statement in _SHIPPED_DDL:
        connection.execute(statement)
    rows = connection.execute(
        f"SELECT table_name, fingerprint FROM {SHIPPED_TABLE} WHERE server = ?", [server]
    ).fetchall()
    return dict(rows)


def _server_raw_tables(url: sa.URL) -> set[str]:
    engine = utc_engine(url)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names(schema=RAW_SCHEMA))
    finally:
        engine.dispose()


@asset(
    key=RAW_SHIPMENT_KEY,
    deps=[key for assets in ingestion_assets for key in assets.keys],  # and so their blocking checks
    group_name=SERVER_GROUP,
    owners=SERVER_OWNERS,
    kinds={"duckdb", "postgres"},
    description=(
        "The raw tables of the DuckDB landing store shipped into schema raw of the server warehouse "
        "(SALESOPS_WAREHOUSE_URL): only tables whose rows changed since their last shipment, each "
        "replaced whole in one transaction (COPY). Recorded in meta.server_raw_shipped."
    ),
)
def server_raw_shipment(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    url = settings.server_warehouse_url()
    server = server_identity(url)
    present = on_server(_server_raw_tables)
    shipped: dict[str, int] = {}
    skipped: list[str] = []
    with warehouse.warehouse().connect() as connection:
        fingerprints = {
            name.split(".", 1)[1]: fingerprint
            for name, fingerprint in ingested_fingerprints(connection).items()
            if name.startswith(f"{RAW_SCHEMA}.")
        }
        last = _shipped_fingerprints(connection, server)
        with SqlWarehouseWriter(url) as writer:
            for table, fingerprint in sorted(fingerprints.items()):
                if last.get(table) == fingerprint and table.lower() in present:
                    skipped.append(table)
                    continue
                rows = on_server(lambda _, t=table: copy_duckdb_table(connection, writer, t))
                connection.execute(
                    f"INSERT OR REPLACE INTO {SHIPPED_TABLE} VALUES (?, ?, ?, ?, ?)",
                    [server, table, fingerprint, rows, utc_now()],
                )
                shipped[table] = rows
    context.log.info(
        f"server warehouse: shipped {len(shipped)} raw tables ({sum(shipped.values())} rows), "
        f"{len(skipped)} unchanged since their last shipment"
    )
    return MaterializeResult(
        metadata={
            "server": MetadataValue.text(server),
            "tables_shipped": len(shipped),
            "tables_skipped": len(skipped),
            "rows_shipped": sum(shipped.values()),
            "shipped": MetadataValue.text(", ".join(sorted(shipped)) or "none"),
            "skipped": MetadataValue.text(", ".join(sorted(skipped)) or "none"),
            **{f"rows.{table}": rows for table, rows in sorted(shipped.items())},
        }
    )


def mirror_dbt_step(context: AssetExecutionContext, warehouse: WarehouseResource) -> dict[str, int]:
    """Copy the tables a dbt step just built on the server into the DuckDB file, replacing them.

    Runs inside the dbt step, after ``dbt build``: the checks on those tables (the staging and mart
    suites, which block what follows) and every later step then read the server's tables in DuckDB.
    A separate asset cannot sit there: it would be downstream of the checked tables, so their
    blocking checks would wait for it and it for them.
    """
    relations = sorted(
        (key.path[0], key.path[-1]) for key in context.selected_asset_keys if len(key.path) == 2
    )
    with warehouse.warehouse().connect() as connection:
        mirrored = on_server(lambda url: mirror_postgres_tables(url, connection, relations))
    missing = sorted(f"{s}.{t}" for s, t in relations if f"{s}.{t}" not in mirrored)
    context.log.info(
        f"server warehouse: {len(mirrored)} tables mirrored into DuckDB ({sum(mirrored.values())} rows)"
        + (f"; not copied (views, or not on the server): {', '.join(missing)}" if missing else "")
    )
    return mirrored


def server_warehouse_assets() -> list[AssetsDefinition]:
    """The raw shipment in server mode; nothing otherwise."""
    return [server_raw_shipment] if server_mode() else []


def write_to_server(
    connection: duckdb.DuckDBPyConnection, schema: str, tables: Iterable[str]
) -> dict[str, int]:
    """Copy tables of ``schema`` from an open DuckDB connection into the same schema on the server,
    each replaced whole in one transaction."""

    def copy(url: sa.URL) -> dict[str, int]:
        with SqlWarehouseWriter(url, schema=schema) as writer:
            return {table: copy_duckdb_table(connection, writer, table, schema) for table in tables}

    return on_server(copy)
