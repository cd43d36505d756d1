"""Servable states, the event bus that carries them, and the ServableStateMonitor, as TF Serving
names them (`servable_state.h`, `event_bus.h`, `servable_state_monitor.h`).

The manager publishes a `ServableState` on the bus at every transition of a version: START (aspired,
not yet loading), LOADING, AVAILABLE, UNLOADING, END (unloaded, or a load that failed: then with its
error). The monitor keeps the latest state of every version it has seen, END included, and is what
GetModelStatus answers from and what startup waits on.

>>> bus = EventBus()
>>> monitor = ServableStateMonitor(bus)
>>> bus.publish(ServableState(ServableId("m", 1), ManagerState.AVAILABLE))
>>> monitor.version_states("m")[1].manager_state.name
'AVAILABLE'
>>> monitor.settled(["m"])
True
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


class ManagerState(enum.IntEnum):
    """A version's state; the numbers are ModelVersionStatus.State's on the wire."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True, order=True)
class ServableId:
    name: str
    version: int


@dataclass(frozen=True)
class ServableState:
    id: ServableId
    manager_state: ManagerState
    error: str = ""  # the load error of a version that ended without being served
    error_code: int = 0  # its tensorflow.error.Code (0 with no error)


class EventBus:
    """Publishes each event to every subscriber, in the publisher's thread, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[ServableState], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[ServableState], None]) -> None:
        with self._lock:
            self._subscribers.append(callback)

    def publish(self, event: ServableState) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(event)


class ServableStateMonitor:
    """The latest state of every version published on `bus`, and waits on them."""

    def __init__(self, bus: EventBus) -> None:
        self._states: dict[str, dict[int, ServableState]] = {}
        self._changed = threading.Condition(threading.Lock())
        bus.subscribe(self._observe)

    def _observe(self, event: ServableState) -> None:
        with self._changed:
            self._states.setdefault(event.id.name, {})[event.id.version] = event
            self._changed.notify_all()

    def version_states(self, name: str) -> dict[int, ServableState]:
        """Every version of `name` seen so far, with its latest state (empty for an unknown model)."""
        with self._changed:
            return dict(self._states.get(name, {}))

    def state(self, name: str, version: int) -> ManagerState | None:
        with self._changed:
            event = self._states.get(name, {}).get(version)
            return None if event is None else event.manager_state

    def settled(self, names: Iterable[str]) -> bool:
        """No version of these models is starting, loading or unloading."""
        with self._changed:
            return all(
                e.manager_state in (ManagerState.AVAILABLE, ManagerState.END)
                for n in names
                for e in self._states.get(n, {}).values()
            )

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` holds, re-checked at every state change (and at least every
        0.2 s, for predicates that also look at something else); False once `timeout` has passed."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(min(remaining, 0.2))
        return True
