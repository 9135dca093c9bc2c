"""Jobs: the nightly job materializes every asset and runs every check."""

from __future__ import annotations

import os

from dagster import AssetSelection, Executor, ExecutorDefinition, define_asset_job, in_process_executor

from orchestration.run_lock import run_lock

NIGHTLY_JOB_NAME = "nightly"


class _RunLockedExecutor(Executor):
    """The in-process executor, holding the warehouse's run lock (orchestration/run_lock.py)
    while the steps run: a second run of the job on the same warehouse refuses to start."""

    def __init__(self, inner: Executor) -> None:
        self._inner = inner

    @property
    def retries(self):  # type: ignore[override]
        return self._inner.retries

    @property
    def step_dependency_config(self):  # type: ignore[override]
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan):  # type: ignore[override]
        with run_lock(os.environ["SALESOPS_WAREHOUSE"]):
            yield from self._inner.execute(plan_context, execution_plan)


run_locked_in_process_executor = ExecutorDefinition(
    name="run_locked_in_process",
    config_schema=in_process_executor.config_schema,
    requirements=in_process_executor.get_requirements,
    executor_creation_fn=lambda init_context: _RunLockedExecutor(
        in_process_executor.executor_creation_fn(init_context)
    ),
    description="In-process executor holding the warehouse's run lock.",
)

# One process: DuckDB allows a single writer, and the steps share the warehouse file.
nightly_job = define_asset_job(
    NIGHTLY_JOB_NAME,
    selection=AssetSelection.all(),
    executor_def=run_locked_in_process_executor,
    description="CRM and calendar ingestion, integrity checks, dbt staging and metric marts.",
)
