"""The release check: the newest version against the one before it, on labelled data.

pytest tests/differential --model-base-path models [--model-name penguins] [--diff-data held_out.csv]
"""

import pytest

from export.gate import interface_problems
from export.signatures import describe_signatures
from monitor import diff
from monitor.drift import read_card


@pytest.fixture(scope="module")
def report(release_pair):
    card = read_card(release_pair.candidate)
    inputs, y = diff.labelled_data(card, release_pair.data)
    base, _ = diff.predict_disk(release_pair.baseline, inputs, card["task"])
    cand, _ = diff.predict_disk(release_pair.candidate, inputs, card["task"])
    return diff.diff(card, y, base, cand)


def test_interface_is_compatible(release_pair):
    assert (
        interface_problems(describe_signatures(release_pair.baseline), describe_signatures(release_pair.candidate))
        == []
    )


def test_metrics_stay_within_the_thresholds(report):
    assert report["failures"] == [], report["metrics"]


def test_predictions_mostly_agree(report):
    if "agreement" in report:
        assert report["agreement"] >= report["thresholds"].get("min_class_agreement", 0.9)
        assert max(report["flip_rate_per_class"].values()) <= 0.2
