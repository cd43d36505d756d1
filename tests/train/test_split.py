import numpy as np

from train.split import assign_splits


def test_split_is_stable_under_appended_rows():
    first = assign_splits(np.arange(300), 0, 0.15, 0.15)
    grown = assign_splits(np.arange(400), 0, 0.15, 0.15)
    assert (grown[:300] == first).all()


def test_split_fractions_and_seed():
    s = assign_splits(np.arange(20000), 0, 0.1, 0.2)
    assert abs(np.mean(s == "test") - 0.2) < 0.02
    assert abs(np.mean(s == "validation") - 0.1) < 0.02
    other = assign_splits(np.arange(20000), 1, 0.1, 0.2)
    assert np.mean(other != s) > 0.3  # another split seed gives another split


def test_split_does_not_depend_on_row_order():
    keys = np.arange(500)
    perm = np.random.default_rng(0).permutation(500)
    assert (assign_splits(keys[perm], 3, 0.15, 0.15) == assign_splits(keys, 3, 0.15, 0.15)[perm]).all()
