"""Sources set aside whole (``quality.source_quarantine``): a warning check naming each one.

A calendar file that cannot be parsed, or a CRM table refused by its shape, is quarantined by its
loader while the run goes on with the source's last good rows (ingestion/source_quarantine.py).
The check ``sources_not_quarantined`` (owned by sales-ops coordinators, severity warning) fails
while any is there and names it: on each raw CRM table for that table, on
``raw/calendar_occurrences`` for calendar files (and any other source, so that every quarantined
source is named by one check). It never blocks: the marts are built from everything else.
"""

from collections.abc import Iterator, Sequence

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    asset_check,
    multi_asset_check,
)

from ingestion.calendar_load import OCCURRENCES_TABLE
from ingestion.contract import crm_raw_tables, raw_table_name
from ingestion.hubspot_api import raw_table_name as hubspot_raw_table_name
from ingestion.source_quarantine import QuarantinedSource, quarantined
from orchestration.checks.integrity_suites import COORDINATORS
from orchestration.resources import WarehouseResource

CHECK_NAME = "sources_not_quarantined"
CALENDAR_ASSET = AssetKey(["raw", OCCURRENCES_TABLE])
CRM_RAW_TABLES = tuple(crm_raw_tables())


def quarantine_result(entries: Sequence[QuarantinedSource], asset_key: AssetKey) -> AssetCheckResult:
    """Passes when nothing is quarantined; else warns, naming each source, its line and reason."""
    metadata: dict[str, object] = {"quarantined_sources": len(entries)}
    if entries:
        metadata["quarantined"] = MetadataValue.md(
            "\n".join(
                ["| source | object | mailbox | line | rule | reason | first seen | last seen |"]
                + ["| --- | --- | --- | --- | --- | --- | --- | --- |"]
                + [
                    f"| {e.source} | {_cell(e.object)} | {_cell(e.mailbox or '')} | {e.line or ''} | "
                    f"{e.rule} | {_cell(e.reason)} | {e.first_seen:%Y-%m-%d %H:%M} | "
                    f"{e.last_seen:%Y-%m-%d %H:%M} |"
                    for e in entries
                ]
            )
        )
        metadata["sources"] = MetadataValue.text("\n".join(e.describe() for e in entries))
        metadata["failed_rules"] = MetadataValue.text("; ".join(f"{e.rule} on '{e.object}'" for e in entries))
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=CHECK_NAME,
        passed=not entries,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def crm_raw_table_of(obj: str) -> str:
    """The raw table of a quarantined CRM object: a contract table (``opportunity``), a HubSpot
    object (``deals``) or the raw table itself."""
    for name in (obj, obj.lower()):
        for candidate in (name, raw_table_name(name), hubspot_raw_table_name(name)):
            if candidate in CRM_RAW_TABLES:
                return candidate
    return obj


def _quarantined(warehouse: WarehouseResource) -> list[QuarantinedSource]:
    store = warehouse.warehouse()
    with store.connect(read_only=True) as connection:
        return quarantined(connection)


def _on_crm_table(entry: QuarantinedSource) -> bool:
    return entry.source == "crm" and crm_raw_table_of(entry.object) in CRM_RAW_TABLES


@asset_check(
    asset=CALENDAR_ASSET,
    name=CHECK_NAME,
    description=(
        "Calendar files that could not be parsed, quarantined with their mailbox, line and reason "
        "(their mailbox keeps its last good rows), and any other quarantined source that belongs "
        "to no raw CRM table: warn while any. Owned by sales-ops coordinators."
    ),
    metadata={"owner": COORDINATORS},
    op_tags={"owner": COORDINATORS},
)
def calendar_sources_not_quarantined(warehouse: WarehouseResource) -> AssetCheckResult:
    entries = [entry for entry in _quarantined(warehouse) if not _on_crm_table(entry)]
    return quarantine_result(entries, CALENDAR_ASSET)


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            CHECK_NAME,
            asset=AssetKey(["raw", table]),
            description=(
                "The CRM table refused whole by its shape, set aside with its last good rows kept: "
                "warn while it is. Owned by sales-ops coordinators."
            ),
            metadata={"owner": COORDINATORS},
        )
        for table in CRM_RAW_TABLES
    ],
    name="crm_sources_not_quarantined",
    op_tags={"owner": COORDINATORS},
)
def crm_sources_not_quarantined(warehouse: WarehouseResource) -> Iterator[AssetCheckResult]:
    by_table: dict[str, list[QuarantinedSource]] = {}
    for entry in filter(_on_crm_table, _quarantined(warehouse)):
        by_table.setdefault(crm_raw_table_of(entry.object), []).append(entry)
    for table in CRM_RAW_TABLES:
        yield quarantine_result(by_table.get(table, []), AssetKey(["raw", table]))


source_quarantine_checks = [calendar_sources_not_quarantined, crm_sources_not_quarantined]
