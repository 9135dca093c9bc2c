"""Shared fixtures: one generated demo org and one pipeline run (twice) for all end-to-end tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

E2E_AS_OF = date(2026, 6, 15)
E2E_SEED = 7


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pipeline_env(crm: Path, calendars: Path, warehouse: Path, dagster_home: Path) -> dict[str, str]:
    return {
        "SALESOPS_CRM_URL": f"sqlite:///{crm}",
        "SALESOPS_CALENDAR_DIR": str(calendars),
        "SALESOPS_WAREHOUSE": str(warehouse),
        "SALESOPS_SERVING_PATH": str(warehouse.with_name("serving.duckdb")),
        "SALESOPS_AS_OF": E2E_AS_OF.isoformat(),
        "DAGSTER_HOME": str(dagster_home),
    }


def table_counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'staging', 'intermediate', 'marts') ORDER BY 1, 2"
        ).fetchall()
        return {
            f"{schema}.{name}": connection.execute(f'SELECT count(*) FROM {schema}."{name}"').fetchone()[0]
            for schema, name in tables
        }


@dataclass
class PipelineRun:
    demo_dir: Path
    crm: Path
    calendars: Path
    warehouse: Path
    env: dict[str, str]
    ground_truth: object
    first: object  # dagster ExecuteInProcessResult
    second: object
    counts_after_first: dict[str, int]
    counts_after_second: dict[str, int]

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as connection:
            return connection.execute(sql).fetchall()


def execute_nightly(env: dict[str, str]):
    from dagster import DagsterInstance

    with environment(env):
        from orchestration.definitions import defs
        from orchestration.jobs import NIGHTLY_JOB_NAME

        job = defs.resolve_job_def(NIGHTLY_JOB_NAME)
        with DagsterInstance.ephemeral() as instance:
            return job.execute_in_process(instance=instance, raise_on_error=False)


@pytest.fixture(scope="session")
def demo_org(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from ingestion.demo import generate

    demo_dir = tmp_path_factory.mktemp("demo")
    truth = generate(demo_dir, seed=E2E_SEED, profile="XS", as_of=E2E_AS_OF)
    return demo_dir, truth


@pytest.fixture(scope="session")
def pipeline_run(demo_org: tuple[Path, object], tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    demo_dir, truth = demo_org
    root = tmp_path_factory.mktemp("pipeline")
    env = pipeline_env(
        demo_dir / "crm.sqlite", demo_dir / "calendars", root / "warehouse.duckdb", root / "dagster_home"
    )
    first = execute_nightly(env)
    counts_first = table_counts(root / "warehouse.duckdb")
    second = execute_nightly(env)
    counts_second = table_counts(root / "warehouse.duckdb")
    return PipelineRun(
        demo_dir,
        demo_dir / "crm.sqlite",
        demo_dir / "calendars",
        root / "warehouse.duckdb",
        env,
        truth,
        first,
        second,
        counts_first,
        counts_second,
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A PostgreSQL server for the warehouse tests: SALESOPS_TEST_POSTGRES_URL, else a private
    throwaway cluster (tests/postgres.py); fails when neither is available."""
    from tests.postgres import postgres_server as start_postgres

    with start_postgres() as server:
        yield server
