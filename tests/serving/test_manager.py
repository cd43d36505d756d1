"""The AspiredVersionsManager's rules, with a loader the test controls (loads block until released),
so every ordering is forced by events rather than by timing."""

import threading
from pathlib import Path

import pytest

from serving.errors import ServingError
from serving.manager import AspiredVersionsManager, State


class FakeServable:
    def __init__(self, version):
        self.version = version
        self.closed = threading.Event()

    def close(self):
        self.closed.set()


class Loader:
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


@pytest.fixture
def loader():
    return Loader()


@pytest.fixture
def manager(loader):
    m = AspiredVersionsManager(loader, max_load_retries=0)
    yield m
    for g in list(loader.gates.values()):
        g.set()
    m.close()


def state(m, v):
    return {x.number: x.state for x in m.status("m")}.get(v)


def wait_state(m, v, s):
    assert m.wait_until(lambda: state(m, v) == s, 10), f"version {v} is {state(m, v)}, not {s}"


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
    (v2,) = [x for x in manager.status("m") if x.number == 2]
    assert "corrupt SavedModel" in v2.error
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
    m = AspiredVersionsManager(loader, max_load_retries=0)
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
    m = AspiredVersionsManager(loader, max_load_retries=0, allow_labels_for_unavailable=True)
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

    m = AspiredVersionsManager(flaky, max_load_retries=2, retry_interval_s=0.0)
    try:
        m.set_aspired_versions("m", {1: Path("/m/1")})
        wait_state(m, 1, State.AVAILABLE)
        assert calls == [1, 1, 1]
    finally:
        m.close()
