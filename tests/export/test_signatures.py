"""The SavedModel's structure, read back from saved_model.pb, and the three paths agreeing."""

import numpy as np
import pytest

from export.examples import to_examples
from export.pipeline import export_run
from export.signatures import describe_signatures
from export.warmup import predict_feeds
from serving.servable import Servable
from train.spec import parse_spec


@pytest.fixture(scope="module")
def published(penguins_run, tmp_path_factory):
    return export_run(penguins_run.path, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def published_regression(body_mass_run, tmp_path_factory):
    return export_run(body_mass_run.path, tmp_path_factory.mktemp("models"))


def test_classifier_signatures(published):
    sigs = describe_signatures(published.path)
    assert set(sigs) == {"serving_default", "classification"}
    p = sigs["serving_default"]
    assert p["method_name"] == "tensorflow/serving/predict"
    assert p["inputs"]["bill_length_mm"] == {"dtype": "DT_FLOAT", "shape": [-1]}
    assert p["inputs"]["island"] == {"dtype": "DT_STRING", "shape": [-1]}
    assert p["inputs"]["year"] == {"dtype": "DT_INT64", "shape": [-1]}
    assert len(p["inputs"]) == 7
    assert p["outputs"] == {
        "probabilities": {"dtype": "DT_FLOAT", "shape": [-1, 3]},
        "class_ids": {"dtype": "DT_INT64", "shape": [-1]},
        "classes": {"dtype": "DT_STRING", "shape": [-1]},
    }
    c = sigs["classification"]
    assert c["method_name"] == "tensorflow/serving/classify"
    assert c["inputs"] == {"inputs": {"dtype": "DT_STRING", "shape": [-1]}}
    assert c["outputs"] == {
        "classes": {"dtype": "DT_STRING", "shape": [-1, 3]},
        "scores": {"dtype": "DT_FLOAT", "shape": [-1, 3]},
    }


def test_regressor_signatures(published_regression):
    sigs = describe_signatures(published_regression.path)
    assert set(sigs) == {"serving_default", "regression"}
    assert sigs["serving_default"]["outputs"] == {"predictions": {"dtype": "DT_FLOAT", "shape": [-1]}}
    r = sigs["regression"]
    assert r["method_name"] == "tensorflow/serving/regress"
    assert r["inputs"] == {"inputs": {"dtype": "DT_STRING", "shape": [-1]}}
    assert r["outputs"] == {"outputs": {"dtype": "DT_FLOAT", "shape": [-1]}}


def _tricky_rows():
    """Known rows, NaN everywhere a number can be missing, unseen and empty categories."""
    return {
        "bill_length_mm": np.array([39.1, np.nan, 46.5, 50.0, np.nan]),
        "bill_depth_mm": np.array([18.7, np.nan, 17.9, 15.2, 14.0]),
        "flipper_length_mm": np.array([181.0, np.nan, 192.0, 220.0, 215.0]),
        "body_mass_g": np.array([3750.0, np.nan, 3500.0, 5700.0, np.nan]),
        "island": np.array(["Torgersen", "", "Dream", "Atlantis", "Biscoe"], dtype=object),
        "sex": np.array(["male", "", "female", "other", "male"], dtype=object),
        "year": np.array([2007, -1, 2008, 2030, 2009], dtype=np.int64),
        "species": np.array(["Adelie", "Adelie", "Chinstrap", "Gentoo", "Gentoo"], dtype=object),
    }


def test_predict_classify_and_keras_agree_on_tricky_rows(published, penguins_run):
    import keras

    import train.layers  # noqa: F401
    from train.model import model_inputs

    spec = parse_spec((penguins_run.path / "spec.toml").read_text())
    rows = _tricky_rows()
    keras_p = np.asarray(keras.saving.load_model(penguins_run.path / "model.keras")(model_inputs(spec, rows)))
    s = Servable.load("penguins", published.version, published.path)
    try:
        pred = s.run("serving_default", predict_feeds(spec, rows))
        cls = s.run("classification", {"inputs": np.array(to_examples(spec.features, rows), dtype=object)})
    finally:
        s.close()
    assert np.isfinite(pred["probabilities"]).all()
    np.testing.assert_allclose(pred["probabilities"], keras_p, atol=1e-5)
    np.testing.assert_allclose(cls["scores"], keras_p, atol=1e-5)
    names = np.array(penguins_run.manifest["classes"], dtype=object)
    assert pred["classes"].tolist() == [n.encode() for n in names[keras_p.argmax(1)]]
    assert (pred["class_ids"] == keras_p.argmax(1)).all()
    assert cls["classes"].tolist() == [[n.encode() for n in names]] * 5


def test_predict_regress_and_keras_agree(published_regression, body_mass_run):
    import keras

    import train.layers  # noqa: F401
    from train.model import model_inputs

    spec = parse_spec((body_mass_run.path / "spec.toml").read_text())
    rows = {k: v for k, v in _tricky_rows().items() if k in spec.feature_names}
    rows["species"] = np.array(["Adelie", "", "Chinstrap", "Emperor", "Gentoo"], dtype=object)
    keras_p = np.asarray(keras.saving.load_model(body_mass_run.path / "model.keras")(model_inputs(spec, rows)))
    s = Servable.load("m", 1, published_regression.path)
    try:
        pred = s.run("serving_default", predict_feeds(spec, rows))["predictions"]
        reg = s.run("regression", {"inputs": np.array(to_examples(spec.features, rows), dtype=object)})["outputs"]
    finally:
        s.close()
    np.testing.assert_allclose(pred, keras_p.reshape(-1), rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(reg, keras_p.reshape(-1), rtol=1e-6, atol=1e-3)
    assert 1000 < pred[0] < 8000  # grams, not standardized units


def test_validation_report_is_in_the_card(published):
    from export.model_card import read_card

    card = read_card(published.path)
    assert card["validation"]["ok"] and card["validation"]["warmup_records"] == 8
    assert max(card["validation"]["max_abs_diff"].values()) <= 1e-5
