"""A load generator in processes of its own, so the server under test does not share its GIL:

    python -m bench.load --kind rest|grpc --target 127.0.0.1:PORT --body FILE --clients 16 --seconds 3

`--body`: the REST JSON body, or a serialized PredictRequest for gRPC. The clients are spread over
`--procs` processes (threads within each, one keep-alive connection or channel per client). Prints
one JSON line: requests, errors, elapsed seconds, and the CPU seconds the load generator's processes
used while the load ran (their start-up excluded), so a report can say how much of the machine the
load took.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import threading
import time


def _rest_worker(target: str, body: bytes, path: str, until: float, counts: list[int], i: int) -> None:
    import http.client

    host, port = target.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json"}
    while time.perf_counter() < until:
        try:
            conn.request("POST", path, body, headers)
            r = conn.getresponse()
            r.read()
            counts[2 * i + (0 if r.status == 200 else 1)] += 1
        except OSError:
            counts[2 * i + 1] += 1
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.close()


def _grpc_worker(target: str, body: bytes, path: str, until: float, counts: list[int], i: int) -> None:
    import grpc

    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(path)  # raw bytes in and out: no protobuf cost on the client
        while time.perf_counter() < until:
            try:
                call(body, timeout=30)
                counts[2 * i] += 1
            except grpc.RpcError:
                counts[2 * i + 1] += 1


def _process(kind: str, target: str, body: bytes, path: str, threads: int, start: float, seconds: float, q) -> None:
    counts = [0] * (2 * threads)
    worker = _rest_worker if kind == "rest" else _grpc_worker
    time.sleep(max(0.0, start - time.time()))
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    until = time.perf_counter() + seconds
    ts = [threading.Thread(target=worker, args=(target, body, path, until, counts, i)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    done = resource.getrusage(resource.RUSAGE_SELF)
    used = (done.ru_utime - cpu.ru_utime) + (done.ru_stime - cpu.ru_stime)
    q.put((sum(counts[0::2]), sum(counts[1::2]), used))


def run(kind: str, target: str, body: bytes, path: str, clients: int, seconds: float, procs: int) -> dict:
    """Run the load; the figures as a dict (also what the command prints)."""
    procs = max(1, min(procs, clients))
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start = time.time() + 1.0  # every process starts together, after its imports
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    ps = [ctx.Process(target=_process, args=(kind, target, body, path, n, start, seconds, q)) for n in per]
    for p in ps:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in ps]
    for p in ps:
        p.join()
    return {
        "requests": sum(r[0] for r in results),
        "errors": sum(r[1] for r in results),
        "seconds": seconds,
        "load_cpu_seconds": round(sum(r[2] for r in results), 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", choices=["rest", "grpc"], required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--path", default="/v1/models/penguins:predict")
    p.add_argument("--body", required=True)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--procs", type=int, default=2)
    a = p.parse_args()
    with open(a.body, "rb") as fh:
        body = fh.read()
    print(json.dumps(run(a.kind, a.target, body, a.path, a.clients, a.seconds, a.procs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
