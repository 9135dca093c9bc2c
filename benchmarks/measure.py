"""Measuring a run: peak RSS of a process tree (from /proc) and stage times from Dagster's event log."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# Stages of the nightly job, by the Dagster step that does the work (in-process executor: steps run
# one after the other, so a stage's time is the sum of its steps' times).
STAGES = (
    "ingestion_crm",
    "ingestion_calendar",
    "checks",
    "dbt_staging",
    "dbt_marts",
    "forecast",
    "publish",
)


def stage_of(step_key: str) -> str:
    if step_key.startswith("raw__"):
        return "ingestion_crm"
    if step_key == "raw_calendar":
        return "ingestion_calendar"
    if step_key == "dbt_staging_models":
        return "dbt_staging"
    if step_key == "dbt_mart_models":
        return "dbt_marts"
    if step_key.startswith("sales_forecast"):
        return "forecast"
    if step_key.startswith("serving__"):
        return "publish"
    return "checks"  # GX suites, table health, quarantine, freshness: every check-only step


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_rss(root: int) -> dict[int, int]:
    """Resident memory of ``root`` and each of its descendants, by pid."""
    children = _children_map()
    sizes: dict[int, int] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                sizes[pid] = int(handle.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(pid, ()))
    return sizes


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, summed."""
    return sum(tree_rss(root).values())


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            parts = handle.read().split(b"\0")
    except OSError:
        return "?"
    words = [Path(part.decode(errors="replace")).name for part in parts[:4] if part]
    return " ".join(words)[:80]


class RssSampler:
    """Samples the process tree's RSS every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.peak_processes: list[tuple[str, float]] = []  # (command, MB) at the peak, largest first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = tree_rss(self.pid)
            total = sum(sizes.values())
            if total > self.peak:
                self.peak = total
                largest = sorted(sizes.items(), key=lambda item: -item[1])[:4]
                self.peak_processes = [(_command(pid), round(size / 1024**2, 1)) for pid, size in largest]
            self._stop.wait(self.interval)


def run_timings(dagster_home: Path, run_id: str) -> dict[str, object]:
    """Per-step and per-stage seconds, and what the ingestion steps read, from the run's event log."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        run_stats = instance.get_run_stats(run_id)
        steps = {
            stat.step_key: round((stat.end_time or 0.0) - (stat.start_time or 0.0), 3)
            for stat in instance.get_run_step_stats(run_id)
            if stat.start_time is not None
        }
        materializations = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        loads = _load_metadata(entry.asset_materialization for entry in materializations)
    stages = dict.fromkeys(STAGES, 0.0)
    for step, seconds in steps.items():
        stages[stage_of(step)] += seconds
    run_seconds = (run_stats.end_time or 0.0) - (run_stats.start_time or 0.0)
    stages = {name: round(seconds, 3) for name, seconds in stages.items()}
    # Between steps: Dagster's own bookkeeping (event log writes, check planning, step launch).
    stages["orchestration_between_steps"] = round(run_seconds - sum(steps.values()), 3)
    return {"run_seconds": round(run_seconds, 3), "stages": stages, "steps": steps, **loads}


def _load_metadata(materializations: Iterable[object]) -> dict[str, object]:
    crm_rows = 0
    calendar: dict[str, int] = {}
    for materialization in materializations:
        if materialization is None:
            continue
        key = materialization.asset_key.path  # type: ignore[attr-defined]
        meta = {name: value.value for name, value in materialization.metadata.items()}  # type: ignore[attr-defined]
        if key[0] != "raw":
            continue
        if meta.get("source") == "calendar" and key[-1] == "calendar_occurrences":
            calendar = {
                "files_total": int(meta.get("files_total", 0)),
                "files_parsed": int(meta.get("files_parsed", 0)),
                "occurrences_in_raw": int(meta.get("rows_in_raw", 0)),
            }
        elif "rows_read" in meta:
            crm_rows += int(meta["rows_read"])
    return {"crm_rows_read": crm_rows, "calendar": calendar}


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def now() -> float:
    return time.perf_counter()


def dbt_invocations(dbt_target: Path, run_id: str) -> dict[str, dict[str, float]]:
    """dbt's own timing of each ``dbt build`` in the run (its run_results.json), to set against the step.

    dagster-dbt gives every invocation its own target folder, ``<step>-<run id[:7]>-<hash>``; best
    effort: an absent or unreadable folder is skipped.
    """
    import json

    found: dict[str, dict[str, float]] = {}
    for folder in sorted(dbt_target.glob(f"*-{run_id[:7]}-*")):
        results = folder / "run_results.json"
        try:
            data = json.loads(results.read_text())
        except (OSError, ValueError):
            continue
        by_kind: dict[str, float] = {}
        for node in data.get("results", []):
            kind = node["unique_id"].split(".", 1)[0]
            by_kind[kind] = by_kind.get(kind, 0.0) + float(node.get("execution_time") or 0.0)
        found[folder.name.split("-", 1)[0]] = {
            "dbt_elapsed": round(float(data.get("elapsed_time") or 0.0), 3),
            **{f"{kind}_execution_sum": round(seconds, 3) for kind, seconds in sorted(by_kind.items())},
        }
    return found
