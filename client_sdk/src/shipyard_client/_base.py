"""What Client and AsyncClient share: channel settings, requests, responses, validation.

The gRPC method paths are TF Serving's (`/tensorflow.serving.PredictionService/Predict`, ...); the
messages are the SDK's own (same field numbers, another proto package), so the bytes on the wire
are TF Serving's and nothing clashes with TensorFlow's protos in one process.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import grpc
import numpy as np

from shipyard_client._errors import ShipyardError, error_for
from shipyard_client._examples import to_examples
from shipyard_client._proto import serving_apis_pb2 as sp
from shipyard_client._proto import tf_types_pb2 as tfp
from shipyard_client._retry import RetryPolicy
from shipyard_client._string_wire import varint
from shipyard_client._tensors import decode, dtype_name, encode_wire, tf_dtype
from shipyard_client._types import (
    ClassifyResult,
    ModelMetadata,
    PredictResult,
    RegressResult,
    Signature,
    TensorSpec,
    VersionStatus,
)

log = logging.getLogger("shipyard_client")

PREDICT: Final = "/tensorflow.serving.PredictionService/Predict"
CLASSIFY: Final = "/tensorflow.serving.PredictionService/Classify"
REGRESS: Final = "/tensorflow.serving.PredictionService/Regress"
METADATA: Final = "/tensorflow.serving.PredictionService/GetModelMetadata"
STATUS: Final = "/tensorflow.serving.ModelService/GetModelStatus"
RELOAD: Final = "/tensorflow.serving.ModelService/HandleReloadConfigRequest"
SIGNATURE_DEF_MAP: Final = "tensorflow.serving.SignatureDefMap"  # the metadata's Any holds this message

DEFAULT_SIGNATURE: Final = "serving_default"
CLASSIFY_SIGNATURE: Final = "classification"  # what `python -m export` writes
REGRESS_SIGNATURE: Final = "regression"

METHODS: Final[dict[str, tuple[Any, Any]]] = {
    PREDICT: (sp.PredictRequest, sp.PredictResponse),
    CLASSIFY: (sp.ClassificationRequest, sp.ClassificationResponse),
    REGRESS: (sp.RegressionRequest, sp.RegressionResponse),
    METADATA: (sp.GetModelMetadataRequest, sp.GetModelMetadataResponse),
    STATUS: (sp.GetModelStatusRequest, sp.GetModelStatusResponse),
    RELOAD: (sp.ReloadConfigRequest, sp.ReloadConfigResponse),
}


class UseClientDefault:
    """The type of USE_CLIENT_DEFAULT: a call argument left to the client's setting (as httpx has it).
    `timeout=None` means "no deadline", so "not given" needs a value of its own."""

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = UseClientDefault()
TimeoutTypes = float | None | UseClientDefault


STATE_NAMES: Final = {v: k for k, v in sp.ModelVersionStatus.State.items()}
_NP_NAMES: Final = {"half": "float16", "float": "float32", "double": "float64", "string": "string"}


@dataclass(frozen=True)
class Target:
    """Which model a call goes to."""

    model: str
    version: int | None = None
    label: str | None = None
    signature: str = ""

    def spec(self, into: sp.ModelSpec) -> sp.ModelSpec:
        if not self.model:
            raise ValueError("model must be a non-empty name")
        if self.version is not None and self.label is not None:
            raise ValueError("give version or label, not both")
        into.name = self.model
        if self.version is not None:
            into.version.value = int(self.version)
        elif self.label is not None:
            into.version_label = self.label
        if self.signature:
            into.signature_name = self.signature
        return into


def channel_options(
    retry: RetryPolicy, options: Sequence[tuple[str, Any]], load_balancing: str = "round_robin"
) -> list[tuple[str, Any]]:
    """Several backends ("ipv4:10.0.0.1:8500,10.0.0.2:8500", or "dns:///name:8500" resolving to many)
    are balanced with `load_balancing` (round_robin; "pick_first" sticks to one); a backend that dies is
    skipped and reconnected to when it returns (short reconnect backoffs)."""
    merged: dict[str, Any] = {
        "grpc.max_send_message_length": -1,  # unlimited: large batches are the caller's business
        "grpc.max_receive_message_length": -1,
        "grpc.enable_retries": 1 if retry.max_attempts > 1 else 0,
        "grpc.service_config": retry.service_config_json(load_balancing),
        "grpc.initial_reconnect_backoff_ms": 200,
        "grpc.min_reconnect_backoff_ms": 200,
        "grpc.max_reconnect_backoff_ms": 2000,
    }
    merged.update(dict(options))
    return list(merged.items())


def _serialize(request: Any) -> bytes:
    """Messages and EncodedPredictRequests alike."""
    return request.SerializeToString()  # type: ignore[no-any-return]


def stubs(channel: Any) -> dict[str, Any]:
    """One unary-unary callable per TF Serving method path, with the SDK's own messages."""
    return {
        path: channel.unary_unary(path, request_serializer=_serialize, response_deserializer=resp.FromString)
        for path, (_req, resp) in METHODS.items()
    }


