"""From a source's chunks to what training reads, holding one block of rows at a time.

1. The chunks are appended, as read, to a staging store (`train.store`) in a work folder.
2. The keys alone are loaded (8 bytes a row for integer keys) to find the key order; a source that
   arrives in key order (a CSV's row positions, a SQL read ordered by its key) is not reordered.
3. One pass in key order, `BLOCK_ROWS` rows at a time: duplicate keys refused, the snapshot written
   and hashed (`train.snapshot.SnapshotWriter`: the same `data_sha256` as hashing every row at once),
   each row sent to its split by the hash of its key (`train.split`), each split appended to a store
   of its own, the classes collected.

The block size is fixed here (fewer rows only for wide rows, by their size on disk), never taken from
the chunk size, and nothing downstream depends on it anyway: what training sees (the split stores
and, from them, the statistics, see `train.model.feature_stats`) does not depend on how the source
was read, so reading in chunks of 100 or of a million rows gives the same weights.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train import data, split
from train.errors import InputError
from train.progress import Progress
from train.snapshot import SnapshotWriter, column_types
from train.spec import Spec
from train.store import ColumnStore, ColumnWriter

log = logging.getLogger(__name__)

BLOCK_ROWS = 16_384  # rows of the key-ordered pass at a time...
BLOCK_BYTES = 32 << 20  # ...or fewer, when wide rows (images, long text) would take more than this


@dataclass
class Prepared:
    """The rows of a run, split, on disk; `close()` removes the work folder."""

    spec: Spec
    key: str
    sha256: str
    rows: int
    splits: dict[str, ColumnStore]
    classes: list[str] | None
    workdir: Path
    counts: data.Counts | None = None

    @property
    def split_sizes(self) -> dict[str, int]:
        return {name: len(s) for name, s in self.splits.items()}

    def close(self) -> None:
        for s in self.splits.values():
            s.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _types(spec: Spec, key: str, first: dict[str, np.ndarray], key_type: str) -> dict[str, str]:
    types = column_types(first)
    for f in spec.features:  # a chunk whose images are all missing still holds bytes
        if f.kind == "image":
            types[f.name] = "bytes"
    types[key] = key_type
    return types


def _stage(chunks: Iterable[dict[str, np.ndarray]], folder: Path, spec: Spec, key: str) -> ColumnStore | None:
    writer: ColumnWriter | None = None
    for chunk in chunks:
        if writer is None:
            writer = ColumnWriter(folder, _types(spec, key, chunk, "string"))
        writer.append(chunk)
    return writer.close() if writer is not None else None


def _blocks(store: ColumnStore, keys: np.ndarray, order: np.ndarray | None, key: str) -> Iterator[dict[str, Any]]:
    names = [n for n in store.types if n != key]
    per_row = store.row_bytes(names)
    rows = min(BLOCK_ROWS, max(16, int(BLOCK_BYTES // per_row))) if per_row else BLOCK_ROWS
    for start in range(0, len(store), rows):
        stop = min(start + rows, len(store))
        block = store.slice(start, stop, names) if order is None else store.take(order[start:stop], names)
        block[key] = keys[start:stop]
        yield block


def prepare(
    spec: Spec,
    chunks: Iterable[dict[str, np.ndarray]],
    workdir: Path,
    snapshot_path: Path | None,
    counts: data.Counts,
) -> Prepared:
    """Stage, order, snapshot and split the rows of `chunks` (typed chunks whose key column is text,
    `counts` filled in by the time they end). `snapshot_path` None: hash only."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        staged = _stage(chunks, workdir / "staged", spec, counts.key)
        if staged is None:  # the reading refuses an empty source; a caller's empty iterable lands here
            raise InputError(f"data: {counts.source} has no rows")
        return _split(spec, staged, workdir, snapshot_path, counts)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _split(spec: Spec, staged: ColumnStore, workdir: Path, snapshot_path: Path | None, counts: data.Counts) -> Prepared:
    key = counts.key
    n = len(staged)
    if counts.key_is_int:  # parsed a block at a time: 8 bytes a row, never every key as text
        keys = np.empty(n, dtype=np.int64)
        for start in range(0, n, BLOCK_ROWS):
            stop = min(n, start + BLOCK_ROWS)
            keys[start:stop] = data.final_keys(staged.slice(start, stop, [key])[key], True)
    else:
        keys = staged.slice(0, n, [key])[key]
    order: np.ndarray | None = None
    if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
    dup = data.duplicate_key(keys)
    if dup is not None:
        raise InputError(f"data: the key column {key!r} is not unique in {counts.source} ({dup!r} repeats)")
    types = dict(staged.types)
    types[key] = "int64" if counts.key_is_int else "string"
    snap = SnapshotWriter(snapshot_path, key, types)
    writers = {name: ColumnWriter(workdir / name, types) for name in split.SPLITS}
    t = spec.training
    labels: set[Any] = set()
    low, high = np.inf, -np.inf
    progress = Progress("snapshot and split", log, total=len(keys))
    done = 0
    try:
        for block in _blocks(staged, keys, order, key):
            snap.write(block)
            assigned = split.assign_splits(block[key], t.split_seed, t.validation_fraction, t.test_fraction)
            for name, w in writers.items():
                mask = assigned == name
                if mask.any():
                    w.append({k: v[mask] for k, v in block.items()})
            lab = block[spec.label]
            if spec.task == "classification":
                labels.update(lab.tolist())
            else:
                low, high = min(low, float(lab.min())), max(high, float(lab.max()))
            done += len(lab)
            progress.update(done)
        sha = snap.close()
    except BaseException:
        snap.abort()
        for w in writers.values():
            w.abort()
        raise
    finally:
        staged.close()
    progress.done(done)
    shutil.rmtree(workdir / "staged", ignore_errors=True)
    stores = {name: w.close() for name, w in writers.items()}
    data.check_labels(spec, sorted(labels) if labels else ([low] if low == high else [low, high]), counts.source)
    empty = [name for name in split.SPLITS if len(stores[name]) == 0]
    if empty:
        raise InputError(f"data: {len(keys)} rows leave the {empty[0]} split empty; more rows are needed")
    log.info("%d rows from %s, data_sha256 %s", len(keys), counts.source, sha)
    return Prepared(
        spec,
        key,
        sha,
        len(keys),
        stores,
        sorted(labels) if spec.task == "classification" else None,
        workdir,
        counts,
    )


