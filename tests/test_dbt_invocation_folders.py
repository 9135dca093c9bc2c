"""dagster-dbt's per-invocation target folders are pruned, so nightly runs do not fill the disk."""

from __future__ import annotations

import os
from pathlib import Path


def make_folder(target: Path, name: str, mtime: float) -> Path:
    folder = target / name
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    os.utime(folder, (mtime, mtime))
    return folder


def test_only_the_newest_folders_of_each_step_are_kept(tmp_path: Path) -> None:
    from orchestration.assets.dbt import prune_invocation_folders

    staging = [make_folder(tmp_path, f"dbt_staging_models-abc{i:04x}-{i:07x}", 1000 + i) for i in range(5)]
    marts = [make_folder(tmp_path, f"dbt_mart_models-def{i:04x}-{i:07x}", 2000 - i) for i in range(3)]
    bare = [make_folder(tmp_path, f"{i:07x}", 3000 + i) for i in range(4)]
    # Not invocation folders: the per-CRM manifests, dbt's own files.
    kept_anyway = [make_folder(tmp_path, "salesforce", 0), make_folder(tmp_path, "run", 0)]
    (tmp_path / "manifest.json").write_text("{}")

    deleted = prune_invocation_folders(tmp_path, keep=2)

    assert sorted(deleted) == sorted(staging[:3] + marts[2:] + bare[:2])
    remaining = sorted(path.name for path in tmp_path.iterdir())
    expected = staging[3:] + marts[:2] + bare[2:] + kept_anyway + [tmp_path / "manifest.json"]
    assert remaining == sorted(path.name for path in expected)
