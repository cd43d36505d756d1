import hashlib

import numpy as np

from tests.conftest import SPECS
from train.data import load_rows
from train.snapshot import canonical_lines, content_sha256, read_snapshot, write_snapshot
from train.spec import load_spec


def _table():
    return {
        "row_id": np.array([0, 1, 2], dtype=np.int64),
        "x": np.array([1.5, np.nan, 1e-7], dtype=np.float64),
        "s": np.array(["a", "", 'é"q'], dtype=object),
        "n": np.array([2007, -1, 3], dtype=np.int64),
    }


def test_canonical_encoding_is_exactly_as_documented():
    expected = (
        '[["row_id","int64"],["n","int64"],["s","string"],["x","float64"]]\n'
        '[0,2007,"a",1.5]\n'
        '[1,-1,"",null]\n'
        '[2,3,"é\\"q",1e-07]\n'
    )
    assert "\n".join(canonical_lines(_table(), "row_id")) + "\n" == expected
    assert content_sha256(_table(), "row_id") == hashlib.sha256(expected.encode()).hexdigest()


def test_hash_ignores_column_dict_order_but_sees_every_value():
    t = _table()
    reordered = {k: t[k] for k in reversed(list(t))}
    assert content_sha256(reordered, "row_id") == content_sha256(t, "row_id")
    changed = _table()
    changed["x"][0] = 1.5000000000000002  # one ulp
    assert content_sha256(changed, "row_id") != content_sha256(t, "row_id")
    nan_vs_value = _table()
    nan_vs_value["x"][1] = 0.0
    assert content_sha256(nan_vs_value, "row_id") != content_sha256(t, "row_id")


def test_parquet_round_trip_keeps_the_hash(tmp_path):
    t = _table()
    sha = content_sha256(t, "row_id")
    write_snapshot(tmp_path / "s.parquet", t, "row_id", sha)
    cols, key, recorded = read_snapshot(tmp_path / "s.parquet")
    assert key == "row_id" and recorded == sha
    assert content_sha256(cols, key) == sha
    assert np.isnan(cols["x"][1]) and cols["s"][1] == ""


def test_penguins_csv_hash_is_pinned():
    # A change to the canonical encoding (or to the shipped CSV) shows here first: every recorded
    # data_sha256 of earlier runs would stop matching their snapshots.
    rows = load_rows(load_spec(SPECS / "penguins.toml"), None, None)
    assert len(rows) == 344
    assert content_sha256(rows.columns, rows.key) == "d2be0b1a4d2c62c372b0ba05e5b39def69ea9bf2f96a0c7ff3f2f570f53b5f51"
