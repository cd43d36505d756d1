"""Behaviour under faults and limits, as TF Serving behaves: shapes left to the session, deadlines that
stop the session run, base paths that vanish for a moment, configs that would unload everything,
taken ports, odd version names, TLS on the UNIX socket, shutdown during load retries, and large
requests through the shipped batching config."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.fixtures.servers import ROOT, start_local
from tests.fixtures.tf1_models import build_column_model, build_loop_model
from tests.fixtures.wait import wait_until
from tests.serving.conftest import copy_base
from tests.serving.test_grpc_api import ROW, predict_request
from tests.serving.test_server_flags import _self_signed, _ssl_config

pytestmark = pytest.mark.slow  # trains, exports or starts servers (see tests/conftest.py)


def _predict(stub, name: str, inputs: dict, timeout: float = 30, signature: str = ""):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    req.model_spec.signature_name = signature
    for k, v in inputs.items():
        req.inputs[k].CopyFrom(tf.make_tensor_proto(v))
    return stub.Predict(req, timeout=timeout)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory):
    base = tmp_path_factory.mktemp("odd")
    build_column_model(base / "column" / "1")
    build_loop_model(base / "loop" / "1")
    return base


def test_request_shapes_are_left_to_the_session(odd_models, tmp_path):
    server = start_local([f"--model_base_path={odd_models / 'column'}", "--model_name=column"], tmp_path)
    try:
        stub = server.prediction()
        one = _predict(stub, "column", {"x": np.array([3.0], np.float32)})  # [1] for a signature of [-1, 1]
        assert tf.make_ndarray(one.outputs["y"]).tolist() == [3.5]
        wide = _predict(stub, "column", {"x": np.ones((2, 3), np.float32)})
        assert tf.make_ndarray(wide.outputs["y"]).shape == (2, 3)
        with pytest.raises(grpc.RpcError) as e:  # the matmul cannot take three columns: the session says so
            _predict(stub, "column", {"x": np.ones((2, 3), np.float32)}, signature="matmul")
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "input 'x' has shape [2, 3]" in e.value.details()
    finally:
        assert server.stop() == 0


def test_a_deadline_stops_the_session_run(odd_models, tmp_path):
    """A request whose graph would loop for minutes: past its gRPC deadline (and past the REST
    timeout) the session run stops, so the server goes back to idle instead of burning a core."""
    import json
    import urllib.error
    import urllib.request

    server = start_local(
        [f"--model_base_path={odd_models / 'loop'}", "--model_name=loop", "--rest_api_timeout_in_ms=500"], tmp_path
    )
    try:
        stub = server.prediction()
        assert tf.make_ndarray(_predict(stub, "loop", {"n": np.array([3], np.int64)}).outputs["out"]).shape == (1,)
        endless = np.array([10**12], np.int64)
        with pytest.raises(grpc.RpcError) as e:
            _predict(stub, "loop", {"n": endless}, timeout=0.5)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        body = json.dumps({"instances": [10**12]}).encode()
        with pytest.raises(urllib.error.HTTPError) as http:
            urllib.request.urlopen(f"{server.rest}/v1/models/loop:predict", data=body, timeout=30)
        assert http.value.code == 504
        time.sleep(1.5)  # the session timeout is rounded up (at most 25%) past the deadline
        before = _cpu_seconds(server.proc.pid)
        time.sleep(2.0)
        burnt = _cpu_seconds(server.proc.pid) - before
        assert burnt < 0.5, f"the server used {burnt:.2f} CPU-s in 2 s after the deadlines: the loops still run"
        assert "DeadlineExceeded" not in server.log() or "Traceback" not in server.log()
        assert tf.make_ndarray(_predict(stub, "loop", {"n": np.array([3], np.int64)}).outputs["out"]).shape == (1,)
    finally:
        assert server.stop() == 0


def test_a_base_path_renamed_away_and_back_under_load_fails_no_request(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    server = start_local(
        [f"--model_base_path={base / 'penguins'}", "--model_name=penguins", "--file_system_poll_wait_seconds=1"],
        tmp_path,
    )
    failures, done, stop = [], [0], threading.Event()

    def load() -> None:
        stub = server.prediction()
        while not stop.is_set():
            try:
                stub.Predict(predict_request(), timeout=10)
                done[0] += 1
            except grpc.RpcError as e:
                failures.append(e.code())

    t = threading.Thread(target=load)
    t.start()
    try:
        wait_until(lambda: done[0] >= 20, "requests to flow", 30)
        os.rename(base / "penguins", base / "penguins.away")
        wait_until(lambda: "Could not find base path" in server.log(), "a poll that cannot list the base path", 30)
        served = done[0]
        wait_until(lambda: done[0] >= served + 50, "requests served while the base path is away", 30)
        os.rename(base / "penguins.away", base / "penguins")
        wait_until(lambda: "can be listed again" in server.log(), "a poll that lists the base path again", 30)
        served = done[0]
        wait_until(lambda: done[0] >= served + 20, "requests served after it is back", 30)
    finally:
        stop.set()
        t.join()
    try:
        assert failures == [] and done[0] > 50, (failures[:3], done[0])
        assert "Could not find base path" in server.log()
        assert server.status("penguins") == {1: ("AVAILABLE", "")}
    finally:
        assert server.stop() == 0


def test_a_config_that_would_unload_everything_is_refused(exported, tmp_path):
    import modelbase
    from release import model_config

    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    config_file = modelbase.write_config(base, model_config.build(base, {}))
    server = start_local([f"--model_config_file={config_file}", "--model_config_file_poll_wait_seconds=1"], tmp_path)
    try:
        with pytest.raises(grpc.RpcError) as e:  # a reload request with no config at all
            server.models().HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(), timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        config_file.write_text("")  # an empty config file: TF Serving refuses the transition and keeps serving
        server.wait_for(lambda: "Cannot transition to requested config" in server.log(), "the refusal in the log")
        assert server.prediction().Predict(predict_request(), timeout=30).model_spec.version.value == 1
        gone = model_management_pb2.ReloadConfigRequest()  # a base path that does not exist: keep the versions
        gone.config.CopyFrom(model_config.build(base, {}))
        gone.config.model_config_list.config[0].base_path = str(tmp_path / "nowhere")
        server.models().HandleReloadConfigRequest(gone, timeout=30)
        server.wait_for(lambda: "Could not find base path" in server.log(), "the listing error in the log")
        assert server.prediction().Predict(predict_request(), timeout=30).model_spec.version.value == 1
    finally:
        assert server.stop() == 0


def test_a_taken_port_fails_start_up_with_exit_1(exported, tmp_path):
    import subprocess
    import sys

    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    for which in ("port", "rest_api_port"):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        other = free.getsockname()[1]
        free.close()
        ports = {which: taken.getsockname()[1], ({"port", "rest_api_port"} - {which}).pop(): other}
        try:
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "serving",
                    f"--port={ports['port']}",
                    f"--rest_api_port={ports['rest_api_port']}",
                    "--bind_address=127.0.0.1",
                    f"--model_base_path={base / 'penguins'}",
                    "--model_name=penguins",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            taken.close()
        assert r.returncode == 1, r.stderr[-2000:]
        assert "cannot listen" in r.stderr and str(ports[which]) in r.stderr


def test_only_ascii_digit_directories_are_versions(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    for odd in ("²", "٩", "99999999999999999999"):
        shutil.copytree(base / "penguins" / "1", base / "penguins" / odd)
    server = start_local([f"--model_base_path={base / 'penguins'}", "--model_name=penguins"], tmp_path)
    try:
        assert server.status("penguins") == {1: ("AVAILABLE", "")}
        assert server.prediction().Predict(predict_request(), timeout=30).model_spec.version.value == 1
    finally:
        assert server.stop() == 0


def test_the_unix_socket_gets_the_same_tls_as_the_port(exported, tmp_path):
    key, cert = _self_signed(tmp_path)
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    sock = tmp_path / "serving.sock"
    config = _ssl_config(tmp_path / "ssl.config", key, cert, client_verify=True)
    server = start_local(
        [
            f"--model_base_path={base / 'penguins'}",
            "--model_name=penguins",
            f"--ssl_config_file={config}",
            f"--grpc_socket_path={sock}",
        ],
        tmp_path,
        ready=False,
    )
    mutual = grpc.ssl_channel_credentials(root_certificates=cert, private_key=key, certificate_chain=cert)
    name = [("grpc.ssl_target_name_override", "localhost")]
    try:
        with grpc.secure_channel(f"unix:{sock}", mutual, options=name) as ch:
            grpc.channel_ready_future(ch).result(timeout=300)
            r = prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(predict_request(), timeout=30)
            assert r.model_spec.version.value == 1
        with grpc.insecure_channel(f"unix:{sock}") as ch, pytest.raises(grpc.RpcError) as e:
            prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(predict_request(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE  # plaintext on the socket: refused
        with (
            grpc.secure_channel(
                f"unix:{sock}", grpc.ssl_channel_credentials(root_certificates=cert), options=name
            ) as ch,
            pytest.raises(grpc.RpcError) as e,
        ):
            prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(predict_request(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE  # no client certificate: refused
    finally:
        assert server.stop() == 0


def test_sigterm_while_a_failed_load_waits_to_retry_exits_promptly(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    broken = base / "penguins" / "2"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    server = start_local(
        [
            f"--model_base_path={base / 'penguins'}",
            "--model_name=penguins",
            "--max_num_load_retries=5",
            "--load_retry_interval_micros=60000000",  # a minute between attempts
        ],
        tmp_path,
        ready=False,  # as TF Serving, the ports open once the initial load has settled: minutes here
    )
    try:
        server.wait_for(lambda: "retrying" in server.log(), "the first failed attempt")
    finally:
        start = time.monotonic()
        assert server.stop() == 0
    assert time.monotonic() - start < 15, "shutdown waited for the load retry"


def test_large_requests_through_the_shipped_batching_config(exported, tmp_path):
    """serving/configs/batching.config (also in Dockerfile.serving): requests far larger than one
    batch are split, run, and joined in order; a lone client is not held back by a batch timeout."""
    from serving import config as cfg

    shipped = ROOT / "serving" / "configs" / "batching.config"
    params = cfg.batching_parameters(shipped)
    assert params.max_batch_size >= 10_000 and params.enable_large_batch_splitting
    assert params.batch_timeout_micros == 0
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    server = start_local(
        [
            f"--model_base_path={base / 'penguins'}",
            "--model_name=penguins",
            "--enable_batching",
            f"--batching_parameters_file={shipped}",
        ],
        tmp_path,
    )
    try:
        stub = server.prediction()
        rng = np.random.default_rng(0)
        for rows in (1, 1000, 10_000):
            many = [dict(ROW, bill_length_mm=float(x)) for x in rng.uniform(32, 60, rows)]
            r = stub.Predict(predict_request(rows=many), timeout=120)
            probs = tf.make_ndarray(r.outputs["probabilities"])
            assert probs.shape == (rows, 3)
            if rows > 1:  # in request order: each row's answer is the answer it gets alone
                for i in (0, rows // 2, rows - 1):
                    alone = stub.Predict(predict_request(rows=[many[i]]), timeout=30)
                    assert np.allclose(tf.make_ndarray(alone.outputs["probabilities"])[0], probs[i], atol=1e-6)
        status = server.models().GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "penguins"}), timeout=10
        )
        assert len(status.model_version_status) == 1
    finally:
        assert server.stop() == 0
