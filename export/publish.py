"""Publishing a version atomically under `<model_base_path>/<name>/<version>/`.

TF Serving loads a numeric directory as soon as it lists it, with no completeness check, so a
version is built in a hidden staging directory beside it (`.staging-<pid>-<random>`, a name TF
Serving ignores), flushed to disk, then renamed to its number in one step. The rename refuses to
replace an existing version (renameat2 with RENAME_NOREPLACE on Linux; elsewhere a check before
the rename), so two exporters racing for one number cannot both win. A crash leaves at most a
staging directory, which TF Serving ignores and the next export removes once its process is gone.

Pruning (`keep`) removes the oldest versions beyond the newest `keep`, never one that a version
label in `<model_base_path>/models.config` points at. A pruned version is first renamed to a
hidden name, so TF Serving sees it disappear at once, then deleted.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import uuid
from pathlib import Path

from modelbase import fsync_dir, fsync_tree, labels_of, version_dir, versions

STAGING_PREFIX = ".staging-"


class VersionExists(Exception):
    pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(model_dir: Path) -> list[Path]:
    """Remove staging directories left by exporters that died (their pid is no longer running)."""
    removed = []
    for p in model_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            pid = int(p.name.removeprefix(STAGING_PREFIX).split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def new_staging_dir(model_dir: Path) -> Path:
    model_dir.mkdir(parents=True, exist_ok=True)
    p = model_dir / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    p.mkdir()
    return p


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def rename_no_replace(src: Path, dst: Path) -> None:
    """Rename src to dst, failing with VersionExists if dst exists (atomic where the OS allows)."""
    libc = None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        rc = renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise VersionExists(str(dst))
        if err not in (errno.EINVAL, errno.ENOSYS):  # EINVAL/ENOSYS: the file system lacks the flag
            raise OSError(err, os.strerror(err), str(dst))
    if dst.exists():
        raise VersionExists(str(dst))
    try:
        os.rename(src, dst)  # replaces only an empty directory; a non-empty one fails
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise VersionExists(str(dst)) from None
        raise


def publish(staging: Path, model_dir: Path, version: int | None) -> int:
    """Move a complete staging directory into place as `version` (None: one above the highest).
    With an automatic number, a lost race moves on to the next number."""
    fsync_tree(staging)
    while True:
        v = version if version is not None else (max(versions(model_dir), default=0) + 1)
        if version is not None and version_dir(model_dir, v) is not None:
            raise VersionExists(str(model_dir / str(v)))
        try:
            rename_no_replace(staging, model_dir / str(v))
        except VersionExists:
            if version is not None:
                raise
            continue
        fsync_dir(model_dir)
        return v


def prune(model_base_path: Path, name: str, keep: int) -> list[int]:
    """Remove versions older than the newest `keep`, except labelled ones. Returns the removed versions."""
    model_dir = model_base_path / name
    protected = set(labels_of(model_base_path, name).values())
    all_versions = versions(model_dir)
    removed = []
    for v in all_versions[: max(0, len(all_versions) - keep)]:
        if v in protected:
            continue
        src = version_dir(model_dir, v)
        if src is None:
            continue
        hidden = model_dir / f"{STAGING_PREFIX}{os.getpid()}-pruned-{v}"
        os.rename(src, hidden)
        shutil.rmtree(hidden, ignore_errors=True)
        removed.append(v)
    return removed
