"""Dagster resources: the warehouse and the sources, configured from the environment.

The CRM and the calendars each have one resource key (``crm``, ``calendar``); which class sits
behind it is chosen by SALESOPS_CRM_SOURCE (sql | salesforce | hubspot) and SALESOPS_CALENDAR_SOURCE
(ics | google) in ``orchestration/definitions.py``. Credentials only come from ``EnvVar``s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from dagster import ConfigurableResource, EnvVar

from ingestion.calendar_ics import ExpansionWindow
from ingestion.calendar_load import CalendarLoadResult, load_calendar_folder
from ingestion.crm_sql import SqlCrmReader
from ingestion.errors import SourceError
from ingestion.warehouse import Warehouse


class WarehouseResource(ConfigurableResource):
    """The DuckDB warehouse file that raw, staging and mart tables live in."""

    path: str

    def warehouse(self) -> Warehouse:
        return Warehouse(self.path)


class CrmReader(Protocol):
    def describe(self, contract_name: str, require_contract: bool = True): ...
    def iter_batches(self, table, since, overlap): ...
    def earliest_created_at(self): ...
    def close(self) -> None: ...


class CrmResource(ConfigurableResource):
    """Any CRM source. Subclasses provide ``reader() -> CrmReader``, a reader that streams the
    contract's tables as Arrow batches of text (see ``ingestion/crm_sql.py``)."""

    batch_size: int = 50_000
    overlap_hours: int = 24
    # SALESOPS_REPLICA_SHAPE and SALESOPS_FIELD_MAP (ingestion/replica_shape.py)
    replica_shape: str = ""
    field_map: str = ""


class CrmSqlResource(CrmResource):
    """A SQL replica of the Salesforce org, reachable through any SQLAlchemy URL."""

    url: str

    def reader(self) -> SqlCrmReader:
        from ingestion.replica_shape import parse_field_map, parse_shapes

        return SqlCrmReader(
            self.url,
            batch_size=self.batch_size,
            shapes=parse_shapes(self.replica_shape),
            field_map=parse_field_map(self.field_map),
        )


class SalesforceApiResource(CrmResource):
    """Salesforce's REST API, through a connected app's OAuth refresh token."""

    login_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    api_version: str = "v60.0"

    def reader(self) -> CrmReader:
        from ingestion.replica_shape import parse_field_map
        from ingestion.salesforce_api import SalesforceApiReader, SalesforceSettings

        settings = SalesforceSettings(
            login_url=self.login_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            refresh_token=self.refresh_token,
            api_version=self.api_version,
        )
        return SalesforceApiReader(
            settings, batch_size=min(self.batch_size, 10_000), field_map=parse_field_map(self.field_map)
        )


class HubSpotApiResource(CrmResource):
    """HubSpot's CRM API, through a private app's access token or an OAuth app's refresh token."""

    api_url: str = "https://api.hubapi.com"
    access_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    lead_source_property: str = "hs_analytics_source"

    def reader(self) -> CrmReader:
        from ingestion.hubspot_api import HubSpotClient, HubSpotReader, HubSpotSettings

        settings = HubSpotSettings(
            api_url=self.api_url,
            access_token=self.access_token,
            client_id=self.client_id,
            client_secret=self.client_secret,
            refresh_token=self.refresh_token,
            lead_source_property=self.lead_source_property,
        )
        return HubSpotReader(HubSpotClient(settings))  # type: ignore[return-value]


class CalendarResource(ConfigurableResource):
    """Any calendar source. Subclasses provide ``load(warehouse, window) -> CalendarLoadResult``,
    writing the canonical raw calendar tables, and ``failure(result)``: the run's one error, if any.

    What stops the night and what is isolated (docs/reliability.md): a source that cannot be
    reached or is misconfigured stops it; bad data in one mailbox is isolated, quarantined in
    ``quality.source_quarantine`` by the loader, and only warns."""

    future_days: int = 90
    max_occurrences_per_series: int = 1000


class CalendarIcsResource(CalendarResource):
    """A folder of ICS exports, one file per mailbox."""

    directory: str
    workers: int = 0  # 0: one per CPU core

    def load(self, warehouse: Warehouse, window: ExpansionWindow) -> CalendarLoadResult:
        return load_calendar_folder(
            Path(self.directory),
            warehouse,
            window,
            max_occurrences_per_series=self.max_occurrences_per_series,
            workers=self.workers or (os.cpu_count() or 1),
        )

    def failure(self, result: CalendarLoadResult) -> SourceError | None:
        """Never, once the folder is read: an unreadable file is a broken export of one mailbox,
        quarantined by the loader (``result.quarantined``) while every other mailbox loads.
        A missing folder or a file escaping it is raised by ``load`` and still stops the night."""
        return None


