"""What a run records about itself: enough to rebuild the model bit for bit, and to notice when
the machine or the packages have changed since."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from train.errors import InputError

MANIFEST_FILE = "manifest.json"
# 1: the manifests written before there was a format_version (no builder, no feature kinds beyond
#    numeric, string, integer); 2: adds format_version, builder, rows_dropped_missing_required.
FORMAT_VERSION = 2
PACKAGES = ("tensorflow", "keras", "numpy", "pyarrow", "sqlalchemy", "palmerpenguins")
REQUIRED = (
    "seed",
    "spec",
    "data_source",
    "as_of",
    "data_sha256",
    "rows",
    "split_sizes",
    "weights_sha256",
    "metrics",
    "packages",
    "git_commit",
    "device",
    "wall_time_seconds",
)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, str]:
    return {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor()}


def git_commit(where: Path | None = None) -> str:
    """The commit of the code that trained, with "-dirty" when the work tree had changes."""
    cwd = where or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    (run_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST_FILE
    if not run_dir.is_dir():
        raise InputError(f"run: {run_dir} is not a directory")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise InputError(f"run: {run_dir} has no {MANIFEST_FILE}; is it a run directory?") from None
    except json.JSONDecodeError as e:
        raise InputError(f"run: {path} is not valid JSON: {e}") from None
    version = manifest.get("format_version", 1)
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise InputError(
            f"run: {path} has format_version {version!r}; this Shipyard reads 1 to {FORMAT_VERSION} (upgrade it)"
        )
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise InputError(f"run: {path} lacks {', '.join(missing)}")
    return manifest


SHUFFLE = "index_shuffle"  # how epochs order the rows (train.fit.permutation); runs before it had none recorded


def differences(recorded: dict[str, Any]) -> list[str]:
    """What differs between the recorded environment and this one (packages, Python, machine, the
    row order of the epochs)."""
    out = []
    if recorded.get("shuffle") != SHUFFLE:
        out.append(f"epoch row order {recorded.get('shuffle') or 'a shuffle buffer (older version)'} -> {SHUFFLE}")
    now = package_versions()
    for k, v in sorted(recorded.get("packages", {}).items()):
        if now.get(k) != v:
            out.append(f"{k} {v} -> {now.get(k)}")
    for k, v in sorted(recorded.get("machine", {}).items()):
        if machine().get(k) != v:
            out.append(f"{k} {v!r} -> {machine().get(k)!r}")
    return out
