"""The config files TF Serving reads, in their protobuf text formats.

- `--model_config_file`: a ModelServerConfig (`model_config_list { config { name base_path
  model_platform model_version_policy version_labels } }`).
- `--batching_parameters_file`: BatchingParameters (wrapper values: `max_batch_size { value: 32 }`).
- `--monitoring_config_file`: MonitoringConfig (`prometheus_config { enable: true path: "..." }`).
- `--ssl_config_file`: SSLConfig (`server_key`, `server_cert`, `custom_ca`, `client_verify`).

A file that does not parse is refused with TF Serving's phrase ("Error parsing text-format
tensorflow.serving.<Message>") and the parser's message (file, line and column).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format

import modelbase
from serving._proto import shipyard_serving_configs_pb2 as own


class ConfigError(Exception):
    pass


def _read(path: str | Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{what}: cannot read {path}: {e.strerror}") from None


def _parse(path: str | Path, message: Any, what: str) -> Any:
    text = _read(path, what)
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ConfigError(
            f"{what}: Error parsing text-format tensorflow.serving.{type(message).__name__}: {path}: {e}"
        ) from None
    return message


def model_server_config(path: str | Path) -> Any:
    try:
        config = modelbase.parse_model_server_config(_read(path, "--model_config_file"), str(path))
    except modelbase.ConfigFileError as e:
        raise ConfigError(f"--model_config_file: {e}") from None
    check_model_server_config(config)
    return config


def check_model_server_config(config: Any) -> None:
    if config.WhichOneof("config") == "custom_model_config":
        raise ConfigError("custom_model_config is not supported; use model_config_list")
    names = [m.name for m in config.model_config_list.config]
    for m in config.model_config_list.config:
        if not m.name:
            raise ConfigError("a model config has no name")
        if not m.base_path:
            raise ConfigError(f"model {m.name!r} has no base_path")
        if m.model_platform not in ("", "tensorflow"):
            raise ConfigError(
                f'model {m.name!r}: model_platform {m.model_platform!r} is not supported (only "tensorflow")'
            )
        if m.HasField("logging_config"):
            raise ConfigError(
                f"model {m.name!r}: logging_config needs a request logger, which open-source TF "
                "Serving does not provide (No request-logger-creator provided)"
            )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"model {dupes[0]!r} is configured more than once")


def single_model_config(name: str, base_path: str) -> Any:
    """What --model_name and --model_base_path mean: one model, policy latest { num_versions: 1 }."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    m = config.model_config_list.config.add()
    m.name = name
    m.base_path = base_path
    m.model_platform = "tensorflow"
    return config


@dataclass(frozen=True)
class Batching:
    """BatchingParameters with TF Serving's defaults filled in."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 4
    allowed_batch_sizes: tuple[int, ...] = field(default_factory=tuple)
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 0  # with splitting: the largest batch run; 0 means max_batch_size

    @property
    def execution_batch_size(self) -> int:
        """The most rows one session run takes."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size:
            return self.max_execution_batch_size
        return self.max_batch_size


def batching_parameters(path: str | Path | None) -> Batching:
    """BatchingParameters, checked as TF Serving checks them: `max_batch_size` bounds one request;
    with `enable_large_batch_splitting` a request is cut into pieces of at most
    `max_execution_batch_size` rows (default: `max_batch_size`), which may run in different batches;
    `allowed_batch_sizes` must increase and end with `max_batch_size` (and, with splitting, with
    `max_execution_batch_size` too: TF Serving checks both)."""
    if path is None:
        return Batching()
    p = _parse(path, own.BatchingParameters(), "--batching_parameters_file")
    splitting = p.enable_large_batch_splitting.value if p.HasField("enable_large_batch_splitting") else False
    max_batch = p.max_batch_size.value if p.HasField("max_batch_size") else 1000
    b = Batching(
        max_batch_size=max_batch,
        batch_timeout_micros=p.batch_timeout_micros.value if p.HasField("batch_timeout_micros") else 0,
        max_enqueued_batches=p.max_enqueued_batches.value if p.HasField("max_enqueued_batches") else 10,
        num_batch_threads=p.num_batch_threads.value if p.HasField("num_batch_threads") else 4,
        allowed_batch_sizes=tuple(p.allowed_batch_sizes),
        pad_variable_length_inputs=p.pad_variable_length_inputs,
        enable_large_batch_splitting=splitting,
        max_execution_batch_size=(
            p.max_execution_batch_size.value if splitting and p.HasField("max_execution_batch_size") else 0
        ),
    )
    if b.max_batch_size < 1 or b.num_batch_threads < 1 or b.max_enqueued_batches < 1 or b.batch_timeout_micros < 0:
        raise ConfigError(f"--batching_parameters_file: out-of-range values in {path}: {b}")
    if splitting and not 1 <= b.execution_batch_size <= b.max_batch_size:
        raise ConfigError(
            "--batching_parameters_file: max_execution_batch_size must be in [1, max_batch_size "
            f"({b.max_batch_size})]; got {b.execution_batch_size}"
        )
    if b.allowed_batch_sizes:
        # TF Serving checks twice (bundle_factory_util.cc, then batching_session.cc): the last entry must
        # match max_batch_size, and with splitting also max_execution_batch_size, so there both are equal.
        s = list(b.allowed_batch_sizes)
        if s != sorted(set(s)) or s[0] < 1:
            raise ConfigError(f"--batching_parameters_file: allowed_batch_sizes must increase; got {s}")
        if s[-1] != b.max_batch_size:
            raise ConfigError(
                "--batching_parameters_file: Last entry in allowed_batch_sizes must match max_batch_size; "
                f"last entry was {s[-1]}; expected {b.max_batch_size}"
            )
        if splitting and s[-1] != b.execution_batch_size:
            raise ConfigError(
                "--batching_parameters_file: Last entry in allowed_batch_sizes must be equal to "
                f"max_execution_batch_size; last entry was {s[-1]}; expected {b.execution_batch_size}"
            )
    if b.pad_variable_length_inputs:
        raise ConfigError("--batching_parameters_file: pad_variable_length_inputs is not supported here")
    return b


@dataclass(frozen=True)
class Monitoring:
    prometheus: bool = False
    path: str = "/monitoring/prometheus/metrics"


def monitoring(path: str | Path | None) -> Monitoring:
    if path is None:
        return Monitoring()
    m = _parse(path, own.MonitoringConfig(), "--monitoring_config_file")
    return Monitoring(m.prometheus_config.enable, m.prometheus_config.path or "/monitoring/prometheus/metrics")


def ssl(path: str | Path | None) -> Any:
    return None if path is None else _parse(path, own.SSLConfig(), "--ssl_config_file")
