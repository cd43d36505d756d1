"""Shadow calls: send each request to the primary and to a shadow (a candidate), return
the primary's answer, and record both for comparison (Scientist's "always return the control").

The caller never waits for the shadow: the shadow call is handed to a bounded queue that worker threads
poll, by default once the primary has answered (`after_primary=True`: the shadow never competes with
the primary call it copies; `False` hands it over before the primary call, so both run at once); when
the queue is full the shadow call is dropped and counted. Any input the client takes (mappings, numpy, a pandas
DataFrame, rows for classify/regress) is recorded; a record that cannot be built is counted
(`stats()["record_errors"]`), never lost silently, and the sink counts its own losses (see sinks).
Shadow errors and timeouts are recorded, never raised. Each sampled
request is written to a sink (see shipyard_client.sinks) with its id, time, both models and versions,
the inputs, both outputs, both latencies and the error, if any.

    primary = Endpoint(Client("127.0.0.1:8500"), "penguins", label="stable")
    shadow = Endpoint(primary.client, "penguins", label="canary")
    with ShadowClient(primary, shadow, SQLiteSink("shadow.db")) as sc:
        sc.predict({...})          # the stable version's answer; the canary's is recorded
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from shipyard_client.sinks import Record, Sink, jsonable

log = logging.getLogger("shipyard_client.shadow")


@dataclass(frozen=True)
class Endpoint:
    """A client (anything with predict/classify/regress) and the model spec to call on it."""

    client: Any
    model: str
    version: int | None = None
    label: str | None = None


def _outputs(method: str, result: Any) -> Any:
    if method == "predict":
        return jsonable(dict(result))
    if method == "classify":
        return {"labels": jsonable(result.labels), "scores": jsonable(result.scores)}
    return {"values": jsonable(result.values)}


@dataclass
class _Job:
    request_id: str
    method: str
    inputs: Any
    kwargs: dict[str, Any]
    time: float
    primary_done: threading.Event = field(default_factory=threading.Event)
    primary: Any = None
    primary_ms: float | None = None
    primary_error: str | None = None


def _shadow_kwargs(job: _Job, timeout: float | None) -> dict[str, Any]:
    """The caller's keyword arguments for the shadow call, with the shadow's own timeout."""
    return dict(job.kwargs) if timeout is None else dict(job.kwargs, timeout=timeout)


def _record(
    job: _Job, primary: Endpoint, shadow: Endpoint, shadow_result: Any, shadow_ms: float, error: str | None
) -> Record:
    if job.primary_error:
        error = f"primary: {job.primary_error}" + (f"; {error}" if error else "")
    return {
        "request_id": job.request_id,
        "time": job.time,
        "method": job.method,
        "primary_model": primary.model,
        "primary_version": getattr(job.primary, "version", None),
        "shadow_model": shadow.model,
        "shadow_version": getattr(shadow_result, "version", None),
        "inputs": jsonable(job.inputs),
        "primary_outputs": _outputs(job.method, job.primary) if job.primary is not None else None,
        "shadow_outputs": _outputs(job.method, shadow_result) if shadow_result is not None else None,
        "primary_ms": job.primary_ms,
        "shadow_ms": shadow_ms if shadow_result is not None else None,
        "error": error,
    }


class BaseShadowClient:
    """What ShadowClient and AsyncShadowClient share: the endpoints, the sink, sampling, the counters,
    the closed state, and how a primary's answer and a shadow's result become a record."""

    def __init__(
        self,
        primary: Endpoint,
        shadow: Endpoint,
        sink: Sink,
        *,
        sample_rate: float = 1.0,
        shadow_timeout: float | None = 10.0,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in [0, 1], got {sample_rate}")
        self.primary, self.shadow, self.sink = primary, shadow, sink
        self.sample_rate = sample_rate
        self.shadow_timeout = shadow_timeout
        self._random = random.Random(seed)
        self._lock = threading.Lock()  # the sync client's workers count from several threads
        self.sampled = self.dropped = self.shadow_errors = self.recorded = self.record_errors = 0
        self._closed = False

    @property
    def is_closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this {type(self).__name__} has been closed")

    def _count(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def _new_job(self, method: str, inputs: Any, kwargs: dict[str, Any]) -> _Job | None:
        """A job when this request is sampled, else None."""
        if self.sample_rate >= 1.0 or self._random.random() < self.sample_rate:
            return _Job(uuid.uuid4().hex, method, inputs, kwargs, time.time())
        return None

    def _primary_call(self, method: str, inputs: Any, kwargs: dict[str, Any]) -> Any:
        p = self.primary
        return getattr(p.client, method)(p.model, inputs, version=p.version, label=p.label, **kwargs)

    def _shadow_call(self, job: _Job) -> Any:
        s = self.shadow
        kwargs = _shadow_kwargs(job, self.shadow_timeout)
        return getattr(s.client, job.method)(s.model, job.inputs, version=s.version, label=s.label, **kwargs)

    @staticmethod
    def _primary_answered(job: _Job | None, result: Any, start: float) -> None:
        if job is not None:
            job.primary = result
            job.primary_ms = (time.perf_counter() - start) * 1e3

    @staticmethod
    def _primary_failed(job: _Job | None, e: Exception) -> None:
        if job is not None:
            job.primary_error = f"{type(e).__name__}: {e}"

    def _shadow_failed(self, e: Exception) -> str:
        self._count("shadow_errors")
        return f"shadow: {type(e).__name__}: {e}"

    def _write(self, job: _Job, shadow_result: Any, shadow_ms: float, error: str | None) -> None:
        """Hand the record to the sink; a failure is counted in stats(), never raised."""
        try:
            self.sink.write(_record(job, self.primary, self.shadow, shadow_result, shadow_ms, error))
            self._count("recorded")
        except Exception as e:  # noqa: BLE001 - counted in stats(), never raised
            self._count("record_errors")
            log.warning("could not record a shadow call: %s: %s", type(e).__name__, e)

    def _hand_counts_to_sink(self) -> None:
        record_stats = getattr(self.sink, "record_stats", None)
        if record_stats is not None:
            record_stats(self.sampled, self.dropped + self.record_errors, self.shadow_errors)

    def stats(self) -> dict[str, Any]:
        """Requests sampled, shadow calls dropped, shadow errors, records handed to the sink, records
        that could not be built or written, and the sink's own counters (see Sink.stats)."""
        with self._lock:
            out: dict[str, Any] = {
                "sampled": self.sampled,
                "dropped": self.dropped,
                "shadow_errors": self.shadow_errors,
                "recorded": self.recorded,
                "record_errors": self.record_errors,
            }
        sink_stats = getattr(self.sink, "stats", None)
        out["sink"] = sink_stats() if sink_stats is not None else None
        return out


