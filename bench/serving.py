"""The local server under load, measured in one run on this machine:

- single-row Predict latency (p50, p99) over gRPC, against the floor (the same model's session call
  in process) and an empty gRPC round trip (a servicer that does nothing); target
  p50(server) <= 1.25 x (p50(floor) + p50(empty)); beside it, the bound: a servicer that only runs the
  session call (bench/session_only_grpc_server.py), the least a Python server can cost;
- throughput at 1, 4, 16 and 64 concurrent clients, with and without --enable_batching (and the
  mean batch size); target: batching raises throughput at 16 clients at least 1.5x;
- errors and worst latency during five back-to-back rollovers under load (target: no error);
- server memory (RSS) after 20 rollovers against after the first (target: growth under 10%).
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

NAME = "serving"
TITLE = "local server: latency, throughput, rollovers, memory"
LATENCY_REQUESTS = 2000
THROUGHPUT_SECONDS = 3.0
CLIENTS = (1, 4, 16, 64)
ROW = {
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181.0,
    "body_mass_g": 3750.0,
    "island": "Torgersen",
    "sex": "male",
    "year": 2007,
}
log = logging.getLogger("bench")


def _feeds() -> dict[str, np.ndarray]:
    out = {}
    for k, v in ROW.items():
        if isinstance(v, str):
            out[k] = np.array([v.encode()], dtype=object)
        elif k == "year":
            out[k] = np.array([v], dtype=np.int64)
        else:
            out[k] = np.array([v], dtype=np.float32)
    return out


def _request():
    from tensorflow_serving.apis import predict_pb2

    from serving.tensors import to_proto

    req = predict_pb2.PredictRequest()
    req.model_spec.name = "penguins"
    for k, v in _feeds().items():
        to_proto(v, req.inputs[k])
    return req


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], module: str = "serving") -> tuple[subprocess.Popen, int]:
    import grpc

    port = _free_port()
    extra = [str(port), *args] if module != "serving" else [f"--port={port}", "--bind_address=127.0.0.1", *args]
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    grpc.channel_ready_future(grpc.insecure_channel(f"127.0.0.1:{port}")).result(timeout=300)
    return proc, port


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _latencies(stub, req, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        stub.Predict(req, timeout=30)
        out.append(time.perf_counter() - t)
    return out


def _throughput(port: int, clients: int, seconds: float) -> tuple[float, int]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    req = _request()
    done, errors = [0] * clients, [0] * clients
    start_barrier = threading.Barrier(clients + 1)
    channels = [grpc.insecure_channel(f"127.0.0.1:{port}") for _ in range(min(clients, 8))]

    def worker(i: int) -> None:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channels[i % len(channels)])
        start_barrier.wait()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            try:
                stub.Predict(req, timeout=30)
                done[i] += 1
            except grpc.RpcError:
                errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start_barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for c in channels:
        c.close()
    return sum(done) / elapsed, sum(errors)


def _publish_copy(model_dir: Path, src: Path, version: int) -> None:
    staging = model_dir / f".staging-bench-{version}"
    shutil.copytree(src, staging)
    staging.rename(model_dir / str(version))


def penguins_model(tmp_path: Path) -> Path:
    """Train the shipped penguins spec and export it under tmp_path/models; its model directory
    (version 1 inside), quietly."""
    from export.pipeline import export_run
    from train.run import train_run
    from train.spec import load_spec

    logging.getLogger("train").setLevel(logging.WARNING)
    logging.getLogger("export").setLevel(logging.WARNING)
    run_ = train_run(load_spec("specs/penguins.toml"), None, None, tmp_path / "runs")
    export_run(run_.path, tmp_path / "models")
    return tmp_path / "models" / "penguins"


def run() -> list[dict]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from serving.servable import Servable

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = penguins_model(tmp_path)
        v1 = model_dir / "1"
        pristine = tmp_path / "pristine"
        shutil.copytree(v1, pristine)

        # 1. latency: floor (in-process session call), empty gRPC round trip, the server.
        servable = Servable.load("penguins", 1, v1)
        feeds = _feeds()
        for _ in range(200):
            servable.run("serving_default", feeds)
        floor = []
        for _ in range(LATENCY_REQUESTS):
            t = time.perf_counter()
            servable.run("serving_default", feeds)
            floor.append(time.perf_counter() - t)
        servable.close()
        req = _request()
        empty_proc, empty_port = _start([], module="bench.empty_grpc_server")
        try:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{empty_port}"))
            _latencies(stub, req, 200)
            empty = _latencies(stub, req, LATENCY_REQUESTS)
        finally:
            _stop(empty_proc)
        # The bound: a servicer that only runs the session (same feeds, canned response).
        bound_proc, bound_port = _start([str(v1)], module="bench.session_only_grpc_server")
        try:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{bound_port}"))
            _latencies(stub, req, 200)
            bound = _latencies(stub, req, LATENCY_REQUESTS)
        finally:
            _stop(bound_proc)
        server, port = _start([f"--model_base_path={model_dir}", "--model_name=penguins"])
        try:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
            _latencies(stub, req, 200)
            served = _latencies(stub, req, LATENCY_REQUESTS)
            unbatched = {c: _throughput(port, c, THROUGHPUT_SECONDS) for c in CLIENTS}
        finally:
            _stop(server)
        measured = (("floor", floor), ("empty", empty), ("session-only servicer", bound), ("server", served))
        p50 = {k: statistics.median(v) * 1e3 for k, v in measured}
        p99 = {k: float(np.quantile(v, 0.99)) * 1e3 for k, v in measured}
        ratio = p50["server"] / (p50["floor"] + p50["empty"])
        for k, _ in measured:
            rows.append({"metric": f"p50 latency, {k}", "value": round(p50[k], 4), "unit": "ms"})
            rows.append({"metric": f"p99 latency, {k}", "value": round(p99[k], 4), "unit": "ms"})
        rows.append(
            {
                "metric": "p50 server / (p50 floor + p50 empty)",
                "value": round(ratio, 3),
                "unit": "ratio",
                "target": "<= 1.25",
                "met": ratio <= 1.25,
            }
        )
        rows.append(
            {
                "metric": "  bound: p50 session-only servicer / (p50 floor + p50 empty)",
                "value": round(p50["session-only servicer"] / (p50["floor"] + p50["empty"]), 3),
                "unit": "ratio",
                "note": "a Python gRPC servicer that only runs the session call; no server that runs the model "
                "per request in Python can go below it",
            }
        )

        # 2. throughput with batching.
        batching = tmp_path / "batching.config"
        batching.write_text(
            "max_batch_size { value: 64 }\nbatch_timeout_micros { value: 0 }\n"
            "max_enqueued_batches { value: 1000 }\nnum_batch_threads { value: 2 }\n"
        )
        monitoring = tmp_path / "monitoring.config"
        monitoring.write_text('prometheus_config { enable: true path: "/metrics" }')
        rest = _free_port()
        server, port = _start(
            [
                f"--model_base_path={model_dir}",
                "--model_name=penguins",
                "--enable_batching",
                f"--batching_parameters_file={batching}",
                f"--rest_api_port={rest}",
                f"--monitoring_config_file={monitoring}",
            ]
        )
        try:
            batched = {}
            mean_batch = {}
            import urllib.request

            def batch_stats() -> tuple[float, float]:
                text = urllib.request.urlopen(f"http://127.0.0.1:{rest}/metrics", timeout=10).read().decode()
                name = ":tensorflow:serving:batching_session:processed_batch_size"
                total = float(text.split(f"{name}_sum ")[1].split()[0]) if f"{name}_sum " in text else 0.0
                count = float(text.split(f"{name}_count ")[1].split()[0]) if f"{name}_count " in text else 0.0
                return total, count

            for c in CLIENTS:
                s0, c0 = batch_stats()
                batched[c] = _throughput(port, c, THROUGHPUT_SECONDS)
                s1, c1 = batch_stats()
                mean_batch[c] = (s1 - s0) / (c1 - c0) if c1 > c0 else 0.0
        finally:
            _stop(server)
        for c in CLIENTS:
            rows.append(
                {
                    "metric": f"throughput, {c} clients, no batching",
                    "value": round(unbatched[c][0], 1),
                    "unit": "req/s",
                    "errors": unbatched[c][1],
                }
            )
            rows.append(
                {
                    "metric": f"throughput, {c} clients, batching",
                    "value": round(batched[c][0], 1),
                    "unit": "req/s",
                    "errors": batched[c][1],
                    "mean_batch_size": round(mean_batch[c], 2),
                }
            )
            rows.append({"metric": f"  mean batch size, {c} clients", "value": round(mean_batch[c], 2), "unit": "rows"})
        gain = batched[16][0] / unbatched[16][0]
        rows.append(
            {
                "metric": "batching gain at 16 clients",
                "value": round(gain, 3),
                "unit": "ratio",
                "target": ">= 1.5",
                "met": gain >= 1.5,
            }
        )

        # 3. five back-to-back rollovers under load, then 20 for memory.
        server, port = _start(
            [f"--model_base_path={model_dir}", "--model_name=penguins", "--file_system_poll_wait_seconds=1"]
        )
        try:
            from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            status_stub = model_service_pb2_grpc.ModelServiceStub(channel)

            def available(v: int) -> bool:
                r = status_stub.GetModelStatus(
                    get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "penguins"}), timeout=10
                )
                return any(s.version == v and s.state == 30 for s in r.model_version_status)

            def rollover(to: int) -> None:
                _publish_copy(model_dir, pristine, to)
                deadline = time.monotonic() + 120
                while not available(to):
                    assert time.monotonic() < deadline, f"version {to} never became available"
                    time.sleep(0.05)
                shutil.rmtree(model_dir / str(to - 1))

            stop = threading.Event()
            lat, errs = [], []

            def load() -> None:
                st = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                end = time.monotonic() + 600
                while not stop.is_set() and time.monotonic() < end:
                    t = time.perf_counter()
                    try:
                        st.Predict(req, timeout=30)
                        lat.append(time.perf_counter() - t)
                    except grpc.RpcError as e:
                        errs.append(str(e.code()))

            workers = [threading.Thread(target=load) for _ in range(4)]
            for w in workers:
                w.start()
            rollover(2)
            rss_first = _rss_mb(server.pid)
            for v in range(3, 7):
                rollover(v)
            stop.set()
            for w in workers:
                w.join()
            rows.append(
                {
                    "metric": "errors during 5 rollovers under load (4 clients)",
                    "value": len(errs),
                    "unit": "requests",
                    "requests": len(lat) + len(errs),
                    "target": "0",
                    "met": not errs,
                }
            )
            rows.append(
                {"metric": "worst latency during the rollovers", "value": round(max(lat) * 1e3, 2), "unit": "ms"}
            )
            rows.append(
                {
                    "metric": "  p50 latency during the rollovers",
                    "value": round(statistics.median(lat) * 1e3, 3),
                    "unit": "ms",
                }
            )
            for v in range(7, 22):
                rollover(v)
            rss_after = _rss_mb(server.pid)
            growth = rss_after / rss_first - 1
            rows.append({"metric": "server RSS after the 1st rollover", "value": round(rss_first, 1), "unit": "MiB"})
            rows.append({"metric": "server RSS after 20 rollovers", "value": round(rss_after, 1), "unit": "MiB"})
            rows.append(
                {
                    "metric": "RSS growth over 20 rollovers",
                    "value": round(100 * growth, 2),
                    "unit": "%",
                    "target": "< 10",
                    "met": growth < 0.10,
                }
            )
        finally:
            _stop(server)
    return rows