def pick_signature(meta: ModelMetadata, target: Target) -> Signature:
    """The target's signature from the model's metadata, or FailedPreconditionError naming what exists."""
    sig = meta.signatures.get(target.signature)
    if sig is None:
        from shipyard_client._errors import FailedPreconditionError

        raise FailedPreconditionError(
            f"model {target.model} has no signature {target.signature!r}; it has {sorted(meta.signatures)}",
            model=target.model,
        )
    return sig


def signature_key(target: Target) -> tuple[str, int | None, str | None, str]:
    return (target.model, target.version, target.label, target.signature)


def to_error(e: grpc.RpcError, target: Target) -> ShipyardError:
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = e.details() if hasattr(e, "details") else str(e)
    return error_for(code, details or code.name, target.model, target.version, target.label)


# -- inputs ------------------------------------------------------------------------------------
def normalize_inputs(inputs: Any) -> dict[str, np.ndarray]:
    """A mapping of name -> array-like, or a pandas DataFrame (each column an input)."""
    if type(inputs).__module__.startswith("pandas"):
        out = {}
        for c in inputs.columns:
            col = inputs[c]
            kind = getattr(col.dtype, "kind", "O")
            out[str(c)] = col.to_numpy() if kind in "biufc" else col.to_numpy(dtype=object)
        return out
    if not isinstance(inputs, Mapping):
        raise TypeError(
            f"inputs must be a mapping of input names to arrays, or a pandas DataFrame; got {type(inputs).__name__}"
        )
    return {str(k): v if isinstance(v, np.ndarray) else np.asarray(v) for k, v in inputs.items()}


def chunks(inputs: dict[str, np.ndarray], batch_size: int | None) -> list[dict[str, np.ndarray]]:
    if batch_size is None:
        return [inputs]
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    sizes = {len(v) if v.ndim else 1 for v in inputs.values()}
    if len(sizes) != 1:
        raise ValueError(f"with batch_size, every input needs the same number of rows; got sizes {sorted(sizes)}")
    (n,) = sizes
    return [{k: v[i : i + batch_size] for k, v in inputs.items()} for i in range(0, n, batch_size)] or [inputs]


def validate(inputs: Mapping[str, np.ndarray], signature: Signature, target: Target) -> dict[str, np.ndarray]:
    """Check inputs against the signature before the call, naming the input: unknown, missing, or of a
    dtype that cannot become the signature's. Numbers of the same kind are cast (float64 to float32,
    int to float, ...: numpy's "same_kind" rule); anything else is refused."""
    from shipyard_client._errors import InvalidInputError

    def fail(msg: str) -> InvalidInputError:
        return InvalidInputError(msg, model=target.model, version=target.version, label=target.label)

    for name in inputs:
        if name not in signature.inputs:
            raise fail(f"unknown input {name!r}; signature {signature.name!r} takes {sorted(signature.inputs)}")
    for name in signature.inputs:
        if name not in inputs:
            raise fail(f"missing input {name!r}; signature {signature.name!r} takes {sorted(signature.inputs)}")
    out = {}
    for name, value in inputs.items():
        want = signature.inputs[name].dtype
        got = dtype_name(tf_dtype(value, name))
        got = _NP_NAMES.get(got, got)
        if want == got:
            out[name] = value
        elif want != "string" and got != "string" and np.can_cast(value.dtype, np.dtype(want), "same_kind"):
            out[name] = value.astype(want)
        else:
            raise fail(f"input {name!r} has dtype {got}; signature {signature.name!r} expects {want}")
    return out


