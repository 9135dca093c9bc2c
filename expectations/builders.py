"""Small builders for the suites: every rule gets a stable name, a GX expectation and a severity.

Great Expectations is imported lazily (it takes seconds to import); suites are built inside the
checks that run them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expectations.gx_engine import ExpectationSpec

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def spec(name: str, severity: str, expectation: Any) -> ExpectationSpec:
    from expectations.gx_engine import ExpectationSpec

    return ExpectationSpec(name=name, expectation=expectation, severity=severity)  # type: ignore[arg-type]


def gx_expectations() -> Any:
    import great_expectations as gx

    return gx.expectations


def not_null(name: str, column: str, severity: str = "error") -> ExpectationSpec:
    return spec(name, severity, gx_expectations().ExpectColumnValuesToNotBeNull(column=column))


def unique(name: str, column: str, severity: str = "error") -> ExpectationSpec:
    return spec(name, severity, gx_expectations().ExpectColumnValuesToBeUnique(column=column))


def in_set(name: str, column: str, values: list[str], severity: str = "warning") -> ExpectationSpec:
    return spec(
        name, severity, gx_expectations().ExpectColumnValuesToBeInSet(column=column, value_set=values)
    )


def between(
    name: str,
    column: str,
    min_value: float | None = None,
    max_value: float | None = None,
    severity: str = "error",
) -> ExpectationSpec:
    return spec(
        name,
        severity,
        gx_expectations().ExpectColumnValuesToBeBetween(
            column=column, min_value=min_value, max_value=max_value
        ),
    )


def rows_query(name: str, severity: str, query: str, description: str) -> ExpectationSpec:
    """A rule whose violations are the rows the query returns; ``{batch}`` is the validated table."""
    return spec(
        name,
        severity,
        gx_expectations().UnexpectedRowsExpectation(unexpected_rows_query=query, description=description),
    )


def well_formed_email(name: str, column: str, severity: str = "warning") -> ExpectationSpec:
    return rows_query(
        name,
        severity,
        f"SELECT * FROM {{batch}} WHERE nullif(trim({column}), '') IS NOT NULL "
        f"AND NOT regexp_full_match(trim({column}), '{EMAIL_PATTERN}')",
        f"{column} is a well-formed email address",
    )


def reference(
    name: str, column: str, target: str, target_column: str, severity: str = "warning"
) -> ExpectationSpec:
    """Every non-empty ``column`` value exists as ``target.target_column``."""
    return rows_query(
        name,
        severity,
        f"SELECT * FROM {{batch}} AS child WHERE nullif(trim(child.{column}), '') IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {target} AS parent WHERE parent.{target_column} = child.{column})",
        f"{column} refers to an existing {target} row",
    )
