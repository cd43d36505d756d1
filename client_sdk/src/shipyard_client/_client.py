"""The synchronous Client: one gRPC channel per client, reused by every call; a context manager.

with Client("127.0.0.1:8500") as c:
    r = c.predict("penguins", {"island": ["Dream"], ...})
    print(r["classes"], r.version)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from shipyard_client import _base as b
from shipyard_client._errors import ShipyardError, UnavailableError
from shipyard_client._proto import serving_apis_pb2 as sp
from shipyard_client._retry import RetryPolicy
from shipyard_client._types import ClassifyResult, ModelMetadata, PredictResult, RegressResult, VersionStatus


class Client:
    """A typed client for TF Serving's gRPC API.

    target: "host:port", or several backends: "ipv4:10.0.0.1:8500,10.0.0.2:8500" or "dns:///name:8500"
        (a headless Service); calls are balanced across them (load_balancing="round_robin"), a backend
        that dies is skipped (its UNAVAILABLE calls are retried on another) and used again when it returns.
    timeout: seconds per call (None: no deadline); each method takes `timeout=` to override.
    retry: retries of UNAVAILABLE (see RetryPolicy); RetryPolicy(max_attempts=1) turns them off.
    credentials: grpc.ChannelCredentials for TLS (or root_certificates/private_key/certificate_chain).
    metadata: headers sent with every call (e.g. auth). compression: grpc.Compression.
    options: extra gRPC channel options. interceptors: grpc client interceptors (tracing, metrics, auth).
    validate: check inputs against the model's signature (fetched once and cached) before each call.
    cast: (default on) cast numeric inputs to the signature's dtypes, so pandas' float64 and int64
        columns go to float32 or int64 inputs as they are; the signature is fetched once per model
        version and cached; a cast that would change a value (2.5 to int64) raises InvalidInputError
        naming the input. False sends the arrays as they are.
    decode_strings: string outputs (predict's string tensors, classify's labels) come back as bytes by
        default, as TF Serving sends them; True gives str for both.
    """

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
        opts = b.channel_options(self.retry, options, load_balancing)
        if credentials is None and (root_certificates or private_key or certificate_chain):
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
        if credentials is not None:
            channel = grpc.secure_channel(target, credentials, options=opts, compression=compression)
        else:
            channel = grpc.insecure_channel(target, options=opts, compression=compression)
        self._raw_channel = channel
        self._channel = grpc.intercept_channel(channel, *interceptors) if interceptors else channel
        self._stubs = b.stubs(self._channel)
        self._signatures: dict[tuple[str, int | None, str | None, str], Any] = {}
        self._signature_versions: dict[tuple[str, int | None, str | None, str], int] = {}

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, path: str, request: Any, target: b.Target, timeout: b.Timeout) -> Any:
        t = self.timeout if isinstance(timeout, b._Default) else timeout
        deadline = time.monotonic() + self.retry.deadline
        delays = self.retry.delays()
        while True:
            try:
                return self._stubs[path](request, timeout=t, metadata=self.metadata or None)
            except grpc.RpcError as e:
                err = b.to_error(e, target)
                if not isinstance(err, UnavailableError):
                    raise err from None
                delay = next(delays, None)
                if delay is None or time.monotonic() + delay > deadline:
                    raise err from None
                b.log.warning("%s unavailable (%s); retrying in %.2fs", self.target, err.message, delay)
                time.sleep(delay)

    def _signature(self, target: b.Target) -> Any:
        key = b.signature_key(target)
        if key not in self._signatures:
            meta = self.metadata_of(target.model, version=target.version, label=target.label)
            self._signatures[key] = b.pick_signature(meta, target)
            self._signature_versions[key] = meta.version
        return self._signatures[key]

    def _forget_if_other_version(self, target: b.Target, version: int) -> None:
        """A label or "latest" that moved to another version: its signature is fetched again next time."""
        key = b.signature_key(target)
        if key in self._signature_versions and self._signature_versions[key] != version:
            self._signatures.pop(key, None)
            self._signature_versions.pop(key, None)

    # -- the API ---------------------------------------------------------------------------------
    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any] | Any,
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str = b.DEFAULT_SIGNATURE,
        output_filter: Sequence[str] | None = None,
        batch_size: int | None = None,
        timeout: b.Timeout = b.DEFAULT,
    ) -> PredictResult:
        """Run a signature on named inputs (a mapping of arrays, or a DataFrame whose columns are inputs).
        With `batch_size`, rows are sent in chunks and the outputs concatenated in order."""
        target = b.Target(model, version, label, signature)
        arrays = b.normalize_inputs(inputs)
        if self.validate:
            arrays = b.validate(arrays, self._signature(target), target)
        elif self.cast and b.has_numbers(arrays):
            try:
                sig = self._signature(target)
            except ShipyardError:
                sig = None  # no metadata to cast by: the inputs go as they are, the server decides
            if sig is not None:
                arrays = b.cast_inputs(arrays, sig, target)
        parts = []
        for part in b.chunks(arrays, batch_size):
            resp = self._call(b.PREDICT, b.predict_request(target, part, output_filter), target, timeout)
            parts.append(b.predict_result(resp, self.decode_strings))
            self._forget_if_other_version(target, parts[-1].version)
        return b.merge_results(parts)

    def classify(
        self,
        model: str,
        examples: Any,
        *,
        context: Mapping[str, Any] | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str = b.CLASSIFY_SIGNATURE,
        timeout: b.Timeout = b.DEFAULT,
    ) -> ClassifyResult:
        """Classify rows (dicts or a DataFrame), sent as tf.Example. The default signature is the one
        `python -m export` writes ("classification")."""
        target = b.Target(model, version, label, signature)
        req = b.example_request(sp.ClassificationRequest, target, examples, context)
        return b.classify_result(self._call(b.CLASSIFY, req, target, timeout), self.decode_strings)

    def regress(
        self,
        model: str,
        examples: Any,
        *,
        context: Mapping[str, Any] | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str = b.REGRESS_SIGNATURE,
        timeout: b.Timeout = b.DEFAULT,
    ) -> RegressResult:
        target = b.Target(model, version, label, signature)
        req = b.example_request(sp.RegressionRequest, target, examples, context)
        return b.regress_result(self._call(b.REGRESS, req, target, timeout))

    def metadata_of(
        self, model: str, *, version: int | None = None, label: str | None = None, timeout: b.Timeout = b.DEFAULT
    ) -> ModelMetadata:
        """The model's signatures: input and output names, dtypes and shapes."""
        target = b.Target(model, version, label)
        req = sp.GetModelMetadataRequest(metadata_field=["signature_def"])
        target.spec(req.model_spec)
        return b.metadata_result(self._call(b.METADATA, req, target, timeout))

    def status(self, model: str, version: int | None = None, *, timeout: b.Timeout = b.DEFAULT) -> list[VersionStatus]:
        target = b.Target(model, version)
        req = sp.GetModelStatusRequest()
        target.spec(req.model_spec)
        return b.status_result(self._call(b.STATUS, req, target, timeout))

    def wait_until_ready(self, model: str, timeout: float = 60.0, *, version: int | None = None) -> VersionStatus:
        """Block until a version of the model (or the given one) is AVAILABLE; TimeoutError otherwise."""
        from shipyard_client._errors import ModelNotFoundError

        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                ready = [s for s in self.status(model, version, timeout=min(5.0, timeout)) if s.state == "AVAILABLE"]
                if ready:
                    return max(ready, key=lambda s: s.version)
                last = "no version AVAILABLE yet"
            except (UnavailableError, ModelNotFoundError) as e:
                last = str(e)
            time.sleep(0.1)
        raise TimeoutError(f"{model} not ready at {self.target} after {timeout:.0f}s ({last})")

    def reload_config(self, config: str | sp.ModelServerConfig, *, timeout: b.Timeout = b.DEFAULT) -> None:
        """For operators: replace the server's model config (text format, as in models.config)."""
        resp = self._call(b.RELOAD, b.reload_request(config), b.Target("(config)"), timeout)
        if resp.status.error_code:
            from shipyard_client._errors import error_for

            raise error_for(grpc.StatusCode.UNKNOWN, resp.status.error_message)

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