def has_numbers(inputs: Mapping[str, np.ndarray]) -> bool:
    return any(getattr(v, "dtype", None) is not None and v.dtype.kind in "biuf" for v in inputs.values())


def cast_inputs(inputs: Mapping[str, np.ndarray], signature: Signature, target: Target) -> dict[str, np.ndarray]:
    """Numbers cast to the signature's dtypes (pandas' float64 and int64 columns to a float32 input, ...);
    a cast that would change a value (2.5 or NaN to an integer, a number beyond the integer type, a
    value other than 0 and 1 to bool) is refused naming the input. Inputs the signature does not name,
    and strings, are left as they are (the server answers for them)."""
    from shipyard_client._errors import InvalidInputError

    out = dict(inputs)
    for name, value in inputs.items():
        spec = signature.inputs.get(name)
        if spec is None or getattr(value, "dtype", None) is None or value.dtype.kind not in "biuf":
            continue
        want = _NP_NAMES.get(spec.dtype, spec.dtype)
        try:
            target_dtype = np.dtype(want)
        except TypeError:
            continue
        if value.dtype == target_dtype or target_dtype.kind not in "biuf":
            continue
        bad = None
        if target_dtype.kind in "iu":
            as_float = value.astype(np.float64)
            info = np.iinfo(target_dtype)
            wrong = ~np.isfinite(as_float) | (as_float != np.round(as_float))
            wrong |= (as_float < info.min) | (as_float > info.max)
            if wrong.any():
                bad = value.reshape(-1)[int(np.argmax(wrong.reshape(-1)))].item()
        elif target_dtype.kind == "b":
            wrong = (value != 0) & (value != 1)
            if wrong.any():
                bad = value.reshape(-1)[int(np.argmax(wrong.reshape(-1)))].item()
        if bad is not None:
            raise InvalidInputError(
                f"input {name!r}: {bad!r} cannot become {want} without changing it (the signature "
                f"{signature.name!r} takes {want}); round or convert the column first",
                model=target.model,
                version=target.version,
                label=target.label,
            )
        out[name] = value.astype(target_dtype)
    return out


# -- requests and responses -----------------------------------------------------------------------
class EncodedPredictRequest:
    """A PredictRequest already in its wire form: the tensors are encoded straight to bytes
    (`encode_wire`), with no message holding them. This is what Predict sends and what interceptors
    see for it: `model_spec` and `input_names` to look at, `message()` for the parsed PredictRequest."""

    __slots__ = ("data", "input_names", "model_spec")

    def __init__(self, data: bytes, model_spec: Any, input_names: tuple[str, ...]) -> None:
        self.data = data
        self.model_spec = model_spec
        self.input_names = input_names

    def SerializeToString(self) -> bytes:
        return self.data

    def message(self) -> sp.PredictRequest:
        return sp.PredictRequest.FromString(self.data)


def predict_request(
    target: Target, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] | None
) -> EncodedPredictRequest:
    """PredictRequest bytes: model_spec (field 1) and output_filter (3) from a message, then one
    `inputs` map entry (field 2: key 1, value 2) per tensor, appended on the wire."""
    head = sp.PredictRequest()
    target.spec(head.model_spec)
    if output_filter:
        head.output_filter.extend(output_filter)
    parts = [head.SerializeToString()]
    for name, value in inputs.items():
        key = name.encode()
        tensor = encode_wire(value, name)
        entry_head = b"\x0a" + varint(len(key)) + key + b"\x12" + varint(len(tensor))
        parts += (b"\x12", varint(len(entry_head) + len(tensor)), entry_head, tensor)
    return EncodedPredictRequest(b"".join(parts), head.model_spec, tuple(inputs))


def predict_result(resp: sp.PredictResponse, decode_strings: bool) -> PredictResult:
    outputs = {k: decode(v, decode_strings=decode_strings) for k, v in resp.outputs.items()}
    return PredictResult(outputs, resp.model_spec.name, resp.model_spec.version.value, resp.model_spec.signature_name)


