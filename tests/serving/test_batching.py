import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf

from serving.batching import BatchScheduler
from serving.config import Batching
from serving.errors import ServingError
from serving.servable import Signature
from tests.fixtures.servers import start_local
from tests.fixtures.wait import wait_until
from tests.serving.conftest import copy_base
from tests.serving.test_grpc_api import ROW, predict_request

SIG = Signature("serving_default", tf.compat.v1.saved_model.build_signature_def())


class BlockingServable:
    """Doubles its input; the first run blocks until released, and every batch's size is recorded."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()
        self.batches = []
        self.timeouts = []

    def run(self, signature, feeds, outputs=(), timeout_ms=None):
        self.batches.append(len(feeds["x"]))
        self.timeouts.append(timeout_ms)
        self.started.set()
        self.release.wait(30)
        return {"y": feeds["x"] * 2}


class V:
    def __init__(self, servable):
        self.servable = servable


def submit(sched, v, values, results, errors):
    def go():
        try:
            results[values[0]] = sched.run(v, SIG, {"x": np.array(values, dtype=np.float32)})["y"]
        except ServingError as e:
            errors.append(e)

    t = threading.Thread(target=go)
    t.start()
    return t


def test_queued_requests_merge_into_one_batch_and_a_full_queue_is_unavailable():
    s = BatchScheduler(Batching(max_batch_size=4, batch_timeout_micros=0, max_enqueued_batches=1, num_batch_threads=1))
    servable, results, errors = BlockingServable(), {}, []
    v = V(servable)
    try:
        threads = [submit(s, v, [0.0], results, errors)]
        assert servable.started.wait(10)  # the only batch thread is busy with the first request
        threads += [submit(s, v, [float(i)], results, errors) for i in range(1, 5)]
        wait_until(lambda: s._queued_rows == 4, "4 rows queued", 10, interval=0.001)
        with pytest.raises(ServingError) as e:  # one batch's worth is queued: the queue is full
            s.run(v, SIG, {"x": np.array([9.0], dtype=np.float32)})
        assert e.value.code == grpc.StatusCode.UNAVAILABLE and "queue" in e.value.message
        servable.release.set()
        for t in threads:
            t.join(10)
        assert servable.batches == [1, 4]
        assert errors == []
        assert {k: v.tolist() for k, v in results.items()} == {float(i): [2.0 * i] for i in range(5)}
    finally:
        servable.release.set()
        s.close()


def test_batches_are_padded_to_allowed_sizes_and_split_back():
    s = BatchScheduler(
        Batching(
            max_batch_size=8,
            batch_timeout_micros=0,
            max_enqueued_batches=4,
            num_batch_threads=1,
            allowed_batch_sizes=(4, 8),
        )
    )
    servable, results, errors = BlockingServable(), {}, []
    v = V(servable)
    try:
        first = submit(s, v, [100.0], results, errors)
        assert servable.started.wait(10)
        threads = [submit(s, v, [1.0, 2.0], results, errors), submit(s, v, [3.0], results, errors)]
        wait_until(lambda: s._queued_rows == 3, "3 rows queued", 10, interval=0.001)
        servable.release.set()
        for t in [first, *threads]:
            t.join(10)
        assert servable.batches == [4, 4]  # 1 row padded to 4; 3 rows padded to 4
        assert results[1.0].tolist() == [2.0, 4.0] and results[3.0].tolist() == [6.0]
        assert results[100.0].tolist() == [200.0]
    finally:
        servable.release.set()
        s.close()


def test_large_batch_splitting_runs_pieces_and_joins_them_in_order():
    s = BatchScheduler(
        Batching(
            max_batch_size=10,
            enable_large_batch_splitting=True,
            max_execution_batch_size=4,
            max_enqueued_batches=3,
            num_batch_threads=2,
        )
    )
    servable = BlockingServable()
    servable.release.set()
    try:
        out = s.run(V(servable), SIG, {"x": np.arange(10, dtype=np.float32)})["y"]
        assert out.tolist() == [2.0 * i for i in range(10)]
        assert sorted(servable.batches) == [2, 4, 4]  # pieces of at most max_execution_batch_size
        with pytest.raises(ServingError) as e:  # max_batch_size still bounds one request
            s.run(V(servable), SIG, {"x": np.zeros(11, dtype=np.float32)})
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        s.close()


def test_a_request_past_its_deadline_leaves_the_queue_and_the_run_gets_the_deadline():
    s = BatchScheduler(Batching(max_batch_size=4, batch_timeout_micros=0, max_enqueued_batches=4, num_batch_threads=1))
    servable, results, errors = BlockingServable(), {}, []
    v = V(servable)
    try:
        first = submit(s, v, [0.0], results, errors)
        assert servable.started.wait(10)  # the batch thread is busy
        with pytest.raises(ServingError) as e:
            s.run(v, SIG, {"x": np.array([7.0], dtype=np.float32)}, until=time.monotonic() + 0.2)
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert s._queued_rows == 0  # its row left the queue: it will never run
        servable.release.set()
        first.join(10)
        later = s.run(v, SIG, {"x": np.array([1.0], dtype=np.float32)}, until=time.monotonic() + 30)
        assert later["y"].tolist() == [2.0]
        assert servable.batches == [1, 1] and servable.timeouts[0] is None
        assert 25_000 <= servable.timeouts[1] <= 38_000  # what was left of 30 s, on the timeout ladder
    finally:
        servable.release.set()
        s.close()


def test_a_request_larger_than_the_max_batch_is_invalid():
    s = BatchScheduler(Batching(max_batch_size=2, num_batch_threads=1))
    try:
        with pytest.raises(ServingError) as e:
            s.run(V(BlockingServable()), SIG, {"x": np.zeros(3, dtype=np.float32)})
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        s.close()


def test_server_batches_concurrent_requests_and_each_gets_its_own_answer(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    (tmp_path / "batching.config").write_text(
        "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 50000 }\nnum_batch_threads { value: 1 }\n"
    )
    (tmp_path / "monitoring.config").write_text('prometheus_config { enable: true path: "/metrics" }')
    server = start_local(
        [
            f"--model_base_path={base / 'penguins'}",
            "--model_name=penguins",
            "--enable_batching",
            f"--batching_parameters_file={tmp_path / 'batching.config'}",
            f"--monitoring_config_file={tmp_path / 'monitoring.config'}",
        ],
        tmp_path,
    )
    try:
        rows = [
            dict(ROW, bill_length_mm=35.0 + i, flipper_length_mm=175.0 + 3 * i, island=isl)
            for i, isl in enumerate(["Torgersen", "Biscoe", "Dream"] * 5 + ["Biscoe"])
        ]
        expected = tf.make_ndarray(
            server.prediction().Predict(predict_request(rows), timeout=60).outputs["probabilities"]
        )
        got = {}
        barrier = threading.Barrier(len(rows))

        def one(i):
            barrier.wait()
            r = server.prediction().Predict(predict_request([rows[i]]), timeout=60)
            got[i] = tf.make_ndarray(r.outputs["probabilities"])[0]

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(rows))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(got) == len(rows)
        for i in range(len(rows)):
            np.testing.assert_allclose(got[i], expected[i], atol=1e-6)
        with urllib.request.urlopen(server.rest + "/metrics", timeout=30) as r:
            text = r.read().decode()
        count = float(text.split(":tensorflow:serving:batching_session:processed_batch_size_count ")[1].split()[0])
        total = float(text.split(":tensorflow:serving:batching_session:processed_batch_size_sum ")[1].split()[0])
        assert total == 16 + len(rows)  # every row went through the batcher exactly once
        assert count < 1 + len(rows)  # fewer batches than requests: they were merged
    finally:
        server.stop()


def test_an_idle_scheduler_without_a_batch_timeout_runs_a_lone_request_in_its_own_thread():
    class Recording(BlockingServable):
        def run(self, signature, feeds, outputs=(), timeout_ms=None):
            self.thread = threading.current_thread().name
            return super().run(signature, feeds, outputs, timeout_ms)

    for timeout_micros, expected_prefix in ((0, "MainThread"), (1000, "batch-")):
        s = BatchScheduler(Batching(max_batch_size=4, batch_timeout_micros=timeout_micros, num_batch_threads=1))
        servable = Recording()
        servable.release.set()
        try:
            out = s.run(V(servable), SIG, {"x": np.array([1.0], dtype=np.float32)})
            assert out["y"].tolist() == [2.0] and servable.thread.startswith(expected_prefix)
        finally:
            s.close()
