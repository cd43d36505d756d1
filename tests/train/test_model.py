import numpy as np
import pytest

from tests.conftest import SPECS
from train.data import load_rows
from train.model import build_model, feature_stats, vocabulary
from train.spec import load_spec


@pytest.fixture(scope="module")
def untrained():
    spec = load_spec(SPECS / "penguins.toml")
    rows = load_rows(spec, None, None)
    stats = {f.name: feature_stats(f, rows.columns[f.name]) for f in spec.features}
    return spec, stats, build_model(spec, stats, n_classes=3)


def test_one_named_input_per_raw_feature_with_natural_dtype(untrained):
    spec, _, model = untrained
    inputs = {t.name.split(":")[0]: t for t in model.inputs}
    assert set(inputs) == set(spec.feature_names)
    assert inputs["island"].dtype == "string" and inputs["year"].dtype == "int64"
    assert inputs["bill_length_mm"].dtype == "float32" and tuple(inputs["bill_length_mm"].shape) == (None,)


def test_raw_strings_nan_and_unseen_categories_go_straight_in(untrained):
    _, _, model = untrained
    batch = {
        "bill_length_mm": np.array([39.1, np.nan, 50.0], dtype=np.float32),
        "bill_depth_mm": np.array([18.7, np.nan, 15.0], dtype=np.float32),
        "flipper_length_mm": np.array([181.0, np.nan, 230.0], dtype=np.float32),
        "body_mass_g": np.array([3750.0, np.nan, 5000.0], dtype=np.float32),
        "island": np.array(["Torgersen", "", "Atlantis"], dtype=object),  # "" missing, "Atlantis" unseen
        "sex": np.array(["male", "", "unknown"], dtype=object),
        "year": np.array([2007, -1, 2031], dtype=np.int64),
    }
    p = np.asarray(model(batch))
    assert p.shape == (3, 3) and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_preprocessing_statistics_come_from_the_given_rows_only():
    spec = load_spec(SPECS / "penguins.toml")
    f = spec.features[0]
    st = feature_stats(f, np.array([1.0, 3.0, np.nan, np.nan]))
    assert st.mean == 2.0 and st.variance == 1.0 and st.missing_rate == 0.5
    assert vocabulary(np.array(["b", "a", "b", "c", "a", "b"], dtype=object)) == ["b", "a", "c"]