class ShadowClient(BaseShadowClient):
    """Same predict/classify/regress surface as Client (without the model argument: the endpoints
    name the models). sample_rate: the fraction of requests shadowed. queue_size: shadow calls that may
    wait; beyond that they are dropped (counted in `dropped`).

    The caller's thread only appends a job to a deque (no lock handoff, no thread wake-up): the workers
    poll it, every millisecond while there is work and up to every 50 ms when idle, so the primary call
    is not slowed by waking them."""

    POLL_BUSY, POLL_IDLE = 0.001, 0.05

    def __init__(
        self,
        primary: Endpoint,
        shadow: Endpoint,
        sink: Sink,
        *,
        sample_rate: float = 1.0,
        queue_size: int = 100,
        workers: int = 2,
        shadow_timeout: float | None = 10.0,
        seed: int | None = None,
        after_primary: bool = True,
    ) -> None:
        super().__init__(primary, shadow, sink, sample_rate=sample_rate, shadow_timeout=shadow_timeout, seed=seed)
        self.after_primary = after_primary
        self.queue_size = queue_size
        self._pending: collections.deque[_Job] = collections.deque()
        self._busy = 0
        self._stopping = False
        self._workers = [threading.Thread(target=self._work, name=f"shadow-{i}", daemon=True) for i in range(workers)]
        for w in self._workers:
            w.start()

    # -- the caller's side -------------------------------------------------------------------
    def _enqueue(self, job: _Job) -> bool:
        if len(self._pending) >= self.queue_size:
            self._count("dropped")
            return False
        self._pending.append(job)
        self._count("sampled")
        return True

    def _call(self, method: str, inputs: Any, kwargs: dict[str, Any]) -> Any:
        self._check_open()
        job = self._new_job(method, inputs, kwargs)
        if job is not None and not self.after_primary and not self._enqueue(job):  # the shadow may start at once
            job = None
        start = time.perf_counter()
        try:
            result = self._primary_call(method, inputs, kwargs)
        except Exception as e:
            self._primary_failed(job, e)
            raise
        else:
            self._primary_answered(job, result, start)
        finally:
            if job is not None:
                job.primary_done.set()
                if self.after_primary:
                    self._enqueue(job)
        return result

    def predict(self, inputs: Any, **kwargs: Any) -> Any:
        return self._call("predict", inputs, kwargs)

    def classify(self, examples: Any, **kwargs: Any) -> Any:
        return self._call("classify", examples, kwargs)

    def regress(self, examples: Any, **kwargs: Any) -> Any:
        return self._call("regress", examples, kwargs)

    # -- the workers' side ---------------------------------------------------------------------
    def _work(self) -> None:
        idle = self.POLL_BUSY
        while True:
            try:
                job = self._pending.popleft()
            except IndexError:
                if self._stopping:
                    return
                time.sleep(idle)
                idle = min(idle * 2, self.POLL_IDLE)
                continue
            idle = self.POLL_BUSY
            with self._lock:
                self._busy += 1
            try:
                self._shadow(job)
            finally:
                with self._lock:
                    self._busy -= 1

    def _shadow(self, job: _Job) -> None:
        error = None
        shadow_result = None
        start = time.perf_counter()
        try:
            shadow_result = self._shadow_call(job)
        except Exception as e:  # noqa: BLE001 - recorded, never raised: the caller has its answer already
            error = self._shadow_failed(e)
        shadow_ms = (time.perf_counter() - start) * 1e3
        job.primary_done.wait()
        self._write(job, shadow_result, shadow_ms, error)

    def close(self, timeout: float | None = None) -> dict[str, Any]:
        """Finish the queued shadow calls, hand the counters to the sink, flush and close it (waiting at
        most the sink's close timeout); the sink is closed whatever happens. Returns `stats()`."""
        if self._closed:
            return self.stats()
        self._closed = True
        try:
            while self._pending or self._busy:  # the queued shadow calls finish first
                time.sleep(self.POLL_BUSY)
            self._stopping = True
            for w in self._workers:
                w.join()
            self._hand_counts_to_sink()
        finally:
            if timeout is None:
                self.sink.close()
            else:
                self.sink.close(timeout)
        return self.stats()

    def __enter__(self) -> ShadowClient:
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncShadowClient(BaseShadowClient):
    """The asyncio twin: endpoints hold AsyncClients; each sampled request starts its shadow call as a
    task (at most `max_pending` at once: beyond that it is dropped and counted) and awaits only the
    primary. `await aclose()` (or `await close()`) waits for the shadow calls in flight, then flushes
    and closes the sink."""

    def __init__(
        self,
        primary: Endpoint,
        shadow: Endpoint,
        sink: Sink,
        *,
        sample_rate: float = 1.0,
        max_pending: int = 100,
        shadow_timeout: float | None = 10.0,
        seed: int | None = None,
    ) -> None:
        import asyncio

        super().__init__(primary, shadow, sink, sample_rate=sample_rate, shadow_timeout=shadow_timeout, seed=seed)
        self.max_pending = max_pending
        self._pending: set[asyncio.Task[None]] = set()

    async def _call(self, method: str, inputs: Any, kwargs: dict[str, Any]) -> Any:
        import asyncio

        self._check_open()
        done = asyncio.Event()
        job = self._new_job(method, inputs, kwargs)
        if job is not None:
            if len(self._pending) < self.max_pending:
                task = asyncio.create_task(self._shadow(job, done))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
                self._count("sampled")
            else:
                self._count("dropped")
                job = None
        start = time.perf_counter()
        try:
            result = await self._primary_call(method, inputs, kwargs)
        except Exception as e:
            self._primary_failed(job, e)
            raise
        else:
            self._primary_answered(job, result, start)
        finally:
            done.set()
        return result

    async def _shadow(self, job: _Job, primary_done: Any) -> None:
        error = None
        shadow_result = None
        start = time.perf_counter()
        try:
            shadow_result = await self._shadow_call(job)
        except Exception as e:  # noqa: BLE001 - recorded, never raised
            error = self._shadow_failed(e)
        shadow_ms = (time.perf_counter() - start) * 1e3
        await primary_done.wait()
        self._write(job, shadow_result, shadow_ms, error)

    async def predict(self, inputs: Any, **kwargs: Any) -> Any:
        return await self._call("predict", inputs, kwargs)

    async def classify(self, examples: Any, **kwargs: Any) -> Any:
        return await self._call("classify", examples, kwargs)

    async def regress(self, examples: Any, **kwargs: Any) -> Any:
        return await self._call("regress", examples, kwargs)

    async def aclose(self) -> None:
        import asyncio

        if self._closed:
            return
        self._closed = True
        try:
            if self._pending:
                await asyncio.gather(*list(self._pending), return_exceptions=True)
            self._hand_counts_to_sink()
        finally:
            await asyncio.to_thread(self.sink.close)

    close = aclose

    async def __aenter__(self) -> AsyncShadowClient:
        self._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
