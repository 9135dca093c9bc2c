"""Keep dbt's manifest.json current: Dagster builds its dbt assets from it at load time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_SOURCE_GLOBS = ("models/**/*", "macros/**/*", "seeds/**/*", "tests/**/*", "dbt_project.yml", "profiles.yml")


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for pattern in _SOURCE_GLOBS:
        for path in project_dir.glob(pattern):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    return newest


def manifest_is_stale(project_dir: Path, manifest_path: Path) -> bool:
    return not manifest_path.exists() or manifest_path.stat().st_mtime < _newest_source_mtime(project_dir)


def ensure_manifest(project_dir: Path, manifest_path: Path) -> None:
    """Run ``dbt parse`` when the manifest is missing or older than the project's files."""
    if not manifest_is_stale(project_dir, manifest_path):
        return
    dbt = Path(sys.executable).with_name("dbt")  # the venv's dbt, whatever PATH says
    completed = subprocess.run(
        [
            str(dbt),
            "parse",
            "--quiet",
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            str(project_dir),
            "--target-path",
            str(manifest_path.parent),
        ],
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        detail = (completed.stdout + completed.stderr).strip().splitlines()
        raise RuntimeError(f"dbt parse failed: {' '.join(detail[-3:]) if detail else 'no output'}")
    manifest_path.touch()
