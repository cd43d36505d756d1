"""The ModelServer: flags -> ServerCore -> gRPC (and REST) front ends, as tensorflow_model_server runs.

Start-up loads the configured models and waits until their versions have settled before the ports
open. SIGTERM (or SIGINT) stops accepting requests, lets those in flight finish, then unloads.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from serving import config as cfg
from serving import flags as flagmod
from serving.core import Options, ServerCore
from serving.errors import ServingError

log = logging.getLogger("serving")


class ModelServer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        batching = cfg.batching_parameters(args.batching_parameters_file or None) if args.enable_batching else None
        self.monitoring = cfg.monitoring(args.monitoring_config_file or None)
        self.ssl = cfg.ssl(args.ssl_config_file or None)
        if self.monitoring.prometheus and not args.rest_api_port:
            raise cfg.ConfigError(
                "--monitoring_config_file: Prometheus metrics are served on the REST port; set --rest_api_port"
            )
        options = Options(
            tensor_content=args.enable_serialization_as_tensor_content,
            method_name_check=args.enable_signature_method_name_check,
            warmup=args.enable_model_warmup,
            tags=tuple(t for t in args.saved_model_tags.split(",") if t),
            intra_op_threads=args.tensorflow_intra_op_parallelism,
            inter_op_threads=args.tensorflow_inter_op_parallelism,
        )
        self.core = ServerCore(
            options,
            poll_seconds=args.file_system_poll_wait_seconds,
            max_load_retries=args.max_num_load_retries,
            retry_interval_s=args.load_retry_interval_micros / 1e6,
            allow_labels_for_unavailable=args.allow_version_labels_for_unavailable_models,
            batching=batching,
        )
        try:
            self.channel_args = flagmod.channel_arguments(args.grpc_channel_arguments)
        except ValueError as e:
            raise cfg.ConfigError(str(e)) from None
        self.grpc_server: Any = None
        self.rest: Any = None
        self.grpc_port = 0
        self._stopped = threading.Event()
        self._lifecycle = threading.Lock()  # start's port opening and stop never interleave
        self._config_text: str | None = None

    def _initial_config(self) -> Any:
        if self.args.model_config_file:
            self._config_text = Path(self.args.model_config_file).read_text(encoding="utf-8")
            return cfg.model_server_config(self.args.model_config_file)
        return cfg.single_model_config(self.args.model_name, str(Path(self.args.model_base_path)))

    def start(self, initial_load_timeout: float = 600.0) -> None:
        config = self._initial_config()
        try:
            self.core.apply_config(config)
        except ServingError as e:
            log.info("labels wait for their versions: %s", e.message)
        self.core.source.start()
        if not self.core.wait_for_initial_load(initial_load_timeout, self._stopped):
            log.warning("models still loading after %.0fs; serving what is available", initial_load_timeout)
        with self._lifecycle:
            if not self._stopped.is_set():  # a signal during the initial load: no port opens
                self._open_ports()

    def _open_ports(self) -> None:
        from serving import grpc_server

        self.grpc_server, self.grpc_port, health = grpc_server.build(
            self.core,
            bind=self.args.bind_address,
            port=self.args.port,
            socket_path=self.args.grpc_socket_path,
            channel_args=self.channel_args,
            ssl_config=self.ssl,
            health=self.args.enable_grpc_healthcheck_service,
            max_workers=self.args.grpc_max_workers,
        )
        self.grpc_server.start()
        if health is not None:
            from grpc_health.v1 import health_pb2

            for service in ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"):
                health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("Running gRPC ModelServer at %s:%d ...", self.args.bind_address, self.grpc_port)
        if self.args.rest_api_port:
            from serving.rest_server import RestServer

            self.rest = RestServer(
                self.core,
                self.args.bind_address,
                self.args.rest_api_port,
                self.args.rest_api_timeout_in_ms,
                self.args.rest_api_num_threads,
                self.monitoring.path if self.monitoring.prometheus else None,
                max_request_bytes=self.args.rest_api_max_request_bytes,
                max_connections=self.args.rest_api_max_connections,
                idle_timeout_s=self.args.rest_api_idle_timeout_seconds,
            )
            self.rest.start()
            log.info("Exporting HTTP/REST API at:%s:%d ...", self.args.bind_address, self.rest.port)
        if self.args.model_config_file and self.args.model_config_file_poll_wait_seconds > 0:
            threading.Thread(target=self._poll_config, name="config-poll", daemon=True).start()

    def _poll_config(self) -> None:
        path = Path(self.args.model_config_file)
        while not self._stopped.wait(self.args.model_config_file_poll_wait_seconds):
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as e:
                log.error("cannot re-read %s: %s", path, e)
                continue
            if text == self._config_text:
                continue
            try:
                config = cfg.model_server_config(path)
            except cfg.ConfigError as e:
                log.error("ignoring the new %s: %s", path, e)
                self._config_text = text
                continue
            self._config_text = text
            log.info("model config %s changed: applying it", path)
            try:
                self.core.apply_config(config)
            except ServingError as e:
                log.info("%s: %s", path, e.message)

    def stop(self, grace: float = 10.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("shutting down: finishing requests in flight")
        with self._lifecycle:
            if self.grpc_server is not None:
                self.grpc_server.stop(grace).wait()
            if self.rest is not None:
                self.rest.stop(grace)
        self.core.close()
        log.info("stopped")

    def wait(self) -> None:
        self._stopped.wait()


def serve(argv: list[str] | None = None) -> int:
    args = flagmod.parse(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    try:
        server = ModelServer(args)
    except cfg.ConfigError as e:
        log.error("%s", e)
        return 2
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received signal %d", signum)

        def stop() -> None:
            server.stop()
            done.set()

        threading.Thread(target=stop, daemon=True).start()

    # Installed before the models load: a signal during a long initial load (or its retries) stops
    # the server at once instead of killing it half-way.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
    except cfg.ConfigError as e:
        log.error("%s", e)
        server.stop(grace=0)
        return 2
    except OSError as e:  # a port that is taken, a socket path that cannot be created
        log.error("%s", e)
        server.stop(grace=0)
        return 1
    # Wait in short slices, never for good: the kernel may hand SIGTERM to any of the threads TF and gRPC
    # start, and Python runs the handler only when the main thread next executes, so a main thread
    # blocked in one long wait would ignore the signal (seen: a server that did not stop in 60 s).
    while not done.wait(0.2):
        pass
    return 0
