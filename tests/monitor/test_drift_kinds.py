"""Drift of text and image features from the card's statistics; tensor features skipped by name."""

import numpy as np

from export.model_card import training_statistics
from monitor.drift import drift_report
from train.images import encode_png
from train.spec import parse_spec

SPEC = parse_spec(
    '[model]\nname = "m"\ntask = "classification"\nlabel = "y"\n'
    '[[features]]\nname = "note"\nkind = "text"\n'
    '[[features]]\nname = "img"\nkind = "image"\nheight = 4\nwidth = 4\nchannels = 1\n'
    '[[features]]\nname = "grid"\nkind = "numeric"\nshape = [2]\n'
)
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def _texts(rng, n, length, words=WORDS):
    return [" ".join(rng.choice(words, size=rng.integers(length - 1, length + 2))) for _ in range(n)]


def _images(rng, n, level):
    return [encode_png(np.clip(rng.normal(level, 10, (4, 4)), 0, 255).astype(np.uint8)) for _ in range(n)]


def _card(rng):
    n = 600
    cols = {
        "note": np.array(_texts(rng, n, 5), dtype=object),
        "img": np.array(_images(rng, n, 80), dtype=object),
        "grid": rng.normal(size=(n, 2)),
    }
    learned = {"note": {"vocabulary": WORDS}}
    schema = [{"name": "note", "vocabulary": WORDS}]
    return {"training_statistics": training_statistics(SPEC, cols, learned), "input_schema": schema}


def test_text_and_image_from_the_training_distribution_are_not_flagged():
    rng = np.random.default_rng(0)
    card = _card(rng)
    live = {"note": _texts(rng, 200, 5), "img": _images(rng, 200, 80), "grid": [[0.0, 1.0]] * 200}
    rep = drift_report(card, live)
    assert rep["drifted"] == [], rep["features"]
    assert rep["features"]["grid"]["skipped"] and not rep["features"]["grid"]["drift"]


def test_longer_text_new_words_and_brighter_images_are_flagged():
    rng = np.random.default_rng(1)
    card = _card(rng)
    live = {
        "note": _texts(rng, 200, 12, [*WORDS, "zeta", "eta", "theta"]),
        "img": _images(rng, 200, 200),
    }
    rep = drift_report(card, live)
    assert rep["drifted"] == ["img", "note"]
    note = rep["features"]["note"]
    assert note["oov_rate"] > 0.2 and any("out-of-vocabulary" in r for r in note["reasons"])
    assert any(r.startswith("length:") for r in note["reasons"])
    assert any(r.startswith("mean_intensity:") for r in rep["features"]["img"]["reasons"])


def test_the_plot_shows_the_statistic_that_decided_against_its_threshold(tmp_path):
    from monitor.drift import _decision, plot

    rng = np.random.default_rng(2)
    card = _card(rng)
    small = drift_report(card, {"note": _texts(rng, 50, 12, [*WORDS, "zeta"]), "img": _images(rng, 50, 80)})
    ratio, label = _decision(small["features"]["note"], small)
    assert small["method"] == "chi-squared test" and label.startswith("p=") and ratio > 1  # flagged by the test
    big = drift_report(card, {"note": _texts(rng, 1200, 5), "img": _images(rng, 1200, 80)})
    ratio, label = _decision(big["features"]["note"], big)
    assert big["method"] == "distance thresholds" and label.startswith("length PSI") and ratio < 1
    assert _decision(big["features"]["grid"], big) == (0.0, "absent")
    plot(small, tmp_path / "d.png")
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
