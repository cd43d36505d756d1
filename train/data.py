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

Every source is read in chunks (`chunk_rows` rows at a time, CSV and SQL alike; a SQL read uses a
server-side cursor where the driver has one), so reading holds one chunk, never the table. A CSV that
changes while it is read (appended to, rewritten) is refused; read it again once it is complete.

The as-of read returns the rows whose timestamp column is at or before the timestamp, in one
transaction (REPEATABLE READ on PostgreSQL, one read transaction on SQLite), so rows committed while
it runs are not seen. A timestamp column with a time zone is compared in UTC; one without is taken
as UTC. That is a faithful re-extraction only while rows are appended and never updated in place or
deleted: an updated row changes its content (and the snapshot hash), a deleted one disappears.
Tables that update rows need a history (valid-from/valid-to) table to read as of a time. One case no
as-of read can exclude: a row whose timestamp is earlier than the as-of time but whose transaction
commits after the read (a writer that stamps rows before a long transaction). The first read misses
it and a later read as of the same time finds it, and the two snapshots' hashes differ. Stamp rows
at commit time (or read as of a time older than the longest writing transaction) to rule that out.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from train.errors import InputError
from train.progress import Progress
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


def _to_float(name: str, values: np.ndarray, keys: Any) -> np.ndarray:
    out = np.full(len(values), np.nan, dtype=np.float64)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and v.strip() in ("", "NA", "NaN", "nan")):
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise InputError(f"data: column {name!r} is declared numeric but row {keys[i]!r} holds {v!r}") from None
    return out


def _to_int(name: str, values: np.ndarray, keys: Any) -> np.ndarray:
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


def _to_bytes(name: str, values: np.ndarray, keys: Any, base_dir: Path | None) -> np.ndarray:
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


def _to_tensor(name: str, shape: tuple[int, ...], values: np.ndarray, keys: Any) -> np.ndarray:
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


def type_chunk(
    spec: Spec, raw: dict[str, np.ndarray], key: str, base_dir: Path | None, counts: Counts
) -> dict[str, np.ndarray]:
    """Raw columns (any Python values) to canonical typed columns, in the source's order; rows missing
    the label or a required feature are dropped and counted. The key column stays text (see Counts)."""
    keys = _KeyNames(raw[key])
    for k in raw[key].tolist():
        if k is None:
            raise InputError(f"data: the key column {key!r} has missing values in {counts.source}")
        if counts.key_is_int and not (isinstance(k, (int, np.integer)) or (isinstance(k, str) and _INT.match(k))):
            counts.key_is_int = False
    texts = np.empty(len(raw[key]), dtype=object)
    texts[:] = [str(k) for k in raw[key].tolist()]
    cols: dict[str, np.ndarray] = {key: texts}
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
    counts.rows_read += len(texts)
    counts.dropped_missing_label += int((~keep).sum())
    for f in spec.features:
        if f.required:
            missing = is_missing(f.kind, cols[f.name]) & keep
            if missing.any():
                counts.dropped_missing_required[f.name] = counts.dropped_missing_required.get(f.name, 0) + int(
                    missing.sum()
                )
            keep &= ~missing
    if not keep.all():
        cols = {k: v[keep] for k, v in cols.items()}
    counts.rows_kept += len(cols[key])
    return cols


_INT = re.compile(r"-?[0-9]+\Z")


