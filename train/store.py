"""Columns on disk, appended block by block and read back memory-mapped, by slice or by row indices.

Training data passes through here between the source and `model.fit`, so that no step holds every row
in memory: the rows as read (in the source's order), then each split in key order. A store is a folder:

    columns.json         {"rows": n, "types": {name: type}} (written last: a store without it is incomplete)
    <i>.values           fixed-width columns: the raw little-endian values, row after row
    <i>.offsets <i>.data strings and bytes: n + 1 int64 offsets, then the values back to back (UTF-8 for strings)

Types are the snapshot's canonical ones (`train.snapshot`): "float64", "float64[d0,...]", "int64",
"string", "bytes". Reading maps the files, so the operating system pages them in and out; a read
returns ordinary numpy arrays (object arrays of str or bytes for the variable-width types).

>>> import tempfile, numpy as np
>>> folder = Path(tempfile.mkdtemp()) / "store"
>>> w = ColumnWriter(folder, {"k": "int64", "s": "string", "t": "float64[2]"})
>>> w.append({"k": np.array([1, 2]), "s": np.array(["a", "é"], dtype=object), "t": np.ones((2, 2))})
>>> w.append({"k": np.array([3]), "s": np.array([""], dtype=object), "t": np.zeros((1, 2))})
>>> store = w.close()
>>> len(store), store.take(np.array([2, 0]))["s"].tolist(), store.slice(1, 3)["t"].shape
(3, ['', 'a'], (2, 2))
"""

from __future__ import annotations

import contextlib
import json
import mmap
from pathlib import Path
from typing import BinaryIO

import numpy as np

META = "columns.json"


def shape_of(type_name: str) -> tuple[int, ...]:
    """The row shape of a "float64[d0,...]" type; () for the others."""
    if not type_name.startswith("float64["):
        return ()
    return tuple(int(d) for d in type_name[len("float64[") : -1].split(","))


def _fixed_dtype(type_name: str) -> np.dtype | None:
    if type_name.startswith("float64"):
        return np.dtype("<f8")
    if type_name == "int64":
        return np.dtype("<i8")
    return None


class ColumnWriter:
    """Appends blocks of rows (a dict of equally long columns of the declared types) to a new store."""

    def __init__(self, folder: Path, types: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=False)
        self.folder = folder
        self.types = dict(types)
        self.rows = 0
        self._open = contextlib.ExitStack()
        self._files: dict[str, tuple[BinaryIO, BinaryIO | None]] = {}
        self._ends: dict[str, int] = {}
        for i, (name, t) in enumerate(self.types.items()):
            if _fixed_dtype(t) is not None:
                self._files[name] = (self._create(folder / f"{i}.values"), None)
            else:
                offsets = self._create(folder / f"{i}.offsets")
                offsets.write(np.zeros(1, dtype="<i8").tobytes())
                self._files[name] = (self._create(folder / f"{i}.data"), offsets)
                self._ends[name] = 0

    def _create(self, path: Path) -> BinaryIO:
        return self._open.enter_context(open(path, "wb"))

    def append(self, columns: dict[str, np.ndarray]) -> None:
        n = len(columns[next(iter(self.types))])
        for name, t in self.types.items():
            values = columns[name]
            if len(values) != n:
                raise ValueError(f"column {name!r} has {len(values)} rows, the block has {n}")
            data, offsets = self._files[name]
            dtype = _fixed_dtype(t)
            if dtype is not None:
                data.write(np.ascontiguousarray(values, dtype=dtype).tobytes())
                continue
            encoded = [v.encode("utf-8") for v in values.tolist()] if t == "string" else values.tolist()
            lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=n)
            ends = self._ends[name] + np.cumsum(lengths)
            data.write(b"".join(encoded))
            assert offsets is not None
            offsets.write(ends.astype("<i8").tobytes())
            if n:
                self._ends[name] = int(ends[-1])
        self.rows += n

    def abort(self) -> None:
        """Close the files of a store that will not be completed (it stays without columns.json)."""
        self._open.close()

    def close(self) -> ColumnStore:
        self._open.close()
        (self.folder / META).write_text(json.dumps({"rows": self.rows, "types": self.types}), encoding="utf-8")
        return ColumnStore(self.folder)


