"""SIGTERM stops the local server whichever of its threads the kernel hands the signal to."""

from __future__ import annotations

import ctypes
import os
import platform
import signal

import pytest

from tests.conftest import copy_base
from tests.fixtures.servers import start_local
from tests.fixtures.wait import wait_until

TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())  # the syscall number of tgkill(2)


@pytest.mark.skipif(TGKILL is None or not os.path.isdir("/proc/self/task"), reason="needs Linux tgkill and /proc")
def test_sigterm_to_a_worker_thread_stops_the_server(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    server = start_local([f"--model_base_path={base / 'penguins'}", "--model_name=penguins"], tmp_path)
    pid = server.proc.pid
    try:
        workers = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
        assert workers, "the server has no thread besides its main one"
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.syscall(TGKILL, pid, workers[-1], signal.SIGTERM) == 0, ctypes.get_errno()
        wait_until(lambda: server.proc.poll() is not None, "the server to stop on SIGTERM", 30)
        assert server.proc.returncode == 0 and "received signal 15" in server.log()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
