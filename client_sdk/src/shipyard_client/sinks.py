"""Where ShadowClient records go: a real database, written in batches off the request path.

- SQLiteSink(path): the default, standard library only.
- JsonLinesSink(path): one JSON object per line.
- SQLAlchemySink(url): any SQLAlchemy database (PostgreSQL, ...), with the `sqlalchemy` extra.

Every sink writes from a thread of its own, in batches (`batch_size` records or every `flush_seconds`);
`close()` flushes what is queued, so nothing is lost on a clean close. Shadow logs hold raw inputs, so
a sink takes an `allowlist` of input fields to keep (others are dropped) and/or a `redact(record)`
hook, and a `retention_days` after which old records are purged.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

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


class Sink:
    """The batching writer thread; subclasses implement `_write(records)` and `_purge(before)`."""

    def __init__(
        self,
        *,
        batch_size: int = 200,
        flush_seconds: float = 1.0,
        allowlist: Sequence[str] | None = None,
        redact: Callable[[Record], Record] | None = None,
        retention_days: float | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.allowlist = set(allowlist) if allowlist is not None else None
        self.redact = redact
        self.retention_days = retention_days
        self._queue: queue.Queue[Record | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"{type(self).__name__}-writer", daemon=True)
        self._started = False
        self._closed = False
        self.written = 0

    def _start(self) -> None:
        if self.retention_days is not None:
            self._purge(time.time() - self.retention_days * 86400)
        self._thread.start()
        self._started = True

    def write(self, record: Record) -> None:
        if self._closed:
            raise RuntimeError("the sink is closed")
        if self.allowlist is not None:
            record = dict(record, inputs={k: v for k, v in record["inputs"].items() if k in self.allowlist})
        if self.redact is not None:
            record = self.redact(record)
        self._queue.put(record)

    def _run(self) -> None:
        pending: list[Record] = []
        last_flush = time.monotonic()
        last_purge = time.monotonic()
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
            due = time.monotonic() - last_flush >= self.flush_seconds
            if pending and (done or len(pending) >= self.batch_size or due):
                self._flush(pending)
                pending = []
                last_flush = time.monotonic()
            if self.retention_days is not None and time.monotonic() - last_purge > 3600:
                self._purge(time.time() - self.retention_days * 86400)
                last_purge = time.monotonic()

    def _flush(self, records: list[Record]) -> None:
        try:
            self._write(records)
            self.written += len(records)
        except Exception:
            log.exception("the shadow sink could not write %d records", len(records))

    def close(self) -> None:
        """Flush everything queued, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._started:
            self._thread.join()
        self._close()

    def _write(self, records: list[Record]) -> None:
        raise NotImplementedError

    def _purge(self, before: float) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _row(r: Record) -> tuple[Any, ...]:
    return tuple(json.dumps(r.get(c)) if c in _JSON_COLUMNS else r.get(c) for c in COLUMNS)


class SQLiteSink(Sink):
    TABLE = "shadow_log"

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.path) as db:
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
        self._start()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def _write(self, records: list[Record]) -> None:
        with self._connect() as db:
            db.executemany(
                f"INSERT INTO {self.TABLE} VALUES ({','.join('?' * len(COLUMNS))})", [_row(r) for r in records]
            )

    def _purge(self, before: float) -> None:
        with self._connect() as db:
            n = db.execute(f"DELETE FROM {self.TABLE} WHERE time < ?", (before,)).rowcount
        if n:
            log.info("purged %d shadow records older than the retention period", n)

    def record_stats(self, sampled: int, dropped: int, shadow_errors: int) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO shadow_stats VALUES (?, ?, ?, ?)", (time.time(), sampled, dropped, shadow_errors))


class JsonLinesSink(Sink):
    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._start()

    def _write(self, records: list[Record]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps({c: r.get(c) for c in COLUMNS}) + "\n")
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

    def record_stats(self, sampled: int, dropped: int, shadow_errors: int) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(
                json.dumps(
                    {
                        "stats": {
                            "time": time.time(),
                            "sampled": sampled,
                            "dropped": dropped,
                            "shadow_errors": shadow_errors,
                        }
                    }
                )
                + "\n"
            )


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
        md.create_all(self._engine)
        self._start()

    def _write(self, records: list[Record]) -> None:
        rows = [dict(zip(COLUMNS, _row(r), strict=True)) for r in records]
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
