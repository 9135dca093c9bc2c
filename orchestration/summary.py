"""The end-of-run summary printed by ``make run``: rows per source, checks, marts, warehouse."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterEvent, ExecuteInProcessResult

from ingestion.source_quarantine import quarantined
from ingestion.warehouse import Warehouse


@dataclass
class RunSummary:
    success: bool
    warehouse: str
    sources: dict[str, dict[str, object]] = field(default_factory=dict)
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    marts: dict[str, int] = field(default_factory=dict)
    quarantine: dict[str, int] = field(default_factory=dict)
    isolated: list[str] = field(default_factory=list)  # QuarantinedSource.describe() of each
    missing_fields: list[str] = field(default_factory=list)  # "user.Hire_Date__c (onboarding_progress)"
    hygiene: dict[str, int] = field(default_factory=dict)
    planted: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    serving: str | None = None
    forecast_mape: dict[str, float] = field(default_factory=dict)
    unchanged_since_run: str | None = None

    def render(self) -> str:
        lines = [f"salesops nightly run: {'succeeded' if self.success else 'FAILED'}"]
        for message in self.errors:
            lines.append(f"error: {message}")
        lines.append("rows per source table (read this run / now in raw):")
        for name, meta in sorted(self.sources.items()):
            if "rows_read" in meta:
                read = f"{meta['rows_read']:>10}"
            else:
                read = f"{meta.get('files_parsed', 0)}/{meta.get('files_total', 0)} files"
            line = f"  {name:<40} {read:>16} / {meta.get('rows_in_raw', '')!s:>10}"
            if meta.get("absent_from_source"):
                line += "  (optional, not in the source)"
            elif meta.get("set_aside"):
                line += "  (set aside: last good rows kept)"
            lines.append(line)
        lines.append(f"checks: {self.checks_passed} passed, {len(self.checks_failed)} failed")
        for failed in self.checks_failed:
            lines.append(f"  failed: {failed}")
        lines.append(f"quarantined records: {sum(self.quarantine.values())}")
        for name, count in sorted(self.quarantine.items()):
            lines.append(f"  {name:<48} {count:>10}")
        if self.isolated:
            lines.append(f"sources isolated (set aside, last good rows kept): {len(self.isolated)}")
            lines.extend(f"  {description}" for description in self.isolated)
        if self.missing_fields:
            lines.append(f"optional CRM fields missing, loaded as null: {len(self.missing_fields)}")
            lines.extend(f"  {description}" for description in self.missing_fields)
        if self.hygiene:
            planted = " (planted by the demo generator)" if self.planted else ""
            lines.append(f"CRM hygiene worklist, records to fix{planted}:")
            for name, count in sorted(self.hygiene.items()):
                truth = f" ({self.planted[name]})" if name in self.planted else ""
                lines.append(f"  {name:<48} {count:>10}{truth}")
        if self.forecast_mape:
            lines.append("forecast backtest, org-level MAPE over the last 8 completed months:")
            for method, mape in self.forecast_mape.items():
                lines.append(f"  {method:<48} {mape:>10.1%}")
        lines.append(f"marts built: {len(self.marts)}")
        for name, rows in sorted(self.marts.items()):
            lines.append(f"  marts.{name:<36} {rows:>10} rows")
        lines.append(f"warehouse: {self.warehouse}")
        data_dir = Path(self.warehouse).parent
        for label, page in (
            ("data quality docs (Great Expectations)", data_dir / "data_docs" / "index.html"),
            ("dbt docs", data_dir / "dbt_docs" / "index.html"),
        ):
            if page.exists():
                lines.append(f"{label}: {page}")
        if self.unchanged_since_run:
            lines.append(
                f"inputs unchanged since run {self.unchanged_since_run}: marts, their checks, the serving "
                f"database and the report were not rebuilt (SALESOPS_FORCE_REBUILD=1 rebuilds them)"
            )
        lines.append(
            f"serving database for BI tools: {self.serving}"
            if self.serving
            else "serving database: not published this run (the previous one, if any, is unchanged)"
        )
        return "\n".join(lines)


def step_failure_message(event: DagsterEvent) -> str:
    """One line for a failed step: our own error's text, or the innermost exception's first line."""
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    if data.error is not None:
        return f"step {event.step_key}: {_root_cause(data.error)}"
    return f"step {event.step_key} failed"


def failure_messages(result: ExecuteInProcessResult) -> list[str]:
    """One line per distinct failure (a source that is down fails every table the same way)."""
    messages: list[str] = []
    for event in result.get_step_failure_events():
        message = step_failure_message(event)
        if message not in messages:
            messages.append(message)
    return messages


def _root_cause(error: object) -> str:
    """The innermost error's first line: what actually went wrong, not Dagster's wrapper."""
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    message = getattr(error, "message", str(error)).strip()
    return message.splitlines()[0] if message else type(error).__name__


def summarize(result: ExecuteInProcessResult, warehouse_path: str) -> RunSummary:
    summary = RunSummary(success=result.success, warehouse=warehouse_path)
    summary.errors = failure_messages(result)
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization is None:
            continue
        if materialization.asset_key.path == ["serving", "marts"]:
            summary.serving = str(materialization.metadata["path"].value)
        if materialization.asset_key.path[0] != "raw":
            continue
        metadata = {key: value.value for key, value in materialization.metadata.items()}
        summary.sources[materialization.asset_key.to_user_string()] = metadata
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            summary.checks_passed += 1
        else:
            rules = evaluation.metadata.get("failed_rules")
            summary.checks_failed.append(
                f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
                f"({evaluation.severity.value.lower()})" + (f": {rules.value}" if rules is not None else "")
            )
    built_layers = {
        event.materialization.asset_key.path[0]
        for event in result.get_asset_materialization_events()
        if event.materialization is not None
    }
    if result.success and "staging" not in built_layers:
        summary.unchanged_since_run = last_published_run_id(Warehouse(warehouse_path))
    summary.marts = mart_row_counts(Path(warehouse_path))
    summary.quarantine, summary.hygiene = quality_counts(Path(warehouse_path))
    summary.isolated = isolated_sources(Path(warehouse_path))
    summary.missing_fields = missing_fields(Path(warehouse_path))
    summary.planted = planted_defects()
    summary.forecast_mape = forecast_mape(Path(warehouse_path))
    return summary


def last_published_run_id(warehouse: Warehouse) -> str | None:
    with warehouse.connect(read_only=True) as connection:
        if not warehouse.table_exists(connection, "meta", "published_inputs"):
            return None
        row = connection.execute(
            "SELECT dagster_run_id FROM meta.published_inputs ORDER BY published_at DESC LIMIT 1"
        ).fetchone()
    return row[0] if row else None


def quality_counts(warehouse_path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Quarantined records by table and rule, and worklist records by hygiene check."""
    if not warehouse_path.exists():
        return {}, {}
    warehouse = Warehouse(warehouse_path)
    with warehouse.connect(read_only=True) as connection:
        quarantine: dict[str, int] = {}
        if warehouse.table_exists(connection, "quality", "quarantine"):
            for table, rule, count in connection.execute(
                "SELECT source_table, rule, count(*) FROM quality.quarantine GROUP BY 1, 2"
            ).fetchall():
                quarantine[f"{table}.{rule}"] = count
        hygiene: dict[str, int] = {}
        if warehouse.table_exists(connection, "marts", "crm_data_quality"):
            hygiene = dict(
                connection.execute(
                    "SELECT check_name, sum(record_count)::BIGINT FROM marts.crm_data_quality GROUP BY 1"
                ).fetchall()
            )
    return quarantine, hygiene


