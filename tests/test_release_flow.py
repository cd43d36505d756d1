"""The release flow through models.config: export labels a canary, promote moves stable to it, rollback
moves stable back to the previous stable from the label history; changes are made under a lock, and a
server that cannot be reached leaves models.config as it was. End to end under load: zero failed
requests for clients that call label="stable"."""

import itertools
import shutil
import threading

import pytest

import modelbase
from modelbase import labels as label_history
from release.model_config import ReleaseError, Server, ServerError, change_labels, promote, release_candidate, rollback
from tests.conftest import copy_base, run_cli
from tests.fixtures.requests import PENGUIN_FEEDS
from tests.fixtures.servers import free_port, start_local
from tests.fixtures.wait import wait_until

pytestmark = pytest.mark.slow  # trains, exports or starts servers (see tests/conftest.py)


def _fake_versions(base, name, numbers):
    for n in numbers:
        (base / name / str(n)).mkdir(parents=True, exist_ok=True)


def _policy(base, name):
    for m in modelbase.read_config(base).model_config_list.config:
        if m.name == name:
            return list(m.model_version_policy.specific.versions)
    return None


def test_canary_first_promote_and_rollback_to_the_previous_stable(tmp_path):
    _fake_versions(tmp_path, "m", [1])
    assert release_candidate(tmp_path, "m", 1) == {"stable": 1}  # a first version becomes stable
    _fake_versions(tmp_path, "m", [2])
    assert release_candidate(tmp_path, "m", 2) == {"stable": 1, "canary": 2}
    _fake_versions(tmp_path, "m", [3])
    assert release_candidate(tmp_path, "m", 3) == {"stable": 1, "canary": 3}  # 2 was never promoted
    assert promote(tmp_path, "m") == {"stable": 3}
    assert _policy(tmp_path, "m") == [3]  # what no label needs is unloaded
    assert rollback(tmp_path, "m") == {"stable": 1}  # the previous stable, not the previous number (2)
    with pytest.raises(ReleaseError, match="no stable version before 1"):
        rollback(tmp_path, "m")
    history = label_history.history(tmp_path, "m")
    assert [(e["action"], e["label"], e["previous"], e["version"]) for e in history] == [
        ("export", "stable", None, 1),
        ("export", "canary", None, 2),
        ("export", "canary", 2, 3),
        ("promote", "canary", 3, None),
        ("promote", "stable", 1, 3),
        ("rollback", "stable", 3, 1),
    ]
    assert all(e["who"] and e["host"] and e["time"] for e in history)


def test_rollback_walks_back_through_stable_versions(tmp_path):
    _fake_versions(tmp_path, "m", [1])
    release_candidate(tmp_path, "m", 1)
    for v in (2, 3):
        _fake_versions(tmp_path, "m", [v])
        release_candidate(tmp_path, "m", v)
        promote(tmp_path, "m")
    assert rollback(tmp_path, "m")["stable"] == 2
    assert rollback(tmp_path, "m")["stable"] == 1


