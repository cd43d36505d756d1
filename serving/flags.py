"""The command line, with TF Serving's flag names, defaults and meanings.

Flags are written `--name=value` (or `--name value`); booleans also as a bare `--name` or
`--name=false`. A TF Serving flag this server cannot honour is refused with a message, never
silently ignored. Flags of our own (TF Serving has no equivalent) are marked so in --help.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

TF_SERVING_FLAGS_NOT_SUPPORTED = {
    "--platform_config_file": "platform configs other than TensorFlow SavedModel",
    "--tensorflow_session_parallelism": "the deprecated single parallelism setting",
    "--per_process_gpu_memory_fraction": "GPU memory settings",
    "--use_tflite_model": "TFLite models",
}


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1", "yes"):
        return True
    if t in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m serving",
        description="A TF-Serving-compatible model server: same flags, same gRPC and REST APIs, same layout.",
    )
    a = p.add_argument

    def flag(name: str, default: bool, help: str) -> None:
        a(name, nargs="?", const=True, default=default, type=_bool, metavar="BOOL", help=help)

    a("--port", type=int, default=8500, help="gRPC port (default 8500)")
    a("--grpc_socket_path", default="", help="also listen for gRPC on this UNIX socket")
    a("--grpc_channel_arguments", default="", help="comma-separated key=value gRPC server arguments")
    a("--rest_api_port", type=int, default=0, help="REST port; 0 (the default) means no REST API")
    a("--rest_api_timeout_in_ms", type=int, default=30000, help="REST request deadline")
    a("--rest_api_num_threads", type=int, default=16, help="REST worker threads")
    a("--model_name", default="default", help="the model's name, with --model_base_path")
    a("--model_base_path", default="", help="the model's base path (numeric version subdirectories)")
    a("--model_config_file", default="", help="a ModelServerConfig text file (instead of --model_name/base_path)")
    a(
        "--model_config_file_poll_wait_seconds",
        type=int,
        default=0,
        help="re-read --model_config_file every N seconds; 0 reads it once",
    )
    a(
        "--file_system_poll_wait_seconds",
        type=int,
        default=1,
        help="poll the base paths for versions every N seconds; 0 polls once",
    )
    flag("--enable_batching", False, "merge concurrent requests into batched session runs")
    a("--batching_parameters_file", default="", help="BatchingParameters text file")
    a("--monitoring_config_file", default="", help="MonitoringConfig text file (Prometheus on the REST port)")
    flag(
        "--allow_version_labels_for_unavailable_models",
        False,
        "allow new labels to point at versions that are not AVAILABLE yet",
    )
    flag("--enable_model_warmup", True, "replay assets.extra/tf_serving_warmup_requests at load")
    a("--saved_model_tags", default="serve", help="comma-separated MetaGraph tags to load")
    flag("--enable_serialization_as_tensor_content", False, "reply with tensor_content instead of *_val fields")
    a("--ssl_config_file", default="", help="SSLConfig text file: serve gRPC over TLS")
    flag("--enable_grpc_healthcheck_service", False, "serve grpc.health.v1.Health")
    flag(
        "--enable_signature_method_name_check",
        False,
        "check that Classify/Regress signatures carry the classify/regress method names",
    )
    a(
        "--tensorflow_intra_op_parallelism",
        type=int,
        default=0,
        help="threads within one op (0: TensorFlow's choice, the number of cores)",
    )
    a(
        "--tensorflow_inter_op_parallelism",
        type=int,
        default=0,
        help="threads running independent ops (0: TensorFlow's choice)",
    )
    a("--max_num_load_retries", type=int, default=5, help="retries of a failed load before giving up")
    a("--load_retry_interval_micros", type=int, default=60_000_000, help="wait between load retries")
    # Our own flags: TF Serving has none for these.
    a(
        "--bind_address",
        default="0.0.0.0",
        help="[not in TF Serving] the address to bind (TF Serving binds all interfaces); the demo uses 127.0.0.1",
    )
    a("--grpc_max_workers", type=int, default=32, help="[not in TF Serving] gRPC worker threads")
    a(
        "--rest_api_max_request_bytes",
        type=int,
        default=64 * 2**20,
        help="[not in TF Serving] the largest REST request body; larger ones are answered 413 (default 64 MiB)",
    )
    a(
        "--rest_api_max_connections",
        type=int,
        default=1024,
        help="[not in TF Serving] open REST connections at most; more are answered 503 and closed",
    )
    a(
        "--rest_api_idle_timeout_seconds",
        type=float,
        default=60.0,
        help="[not in TF Serving] close a REST connection that sends no whole request for this long",
    )
    flag(
        "--session_run_in_caller_thread",
        True,
        "[not in TF Serving] run each request's graph in the request's thread rather than TF's inter-op pool "
        "(faster for small graphs; set false for wide graphs whose independent ops should run in parallel)",
    )
    return p


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser()
    argv = list(argv) if argv is not None else None
    for arg in argv or []:
        name = arg.split("=", 1)[0]
        reason = TF_SERVING_FLAGS_NOT_SUPPORTED.get(name)
        if reason:
            p.error(f"{name} is a TF Serving flag this server cannot honour ({reason} are not supported here)")
    args = p.parse_args(argv)
    if args.model_config_file and args.model_base_path:
        p.error("--model_config_file and --model_base_path cannot be used together")
    if not args.model_config_file and not args.model_base_path:
        p.error("either --model_base_path (with --model_name) or --model_config_file is required")
    if args.batching_parameters_file and not args.enable_batching:
        p.error("--batching_parameters_file needs --enable_batching")
    for port in ("port", "rest_api_port"):
        if not 0 <= getattr(args, port) < 65536:
            p.error(f"--{port} must be in [0, 65535]")
    for name in ("rest_api_max_request_bytes", "rest_api_max_connections", "rest_api_idle_timeout_seconds"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be positive")
    if args.rest_api_port and args.rest_api_port == args.port:
        p.error("--rest_api_port must differ from --port")
    return args


def channel_arguments(text: str) -> list[tuple[str, object]]:
    """`--grpc_channel_arguments=grpc.max_receive_message_length=1024,grpc.keepalive_time_ms=1000`."""
    out: list[tuple[str, object]] = []
    for part in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in part:
            raise ValueError(f"--grpc_channel_arguments: {part!r} is not key=value")
        k, v = part.split("=", 1)
        out.append((k.strip(), int(v) if v.strip().lstrip("-").isdigit() else v.strip()))
    return out
