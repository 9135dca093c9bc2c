"""``python -m orchestration run``: set up, make demo data if absent, run the nightly job once."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from orchestration import settings

EXIT_LOCKED = 3  # another run holds the warehouse's run lock; nothing was started


def ensure_demo_data() -> None:
    """Write the demo CRM and calendars when the pipeline points at them and they are absent."""
    if not settings.uses_demo_crm():
        return
    crm_file = settings.DEMO_DIR / "crm.sqlite"
    calendars = settings.DEMO_DIR / "calendars"
    if crm_file.exists() and calendars.is_dir():
        return
    from ingestion.demo import generate

    print(f"writing demo data to {settings.DEMO_DIR} ...", file=sys.stderr)
    generate(settings.DEMO_DIR, as_of=settings.as_of())


def run_nightly(verbose: bool = False, wait: bool = False) -> int:
    from orchestration.run_lock import RunLockBusy, run_lock

    try:
        with run_lock(os.environ["SALESOPS_WAREHOUSE"], wait=wait):
            return _run_nightly_locked(verbose)
    except RunLockBusy as busy:
        print(f"error: {busy}", file=sys.stderr)
        return EXIT_LOCKED


def _run_nightly_locked(verbose: bool) -> int:
    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from orchestration.jobs import NIGHTLY_JOB_NAME
    from orchestration.summary import summarize

    job = defs.resolve_job_def(NIGHTLY_JOB_NAME)
    # When nothing changed, the dbt steps skip on purpose and their tests emit no result; Dagster
    # logs a warning per test for that. The summary says why instead.
    logging.getLogger("dagster._core.execution.plan.active").setLevel(logging.ERROR)
    log_level = "INFO" if verbose else "CRITICAL"  # the summary reports failures
    log_path = run_log_path()
    # dbt's own progress lines go to the run log unless --verbose.
    with (
        DagsterInstance.get() as instance,
        log_path.open("w") as log_file,
        contextlib.redirect_stdout(sys.stdout if verbose else log_file),
    ):
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
    summary = summarize(result, os.environ["SALESOPS_WAREHOUSE"])
    print(summary.render())
    print(f"run id: {result.run_id} (open it with `make ui`); dbt log: {log_path}")
    return 0 if result.success else 1


def run_log_path() -> Path:
    logs = Path(os.environ["SALESOPS_WAREHOUSE"]).parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / "last_run_dbt.log"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="salesops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole nightly job once and print a summary")
    run.add_argument("--as-of", help="reference date YYYY-MM-DD (default: SALESOPS_AS_OF or today)")
    run.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    run.add_argument("--wait", action="store_true", help="wait for a run already in progress, not refuse")
    commands.add_parser("demo", help="write the demo CRM and calendars if absent")
    args = parser.parse_args(argv)

    if getattr(args, "as_of", None):
        os.environ["SALESOPS_AS_OF"] = args.as_of
    try:
        settings.apply_defaults()
        settings.as_of()
        settings.validate_crm_settings()
        ensure_demo_data()
        if args.command == "demo":
            return 0
        return run_nightly(verbose=args.verbose, wait=args.wait)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
