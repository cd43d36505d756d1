"""ShadowClient's promises, with stand-in clients the test controls (a shadow that blocks until
released, one that fails), so every ordering is forced by events, not by timing."""

import json
import sqlite3
import threading
import time

import numpy as np
import pytest

from shipyard_client import Endpoint, JsonLinesSink, PredictResult, ShadowClient, SQLiteSink
from shipyard_client.sinks import read_records


class Model:
    """A stand-in client: predict answers p = [x, 1 - x] from version `version`."""

    def __init__(self, version, block: threading.Event | None = None, fail: bool = False):
        self.version = version
        self.block = block
        self.fail = fail
        self.calls = 0
        self.entered = threading.Event()

    def predict(self, model, inputs, *, version=None, label=None, timeout=None):
        self.calls += 1
        self.entered.set()
        if self.block is not None:
            assert self.block.wait(30)
        if self.fail:
            raise RuntimeError("candidate exploded")
        x = np.asarray(inputs["x"], dtype=np.float32)
        return PredictResult({"probabilities": np.stack([x, 1 - x], axis=1)}, model, self.version, "serving_default")


def test_primary_answers_while_the_shadow_is_blocked(tmp_path):
    release = threading.Event()
    shadow = Model(2, block=release)
    sc = ShadowClient(
        Endpoint(Model(1), "m", label="stable"),
        Endpoint(shadow, "m", label="canary"),
        SQLiteSink(tmp_path / "s.db"),
        workers=1,
        queue_size=10,
    )
    results = [sc.predict({"x": [0.1 * i]}) for i in range(5)]  # all return while the shadow is stuck
    assert shadow.entered.wait(10) and not release.is_set()
    assert [r.version for r in results] == [1] * 5
    assert results[3]["probabilities"].tolist() == [[np.float32(0.3), np.float32(0.7)]]
    release.set()
    sc.close()
    records = list(read_records(tmp_path / "s.db"))
    assert len(records) == 5 and all(r["shadow_version"] == 2 and r["primary_version"] == 1 for r in records)


def test_a_full_queue_drops_and_counts(tmp_path):
    release = threading.Event()
    shadow = Model(2, block=release)
    sink = SQLiteSink(tmp_path / "s.db")
    sc = ShadowClient(Endpoint(Model(1), "m"), Endpoint(shadow, "m"), sink, workers=1, queue_size=2)
    sc.predict({"x": [0.5]})
    assert shadow.entered.wait(10)  # the only worker holds the first call
    for _ in range(6):
        sc.predict({"x": [0.5]})
    assert (sc.sampled, sc.dropped) == (3, 4)  # 1 in flight + 2 queued; 4 dropped
    release.set()
    sc.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("SELECT sampled, dropped, shadow_errors FROM shadow_stats").fetchall() == [(3, 4, 0)]
        assert db.execute("SELECT COUNT(*) FROM shadow_log").fetchone() == (3,)


def test_a_failing_shadow_changes_nothing_for_the_caller(tmp_path):
    sc = ShadowClient(Endpoint(Model(1), "m"), Endpoint(Model(2, fail=True), "m"), JsonLinesSink(tmp_path / "s.jsonl"))
    r = sc.predict({"x": [0.25]})
    assert r.version == 1 and r["probabilities"].tolist() == [[0.25, 0.75]]
    sc.close()
    (rec,) = read_records(tmp_path / "s.jsonl")
    assert "candidate exploded" in rec["error"] and rec["shadow_outputs"] is None
    assert rec["primary_outputs"] == {"probabilities": [[0.25, 0.75]]}
    assert sc.shadow_errors == 1


def test_a_failing_primary_still_raises_and_is_recorded(tmp_path):
    sc = ShadowClient(Endpoint(Model(1, fail=True), "m"), Endpoint(Model(2), "m"), JsonLinesSink(tmp_path / "s.jsonl"))
    with pytest.raises(RuntimeError, match="exploded"):
        sc.predict({"x": [0.5]})
    sc.close()
    (rec,) = read_records(tmp_path / "s.jsonl")
    assert rec["error"].startswith("primary: RuntimeError") and rec["shadow_version"] == 2


