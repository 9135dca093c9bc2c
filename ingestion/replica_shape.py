"""How a replica names the CRM: Salesforce API names, or the shapes replication tools write.

- ``api``: tables and columns named like the objects and fields (``OpportunityHistory.OwnerId``),
  in any letter case; what the Salesforce API, Airbyte and Stitch deliver.
- ``fivetran``: snake_case (``opportunity_history.owner_id``, custom ``Hire_Date__c`` as
  ``hire_date_c``), ``_fivetran_synced`` (when the row was written), ``_fivetran_deleted`` (the
  row was deleted) and, for tables in history mode, one row per version with
  ``_fivetran_active``/``_fivetran_start``/``_fivetran_end``.
- ``airbyte``: API names plus ``_airbyte_raw_id``, ``_airbyte_extracted_at``, ``_airbyte_meta``.
- ``stitch``: API names plus ``_sdc_batched_at``, ``_sdc_extracted_at``, ``_sdc_sequence``, ...

Names are matched on their letters and digits only, case-insensitively (``owner_id``, ``OwnerId``
and ``OWNERID`` are the same field), so every shape reads through one rule. The shape itself is
detected per table from the tool's metadata columns and decides only what those columns mean:
the deletion flag when ``IsDeleted`` is absent, the cursor when ``SystemModstamp`` is absent, and
which rows are current in history mode. ``SALESOPS_REPLICA_SHAPE`` overrides the detection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.contract import CRM_CONTRACT, is_optional_field

SHAPES = ("api", "fivetran", "airbyte", "stitch")
SHAPE_ENV = "SALESOPS_REPLICA_SHAPE"
FIELD_MAP_ENV = "SALESOPS_FIELD_MAP"

# Metadata column prefixes that give a tool away.
_PREFIXES = {"fivetran": "_fivetran_", "airbyte": "_airbyte_", "stitch": "_sdc_"}
# When the row was last written by the tool: the cursor of a table without SystemModstamp.
_SYNCED_COLUMNS = {
    "fivetran": ("_fivetran_synced",),
    "airbyte": ("_airbyte_extracted_at", "_airbyte_emitted_at"),
    "stitch": ("_sdc_batched_at", "_sdc_received_at"),
}
FIVETRAN_DELETED = "_fivetran_deleted"
FIVETRAN_ACTIVE = "_fivetran_active"


class ShapeError(ValueError):
    """A table the replica's shape does not let us read: ``rule`` names why."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


def name_key(name: str) -> str:
    """The letters and digits of a name, lower-case: the same for every tool's spelling."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def detect_shape(columns: Iterable[str]) -> str:
    names = [column.lower() for column in columns]
    for shape, prefix in _PREFIXES.items():
        if any(name.startswith(prefix) for name in names):
            return shape
    return "api"


def find_table(contract_table: str, source_tables: Iterable[str]) -> str | None:
    """The source table holding a CRM object: ``opportunityhistory``, ``OpportunityHistory`` or
    ``opportunity_history``. An exact (case-insensitive) name wins over a spelling match."""
    tables = list(source_tables)
    for name in tables:
        if name.lower() == contract_table:
            return name
    matches = [name for name in tables if name_key(name) == name_key(contract_table)]
    if len(matches) > 1:
        raise ShapeError(
            f"several tables could hold {contract_table}: {', '.join(sorted(matches))}", "ambiguous_table"
        )
    return matches[0] if matches else None


@dataclass(frozen=True)
class ResolvedTable:
    """Where each contract field of a table is read from, in the replica's shape."""

    contract_name: str
    shape: str
    # warehouse column (contract fields under their lower-case API name, then the extras) ->
    # source column
    columns: dict[str, str]
    missing_optional: tuple[str, ...] = ()
    # Fivetran's deletion flag, folded into isdeleted (the only flag when IsDeleted is absent)
    deleted_column: str | None = None
    # history mode: only rows where this column is true are read
    active_column: str | None = None
    cursor_fallback: str | None = field(default=None)  # source column standing in for SystemModstamp

    @property
    def cursor_column(self) -> str:
        return self.columns["systemmodstamp"]


def resolve_table(
    contract_table: str,
    source_columns: Iterable[str],
    shape: str = "auto",
    field_map: Mapping[str, str] | None = None,
    require_all: bool = True,
) -> ResolvedTable:
    """Match a source table's columns to the contract's fields.

    ``field_map`` maps contract fields of this table to source columns (``Hire_Date__c`` ->
    ``Start_Date__c``). Raises ShapeError naming the field when a required field is missing or
    two columns could hold one field (with ``require_all`` false, missing fields are left out).
    """
    columns = list(dict.fromkeys(source_columns))
    shape = detect_shape(columns) if shape == "auto" else shape
    by_key: dict[str, list[str]] = {}
    for column in columns:
        by_key.setdefault(name_key(column), []).append(column)
    exact = {column.lower(): column for column in columns}
    field_map = field_map or {}

    resolved: dict[str, str] = {}
    missing_optional: list[str] = []
    missing_required: list[str] = []
    cursor_fallback = None
    for contract_field in CRM_CONTRACT[contract_table]:
        target = contract_field.lower()
        if contract_field in field_map:
            mapped = exact.get(field_map[contract_field].lower())
            if mapped is None:
                raise ShapeError(
                    f"{FIELD_MAP_ENV} maps {contract_table}.{contract_field} to column "
                    f"{field_map[contract_field]!r}, which the table does not have",
                    "field_map_column",
                )
            resolved[target] = mapped
            continue
        # columns differing only by letter case are one column (the first is read)
        candidates = _distinct_ignoring_case(by_key.get(name_key(contract_field), []))
        if len(candidates) > 1:
            raise ShapeError(
                f"columns {', '.join(repr(c) for c in candidates)} could each hold {contract_field}",
                "ambiguous_column",
            )
        if candidates:
            resolved[target] = candidates[0]
        elif target == "systemmodstamp" and (synced := _synced_column(shape, exact)):
            resolved[target] = cursor_fallback = synced
        elif target == "isdeleted" and shape == "fivetran" and FIVETRAN_DELETED in exact:
            continue  # read from _fivetran_deleted below
        elif is_optional_field(contract_table, contract_field):
            missing_optional.append(contract_field)
        else:
            missing_required.append(contract_field)
    if missing_required and require_all:
        raise ShapeError(
            f"required column {', '.join(repr(c) for c in missing_required)} missing "
            f"(found: {', '.join(columns)})",
            "required_column",
        )
    used = set(resolved.values())
    for column in columns:
        name = warehouse_column_name(column)
        if column not in used and name not in resolved and name not in CRM_CONTRACT_KEYS[contract_table]:
            resolved[name] = column
    return ResolvedTable(
        contract_name=contract_table,
        shape=shape,
        columns=resolved,
        missing_optional=tuple(missing_optional),
        deleted_column=exact.get(FIVETRAN_DELETED) if shape == "fivetran" else None,
        active_column=exact.get(FIVETRAN_ACTIVE) if shape == "fivetran" else None,
        cursor_fallback=cursor_fallback,
    )


