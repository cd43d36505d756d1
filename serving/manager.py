"""The AspiredVersionsManager: which versions of which models are loaded, and their states.

A Source tells the manager, per model, the versions that should be loaded (the aspired versions).
The manager loads new ones on loader threads and unloads the ones no longer aspired, preserving
availability: a version leaves only once an aspired version of the same model is AVAILABLE (or
once nothing at all is aspired for the model), so a rollover never leaves a gap. A failed load is
retried `max_num_load_retries` times, then reported END with its error, and whatever was serving
keeps serving.

Requests hold a version through `get()`'s context manager; an unload waits until the requests in
flight on that version have finished, then closes its session. States are TF Serving's:
START 10, LOADING 20, AVAILABLE 30, UNLOADING 40, END 50 (unloaded versions keep showing END).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.errors import failed_precondition, not_found
from serving.metrics import note_version

log = logging.getLogger("serving")


class State(enum.IntEnum):
    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass
class Version:
    model: str
    number: int
    path: Path
    state: State = State.START
    error: str = ""
    error_code: int = 0  # tensorflow.error.Code
    servable: Any = None
    in_flight: int = 0
    aspired: bool = True
    idle: threading.Condition = field(default_factory=lambda: threading.Condition(threading.Lock()))


class AspiredVersionsManager:
    def __init__(
        self,
        load: Callable[[str, int, Path], Any],
        *,
        max_load_retries: int = 0,
        retry_interval_s: float = 60.0,
        load_threads: int = 2,
        allow_labels_for_unavailable: bool = False,
        on_event: Callable[[str, str, int, float], None] | None = None,
    ) -> None:
        self._load = load
        self._retries = max_load_retries
        self._retry_interval = retry_interval_s
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._models: dict[str, dict[int, Version]] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._pool = ThreadPoolExecutor(max_workers=load_threads, thread_name_prefix="load")
        self._allow_unavailable_labels = allow_labels_for_unavailable
        self._on_event = on_event or (lambda *a: None)
        self._closed = False
        self._closing = threading.Event()  # wakes loads waiting to retry, so shutdown never waits them out

    # -- the Source side -------------------------------------------------------------------
    def set_aspired_versions(self, model: str, aspired: dict[int, Path]) -> None:
        """The versions of `model` that should be loaded now (all others should go)."""
        to_load = []
        with self._lock:
            if self._closed:
                return
            versions = self._models.setdefault(model, {})
            for number, path in aspired.items():
                v = versions.get(number)
                if v is None or (v.state in (State.UNLOADING, State.END) and not v.aspired):
                    v = Version(model, number, Path(path))
                    versions[number] = v
                    to_load.append(v)
                v.aspired = True
            for number, v in versions.items():
                if number not in aspired:
                    v.aspired = False
            self._changed.notify_all()
        for v in to_load:
            self._pool.submit(self._load_version, v)
        self._reconcile(model)

    def _load_version(self, v: Version) -> None:
        with self._lock:
            if not v.aspired or self._closed:
                v.state = State.END
                return
            v.state = State.LOADING
            self._changed.notify_all()
        log.info("loading %s version %d from %s", v.model, v.number, v.path)
        start = time.perf_counter()
        attempt = 0
        while True:
            try:
                servable = self._load(v.model, v.number, v.path)
                break
            except Exception as e:  # noqa: BLE001 - any load failure is reported as the version's status
                attempt += 1
                give_up = attempt > self._retries or not v.aspired or self._closed
                if not give_up:
                    log.warning(
                        "load of %s version %d failed (attempt %d of %d), retrying: %s",
                        v.model,
                        v.number,
                        attempt,
                        self._retries + 1,
                        e,
                    )
                    give_up = self._closing.wait(self._retry_interval)  # shutdown ends the wait at once
                if give_up:
                    seconds = time.perf_counter() - start
                    with self._lock:
                        v.state, v.error = State.END, str(e)
                        v.error_code = getattr(getattr(e, "code", None), "value", (2,))[0]
                        self._changed.notify_all()
                    log.error("failed to load %s version %d: %s", v.model, v.number, e)
                    self._on_event("load", "error", v.number, seconds)
                    self._reconcile(v.model)
                    return
        seconds = time.perf_counter() - start
        with self._lock:
            closed = self._closed
            if not closed:
                v.servable = servable
                v.state = State.AVAILABLE
            else:
                v.state = State.END
            self._changed.notify_all()
        if closed:  # the server shut down while this version loaded
            servable.close()
            return
        log.info("%s version %d is AVAILABLE (loaded in %.2fs)", v.model, v.number, seconds)
        self._on_event("load", "ok", v.number, seconds)
        self._reconcile(v.model)

    def _reconcile(self, model: str) -> None:
        """Unload versions that are no longer aspired, where that keeps the model available: once an
        aspired version is AVAILABLE, or when nothing is aspired at all. While aspired versions are
        still loading, or if they all failed, the old version keeps serving."""
        to_unload = []
        with self._lock:
            versions = self._models.get(model, {})
            aspired = [v for v in versions.values() if v.aspired]
            ready = any(v.state == State.AVAILABLE for v in aspired)
            for v in versions.values():
                if not v.aspired and v.state == State.AVAILABLE and (ready or not aspired):
                    v.state = State.UNLOADING
                    to_unload.append(v)
            self._changed.notify_all()
        for v in to_unload:
            threading.Thread(target=self._unload, args=(v,), name=f"unload-{model}-{v.number}", daemon=True).start()

    def _unload(self, v: Version) -> None:
        with v.idle:
            while v.in_flight:
                v.idle.wait()
        log.info("unloading %s version %d", v.model, v.number)
        try:
            if v.servable is not None:
                v.servable.close()
        finally:
            with self._lock:
                v.servable = None
                v.state = State.END
                self._changed.notify_all()
        self._on_event("unload", "ok", v.number, 0.0)

    def remove_model(self, model: str) -> None:
        self.set_aspired_versions(model, {})
        with self._lock:
            self._labels.pop(model, None)

    # -- labels ----------------------------------------------------------------------------
    def set_labels(self, model: str, labels: dict[str, int]) -> None:
        """Point `model`'s labels at versions. Raises ServingError (FAILED_PRECONDITION) when a label
        would point at a version that is not AVAILABLE (unless allowed for new labels)."""
        with self._lock:
            versions = self._models.get(model, {})
            current = self._labels.get(model, {})
            for label, number in labels.items():
                v = versions.get(number)
                if v is not None and v.state == State.AVAILABLE:
                    continue
                if self._allow_unavailable_labels and label not in current:
                    continue
                raise failed_precondition(
                    f"Request to assign label to version {number} of model {model}, which is not currently "
                    "available for inference"
                )
            self._labels[model] = dict(labels)

    # -- the request side ------------------------------------------------------------------
    def resolve(self, model: str, version: int | None = None, label: str | None = None) -> Version:
        with self._lock:
            versions = self._models.get(model)
            if not versions:
                raise not_found(f"Servable not found for request: Latest({model})")
            if label:
                number = self._labels.get(model, {}).get(label)
                if number is None:
                    raise not_found(f"Unrecognized servable version label: {label}")
                version = number
            if version is not None:
                v = versions.get(version)
                if v is None or v.state != State.AVAILABLE:
                    raise not_found(f"Servable not found for request: Specific({model}, {version})")
                return v
            available = [v for v in versions.values() if v.state == State.AVAILABLE]
            if not available:
                raise not_found(f"Servable not found for request: Latest({model})")
            return max(available, key=lambda v: v.number)

    @contextmanager
    def get(self, model: str, version: int | None = None, label: str | None = None) -> Iterator[Version]:
        """Hold a version for one request: it will not be unloaded until the request is done."""
        with self._lock:
            v = self.resolve(model, version, label)
            with v.idle:
                v.in_flight += 1
        note_version(v.number)
        try:
            yield v
        finally:
            with v.idle:
                v.in_flight -= 1
                if v.in_flight == 0:
                    v.idle.notify_all()

    def status(self, model: str, version: int | None = None) -> list[Version]:
        with self._lock:
            versions = self._models.get(model)
            if not versions:
                raise not_found(f"Could not find any versions of model {model}")
            if version is not None:
                if version not in versions:
                    raise not_found(f"Could not find version {version} of model {model}")
                return [versions[version]]
            return sorted(versions.values(), key=lambda v: -v.number)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def settled(self, model: str) -> bool:
        """No version of `model` is starting, loading or unloading."""
        with self._lock:
            return all(v.state in (State.AVAILABLE, State.END) for v in self._models.get(model, {}).values())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._closing.set()
            models = list(self._models)
        for m in models:
            with self._lock:
                for v in self._models[m].values():
                    v.aspired = False
            self._reconcile_all_unload(m)
        # A load in progress cannot be interrupted: it is not waited for (the version it makes is
        # closed at once, below in _load_version), so shutdown never waits on a slow or stuck load.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _reconcile_all_unload(self, model: str) -> None:
        with self._lock:
            victims = [v for v in self._models.get(model, {}).values() if v.state == State.AVAILABLE]
            for v in victims:
                v.state = State.UNLOADING
        for v in victims:
            self._unload(v)
