"""Environment settings with their defaults, applied in one place before Dagster reads ``EnvVar``s."""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DEMO_DIR = PROJECT_ROOT / "data" / "demo"

_PATH_SETTINGS = ("SALESOPS_CALENDAR_DIR", "SALESOPS_WAREHOUSE", "SALESOPS_SERVING_PATH", "DAGSTER_HOME")


def defaults() -> dict[str, str]:
    return {
        "SALESOPS_CRM_URL": f"sqlite:///{DEMO_DIR / 'crm.sqlite'}",
        "SALESOPS_CALENDAR_DIR": str(DEMO_DIR / "calendars"),
        "SALESOPS_WAREHOUSE": str(PROJECT_ROOT / "data" / "warehouse.duckdb"),
        "SALESOPS_SCHEDULE_TZ": "UTC",
        "SALESOPS_CRM_OVERLAP_HOURS": "24",
        "SALESOPS_CRM_BATCH_SIZE": "50000",
        "SALESOPS_CALENDAR_FUTURE_DAYS": "90",
        "SALESOPS_CALENDAR_MAX_OCCURRENCES": "1000",
        "SALESOPS_REPLICA_SHAPE": "auto",
        "SALESOPS_FIELD_MAP": "",
        "DAGSTER_HOME": str(PROJECT_ROOT / "data" / "dagster_home"),
    }


def apply_defaults() -> None:
    """Fill unset settings with defaults and make file paths absolute (dbt runs in its own folder)."""
    for name, value in defaults().items():
        if not os.environ.get(name):
            os.environ[name] = value
    if not os.environ.get("SALESOPS_SERVING_PATH"):
        # BI tools' copy lives beside the warehouse unless placed elsewhere.
        os.environ["SALESOPS_SERVING_PATH"] = str(
            Path(os.environ["SALESOPS_WAREHOUSE"]).with_name("serving.duckdb")
        )
    for name in _PATH_SETTINGS:
        os.environ[name] = str(Path(os.environ[name]).expanduser().resolve())
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    _write_instance_config(Path(os.environ["DAGSTER_HOME"]))
    apply_server_warehouse()


WAREHOUSE_URL_ENV = "SALESOPS_WAREHOUSE_URL"
SUPPORTED_SERVER_SCHEME = "postgresql+psycopg"


def uses_server_warehouse() -> bool:
    """SALESOPS_WAREHOUSE_URL is set: dbt builds in that server; DuckDB stays the landing store."""
    return bool(os.environ.get(WAREHOUSE_URL_ENV, "").strip())


def server_warehouse_url() -> sa.URL:
    """SALESOPS_WAREHOUSE_URL as a SQLAlchemy URL on psycopg 3 (``postgresql://`` is read as such).

    Errors name the variable and the scheme, never the URL: it carries a password.
    """
    import sqlalchemy as sa

    value = os.environ.get(WAREHOUSE_URL_ENV, "").strip()
    try:
        url = sa.make_url(value)
    except Exception:  # noqa: BLE001 - the message would quote the URL, password included
        raise ValueError(
            f"{WAREHOUSE_URL_ENV} is not a URL like {SUPPORTED_SERVER_SCHEME}://user:password@host:5432/database"
        ) from None
    if url.drivername == "postgresql":
        url = url.set(drivername=SUPPORTED_SERVER_SCHEME)
    if url.drivername != SUPPORTED_SERVER_SCHEME:
        scheme = url.drivername if url.drivername.replace("+", "").replace("_", "").isalnum() else "?"
        raise ValueError(
            f"{WAREHOUSE_URL_ENV} must be a {SUPPORTED_SERVER_SCHEME}:// URL (dbt builds the marts only on "
            f"PostgreSQL), not {scheme}://"
        )
    if not url.database:
        raise ValueError(f"{WAREHOUSE_URL_ENV} names no database ({SUPPORTED_SERVER_SCHEME}://.../database)")
    return url


def apply_server_warehouse() -> None:
    """In server mode, point dbt's ``postgres`` target (dbt_project/profiles.yml) at the URL's server.

    dbt runs in subprocesses that inherit these variables; they override any SALESOPS_PG_* set.
    """
    if not uses_server_warehouse():
        return
    url = server_warehouse_url()
    os.environ.update(
        {
            "SALESOPS_DBT_TARGET": "postgres",
            "SALESOPS_PG_HOST": url.host or "127.0.0.1",
            "SALESOPS_PG_PORT": str(url.port or 5432),
            "SALESOPS_PG_USER": url.username or "",
            "SALESOPS_PG_PASSWORD": url.password or "",
            "SALESOPS_PG_DATABASE": url.database or "",
            # libpq starts dbt's sessions in UTC (the postgres profile has no session options)
            "PGTZ": "UTC",
        }
    )


def _write_instance_config(dagster_home: Path) -> None:
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")


def dbt_executable() -> str:
    """The dbt installed beside this Python (the venv's), whatever PATH says."""
    return str(Path(sys.executable).with_name("dbt"))


def uses_demo_crm() -> bool:
    return os.environ.get("SALESOPS_CRM_URL") == defaults()["SALESOPS_CRM_URL"]


def validate_crm_settings() -> None:
    """SALESOPS_REPLICA_SHAPE and SALESOPS_FIELD_MAP parse (ValueError naming the variable)."""
    from ingestion.replica_shape import FIELD_MAP_ENV, SHAPE_ENV, parse_field_map, parse_shapes

    parse_shapes(os.environ.get(SHAPE_ENV, ""))
    parse_field_map(os.environ.get(FIELD_MAP_ENV, ""))


def as_of() -> date:
    """The run's reference date: SALESOPS_AS_OF (YYYY-MM-DD) or today in UTC."""
    value = os.environ.get("SALESOPS_AS_OF", "").strip()
    if value:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"SALESOPS_AS_OF must be a date like 2026-01-31, not {value!r}") from None
    return datetime.now(UTC).date()
