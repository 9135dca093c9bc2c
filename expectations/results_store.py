"""Persist every validation in the warehouse: quality.validation_runs and quality.validation_results."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ingestion.warehouse import Warehouse, utc_now

if TYPE_CHECKING:
    from expectations.gx_engine import SuiteOutcome

_DDL = (
    "CREATE SCHEMA IF NOT EXISTS quality",
    """CREATE TABLE IF NOT EXISTS quality.validation_runs (
        validation_id VARCHAR PRIMARY KEY, dagster_run_id VARCHAR, layer VARCHAR, suite_name VARCHAR,
        table_name VARCHAR, validated_at TIMESTAMP, success BOOLEAN, rules INTEGER,
        failed_errors INTEGER, failed_warnings INTEGER, data_docs_path VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS quality.validation_results (
        validation_id VARCHAR, rule VARCHAR, severity VARCHAR, expectation_type VARCHAR,
        column_name VARCHAR, success BOOLEAN, element_count BIGINT, unexpected_count BIGINT,
        unexpected_percent DOUBLE, observed_value VARCHAR, sample VARCHAR, exception_message VARCHAR)""",
)


def record_validations(
    warehouse: Warehouse, layer: str, outcomes: Sequence[SuiteOutcome], dagster_run_id: str
) -> list[str]:
    """Store the outcomes in one transaction; returns the validation ids, in order."""
    validated_at = utc_now()
    ids = [uuid.uuid4().hex for _ in outcomes]
    with warehouse.connect() as connection:
        for statement in _DDL:
            connection.execute(statement)
        connection.begin()
        for validation_id, outcome in zip(ids, outcomes, strict=True):
            connection.execute(
                "INSERT INTO quality.validation_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    validation_id,
                    dagster_run_id,
                    layer,
                    outcome.suite_name,
                    outcome.table,
                    validated_at,
                    outcome.success,
                    len(outcome.outcomes),
                    len(outcome.errors),
                    len(outcome.warnings),
                    str(outcome.data_docs_index) if outcome.data_docs_index else None,
                ],
            )
            connection.executemany(
                "INSERT INTO quality.validation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [
                        validation_id,
                        item.name,
                        item.severity,
                        item.expectation_type,
                        item.column,
                        item.success,
                        item.element_count,
                        item.unexpected_count,
                        item.unexpected_percent,
                        None if item.observed_value is None else json.dumps(item.observed_value, default=str),
                        json.dumps(item.partial_unexpected[:20], default=str),
                        item.exception_message,
                    ]
                    for item in outcome.outcomes
                ],
            )
        connection.commit()
    return ids
