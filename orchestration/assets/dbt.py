"""The dbt project as Dagster assets: every model and seed an asset, every dbt test an asset check."""

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetSpec
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from ingestion.contract import crm_family
from ingestion.warehouse import Warehouse
from orchestration import settings
from orchestration.assets.server_warehouse import (
    RAW_SHIPMENT_KEY,
    mirror_dbt_step,
    server_identity,
    server_mode,
)
from orchestration.dbt_manifest import ensure_manifest
from orchestration.resources import WarehouseResource
from orchestration.unchanged_inputs import FORCE_ENV, forced, inputs_token, last_published_run

OWNERS_BY_GROUP = {
    "marts": ["team:sales-analysts"],
    "quality": ["team:sales-ops-coordinators"],
    "staging": ["team:data-engineering"],
}

# The CRM in use enables its staging models, so each CRM family has its own manifest.
dbt_project = DbtProject(
    project_dir=settings.DBT_PROJECT_DIR,
    profiles_dir=settings.DBT_PROJECT_DIR,
    target_path=Path("target") / crm_family(),
)
ensure_manifest(dbt_project.project_dir, dbt_project.manifest_path)


class SalesopsDbtTranslator(DagsterDbtTranslator):
    """Keys are <schema>/<name>; sources map onto the raw tables the ingestion assets write."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey(["raw", dbt_resource_props["identifier"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or "main"
        return AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        schema = dbt_resource_props.get("config", {}).get("schema")
        return schema if schema in ("marts", "quality") else "staging"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        return OWNERS_BY_GROUP[self.get_group_name(dbt_resource_props) or "staging"]

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> AssetSpec:
        """In server mode, seeds and every model reading a source also wait for the raw shipment:
        dbt reads raw from the server there. (dagster-dbt builds each step's inputs from its specs'
        deps, so the dbt steps depend on the shipment step without another wrapper.)"""
        spec = super().get_asset_spec(manifest, unique_id, project)
        if not server_mode() or unique_id.startswith("source."):
            return spec
        props = self.get_resource_props(manifest, unique_id)
        reads_raw = any(dep.startswith("source.") for dep in props.get("depends_on", {}).get("nodes", []))
        if props["resource_type"] == "seed" or reads_raw:
            return spec.merge_attributes(deps=[RAW_SHIPMENT_KEY])
        return spec


def dbt_vars() -> dict[str, str]:
    return {"as_of": settings.as_of().isoformat()}


# Seeds, staging and the quarantine build first; the staging suites run between the two steps.
STAGING_SELECTION = "resource_type:seed path:models/staging quarantine"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=SalesopsDbtTranslator(),
    select=STAGING_SELECTION,
    name="dbt_staging_models",
)
def dbt_staging_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Quarantines records that break row rules, then builds typed staging models and their tests.

    Builds nothing when the marts already published were built from these very inputs: then this
    step yields no materialization and Dagster skips every step downstream of it.
    """
    prune_invocation_folders(Path(dbt_project.project_dir) / "target")
    published_by = run_that_published_these_inputs(warehouse.warehouse())
    if published_by is not None:
        context.log.info(
            f"inputs unchanged since run {published_by} published the marts (no raw table changed, same "
            f"as_of and dbt project): dbt, the staging and mart checks and the publication are skipped; "
            f"{FORCE_ENV}=1 rebuilds"
        )
        return
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars())], context=context).stream()
    if server_mode():  # built on the server: the staging suites and the forecast read DuckDB's copy
        mirror_dbt_step(context, warehouse)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=SalesopsDbtTranslator(),
    exclude=STAGING_SELECTION,
    name="dbt_mart_models",
)
def dbt_mart_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Builds the metric marts and the quality models, running their dbt tests as asset checks,
    then generates the dbt docs site beside the warehouse (data/dbt_docs/index.html)."""
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars())], context=context).stream()
    if server_mode():  # built on the server: the mart suites and the publication read DuckDB's copy
        mirror_dbt_step(context, warehouse)
    docs = dbt_docs_dir()
    stamp = manifest_digest()
    if docs_are_current(docs, stamp):
        context.log.info(f"dbt docs: unchanged models, {docs / 'index.html'} kept")
        return
    dbt.cli(["docs", "generate", "--target-path", str(docs), "--vars", json.dumps(dbt_vars())]).wait()
    (docs / DOCS_STAMP).write_text(stamp)
    context.log.info(f"dbt docs: {docs / 'index.html'}")


# dagster-dbt gives every dbt invocation its own target folder, ``<step>-<run id[:7]>-<random>``
# (a bare ``<random>`` without a step), ~5 MB each: two a night add up to gigabytes in a year.
_INVOCATION_FOLDER = re.compile(r"^(?:(?P<step>\w+)-[0-9a-f]{7}-)?[0-9a-f]{7}$")
KEEP_INVOCATION_FOLDERS = 10


def prune_invocation_folders(target_dir: Path, keep: int = KEEP_INVOCATION_FOLDERS) -> list[Path]:
    """Delete all but the newest ``keep`` invocation folders of each step; returns those deleted."""
    by_step: dict[str, list[Path]] = {}
    for folder in target_dir.iterdir() if target_dir.is_dir() else ():
        match = _INVOCATION_FOLDER.match(folder.name)
        if match and folder.is_dir():
            by_step.setdefault(match.group("step") or "", []).append(folder)
    deleted = []
    for folders in by_step.values():
        folders.sort(key=lambda folder: folder.stat().st_mtime, reverse=True)
        for folder in folders[keep:]:
            shutil.rmtree(folder, ignore_errors=True)
            deleted.append(folder)
    return deleted


def current_inputs_token(warehouse: Warehouse) -> str:
    # Marts built in another warehouse (a server, or DuckDB after one) are not these marts.
    built_in = server_identity(settings.server_warehouse_url()) if server_mode() else "duckdb"
    return inputs_token(warehouse, settings.as_of(), f"{manifest_digest()}|{built_in}")


def run_that_published_these_inputs(warehouse: Warehouse) -> str | None:
    """The run whose publication still stands for today's inputs, or None when anything must be built."""
    from orchestration.assets.report import report_path
    from orchestration.assets.serving import serving_path

    if forced() or not (serving_path().is_file() and report_path().is_file()):
        return None
    return last_published_run(warehouse, current_inputs_token(warehouse))


def dbt_docs_dir() -> Path:
    return Path(os.environ["SALESOPS_WAREHOUSE"]).parent / "dbt_docs"


DOCS_STAMP = ".manifest.sha256"


def manifest_digest() -> str:
    return hashlib.sha256(dbt_project.manifest_path.read_bytes()).hexdigest()


def docs_are_current(docs: Path, digest: str) -> bool:
    """The docs site was generated from this very manifest: the same models, columns and tests.

    Generating it starts one more dbt process every night; it only changes with the project.
    """
    stamp = docs / DOCS_STAMP
    return (docs / "index.html").is_file() and stamp.is_file() and stamp.read_text() == digest
