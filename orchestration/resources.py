"""Dagster resources: the warehouse and the sources, configured from the environment."""

from __future__ import annotations

import os

from dagster import ConfigurableResource

from ingestion.crm_sql import SqlCrmReader
from ingestion.warehouse import Warehouse


class WarehouseResource(ConfigurableResource):
    """The DuckDB warehouse file that raw, staging and mart tables live in."""

    path: str

    def warehouse(self) -> Warehouse:
        return Warehouse(self.path)


class CrmSqlResource(ConfigurableResource):
    """A SQL replica of the Salesforce org, reachable through any SQLAlchemy URL."""

    url: str
    batch_size: int = 50_000
    overlap_hours: int = 24

    def reader(self) -> SqlCrmReader:
        return SqlCrmReader(self.url, batch_size=self.batch_size)


class CalendarIcsResource(ConfigurableResource):
    """A folder of ICS exports, one file per mailbox."""

    directory: str
    future_days: int = 90
    max_occurrences_per_series: int = 1000
    workers: int = 0  # 0: one per CPU core

    def worker_count(self) -> int:
        return self.workers or (os.cpu_count() or 1)
