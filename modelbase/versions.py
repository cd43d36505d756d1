"""Version directories: which child of a model's directory is a version, and listing them.

A version is a directory whose name is ASCII digits that fit an int64, as TF Serving parses it
(`strings::safe_strto64`); Python's `str.isdigit()` would also take "²" or Arabic-Indic digits,
which TF Serving ignores, and so does this module:

>>> [version_number(n) for n in ["7", "00000123", "²", "٩", "1a", "", "99999999999999999999"]]
[7, 123, None, None, None, None, None]
"""

from __future__ import annotations

import os
from pathlib import Path

INT64_MAX = 2**63 - 1


def version_number(name: str) -> int | None:
    """The version a directory name stands for, or None when TF Serving would ignore the name."""
    if not name or not name.isascii() or not name.isdigit():
        return None
    number = int(name)
    return number if number <= INT64_MAX else None


def scan_versions(model_dir: Path) -> dict[int, Path]:
    """Version number -> directory. Raises OSError (FileNotFoundError included) when `model_dir`
    cannot be listed, so a caller can tell "no versions" from "could not look". When two names
    give one number ("7" and "007"), the first in name order wins, the same on every scan."""
    with os.scandir(model_dir) as it:
        entries = sorted(it, key=lambda e: e.name)
    found: dict[int, Path] = {}
    for e in entries:
        number = version_number(e.name)
        if number is not None and e.is_dir():
            found.setdefault(number, Path(e.path))
    return found


def versions(model_dir: Path) -> list[int]:
    """The versions under `model_dir`, ascending; none when it does not exist."""
    try:
        return sorted(scan_versions(model_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []


def version_dir(model_dir: Path, version: int) -> Path | None:
    try:
        return scan_versions(model_dir).get(version)
    except (FileNotFoundError, NotADirectoryError):
        return None


def models(base: Path) -> dict[str, list[int]]:
    """The models under a base path: non-hidden child directories holding at least one version."""
    out: dict[str, list[int]] = {}
    if not base.is_dir():
        return out
    for p in sorted(base.iterdir()):
        if p.is_dir() and not p.name.startswith("."):
            found = versions(p)
            if found:
                out[p.name] = found
    return out