def as_chunks(columns: dict[str, np.ndarray], key: str) -> tuple[list[dict[str, np.ndarray]], data.Counts]:
    """Rows already in memory (canonical columns, any order) as one chunk of the kind a read yields."""
    keys = columns[key]
    texts = np.empty(len(keys), dtype=object)
    texts[:] = [str(k) for k in keys.tolist()]
    counts = data.Counts("the given rows", key, rows_read=len(keys), rows_kept=len(keys))
    counts.key_is_int = keys.dtype.kind in "iu"
    return [{**columns, key: texts}], counts


def from_columns(spec: Spec, columns: dict[str, np.ndarray], key: str, workdir: Path) -> Prepared:
    """`prepare` for rows already in memory (tools, benchmarks, tests)."""
    chunks, counts = as_chunks(columns, key)
    return prepare(spec, chunks, workdir, None, counts)


def from_snapshot(spec: Spec, path: Path, workdir: Path) -> Prepared:
    """`prepare` for a run's own snapshot (a reproduction): read back in blocks, hashed again."""
    from train.snapshot import iter_snapshot, snapshot_info

    key, _, _ = snapshot_info(path)
    counts = data.Counts(str(path), key)

    def chunks() -> Iterator[dict[str, np.ndarray]]:
        for block in iter_snapshot(path, BLOCK_ROWS):
            counts.key_is_int = counts.key_is_int and block[key].dtype.kind in "iu"
            texts = np.empty(len(block[key]), dtype=object)
            texts[:] = [str(k) for k in block[key].tolist()]
            counts.rows_read += len(texts)
            counts.rows_kept += len(texts)
            yield {**block, key: texts}

    return prepare(spec, chunks(), workdir, None, counts)