class GoogleCalendarResource(CalendarResource):
    """Google Calendar v3: the primary calendar of each listed mailbox, synced with syncTokens."""

    client_id: str
    client_secret: str
    refresh_token: str
    mailboxes: str  # comma-separated
    api_url: str = "https://www.googleapis.com/calendar/v3"
    token_url: str = "https://oauth2.googleapis.com/token"

    def load(self, warehouse: Warehouse, window: ExpansionWindow) -> CalendarLoadResult:
        from ingestion.google_calendar import (
            GoogleCalendarClient,
            GoogleCalendarSettings,
            load_google_calendars,
            normalize_mailboxes,
        )

        settings = GoogleCalendarSettings(
            client_id=self.client_id,
            client_secret=self.client_secret,
            refresh_token=self.refresh_token,
            mailboxes=normalize_mailboxes(self.mailboxes.split(",")),
            api_url=self.api_url,
            token_url=self.token_url,
        )
        if not settings.mailboxes:
            raise SourceError(
                "google_calendar", "SALESOPS_GOOGLE_MAILBOXES lists no mailbox", rule="settings"
            )
        return load_google_calendars(GoogleCalendarClient(settings), settings.mailboxes, warehouse, window)

    def failure(self, result: CalendarLoadResult) -> SourceError | None:
        """A mailbox that failed to sync stops the night, unlike an unreadable ICS file: what fails
        there is the API (an outage after retries, a mailbox the credentials cannot read, a quota),
        not one mailbox's data. Events Google returns that cannot be used are already isolated
        one by one (``quality.calendar_problems``); a failed sync is a fault to fix at the source,
        and a run that published around it would silently serve that mailbox's stale meetings."""
        from ingestion.google_calendar import google_sync_error

        return google_sync_error(result.errors)


def _hubspot_resource(common: dict) -> HubSpotApiResource:
    """Private app token when SALESOPS_HUBSPOT_ACCESS_TOKEN is set, else the OAuth app's variables."""
    if os.environ.get("SALESOPS_HUBSPOT_ACCESS_TOKEN"):
        credentials = {"access_token": EnvVar("SALESOPS_HUBSPOT_ACCESS_TOKEN")}
    else:
        credentials = {
            "client_id": EnvVar("SALESOPS_HUBSPOT_CLIENT_ID"),
            "client_secret": EnvVar("SALESOPS_HUBSPOT_CLIENT_SECRET"),
            "refresh_token": EnvVar("SALESOPS_HUBSPOT_REFRESH_TOKEN"),
        }
    return HubSpotApiResource(
        api_url=os.environ.get("SALESOPS_HUBSPOT_API_URL", "https://api.hubapi.com"),
        lead_source_property=os.environ.get("SALESOPS_HUBSPOT_LEAD_SOURCE_PROPERTY", "hs_analytics_source"),
        **credentials,
        **common,
    )


def crm_resource() -> CrmResource:
    """The CRM source named by SALESOPS_CRM_SOURCE: sql (default), salesforce or hubspot."""
    common = {
        "batch_size": EnvVar.int("SALESOPS_CRM_BATCH_SIZE"),
        "overlap_hours": EnvVar.int("SALESOPS_CRM_OVERLAP_HOURS"),
        "replica_shape": EnvVar("SALESOPS_REPLICA_SHAPE"),
        "field_map": EnvVar("SALESOPS_FIELD_MAP"),
    }
    source = os.environ.get("SALESOPS_CRM_SOURCE", "sql")
    if source == "salesforce":
        return SalesforceApiResource(
            login_url=EnvVar("SALESOPS_SALESFORCE_LOGIN_URL"),
            client_id=EnvVar("SALESOPS_SALESFORCE_CLIENT_ID"),
            client_secret=EnvVar("SALESOPS_SALESFORCE_CLIENT_SECRET"),
            refresh_token=EnvVar("SALESOPS_SALESFORCE_REFRESH_TOKEN"),
            api_version=os.environ.get("SALESOPS_SALESFORCE_API_VERSION", "v60.0"),
            **common,
        )
    if source == "hubspot":
        return _hubspot_resource(common)
    if source != "sql":
        raise ValueError(f"SALESOPS_CRM_SOURCE must be 'sql', 'salesforce' or 'hubspot', not {source!r}")
    return CrmSqlResource(url=EnvVar("SALESOPS_CRM_URL"), **common)


def calendar_resource() -> CalendarResource:
    """The calendar source named by SALESOPS_CALENDAR_SOURCE: ics (default) or google."""
    common = {
        "future_days": EnvVar.int("SALESOPS_CALENDAR_FUTURE_DAYS"),
        "max_occurrences_per_series": EnvVar.int("SALESOPS_CALENDAR_MAX_OCCURRENCES"),
    }
    source = os.environ.get("SALESOPS_CALENDAR_SOURCE", "ics")
    if source == "google":
        return GoogleCalendarResource(
            client_id=EnvVar("SALESOPS_GOOGLE_CLIENT_ID"),
            client_secret=EnvVar("SALESOPS_GOOGLE_CLIENT_SECRET"),
            refresh_token=EnvVar("SALESOPS_GOOGLE_REFRESH_TOKEN"),
            mailboxes=EnvVar("SALESOPS_GOOGLE_MAILBOXES"),
            api_url=os.environ.get("SALESOPS_GOOGLE_API_URL", "https://www.googleapis.com/calendar/v3"),
            token_url=os.environ.get("SALESOPS_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token"),
            **common,
        )
    if source != "ics":
        raise ValueError(f"SALESOPS_CALENDAR_SOURCE must be 'ics' or 'google', not {source!r}")
    return CalendarIcsResource(directory=EnvVar("SALESOPS_CALENDAR_DIR"), **common)