def test_concurrent_changes_take_turns_and_lose_nothing(tmp_path):
    _fake_versions(tmp_path, "m", [1, 2, 3])
    release_candidate(tmp_path, "m", 1)
    n = 25
    errors = []

    def mover(label, versions):
        try:
            for i in range(n):
                change_labels(tmp_path, "m", {label: versions[i % len(versions)]}, "test")
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [
        threading.Thread(target=mover, args=("a", [1, 2, 3])),
        threading.Thread(target=mover, args=("b", [3, 2, 1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    final = modelbase.labels_of(tmp_path, "m")
    assert final["a"] == [1, 2, 3][(n - 1) % 3] and final["b"] == [3, 2, 1][(n - 1) % 3] and final["stable"] == 1
    changes = [e for e in label_history.history(tmp_path, "m") if e["action"] == "test"]
    # every change that moved a label is in the history, each after the one it replaced
    for label in ("a", "b"):
        mine = [e for e in changes if e["label"] == label]
        assert all(x["version"] == y["previous"] for x, y in itertools.pairwise(mine))


def test_an_unreachable_server_leaves_models_config_untouched(tmp_path):
    _fake_versions(tmp_path, "m", [1, 2])
    release_candidate(tmp_path, "m", 1)
    before = (tmp_path / "models.config").read_bytes()
    history = (tmp_path / label_history.HISTORY_FILE).read_bytes()
    gone = f"127.0.0.1:{free_port()}"
    with pytest.raises(ServerError, match="did not answer"):
        release_candidate(tmp_path, "m", 2, Server(gone))
    r = run_cli(
        "release",
        "canary",
        "--model-base-path",
        str(tmp_path),
        "--name",
        "m",
        "--version",
        "2",
        "--server",
        gone,
        "--wait-seconds",
        "5",
    )
    ours = [line for line in r.stderr.splitlines() if line.startswith("release:")]
    assert r.returncode == 1 and len(ours) == 1 and "models.config is unchanged" in ours[0]
    assert (tmp_path / "models.config").read_bytes() == before
    assert (tmp_path / label_history.HISTORY_FILE).read_bytes() == history


ROW = PENGUIN_FEEDS


def test_release_flow_under_load_fails_no_stable_request(exported, tmp_path):
    from shipyard_client import Client

    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    release_candidate(base, "penguins", 1)
    server = start_local([f"--model_config_file={base / 'models.config'}"], tmp_path)
    stop = threading.Event()
    seen: list[int] = []
    failures: list[str] = []

    def client_loop():
        with Client(server.target, timeout=30) as c:
            while not stop.is_set():
                try:
                    seen.append(c.predict("penguins", ROW, label="stable").version)
                except Exception as e:  # noqa: BLE001 - counted: the test asserts there are none
                    failures.append(f"{type(e).__name__}: {e}")

    try:
        server.wait_for(lambda: server.status("penguins").get(1, ("",))[0] == "AVAILABLE", "v1")
        threads = [threading.Thread(target=client_loop) for _ in range(3)]
        for t in threads:
            t.start()
        srv = Server(server.target)
        shutil.copytree(exported / "penguins" / "2", base / "penguins" / "2")
        assert release_candidate(base, "penguins", 2, srv) == {"stable": 1, "canary": 2}
        with Client(server.target, timeout=30) as c:
            assert c.predict("penguins", ROW, label="canary").version == 2
            assert c.predict("penguins", ROW, label="stable").version == 1
        assert promote(base, "penguins", srv) == {"stable": 2}
        server.wait_for(lambda: server.status("penguins").get(1, ("",))[0] == "END", "v1 unloaded")
        assert rollback(base, "penguins", srv) == {"stable": 1}
        mark = len(seen)
        wait_until(lambda: len(seen) >= mark + 30, "requests after the rollback", 30)
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        stop.set()
        server.stop()
    assert failures == []
    assert {1, 2} <= set(seen) and seen[-1] == 1


def test_the_export_cli_publishes_a_canary_and_says_what_serves_what(penguins_run, tmp_path):
    base = tmp_path / "models"
    first = run_cli("export", "-q", "--run", str(penguins_run.path), "--model-base-path", str(base))
    assert first.returncode == 0, first.stderr
    assert "serving    penguins: stable -> v1;" in first.stdout
    second = run_cli("export", "-q", "--run", str(penguins_run.path), "--model-base-path", str(base))
    assert second.returncode == 0, second.stderr
    assert "serving    penguins: canary -> v2, stable -> v1;" in second.stdout and "promote" in second.stdout
    assert modelbase.labels_of(base, "penguins") == {"stable": 1, "canary": 2}
    third = run_cli(
        "export", "-q", "--newest-takes-all", "--run", str(penguins_run.path), "--model-base-path", str(base)
    )
    assert third.returncode == 0 and "no labels moved" in third.stdout
    assert modelbase.labels_of(base, "penguins") == {"stable": 1, "canary": 2}


def test_export_refuses_a_models_config_that_does_not_parse_with_one_line(penguins_run, tmp_path):
    base = tmp_path / "models"
    base.mkdir()
    (base / "models.config").write_text("this is not a ModelServerConfig {")
    r = run_cli("export", "-q", "--run", str(penguins_run.path), "--model-base-path", str(base))
    ours = [line for line in r.stderr.splitlines() if line.startswith("export:")]
    assert r.returncode == 2 and len(ours) == 1 and "Error parsing text-format" in ours[0], r.stderr[-500:]
    assert not (base / "penguins" / "1").exists()  # nothing published
    assert (base / "models.config").read_text() == "this is not a ModelServerConfig {"
