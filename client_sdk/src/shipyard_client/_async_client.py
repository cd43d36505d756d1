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
from shipyard_client._types import ClassifyResult, ModelMetadata, PredictResult, RegressResult, Signature, VersionStatus


class AsyncClient(b.BaseClient):
    """See Client for the arguments (the same, TLS included); use
    `async with AsyncClient(...) as c: await c.predict(...)`."""

    def _open_channel(self) -> None:
        opts, interceptors = self._channel_options, list(self.interceptors) or None
        if self._credentials is not None:
            self._channel = grpc.aio.secure_channel(
                self.target, self._credentials, options=opts, compression=self.compression, interceptors=interceptors
            )
        else:
            self._channel = grpc.aio.insecure_channel(
                self.target, options=opts, compression=self.compression, interceptors=interceptors
            )
        self._stubs = b.stubs(self._channel)

    async def _call(self, path: str, request: Any, target: b.Target, timeout: b.TimeoutTypes) -> Any:
        self._check_open()
        t = self._timeout(timeout)
        deadline = time.monotonic() + self.retry.deadline
        delays = self.retry.delays()
        while True:
            try:
                return await self._stubs[path](request, timeout=t, metadata=self.metadata or None)
            except grpc.RpcError as e:
                err = b.to_error(e, target)
                delay = self._retry_delay(err, delays, deadline)
                if delay is None:
                    raise err from None
                await asyncio.sleep(delay)

    async def _signature(self, target: b.Target) -> Signature:
        return self._cached_signature(target) or self._remember_signature(
            target, await self.metadata_of(target.model, version=target.version, label=target.label)
        )

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
        timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT,
    ) -> PredictResult:
        target = b.Target(model, version, label, signature)
        arrays = b.normalize_inputs(inputs)
        sig = None
        if self._wants_signature(arrays):
            try:
                sig = await self._signature(target)
            except ShipyardError:
                if self.validate:
                    raise
        arrays = self._prepared_inputs(arrays, sig, target)
        parts = []
        for part in b.chunks(arrays, batch_size):
            resp = await self._call(b.PREDICT, b.predict_request(target, part, output_filter), target, timeout)
            parts.append(self._predict_result(target, resp))
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
        timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT,
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
        timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT,
    ) -> RegressResult:
        target = b.Target(model, version, label, signature)
        req = b.example_request(sp.RegressionRequest, target, examples, context)
        return b.regress_result(await self._call(b.REGRESS, req, target, timeout))

    async def metadata_of(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT,
    ) -> ModelMetadata:
        target = b.Target(model, version, label)
        return b.metadata_result(await self._call(b.METADATA, self._metadata_request(target), target, timeout))

    async def status(
        self, model: str, version: int | None = None, *, timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT
    ) -> list[VersionStatus]:
        target = b.Target(model, version)
        return b.status_result(await self._call(b.STATUS, self._status_request(target), target, timeout))

    async def wait_until_ready(self, model: str, timeout: float = 60.0, *, version: int | None = None) -> VersionStatus:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                ready = self._ready(await self.status(model, version, timeout=min(5.0, timeout)))
                if ready is not None:
                    return ready
                last = "no version AVAILABLE yet"
            except (UnavailableError, ModelNotFoundError) as e:
                last = str(e)
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{model} not ready at {self.target} after {timeout:.0f}s ({last})")

    async def reload_config(
        self, config: str | sp.ModelServerConfig, *, timeout: b.TimeoutTypes = b.USE_CLIENT_DEFAULT
    ) -> None:
        self._check_reload(await self._call(b.RELOAD, b.reload_request(config), b.Target("(config)"), timeout))

    async def close(self) -> None:
        """Close the channel; calls after this raise RuntimeError. Closing twice is harmless."""
        self._state = b.ClientState.CLOSED
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        self._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
