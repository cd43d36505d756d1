"""One Client over several backends: balanced round robin, zero failed requests when one backend is
killed mid-load, and the backend used again once it is back."""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from shipyard_client import Client, RetryPolicy
from tests.client_sdk.test_against_server import ROW, inputs
from tests.conftest import ROOT, copy_base
from tests.fixtures.servers import start_local
from tests.fixtures.wait import wait_until

MONITORING = 'prometheus_config { enable: true path: "/metrics" }'


def requests_served(server) -> float:
    with urllib.request.urlopen(server.rest + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(":tensorflow:serving:request_count{") and 'status="OK"' in line
    )


def test_round_robin_failover_and_reconnect(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    (tmp_path / "mon.config").write_text(MONITORING)
    flags = [
        f"--model_base_path={base / 'penguins'}",
        "--model_name=penguins",
        f"--monitoring_config_file={tmp_path / 'mon.config'}",
    ]
    servers = [start_local(flags, tmp_path) for _ in range(3)]
    target = "ipv4:" + ",".join(f"127.0.0.1:{s.grpc_port}" for s in servers)
    client = Client(
        target, timeout=10, retry=RetryPolicy(max_attempts=20, initial_backoff=0.05, max_backoff=0.5, deadline=60)
    )
    errors, done, stop = [], [0], threading.Event()

    def traffic():
        end = time.monotonic() + 180  # bounded
        x = inputs([ROW])
        while not stop.is_set() and time.monotonic() < end:
            try:
                client.predict("penguins", x)
                done[0] += 1
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                errors.append(repr(e))

    worker = threading.Thread(target=traffic)
    restarted = None
    try:
        worker.start()
        while done[0] < 300:
            assert worker.is_alive() and not errors, errors[:3]
            time.sleep(0.01)
        counts = [requests_served(s) for s in servers]
        assert all(c > 30 for c in counts), counts  # round robin: every backend takes its share

        victim = servers[1]
        os.kill(victim.proc.pid, signal.SIGKILL)  # dies mid-load, requests in flight and all
        victim.proc.wait()
        before = done[0]
        while done[0] < before + 300:
            assert worker.is_alive() and not errors, errors[:3]
            time.sleep(0.01)

        with open(tmp_path / "restarted.log", "wb") as log:  # back on the same port
            restarted = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "serving",
                    f"--port={victim.grpc_port}",
                    f"--rest_api_port={victim.rest_port}",
                    "--bind_address=127.0.0.1",
                    *flags,
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def no_errors() -> None:
            assert not errors, errors[:3]

        wait_until(
            lambda: requests_served(victim) > 10,
            "the client to go back to the restarted backend",
            120,
            interval=0.1,
            check=no_errors,
            ignore=(OSError,),  # not listening yet
        )
    finally:
        stop.set()
        worker.join()
        client.close()
        if restarted is not None:
            restarted.terminate()
            restarted.wait(60)
        for s in servers:
            s.stop()
    assert errors == [] and done[0] > 600
