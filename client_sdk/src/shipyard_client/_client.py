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
from shipyard_client._errors import ModelNotFoundError, ShipyardError, UnavailableError
from shipyard_client._proto import serving_apis_pb2 as sp
from shipyard_client._types import ClassifyResult, ModelMetadata, PredictResult, RegressResult, Signature, VersionStatus


class Client(b.BaseClient):
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

    A method's `timeout=` left at USE_CLIENT_DEFAULT takes the client's. After close() every call
    raises RuntimeError.
    """

    def _open_channel(self) -> None:
        opts, compression = self._channel_options, self.compression
        if self._credentials is not None:
            channel = grpc.secure_channel(self.target, self._credentials, options=opts, compression=compression)
        else:
            channel = grpc.insecure_channel(self.target, options=opts, compression=compression)
        self._raw_channel = channel
        self._channel = grpc.intercept_channel(channel, *self.interceptors) if self.interceptors else channel
        self._stubs = b.stubs(self._channel)

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, path: str, request: Any, target: b.Target, timeout: b.TimeoutTypes) -> Any:
        self._check_open()
        t = self._timeout(timeout)
        deadline = time.monotonic() + self.retry.deadline
        delays = self.retry.delays()
        while True:
            try:
                return self._stubs[path](request, timeout=t, metadata=self.metadata or None)
            except grpc.RpcError as e:
                err = b.to_error(e, target)
                delay = self._retry_delay(err, delays, deadline)
                if delay is None:
                    raise err from None
                time.sleep(delay)

    def _signature(self, target: b.Target) -> Signature:
        return self._cached_signature(target) or self._remember_signature(
            target, self.metadata_of(target.model, version=target.version, label=target.label)
        )

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
        timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT,
    ) -> PredictResult:
        """Run a signature on named inputs (a mapping of arrays, or a DataFrame whose columns are inputs).
        With `batch_size`, rows are sent in chunks and the outputs concatenated in order."""
        target = b.Target(model, version, label, signature)
        arrays = b.normalize_inputs(inputs)
        sig = None
        if self._wants_signature(arrays):
            try:
                sig = self._signature(target)
            except ShipyardError:
                if self.validate:
                    raise
        arrays = self._prepared_inputs(arrays, sig, target)
        parts = [
            self._predict_result(
                target, self._call(b.PREDICT, b.predict_request(target, part, output_filter), target, timeout)
            )
            for part in b.chunks(arrays, batch_size)
        ]
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
        timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT,
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
        timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT,
    ) -> RegressResult:
        target = b.Target(model, version, label, signature)
        req = b.example_request(sp.RegressionRequest, target, examples, context)
        return b.regress_result(self._call(b.REGRESS, req, target, timeout))

    def metadata_of(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT,
    ) -> ModelMetadata:
        """The model's signatures: input and output names, dtypes and shapes."""
        target = b.Target(model, version, label)
        return b.metadata_result(self._call(b.METADATA, self._metadata_request(target), target, timeout))

    def status(
        self, model: str, version: int | None = None, *, timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT
    ) -> list[VersionStatus]:
        target = b.Target(model, version)
        return b.status_result(self._call(b.STATUS, self._status_request(target), target, timeout))

    def wait_until_ready(self, model: str, timeout: float = 60.0, *, version: int | None = None) -> VersionStatus:
        """Block until a version of the model (or the given one) is AVAILABLE; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                ready = self._ready(self.status(model, version, timeout=min(5.0, timeout)))
                if ready is not None:
                    return ready
                last = "no version AVAILABLE yet"
            except (UnavailableError, ModelNotFoundError) as e:
                last = str(e)
            time.sleep(0.1)
        raise TimeoutError(f"{model} not ready at {self.target} after {timeout:.0f}s ({last})")

    def reload_config(
        self, config: str | sp.ModelServerConfig, *, timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT
    ) -> None:
        """For operators: replace the server's model config (text format, as in models.config)."""
        self._check_reload(self._call(b.RELOAD, b.reload_request(config), b.Target("(config)"), timeout))

    def close(self) -> None:
        """Close the channel; calls after this raise RuntimeError. Closing twice is harmless."""
        self._state = b.ClientState.CLOSED
        self._raw_channel.close()

    def __enter__(self) -> Client:
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
