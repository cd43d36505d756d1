"""The AspiredVersionsManager's rules, with a loader the test controls (loads block until released),
so every ordering is forced by events rather than by timing."""

import threading
from pathlib import Path

import pytest

from serving.errors import ServingError
from serving.manager import AspiredVersionsManager
from serving.policy import ResourcePreservingPolicy
from serving.servable_state import EventBus, ManagerState, ServableId, ServableStateMonitor

State = ManagerState


class FakeServable:
    def __init__(self, version):
        self.version = version
        self.closed = threading.Event()

    def close(self):
        self.closed.set()


class Loads:
    """Each load waits for the test to release (or fail) that version."""

    def __init__(self):
        self.gates: dict[int, threading.Event] = {}
        self.fail: set[int] = set()
        self.started: dict[int, threading.Event] = {}

    def gate(self, v):
        self.gates.setdefault(v, threading.Event())
        self.started.setdefault(v, threading.Event())
        return self.gates[v]

    def __call__(self, model, version, path):
        self.gate(version)
        self.started[version].set()
        self.gates[version].wait(30)
        if version in self.fail:
            raise RuntimeError(f"corrupt SavedModel in {path}")
        return FakeServable(version)


class FakeLoader:
    """A Loader (serving.loader) whose load is the test's `load(model, version, path)`."""

    def __init__(self, load, model, version, path):
        self.id = ServableId(model, version)
        self._load, self._path, self._servable = load, path, None

    def load(self):
        self._servable = self._load(self.id.name, self.id.version, self._path)
        return self._servable

    def unload(self):
        self._servable.close()


class Managed:
    """The manager with its bus and monitor, fed paths as the core feeds it (one loader per path)."""

    def __init__(self, load, **kwargs):
        self.bus = EventBus()
        self.monitor = ServableStateMonitor(self.bus)
        self.manager = AspiredVersionsManager(self.bus, **kwargs)
        self._load = load

    def set_aspired_versions(self, model, paths):
        loaders = {n: FakeLoader(self._load, model, n, p) for n, p in paths.items()}
        self.manager.set_aspired_versions(model, loaders)

    def __getattr__(self, name):
        return getattr(self.manager, name)


@pytest.fixture
def loader():
    return Loads()


@pytest.fixture
def manager(loader):
    m = Managed(loader, max_load_retries=0)
    yield m
    for g in list(loader.gates.values()):
        g.set()
    m.close()


def state(m, v):
    return m.monitor.state("m", v)


def wait_state(m, v, s):
    assert m.monitor.wait_until(lambda: state(m, v) == s, 10), f"version {v} is {state(m, v)}, not {s}"


def test_new_version_is_available_before_the_old_one_unloads(manager, loader):
    loader.gate(1).set()
    manager.set_aspired_versions("m", {1: Path("/m/1")})
    wait_state(manager, 1, State.AVAILABLE)
    loader.gate(2)  # created, not released
    manager.set_aspired_versions("m", {2: Path("/m/2")})  # latest policy: only 2 is aspired now
    assert loader.started[2].wait(10)
    assert state(manager, 2) == State.LOADING
    assert state(manager, 1) == State.AVAILABLE  # still serving while 2 loads
    with manager.get("m") as v:
        assert v.number == 1
    loader.gate(2).set()
    wait_state(manager, 2, State.AVAILABLE)
    wait_state(manager, 1, State.END)
    with manager.get("m") as v:
        assert v.number == 2


def test_a_failed_load_is_end_with_its_error_and_the_old_version_keeps_serving(manager, loader):
    loader.gate(1).set()
    manager.set_aspired_versions("m", {1: Path("/m/1")})
    wait_state(manager, 1, State.AVAILABLE)
    loader.fail.add(2)
    loader.gate(2).set()
    manager.set_aspired_versions("m", {2: Path("/m/2")})
    wait_state(manager, 2, State.END)
    v2 = manager.monitor.version_states("m")[2]
    assert "corrupt SavedModel" in v2.error and v2.error_code == 2  # UNKNOWN: a plain exception
    assert state(manager, 1) == State.AVAILABLE
    with manager.get("m") as v:
        assert v.number == 1
    manager.set_aspired_versions("m", {2: Path("/m/2")})  # polled again: not retried while it stays
    assert state(manager, 2) == State.END


def test_unload_waits_for_requests_in_flight(manager, loader):
    loader.gate(1).set()
    loader.gate(2).set()
    manager.set_aspired_versions("m", {1: Path("/m/1")})
    wait_state(manager, 1, State.AVAILABLE)
    with manager.get("m") as held:
        manager.set_aspired_versions("m", {2: Path("/m/2")})
        wait_state(manager, 2, State.AVAILABLE)
        wait_state(manager, 1, State.UNLOADING)
        assert not held.servable.closed.is_set()  # the request in flight still has its session
        servable = held.servable
    assert servable.closed.wait(10)
    wait_state(manager, 1, State.END)


