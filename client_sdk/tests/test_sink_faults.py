"""Sinks under faults: a database locked for longer than any busy timeout, a failing purge, a close
during a lock, a full queue, inputs of every shape the client takes. Every record is written or counted."""

import sqlite3
import threading
import time

import numpy as np
import pytest

from shipyard_client import Endpoint, PredictResult, ShadowClient, SQLiteSink
from shipyard_client.sinks import SQLAlchemySink, read_records


class Echo:
    """A stand-in client answering predict and classify at once."""

    def __init__(self, version):
        self.version = version

    def predict(self, model, inputs, *, version=None, label=None, timeout=None):
        n = len(next(iter(dict(inputs).values())))
        return PredictResult({"y": np.zeros(n, dtype=np.float32)}, model, self.version, "serving_default")

    def classify(self, model, examples, *, version=None, label=None, timeout=None):
        class R:
            labels = np.array([[b"a", b"b"]])
            scores = np.array([[0.4, 0.6]], dtype=np.float32)

        R.version = self.version
        return R()


class Locked:
    """Holds an exclusive lock on a SQLite database until released."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, timeout=5, isolation_level=None)
        self.db.execute("BEGIN EXCLUSIVE")

    def release(self):
        self.db.execute("COMMIT")
        self.db.close()


def _count(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM shadow_log").fetchone()[0]


def _rec(i):
    return {"request_id": str(i), "time": time.time(), "inputs": {"x": i}}


def test_a_dataframe_is_recorded_for_every_request(tmp_path):
    pd = pytest.importorskip("pandas", reason="pandas is not installed (an optional extra of the SDK)")
    df = pd.DataFrame({"x": np.arange(3, dtype=np.float64), "n": np.arange(3), "s": ["a", "b", "c"]})
    sc = ShadowClient(Endpoint(Echo(1), "m"), Endpoint(Echo(2), "m"), SQLiteSink(tmp_path / "s.db"))
    for _ in range(100):
        sc.predict(df)
    st = sc.close()
    assert st["recorded"] == 100 and st["record_errors"] == 0 and st["sink"]["written"] == 100
    first = next(iter(read_records(tmp_path / "s.db")))
    assert first["inputs"] == {"x": [0.0, 1.0, 2.0], "n": [0, 1, 2], "s": ["a", "b", "c"]}


def test_classify_rows_pass_an_allowlist_field_by_field(tmp_path):
    sink = SQLiteSink(tmp_path / "s.db", allowlist=["x"])
    sc = ShadowClient(Endpoint(Echo(1), "m"), Endpoint(Echo(2), "m"), sink)
    for i in range(10):
        sc.classify([{"x": i, "secret": "s"}])
    sc.close()
    recs = list(read_records(tmp_path / "s.db"))
    assert len(recs) == 10 and recs[0]["inputs"] == [{"x": 0}] and sink.stats()["emptied_by_allowlist"] == 0


def test_an_allowlist_that_keeps_nothing_still_writes_and_counts(tmp_path):
    with SQLiteSink(tmp_path / "s.db", allowlist=["z"]) as sink:
        sink.write(_rec(1))
    assert sink.stats()["emptied_by_allowlist"] == 1 and _count(tmp_path / "s.db") == 1


@pytest.mark.parametrize("kind", ["sqlite", "sqlalchemy"])
def test_a_database_locked_longer_than_the_busy_timeout_loses_nothing(tmp_path, kind):
    if kind == "sqlalchemy":
        pytest.importorskip("sqlalchemy", reason="SQLAlchemy is not installed (the SDK's sqlalchemy extra)")
    path = tmp_path / "s.db"
    sink = (
        SQLiteSink(path, flush_seconds=0.1)
        if kind == "sqlite"
        else SQLAlchemySink(f"sqlite:///{path}", flush_seconds=0.1)
    )
    lock = Locked(path)
    for i in range(300):
        sink.write(_rec(i))
    time.sleep(3.0)  # longer than the sink's 1 s busy timeout: its first writes fail and are retried
    assert sink.stats()["written"] == 0
    lock.release()
    st = sink.close()
    assert st["written"] == 300 and st["failed"] == st["dropped"] == st["unwritten_at_close"] == 0
    assert _count(path) == 300


def test_a_failing_purge_does_not_stop_the_writer(tmp_path):
    path = tmp_path / "s.db"
    SQLiteSink(path).close()
    lock = Locked(path)
    sink = SQLiteSink(path, retention_days=1, flush_seconds=0.1)  # its first purge meets the lock and fails
    time.sleep(1.5)
    lock.release()
    for i in range(100):
        sink.write(_rec(i))
    st = sink.close()
    assert st["written"] == 100 and _count(path) == 100


def test_close_during_a_lock_closes_by_its_deadline_and_counts_what_is_left(tmp_path):
    path = tmp_path / "s.db"
    SQLiteSink(path).close()  # the log exists; then it is locked while records wait
    sink = SQLiteSink(path, flush_seconds=0.1)
    sink.record_stats(50, 0, 0)
    lock = Locked(path)
    for i in range(50):
        sink.write(_rec(i))
    start = time.monotonic()
    st = sink.close(timeout=1.5)
    assert time.monotonic() - start < 10
    assert st["written"] == 0 and st["unwritten_at_close"] + st["queued"] == 50
    with pytest.raises(RuntimeError, match="closed"):
        sink.write(_rec(99))
    lock.release()
    assert _count(path) == 0


def test_a_full_queue_drops_and_counts_and_the_rest_is_written(tmp_path):
    path = tmp_path / "s.db"
    sink = SQLiteSink(path, queue_size=10, flush_seconds=0.1, batch_size=5)
    lock = Locked(path)
    started = threading.Event()

    def writes():
        started.set()
        for i in range(100):
            sink.write(_rec(i))

    t = threading.Thread(target=writes)
    t.start()
    t.join(10)
    assert started.is_set() and not t.is_alive()  # write() never blocked on the full queue
    lock.release()
    st = sink.close()
    assert st["dropped"] >= 80 and st["written"] + st["dropped"] == 100 and _count(path) == st["written"]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT SUM(records_dropped) FROM shadow_stats").fetchone()[0] == st["dropped"]
