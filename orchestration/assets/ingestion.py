"""Ingestion assets: one per CRM table and one for the calendar folder, written into schema raw."""

from datetime import UTC, date, datetime, time, timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from ingestion.calendar_ics import ExpansionWindow
from ingestion.calendar_load import ATTENDEES_TABLE, OCCURRENCES_TABLE
from ingestion.contract import CRM_TABLES, crm_family, raw_table_name
from ingestion.crm_load import LoadResult, load_crm_table
from ingestion.errors import SourceError
from ingestion.hubspot_api import raw_table_name as hubspot_raw_table_name
from ingestion.hubspot_load import HISTORY_TABLE
from orchestration import settings
from orchestration.resources import CalendarResource, CrmResource, WarehouseResource

INGESTION_GROUP = "ingestion"
INGESTION_OWNERS = ["team:data-engineering"]
CALENDAR_HISTORY_FALLBACK_DAYS = 730


def raw_asset_key(table: str) -> AssetKey:
    return AssetKey(["raw", table])


def _build_crm_asset(crm_table: str) -> AssetsDefinition:
    raw_table = raw_table_name(crm_table)

    @asset(
        key=raw_asset_key(raw_table),
        group_name=INGESTION_GROUP,
        owners=INGESTION_OWNERS,
        kinds={"sql", "duckdb"},
        description=(
            f"CRM object '{crm_table}' copied into raw.{raw_table}: incremental on SystemModstamp "
            "with an overlap window, upserted on Id, deleted rows kept (IsDeleted)."
        ),
    )
    def crm_table_asset(
        context: AssetExecutionContext, crm: CrmResource, warehouse: WarehouseResource
    ) -> MaterializeResult:
        reader = crm.reader()  # type: ignore[attr-defined]
        try:
            result = load_crm_table(
                reader,
                warehouse.warehouse(),
                crm_table,
                overlap=timedelta(hours=crm.overlap_hours),
            )
        except SourceError as error:
            raise Failure(description=str(error), allow_retries=False) from None
        finally:
            reader.close()
        if result.refused:
            context.log.warning(f"{crm_table} set aside, its last good rows kept: {result.refused}")
        context.log.info(
            f"{crm_table}: read {result.rows_read} rows, {result.rows_in_raw} in raw.{raw_table}"
        )
        return MaterializeResult(metadata=_load_metadata(result))

    crm_table_asset.__name__ = f"raw_{raw_table}"
    return crm_table_asset


def _load_metadata(result: LoadResult) -> dict[str, object]:
    extra: dict[str, object] = {}
    if result.missing_fields:
        extra["missing_optional_fields"] = ", ".join(result.missing_fields)
    if result.absent:
        extra["absent_from_source"] = True
    if result.refused:
        extra["set_aside"] = result.refused
    return {
        **extra,
        "source": result.source,
        "rows_read": result.rows_read,
        "rows_rejected": result.rows_rejected,
        "rows_in_raw": result.rows_in_raw,
        "full_load": result.full_load,
        "cursor": str(result.cursor_after) if result.cursor_after else "none",
        "batch_id": result.batch_id,
        "dagster/row_count": result.rows_in_raw,
    }


def _build_hubspot_asset(name: str) -> AssetsDefinition:
    """One HubSpot object (deals also write their property history) or listing into raw."""
    raw_table = hubspot_raw_table_name(name)
    keys = [raw_asset_key(raw_table)]
    if name == "deals":
        keys.append(raw_asset_key(HISTORY_TABLE))
    specs = [
        AssetSpec(
            key,
            group_name=INGESTION_GROUP,
            owners=INGESTION_OWNERS,
            kinds={"hubspot", "duckdb"},
            description=HUBSPOT_DESCRIPTIONS.get(key.path[-1], HUBSPOT_DESCRIPTIONS["object"]).format(
                name=name, table=key.path[-1]
            ),
        )
        for key in keys
    ]

    @multi_asset(specs=specs, name=f"raw_{raw_table}")
    def hubspot_asset(context: AssetExecutionContext, crm: CrmResource, warehouse: WarehouseResource):
        from ingestion.hubspot_load import load_hubspot_deal_stages, load_hubspot_object, load_hubspot_owners

        reader = crm.reader()  # type: ignore[attr-defined]
        store = warehouse.warehouse()
        try:
            if name == "owners":
                result = load_hubspot_owners(reader, store)
            elif name == "deal_stages":
                result = load_hubspot_deal_stages(reader, store)
            else:
                obj = reader.objects[name]
                overlap = timedelta(hours=crm.overlap_hours)
                result = load_hubspot_object(reader, store, obj, overlap, min(crm.batch_size, 10_000))
        except SourceError as error:
            raise Failure(description=str(error), allow_retries=False) from None
        finally:
            reader.close()
        context.log.info(f"hubspot {name}: read {result.rows_read} rows, {result.rows_in_raw} in raw")
        yield MaterializeResult(asset_key=keys[0], metadata=_load_metadata(result))
        if name == "deals":
            with store.connect(read_only=True) as connection:
                history_rows = store.row_count(connection, "raw", HISTORY_TABLE)
                written = connection.execute(
                    f"SELECT count(*) FROM raw.{HISTORY_TABLE} WHERE _batch_id = ?", [result.batch_id]
                ).fetchone()[0]
            yield MaterializeResult(
                asset_key=keys[1],
                metadata={
                    "source": "hubspot",
                    "rows_read": written,
                    "batch_id": result.batch_id,
                    "rows_in_raw": history_rows,
                    "dagster/row_count": history_rows,
                },
            )

    return hubspot_asset