def test_removed_model_is_unloaded(manager, loader):
    loader.gate(1).set()
    manager.set_aspired_versions("m", {1: Path("/m/1")})
    wait_state(manager, 1, State.AVAILABLE)
    manager.remove_model("m")
    wait_state(manager, 1, State.END)
    with pytest.raises(ServingError) as e:
        manager.resolve("m")
    assert e.value.code.name == "NOT_FOUND"


def test_labels_point_only_at_available_versions(loader):
    m = Managed(loader, max_load_retries=0)
    try:
        loader.gate(1).set()
        m.set_aspired_versions("m", {1: Path("/m/1"), 2: Path("/m/2")})
        wait_state(m, 1, State.AVAILABLE)
        m.set_labels("m", {"stable": 1})
        with pytest.raises(ServingError) as e:
            m.set_labels("m", {"stable": 1, "canary": 2})  # 2 is still loading
        assert e.value.code.name == "FAILED_PRECONDITION" and "not currently available" in e.value.message
        assert m.resolve("m", label="stable").number == 1
        with pytest.raises(ServingError):
            m.resolve("m", label="canary")
        loader.gate(2).set()
        wait_state(m, 2, State.AVAILABLE)
        m.set_labels("m", {"stable": 1, "canary": 2})
        assert m.resolve("m", label="canary").number == 2
    finally:
        for g in loader.gates.values():
            g.set()
        m.close()


def test_labels_for_unavailable_versions_when_allowed_but_only_new_ones(loader):
    m = Managed(loader, max_load_retries=0, allow_labels_for_unavailable=True)
    try:
        loader.gate(1).set()
        m.set_aspired_versions("m", {1: Path("/m/1"), 2: Path("/m/2")})
        wait_state(m, 1, State.AVAILABLE)
        m.set_labels("m", {"stable": 1, "canary": 2})  # canary is new: allowed though 2 is loading
        with pytest.raises(ServingError):
            m.set_labels("m", {"stable": 2, "canary": 2})  # stable is in use: must be available
    finally:
        for g in loader.gates.values():
            g.set()
        m.close()


def test_failed_load_is_retried_when_asked(loader):
    calls = []

    def flaky(model, version, path):
        calls.append(version)
        if len(calls) < 3:
            raise RuntimeError("transient")
        return FakeServable(version)

    m = Managed(flaky, max_load_retries=2, retry_interval_s=0.0)
    try:
        m.set_aspired_versions("m", {1: Path("/m/1")})
        wait_state(m, 1, State.AVAILABLE)
        assert calls == [1, 1, 1]
    finally:
        m.close()


def test_every_transition_is_published_in_order(manager, loader):
    seen = []
    manager.bus.subscribe(lambda e: seen.append((e.id.version, e.manager_state.name)))
    loader.gate(1).set()
    loader.gate(2).set()
    manager.set_aspired_versions("m", {1: Path("/m/1")})
    wait_state(manager, 1, State.AVAILABLE)
    manager.set_aspired_versions("m", {2: Path("/m/2")})
    wait_state(manager, 1, State.END)
    ones = [s for v, s in seen if v == 1]
    twos = [s for v, s in seen if v == 2]
    assert ones == ["START", "LOADING", "AVAILABLE", "UNLOADING", "END"]
    assert twos == ["START", "LOADING", "AVAILABLE"]
    assert seen.index((2, "AVAILABLE")) < seen.index((1, "UNLOADING"))  # availability first


def test_of_several_old_versions_the_highest_serves_until_a_new_one_is_ready(manager, loader):
    loader.gate(1).set()
    loader.gate(2).set()
    manager.set_aspired_versions("m", {1: Path("/m/1"), 2: Path("/m/2")})  # policy `all`
    wait_state(manager, 1, State.AVAILABLE)
    wait_state(manager, 2, State.AVAILABLE)
    loader.gate(3)  # created, not released
    manager.set_aspired_versions("m", {3: Path("/m/3")})
    wait_state(manager, 1, State.END)  # as in TF Serving: more than one old version serving, the lowest goes
    assert loader.started[3].wait(10)
    assert state(manager, 2) == State.AVAILABLE and state(manager, 3) == State.LOADING
    loader.gate(3).set()
    wait_state(manager, 2, State.END)
    with manager.get("m") as v:
        assert v.number == 3


def test_the_resource_preserving_policy_unloads_before_it_loads(loader):
    m = Managed(loader, max_load_retries=0, policy=ResourcePreservingPolicy())
    try:
        loader.gate(1).set()
        loader.gate(2).set()
        m.set_aspired_versions("m", {1: Path("/m/1")})
        wait_state(m, 1, State.AVAILABLE)
        seen = []
        m.bus.subscribe(lambda e: seen.append((e.id.version, e.manager_state.name)))
        m.set_aspired_versions("m", {2: Path("/m/2")})
        wait_state(m, 2, State.AVAILABLE)
        assert seen.index((1, "END")) < seen.index((2, "LOADING"))  # never two versions resident
    finally:
        m.close()
