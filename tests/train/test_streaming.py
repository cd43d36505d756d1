"""Training that streams: chunked reading, the key-ordered snapshot pass, split stores, the seeded
permutation, statistics by fixed blocks, and what a source that changes or breaks the spec gets."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

from bench.train_scale import write_rows
from tests.conftest import SPECS, run_cli
from train import data, prepare
from train.errors import InputError
from train.model import feature_stats, split_stats
from train.snapshot import content_sha256, read_snapshot
from train.spec import load_spec
from train.store import ColumnWriter

SPEC = load_spec(SPECS / "penguins.toml")
FAST = dataclasses.replace(SPEC, training=dataclasses.replace(SPEC.training, epochs=3))


@pytest.mark.slow
def test_a_tiny_chunk_size_gives_the_weights_of_one_large_chunk(tmp_path):
    from train.run import train_run

    tiny = train_run(FAST, None, None, tmp_path / "a", chunk_rows=7)
    large = train_run(FAST, None, None, tmp_path / "b", chunk_rows=1_000_000)
    assert tiny.manifest["data_sha256"] == large.manifest["data_sha256"]
    assert tiny.manifest["data_sha256"] == "d2be0b1a4d2c62c372b0ba05e5b39def69ea9bf2f96a0c7ff3f2f570f53b5f51"
    assert tiny.manifest["weights_sha256"] == large.manifest["weights_sha256"]
    assert tiny.manifest["feature_stats"] == large.manifest["feature_stats"]
    assert not any(p.name.startswith(".") for p in tiny.path.iterdir())  # the work folder is gone


def test_a_csv_out_of_key_order_gives_the_snapshot_of_the_sorted_one(tmp_path):
    lines = data.penguins_csv().read_text().splitlines()
    header, body = lines[0], lines[1:]
    keyed = [f"{i * 7 % 1000},{r}" for i, r in enumerate(body)]  # a key column of its own, not in file order
    sorted_csv = tmp_path / "sorted.csv"
    sorted_csv.write_text("\n".join([f"row_id,{header}", *sorted(keyed, key=lambda r: int(r.split(",")[0]))]) + "\n")
    shuffled = tmp_path / "shuffled.csv"
    rng = np.random.default_rng(0)
    shuffled.write_text("\n".join([f"row_id,{header}", *rng.permutation(keyed).tolist()]) + "\n")
    hashes = []
    for path in (sorted_csv, shuffled):
        reading = data.Reading(SPEC, str(path), None, chunk_rows=50)
        p = prepare.prepare(
            SPEC, reading, tmp_path / f"work-{path.stem}", tmp_path / f"{path.stem}.parquet", reading.counts
        )
        hashes.append(p.sha256)
        cols, key, recorded = read_snapshot(tmp_path / f"{path.stem}.parquet")
        assert recorded == p.sha256 == content_sha256(cols, key)
        assert cols[key].tolist() == sorted(cols[key].tolist())
        p.close()
    assert hashes[0] == hashes[1]


def test_a_csv_appended_to_while_it_is_read_is_refused(tmp_path):
    path = tmp_path / "growing.csv"
    path.write_text(data.penguins_csv().read_text())
    chunks = iter(data.Reading(SPEC, str(path), None, chunk_rows=100))
    next(chunks)
    with open(path, "a") as fh:
        fh.write("Adelie,Torgersen,39.1,18.7,181,3750,male,2007\n")
    with pytest.raises(InputError, match="changed while it was read"):
        list(chunks)


def test_a_duplicate_key_in_another_chunk_is_refused_by_name(tmp_path):
    lines = data.penguins_csv().read_text().splitlines()
    body = [f"{i},{r}" for i, r in enumerate(lines[1:])]
    body.append(f"3,{lines[1]}")  # key 3 again, hundreds of rows later
    path = tmp_path / "dup.csv"
    path.write_text("\n".join([f"row_id,{lines[0]}", *body]) + "\n")
    reading = data.Reading(SPEC, str(path), None, chunk_rows=10)
    with pytest.raises(InputError, match=r"key column 'row_id' is not unique .*\(3 repeats\)"):
        prepare.prepare(SPEC, reading, tmp_path / "work", None, reading.counts)
    assert not (tmp_path / "work").exists()


def test_a_bad_value_in_a_late_chunk_names_its_row_and_column(tmp_path):
    lines = data.penguins_csv().read_text().splitlines()
    fields = lines[300].split(",")  # the row at position 299
    fields[lines[0].split(",").index("bill_length_mm")] = "forty"
    lines[300] = ",".join(fields)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"column 'bill_length_mm' is declared numeric but row 299 holds 'forty'"):
        list(data.Reading(SPEC, str(path), None, chunk_rows=16))


def test_the_permutation_is_seeded_per_epoch_and_needs_no_buffer():
    from train.fit import permutation

    n = 1000
    whole = permutation(n, 42, 0, 0, n)
    assert sorted(whole.tolist()) == list(range(n))
    pieces = np.concatenate([permutation(n, 42, 0, a, min(n, a + 64)) for a in range(0, n, 64)])
    assert pieces.tolist() == whole.tolist()  # computed by parts, the same order
    assert permutation(n, 42, 0, 0, n).tolist() == whole.tolist()
    assert permutation(n, 42, 1, 0, n).tolist() != whole.tolist()  # a new order each epoch
    assert permutation(n, 7, 0, 0, n).tolist() != whole.tolist()


def test_statistics_from_a_store_equal_those_of_the_column_in_memory(tmp_path):
    rows = data.load_rows(SPEC, None, None)
    w = ColumnWriter(
        tmp_path / "store",
        {
            f.name: ("float64" if f.kind == "numeric" else "int64" if f.kind == "integer" else "string")
            for f in SPEC.features
        },
    )
    for a in range(0, len(rows), 33):
        w.append({f.name: rows.columns[f.name][a : a + 33] for f in SPEC.features})
    store = w.close()
    from_store = split_stats(SPEC.features, store)
    for f in SPEC.features:
        assert vars(from_store[f.name]) == vars(feature_stats(f, rows.columns[f.name]))
    store.close()


def test_many_blocks_combine_to_the_whole_column():
    from train.model import STATS_BLOCK_ROWS, Moments

    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 2.0, 3 * STATS_BLOCK_ROWS + 17)
    x[::13] = np.nan
    m = Moments()
    for a in range(0, len(x), STATS_BLOCK_ROWS):
        m.update(x[a : a + STATS_BLOCK_ROWS])
    n, mean, var = m.result()
    present = x[~np.isnan(x)]
    assert n[0] == len(present)
    assert mean[0] == pytest.approx(present.mean(), rel=1e-12) and var[0] == pytest.approx(present.var(), rel=1e-12)


@pytest.mark.slow
def test_reading_a_large_csv_holds_a_chunk_not_the_rows(tmp_path):
    path = tmp_path / "large.csv"
    write_rows(path, 150_000)
    spec = dataclasses.replace(SPEC, data=dataclasses.replace(SPEC.data, key="row_id"))
    tracemalloc.start()
    rows = data.load_rows(spec, str(path), None)
    in_memory = tracemalloc.get_traced_memory()[1]
    expected = content_sha256(rows.columns, rows.key)
    del rows
    tracemalloc.reset_peak()
    reading = data.Reading(spec, str(path), None, chunk_rows=4_096)
    p = prepare.prepare(spec, reading, tmp_path / "work", tmp_path / "s.parquet", reading.counts)
    streamed = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert p.sha256 == expected and p.rows == 150_000
    p.close()
    assert streamed < in_memory / 3, (streamed, in_memory)


@pytest.mark.slow
def test_progress_is_logged_and_quiet_with_q(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text((SPECS / "penguins.toml").read_text().replace("epochs = 40", "epochs = 2"))
    r = run_cli("train", "--spec", str(spec), "--out", str(tmp_path / "runs"), "--chunk-rows", "100")
    assert r.returncode == 0, r.stderr
    assert "read: 344 rows (" in r.stderr and "rows/s" in r.stderr
    assert "snapshot and split: 344 of 344 rows" in r.stderr
    assert "epoch 2/2: 238 rows (" in r.stderr
    q = run_cli("train", "-q", "--spec", str(spec), "--out", str(tmp_path / "runs"))
    assert q.returncode == 0 and "rows/s" not in q.stderr


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["0", "-5"])
def test_a_chunk_size_below_one_is_refused(tmp_path, bad):
    r = run_cli("train", "--spec", str(SPECS / "penguins.toml"), "--out", str(tmp_path), "--chunk-rows", bad)
    assert r.returncode == 2 and "--chunk-rows must be at least 1" in r.stderr


def test_wide_rows_are_read_in_smaller_chunks(monkeypatch):
    monkeypatch.setattr(data, "CHUNK_BYTES", 4_000)  # as if each row were a large image
    chunks = list(data.Reading(SPEC, None, None, chunk_rows=200))
    sizes = [len(c["row_id"]) for c in chunks]
    assert sum(sizes) == 344 and sizes[0] == 200 and max(sizes[1:]) < 100  # cut to the budget after the first
    assert all(data.chunk_bytes(c) < 3 * 4_000 for c in chunks[1:])


def test_a_parquet_source_gives_the_rows_of_the_csv(tmp_path):
    import pandas as pd

    path = tmp_path / "penguins.parquet"
    pd.read_csv(data.penguins_csv()).to_parquet(path)
    from_parquet = data.load_rows(SPEC, str(path), None, chunk_rows=100)
    csv = data.load_rows(SPEC, None, None)
    assert content_sha256(from_parquet.columns, from_parquet.key) == content_sha256(csv.columns, csv.key)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="is not a Parquet file"):
        data.load_rows(SPEC, str(tmp_path / "broken.parquet"), None)


def test_a_run_of_the_earlier_shuffle_says_why_it_does_not_reproduce(tmp_path):
    from train import manifest

    m = {"shuffle": None, "packages": {}, "machine": {}}
    assert any("shuffle buffer (older version) -> index_shuffle" in d for d in manifest.differences(m))
    assert manifest.differences({**m, "shuffle": manifest.SHUFFLE}) == []