HUBSPOT_DESCRIPTIONS = {
    "object": (
        "HubSpot {name} copied into raw.{table}: searched incrementally on the last-modified date "
        "with an overlap window, resumable by id, archived records listed, associations attached."
    ),
    "hubspot_owners": "HubSpot owners, active and archived, with their primary team: read whole every run.",
    "hubspot_deal_stages": "Stages of every HubSpot deal pipeline: read whole every run.",
    "hubspot_deal_property_history": (
        "Every recorded value of each deal's stage, amount, close date, probability and forecast "
        "category (propertiesWithHistory), rewritten for every deal that changed."
    ),
}
HUBSPOT_LOAD_ORDER = (
    "owners",
    "deal_stages",
    "companies",
    "contacts",
    "deals",
    "calls",
    "emails",
    "meetings",
    "tasks",
)

crm_assets: list[AssetsDefinition] = (
    [_build_hubspot_asset(name) for name in HUBSPOT_LOAD_ORDER]
    if crm_family() == "hubspot"
    else [_build_crm_asset(table) for table in CRM_TABLES]
)


def expansion_window(history_start: datetime | None, as_of: date, future_days: int) -> ExpansionWindow:
    """From the month the CRM's history starts to the month after as_of + future_days.

    Month boundaries keep the window stable from night to night, so unchanged files
    are not re-parsed just because the date moved.
    """
    start_day = (
        history_start.date() if history_start else as_of - timedelta(days=CALENDAR_HISTORY_FALLBACK_DAYS)
    )
    end_day = as_of + timedelta(days=future_days)
    end_month = date(end_day.year + end_day.month // 12, end_day.month % 12 + 1, 1)
    return ExpansionWindow(
        start=datetime.combine(start_day.replace(day=1), time(), tzinfo=UTC),
        end=datetime.combine(end_month, time(), tzinfo=UTC),
    )


def crm_history_start(crm: CrmResource, context: AssetExecutionContext) -> datetime | None:
    """Where the CRM's history starts, read from the source so calendars never wait on CRM loads."""
    reader = crm.reader()  # type: ignore[attr-defined]
    try:
        return reader.earliest_created_at()
    except SourceError as error:
        context.log.warning(f"calendar window falls back to {CALENDAR_HISTORY_FALLBACK_DAYS} days: {error}")
        return None
    finally:
        reader.close()


@multi_asset(
    specs=[
        AssetSpec(
            raw_asset_key(OCCURRENCES_TABLE),
            description="Calendar occurrences from the mailbox ICS files, recurring series expanded.",
            group_name=INGESTION_GROUP,
            owners=INGESTION_OWNERS,
            kinds={"ics", "duckdb"},
        ),
        AssetSpec(
            raw_asset_key(ATTENDEES_TABLE),
            description="Attendees of each calendar occurrence, per mailbox copy.",
            group_name=INGESTION_GROUP,
            owners=INGESTION_OWNERS,
            kinds={"ics", "duckdb"},
        ),
    ],
    name="raw_calendar",
)
def calendar_assets(
    context: AssetExecutionContext,
    calendar: CalendarResource,
    crm: CrmResource,
    warehouse: WarehouseResource,
):
    """Every mailbox's calendar into raw. A file that cannot be parsed is set aside (quarantined,
    its mailbox's last good rows kept) and named in the metadata: the asset still materializes.
    A missing folder, or a source failure (``calendar.failure``), stops the night."""
    store = warehouse.warehouse()
    window = expansion_window(crm_history_start(crm, context), settings.as_of(), calendar.future_days)
    try:
        result = calendar.load(store, window)  # type: ignore[attr-defined]
    except SourceError as error:
        raise Failure(description=str(error), allow_retries=False) from None
    error = calendar.failure(result)  # type: ignore[attr-defined]
    if error is not None:
        raise Failure(description=str(error), allow_retries=False)
    for line in result.quarantined:
        context.log.warning(f"{line}: quarantined, its mailbox keeps its last good rows")
    for file in result.released:
        context.log.info(f"calendar file '{file}' left quarantine")
    context.log.info(
        f"calendar: {result.files_parsed} files parsed, {result.files_unchanged} unchanged, "
        f"{len(result.quarantined)} quarantined, {result.occurrences_in_raw} occurrences"
    )
    shared = {
        "source": "calendar",
        "files_total": result.files_total,
        "files_parsed": result.files_parsed,
        "files_unchanged": result.files_unchanged,
        "files_removed": result.files_removed,
        "files_quarantined": len(result.quarantined),
        "calendar_problems": result.problems,
        "window": MetadataValue.text(f"{window.start:%Y-%m-%d} to {window.end:%Y-%m-%d}"),
        "batch_id": result.batch_id,
    }
    if result.quarantined:
        shared["quarantined_files"] = MetadataValue.text("\n".join(result.quarantined))
    if result.released:
        shared["released_files"] = MetadataValue.text("\n".join(result.released))
    yield MaterializeResult(
        asset_key=raw_asset_key(OCCURRENCES_TABLE),
        metadata={
            **shared,
            "rows_in_raw": result.occurrences_in_raw,
            "dagster/row_count": result.occurrences_in_raw,
        },
    )
    yield MaterializeResult(
        asset_key=raw_asset_key(ATTENDEES_TABLE),
        metadata={
            **shared,
            "rows_in_raw": result.attendees_in_raw,
            "dagster/row_count": result.attendees_in_raw,
        },
    )


ingestion_assets: list[AssetsDefinition] = [*crm_assets, calendar_assets]
