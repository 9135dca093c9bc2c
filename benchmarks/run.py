"""``make bench [PROFILE=S]``: the nightly job at a demo profile, timed, against a floor.

On a fresh warehouse and Dagster instance, through the real command (``python -m orchestration run``
in a subprocess): (a) the full nightly run, (b) an incremental run after a 1% change set,
(c) an incremental run with no change. Per run: wall time, time per stage from the Dagster event
log, rows read per second, peak RSS of the whole process tree. The floor (``benchmarks/floor.py``)
does the same reads and the marts' SQL with nothing else. Writes
``benchmarks/results/<profile>-<YYYY-MM-DD>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks.measure import STAGES, RssSampler, dbt_invocations, load_average, run_timings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_DATA = PROJECT_ROOT / "data" / "bench"
RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
# A fixed snapshot date: the data, and so the figures, do not depend on the day the bench runs.
# The change set moves it one day on, which keeps the calendar expansion window (monthly) in place.
DEFAULT_AS_OF = date(2026, 6, 15)
CHANGE_FRACTION = 0.01
CHANGE_SEED = 7

# The targets (2 cores, 24 GB); the absolute full-run target is stated for profile L.
TARGET_FULL_SECONDS_L = 360
TARGET_PEAK_RSS_BYTES = 4 * 1024**3
TARGET_INCREMENTAL_SHARE = 0.20
TARGET_NO_CHANGE_SECONDS = 60
TARGET_FLOOR_RATIO = 3.0

RUNS = (
    ("full", "full run, fresh warehouse"),
    ("incremental_1pct", "incremental, after a 1% change set"),
    ("no_change", "incremental, no change"),
)


def ensure_source(profile: str, seed: int, as_of: date) -> tuple[Path, float | None]:
    """The generated demo org for (profile, seed, as_of), generated once and cached."""
    root = BENCH_DATA / profile / f"seed{seed}-{as_of.isoformat()}"
    source = root / "source"
    if (source / "ground_truth.json").is_file():
        return source, None
    partial = root / "source.partial"
    shutil.rmtree(partial, ignore_errors=True)
    print(f"generating profile {profile} (seed {seed}, as_of {as_of}) into {source} ...", file=sys.stderr)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ingestion.demo", "generate", "--out", str(partial)]
        + ["--profile", profile, "--seed", str(seed), "--as-of", as_of.isoformat()],
        cwd=PROJECT_ROOT,
        check=True,
    )
    shutil.rmtree(source, ignore_errors=True)
    partial.rename(source)
    return source, round(time.perf_counter() - started, 1)


def fresh_copy(source: Path, target: Path) -> None:
    """A working copy of the org (the change set edits it; the cached source stays as generated)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy2(source / "crm.sqlite", target / "crm.sqlite")
    shutil.copy2(source / "ground_truth.json", target / "ground_truth.json")
    shutil.copytree(source / "calendars", target / "calendars")


def pipeline_env(org: Path, state: Path, as_of: date) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SALESOPS_", "DAGSTER_"))  # nothing of the caller's configuration
    }
    env.update(
        {
            "SALESOPS_CRM_SOURCE": "sql",
            "SALESOPS_CALENDAR_SOURCE": "ics",
            "SALESOPS_CRM_URL": f"sqlite:///{org / 'crm.sqlite'}",
            "SALESOPS_CALENDAR_DIR": str(org / "calendars"),
            "SALESOPS_WAREHOUSE": str(state / "warehouse.duckdb"),
            "SALESOPS_SERVING_PATH": str(state / "serving.duckdb"),
            "SALESOPS_AS_OF": as_of.isoformat(),
            "DAGSTER_HOME": str(state / "dagster_home"),
        }
    )
    return env


