"""Where ShadowClient records go: a real database, written in batches off the request path.

- SQLiteSink(path): the default, standard library only.
- JsonLinesSink(path): one JSON object per line.
- SQLAlchemySink(url): any SQLAlchemy database (PostgreSQL, ...), with the `sqlalchemy` extra.

Every sink writes from a thread of its own, in batches (`batch_size` records or every `flush_seconds`).
What it promises:
- `write()` never blocks and never raises for a full queue: the queue holds `queue_size` records
  (default 10,000); beyond that a record is dropped and counted (`stats()["dropped"]`).
- A write that fails because the database is busy or locked (or another transient error) is retried
  with backoff (50 ms doubling to 2 s) for as long as it takes; other errors are retried 5 times, then
  the batch is counted as `failed` and logged. Nothing is lost without being counted.
- A failing retention purge is logged and tried again later; it never stops the writer.
- `close(timeout)` always closes: it flushes what is queued, waiting up to `close_timeout` seconds
  (default 30), then counts what it could not write (`unwritten_at_close`), logs it, and returns `stats()`.
- At close, a sink that keeps statistics (SQLite, JSON Lines, SQLAlchemy) writes one row of counters:
  the ShadowClient's (`record_stats`) and its own drops and failures, which the shadow report shows.

Shadow logs hold raw inputs, so a sink takes an `allowlist` of input fields to keep (others are
dropped; a record whose every field is dropped is still written, counted in `emptied_by_allowlist`
and logged once) and/or a `redact(record)` hook, and a `retention_days` after which old records are
purged.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("shipyard_client.shadow")

Record = dict[str, Any]
COLUMNS = (
    "request_id",
    "time",
    "method",
    "primary_model",
    "primary_version",
    "shadow_model",
    "shadow_version",
    "inputs",
    "primary_outputs",
    "shadow_outputs",
    "primary_ms",
    "shadow_ms",
    "error",
)
_JSON_COLUMNS = ("inputs", "primary_outputs", "shadow_outputs")
QUEUE_SIZE = 10_000
CLOSE_TIMEOUT = 30.0
FIRST_BACKOFF, MAX_BACKOFF = 0.05, 2.0
PERMANENT_ATTEMPTS = 5
PURGE_EVERY, PURGE_RETRY = 3600.0, 60.0
STATS_KEYS = ("sampled", "dropped", "shadow_errors", "records_dropped", "records_failed", "records_unwritten")


def _allow(inputs: Any, allowed: set[str]) -> Any:
    """Keep the allowed fields of inputs: a mapping of columns, rows of mappings, or tf.Example-like dicts."""
    if isinstance(inputs, list):
        return [_allow(row, allowed) for row in inputs]
    if isinstance(inputs, dict):
        feature = inputs.get("features", {}).get("feature") if isinstance(inputs.get("features"), dict) else None
        if isinstance(feature, dict):
            return dict(inputs, features=dict(inputs["features"], feature=_allow(feature, allowed)))
        return {k: v for k, v in inputs.items() if k in allowed}
    return inputs


def _empty(inputs: Any) -> bool:
    if isinstance(inputs, list):
        return all(_empty(r) for r in inputs)
    return isinstance(inputs, dict) and not inputs


class Sink:
    """The batching writer thread; subclasses implement `_write(records)`, `_purge(before)` and, to keep
    counters, `_write_stats(stats)`."""

    def __init__(
        self,
        *,
        batch_size: int = 200,
        flush_seconds: float = 1.0,
        allowlist: Sequence[str] | None = None,
        redact: Callable[[Record], Record] | None = None,
        retention_days: float | None = None,
        queue_size: int = QUEUE_SIZE,
        close_timeout: float = CLOSE_TIMEOUT,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.allowlist = set(allowlist) if allowlist is not None else None
        self.redact = redact
        self.retention_days = retention_days
        self.close_timeout = close_timeout
        self._queue: queue.Queue[Record | None] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name=f"{type(self).__name__}-writer", daemon=True)
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._deadline: float | None = None
        self._client_stats: dict[str, int] | None = None
        self.written = self.dropped = self.failed = self.unwritten_at_close = self.emptied_by_allowlist = 0
        self.stats_written = False

    def _start(self) -> None:
        self._thread.start()
        self._started = True

    def stats(self) -> dict[str, int]:
        """Records written, dropped (queue full), failed (a permanent error), not written by the close
        deadline, emptied by the allowlist, and still queued."""
        with self._lock:
            return {
                "written": self.written,
                "dropped": self.dropped,
                "failed": self.failed,
                "unwritten_at_close": self.unwritten_at_close,
                "emptied_by_allowlist": self.emptied_by_allowlist,
                "queued": self._queue.qsize(),
            }

    def _count(self, what: str, n: int) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + n)

    def write(self, record: Record) -> None:
        """Queue a record for writing; never blocks. A full queue drops it (counted)."""
        if self._closed:
            raise RuntimeError("the sink is closed")
        if self.allowlist is not None:
            kept = _allow(record.get("inputs"), self.allowlist)
            if _empty(kept) and not _empty(record.get("inputs")):
                self._count("emptied_by_allowlist", 1)
                if self.emptied_by_allowlist == 1:
                    log.warning(
                        "the shadow sink's allowlist %s keeps no input field of a record; records are written "
                        "without inputs (counted in stats()['emptied_by_allowlist'])",
                        sorted(self.allowlist),
                    )
            record = dict(record, inputs=kept)
        if self.redact is not None:
            record = self.redact(record)
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._count("dropped", 1)
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "the shadow sink's queue is full (%d): %d records dropped so far", self._queue.maxsize, self.dropped
                )

    def record_stats(self, sampled: int, dropped: int, shadow_errors: int) -> None:
        """The ShadowClient's counters, written with the sink's own as one row when the sink closes."""
        self._client_stats = {"sampled": sampled, "dropped": dropped, "shadow_errors": shadow_errors}

    def _transient(self, error: Exception) -> bool:
        """A busy or locked database, or a connection problem: worth retrying for as long as it lasts."""
        if isinstance(error, sqlite3.OperationalError):
            text = str(error).lower()
            return "locked" in text or "busy" in text or "unable to open" in text
        return isinstance(error, OSError | TimeoutError)

    def _retrying(self, what: str, n: int, call: Callable[[], None]) -> bool:
        """Run `call` until it succeeds, with backoff; False once it is given up (counted by the caller)."""
        delay, attempts, warned = FIRST_BACKOFF, 0, False
        while True:
            try:
                call()
                if warned:
                    log.info("the shadow sink wrote %s after %d retries", what, attempts)
                return True
            except Exception as e:  # noqa: BLE001 - every failure is retried or counted, never raised
                attempts += 1
                past_deadline = self._deadline is not None and time.monotonic() >= self._deadline
                if past_deadline or (not self._transient(e) and attempts >= PERMANENT_ATTEMPTS):
                    log.error(
                        "the shadow sink gave up writing %s after %d attempts: %s: %s",
                        what,
                        attempts,
                        type(e).__name__,
                        e,
                    )
                    return False
                if not warned:
                    log.warning("the shadow sink could not write %s (%s: %s); retrying", what, type(e).__name__, e)
                    warned = True
                wait = delay if self._deadline is None else min(delay, max(0.0, self._deadline - time.monotonic()))
                time.sleep(wait)
                delay = min(delay * 2, MAX_BACKOFF)

    def _flush(self, records: list[Record]) -> None:
        if self._retrying(f"{len(records)} records", len(records), lambda: self._write(records)):
            self._count("written", len(records))
        elif self._deadline is not None and time.monotonic() >= self._deadline:
            self._count("unwritten_at_close", len(records))
        else:
            self._count("failed", len(records))

    def _try_purge(self) -> bool:
        if self.retention_days is None:
            return True
        try:
            self._purge(time.time() - self.retention_days * 86400)
            return True
        except Exception as e:  # noqa: BLE001 - a failed purge is tried again later, the writer goes on
            log.warning(
                "the shadow sink's retention purge failed (%s: %s); it is tried again later", type(e).__name__, e
            )
            return False

    def _run(self) -> None:
        pending: list[Record] = []
        self._retrying("the schema", 0, self._prepare)
        last_flush = time.monotonic()
        next_purge = time.monotonic() + (PURGE_EVERY if self._try_purge() else PURGE_RETRY)
        done = False
        while not done:
            try:
                item = self._queue.get(timeout=self.flush_seconds)
                if item is None:
                    done = True
                else:
                    pending.append(item)
            except queue.Empty:
                pass
            if self._deadline is not None and time.monotonic() >= self._deadline:
                drained = 0
                while True:  # past the close deadline: count what is left, write nothing more
                    try:
                        drained += self._queue.get_nowait() is not None
                    except queue.Empty:
                        break
                self._count("unwritten_at_close", len(pending) + drained)
                pending = []
                break
            due = time.monotonic() - last_flush >= self.flush_seconds
            if pending and (done or len(pending) >= self.batch_size or due):
                self._flush(pending)
                pending = []
                last_flush = time.monotonic()
            if self.retention_days is not None and time.monotonic() >= next_purge:
                next_purge = time.monotonic() + (PURGE_EVERY if self._try_purge() else PURGE_RETRY)
        if self._client_stats is not None or self.dropped or self.failed or self.unwritten_at_close:
            st = self.stats()
            row = dict(self._client_stats or {"sampled": 0, "dropped": 0, "shadow_errors": 0})
            row |= {
                "records_dropped": st["dropped"],
                "records_failed": st["failed"],
                "records_unwritten": st["unwritten_at_close"],
            }
            if self._deadline is None or time.monotonic() < self._deadline:
                self.stats_written = self._retrying("the statistics row", 1, lambda: self._write_stats(row))

    def close(self, timeout: float | None = None) -> dict[str, int]:
        """Flush everything queued and stop the writer, waiting at most `timeout` (default `close_timeout`)
        seconds; whatever could not be written by then is counted and logged. Returns `stats()`."""
        if self._closed:
            return self.stats()
        self._closed = True
        limit = self.close_timeout if timeout is None else timeout
        self._deadline = time.monotonic() + limit
        if self._started:
            with contextlib.suppress(queue.Full):  # when full, the writer sees the deadline and stops
                self._queue.put(None, timeout=max(0.0, self._deadline - time.monotonic()))
            self._thread.join(max(0.0, self._deadline - time.monotonic()) + 2 * MAX_BACKOFF + 1.0)
        try:
            self._close()
        except Exception as e:  # noqa: BLE001 - closing goes on; the problem is reported
            log.warning("the shadow sink's connection did not close cleanly: %s: %s", type(e).__name__, e)
        st = self.stats()
        lost = st["unwritten_at_close"] + st["queued"] + st["failed"] + st["dropped"]
        if lost:
            log.warning(
                "the shadow sink closed with %d records not written (dropped %d, failed %d, unwritten at close %d)",
                lost,
                st["dropped"],
                st["failed"],
                st["unwritten_at_close"] + st["queued"],
            )
        return st

    def _prepare(self) -> None:
        """Create what the sink writes into (run by the writer, retried like a write)."""

    def _write(self, records: list[Record]) -> None:
        raise NotImplementedError

    def _write_stats(self, stats: dict[str, int]) -> None:
        pass

    def _purge(self, before: float) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def jsonable(value: Any) -> Any:
    """Any input the client takes (mappings, numpy, pandas, rows) as JSON data; what is not data is its str."""
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if hasattr(value, "columns") and hasattr(value, "to_numpy"):  # a pandas DataFrame: its columns
        return {str(c): jsonable(value[c].to_numpy()) for c in value.columns}
    if hasattr(value, "to_numpy") and hasattr(value, "dtype"):  # a pandas Series or Index
        return jsonable(value.to_numpy())
    if hasattr(value, "SerializeToString") and hasattr(value, "ListFields"):  # a protobuf message (tf.Example)
        from google.protobuf import json_format

        return json_format.MessageToDict(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:  # NaN: JSON has none
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _row(r: Record) -> tuple[Any, ...]:
    # A record written to a sink directly may hold what json cannot encode (numpy scalars, bytes):
    # `jsonable` turns those into data, as the shadow client does before it writes.
    return tuple(json.dumps(r.get(c), default=jsonable) if c in _JSON_COLUMNS else r.get(c) for c in COLUMNS)


YIELD_EVERY = 16


def _rows(records: list[Record]) -> list[tuple[Any, ...]]:
    """The rows of a batch, letting other threads run every few records: encoding a large batch holds
    the GIL, and the application's own calls (the primary predict) must not wait behind it."""
    out = []
    for i, r in enumerate(records):
        out.append(_row(r))
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            time.sleep(0)
    return out


