"""The headline: publishing a new version (by the export command) and removing the old one, or moving
the `stable` label with `make promote`, while a client sends requests without pause, fails no request,
and answers switch from version N to N+1 within the poll period plus the load time."""

import subprocess
import threading
import time

import grpc
import pytest

import modelbase
from export.pipeline import export_run
from release import model_config
from tests.conftest import ROOT
from tests.fixtures.servers import start_local
from tests.fixtures.wait import wait_until
from tests.serving.conftest import copy_base
from tests.serving.test_grpc_api import predict_request

MAX_SECONDS = 240  # every request loop here is bounded in time


class Traffic:
    """Requests without pause from one thread: (time, version) per answer, errors kept."""

    def __init__(self, server, **spec):
        self.stub = server.prediction()
        self.spec = spec
        self.answers: list[tuple[float, int]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        end = time.monotonic() + MAX_SECONDS
        req = predict_request(**self.spec)
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                r = self.stub.Predict(req, timeout=30)
                self.answers.append((time.monotonic(), r.model_spec.version.value))
            except grpc.RpcError as e:
                self.errors.append(f"{e.code()}: {e.details()}")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def wait_for_version(self, version, timeout=120):
        def no_errors():
            assert not self.errors, self.errors[:3]

        return wait_until(
            lambda: self.answers[-1][0] if self.answers and self.answers[-1][1] == version else None,
            f"answers to switch to version {version}",
            timeout,
            interval=0.01,
            check=no_errors,
        )

    def count_after(self, t):
        return sum(1 for when, _ in self.answers if when > t)

    def versions_in_order(self):
        out = []
        for _, v in self.answers:
            if not out or out[-1] != v:
                out.append(v)
        return out


def test_publish_and_remove_rolls_over_without_a_failed_request(exported, penguins_run, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    server = start_local(
        [f"--model_base_path={base / 'penguins'}", "--model_name=penguins", "--file_system_poll_wait_seconds=1"],
        tmp_path,
    )
    try:
        with Traffic(server) as traffic:
            traffic.wait_for_version(1)
            published = time.monotonic()
            assert export_run(penguins_run.path, base).version == 2  # the export command's own code path
            switched = traffic.wait_for_version(2)
            import shutil

            shutil.rmtree(base / "penguins" / "1")
            server.wait_for(lambda: server.status("penguins").get(1, ("",))[0] == "END", "version 1 to unload")
            after = time.monotonic()
            while traffic.count_after(after) < 50:
                assert time.monotonic() - after < 60 and not traffic.errors
                time.sleep(0.01)
        assert traffic.errors == []
        assert traffic.versions_in_order() == [1, 2]
        assert switched - published < 1 + 30  # poll period + load time (loads take ~1-5 s here)
        assert len(traffic.answers) > 100
    finally:
        assert server.stop() == 0
    log = server.log()
    assert "penguins version 2 is AVAILABLE" in log and "unloading penguins version 1" in log


def test_promote_and_rollback_move_the_stable_label_without_a_failed_request(exported, penguins_run, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    modelbase.write_config(base, model_config.build(base, {"penguins": {"stable": 1}}))
    server = start_local(
        [f"--model_config_file={base / 'models.config'}", "--model_config_file_poll_wait_seconds=1"], tmp_path
    )

    def make(*args):
        r = subprocess.run(
            ["make", "-s", *args, f"MODELS={base}", f"SERVER={server.target}", "NAME=penguins"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    try:
        with Traffic(server, version_label="stable") as traffic:
            traffic.wait_for_version(1)
            export_run(penguins_run.path, base)  # v2 published; not served under "stable" yet
            out = make("promote", "VERSION=2")
            assert "stable -> 2" in out and "version 2: AVAILABLE" in out
            traffic.wait_for_version(2)
            out = make("rollback")
            assert "stable -> 1" in out
            traffic.wait_for_version(1)
            t = time.monotonic()
            while traffic.count_after(t) < 20:
                time.sleep(0.01)
        assert traffic.errors == []
        assert traffic.versions_in_order() == [1, 2, 1]
    finally:
        assert server.stop() == 0


def test_a_version_that_fails_to_load_is_end_and_the_previous_keeps_serving(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    server = start_local(
        [
            f"--model_base_path={base / 'penguins'}",
            "--model_name=penguins",
            "--file_system_poll_wait_seconds=1",
            "--max_num_load_retries=0",
        ],
        tmp_path,
    )
    try:
        with Traffic(server) as traffic:
            traffic.wait_for_version(1)
            broken = base / "penguins" / ".staging-broken"
            import shutil

            shutil.copytree(base / "penguins" / "1", broken)
            (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
            broken.rename(base / "penguins" / "2")
            server.wait_for(lambda: server.status("penguins").get(2, ("",))[0] == "END", "version 2 to fail")
            _, error = server.status("penguins")[2]
            assert "cannot load" in error
            t = time.monotonic()
            while traffic.count_after(t) < 20:
                time.sleep(0.01)
        assert traffic.errors == [] and traffic.versions_in_order() == [1]
    finally:
        server.stop()


def test_a_bad_warmup_file_fails_the_load(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1, 2]})
    warm = base / "penguins" / "2" / "assets.extra" / "tf_serving_warmup_requests"
    data = bytearray(warm.read_bytes())
    data[30] ^= 0xFF
    warm.write_bytes(bytes(data))
    server = start_local(
        [f"--model_base_path={base / 'penguins'}", "--model_name=penguins", "--max_num_load_retries=0"], tmp_path
    )
    try:
        state, error = server.status("penguins")[2]
        assert state == "END" and "warmup" in error
    finally:
        server.stop()


def test_config_reload_adds_and_removes_models(exported, tmp_path):
    from tensorflow_serving.apis import model_management_pb2

    base = copy_base(exported, tmp_path / "models", {"penguins": [1], "tf1": [1]})
    only_penguins = model_config.build(base, {})
    del only_penguins.model_config_list.config[1:]
    modelbase.write_config(base, only_penguins)
    server = start_local([f"--model_config_file={base / 'models.config'}"], tmp_path)
    try:
        assert set(server.status("penguins")) == {1}
        with pytest.raises(grpc.RpcError):
            server.status("tf1")
        both = model_config.build(base, {})
        server.models().HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=both), timeout=60)
        server.wait_for(lambda: server.status("tf1").get(1, ("",))[0] == "AVAILABLE", "tf1 to load")
        del both.model_config_list.config[0]  # penguins left out: unloaded
        server.models().HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=both), timeout=60)
        server.wait_for(lambda: server.status("penguins").get(1, ("",))[0] == "END", "penguins to unload")
        bad = model_config.build(base, {"tf1": {"stable": 7}})  # no version 7: the label is dropped by build
        bad.model_config_list.config[1].version_labels["stable"] = 7
        with pytest.raises(grpc.RpcError) as e:
            server.models().HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=bad), timeout=60)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        server.stop()