def merge_results(parts: list[PredictResult]) -> PredictResult:
    if len(parts) == 1:
        return parts[0]
    outputs = {k: np.concatenate([p.outputs[k] for p in parts], axis=0) for k in parts[0].outputs}
    versions = tuple(dict.fromkeys(p.version for p in parts))
    return PredictResult(outputs, parts[0].model, parts[0].version, parts[0].signature, versions)


def example_input(examples: Any, context: Mapping[str, Any] | None, into: sp.Input) -> None:
    from shipyard_client._examples import to_example

    exs = to_examples(examples)
    if context is not None:
        into.example_list_with_context.context.CopyFrom(to_example(context))
        into.example_list_with_context.examples.extend(exs)
    else:
        into.example_list.examples.extend(exs)


def example_request(request_type: Any, target: Target, examples: Any, context: Mapping[str, Any] | None) -> Any:
    """A ClassificationRequest or RegressionRequest: the model spec and the rows as tf.Example."""
    req = request_type()
    target.spec(req.model_spec)
    example_input(examples, context, req.input)
    return req


def classify_result(resp: sp.ClassificationResponse, decode_strings: bool = False) -> ClassifyResult:
    """Labels are bytes, as string outputs of predict are (str for both with decode_strings)."""
    rows = resp.result.classifications
    k = max((len(r.classes) for r in rows), default=0)
    labels = np.array(
        [[c.label if decode_strings else c.label.encode() for c in r.classes] for r in rows], dtype=object
    ).reshape(len(rows), k)
    scores = np.array([[c.score for c in r.classes] for r in rows], dtype=np.float32).reshape(len(rows), k)
    return ClassifyResult(labels, scores, resp.model_spec.name, resp.model_spec.version.value)


def regress_result(resp: sp.RegressionResponse) -> RegressResult:
    values = np.array([r.value for r in resp.result.regressions], dtype=np.float32)
    return RegressResult(values, resp.model_spec.name, resp.model_spec.version.value)


def _spec(info: tfp.TensorInfo, name: str) -> TensorSpec:
    dt = dtype_name(info.dtype)
    shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
    return TensorSpec(name, _NP_NAMES.get(dt, dt), shape)


def metadata_result(resp: sp.GetModelMetadataResponse) -> ModelMetadata:
    any_ = resp.metadata["signature_def"]
    if any_.type_url.rsplit("/", 1)[-1] != SIGNATURE_DEF_MAP:  # any type-URL prefix, as Any allows
        raise ShipyardError(f"unexpected metadata type {any_.type_url!r}")
    sigs = sp.SignatureDefMap()
    sigs.ParseFromString(any_.value)  # our own message type: parse the bytes rather than Unpack
    out = {
        name: Signature(
            name,
            s.method_name,
            {k: _spec(v, k) for k, v in sorted(s.inputs.items())},
            {k: _spec(v, k) for k, v in sorted(s.outputs.items())},
        )
        for name, s in sorted(sigs.signature_def.items())
        if not name.startswith("__")
    }
    return ModelMetadata(resp.model_spec.name, resp.model_spec.version.value, out)


def status_result(resp: sp.GetModelStatusResponse) -> list[VersionStatus]:
    return [
        VersionStatus(s.version, STATE_NAMES.get(s.state, str(s.state)), s.status.error_code, s.status.error_message)
        for s in resp.model_version_status
    ]


def reload_request(config: str | sp.ModelServerConfig) -> sp.ReloadConfigRequest:
    """From a ModelServerConfig, or its text format (as in a models.config file)."""
    from google.protobuf import text_format

    req = sp.ReloadConfigRequest()
    if isinstance(config, str):
        text_format.Parse(config, req.config)
    else:
        req.config.CopyFrom(config)
    return req


# -- the clients' common base ----------------------------------------------------------------------
class ClientState(enum.Enum):
    OPEN = 1  # the channel exists from construction on; gRPC connects on the first call
    CLOSED = 2  # close() was called: every call is refused


