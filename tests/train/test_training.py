import json
from pathlib import Path

import keras
import numpy as np
import pyarrow.parquet as pq
import pytest

import train.layers  # noqa: F401 - registers the custom layers for loading
from tests.conftest import SPECS, run_cli, spec_text
from train.manifest import REQUIRED
from train.model import model_inputs
from train.run import train_run
from train.snapshot import read_snapshot
from train.spec import parse_spec

pytestmark = pytest.mark.slow  # trains, exports or starts servers (see tests/conftest.py)


@pytest.fixture(scope="module")
def fast_spec():
    return parse_spec(spec_text(epochs=4))


@pytest.fixture(scope="module")
def first_run(fast_spec, tmp_path_factory):
    return train_run(fast_spec, None, None, tmp_path_factory.mktemp("runs"))


def test_run_directory_holds_everything(first_run):
    files = {p.name for p in first_run.path.iterdir()}
    assert {"manifest.json", "spec.toml", "snapshot.parquet", "model.keras", "training_curves.png"} <= files
    m = json.loads((first_run.path / "manifest.json").read_text())
    assert all(k in m for k in REQUIRED)
    assert m["rows"] == 344 and sum(m["split_sizes"].values()) == 344
    assert set(m["metrics"]) == {"validation", "test"}
    assert set(m["metrics"]["test"]) == {"accuracy", "log_loss", "rows"}
    assert m["packages"]["tensorflow"].startswith("2.21") and m["device"] == "CPU"
    assert m["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert (first_run.path / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in first_run.path.parent.iterdir() if p.name.startswith(".tmp")]


def test_two_trainings_give_identical_weights_and_another_seed_does_not(fast_spec, first_run, tmp_path):
    again = train_run(fast_spec, None, None, tmp_path)
    assert again.manifest["weights_sha256"] == first_run.manifest["weights_sha256"]
    assert again.manifest["metrics"] == first_run.manifest["metrics"]
    other = train_run(fast_spec.with_seed(43), None, None, tmp_path)
    assert other.manifest["weights_sha256"] != first_run.manifest["weights_sha256"]
    assert other.manifest["split_sizes"] == first_run.manifest["split_sizes"]  # the split is the seed's own


def test_saved_model_takes_raw_features_and_predicts_like_the_run(first_run, fast_spec):
    model = keras.saving.load_model(first_run.path / "model.keras")
    cols, _, _ = read_snapshot(first_run.path / "snapshot.parquet")
    x = model_inputs(fast_spec, cols)
    p = np.asarray(model.predict(x, verbose=0))
    assert p.shape == (344, 3)
    acc = np.mean(np.array(first_run.manifest["classes"])[p.argmax(1)] == cols["species"])
    assert acc > 0.8  # four epochs are enough to beat the 44% majority class by far


def test_reproduce_exits_0_on_an_intact_run(first_run):
    r = run_cli("train", "--reproduce", str(first_run.path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert first_run.manifest["weights_sha256"] in r.stdout


def test_reproduce_exits_1_when_weights_differ(first_run, tmp_path):
    import shutil

    copy = Path(shutil.copytree(first_run.path, tmp_path / "copy"))
    m = json.loads((copy / "manifest.json").read_text())
    m["weights_sha256"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(m))
    r = run_cli("train", "--reproduce", str(copy))
    assert r.returncode == 1 and "NOT reproduced" in r.stdout


def test_reproduce_refuses_a_snapshot_that_no_longer_matches(first_run, tmp_path):
    import shutil

    copy = Path(shutil.copytree(first_run.path, tmp_path / "copy"))
    table = pq.read_table(copy / "snapshot.parquet")
    sliced = table.slice(1)  # one row fewer
    pq.write_table(sliced.replace_schema_metadata(table.schema.metadata), copy / "snapshot.parquet")
    r = run_cli("train", "--reproduce", str(copy))
    assert r.returncode == 2 and "no longer matches its hash" in r.stderr


def test_reproduce_refuses_a_directory_that_is_not_a_run(tmp_path):
    r = run_cli("train", "--reproduce", str(tmp_path))
    assert r.returncode == 2 and "has no manifest.json" in r.stderr


def test_cli_trains_the_regression_spec(tmp_path):
    spec = tmp_path / "reg.toml"
    spec.write_text(spec_text("penguins_body_mass.toml", epochs=3))
    r = run_cli("train", "--spec", str(spec), "--out", str(tmp_path / "runs"), "--seed", "5")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "epoch 3/3" in r.stderr  # progress per epoch
    # TensorFlow's C++ start-up lines stay off the terminal (they are shown with -v)
    assert "absl::InitializeLog" not in r.stderr and "oneDNN" not in r.stderr and "cuInit" not in r.stderr
    (run,) = (tmp_path / "runs").iterdir()
    m = json.loads((run / "manifest.json").read_text())
    assert m["seed"] == 5 and m["task"] == "regression" and m["rows"] == 342
    assert set(m["metrics"]["test"]) == {"rmse", "mae", "rows"}
    assert m["metrics"]["test"]["rmse"] < 2000 and m["label_stats"]["std"] > 0
    assert f"run {m['run_id']}" in r.stdout and m["weights_sha256"] in r.stdout


def test_failed_training_leaves_no_run_directory(tmp_path, monkeypatch, fast_spec):
    from train import fit

    def boom(*a, **k):
        raise RuntimeError("simulated crash mid-training")

    monkeypatch.setattr(fit, "fit", boom)
    with pytest.raises(RuntimeError):
        train_run(fast_spec, None, None, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_spec_shipped_default_trains_from_cli_once(tmp_path):
    r = run_cli("train", "-q", "--spec", str(SPECS / "penguins.toml"), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = tmp_path.iterdir()
    m = json.loads((run / "manifest.json").read_text())
    assert m["metrics"]["test"]["accuracy"] > 0.9


def test_early_stopping_keeps_the_best_epoch_and_is_deterministic(tmp_path):
    """[training] early_stopping_patience: training stops once the validation loss has not improved for
    that many epochs, the best epoch's weights are the ones kept (and recorded), and a second training
    gives the same weights."""
    import json

    import numpy as np

    from tests.conftest import spec_text
    from train.run import train_run
    from train.spec import parse_spec

    text = spec_text("penguins_body_mass.toml", epochs=25, learning_rate=0.08)
    text = text.replace("[training]\n", "[training]\nearly_stopping_patience = 2\n", 1)
    spec = parse_spec(text)
    first = train_run(spec, None, None, tmp_path / "a")
    second = train_run(spec, None, None, tmp_path / "b")
    early = first.manifest["early_stopping"]
    history = json.loads((first.path / "history.json").read_text())
    val = np.array(history["val_loss"])
    assert early["epochs_run"] == len(val) and early["patience"] == 2
    assert early["epoch_kept"] == int(np.argmin(val)) + 1 and early["val_loss"] == pytest.approx(val.min())
    assert len(val) < 25 or early["epoch_kept"] == 25  # stopped early here, or the last epoch was the best
    # the kept weights are the best epoch's: the recorded validation RMSE is that epoch's, not the last one's
    assert first.manifest["metrics"]["validation"]["rmse"] == pytest.approx(float(np.sqrt(val.min())), rel=0.05)
    assert first.manifest["weights_sha256"] == second.manifest["weights_sha256"]


def test_optimizer_and_class_weight_take_effect(tmp_path):
    from tests.conftest import spec_text
    from train.run import train_run
    from train.spec import parse_spec

    plain = parse_spec(spec_text(epochs=3))
    tuned = parse_spec(
        spec_text(epochs=3).replace(
            "[training]\n", '[training]\noptimizer = "sgd"\nmomentum = 0.9\nclass_weight = "balanced"\n', 1
        )
    )
    assert (tuned.training.optimizer, tuned.training.momentum, tuned.training.class_weight) == ("sgd", 0.9, "balanced")
    a = train_run(plain, None, None, tmp_path / "a")
    b = train_run(tuned, None, None, tmp_path / "b")
    c = train_run(tuned, None, None, tmp_path / "c")
    assert a.manifest["weights_sha256"] != b.manifest["weights_sha256"]  # the options change the training
    assert b.manifest["weights_sha256"] == c.manifest["weights_sha256"]  # and it stays deterministic


def _as_format_1(run_dir: Path, dest: Path) -> Path:
    """A copy of a run as written before format_version 2: no format_version, builder or required counts."""
    import shutil

    copy = Path(shutil.copytree(run_dir, dest))
    m = json.loads((copy / "manifest.json").read_text())
    for key in ("format_version", "builder", "rows_dropped_missing_required"):
        m.pop(key, None)
    (copy / "manifest.json").write_text(json.dumps(m))
    return copy


def test_a_run_written_before_format_version_2_still_reproduces_and_exports(first_run, tmp_path):
    from export.pipeline import export_run
    from train.run import reproduce

    old = _as_format_1(first_run.path, tmp_path / "old")
    assert reproduce(old).matches
    r = export_run(old, tmp_path / "models")
    card = json.loads((r.path / "assets.extra" / "model_card.json").read_text())
    assert card["format_version"] == 2 and card["builder"] is None and card["run"]["run_id"]


def test_a_manifest_of_a_later_format_is_refused_with_one_line(first_run, tmp_path):
    import shutil

    copy = Path(shutil.copytree(first_run.path, tmp_path / "copy"))
    m = json.loads((copy / "manifest.json").read_text())
    m["format_version"] = 3
    (copy / "manifest.json").write_text(json.dumps(m))
    r = run_cli("train", "--reproduce", str(copy))
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("train:")]
    assert len(errors) == 1 and "format_version 3; this Shipyard reads 1 to 2" in errors[0]