class _KeyNames:
    """Keys as messages name them: an integer key as a number."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys

    def __getitem__(self, i: int) -> Any:
        k = self.keys[i]
        return int(k) if isinstance(k, str) and _INT.match(k) else k


@dataclass
class Counts:
    """What one read of a source saw. The key column of every chunk is text; `key_is_int` tells, once
    the read is done, whether every key was an integer (a CSV cell of digits, an integer SQL value):
    then the keys are integers, ordered as numbers; otherwise strings."""

    source: str
    key: str
    as_of: str | None = None
    rows_read: int = 0
    rows_kept: int = 0
    dropped_missing_label: int = 0
    dropped_missing_required: dict[str, int] = field(default_factory=dict)
    key_is_int: bool = True

    def finish(self, spec: Spec) -> None:
        """Log what was dropped; refuse a read that kept no row."""
        if self.dropped_missing_label:
            log.info("dropped %d row(s) with a missing label %r", self.dropped_missing_label, spec.label)
        for name, n in self.dropped_missing_required.items():
            log.info("dropped %d row(s) missing the required feature %r", n, name)
        if self.rows_read == 0:
            raise InputError(f"data: {self.source} has no rows")
        if self.rows_kept == 0:
            raise InputError(f"data: every row of {self.source} misses the label {spec.label!r} or a required feature")


def final_keys(texts: np.ndarray, key_is_int: bool) -> np.ndarray:
    """The key column in its final type: int64 when every key was an integer, else str."""
    if key_is_int:
        return np.array([int(k) for k in texts.tolist()], dtype=np.int64)
    return texts


def check_labels(spec: Spec, distinct: list[Any], source: str) -> None:
    if len(distinct) < 2:
        what = "class" if spec.task == "classification" else "value"
        raise InputError(
            f"data: the label {spec.label!r} has a single {what} ({distinct[0]!r}) in {source}; nothing to learn"
        )


def duplicate_key(sorted_keys: np.ndarray) -> Any | None:
    """The first key that appears twice in a sorted key column, or None."""
    same = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    return (
        sorted_keys[same[0]].item()
        if len(same) and isinstance(sorted_keys[same[0]], np.generic)
        else (sorted_keys[same[0]] if len(same) else None)
    )


def rows_of(spec: Spec, reading: Reading) -> Rows:
    """Every row of a read in memory, sorted by key (for small data and tools; training streams)."""
    chunks = list(reading)
    key = reading.counts.key
    cols = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    cols[key] = final_keys(cols[key], reading.counts.key_is_int)
    order = np.argsort(cols[key], kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    dup = duplicate_key(cols[key])
    if dup is not None:
        raise InputError(f"data: the key column {key!r} is not unique in {reading.counts.source} ({dup!r} repeats)")
    check_labels(spec, np.unique(cols[spec.label]).tolist(), reading.counts.source)
    c = reading.counts
    return Rows(key, cols, c.source, c.as_of, c.dropped_missing_label, dict(c.dropped_missing_required))


def _require_columns(spec: Spec, available: list[str], source: str, key: str | None) -> None:
    needed = ([key] if key else []) + spec.feature_names + [spec.label]
    missing = [c for c in needed if c not in available]
    if missing:
        raise InputError(f"data: column {missing[0]!r} is missing from {source} (it has: {', '.join(available)})")


DEFAULT_CHUNK_ROWS = 65_536
PARQUET_SUFFIXES = (".parquet", ".pq")
CHUNK_BYTES = 64 << 20  # a chunk of wide rows (images, long text) is cut to about this much memory


def chunk_bytes(chunk: dict[str, np.ndarray]) -> int:
    """About what a typed chunk takes in memory (values, and a Python object's overhead for each string)."""
    total = 0
    for v in chunk.values():
        total += sum(len(x) for x in v.tolist()) + 56 * len(v) if v.dtype == object else v.nbytes
    return total


class Reading:
    """One pass over a source: iterating yields typed chunks (see `type_chunk`) in the source's order,
    at most `chunk_rows` rows each; `counts` says what was read, dropped and refused."""

    def __init__(self, spec: Spec, source: str | None, as_of: str | None, chunk_rows: int = DEFAULT_CHUNK_ROWS):
        if chunk_rows < 1:
            raise InputError(f"--chunk-rows must be at least 1, not {chunk_rows}")
        self.spec = spec
        self.chunk_rows = chunk_rows
        self.rows_next = chunk_rows
        if source is None or not is_sql_url(source):
            if as_of is not None:
                raise InputError(
                    "--as-of needs a SQL source (--source sqlite:///... or another SQLAlchemy URL); "
                    "a CSV or Parquet file has no timestamps"
                )
            self.path: Path | None = penguins_csv() if source is None else Path(source)
            self.url: str | None = None
            self.when: dt.datetime | None = None
            self.counts = Counts(str(self.path), spec.data.key)
        else:
            self.path = None
            self.url = source
            self.when = parse_as_of(as_of) if as_of is not None else dt.datetime.now(dt.UTC).replace(tzinfo=None)
            where = f"table {spec.data.table!r} at {_redact(source)}"
            self.counts = Counts(where, spec.data.key, self.when.isoformat())

    def _sized(self, chunk: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        """Size the next chunk: `chunk_rows` rows, or fewer while rows are wide enough that a chunk would
        pass CHUNK_BYTES (the chunk size is never the user's memory problem)."""
        size = chunk_bytes(chunk)
        self.rows_next = min(self.chunk_rows, max(1, int(rows * CHUNK_BYTES / size))) if size else self.chunk_rows
        return chunk

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        progress = Progress("read", log)
        self.rows_next = min(self.chunk_rows, 1024)  # a first chunk small enough to size the rows by
        if self.path is None:
            chunks = self._sql()
        elif self.path.suffix.lower() in PARQUET_SUFFIXES:
            chunks = self._parquet()
        else:
            chunks = self._csv()
        for chunk in chunks:
            progress.update(self.counts.rows_read)
            if len(chunk[self.counts.key]):
                yield chunk
        progress.done(self.counts.rows_read)
        self.counts.finish(self.spec)

    def _csv(self) -> Iterator[dict[str, np.ndarray]]:
        import csv
        import itertools

        path = self.path
        assert path is not None
        spec, key = self.spec, self.spec.data.key
        try:
            fh = open(path, newline="", encoding="utf-8")  # noqa: SIM115 - closed by the `with fh` below
        except OSError as e:
            raise InputError(f"data: cannot read {path}: {e.strerror}") from None
        with fh:
            before = os.fstat(fh.fileno())
            reader = csv.reader(fh)
            try:
                header = next(reader, None)
            except (UnicodeDecodeError, csv.Error) as e:
                raise InputError(f"data: cannot read {path}: {e}") from None
            if header is None:
                raise InputError(f"data: {path} is empty (no header, no rows)")
            has_key = key in header
            _require_columns(spec, header, str(path), key if has_key else None)
            wanted = list(dict.fromkeys([*([key] if has_key else []), *spec.feature_names, spec.label]))
            where = [header.index(h) for h in wanted]
            position = 0
            base_dir = path.resolve().parent
            while True:
                try:
                    body = list(itertools.islice(reader, self.rows_next))
                except (UnicodeDecodeError, csv.Error) as e:
                    raise InputError(f"data: cannot read {path} after line {position + 1}: {e}") from None
                _unchanged(path, fh, before)
                if not body:
                    break
                for i, r in enumerate(body):
                    if len(r) != len(header):
                        raise InputError(
                            f"data: {path} line {position + i + 2} has {len(r)} fields, the header has {len(header)}"
                        )
                raw = {}
                for h, j in zip(wanted, where, strict=True):
                    col = np.empty(len(body), dtype=object)
                    col[:] = [r[j] for r in body]
                    raw[h] = col
                if not has_key:
                    raw[key] = np.arange(position, position + len(body), dtype=np.int64).astype(object)
                position += len(body)
                yield self._sized(type_chunk(spec, raw, key, base_dir, self.counts), len(body))

    def _parquet(self) -> Iterator[dict[str, np.ndarray]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path
        assert path is not None
        spec, key = self.spec, self.spec.data.key
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the `with fh` below
            pf = pq.ParquetFile(fh)
        except OSError as e:
            raise InputError(f"data: cannot read {path}: {e.strerror or e}") from None
        except pa.ArrowInvalid as e:
            raise InputError(f"data: {path} is not a Parquet file: {e}") from None
        with fh:
            before = os.fstat(fh.fileno())
            header = pf.schema_arrow.names
            has_key = key in header
            _require_columns(spec, header, str(path), key if has_key else None)
            wanted = list(dict.fromkeys([*([key] if has_key else []), *spec.feature_names, spec.label]))
            position = 0
            base_dir = path.resolve().parent
            batches = pf.iter_batches(batch_size=256, columns=wanted)  # gathered into chunks of rows_next rows
            pending: list[Any] = []
            done = False
            while not done:
                try:
                    batch = next(batches, None)
                except (OSError, pa.ArrowInvalid) as e:
                    raise InputError(f"data: cannot read {path} after row {position}: {e}") from None
                _unchanged(path, fh, before)
                done = batch is None
                if batch is not None:
                    pending.append(batch)
                rows = sum(b.num_rows for b in pending)
                if not pending or (not done and rows < self.rows_next):
                    continue
                table = pa.Table.from_batches(pending)
                pending = []
                raw = {}
                for name in wanted:
                    col = np.empty(rows, dtype=object)
                    col[:] = table.column(name).to_pylist()
                    raw[name] = col
                if not has_key:
                    raw[key] = np.arange(position, position + rows, dtype=np.int64).astype(object)
                position += rows
                yield self._sized(type_chunk(spec, raw, key, base_dir, self.counts), rows)

    def _sql(self) -> Iterator[dict[str, np.ndarray]]:
        import sqlalchemy as sa

        spec, url, as_of = self.spec, self.url, self.when
        assert url is not None and as_of is not None
        table_name, ts, key = spec.data.table, spec.data.timestamp_column, spec.data.key
        shown = _redact(url)
        if not table_name or not ts:
            raise InputError("spec: a SQL source needs [data].table and [data].timestamp_column")
        try:
            parsed = sa.engine.make_url(url)
            engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
            raise InputError(f"data: {shown!r} is not a usable SQLAlchemy URL: {e}") from None
        except ImportError as e:
            raise InputError(f"data: {shown!r} needs a database driver that is not installed ({e})") from None
        db = parsed.database
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite and db and db != ":memory:" and not Path(db).is_file():
            # SQLite would create an empty database file here; a wrong path must not leave one behind.
            raise InputError(f"data: the SQLite database {db} does not exist")
        where = self.counts.source
        try:
            with engine.connect() as conn:
                if sqlite:
                    conn.exec_driver_sql("BEGIN")  # one read transaction (pysqlite does not begin one for reads)
                elif engine.dialect.name == "postgresql":
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                md = sa.MetaData()
                try:
                    table = sa.Table(table_name, md, autoload_with=conn)
                except sa.exc.NoSuchTableError:
                    raise InputError(f"data: there is no {where}") from None
                _require_columns(spec, [c.name for c in table.columns], where, key)
                if ts not in table.columns:
                    raise InputError(f"data: the timestamp column {ts!r} is missing from {where}")
                column = table.c[ts]
                cut = as_of.replace(tzinfo=dt.UTC) if getattr(column.type, "timezone", False) else as_of
                total, earliest = conn.execute(sa.select(sa.func.count(), sa.func.min(column))).one()
                if total == 0:
                    raise InputError(f"data: {where} is empty")
                wanted = [table.c[c] for c in dict.fromkeys([key, *spec.feature_names, spec.label])]
                names = [c.name for c in wanted]
                query = sa.select(*wanted).where(column <= cut).order_by(table.c[key])
                result = conn.execution_options(stream_results=True, yield_per=self.chunk_rows).execute(query)
                while part := result.fetchmany(self.rows_next):
                    raw = {n: np.empty(len(part), dtype=object) for n in names}
                    for i, rec in enumerate(part):
                        for n, v in zip(names, rec, strict=True):
                            raw[n][i] = v
                    yield self._sized(type_chunk(spec, raw, key, None, self.counts), len(part))
                conn.rollback()
        except sa.exc.OperationalError as e:
            raise InputError(f"data: cannot read {where}: {e.orig}") from None
        finally:
            engine.dispose()
        if self.counts.rows_read == 0:
            raise InputError(
                f"data: no rows of {where} at or before as-of {as_of.isoformat()} (the earliest {ts} is {earliest})"
            )
        log.info("read %d of %d rows of %s as of %s", self.counts.rows_read, total, where, as_of.isoformat())


def _unchanged(path: Path, fh: Any, before: os.stat_result) -> None:
    now = os.fstat(fh.fileno())
    if (now.st_size, now.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InputError(
            f"data: {path} changed while it was read (size {before.st_size} -> {now.st_size} bytes); "
            "read it again once it is complete"
        )


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is reported as given
        return url


def is_sql_url(source: str) -> bool:
    return "://" in source


def load_rows(spec: Spec, source: str | None, as_of: str | None, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Rows:
    """Every row of `source` in memory (None: the penguins CSV; a path: a CSV, or Parquet by its suffix;
    a URL: SQL as of `as_of`)."""
    return rows_of(spec, Reading(spec, source, as_of, chunk_rows))


def describe_source(source: str | None) -> dict[str, Any]:
    if source is None:
        return {"kind": "csv", "location": "palmerpenguins:data/penguins.csv"}
    if is_sql_url(source):
        return {"kind": "sql", "location": _redact(source)}
    if Path(source).suffix.lower() in PARQUET_SUFFIXES:
        return {"kind": "parquet", "location": str(source)}
    return {"kind": "csv", "location": str(source)}