class BaseClient:
    """Everything Client and AsyncClient share: their arguments, the channel's options and credentials,
    the state, the signature cache, and every request and result. The two subclasses only make the
    channel and do the I/O (blocking or awaited)."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 10.0,
        retry: RetryPolicy | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        compression: grpc.Compression | None = None,
        options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[Any] = (),
        validate: bool = False,
        cast: bool = True,
        decode_strings: bool = False,
        load_balancing: str = "round_robin",
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.metadata = tuple(metadata)
        self.validate = validate
        self.cast = cast
        self.decode_strings = decode_strings
        self.compression = compression
        self.interceptors = tuple(interceptors)
        self._channel_options = channel_options(self.retry, options, load_balancing)
        if credentials is None and (root_certificates or private_key or certificate_chain):
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
        self._credentials = credentials
        self._state = ClientState.OPEN
        self._signatures: dict[tuple[str, int | None, str | None, str], Signature] = {}
        self._signature_versions: dict[tuple[str, int | None, str | None, str], int] = {}
        self._open_channel()

    def _open_channel(self) -> None:
        """Make the channel and the stubs (blocking in Client, grpc.aio in AsyncClient)."""
        raise NotImplementedError

    @property
    def is_closed(self) -> bool:
        return self._state == ClientState.CLOSED

    def _check_open(self) -> None:
        if self._state == ClientState.CLOSED:
            raise RuntimeError(f"this {type(self).__name__} has been closed; make a new one to send requests")

    def _timeout(self, timeout: TimeoutTypes) -> float | None:
        return self.timeout if isinstance(timeout, UseClientDefault) else timeout

    def _retry_delay(self, err: ShipyardError, delays: Any, deadline: float) -> float | None:
        """How long to wait before trying `err`'s call again, or None to raise it: only UNAVAILABLE is
        retried, within the policy's attempts and deadline."""
        import time

        from shipyard_client._errors import UnavailableError

        if not isinstance(err, UnavailableError):
            return None
        delay: float | None = next(delays, None)
        if delay is None or time.monotonic() + delay > deadline:
            return None
        log.warning("%s unavailable (%s); retrying in %.2fs", self.target, err.message, delay)
        return delay

    # -- signatures (validate and cast) ----------------------------------------------------------
    def _wants_signature(self, arrays: Mapping[str, np.ndarray]) -> bool:
        return self.validate or (self.cast and has_numbers(arrays))

    def _cached_signature(self, target: Target) -> Signature | None:
        return self._signatures.get(signature_key(target))

    def _remember_signature(self, target: Target, meta: ModelMetadata) -> Signature:
        sig = pick_signature(meta, target)
        key = signature_key(target)
        self._signatures[key] = sig
        self._signature_versions[key] = meta.version
        return sig

    def _prepared_inputs(
        self, arrays: dict[str, np.ndarray], sig: Signature | None, target: Target
    ) -> dict[str, np.ndarray]:
        """Inputs validated against the signature (validate=True), or cast to its dtypes (cast=True;
        without a signature to cast by they go as they are and the server decides)."""
        if self.validate:
            assert sig is not None
            return validate(arrays, sig, target)
        if sig is not None and self.cast:
            return cast_inputs(arrays, sig, target)
        return arrays

    def _forget_if_other_version(self, target: Target, version: int) -> None:
        """A label or "latest" that moved to another version: its signature is fetched again next time."""
        key = signature_key(target)
        if key in self._signature_versions and self._signature_versions[key] != version:
            self._signatures.pop(key, None)
            self._signature_versions.pop(key, None)

    def _predict_result(self, target: Target, resp: sp.PredictResponse) -> PredictResult:
        result = predict_result(resp, self.decode_strings)
        self._forget_if_other_version(target, result.version)
        return result

    # -- requests ---------------------------------------------------------------------------------
    @staticmethod
    def _metadata_request(target: Target) -> sp.GetModelMetadataRequest:
        req = sp.GetModelMetadataRequest(metadata_field=["signature_def"])
        target.spec(req.model_spec)
        return req

    @staticmethod
    def _status_request(target: Target) -> sp.GetModelStatusRequest:
        req = sp.GetModelStatusRequest()
        target.spec(req.model_spec)
        return req

    @staticmethod
    def _ready(statuses: list[VersionStatus]) -> VersionStatus | None:
        ready = [s for s in statuses if s.state == "AVAILABLE"]
        return max(ready, key=lambda s: s.version) if ready else None

    @staticmethod
    def _check_reload(resp: sp.ReloadConfigResponse) -> None:
        if resp.status.error_code:
            raise error_for(grpc.StatusCode.UNKNOWN, resp.status.error_message)
