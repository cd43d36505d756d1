"""Reading the training rows: a CSV file, or a SQL table read "as of" a timestamp.

Whatever the source, the result is a `Rows`: one numpy column per key, feature and label, in
canonical dtypes fixed by the spec (numeric float64 with NaN for missing; string as Python `str`
with "" for missing; integer int64 with -1 for missing; the label str for classification, float64
for regression). Rows with a missing label are dropped and counted.

Free text is a string column ("" when missing). An image column holds, in a CSV, a path to a PNG or
JPEG file relative to the CSV's folder (or absolute); in a SQL table, the encoded bytes (BLOB / bytea).
Either way the rows carry the file's bytes from here on (b"" when missing): the snapshot holds and
hashes them, so a moved or edited image file cannot change a run. A numeric feature with a `shape`
holds a JSON array per cell (nested or flat, prod(shape) numbers, null for a missing element; an
empty cell is all missing); its column is float64 [rows, *shape].

Rows missing a `required` feature are dropped and counted per feature, like rows missing the label.

The CSV has no key column: each row gets its 0-based position in the file as `row_id`, which is
stable while rows are only appended. A SQL table keeps its own key.

The as-of read returns the rows whose timestamp column is at or before the timestamp. That is a
faithful re-extraction only while rows are appended and never updated in place or deleted: an
updated row changes its content (and the snapshot hash), a deleted one disappears. Tables that
update rows need a history (valid-from/valid-to) table to read as of a time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from train.errors import InputError
from train.spec import Spec

log = logging.getLogger(__name__)

MISSING_INT = -1


def penguins_csv() -> Path:
    """The penguins CSV shipped inside the palmerpenguins package (no download)."""
    import palmerpenguins

    return Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"


@dataclass
class Rows:
    """Typed columns of the rows used for training, sorted by key."""

    key: str
    columns: dict[str, np.ndarray]
    source: str
    as_of: str | None = None
    dropped_missing_label: int = 0
    dropped_missing_required: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns[self.key])

    def take(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[mask] for k, v in self.columns.items()}


def parse_as_of(text: str) -> dt.datetime:
    """An ISO-8601 timestamp; an aware one is converted to UTC, a naive one is taken as UTC."""
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--as-of: {text!r} is not an ISO-8601 timestamp (e.g. 2024-01-05T12:00:00)") from None
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    return t


def _is_na(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        out[i] = v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v in ("", "NA"))
    return out


def _to_float(name: str, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    out = np.full(len(values), np.nan, dtype=np.float64)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and v.strip() in ("", "NA", "NaN", "nan")):
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise InputError(f"data: column {name!r} is declared numeric but row {keys[i]!r} holds {v!r}") from None
    return out


def _to_int(name: str, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    floats = _to_float(name, values, keys)
    out = np.full(len(values), MISSING_INT, dtype=np.int64)
    for i, f in enumerate(floats):
        if np.isnan(f):
            continue
        if f != np.floor(f) or abs(f) > 2**62:
            raise InputError(f"data: column {name!r} is declared integer but row {keys[i]!r} holds {values[i]!r}")
        out[i] = int(f)
    return out


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def image_format(data: bytes) -> str | None:
    """ "png", "jpeg" or None, from the leading bytes."""
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    return None


def _to_bytes(name: str, values: np.ndarray, keys: np.ndarray, base_dir: Path | None) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and v.strip() == "") or (isinstance(v, float) and np.isnan(v)):
            out[i] = b""
            continue
        if isinstance(v, (bytes, bytearray, memoryview)):
            data = bytes(v)
        elif isinstance(v, str) and base_dir is not None:
            path = base_dir / v
            try:
                data = path.read_bytes()
            except OSError as e:
                raise InputError(f"data: image {name!r} of row {keys[i]!r}: cannot read {path}: {e.strerror}") from None
        else:
            raise InputError(
                f"data: image {name!r} of row {keys[i]!r} holds {type(v).__name__}; a SQL table holds the encoded "
                "bytes (BLOB), a CSV a path relative to its folder"
            )
        if data and image_format(data) is None:
            raise InputError(f"data: image {name!r} of row {keys[i]!r} is not a PNG or JPEG file")
        out[i] = data
    return out


def _to_tensor(name: str, shape: tuple[int, ...], values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    import json

    size = int(np.prod(shape))
    out = np.full((len(values), size), np.nan, dtype=np.float64)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and v.strip() == ""):
            continue
        try:
            parsed = json.loads(v) if isinstance(v, str) else v
            flat = np.asarray(parsed, dtype=object).reshape(-1)
            if flat.size != size:
                raise ValueError(f"{flat.size} numbers, the shape {list(shape)} needs {size}")
            out[i] = [np.nan if x is None else float(x) for x in flat]
        except (ValueError, TypeError) as e:
            raise InputError(
                f"data: column {name!r} is declared numeric of shape {list(shape)} but row {keys[i]!r} holds "
                f"{str(v)[:60]!r} ({e})"
            ) from None
    return out.reshape((len(values), *shape))


def is_missing(kind: str, column: np.ndarray) -> np.ndarray:
    """Per row: is the value missing (NaN anywhere, "", b"", -1 for integer categories)?"""
    if kind == "numeric":
        return np.isnan(column.reshape(len(column), -1)).any(axis=1)
    if kind == "integer":
        return column == MISSING_INT
    if kind == "image":
        return np.array([len(v) == 0 for v in column.tolist()], dtype=bool)
    return np.array([v == "" for v in column.tolist()], dtype=bool)


def _to_str(values: np.ndarray) -> np.ndarray:
    na = _is_na(values)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if na[i]:
            out[i] = ""
        elif isinstance(v, float) and v == np.floor(v):
            out[i] = str(int(v))  # a SQL REAL column read as a string category: 1.0 -> "1"
        else:
            out[i] = str(v)
    return out


def type_columns(
    spec: Spec,
    raw: dict[str, np.ndarray],
    key: str,
    source: str,
    as_of: str | None = None,
    base_dir: Path | None = None,
) -> Rows:
    """Turn raw columns (any Python values) into canonical typed columns, sorted by key."""
    n = len(raw[key])
    if n == 0:
        raise InputError(f"data: {source} has no rows")
    keys = raw[key]
    if any(k is None for k in keys):
        raise InputError(f"data: the key column {key!r} has missing values in {source}")
    if len(set(keys.tolist())) != n:
        raise InputError(f"data: the key column {key!r} is not unique in {source}")
    cols: dict[str, np.ndarray] = {}
    if all(isinstance(k, (int, np.integer)) for k in keys):
        cols[key] = np.asarray(keys, dtype=np.int64)
    else:
        cols[key] = np.array([str(k) for k in keys], dtype=object)
    for f in spec.features:
        if f.kind == "numeric" and f.shape:
            cols[f.name] = _to_tensor(f.name, f.shape, raw[f.name], keys)
        elif f.kind == "numeric":
            cols[f.name] = _to_float(f.name, raw[f.name], keys)
        elif f.kind == "image":
            cols[f.name] = _to_bytes(f.name, raw[f.name], keys, base_dir)
        elif f.kind == "integer":
            cols[f.name] = _to_int(f.name, raw[f.name], keys)
        else:
            cols[f.name] = _to_str(raw[f.name])
    label = raw[spec.label]
    if spec.task == "classification":
        lab = _to_str(label)
        keep = lab != ""
    else:
        lab = _to_float(spec.label, label, keys)
        keep = ~np.isnan(lab)
    cols[spec.label] = lab
    dropped = int((~keep).sum())
    if dropped:
        log.info("dropped %d row(s) with a missing label %r", dropped, spec.label)
    dropped_required: dict[str, int] = {}
    for f in spec.features:
        if f.required:
            missing = is_missing(f.kind, cols[f.name]) & keep
            if missing.any():
                dropped_required[f.name] = int(missing.sum())
                log.info("dropped %d row(s) missing the required feature %r", int(missing.sum()), f.name)
            keep &= ~missing
    cols = {k: v[keep] for k, v in cols.items()}
    if len(cols[key]) == 0:
        raise InputError(f"data: every row of {source} misses the label {spec.label!r} or a required feature")
    order = np.argsort(cols[key], kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    distinct = np.unique(cols[spec.label])
    if len(distinct) < 2:
        what = "class" if spec.task == "classification" else "value"
        raise InputError(
            f"data: the label {spec.label!r} has a single {what} ({distinct[0]!r}) in {source}; nothing to learn"
        )
    return Rows(
        key=key,
        columns=cols,
        source=source,
        as_of=as_of,
        dropped_missing_label=dropped,
        dropped_missing_required=dropped_required,
    )


def _require_columns(spec: Spec, available: list[str], source: str, key: str | None) -> None:
    needed = ([key] if key else []) + spec.feature_names + [spec.label]
    missing = [c for c in needed if c not in available]
    if missing:
        raise InputError(f"data: column {missing[0]!r} is missing from {source} (it has: {', '.join(available)})")


def read_csv(spec: Spec, path: Path) -> Rows:
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            body = list(reader)
    except OSError as e:
        raise InputError(f"data: cannot read {path}: {e.strerror}") from None
    if header is None:
        raise InputError(f"data: {path} is empty (no header, no rows)")
    key = spec.data.key
    has_key = key in header
    _require_columns(spec, header, str(path), key if has_key else None)
    if not body:
        raise InputError(f"data: {path} has no rows")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise InputError(f"data: {path} line {i + 2} has {len(r)} fields, the header has {len(header)}")
    raw = {h: np.array([r[j] for r in body], dtype=object) for j, h in enumerate(header)}
    if has_key:
        keys = raw[key].tolist()
        if all(k.lstrip("-").isdigit() for k in keys):  # an integer key is read as one; others stay strings
            raw[key] = np.array([int(k) for k in keys], dtype=object)
    else:
        raw[key] = np.arange(len(body), dtype=np.int64).astype(object)
    return type_columns(spec, raw, key, str(path), base_dir=path.resolve().parent)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is reported as given
        return url


def read_sql(spec: Spec, url: str, as_of: dt.datetime) -> Rows:
    import sqlalchemy as sa

    table_name = spec.data.table
    ts = spec.data.timestamp_column
    key = spec.data.key
    shown = _redact(url)
    if not table_name or not ts:
        raise InputError("spec: a SQL source needs [data].table and [data].timestamp_column")
    try:
        parsed = sa.engine.make_url(url)
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
        raise InputError(f"data: {shown!r} is not a usable SQLAlchemy URL: {e}") from None
    db = parsed.database
    if parsed.get_backend_name() == "sqlite" and db and db != ":memory:" and not Path(db).is_file():
        # SQLite would create an empty database file here; a wrong path must not leave one behind.
        raise InputError(f"data: the SQLite database {db} does not exist")
    where = f"table {table_name!r} at {shown}"
    try:
        with engine.connect() as conn:
            md = sa.MetaData()
            try:
                table = sa.Table(table_name, md, autoload_with=conn)
            except sa.exc.NoSuchTableError:
                raise InputError(f"data: there is no {where}") from None
            _require_columns(spec, [c.name for c in table.columns], where, key)
            if ts not in table.columns:
                raise InputError(f"data: the timestamp column {ts!r} is missing from {where}")
            total, earliest = conn.execute(sa.select(sa.func.count(), sa.func.min(table.c[ts]))).one()
            if total == 0:
                raise InputError(f"data: {where} is empty")
            wanted = [table.c[c] for c in dict.fromkeys([key, *spec.feature_names, spec.label])]
            result = conn.execute(sa.select(*wanted).where(table.c[ts] <= as_of).order_by(table.c[key]))
            records = result.all()
    except sa.exc.OperationalError as e:
        raise InputError(f"data: cannot read {where}: {e.orig}") from None
    finally:
        engine.dispose()
    if not records:
        raise InputError(
            f"data: no rows of {where} at or before as-of {as_of.isoformat()} (the earliest {ts} is {earliest})"
        )
    names = [c.name for c in wanted]
    raw = {n: np.empty(len(records), dtype=object) for n in names}
    for i, rec in enumerate(records):
        for n, v in zip(names, rec, strict=True):
            raw[n][i] = v
    log.info("read %d of %d rows of %s as of %s", len(records), total, where, as_of.isoformat())
    return type_columns(spec, raw, key, where, as_of=as_of.isoformat())


def is_sql_url(source: str) -> bool:
    return "://" in source


def load_rows(spec: Spec, source: str | None, as_of: str | None) -> Rows:
    """Read the rows from `source` (None: the penguins CSV; a path: a CSV; a URL: SQL as of `as_of`)."""
    if source is None or not is_sql_url(source):
        if as_of is not None:
            raise InputError(
                "--as-of needs a SQL source (--source sqlite:///... or another SQLAlchemy URL); a CSV has no timestamps"
            )
        path = penguins_csv() if source is None else Path(source)
        return read_csv(spec, path)
    when = parse_as_of(as_of) if as_of is not None else dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return read_sql(spec, source, when)


def describe_source(source: str | None) -> dict[str, Any]:
    if source is None:
        return {"kind": "csv", "location": "palmerpenguins:data/penguins.csv"}
    if is_sql_url(source):
        return {"kind": "sql", "location": _redact(source)}
    return {"kind": "csv", "location": str(source)}
