"""Flags beyond the basics, on a running local server: the gRPC UNIX socket, the gRPC health check,
the REST deadline, and a clean SIGTERM."""

import grpc

from tests.fixtures.servers import start_local
from tests.fixtures.wait import wait_until
from tests.serving.conftest import copy_base
from tests.serving.test_grpc_api import ROW, predict_request


def test_unix_socket_health_check_and_sigterm(exported, tmp_path):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    sock = tmp_path / "serving.sock"
    server = start_local(
        [
            f"--model_base_path={base / 'penguins'}",
            "--model_name=penguins",
            f"--grpc_socket_path={sock}",
            "--enable_grpc_healthcheck_service",
        ],
        tmp_path,
    )
    try:
        health = health_pb2_grpc.HealthStub(server.channel)
        r = health.Check(health_pb2.HealthCheckRequest(service="tensorflow.serving.PredictionService"), timeout=10)
        assert r.status == health_pb2.HealthCheckResponse.SERVING
        with grpc.insecure_channel(f"unix:{sock}") as ch:
            from tensorflow_serving.apis import prediction_service_pb2_grpc

            r = prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(predict_request(), timeout=30)
            assert r.model_spec.version.value == 1
    finally:
        assert server.stop() == 0  # SIGTERM: a clean exit
    log = server.log()
    assert "received signal 15" in log and "unloading penguins version 1" in log and "stopped" in log


def _self_signed(tmp_path):
    """A throwaway certificate for 127.0.0.1/localhost (its own CA), made with the openssl CLI."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI on this machine to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key.read_bytes(), cert.read_bytes()


def _ssl_config(path, key, cert, client_verify):
    import json

    path.write_text(
        f"server_key: {json.dumps(key.decode())}\nserver_cert: {json.dumps(cert.decode())}\n"
        f"custom_ca: {json.dumps(cert.decode())}\nclient_verify: {str(client_verify).lower()}\n"
    )
    return path


def test_ssl_config_serves_grpc_over_tls_and_verifies_clients(exported, tmp_path):
    """--ssl_config_file: gRPC only over TLS with the configured key and certificate; with
    client_verify, a client without a certificate signed by custom_ca is refused."""
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    key, cert = _self_signed(tmp_path)
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    config = _ssl_config(tmp_path / "ssl.config", key, cert, client_verify=True)
    server = start_local(
        [f"--model_base_path={base / 'penguins'}", "--model_name=penguins", f"--ssl_config_file={config}"],
        tmp_path,
        ready=False,
    )
    mutual = grpc.ssl_channel_credentials(root_certificates=cert, private_key=key, certificate_chain=cert)
    try:
        with grpc.secure_channel(server.target, mutual) as ch:
            grpc.channel_ready_future(ch).result(timeout=300)
            r = prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(predict_request(), timeout=30)
            assert r.model_spec.version.value == 1
            assert len(r.outputs["probabilities"].float_val) == 3
        # TLS without a client certificate: the handshake is refused.
        with grpc.secure_channel(server.target, grpc.ssl_channel_credentials(root_certificates=cert)) as ch:
            try:
                prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(predict_request(), timeout=10)
                raise AssertionError("a client without a certificate was served")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE
        # Plaintext against the TLS port: refused too.
        with grpc.insecure_channel(server.target) as ch:
            try:
                prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(predict_request(), timeout=10)
                raise AssertionError("a plaintext client was served on the TLS port")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        assert server.stop() == 0


def _batch_counts(server) -> tuple[int, int]:
    """(input tensors the batch scheduler has taken, batches it has run), from the server's metrics."""
    import urllib.request

    text = urllib.request.urlopen(f"{server.rest}/metrics", timeout=10).read().decode()
    counts = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.endswith("_count"):
            counts[name] = int(float(value))
    prefix = ":tensorflow:serving:batching_session:"
    return counts.get(f"{prefix}input_batch_size_count", 0), counts.get(f"{prefix}processed_batch_size_count", 0)


def test_rest_deadline_and_sigterm_finishes_requests_in_flight(exported, tmp_path):
    """A batch that waits 2 s for company holds requests in flight long enough to observe both:
    --rest_api_timeout_in_ms answers a REST predict 504 at its deadline (no batch has run),
    and SIGTERM lets a gRPC predict already queued finish with its answer before the server exits
    cleanly. Every step waits on the server's batching metrics, never on the clock."""
    import json
    import threading
    import urllib.error
    import urllib.request

    from tensorflow_serving.apis import prediction_service_pb2_grpc

    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    batching = tmp_path / "batching.config"
    batching.write_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 2000000 }\n"
        "max_enqueued_batches { value: 10 }\nnum_batch_threads { value: 1 }\n"
    )
    (tmp_path / "monitoring.config").write_text('prometheus_config { enable: true path: "/metrics" }')
    server = start_local(
        [
            f"--model_base_path={base / 'penguins'}",
            "--model_name=penguins",
            "--enable_batching",
            f"--batching_parameters_file={batching}",
            f"--monitoring_config_file={tmp_path / 'monitoring.config'}",
            "--rest_api_timeout_in_ms=300",
        ],
        tmp_path,
    )
    try:
        body = json.dumps({"instances": [ROW]}).encode()
        try:
            urllib.request.urlopen(f"{server.rest}/v1/models/penguins:predict", data=body, timeout=30)
            raise AssertionError("the REST request outlived --rest_api_timeout_in_ms")
        except urllib.error.HTTPError as e:
            assert e.code == 504
            assert "error" in json.loads(e.read())
        inputs, batches = _batch_counts(server)
        assert inputs == len(ROW), "the REST request never reached the batch scheduler"
        assert batches == 0, "the 504 came after the batch ran, not at the REST deadline"
        # Its task left the queue at its deadline: the next request starts a batch of its own, 2 s long.
        result: dict = {}

        channel = grpc.insecure_channel(server.target)  # its own: stop() closes the fixture's channel

        def call() -> None:
            try:
                result["response"] = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                    predict_request(), timeout=30
                )
            except grpc.RpcError as e:
                result["error"] = e

        t = threading.Thread(target=call)
        t.start()
        wait_until(lambda: _batch_counts(server)[0] == inputs + len(ROW), "the gRPC request to be queued", 30)
        assert _batch_counts(server)[1] == 0 and t.is_alive(), "the request ran before SIGTERM; the test proves nothing"
        assert server.stop() == 0
        t.join(timeout=30)
        channel.close()
        assert "error" not in result, result.get("error")
        assert result["response"].model_spec.version.value == 1  # answered by its batch, after the signal
    finally:
        if server.alive():
            server.stop()
    log = server.log()
    assert "received signal 15" in log and "finishing requests in flight" in log and "stopped" in log
