"""Optional CRM fields the source lacks (``quality.missing_fields``): a warning check naming them.

A missing optional field (a custom field such as ``Hire_Date__c``, or ``CampaignId``) is loaded as
null instead of refusing its table; the marts that need it are then partial. The check
``optional_fields_present`` (owned by sales-ops coordinators, severity warning) on each raw
Salesforce table names the fields and those marts. SALESOPS_FIELD_MAP points a field at the
org's own column.
"""

from collections.abc import Iterator

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, multi_asset_check

from ingestion.contract import CRM_TABLES, crm_family, raw_table_name
from orchestration.checks.integrity_suites import COORDINATORS
from orchestration.resources import WarehouseResource

CHECK_NAME = "optional_fields_present"


def _missing(warehouse: WarehouseResource) -> dict[str, list[tuple[str, str]]]:
    """Contract table -> [(field, marts left partial)]."""
    store = warehouse.warehouse()
    with store.connect(read_only=True) as connection:
        if not store.table_exists(connection, "quality", "missing_fields"):
            return {}
        rows = connection.execute(
            "SELECT table_name, field, marts FROM quality.missing_fields WHERE source = 'crm' ORDER BY 1, 2"
        ).fetchall()
    missing: dict[str, list[tuple[str, str]]] = {}
    for table, field, marts in rows:
        missing.setdefault(table, []).append((field, marts))
    return missing


def _result(table: str, fields: list[tuple[str, str]]) -> AssetCheckResult:
    metadata: dict[str, object] = {"missing_fields": len(fields)}
    if fields:
        metadata["fields"] = ", ".join(field for field, _ in fields)
        marts = sorted({mart for _, names in fields for mart in names.split(", ") if mart})
        metadata["partial_marts"] = ", ".join(marts) or "none"
    return AssetCheckResult(
        asset_key=AssetKey(["raw", raw_table_name(table)]),
        check_name=CHECK_NAME,
        passed=not fields,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def build_missing_field_checks() -> list:
    """The check on every raw Salesforce table; none with HubSpot (its loader has no contract)."""
    if crm_family() != "salesforce":
        return []

    @multi_asset_check(
        specs=[
            AssetCheckSpec(
                CHECK_NAME,
                asset=AssetKey(["raw", raw_table_name(table)]),
                description=(
                    "Optional fields (custom fields, CampaignId) the CRM table lacks, loaded as null: "
                    "warn, naming the fields and the marts left partial. Owned by sales-ops coordinators."
                ),
                metadata={"owner": COORDINATORS},
            )
            for table in CRM_TABLES
        ],
        name="crm_optional_fields_present",
        op_tags={"owner": COORDINATORS},
    )
    def crm_optional_fields_present(warehouse: WarehouseResource) -> Iterator[AssetCheckResult]:
        missing = _missing(warehouse)
        for table in CRM_TABLES:
            yield _result(table, missing.get(table, []))

    return [crm_optional_fields_present]
