"""The exact rows of a run, written to Parquet, and a SHA-256 over a canonical encoding of them.

The hash does not depend on the Parquet writer: it is computed over a text encoding whose every
choice is fixed here. Columns: the key first, then the other columns sorted by name. A header line,
the JSON array of [name, type] pairs; then one line per row in key order, the JSON array of its
values: floats in Python's shortest round-trip form (`repr`), NaN as null, integers in decimal,
strings as JSON strings (UTF-8, not escaped to ASCII), bytes (images) as their standard base64 in a
JSON string, a fixed-shape float column (type "float64[d0,d1,...]") as the flat JSON array of its
row's numbers in C order. Lines end with "\\n".

>>> import numpy as np
>>> cols = {"row_id": np.array([0, 1]), "x": np.array([1.5, np.nan]), "s": np.array(["a", "é"], dtype=object)}
>>> canonical_lines(cols, "row_id")[:2]
['[["row_id","int64"],["s","string"],["x","float64"]]', '[0,"a",1.5]']
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from train.errors import InputError
from train.store import shape_of

SNAPSHOT_FILE = "snapshot.parquet"


def _type_of(values: np.ndarray) -> str:
    if values.dtype == np.float64 and values.ndim > 1:
        return f"float64[{','.join(str(d) for d in values.shape[1:])}]"
    if values.dtype == np.float64:
        return "float64"
    if values.dtype == np.int64:
        return "int64"
    if values.dtype == object and len(values) and all(isinstance(v, bytes) for v in values.tolist()):
        return "bytes"
    if values.dtype == object:
        return "string"
    raise TypeError(f"no canonical encoding for dtype {values.dtype}")


def column_types(columns: dict[str, np.ndarray]) -> dict[str, str]:
    return {n: _type_of(v) for n, v in columns.items()}


def _column_order(columns: Mapping[str, object], key: str) -> list[str]:
    return [key, *sorted(c for c in columns if c != key)]


def _header(names: list[str], types: dict[str, str]) -> str:
    return json.dumps([[n, types[n]] for n in names], ensure_ascii=False, separators=(",", ":"))


def _row_lines(columns: dict[str, np.ndarray], names: list[str], types: dict[str, str]) -> Iterator[str]:
    lists = []
    for n in names:
        t, v = types[n], columns[n]
        if t == "float64":
            lists.append([None if math.isnan(x) else x for x in v.tolist()])
        elif t.startswith("float64["):
            lists.append([[None if math.isnan(x) else x for x in row] for row in v.reshape(len(v), -1).tolist()])
        elif t == "bytes":
            lists.append([base64.b64encode(b).decode("ascii") for b in v.tolist()])
        else:
            lists.append(v.tolist())
    for row in zip(*lists, strict=True):
        yield json.dumps(row, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _encode_lines(columns: dict[str, np.ndarray], key: str) -> Iterator[str]:
    names = _column_order(columns, key)
    types = column_types(columns)
    yield _header(names, types)
    yield from _row_lines(columns, names, types)


def canonical_lines(columns: dict[str, np.ndarray], key: str) -> list[str]:
    return list(_encode_lines(columns, key))


def content_sha256(columns: dict[str, np.ndarray], key: str) -> str:
    h = hashlib.sha256()
    for line in _encode_lines(columns, key):
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


_ARROW_TYPES = {"float64": "float64", "int64": "int64", "string": "string", "bytes": "binary"}


class SnapshotWriter:
    """The snapshot of a run, written and hashed block by block as the rows pass in key order.

    `path` None hashes only (a reproduction checks a snapshot it already has). The hash is the one
    `content_sha256` computes over all the rows at once: one header line, then one line per row."""

    def __init__(self, path: Path | None, key: str, types: dict[str, str]) -> None:
        self.path = path
        self.key = key
        self.types = dict(types)
        self.names = _column_order(types, key)
        self.rows = 0
        self._hash = hashlib.sha256(_header(self.names, self.types).encode("utf-8") + b"\n")
        self._writer = None
        self._shapes = {n: list(shape_of(t)) for n, t in self.types.items() if t.startswith("float64[")}
        if path is not None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            fields = []
            for n in self.names:
                t = self.types[n]
                arrow = pa.list_(pa.float64()) if n in self._shapes else getattr(pa, _ARROW_TYPES[t])()
                fields.append(pa.field(n, arrow))
            meta = {"shipyard.key": key}
            if self._shapes:
                meta["shipyard.shapes"] = json.dumps(self._shapes, sort_keys=True)
            self._schema = pa.schema(fields, metadata=meta)
            self._writer = pq.ParquetWriter(path, self._schema)

    def write(self, block: dict[str, np.ndarray]) -> None:
        h = self._hash
        for line in _row_lines(block, self.names, self.types):
            h.update(line.encode("utf-8"))
            h.update(b"\n")
        self.rows += len(block[self.key])
        if self._writer is not None:
            import pyarrow as pa

            arrays = []
            for n in self.names:
                values = block[n]
                if n in self._shapes:
                    arrays.append(pa.array(values.reshape(len(values), -1).tolist(), type=pa.list_(pa.float64())))
                else:
                    # NaN stays NaN inside float columns (from_pandas=False), so the round trip gives back
                    # exactly the hashed values.
                    arrays.append(pa.array(values.tolist(), type=self._schema.field(n).type, from_pandas=False))
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> str:
        """The content hash; the Parquet file records it in its metadata."""
        sha = self._hash.hexdigest()
        if self._writer is not None:
            self._writer.add_key_value_metadata({"shipyard.sha256": sha})
            self._writer.close()
        return sha

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()


def write_snapshot(path: Path, columns: dict[str, np.ndarray], key: str, sha256: str) -> None:
    """All the rows at once (key order); `sha256` must be their `content_sha256`."""
    w = SnapshotWriter(path, key, column_types(columns))
    w.write(columns)
    got = w.close()
    if got != sha256:
        raise ValueError(f"write_snapshot: the rows hash to {got}, not {sha256}")


def _open(path: Path) -> tuple[object, dict[str, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise InputError(f"snapshot: cannot read {path}: {e}") from None
    raw = pf.metadata.metadata or {}
    meta = {k.decode(): v.decode() for k, v in raw.items()}
    if "shipyard.key" not in meta:
        raise InputError(f"snapshot: {path} was not written by train (no shipyard.key metadata)")
    return pf, meta


def _columns_of(batch: object, shapes: dict[str, list[int]]) -> dict[str, np.ndarray]:
    import pyarrow as pa

    cols: dict[str, np.ndarray] = {}
    for name, col in zip(batch.schema.names, batch.columns, strict=True):  # type: ignore[attr-defined]
        values = col.to_pylist()
        if name in shapes:
            cols[name] = np.array(values, dtype=np.float64).reshape((len(values), *shapes[name]))
        elif pa.types.is_floating(col.type):
            cols[name] = np.array(values, dtype=np.float64)
        elif pa.types.is_integer(col.type):
            cols[name] = np.array(values, dtype=np.int64)
        else:
            out = np.empty(len(values), dtype=object)
            out[:] = values
            cols[name] = out
    return cols


def snapshot_info(path: Path) -> tuple[str, str, int]:
    """Key, recorded hash and row count of a snapshot, from its footer."""
    pf, meta = _open(path)
    return meta["shipyard.key"], meta.get("shipyard.sha256", ""), pf.metadata.num_rows  # type: ignore[attr-defined]


def iter_snapshot(path: Path, block_rows: int) -> Iterator[dict[str, np.ndarray]]:
    """The snapshot's rows in key order, `block_rows` at a time, in their canonical dtypes."""
    pf, meta = _open(path)
    shapes = json.loads(meta.get("shipyard.shapes", "{}"))
    for batch in pf.iter_batches(batch_size=block_rows):  # type: ignore[attr-defined]
        yield _columns_of(batch, shapes)


def read_snapshot(path: Path) -> tuple[dict[str, np.ndarray], str, str]:
    """Columns, key and recorded hash of a snapshot. Raises InputError if it cannot be read."""
    key, sha, _ = snapshot_info(path)
    blocks = list(iter_snapshot(path, 1 << 16))
    cols = {n: np.concatenate([b[n] for b in blocks]) for n in blocks[0]} if blocks else {}
    return cols, key, sha
