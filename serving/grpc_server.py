"""The gRPC front end: TF Serving's PredictionService and ModelService on their method paths, so the
unmodified tensorflow_serving.apis stubs work against it. Max message sizes are INT32_MAX unless
--grpc_channel_arguments says otherwise."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving import deadline
from serving.core import ServerCore
from serving.errors import ServingError
from serving.handlers.classify import classify
from serving.handlers.metadata import metadata
from serving.handlers.multi_inference import multi_inference
from serving.handlers.predict import predict_wire
from serving.handlers.regress import regress
from serving.handlers.reload import reload_config
from serving.handlers.status import status
from serving.metrics import serving_request

log = logging.getLogger("serving")
INT32_MAX = 2**31 - 1


def _call(
    core: ServerCore, api: str, handler: Callable[[ServerCore, Any], Any], request: Any, context: grpc.ServicerContext
) -> Any:
    start = time.perf_counter()
    model = (
        request.model_spec.name
        if hasattr(request, "model_spec")
        else (request.tasks[0].model_spec.name if getattr(request, "tasks", None) else "")
    )
    with serving_request() as served:
        try:
            with deadline.until(deadline.after(context.time_remaining())):
                response = handler(core, request)
        except ServingError as e:
            core.metrics.request(model, api, "GRPC", e.code.name, time.perf_counter() - start, served.get("version"))
            context.abort(e.code, e.message)
    core.metrics.request(model, api, "GRPC", "OK", time.perf_counter() - start, served.get("version"))
    return response


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServerCore) -> None:
        self.core = core

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        return _call(self.core, "predict", predict_wire, request, context)  # the PredictResponse's bytes

    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        return _call(self.core, "classify", classify, request, context)

    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        return _call(self.core, "regress", regress, request, context)

    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        return _call(self.core, "multi_inference", multi_inference, request, context)

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return _call(self.core, "get_model_metadata", metadata, request, context)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServerCore) -> None:
        self.core = core

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return _call(self.core, "get_model_status", status, request, context)

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        return _call(self.core, "reload_config", reload_config, request, context)


def _message_or_bytes(response: Any) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def _add_prediction_service(servicer: PredictionService, server: grpc.Server) -> None:
    """PredictionService on TF Serving's method paths, as the generated `add_..._to_server` registers it,
    except that a handler may answer with already-serialized bytes (Predict does: `serving.wire`)."""
    from tensorflow_serving.apis import (
        classification_pb2,
        get_model_metadata_pb2,
        inference_pb2,
        predict_pb2,
        regression_pb2,
    )

    requests = {
        "Classify": classification_pb2.ClassificationRequest,
        "Regress": regression_pb2.RegressionRequest,
        "Predict": predict_pb2.PredictRequest,
        "MultiInference": inference_pb2.MultiInferenceRequest,
        "GetModelMetadata": get_model_metadata_pb2.GetModelMetadataRequest,
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name), request_deserializer=message.FromString, response_serializer=_message_or_bytes
        )
        for name, message in requests.items()
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", handlers),)
    )


def build(
    core: ServerCore,
    *,
    bind: str,
    port: int,
    socket_path: str = "",
    channel_args: list | None = None,
    ssl_config: Any = None,
    health: bool = False,
    max_workers: int = 32,
) -> tuple[grpc.Server, int, Any]:
    # gRPC Python shares a taken port by default (SO_REUSEPORT): a second server would start and split
    # the clients with the first. TF Serving fails to start instead, and so does this server.
    options: dict[str, Any] = {
        "grpc.max_receive_message_length": INT32_MAX,
        "grpc.max_send_message_length": INT32_MAX,
        "grpc.so_reuseport": 0,
    }
    options.update(dict(channel_args or []))
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"), options=list(options.items())
    )
    _add_prediction_service(PredictionService(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(core), server)
    health_servicer = None
    if health:
        from grpc_health.v1 import health as grpc_health
        from grpc_health.v1 import health_pb2_grpc

        health_servicer = grpc_health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"
    creds = None
    if ssl_config is not None:
        root = ssl_config.custom_ca.encode() or None
        creds = grpc.ssl_server_credentials(
            [(ssl_config.server_key.encode(), ssl_config.server_cert.encode())],
            root_certificates=root,
            require_client_auth=ssl_config.client_verify,
        )
    bound = _bind(server, address, creds)
    if socket_path:  # the same credentials as the TCP port, as TF Serving does
        _bind(server, f"unix:{socket_path}", creds)
    return server, bound, health_servicer


class BindError(OSError):
    """A port or socket this server cannot listen on (taken, or not allowed)."""


def _bind(server: grpc.Server, address: str, creds: Any) -> int:
    try:
        bound = server.add_secure_port(address, creds) if creds is not None else server.add_insecure_port(address)
    except RuntimeError as e:  # grpcio raises where older versions returned 0
        raise BindError(f"cannot listen for gRPC on {address}: {e} (is the port taken?)") from None
    if bound == 0:
        raise BindError(f"cannot listen for gRPC on {address} (is the port taken?)")
    return bound
