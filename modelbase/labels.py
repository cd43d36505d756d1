"""Who moved which label when: `<base>/label_history.jsonl`, and the lock that every change of
`models.config` and of the history is made under.

    <base>/label_history.jsonl    one JSON object per change: time, who, host, model, label, version,
                                  previous (the version it named before, or null), action
    <base>/.models.config.lock    an advisory lock file (flock): exporters and operators that change
                                  models.config at once take turns; models.config is still replaced by
                                  an atomic rename, so a reader (TF Serving polling it) never sees half a file

The history is what `rollback` reads: the previous **stable**, not the previous version number. Stable
versions form a stack: a promotion (or any move of `stable`) pushes, a rollback pops.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelbase.durable import fsync_dir

HISTORY_FILE = "label_history.jsonl"
LOCK_FILE = ".models.config.lock"


class LockTimeout(TimeoutError):
    """Another process held the model base path's lock for longer than we waited."""


@contextlib.contextmanager
def config_lock(base: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold the model base path's lock (exclusive, advisory) for the block; waits up to `timeout`."""
    path = base / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{path} is held by another process after {timeout:.0f}s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def record_change(
    base: Path, model: str, label: str, version: int | None, previous: int | None, action: str
) -> dict[str, Any]:
    """Append one change to the history (call it under `config_lock`); flushed to disk before it returns."""
    entry = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "who": _who(),
        "host": socket.gethostname(),
        "model": model,
        "label": label,
        "version": version,
        "previous": previous,
        "action": action,
    }
    path = base / HISTORY_FILE
    new = not path.exists()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    if new:
        fsync_dir(base)
    return entry


def history(base: Path, model: str | None = None) -> list[dict[str, Any]]:
    """The recorded changes, oldest first (a line that does not parse, e.g. cut by a crash, is skipped)."""
    path = base / HISTORY_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if model is None or entry.get("model") == model:
            out.append(entry)
    return out


def stable_stack(base: Path, model: str) -> list[int]:
    """The versions that were stable, as a stack: each move of `stable` pushes, a rollback pops."""
    stack: list[int] = []
    for e in history(base, model):
        if e.get("label") != "stable" or e.get("version") is None:
            continue
        if not stack and e.get("previous") is not None:  # stable before the history began
            stack.append(e["previous"])
        if e.get("action") == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != e["version"]:
                stack.append(e["version"])
        elif not stack or stack[-1] != e["version"]:
            stack.append(e["version"])
    return stack


def previous_stable(base: Path, model: str, current: int) -> int | None:
    """The stable version before `current` (None when the history knows none)."""
    stack = stable_stack(base, model)
    while stack and stack[-1] == current:
        stack.pop()
    return stack[-1] if stack else None