def test_no_record_is_lost_on_close(tmp_path):
    sink = SQLiteSink(tmp_path / "s.db", batch_size=1000, flush_seconds=3600)  # would never flush by itself
    sc = ShadowClient(Endpoint(Model(1), "m"), Endpoint(Model(2), "m"), sink, workers=4, queue_size=1000)
    for i in range(300):
        sc.predict({"x": [i / 300]})
    sc.close()
    assert len(list(read_records(tmp_path / "s.db"))) == 300


def test_sampling(tmp_path):
    sc = ShadowClient(
        Endpoint(Model(1), "m"), Endpoint(Model(2), "m"), JsonLinesSink(tmp_path / "s.jsonl"), sample_rate=0.25, seed=3
    )
    for _ in range(400):
        sc.predict({"x": [0.5]})
    sc.close()
    assert 60 < sc.sampled < 140 and len(list(read_records(tmp_path / "s.jsonl"))) == sc.sampled


def test_allowlist_redaction_and_retention(tmp_path):
    def redact(r):
        return dict(r, inputs={k: ("***" if k == "secret" else v) for k, v in r["inputs"].items()})

    path = tmp_path / "s.db"
    with SQLiteSink(path, allowlist=["x", "secret"], redact=redact) as sink:
        sink.write({"request_id": "old", "time": time.time() - 10 * 86400, "inputs": {"x": 1, "secret": "s", "y": 2}})
        sink.write({"request_id": "new", "time": time.time(), "inputs": {"x": 1, "secret": "s", "y": 2}})
    recs = {r["request_id"]: r for r in read_records(path)}
    assert recs["new"]["inputs"] == {"x": 1, "secret": "***"}
    with SQLiteSink(path, retention_days=7):  # opening purges what is older than the retention
        pass
    assert [r["request_id"] for r in read_records(path)] == ["new"]
    lines = tmp_path / "s.jsonl"
    with JsonLinesSink(lines) as sink:
        sink.write({"request_id": "a", "time": 1.0, "inputs": {}})
    assert json.loads(lines.read_text().splitlines()[0])["request_id"] == "a"


class AsyncModel:
    def __init__(self, version, block=None, fail=False):
        self.version, self.block, self.fail = version, block, fail

    async def predict(self, model, inputs, *, version=None, label=None, timeout=None):
        if self.block is not None:
            await self.block.wait()
        if self.fail:
            raise RuntimeError("candidate exploded")
        x = np.asarray(inputs["x"], dtype=np.float32)
        return PredictResult({"probabilities": np.stack([x, 1 - x], axis=1)}, model, self.version, "serving_default")


def test_async_primary_answers_while_the_shadow_is_blocked_and_overflow_is_dropped(tmp_path):
    import asyncio

    from shipyard_client import AsyncShadowClient

    async def scenario():
        release = asyncio.Event()
        sc = AsyncShadowClient(
            Endpoint(AsyncModel(1), "m"),
            Endpoint(AsyncModel(2, block=release), "m"),
            SQLiteSink(tmp_path / "a.db"),
            max_pending=3,
        )
        answers = [await sc.predict({"x": [0.5]}) for _ in range(5)]  # the shadows are all still blocked
        pending_while_blocked = len(sc._pending)
        release.set()
        await sc.aclose()
        return answers, pending_while_blocked, sc

    answers, pending, sc = asyncio.run(scenario())
    assert [a.version for a in answers] == [1] * 5 and pending == 3
    assert (sc.sampled, sc.dropped, sc.recorded) == (3, 2, 3)
    assert len(list(read_records(tmp_path / "a.db"))) == 3


def test_async_failing_shadow_is_recorded_not_raised(tmp_path):
    import asyncio

    from shipyard_client import AsyncShadowClient

    async def scenario():
        async with AsyncShadowClient(
            Endpoint(AsyncModel(1), "m"), Endpoint(AsyncModel(2, fail=True), "m"), JsonLinesSink(tmp_path / "a.jsonl")
        ) as sc:
            return await sc.predict({"x": [0.25]})

    assert asyncio.run(scenario()).version == 1
    (rec,) = read_records(tmp_path / "a.jsonl")
    assert "candidate exploded" in rec["error"]
