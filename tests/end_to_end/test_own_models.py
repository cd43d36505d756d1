"""Models of one's own through the whole pipeline: the digits CNN (image bytes in), a text classifier
(raw text in), 8x8 numbers as one tensor input, and models trained elsewhere; each trained (or taken),
exported, served by the local server and queried with the SDK over gRPC and over REST."""

import base64
import csv
import json
import urllib.error
import urllib.request

import numpy as np
import pytest

import modelbase
from examples import digits_data, text_data
from export.pipeline import export_outside, export_run
from release import model_config
from shipyard_client import Client, InvalidInputError
from tests.conftest import ROOT, run_cli
from tests.fixtures.servers import start_local
from train.data import penguins_csv
from train.run import train_run
from train.spec import parse_spec

DIGITS = 360  # images: enough to learn, quick to train


def _spec(name: str, **replace: str) -> str:
    text = (ROOT / "specs" / name).read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    digits_csv = digits_data.write(d / "digits", limit=DIGITS)
    text_csv = text_data.write(d / "docstrings.csv")
    # The same digits as 64 numbers per row, one JSON array per cell.
    from sklearn.datasets import load_digits

    tensor_csv = d / "digits_tensor.csv"
    digits = load_digits()
    with open(tensor_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "pixels", "digit"])
        for i in range(DIGITS):
            w.writerow([i, json.dumps(digits.images[i].tolist()), int(digits.target[i])])
    return {"digits": digits_csv, "text": text_csv, "tensor": tensor_csv}


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.chdir(ROOT)  # the builders are named as modules importable from the checkout
    out = tmp_path_factory.mktemp("runs")
    cnn = parse_spec(_spec("digits_cnn.toml", **{"epochs = 15": "epochs = 12"}))
    text = parse_spec(_spec("docstrings.toml", **{"epochs = 20": "epochs = 3"}))
    builtin_text = parse_spec(
        _spec(
            "docstrings.toml",
            **{
                'builder = "examples.text_classifier:build"\n': "",
                'name = "docstrings"': 'name = "docstrings_builtin"',
                'output_mode = "tf_idf"\nngrams = 2': 'output_mode = "int"\nsequence_length = 24',
                "epochs = 20": "epochs = 3",
            },
        )
    )
    tensor = parse_spec(
        '[model]\nname = "digits_tensor"\ntask = "classification"\nlabel = "digit"\n'
        '[[features]]\nname = "pixels"\nkind = "numeric"\nshape = [8, 8]\n'
        "[training]\nepochs = 3\nhidden_units = [32]\n"
    )
    return {
        "cnn": train_run(cnn, str(data["digits"]), None, out),
        "cnn_again": train_run(cnn, str(data["digits"]), None, out),
        "text": train_run(text, str(data["text"]), None, out),
        "text_builtin": train_run(builtin_text, str(data["text"]), None, out),
        "tensor": train_run(tensor, str(data["tensor"]), None, out),
    }


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """A penguins classifier built and trained with plain Keras, saved as .keras and as a SavedModel."""
    import keras
    import pandas as pd

    d = tmp_path_factory.mktemp("outside")
    rows = pd.read_csv(penguins_csv()).dropna(subset=["bill_length_mm", "bill_depth_mm", "species"])
    feats = ["bill_length_mm", "bill_depth_mm"]
    keras.utils.set_random_seed(1)
    inputs = {f: keras.Input(shape=(), dtype="float32", name=f) for f in feats}
    x = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[f]) for f in feats])
    norm = keras.layers.Normalization()
    norm.adapt(rows[feats].to_numpy("float32"))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8, activation="relu")(norm(x)))
    model = keras.Model(inputs, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    y = rows.species.map({s: i for i, s in enumerate(sorted(rows.species.unique()))}).to_numpy()
    model.fit({f: rows[f].to_numpy("float32") for f in feats}, y, epochs=2, verbose=0)
    model.save(d / "model.keras")
    model.export(str(d / "saved_model"), verbose=False)
    spec = d / "spec.toml"
    spec.write_text(
        '[model]\nname = "outside"\ntask = "classification"\nlabel = "species"\n'
        + "".join(f'[[features]]\nname = "{f}"\nkind = "numeric"\nrequired = true\n' for f in feats)
    )
    return d


@pytest.fixture(scope="module")
def served(runs, outside, tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    for key in ("cnn", "text", "text_builtin", "tensor"):
        export_run(runs[key].path, base)
    first = export_outside(outside / "model.keras", str(outside / "spec.toml"), str(penguins_csv()), None, base)
    second = export_outside(outside / "saved_model", str(outside / "spec.toml"), str(penguins_csv()), None, base)
    modelbase.write_config(base, model_config.build(base, {}))
    s = start_local([f"--model_config_file={base / 'models.config'}"], tmp_path_factory.mktemp("logs"))
    names = ("digits", "docstrings", "docstrings_builtin", "digits_tensor", "outside")
    s.wait_for(lambda: all((st := s.status(n)) and all(v[0] == "AVAILABLE" for v in st.values()) for n in names), "all")
    yield {"server": s, "base": base, "outside": (first, second)}
    s.stop()


def _rest(server, model: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(f"{server.rest}/v1/models/{model}:predict", data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_two_trainings_of_the_cnn_give_the_same_weights_and_record_the_builder(runs):
    a, b = runs["cnn"].manifest, runs["cnn_again"].manifest
    assert a["weights_sha256"] == b["weights_sha256"]
    assert a["builder"]["builder"] == "examples.digits_cnn:build"
    assert (runs["cnn"].path / a["builder"]["file"]).read_text() == (ROOT / "examples" / "digits_cnn.py").read_text()
    assert a["metrics"]["test"]["accuracy"] > 0.4  # 12 epochs on 360 images: far above the 0.1 of chance


def test_the_cli_reproduces_the_cnn_run_bit_for_bit(runs):
    r = run_cli("train", "--reproduce", str(runs["cnn"].path), "-q")
    assert r.returncode == 0, r.stderr
    assert "ran the recorded builder" in r.stdout and "matches the manifest" in r.stdout


def test_images_are_sent_as_file_bytes_over_grpc_and_rest(served, data):
    s = served["server"]
    images = sorted((data["digits"].parent / "images").glob("*.png"))[:4]
    raw = [p.read_bytes() for p in images]
    with open(data["digits"]) as fh:
        labels = {r["image"]: r["digit"] for r in csv.DictReader(fh)}
    with Client(s.target, timeout=30) as c:
        out = c.predict("digits", {"image": np.array(raw, dtype=object)})
    assert out["probabilities"].shape == (4, 10)
    status, body = _rest(s, "digits", {"instances": [{"image": {"b64": base64.b64encode(b).decode()}} for b in raw]})
    assert status == 200
    np.testing.assert_allclose([p["probabilities"] for p in body["predictions"]], out["probabilities"], atol=1e-6)
    assert set(labels.values()) >= {c.decode() for c in out["classes"]}


def test_a_corrupt_or_missing_image_is_invalid_argument_naming_the_feature(served):
    s = served["server"]
    with Client(s.target, timeout=30) as c:
        with pytest.raises(InvalidInputError, match="image feature `image`: a value is neither PNG nor JPEG"):
            c.predict("digits", {"image": np.array([b"GIF89a-not-supported"], dtype=object)})
        with pytest.raises(InvalidInputError, match="feature `image` is required and a value is missing"):
            c.predict("digits", {"image": np.array([b""], dtype=object)})
    status, body = _rest(s, "digits", {"instances": [{"image": {"b64": base64.b64encode(b"junk").decode()}}]})
    assert status == 400 and "image feature `image`" in body["error"]


def test_raw_text_goes_in_over_grpc_and_rest(served):
    s = served["server"]
    texts = ["Return the message payload as a string.", "Run the event loop until stop() is called."]
    for model in ("docstrings", "docstrings_builtin"):
        with Client(s.target, timeout=30) as c:
            out = c.predict(model, {"text": np.array(texts, dtype=object)})
        assert out["probabilities"].shape[0] == 2
        status, body = _rest(s, model, {"instances": [{"text": t} for t in texts]})
        assert status == 200
        np.testing.assert_allclose([p["probabilities"] for p in body["predictions"]], out["probabilities"], atol=1e-6)
    with Client(s.target, timeout=30) as c, pytest.raises(InvalidInputError, match="feature `text` is required"):
        c.predict("docstrings", {"text": np.array(["fine", ""], dtype=object)})


def test_a_shaped_numeric_feature_is_one_tensor_input(served, runs):
    s = served["server"]
    from sklearn.datasets import load_digits

    images = load_digits().images[:3].astype(np.float32)
    with Client(s.target, timeout=30) as c:
        out = c.predict("digits_tensor", {"pixels": images})
    assert out["probabilities"].shape == (3, 10)
    status, body = _rest(s, "digits_tensor", {"instances": [{"pixels": im.tolist()} for im in images]})
    assert status == 200 and len(body["predictions"]) == 3


def test_the_cards_describe_the_new_kinds_and_the_builder(served):
    base = served["base"]
    card = json.loads((base / "digits" / "1" / "assets.extra" / "model_card.json").read_text())
    assert card["format_version"] == 2 and card["builder"]["builder"] == "examples.digits_cnn:build"
    image = card["training_statistics"]["image"]
    assert image["kind"] == "image" and 0 < image["mean_intensity"]["mean"] < 1 and image["pixels"]["min"] == 64
    text = json.loads((base / "docstrings" / "1" / "assets.extra" / "model_card.json").read_text())
    stats = text["training_statistics"]["text"]
    assert stats["kind"] == "text" and stats["length"]["mean"] > 3 and 0 <= stats["oov_rate"] < 0.5
    schema = {s["name"]: s for s in text["input_schema"]}
    assert schema["text"]["required"] is True and schema["text"]["vocabulary"]


def test_models_trained_elsewhere_are_published_with_a_card(served, outside):
    first, second = served["outside"]
    assert (first.version, second.version) == (1, 2)
    assert second.gate is not None and second.gate["verdict"] == "pass"  # the same model in two formats
    for r, fmt in ((first, "keras"), (second, "saved_model")):
        card = json.loads((r.path / "assets.extra" / "model_card.json").read_text())
        assert card["trained_elsewhere"]["format"] == fmt and len(card["trained_elsewhere"]["sha256"]) == 64
        assert card["validation"]["ok"] and card["training_statistics"]["bill_length_mm"]["kind"] == "numeric"
    with Client(served["server"].target, timeout=30) as c:
        out = c.predict("outside", {"bill_length_mm": np.float32([39.1]), "bill_depth_mm": np.float32([18.7])})
    assert out["probabilities"].shape == (1, 3)


def test_an_outside_model_that_does_not_fit_the_spec_is_refused_with_one_line(outside, tmp_path):
    spec = tmp_path / "wrong.toml"
    spec.write_text((outside / "spec.toml").read_text().replace('name = "bill_depth_mm"', 'name = "flipper_length_mm"'))
    r = run_cli(
        "export",
        "--model",
        str(outside / "model.keras"),
        "--spec",
        str(spec),
        "--data",
        str(penguins_csv()),
        "--model-base-path",
        str(tmp_path / "models"),
        "-q",
    )
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("export:")]
    assert len(errors) == 1 and "does not run on the spec's features" in errors[0]
    assert not list((tmp_path / "models").glob("*/[0-9]*"))
