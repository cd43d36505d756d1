"""The AspiredVersionsManager: which versions of which models are loaded, and their states.

A Source tells the manager, per model, the versions that should be loaded (the aspired versions),
each as a `Loader` (`serving.loader`). After every change the manager asks its version policy
(`serving.policy`, availability-preserving by default) what to load and unload, and does it: loads
on loader threads, unloads once a version's requests in flight have finished. A failed load is
retried `max_num_load_retries` times, then the version is END with its error, and whatever was
serving keeps serving.

Every transition is published on the event bus as a `ServableState` (START, LOADING, AVAILABLE,
UNLOADING, END), which the ServableStateMonitor keeps for GetModelStatus. Requests hold a version
through `get()`'s context manager.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from serving.errors import failed_precondition, not_found
from serving.loader import Loader
from serving.metrics import note_version
from serving.policy import AspiredVersionPolicy, AvailabilityPreservingPolicy, VersionSnapshot
from serving.servable_state import EventBus, ManagerState, ServableId, ServableState

log = logging.getLogger("serving")


@dataclass
class Version:
    model: str
    number: int
    loader: Loader
    state: ManagerState = ManagerState.START
    servable: Any = None
    aspired: bool = True
    load_requested: bool = False
    in_flight: int = 0
    idle: threading.Condition = field(default_factory=lambda: threading.Condition(threading.Lock()))


class AspiredVersionsManager:
    def __init__(
        self,
        bus: EventBus,
        *,
        policy: AspiredVersionPolicy | None = None,
        max_load_retries: int = 0,
        retry_interval_s: float = 60.0,
        load_threads: int = 2,
        allow_labels_for_unavailable: bool = False,
    ) -> None:
        self._bus = bus
        self._policy = policy or AvailabilityPreservingPolicy()
        self._retries = max_load_retries
        self._retry_interval = retry_interval_s
        self._lock = threading.RLock()
        self._models: dict[str, dict[int, Version]] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._pool = ThreadPoolExecutor(max_workers=load_threads, thread_name_prefix="load")
        self._allow_unavailable_labels = allow_labels_for_unavailable
        self._closed = False
        self._closing = threading.Event()  # wakes loads waiting to retry, so shutdown never waits them out

    def _publish(self, v: Version, state: ManagerState, error: Exception | None = None) -> None:
        """Publish `state` for `v` (not under the manager's lock: subscribers may call back in)."""
        code = getattr(getattr(error, "code", None), "value", (2,))[0] if error is not None else 0
        self._bus.publish(ServableState(ServableId(v.model, v.number), state, str(error or ""), code))

    # -- the Source side -------------------------------------------------------------------
    def set_aspired_versions(self, model: str, aspired: Mapping[int, Loader]) -> None:
        """The versions of `model` that should be loaded now, with their loaders (all others should go)."""
        started = []
        with self._lock:
            if self._closed:
                return
            versions = self._models.setdefault(model, {})
            for number, loader in aspired.items():
                v = versions.get(number)
                if v is None or (v.state in (ManagerState.UNLOADING, ManagerState.END) and not v.aspired):
                    v = Version(model, number, loader)
                    versions[number] = v
                    started.append(v)
                v.aspired = True
            ended = []
            for number, v in versions.items():
                if number not in aspired:
                    v.aspired = False
                    if v.state == ManagerState.START and not v.load_requested:  # never began to load
                        v.state = ManagerState.END
                        ended.append(v)
        for v in started:
            self._publish(v, ManagerState.START)
        for v in ended:
            self._publish(v, ManagerState.END)
        self._reconcile(model)

    def remove_model(self, model: str) -> None:
        self.set_aspired_versions(model, {})
        with self._lock:
            self._labels.pop(model, None)

    def _reconcile(self, model: str) -> None:
        """Ask the policy what to do with `model`'s versions now, and start doing it."""
        loads, unloads = [], []
        with self._lock:
            versions = self._models.get(model, {})
            snapshot = [VersionSnapshot(n, v.state, v.aspired, v.load_requested) for n, v in versions.items()]
            for action in self._policy.next_actions(snapshot):
                v = versions[action.version]
                if action.kind == "load" and not v.load_requested and not self._closed:
                    v.load_requested = True
                    loads.append(v)
                elif action.kind == "unload" and v.state == ManagerState.AVAILABLE:
                    v.state = ManagerState.UNLOADING
                    unloads.append(v)
        for v in unloads:
            self._publish(v, ManagerState.UNLOADING)
            threading.Thread(target=self._unload, args=(v,), name=f"unload-{model}-{v.number}", daemon=True).start()
        for v in loads:
            self._pool.submit(self._load_version, v)

    def _load_version(self, v: Version) -> None:
        with self._lock:
            if not v.aspired or self._closed:
                v.state = ManagerState.END
            else:
                v.state = ManagerState.LOADING
            state = v.state
        self._publish(v, state)
        if state == ManagerState.END:
            self._reconcile(v.model)
            return
        start = time.perf_counter()
        attempt = 0
        while True:
            try:
                servable = v.loader.load()
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
                    with self._lock:
                        v.state = ManagerState.END
                    log.error("failed to load %s version %d: %s", v.model, v.number, e)
                    self._publish(v, ManagerState.END, e)
                    self._reconcile(v.model)
                    return
        seconds = time.perf_counter() - start
        with self._lock:
            closed = self._closed
            if not closed:
                v.servable = servable
            v.state = ManagerState.END if closed else ManagerState.AVAILABLE
        if closed:  # the server shut down while this version loaded
            v.loader.unload()
            self._publish(v, ManagerState.END)
            return
        log.info("%s version %d is AVAILABLE (loaded in %.2fs)", v.model, v.number, seconds)
        self._publish(v, ManagerState.AVAILABLE)
        self._reconcile(v.model)

    def _unload(self, v: Version) -> None:
        with v.idle:
            while v.in_flight:
                v.idle.wait()
        log.info("unloading %s version %d", v.model, v.number)
        try:
            v.loader.unload()
        finally:
            with self._lock:
                v.servable = None
                v.state = ManagerState.END
            self._publish(v, ManagerState.END)
        self._reconcile(v.model)

    # -- labels ----------------------------------------------------------------------------
    def set_labels(self, model: str, labels: dict[str, int]) -> None:
        """Point `model`'s labels at versions. Raises ServingError (FAILED_PRECONDITION) when a label
        would point at a version that is not AVAILABLE (unless allowed for new labels)."""
        with self._lock:
            versions = self._models.get(model, {})
            current = self._labels.get(model, {})
            for label, number in labels.items():
                v = versions.get(number)
                if v is not None and v.state == ManagerState.AVAILABLE:
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
                if v is None or v.state != ManagerState.AVAILABLE:
                    raise not_found(f"Servable not found for request: Specific({model}, {version})")
                return v
            available = [v for v in versions.values() if v.state == ManagerState.AVAILABLE]
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

    def close(self) -> None:
        """Unload everything that is loaded, after its requests in flight. A load in progress cannot
        be interrupted and is not waited for: the version it makes is unloaded as soon as it is done
        (in `_load_version`), so shutdown never waits on a slow or stuck load."""
        with self._lock:
            self._closed = True
            self._closing.set()
            victims = []
            for versions in self._models.values():
                for v in versions.values():
                    v.aspired = False
                    if v.state == ManagerState.AVAILABLE:
                        v.state = ManagerState.UNLOADING
                        victims.append(v)
        for v in victims:
            self._publish(v, ManagerState.UNLOADING)
            self._unload(v)
        self._pool.shutdown(wait=False, cancel_futures=True)
