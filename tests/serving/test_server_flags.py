"""Flags beyond the basics, on a running local server: the gRPC UNIX socket, the gRPC health check,
the REST deadline, and a clean SIGTERM."""

import grpc

from tests.fixtures.servers import start_local
from tests.serving.conftest import copy_base
from tests.serving.test_grpc_api import predict_request


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
