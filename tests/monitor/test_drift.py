import json

import numpy as np
import pandas as pd
import pytest

from monitor import drift
from monitor.__main__ import main
from train.run import load_run_inputs, split_rows


@pytest.fixture(scope="module")
def card_and_train(exported, penguins_run):
    card = drift.read_card(exported / "penguins" / "1")
    _, spec, cols, key = load_run_inputs(penguins_run.path)
    train = split_rows(spec, cols, key)["train"]
    return card, {f.name: train[f.name] for f in spec.features}


def sample(train, n, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(next(iter(train.values()))), n)
    return {k: [None if isinstance(x, float) and np.isnan(x) else x for x in v[idx].tolist()] for k, v in train.items()}


def test_a_fresh_sample_of_5000_rows_from_the_training_distribution_is_not_flagged(card_and_train):
    card, train = card_and_train
    rep = drift.drift_report(card, sample(train, 5000, 1))
    assert rep["rows"] == 5000 and rep["method"] == "distance thresholds"
    assert rep["drifted"] == [], {k: f["reasons"] for k, f in rep["features"].items()}


def test_a_small_fresh_sample_is_not_flagged_either(card_and_train):
    card, train = card_and_train
    flagged = sum(bool(drift.drift_report(card, sample(train, 50, s))["drifted"]) for s in range(20))
    assert flagged <= 2  # Bonferroni-split alpha: a false alarm now and then, not PSI's every time
    assert drift.drift_report(card, sample(train, 50, 0))["method"] == "chi-squared test"


def test_shifted_numbers_and_a_new_category_are_flagged(card_and_train):
    card, train = card_and_train
    live = sample(train, 5000, 2)
    live["bill_length_mm"] = [None if v is None else v + 8.0 for v in live["bill_length_mm"]]
    live["island"] = ["Atlantis" if i % 3 == 0 else v for i, v in enumerate(live["island"])]
    rep = drift.drift_report(card, live)
    assert "bill_length_mm" in rep["drifted"] and "island" in rep["drifted"]
    assert rep["features"]["bill_length_mm"]["psi"] > 0.2
    assert rep["features"]["island"]["unseen_rate"] > 0.3 and "Atlantis" in rep["features"]["island"]["unseen_examples"]
    assert "bill_depth_mm" not in rep["drifted"]
    small = sample(train, 200, 3)
    small["flipper_length_mm"] = [None if v is None else v + 15.0 for v in small["flipper_length_mm"]]
    assert "flipper_length_mm" in drift.drift_report(card, small)["drifted"]


def test_psi_and_js_by_hand():
    e, a = np.array([50.0, 50.0]), np.array([80.0, 20.0])
    assert drift.psi(e, a) == pytest.approx((0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5))
    assert drift.js_distance(e, e) == pytest.approx(0.0, abs=1e-9)
    assert 0 < drift.js_distance(e, a) < 1


def test_cli_exit_codes_and_csv_inputs(card_and_train, exported, tmp_path):
    _, train = card_and_train
    fresh = pd.DataFrame(sample(train, 2000, 4))
    fresh.to_csv(tmp_path / "fresh.csv", index=False)
    assert (
        main(
            [
                "drift",
                "--card",
                str(exported / "penguins" / "1"),
                "--inputs",
                str(tmp_path / "fresh.csv"),
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    fresh["body_mass_g"] = fresh["body_mass_g"] * 1.5
    fresh.to_parquet(tmp_path / "drifted.parquet")
    assert (
        main(
            [
                "drift",
                "--card",
                str(exported / "penguins" / "1"),
                "--inputs",
                str(tmp_path / "drifted.parquet"),
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 1
    )
    rep = json.loads((tmp_path / "b" / "drift_report.json").read_text())
    assert rep["drifted"] == ["body_mass_g"] and (tmp_path / "b" / "drift_report.png").exists()
    assert main(["drift", "--card", str(tmp_path / "nothing"), "--inputs", str(tmp_path / "fresh.csv")]) == 2