class ColumnStore:
    """A complete store, read memory-mapped."""

    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        self.folder = folder
        self.rows: int = meta["rows"]
        self.types: dict[str, str] = meta["types"]
        self._fixed: dict[str, np.ndarray] = {}
        self._offsets: dict[str, np.ndarray] = {}
        self._data: dict[str, mmap.mmap | bytes] = {}
        for i, (name, t) in enumerate(self.types.items()):
            dtype = _fixed_dtype(t)
            if dtype is not None:
                shape = (self.rows, *shape_of(t))
                self._fixed[name] = (
                    np.memmap(folder / f"{i}.values", dtype=dtype, mode="r", shape=shape)
                    if self.rows
                    else np.zeros(shape, dtype=dtype)
                )
            else:
                self._offsets[name] = np.memmap(folder / f"{i}.offsets", dtype="<i8", mode="r", shape=(self.rows + 1,))
                path = folder / f"{i}.data"
                if path.stat().st_size:
                    with open(path, "rb") as fh:
                        self._data[name] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                else:
                    self._data[name] = b""

    def __len__(self) -> int:
        return self.rows

    def row_bytes(self, names: list[str] | None = None) -> float:
        """The mean bytes a row takes on disk (of these columns): what sizes the blocks read at a time."""
        if not self.rows:
            return 0.0
        total = 0
        for name in names or list(self.types):
            if name in self._fixed:
                total += self._fixed[name].nbytes
            else:
                total += int(self._offsets[name][-1]) + 8 * self.rows
        return total / self.rows

    def lengths(self, name: str, start: int, stop: int) -> np.ndarray:
        """Byte lengths of a string or bytes column's values in rows [start, stop), without reading them."""
        ends = np.asarray(self._offsets[name][start : stop + 1])
        return np.diff(ends)

    def _variable(self, name: str, starts: list[int], stops: list[int]) -> np.ndarray:
        data = self._data[name]
        out = np.empty(len(starts), dtype=object)
        if self.types[name] == "string":
            out[:] = [data[a:b].decode("utf-8") for a, b in zip(starts, stops, strict=True)]
        else:
            out[:] = [data[a:b] for a, b in zip(starts, stops, strict=True)]
        return out

    def slice(self, start: int, stop: int, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Rows [start, stop) as in-memory arrays."""
        out = {}
        for name in names or list(self.types):
            if name in self._fixed:
                out[name] = np.array(self._fixed[name][start:stop])
            else:
                ends = self._offsets[name][start : stop + 1].tolist()
                out[name] = self._variable(name, ends[:-1], ends[1:])
        return out

    def take(self, rows: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """The rows at these positions, in this order, as in-memory arrays."""
        rows = np.asarray(rows, dtype=np.int64)
        out = {}
        for name in names or list(self.types):
            if name in self._fixed:
                out[name] = self._fixed[name][rows]
            else:
                offsets = self._offsets[name]
                out[name] = self._variable(name, offsets[rows].tolist(), offsets[rows + 1].tolist())
        return out

    def close(self) -> None:
        for data in self._data.values():
            if isinstance(data, mmap.mmap):
                data.close()
        self._fixed.clear()
        self._offsets.clear()
        self._data.clear()


class ArrayTable:
    """Columns already in memory, read like a store (for callers that hold their rows anyway)."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = columns
        self.rows = len(next(iter(columns.values()))) if columns else 0

    def __len__(self) -> int:
        return self.rows

    def slice(self, start: int, stop: int, names: list[str] | None = None) -> dict[str, np.ndarray]:
        return {k: self.columns[k][start:stop] for k in names or list(self.columns)}

    def take(self, rows: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        return {k: self.columns[k][rows] for k in names or list(self.columns)}

    def lengths(self, name: str, start: int, stop: int) -> np.ndarray:
        return np.array([len(v) for v in self.columns[name][start:stop].tolist()], dtype=np.int64)
