import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import modelbase
from export import publish
from export.gate import interface_problems
from export.pipeline import export_run
from tests.conftest import ROOT, run_cli
from tests.fixtures.wait import wait_until


def _numeric(model_dir: Path) -> list[str]:
    return sorted(str(v) for v in modelbase.versions(model_dir))


def test_gate_passes_an_equal_model_and_blocks_a_worse_one(penguins_run, penguins_worse_run, tmp_path):
    base = tmp_path / "models"
    first = export_run(penguins_run.path, base)
    assert first.version == 1 and first.gate is None
    same = export_run(penguins_run.path, base)
    assert same.version == 2 and same.gate["verdict"] == "pass" and same.gate["agreement"] == 1.0
    assert same.gate["score_difference"]["max"] < 1e-5

    r = run_cli("export", "-q", "--run", str(penguins_worse_run.path), "--model-base-path", str(base))
    assert "absl::InitializeLog" not in r.stderr and "oneDNN" not in r.stderr  # start-up lines held back
    assert r.returncode == 1, r.stderr
    assert "not published" in r.stderr and "accuracy drop" in r.stderr
    assert _numeric(base / "penguins") == ["1", "2"]
    report = json.loads((penguins_worse_run.path / "differential_report.json").read_text())
    assert report["verdict"] == "fail" and report["production_version"] == 2
    assert report["metrics"]["delta"]["accuracy"] < -0.01
    assert (penguins_worse_run.path / "differential_report.png").read_bytes()[:4] == b"\x89PNG"
    counts = report["flip_matrix"]["counts"]
    assert sum(map(sum, counts)) == report["rows"]
    assert abs(sum(c[i] for i, c in enumerate(counts)) / report["rows"] - report["agreement"]) < 1e-9

    forced = run_cli("export", "-q", "--run", str(penguins_worse_run.path), "--model-base-path", str(base), "--force")
    assert forced.returncode == 0 and "fail against version 2 (forced)" in forced.stdout
    assert _numeric(base / "penguins") == ["1", "2", "3"]


def test_stable_label_picks_the_production_version(penguins_run, penguins_worse_run, tmp_path):
    base = tmp_path / "models"
    export_run(penguins_run.path, base)
    export_run(penguins_worse_run.path, base, force=True)  # v2 is worse, but v1 is labelled stable
    (base / "models.config").write_text(
        'model_config_list { config { name: "penguins" base_path: "/models/penguins" model_platform: "tensorflow"'
        ' model_version_policy { specific { versions: 1 versions: 2 } } version_labels { key: "stable" value: 1 } } }'
    )
    r = export_run(penguins_run.path, base)
    assert r.gate["production_version"] == 1 and r.gate["verdict"] == "pass"


def test_interface_problems():
    def sig(inputs, outputs, method="tensorflow/serving/predict"):
        return {
            "method_name": method,
            "inputs": {k: {"dtype": v} for k, v in inputs.items()},
            "outputs": {k: {"dtype": v} for k, v in outputs.items()},
        }

    prod = {"serving_default": sig({"a": "DT_FLOAT", "b": "DT_STRING"}, {"p": "DT_FLOAT"})}
    assert interface_problems(prod, prod) == []
    cand = {"serving_default": sig({"a": "DT_INT64", "c": "DT_STRING"}, {"q": "DT_FLOAT"})}
    assert interface_problems(prod, cand) == [
        "serving_default: input 'a' changed dtype DT_FLOAT -> DT_INT64",
        "serving_default: input 'b' is gone",
        "serving_default: new required input 'c' that current clients do not send",
        "serving_default: output 'p' is gone",
    ]
    assert interface_problems(prod, {}) == ["signature 'serving_default' is gone"]


def test_a_renamed_feature_is_a_breaking_change(penguins_run, tmp_path):
    from tests.conftest import spec_text
    from train.run import train_run
    from train.spec import parse_spec

    base = tmp_path / "models"
    export_run(penguins_run.path, base)
    text = spec_text(epochs=6).replace('[[features]]\nname = "year"\nkind = "integer"\n', "")
    fewer = train_run(parse_spec(text), None, None, tmp_path / "runs")  # "year" dropped from the inputs
    r = run_cli("export", "-q", "--run", str(fewer.path), "--model-base-path", str(base))
    assert r.returncode == 1 and "input 'year' is gone" in r.stderr
    ok = run_cli("export", "-q", "--run", str(fewer.path), "--model-base-path", str(base), "--allow-breaking")
    assert ok.returncode == 0, ok.stderr
    assert _numeric(base / "penguins") == ["1", "2"]


def test_crash_mid_export_leaves_no_version(penguins_run, tmp_path, monkeypatch):
    from export import model_card

    base = tmp_path / "models"

    def crash(*a, **k):
        raise RuntimeError("simulated crash while writing the model card")

    monkeypatch.setattr(model_card, "write_card", crash)
    with pytest.raises(RuntimeError):
        export_run(penguins_run.path, base)
    assert list((base / "penguins").iterdir()) == []