class SQLiteSink(Sink):
    TABLE = "shadow_log"

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._start()

    def _prepare(self) -> None:
        with self._connect() as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.TABLE} (request_id TEXT, time REAL, method TEXT, "
                "primary_model TEXT, primary_version INTEGER, shadow_model TEXT, shadow_version INTEGER, "
                "inputs TEXT, primary_outputs TEXT, shadow_outputs TEXT, primary_ms REAL, shadow_ms REAL, "
                "error TEXT)"
            )
            db.execute(f"CREATE INDEX IF NOT EXISTS {self.TABLE}_time ON {self.TABLE}(time)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS shadow_stats (time REAL, sampled INTEGER, dropped INTEGER, "
                "shadow_errors INTEGER)"
            )
            have = {row[1] for row in db.execute("PRAGMA table_info(shadow_stats)")}
            for column in STATS_KEYS[3:]:  # logs written before these counters existed get them
                if column not in have:
                    db.execute(f"ALTER TABLE shadow_stats ADD COLUMN {column} INTEGER DEFAULT 0")

    def _connect(self) -> sqlite3.Connection:
        # A short busy timeout: the writer retries a locked database itself, with backoff, for as long as it takes.
        return sqlite3.connect(self.path, timeout=1.0)

    def _write(self, records: list[Record]) -> None:
        with self._connect() as db:
            db.executemany(f"INSERT INTO {self.TABLE} VALUES ({','.join('?' * len(COLUMNS))})", _rows(records))

    def _purge(self, before: float) -> None:
        with self._connect() as db:
            n = db.execute(f"DELETE FROM {self.TABLE} WHERE time < ?", (before,)).rowcount
        if n:
            log.info("purged %d shadow records older than the retention period", n)

    def _write_stats(self, stats: dict[str, int]) -> None:
        with self._connect() as db:
            db.execute(
                f"INSERT INTO shadow_stats (time, {', '.join(STATS_KEYS)}) VALUES (?{', ?' * len(STATS_KEYS)})",
                (time.time(), *(stats.get(k, 0) for k in STATS_KEYS)),
            )


