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
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from train.errors import InputError

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


def _shape_of(type_name: str) -> tuple[int, ...]:
    return tuple(int(d) for d in type_name[len("float64[") : -1].split(","))


def _column_order(columns: dict[str, np.ndarray], key: str) -> list[str]:
    return [key, *sorted(c for c in columns if c != key)]


def _encode_lines(columns: dict[str, np.ndarray], key: str) -> Iterator[str]:
    names = _column_order(columns, key)
    types = [_type_of(columns[n]) for n in names]
    yield json.dumps([[n, t] for n, t in zip(names, types, strict=True)], ensure_ascii=False, separators=(",", ":"))
    lists = []
    for n, t in zip(names, types, strict=True):
        v = columns[n]
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


def canonical_lines(columns: dict[str, np.ndarray], key: str) -> list[str]:
    return list(_encode_lines(columns, key))


def content_sha256(columns: dict[str, np.ndarray], key: str) -> str:
    h = hashlib.sha256()
    for line in _encode_lines(columns, key):
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def write_snapshot(path: Path, columns: dict[str, np.ndarray], key: str, sha256: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = _column_order(columns, key)
    arrow_types = {"float64": pa.float64(), "int64": pa.int64(), "string": pa.string(), "bytes": pa.binary()}
    arrays = []
    shapes = {}
    for n in names:
        t = _type_of(columns[n])
        if t.startswith("float64["):
            shapes[n] = list(_shape_of(t))
            flat = columns[n].reshape(len(columns[n]), -1)
            arrays.append(pa.array(flat.tolist(), type=pa.list_(pa.float64()), from_pandas=False))
        else:
            arrays.append(pa.array(columns[n].tolist(), type=arrow_types[t], from_pandas=False))
    # NaN stays NaN inside float columns (pa.array keeps it unless from_pandas=True), so the
    # round trip gives back exactly the hashed values.
    meta = {"shipyard.key": key, "shipyard.sha256": sha256}
    if shapes:
        meta["shipyard.shapes"] = json.dumps(shapes, sort_keys=True)
    table = pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(meta)
    pq.write_table(table, path)


def read_snapshot(path: Path) -> tuple[dict[str, np.ndarray], str, str]:
    """Columns, key and recorded hash of a snapshot. Raises InputError if it cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise InputError(f"snapshot: cannot read {path}: {e}") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if "shipyard.key" not in meta:
        raise InputError(f"snapshot: {path} was not written by train (no shipyard.key metadata)")
    cols: dict[str, np.ndarray] = {}
    shapes = json.loads(meta.get("shipyard.shapes", "{}"))
    for name, col in zip(table.column_names, table.columns, strict=True):
        values = col.to_pylist()
        if name in shapes:
            cols[name] = np.array(values, dtype=np.float64).reshape((len(values), *shapes[name]))
        elif pa.types.is_floating(col.type):
            cols[name] = np.array(values, dtype=np.float64)
        elif pa.types.is_integer(col.type):
            cols[name] = np.array(values, dtype=np.int64)
        else:
            cols[name] = np.array(values, dtype=object)
    return cols, meta["shipyard.key"], meta.get("shipyard.sha256", "")
