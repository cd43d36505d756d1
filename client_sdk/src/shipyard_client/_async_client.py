"""The asyncio twin of Client (grpc.aio): the same methods, awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import grpc.aio

from shipyard_client import _base as b
from shipyard_client._errors import ModelNotFoundError, ShipyardError, UnavailableError
from shipyard_client._proto import serving_apis_pb2 as sp
from shipyard_client._retry import RetryPolicy
from shipyard_client._types import ClassifyResult, ModelMetadata, PredictResult, RegressResult, VersionStatus


class AsyncClient:
    """See Client for the arguments; use `async with AsyncClient(...) as c: await c.predict(...)`."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 10.0,
        retry: RetryPolicy | None = None,
        credentials: grpc.ChannelCredentials | None = None,
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
        if credentials is not None:
            self._channel = grpc.aio.secure_channel(
                target, credentials, options=opts, compression=compression, interceptors=list(interceptors) or None
            )
        else:
            self._channel = grpc.aio.insecure_channel(
                target, options=opts, compression=compression, interceptors=list(interceptors) or None
            )
        self._stubs = b.stubs(self._channel)
        self._signatures: dict[tuple[str, int | None, str | None, str], Any] = {}
        self._signature_versions: dict[tuple[str, int | None, str | None, str], int] = {}

    async def _call(self, path: str, request: Any, target: b.Target, timeout: b.Timeout) -> Any:
        t = self.timeout if isinstance(timeout, b._Default) else timeout
        deadline = time.monotonic() + self.retry.deadline
        delays = self.retry.delays()
        while True:
            try:
                return await self._stubs[path](request, timeout=t, metadata=self.metadata or None)
            except grpc.RpcError as e:
                err = b.to_error(e, target)
                if not isinstance(err, UnavailableError):
                    raise err from None
                delay = next(delays, None)
                if delay is None or time.monotonic() + delay > deadline:
                    raise err from None
                b.log.warning("%s unavailable (%s); retrying in %.2fs", self.target, err.message, delay)
                await asyncio.sleep(delay)

    async def _signature(self, target: b.Target) -> Any:
        key = b.signature_key(target)
        if key not in self._signatures:
            meta = await self.metadata_of(target.model, version=target.version, label=target.label)
            self._signatures[key] = b.pick_signature(meta, target)
            self._signature_versions[key] = meta.version
        return self._signatures[key]

    def _forget_if_other_version(self, target: b.Target, version: int) -> None:
        """A label or "latest" that moved to another version: its signature is fetched again next time."""
        key = b.signature_key(target)
        if key in self._signature_versions and self._signature_versions[key] != version:
            self._signatures.pop(key, None)
            self._signature_versions.pop(key, None)

    async def predict(
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
        target = b.Target(model, version, label, signature)
        arrays = b.normalize_inputs(inputs)
        if self.validate:
            arrays = b.validate(arrays, await self._signature(target), target)
        elif self.cast and b.has_numbers(arrays):
            try:
                sig = await self._signature(target)
            except ShipyardError:
                sig = None  # no metadata to cast by: the inputs go as they are, the server decides
            if sig is not None:
                arrays = b.cast_inputs(arrays, sig, target)
        parts = []
        for part in b.chunks(arrays, batch_size):
            resp = await self._call(b.PREDICT, b.predict_request(target, part, output_filter), target, timeout)
            parts.append(b.predict_result(resp, self.decode_strings))
            self._forget_if_other_version(target, parts[-1].version)
        return b.merge_results(parts)

    async def classify(
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
        target = b.Target(model, version, label, signature)
        req = b.example_request(sp.ClassificationRequest, target, examples, context)
        return b.classify_result(await self._call(b.CLASSIFY, req, target, timeout), self.decode_strings)

    async def regress(
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
        return b.regress_result(await self._call(b.REGRESS, req, target, timeout))

    async def metadata_of(
        self, model: str, *, version: int | None = None, label: str | None = None, timeout: b.Timeout = b.DEFAULT
    ) -> ModelMetadata:
        target = b.Target(model, version, label)
        req = sp.GetModelMetadataRequest(metadata_field=["signature_def"])
        target.spec(req.model_spec)
        return b.metadata_result(await self._call(b.METADATA, req, target, timeout))

    async def status(
        self, model: str, version: int | None = None, *, timeout: b.Timeout = b.DEFAULT
    ) -> list[VersionStatus]:
        target = b.Target(model, version)
        req = sp.GetModelStatusRequest()
        target.spec(req.model_spec)
        return b.status_result(await self._call(b.STATUS, req, target, timeout))

    async def wait_until_ready(self, model: str, timeout: float = 60.0, *, version: int | None = None) -> VersionStatus:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                ready = [
                    s for s in await self.status(model, version, timeout=min(5.0, timeout)) if s.state == "AVAILABLE"
                ]
                if ready:
                    return max(ready, key=lambda s: s.version)
                last = "no version AVAILABLE yet"
            except (UnavailableError, ModelNotFoundError) as e:
                last = str(e)
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{model} not ready at {self.target} after {timeout:.0f}s ({last})")

    async def reload_config(self, config: str | sp.ModelServerConfig, *, timeout: b.Timeout = b.DEFAULT) -> None:
        resp = await self._call(b.RELOAD, b.reload_request(config), b.Target("(config)"), timeout)
        if resp.status.error_code:
            from shipyard_client._errors import error_for

            raise error_for(grpc.StatusCode.UNKNOWN, resp.status.error_message)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