def isolated_sources(warehouse_path: Path) -> list[str]:
    """Each source set aside whole (a calendar file, a CRM table), one line each, oldest first."""
    if not warehouse_path.exists():
        return []
    with Warehouse(warehouse_path).connect(read_only=True) as connection:
        return [entry.describe() for entry in quarantined(connection)]


def missing_fields(warehouse_path: Path) -> list[str]:
    """Optional CRM fields the source lacks, each with the marts it leaves partial."""
    if not warehouse_path.exists():
        return []
    store = Warehouse(warehouse_path)
    with store.connect(read_only=True) as connection:
        if not store.table_exists(connection, "quality", "missing_fields"):
            return []
        rows = connection.execute(
            "SELECT table_name, field, marts FROM quality.missing_fields ORDER BY 1, 2"
        ).fetchall()
    return [f"{table}.{name}" + (f" ({marts} partial)" if marts else "") for table, name, marts in rows]


def forecast_mape(warehouse_path: Path) -> dict[str, float]:
    from orchestration.assets.forecast import read_method_mape

    if not warehouse_path.exists():
        return {}
    with Warehouse(warehouse_path).connect(read_only=True) as connection:
        return read_method_mape(connection)


def planted_defects() -> dict[str, int]:
    """The demo generator's ground truth, when the CRM is a SQLite file that has one beside it."""
    url = os.environ.get("SALESOPS_CRM_URL", "")
    if not url.startswith("sqlite:///"):
        return {}
    truth = Path(url.removeprefix("sqlite:///")).with_name("ground_truth.json")
    if not truth.is_file():
        return {}
    defects = json.loads(truth.read_text()).get("defects", {})
    return {name: int(defect["count"]) for name, defect in defects.items()}


def mart_row_counts(warehouse_path: Path) -> dict[str, int]:
    if not warehouse_path.exists():
        return {}
    warehouse = Warehouse(warehouse_path)
    with warehouse.connect(read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY 1"
        ).fetchall()
        return {name: warehouse.row_count(connection, "marts", name) for (name,) in tables}