def timed_subprocess(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, dict]:
    load_before = load_average()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with RssSampler(process.pid) as sampler:
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    return completed, {
        "wall_seconds": round(wall, 3),
        "peak_rss_mb": round(sampler.peak / 1024**2, 1),
        "peak_rss_largest_processes": sampler.peak_processes,
        # CPU time (user + system) of the whole tree: less sensitive than wall time to other load.
        "cpu_seconds": round(
            cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime, 1
        ),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def run_pipeline(name: str, env: dict[str, str]) -> dict[str, object]:
    print(f"run {name} ...", file=sys.stderr, flush=True)
    completed, measured = timed_subprocess([sys.executable, "-m", "orchestration", "run"], env)
    found = re.search(r"^run id: (\S+)", completed.stdout, re.MULTILINE)
    result: dict[str, object] = {"exit_code": completed.returncode, **measured}
    if completed.returncode != 0 or found is None:
        tail = (completed.stdout + completed.stderr).strip().splitlines()[-15:]
        raise SystemExit(f"run {name} failed (exit {completed.returncode}):\n" + "\n".join(tail))
    result["run_id"] = found.group(1)
    timings = run_timings(Path(env["DAGSTER_HOME"]), found.group(1))
    result.update(timings)
    # dbt's own graph time inside each dbt step; the rest of the step is dbt's start-up, parsing,
    # Dagster's event handling and (marts step) dbt docs generate.
    result["dbt"] = dbt_invocations(PROJECT_ROOT / "dbt_project" / "target", found.group(1))
    stages = timings["stages"]
    # Outside the Dagster run: interpreter start, imports, definitions, the summary after the run.
    stages["process_outside_run"] = round(measured["wall_seconds"] - timings["run_seconds"], 3)
    crm_seconds = stages["ingestion_crm"]
    result["crm_rows_per_second"] = round(timings["crm_rows_read"] / crm_seconds) if crm_seconds else None
    calendar = timings["calendar"]
    calendar_seconds = stages["ingestion_calendar"]
    if calendar and calendar_seconds:
        result["calendar_files_per_second"] = round(calendar["files_parsed"] / calendar_seconds, 1)
        if calendar["files_parsed"] == calendar["files_total"]:
            result["calendar_occurrences_per_second"] = round(
                calendar["occurrences_in_raw"] / calendar_seconds
            )
    return result


def run_floor(org: Path, state: Path, as_of: date) -> dict[str, object]:
    print("floor ...", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "benchmarks.floor", "--crm", str(org / "crm.sqlite")]
    command += ["--calendars", str(org / "calendars"), "--warehouse", str(state / "warehouse.duckdb")]
    command += ["--as-of", as_of.isoformat()]
    completed, measured = timed_subprocess(command, {**os.environ})
    if completed.returncode != 0:
        raise SystemExit(f"floor failed:\n{completed.stderr[-3000:]}")
    floor = {**json.loads(completed.stdout.strip().splitlines()[-1]), **measured}
    floor["cpu_seconds"] = round(floor["cpu_seconds"] - floor["compile_cpu_seconds"], 1)
    # The floor's time is ``total_seconds`` (the timed work); the process also compiled dbt.
    floor["process_wall_seconds"] = floor.pop("wall_seconds")
    return floor


def mart_row_counts(warehouse: Path) -> dict[str, int]:
    from ingestion.warehouse import connect_duckdb

    with connect_duckdb(warehouse, read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
            "AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
        return {t: connection.execute(f'SELECT count(*) FROM marts."{t}"').fetchone()[0] for (t,) in tables}


def git_commit() -> dict[str, object]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def assess(profile: str, runs: dict[str, dict], floor: dict) -> dict[str, dict[str, object]]:
    full = runs["full"]["wall_seconds"]
    peak = max(run["peak_rss_mb"] for run in runs.values())
    targets: dict[str, dict[str, object]] = {
        "full_run_seconds_le_360_at_L": {
            "measured": full,
            "met": full <= TARGET_FULL_SECONDS_L if profile == "L" else None,
        },
        "peak_rss_le_4GB": {"measured_mb": peak, "met": peak * 1024**2 <= TARGET_PEAK_RSS_BYTES},
        "incremental_le_20pct_of_full": {
            "measured_share": round(runs["incremental_1pct"]["wall_seconds"] / full, 3),
            "met": runs["incremental_1pct"]["wall_seconds"] <= TARGET_INCREMENTAL_SHARE * full,
        },
        "no_change_le_60s": {
            "measured": runs["no_change"]["wall_seconds"],
            "met": runs["no_change"]["wall_seconds"] <= TARGET_NO_CHANGE_SECONDS,
        },
        "full_le_3x_floor": {
            "measured_ratio": round(full / floor["total_seconds"], 2),
            "met": full <= TARGET_FLOOR_RATIO * floor["total_seconds"],
        },
    }
    return targets


def stage_seconds(run: dict, stage: str) -> float:
    stages = run["stages"]
    if stage == "dbt_staging+marts":
        return stages["dbt_staging"] + stages["dbt_marts"]
    return stages.get(stage, 0.0)


def render(result: dict) -> str:
    runs = result["runs"]
    names = [name for name, _ in RUNS]
    floor = result["floor"]
    width = 18
    lines = [
        f"salesops bench, profile {result['profile']} (seed {result['seed']}), "
        f"commit {result['git']['commit'][:10]}{' (dirty tree)' if result['git']['dirty'] else ''}, "
        f"{result['machine']['cpus']} cores",
        f"{'seconds':<28}" + "".join(f"{name:>{width}}" for name in names) + f"{'floor':>{width}}",
    ]
    floor_by_stage = {
        "ingestion_crm": floor["crm_seconds"],
        "ingestion_calendar": floor["calendar_seconds"],
        "dbt_staging+marts": floor["marts_sql_seconds"],
    }
    rows = [
        *STAGES[:5],
        "dbt_staging+marts",
        *STAGES[5:],
        "orchestration_between_steps",
        "process_outside_run",
    ]
    for stage in rows:
        cells = "".join(f"{stage_seconds(runs[name], stage):>{width}.1f}" for name in names)
        floor_cell = f"{floor_by_stage[stage]:>{width}.1f}" if stage in floor_by_stage else " " * width
        lines.append(f"  {stage:<26}{cells}{floor_cell}")
    lines.append(
        f"{'wall (whole command)':<28}"
        + "".join(f"{runs[name]['wall_seconds']:>{width}.1f}" for name in names)
        + f"{floor['total_seconds']:>{width}.1f}"
    )
    lines.append(
        f"{'CPU s, process tree':<28}"
        + "".join(f"{runs[name]['cpu_seconds']:>{width}.1f}" for name in names)
        + f"{floor['cpu_seconds']:>{width}.1f}"
    )
    lines.append(
        f"{'peak RSS, process tree (MB)':<28}"
        + "".join(f"{runs[name]['peak_rss_mb']:>{width}.0f}" for name in names)
        + f"{floor['peak_rss_mb']:>{width}.0f}"
    )
    lines.append(
        f"{'CRM rows read':<28}"
        + "".join(f"{runs[name]['crm_rows_read']:>{width}}" for name in names)
        + f"{floor['crm_rows']:>{width}}"
    )
    lines.append(
        f"{'CRM rows / s':<28}"
        + "".join(f"{runs[name]['crm_rows_per_second'] or 0:>{width}}" for name in names)
        + f"{round(floor['crm_rows'] / floor['crm_seconds']):>{width}}"
    )
    lines.append(
        f"{'ICS files parsed':<28}"
        + "".join(f"{runs[name]['calendar'].get('files_parsed', 0):>{width}}" for name in names)
        + f"{floor['calendar']['files']:>{width}}"
    )
    occurrences = runs["full"].get("calendar_occurrences_per_second")
    floor_occurrences = round(floor["calendar"]["calendar_occurrences"] / floor["calendar_seconds"])
    blank = " " * (2 * width)
    lines.append(
        f"{'occurrences / s (full)':<28}{occurrences or 0:>{width}}{blank}{floor_occurrences:>{width}}"
    )
    dbt_lines = []
    for name in names:
        for step, timing in runs[name].get("dbt", {}).items():
            dbt_lines.append(
                f"  {name}/{step}: step {runs[name]['steps'].get(step, 0):.1f} s, "
                f"dbt's own elapsed {timing['dbt_elapsed']:.1f} s"
            )
    if dbt_lines:
        lines.append("dbt steps against dbt's own elapsed time (run_results.json):")
        lines.extend(dbt_lines)
    lines.append("targets:")
    for name, target in result["targets"].items():
        met = {True: "met", False: "MISSED", None: "n/a at this profile"}[target["met"]]
        measured = ", ".join(f"{k}={v}" for k, v in target.items() if k != "met")
        lines.append(f"  {name:<34} {measured:<28} {met}")
    lines.append(f"load average (1, 5, 15 min) before the full run: {runs['full']['load_average_before']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--profile", default="S", type=str.upper)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", type=date.fromisoformat, default=DEFAULT_AS_OF)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    from ingestion.demo.profiles import get_profile

    get_profile(args.profile)  # an unknown profile stops here, before anything is written

    source, generation_seconds = ensure_source(args.profile, args.seed, args.as_of)
    root = source.parent
    org, state, floor_state = root / "org", root / "pipeline", root / "floor"
    fresh_copy(source, org)
    shutil.rmtree(state, ignore_errors=True)  # a fresh warehouse and Dagster instance
    truth = json.loads((source / "ground_truth.json").read_text())
    started_at = datetime.now(UTC)

    runs: dict[str, dict] = {}
    runs["full"] = run_pipeline("full", pipeline_env(org, state, args.as_of))
    pipeline_marts = mart_row_counts(state / "warehouse.duckdb")
    floor = run_floor(org, floor_state, args.as_of)
    floor_marts = mart_row_counts(floor_state / "warehouse.duckdb")
    # The floor builds the dbt marts; the forecast tables come from a Python asset it does not run.
    floor["marts_differing_in_row_count"] = sorted(
        name for name in floor_marts if pipeline_marts.get(name) != floor_marts[name]
    )
    floor["marts_not_built"] = sorted(set(pipeline_marts) - set(floor_marts))

    print("applying a 1% change set ...", file=sys.stderr, flush=True)
    from ingestion.demo import apply_change

    change_started = time.perf_counter()
    changed = apply_change(org, fraction=CHANGE_FRACTION, seed=CHANGE_SEED, quiet=True)
    change_seconds = round(time.perf_counter() - change_started, 1)
    next_as_of = args.as_of + timedelta(days=1)
    runs["incremental_1pct"] = run_pipeline("incremental_1pct", pipeline_env(org, state, next_as_of))
    runs["no_change"] = run_pipeline("no_change", pipeline_env(org, state, next_as_of))

    result = {
        "profile": args.profile,
        "seed": args.seed,
        "as_of": args.as_of.isoformat(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "git": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
            "python": sys.version.split()[0],
        },
        "source": {
            "row_counts": {table: counts["all"] for table, counts in truth["row_counts"].items()},
            "calendar": truth["calendar"],
            "crm_sqlite_mb": round((source / "crm.sqlite").stat().st_size / 1024**2, 1),
            "generation_seconds": generation_seconds,
        },
        "change_set": {
            "fraction": CHANGE_FRACTION,
            "as_of": next_as_of.isoformat(),
            "apply_seconds": change_seconds,
            "rows": changed.data["change_sets"][-1]["rows"],
            "calendar_files_touched": len(changed.data["change_sets"][-1]["calendar_files_touched"]),
        },
        "runs": runs,
        "floor": floor,
        "marts": pipeline_marts,
    }
    result["targets"] = assess(args.profile, runs, floor)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"{args.profile}-{started_at.date().isoformat()}.json"
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    partial.replace(path)
    print(render(result))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
