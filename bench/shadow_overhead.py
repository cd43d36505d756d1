"""ShadowClient's cost to the caller: p50 and p99 of a single-row predict against the local server,
with no shadow and through a ShadowClient (SQLite sink, sample rate 1.0), measured side by side in one
run in alternating blocks so that drift hits both alike. Targets: p50 at most 1.05x, p99 at most 1.2x.

Two shadows: an in-process stand-in that answers at once (the SDK's own cost: the queue, the worker
thread, building the record, the sink's writer), and the same model on the same server (which adds
the shadow's load on that server and on the machine's cores to the primary's latency, as a canary
on the same host would)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.fixtures.requests import PENGUIN_FEEDS

NAME = "shadow_overhead"
TITLE = "ShadowClient overhead on the primary call (SQLite sink, sample 1.0)"
BLOCKS = 10
CALLS = 200  # per block and arm
ROW = PENGUIN_FEEDS


def _timed(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call(ROW)
        out.append((time.perf_counter() - start) * 1e3)
    return out


def run() -> list[dict]:
    import modelbase
    from bench.serving import penguins_model
    from release import model_config
    from shipyard_client import Client, Endpoint, ShadowClient, SQLiteSink
    from tests.fixtures.servers import start_local

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        base = penguins_model(tmp_path).parent
        modelbase.write_config(base, model_config.build(base, {}))
        server = start_local([f"--model_config_file={base / 'models.config'}"], tmp_path)
        try:
            server.wait_for(lambda: server.status("penguins").get(1, ("",))[0] == "AVAILABLE", "penguins")
            with Client(server.target, timeout=30) as client:
                plain = lambda row: client.predict("penguins", row)  # noqa: E731
                stand_in = StandIn(client.predict("penguins", ROW))
                shadows = {
                    "stand-in shadow": Endpoint(stand_in, "penguins"),
                    "same-server shadow": Endpoint(client, "penguins"),
                }
                clients = {
                    k: ShadowClient(Endpoint(client, "penguins"), e, SQLiteSink(tmp_path / f"{i}.db"))
                    for i, (k, e) in enumerate(shadows.items())
                }
                _timed(plain, 200)
                for sc in clients.values():
                    _timed(sc.predict, 200)  # warm every path
                times: dict[str, list[float]] = {"no shadow": [], **{k: [] for k in clients}}
                for _ in range(BLOCKS):
                    times["no shadow"] += _timed(plain, CALLS)
                    for k, sc in clients.items():
                        times[k] += _timed(sc.predict, CALLS)
                stats = {k: sc.close() for k, sc in clients.items()}
        finally:
            server.stop()

    def q(a: list[float], p: float) -> float:
        return float(np.quantile(np.asarray(a), p))

    base = times.pop("no shadow")
    rows = [
        {"metric": "predict p50, no shadow", "value": round(statistics.median(base), 3), "unit": "ms"},
        {"metric": "predict p99, no shadow", "value": round(q(base, 0.99), 3), "unit": "ms"},
    ]
    for k, t in times.items():
        p50 = statistics.median(t) / statistics.median(base)
        p99 = q(t, 0.99) / q(base, 0.99)
        st = stats[k]
        rows += [
            {"metric": f"predict p50, {k}", "value": round(statistics.median(t), 3), "unit": "ms"},
            {"metric": f"predict p99, {k}", "value": round(q(t, 0.99), 3), "unit": "ms"},
            {"metric": f"p50 ratio, {k} (<= 1.05)", "value": round(p50, 3), "unit": "ratio", "met": p50 <= 1.05},
            {"metric": f"p99 ratio, {k} (<= 1.2)", "value": round(p99, 3), "unit": "ratio", "met": p99 <= 1.2},
            {
                "metric": f"records written / sampled, {k}",
                "value": f"{st['sink']['written']}/{st['sampled']}",
                "unit": "",
            },
        ]
    return rows


class StandIn:
    """A shadow that answers at once with a canned result."""

    def __init__(self, result: object) -> None:
        self.result = result

    def predict(self, model: str, inputs: object, **kwargs: object) -> object:
        return self.result
