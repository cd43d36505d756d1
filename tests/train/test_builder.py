"""The builder contract (`[model] builder`): what a builder gets, what it must return, and the one-line
refusal of each bad builder, with no run directory left behind."""

from pathlib import Path

import pytest

from tests.conftest import run_cli, spec_text
from train.errors import InputError
from train.run import reproduce, train_run
from train.spec import parse_spec

GOOD = """
import keras

def build(ctx):
    assert set(ctx.inputs) == set(ctx.spec.feature_names)
    assert ctx.n_classes == 3 and ctx.task == "classification" and len(ctx.train["island"]) > 100
    x = keras.layers.Concatenate(name="mine")([ctx.preprocessed["bill_length_mm"], ctx.preprocessed["island"],
                                             ctx.preprocessed["year"], ctx.preprocessed["sex"],
                                             ctx.preprocessed["bill_depth_mm"], ctx.preprocessed["body_mass_g"],
                                             ctx.preprocessed["flipper_length_mm"]])
    x = keras.layers.Dense(8, activation="relu", name="own_hidden")(x)
    model = keras.Model(ctx.inputs, ctx.head(x))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    return model
"""


def _spec(builder_file: Path, body: str, function: str = "build"):
    builder_file.write_text(body)
    text = spec_text(epochs=2).replace('label = "species"', f'label = "species"\nbuilder = "{builder_file}:{function}"')
    return parse_spec(text)


def test_a_builder_gets_the_inputs_preprocessing_and_training_split_and_keeps_its_compile(tmp_path):
    spec = _spec(tmp_path / "mine.py", GOOD)
    r = train_run(spec, None, None, tmp_path / "runs")
    m = r.manifest
    assert m["builder"]["builder"].endswith("mine.py:build") and m["format_version"] == 2
    copy = r.path / m["builder"]["file"]
    assert copy.read_text() == GOOD
    import hashlib

    assert m["builder"]["sha256"] == hashlib.sha256(GOOD.encode()).hexdigest()
    import keras

    model = keras.saving.load_model(r.path / "model.keras")
    assert "own_hidden" in [layer.name for layer in model.layers]
    assert type(model.optimizer).__name__ == "SGD"  # compiled by the builder: its optimizer was used


@pytest.mark.parametrize(
    "body, function, message",
    [
        ("def build(ctx):\n    return 1\n", "build", "returned int, not a keras.Model"),
        ("x = 1\n", "build", "has no function 'build'"),
        ("raise RuntimeError('boom')\n", "build", "importing mine.py raised RuntimeError: boom"),
        ("def build(ctx):\n    raise ValueError('bad shape')\n", "build", "raised ValueError: bad shape"),
        (
            "import keras\ndef build(ctx):\n    i = dict(ctx.inputs); i.pop('year')\n"
            "    x = keras.layers.Concatenate()([ctx.preprocessed[k] for k in i])\n"
            "    return keras.Model(i, ctx.head(x))\n",
            "build",
            "does not take year",
        ),
        (
            "import keras\ndef build(ctx):\n    i = dict(ctx.inputs); i['extra'] = keras.Input((), name='extra')\n"
            "    x = keras.layers.Concatenate()([ctx.features(), keras.layers.Reshape((1,))(i['extra'])])\n"
            "    return keras.Model(i, ctx.head(x))\n",
            "build",
            "takes extra, which the spec does not declare",
        ),
        (
            "import keras\ndef build(ctx):\n"
            "    return keras.Model(ctx.inputs, keras.layers.Dense(3)(ctx.features()))\n",
            "build",
            "not probabilities",
        ),
        (
            "import keras\ndef build(ctx):\n"
            "    return keras.Model(ctx.inputs, keras.layers.Dense(1, activation='sigmoid')(ctx.features()))\n",
            "build",
            "must output [batch, 3] probabilities",
        ),
    ],
)
def test_a_bad_builder_is_refused_with_one_line_and_no_run(tmp_path, body, function, message):
    spec = _spec(tmp_path / "mine.py", body, function)
    with pytest.raises(InputError, match=None) as e:
        train_run(spec, None, None, tmp_path / "runs")
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not any((tmp_path / "runs").iterdir())


def test_a_missing_module_is_refused_before_any_data_is_read(tmp_path):
    text = spec_text(epochs=2).replace('label = "species"', 'label = "species"\nbuilder = "no_such_module_x:build"')
    with pytest.raises(InputError, match="no module 'no_such_module_x'"):
        train_run(parse_spec(text), "/nonexistent.csv", None, tmp_path / "runs")


@pytest.mark.slow
def test_the_cli_refuses_a_bad_builder_with_exit_2_and_one_line(tmp_path):
    (tmp_path / "mine.py").write_text("def build(ctx):\n    return None\n")
    spec = tmp_path / "s.toml"
    spec.write_text(
        spec_text(epochs=2).replace('label = "species"', f'label = "species"\nbuilder = "{tmp_path}/mine.py:build"')
    )
    r = run_cli("train", "--spec", str(spec), "--out", str(tmp_path / "runs"), "-q")
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("train:")]
    assert lines == [f"train: error: builder '{tmp_path}/mine.py:build' returned NoneType, not a keras.Model"]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_reproduce_runs_the_recorded_builder_and_refuses_a_changed_file_unless_told(tmp_path):
    f = tmp_path / "mine.py"
    spec = _spec(f, GOOD)
    r = train_run(spec, None, None, tmp_path / "runs")
    same = reproduce(r.path)
    assert same.matches and "recorded builder" in (same.builder_ran or "")

    f.write_text(GOOD.replace("Dense(8,", "Dense(9,"))
    with pytest.raises(InputError, match="--use-current-builder runs today's code"):
        reproduce(r.path)
    changed = reproduce(r.path, use_current_builder=True)
    assert not changed.matches and "current builder file" in (changed.builder_ran or "")

    f.unlink()
    with pytest.raises(InputError, match="is not found now"):
        reproduce(r.path)


def test_the_builder_is_checked_on_real_rows_before_training(tmp_path):
    body = (
        "import keras\ndef build(ctx):\n"
        "    x = keras.layers.Dense(3, activation='softmax')(ctx.features())\n"
        "    y = keras.layers.Lambda(lambda t: t * float('nan'))(x)\n"
        "    return keras.Model(ctx.inputs, y)\n"
    )
    spec = _spec(tmp_path / "mine.py", body)
    with pytest.raises(InputError, match="non-finite"):
        train_run(spec, None, None, tmp_path / "runs")