def _distinct_ignoring_case(columns: list[str]) -> list[str]:
    first: dict[str, str] = {}
    for column in columns:
        first.setdefault(column.lower(), column)
    return list(first.values())


CRM_CONTRACT_KEYS = {table: {f.lower() for f in fields} for table, fields in CRM_CONTRACT.items()}


def _synced_column(shape: str, exact: Mapping[str, str]) -> str | None:
    for name in _SYNCED_COLUMNS.get(shape, ()):
        if name in exact:
            return exact[name]
    return None


def warehouse_column_name(source_column: str) -> str:
    """Lower-case, identifier-safe column name used in the warehouse."""
    name = re.sub(r"[^a-z0-9_]", "_", source_column.lower())
    if not name or name[0].isdigit():
        name = f"c_{name}"
    return name


# ------------------------------------------------------------------ the two settings


def parse_shapes(value: str) -> dict[str, str]:
    """SALESOPS_REPLICA_SHAPE: ``auto`` (default), one shape for every table, or per table
    (``opportunity=fivetran,task=api``; tables not named are detected). Key '*' is every table."""
    value = value.strip()
    if not value:
        return {"*": "auto"}
    shapes: dict[str, str] = {}
    for part in value.split(","):
        table, _, shape = part.strip().rpartition("=")
        table = table.strip().lower() or "*"
        shape = shape.strip().lower()
        if shape not in (*SHAPES, "auto"):
            raise ValueError(
                f"{SHAPE_ENV} must be auto, {', '.join(SHAPES)} or table=shape pairs, not {part.strip()!r}"
            )
        if table != "*" and table not in CRM_CONTRACT:
            raise ValueError(
                f"{SHAPE_ENV} names {table!r}, which is not a CRM table ({', '.join(CRM_CONTRACT)})"
            )
        shapes[table] = shape
    return shapes


def shape_for(shapes: Mapping[str, str], contract_table: str) -> str:
    return shapes.get(contract_table, shapes.get("*", "auto"))


def parse_field_map(value: str) -> dict[str, dict[str, str]]:
    """SALESOPS_FIELD_MAP: ``user.Hire_Date__c=Start_Date__c`` pairs separated by commas, or the
    path of a YAML file (``user: {Hire_Date__c: Start_Date__c}``). Returns table -> field -> column.
    Errors name the variable and the entry."""
    value = value.strip()
    if not value:
        return {}
    if value.endswith((".yml", ".yaml")):
        return _field_map_file(Path(value).expanduser())
    pairs: dict[str, dict[str, str]] = {}
    for part in value.split(","):
        target, equals, column = part.strip().partition("=")
        table, dot, contract_field = target.strip().partition(".")
        if not (equals and dot and column.strip()):
            raise ValueError(
                f"{FIELD_MAP_ENV} entries look like user.Hire_Date__c=Start_Date__c, not {part.strip()!r}"
            )
        _add_mapping(pairs, table.strip(), contract_field.strip(), column.strip())
    return pairs


def _field_map_file(path: Path) -> dict[str, dict[str, str]]:
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ValueError(f"{FIELD_MAP_ENV} file {path} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError:
        raise ValueError(f"{FIELD_MAP_ENV} file {path} is not valid YAML") from None
    if not isinstance(document, dict):
        raise ValueError(f"{FIELD_MAP_ENV} file {path} must map tables to {{field: column}}")
    pairs: dict[str, dict[str, str]] = {}
    for table, fields in document.items():
        if not isinstance(fields, dict):
            raise ValueError(f"{FIELD_MAP_ENV} file {path}: {table!r} must map fields to columns")
        for contract_field, column in fields.items():
            _add_mapping(pairs, str(table), str(contract_field), str(column))
    return pairs


def _add_mapping(pairs: dict[str, dict[str, str]], table: str, contract_field: str, column: str) -> None:
    table = table.lower()
    if table not in CRM_CONTRACT:
        raise ValueError(f"{FIELD_MAP_ENV} names table {table!r}, which is not a CRM table")
    fields = {f.lower(): f for f in CRM_CONTRACT[table]}
    if contract_field.lower() not in fields:
        raise ValueError(
            f"{FIELD_MAP_ENV} names {table}.{contract_field}, which is not a field the pipeline reads "
            f"({', '.join(CRM_CONTRACT[table])})"
        )
    pairs.setdefault(table, {})[fields[contract_field.lower()]] = column
