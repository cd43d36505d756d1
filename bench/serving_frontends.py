"""The local server's front ends and batching, measured side by side in one run:

- single-row Predict p50 over REST against gRPC on the same server (target REST <= 1.3x gRPC);
- throughput at 16 clients over gRPC and REST against a FastAPI + uvicorn peer (bench/rest_peer.py)
  that loads the same SavedModel with tf.saved_model.load; target >= 2x the peer. The load runs in
  processes of its own (bench/load.py) and its CPU share of the machine is reported beside the figures;
- batching with the shipped config (serving/configs/batching.config) on a compute-heavy model (an MLP
  of 4 x 1024 units built here): p50 at 1 client against unbatched (target <= 1.1x) and throughput
  at 16 clients (target >= 1.5x unbatched);
- a 10,000-row float reply encoded in the typed `float_val` field against `tensor_content` (target
  <= 1.5x).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.serving import ROW, _free_port, _request, _start, _stop, penguins_model

NAME = "serving_frontends"
TITLE = "REST and gRPC against a FastAPI peer; batching on a 4x1024 MLP; large replies"
LATENCY_REQUESTS = 1500
SECONDS = 3.0
CLIENTS = 16
LOAD_PROCS = 2
GRPC_PREDICT = "/tensorflow.serving.PredictionService/Predict"
log = logging.getLogger("bench")


def build_mlp(path: Path, inputs: int = 64, width: int = 1024, depth: int = 4, seed: int = 0) -> Path:
    """x [-1, inputs] -> depth x Dense(width, relu) -> y [-1, 1], random weights: compute per row grows
    with width**2, so batching has something to amortize."""
    import tensorflow as tf

    v1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, inputs], name="x")
        h, n = x, inputs
        for i in range(depth):
            w = tf.constant(rng.normal(0, 1 / np.sqrt(n), (n, width)).astype(np.float32), name=f"w{i}")
            h, n = tf.nn.relu(tf.matmul(h, w)), width
        y = tf.matmul(h, tf.constant(rng.normal(0, 1 / np.sqrt(n), (n, 1)).astype(np.float32)), name="y")
        builder = v1.saved_model.Builder(str(path))
        with v1.Session(graph=graph) as sess:
            sig = v1.saved_model.signature_def_utils.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
        builder.save()
    return path


def _rest_latencies(port: int, body: bytes, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("POST", "/v1/models/penguins:predict", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        out.append(time.perf_counter() - t)
        assert r.status == 200, r.status
    conn.close()
    return out


def _grpc_latencies(port: int, body: bytes, n: int, timeout: float | None) -> list[float]:
    import grpc

    out = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(GRPC_PREDICT)
        for _ in range(n):
            t = time.perf_counter()
            call(body, timeout=timeout)
            out.append(time.perf_counter() - t)
    return out


def _load(kind: str, port: int, body: bytes, path: str) -> dict:
    from bench.load import run as load

    r = load(kind, f"127.0.0.1:{port}", body, path, CLIENTS, SECONDS, LOAD_PROCS)
    r["rate"] = r["requests"] / r["seconds"]
    r["load_cpu_share"] = r["load_cpu_seconds"] / (r["seconds"] * (os.cpu_count() or 1))
    return r


def _start_peer(saved_model: Path) -> tuple[object, int]:
    import subprocess
    import sys

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.rest_peer", str(saved_model), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    deadline = time.monotonic() + 300
    while True:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the FastAPI peer did not start") from None
            time.sleep(0.2)


def _row(metric: str, value: float, unit: str, **extra: object) -> dict:
    return {"metric": metric, "value": value, "unit": unit, **extra}


def _throughput(metric: str, load: dict) -> dict:
    return _row(
        metric,
        round(load["rate"], 1),
        "req/s",
        errors=load["errors"],
        load_cpu_share=round(load["load_cpu_share"], 3),
    )


def _ratio(metric: str, value: float, target: str) -> dict:
    op, bound = target.split()
    met = value <= float(bound) if op == "<=" else value >= float(bound)
    return _row(metric, round(value, 3), "ratio", target=target, met=met)


def _front_ends(model_dir: Path, rows: list[dict]) -> float:
    """The REST and gRPC rows; returns the gRPC throughput at CLIENTS clients (penguins: a model whose
    compute is negligible, so this is what the front end itself can carry)."""
    rest_port = _free_port()
    body = json.dumps({"instances": [ROW]}).encode()
    grpc_body = _request().SerializeToString()
    server, port = _start([f"--model_base_path={model_dir}", "--model_name=penguins", f"--rest_api_port={rest_port}"])
    try:
        _rest_latencies(rest_port, body, 200)
        _grpc_latencies(port, grpc_body, 200, 30)
        rest = _rest_latencies(rest_port, body, LATENCY_REQUESTS)
        grpc_deadline = _grpc_latencies(port, grpc_body, LATENCY_REQUESTS, 30)
        grpc_none = _grpc_latencies(port, grpc_body, LATENCY_REQUESTS, None)
        ours_grpc = _load("grpc", port, grpc_body, GRPC_PREDICT)
        ours_rest = _load("rest", rest_port, body, "/v1/models/penguins:predict")
    finally:
        _stop(server)
    peer, peer_port = _start_peer(model_dir / "1")
    try:
        _rest_latencies(peer_port, body, 100)
        peer_p50 = statistics.median(_rest_latencies(peer_port, body, 300))
        theirs = _load("rest", peer_port, body, "/v1/models/penguins:predict")
    finally:
        _stop(peer)  # type: ignore[arg-type]
    p50 = {k: statistics.median(v) * 1e3 for k, v in (("rest", rest), ("grpc", grpc_deadline), ("none", grpc_none))}
    rows.append(_row("p50 single-row predict, REST", round(p50["rest"], 3), "ms"))
    rows.append(_row("p50 single-row predict, gRPC with a 30 s deadline", round(p50["grpc"], 3), "ms"))
    rows.append(_row("p50 single-row predict, gRPC without a deadline", round(p50["none"], 3), "ms"))
    ratio = p50["rest"] / p50["grpc"]
    rows.append(_ratio("REST p50 / gRPC p50 (both with deadlines)", ratio, "<= 1.3"))
    rows.append(_row("  REST p50 / gRPC p50 without a deadline", round(p50["rest"] / p50["none"], 3), "ratio"))
    rows.append(_row("p50 single-row predict, FastAPI peer", round(peer_p50 * 1e3, 3), "ms"))
    for label, r in (("gRPC", ours_grpc), ("REST", ours_rest), ("FastAPI peer (REST)", theirs)):
        rows.append(_throughput(f"throughput at {CLIENTS} clients, {label}", r))
        rows.append(_row(f"  load generator's CPU share, {label}", round(100 * r["load_cpu_share"], 1), "%"))
    for label, r in (("gRPC", ours_grpc), ("REST", ours_rest)):
        gain = r["rate"] / theirs["rate"]
        rows.append(_ratio(f"{label} throughput / FastAPI peer", gain, ">= 2"))
    return float(ours_grpc["rate"])


def _batching(tmp: Path, rows: list[dict], front_end_bound: float) -> None:
    from tensorflow_serving.apis import predict_pb2

    from serving.tensors import to_proto

    mlp_dir = tmp / "mlp"
    build_mlp(mlp_dir / "1")
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "mlp"
    to_proto(np.random.default_rng(1).normal(size=(1, 64)).astype(np.float32), req.inputs["x"])
    body = req.SerializeToString()
    shipped = Path(__file__).resolve().parents[1] / "serving" / "configs" / "batching.config"
    figures = {}
    for label, flags in (
        ("unbatched", []),
        ("batched", ["--enable_batching", f"--batching_parameters_file={shipped}"]),
    ):
        server, port = _start([f"--model_base_path={mlp_dir}", "--model_name=mlp", *flags])
        try:
            _grpc_latencies(port, body, 100, 30)
            p50 = statistics.median(_grpc_latencies(port, body, 500, 30))
            figures[label] = (p50, _load("grpc", port, body, GRPC_PREDICT))
        finally:
            _stop(server)
    for label, (p50, load) in figures.items():
        rows.append(_row(f"MLP 4x1024 p50 at 1 client, {label}", round(p50 * 1e3, 3), "ms"))
        rows.append(_throughput(f"MLP 4x1024 throughput at {CLIENTS} clients, {label}", load))
    lat = figures["batched"][0] / figures["unbatched"][0]
    gain = figures["batched"][1]["rate"] / figures["unbatched"][1]["rate"]
    rows.append(_ratio("MLP p50 at 1 client, batched / unbatched", lat, "<= 1.1"))
    rows.append(_ratio(f"MLP throughput at {CLIENTS} clients, batched / unbatched", gain, ">= 1.5"))
    rows.append(
        _row(
            "  bound: batched MLP throughput / penguins gRPC throughput",
            round(figures["batched"][1]["rate"] / front_end_bound, 3),
            "ratio",
            note="penguins' compute is negligible: its throughput is what the Python front end carries; "
            "batching cannot take the MLP past it",
        )
    )


def _large_reply(rows: list[dict]) -> None:
    """The server's reply path (serving.wire) for a 10,000-row float output, typed against
    tensor_content; beside it, filling the typed field through the protobuf library."""
    from tensorflow_serving.apis import model_pb2, predict_pb2

    from serving.tensors import to_proto
    from serving.wire import predict_response_bytes

    out = {"probabilities": np.random.default_rng(2).random((10_000, 3), dtype=np.float32)}
    spec = model_pb2.ModelSpec(name="penguins", signature_name="serving_default")

    def median_ms(fn: object) -> float:
        times = []
        for _ in range(50):
            t = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3

    def library() -> bytes:
        response = predict_pb2.PredictResponse(model_spec=spec)
        to_proto(out["probabilities"], response.outputs["probabilities"])
        return response.SerializeToString()

    typed = median_ms(lambda: predict_response_bytes(spec, out, False))
    raw = median_ms(lambda: predict_response_bytes(spec, out, True))
    rows.append(_row("10,000x3 float reply, typed float_val (serving.wire)", round(typed, 3), "ms"))
    rows.append(_row("10,000x3 float reply, tensor_content", round(raw, 3), "ms"))
    rows.append(_row("  10,000x3 float reply, typed through the protobuf library", round(median_ms(library), 3), "ms"))
    rows.append(_ratio("typed / tensor_content", typed / raw, "<= 1.5"))


def run() -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        bound = _front_ends(penguins_model(tmp_path), rows)
        _batching(tmp_path, rows, bound)
    _large_reply(rows)
    return rows