def test_killed_exporter_leaves_no_version_and_its_staging_is_cleaned(penguins_run, tmp_path):
    base = tmp_path / "models"
    proc = subprocess.Popen(
        [sys.executable, "-m", "export", "-q", "--run", str(penguins_run.path), "--model-base-path", str(base)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    model_dir = base / "penguins"

    def running() -> None:
        assert proc.poll() is None, "the exporter exited before its staging step"

    wait_until(
        lambda: model_dir.exists() and any(model_dir.glob(".staging-*/saved_model.pb")),
        "the exporter's staging step",
        120,
        check=running,
    )
    os.kill(proc.pid, signal.SIGKILL)  # mid-export: the SavedModel is written, nothing is published
    proc.wait()
    assert _numeric(model_dir) == []
    assert any(model_dir.glob(".staging-*"))  # left behind, ignored by TF Serving (not a number)
    export_run(penguins_run.path, base)
    assert _numeric(model_dir) == ["1"] and not any(model_dir.glob(".staging-*"))


def test_racing_publishers_cannot_both_win_one_number(tmp_path):
    model_dir = tmp_path / "m"
    stagings = [publish.new_staging_dir(model_dir) for _ in range(8)]
    for i, s in enumerate(stagings):
        (s / "marker").write_text(str(i))
    results, barrier = [], threading.Barrier(len(stagings))

    def go(s):
        barrier.wait()
        try:
            results.append(publish.publish(s, model_dir, 7))
        except publish.VersionExists:
            results.append("lost")

    threads = [threading.Thread(target=go, args=(s,)) for s in stagings]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == [7] + ["lost"] * 7
    auto = [publish.new_staging_dir(model_dir) for _ in range(4)]
    got = []
    threads = [threading.Thread(target=lambda s=s: got.append(publish.publish(s, model_dir, None))) for s in auto]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [8, 9, 10, 11]


def test_prune_keeps_labelled_versions(tmp_path):
    base = tmp_path / "models"
    for v in (1, 2, 3, 4, 5):
        (base / "m" / str(v)).mkdir(parents=True)
    (base / "m" / "notes").mkdir()
    (base / "models.config").write_text(
        'model_config_list { config { name: "m" base_path: "/models/m" version_labels { key: "stable" value: 2 } } }'
    )
    assert publish.prune(base, "m", keep=2) == [1, 3]
    assert sorted(p.name for p in (base / "m").iterdir()) == ["2", "4", "5", "notes"]


@pytest.mark.parametrize(
    "case", ["missing", "incomplete", "tampered", "existing", "unwritable", "not-a-run", "another-model"]
)
def test_bad_input_exits_2_and_publishes_nothing(case, penguins_run, penguins_run_other_seed, tmp_path):
    base = tmp_path / "models"
    run = penguins_run.path
    if case == "missing":
        run = tmp_path / "no-such-run"
    elif case == "incomplete":
        run = Path(shutil.copytree(penguins_run.path, tmp_path / "run"))
        (run / "model.keras").unlink()
    elif case == "tampered":
        import pyarrow.parquet as pq

        run = Path(shutil.copytree(penguins_run.path, tmp_path / "run"))
        t = pq.read_table(run / "snapshot.parquet")
        pq.write_table(t.slice(0, 300).replace_schema_metadata(t.schema.metadata), run / "snapshot.parquet")
    elif case == "existing":
        (base / "penguins" / "1").mkdir(parents=True)
        (base / "penguins" / "1" / "keep.txt").write_text("published before")
    elif case == "unwritable":
        base.parent.mkdir(exist_ok=True)
        (tmp_path / "afile").write_text("")
        base = tmp_path / "afile" / "models"  # a base path under a file cannot be created, even by root
    elif case == "not-a-run":
        run = tmp_path / "empty"
        run.mkdir()
        (run / "model.keras").write_text("")
    elif case == "another-model":  # a run whose model.keras was replaced: its card would describe another model
        run = Path(shutil.copytree(penguins_run.path, tmp_path / "run"))
        shutil.copy(penguins_run_other_seed.path / "model.keras", run / "model.keras")
    args = ["export", "-q", "--run", str(run), "--model-base-path", str(base)]
    if case == "existing":
        args += ["--version", "1"]
    r = run_cli(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    if case == "another-model":  # TensorFlow has started by then and printed its C++ start-up lines (issue 14)
        ours = [line for line in r.stderr.splitlines() if not line.startswith(("WARNING: All log", "E0000", "I0000"))]
        assert len(ours) == 1 and ours[0].startswith("export: error: "), r.stderr
    else:
        assert r.stderr.startswith("export: error: ") and r.stderr.count("\n") == 1, r.stderr
    expected = {
        "missing": "is not a directory",
        "incomplete": "has no model.keras",
        "tampered": "no longer matches",
        "existing": "already exists",
        "unwritable": "cannot write",
        "not-a-run": "has no manifest.json",
        "another-model": "is not the model this run trained",
    }
    assert expected[case] in r.stderr
    if case == "existing":
        assert (base / "penguins" / "1" / "keep.txt").read_text() == "published before"
        assert _numeric(base / "penguins") == ["1"]
    elif base.exists() and (base / "penguins").exists():
        assert _numeric(base / "penguins") == []