class JsonLinesSink(Sink):
    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._start()

    def _write(self, records: list[Record]) -> None:
        lines = []
        for i, r in enumerate(records):
            lines.append(json.dumps({c: r.get(c) for c in COLUMNS}) + "\n")
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                time.sleep(0)  # as in _rows: let the application's threads run
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write("".join(lines))
            fh.flush()

    def _purge(self, before: float) -> None:
        if not self.path.is_file():
            return
        kept = [
            line
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line and json.loads(line).get("time", 0) >= before
        ]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        tmp.replace(self.path)

    def _write_stats(self, stats: dict[str, int]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"stats": {"time": time.time(), **stats}}) + "\n")


class SQLAlchemySink(Sink):
    """Any SQLAlchemy URL (pip install 'shipyard-client[sqlalchemy]')."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            import sqlalchemy as sa
        except ImportError:
            raise ImportError("SQLAlchemySink needs SQLAlchemy: pip install 'shipyard-client[sqlalchemy]'") from None
        self._sa = sa
        self._engine = sa.create_engine(url)
        md = sa.MetaData()
        self._table = sa.Table(
            SQLiteSink.TABLE,
            md,
            sa.Column("request_id", sa.String),
            sa.Column("time", sa.Float),
            sa.Column("method", sa.String),
            sa.Column("primary_model", sa.String),
            sa.Column("primary_version", sa.BigInteger),
            sa.Column("shadow_model", sa.String),
            sa.Column("shadow_version", sa.BigInteger),
            *(sa.Column(c, sa.Text) for c in _JSON_COLUMNS),
            sa.Column("primary_ms", sa.Float),
            sa.Column("shadow_ms", sa.Float),
            sa.Column("error", sa.Text),
        )
        self._stats_table = sa.Table(
            "shadow_stats", md, sa.Column("time", sa.Float), *(sa.Column(k, sa.BigInteger) for k in STATS_KEYS)
        )
        self._md = md
        self._start()

    def _prepare(self) -> None:
        self._md.create_all(self._engine)

    def _transient(self, error: Exception) -> bool:
        return isinstance(error, self._sa.exc.OperationalError | self._sa.exc.InterfaceError) or super()._transient(
            error
        )

    def _write_stats(self, stats: dict[str, int]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                self._stats_table.insert(), [{"time": time.time(), **{k: stats.get(k, 0) for k in STATS_KEYS}}]
            )

    def _write(self, records: list[Record]) -> None:
        rows = [dict(zip(COLUMNS, row, strict=True)) for row in _rows(records)]
        with self._engine.begin() as conn:
            conn.execute(self._table.insert(), rows)

    def _purge(self, before: float) -> None:
        with self._engine.begin() as conn:
            conn.execute(self._table.delete().where(self._table.c.time < before))

    def _close(self) -> None:
        self._engine.dispose()


def read_records(source: str | Path) -> Iterable[Record]:
    """Records back from a SQLite database or a JSON Lines file (for reports)."""
    path = Path(source)
    if path.suffix in (".jsonl", ".json"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line:
                r = json.loads(line)
                if "stats" not in r:
                    yield r
        return
    with sqlite3.connect(path) as db:
        cur = db.execute(f"SELECT {','.join(COLUMNS)} FROM {SQLiteSink.TABLE} ORDER BY time")
        for row in cur:
            r = dict(zip(COLUMNS, row, strict=True))
            for c in _JSON_COLUMNS:
                r[c] = json.loads(r[c]) if r[c] is not None else None
            yield r
