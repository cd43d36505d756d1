"""Training data on a PostgreSQL server: the as-of read, time zones, a large table read in bounded
memory, and the whole `python -m train` path (the throwaway server of tests.fixtures.postgres)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import tracemalloc

import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import SPECS, run_cli
from tests.fixtures.postgres import postgres_url  # noqa: F401 - the fixture
from train import data
from train.prepare import prepare
from train.snapshot import content_sha256
from train.spec import load_spec
from train.sql_table import write_penguins_table

SPEC = load_spec(SPECS / "penguins.toml")

INSERT_ONE = (
    "INSERT INTO {t} (row_id, ingested_at, species, island, bill_length_mm, bill_depth_mm, flipper_length_mm,"
    " body_mass_g, sex, year) VALUES ({k}, {ts}, 'Gentoo', 'Biscoe', 50, 15, 220, 5000, 'male', 2025)"
)


@pytest.fixture
def engine(postgres_url):  # noqa: F811
    e = sa.create_engine(postgres_url)
    yield e
    e.dispose()


def _table(engine, name, with_time_zone=False, rows=344):
    url = engine.url.render_as_string(hide_password=False)
    write_penguins_table(url, name)
    if with_time_zone:
        with engine.begin() as conn:  # the same instants, as timestamptz (stored times were UTC)
            conn.exec_driver_sql(
                f"ALTER TABLE {name} ALTER COLUMN ingested_at TYPE timestamptz USING ingested_at AT TIME ZONE 'UTC'"
            )
    return url


def _spec(table):
    return dataclasses.replace(SPEC, data=dataclasses.replace(SPEC.data, table=table))


def test_as_of_excludes_later_rows_and_matches_the_csv(engine):
    url = _table(engine, "penguins_asof")
    spec = _spec("penguins_asof")
    first = data.load_rows(spec, url, "2024-01-08T00:00:00")
    assert len(first) == 169 and first.columns["row_id"].max() == 168
    with engine.begin() as conn:  # appended after the as-of time
        conn.exec_driver_sql(INSERT_ONE.format(t="penguins_asof", k=1000, ts="'2025-01-01 00:00:00'"))
    again = data.load_rows(spec, url, "2024-01-08T00:00:00")
    assert content_sha256(again.columns, again.key) == content_sha256(first.columns, first.key)
    everything = data.load_rows(spec, url, "2024-12-31T00:00:00")
    csv = data.load_rows(SPEC, None, None)
    assert content_sha256(everything.columns, everything.key) == content_sha256(csv.columns, csv.key)


def test_the_read_is_one_repeatable_read_transaction(engine):
    """Rows committed while a read runs are not seen, even with an early timestamp; a later read as of
    the same time sees them: the one case an as-of read cannot exclude (see train.data)."""
    url = _table(engine, "penguins_rr")
    spec = _spec("penguins_rr")
    reading = data.Reading(spec, url, "2024-01-08T00:00:00", chunk_rows=20)
    chunks = iter(reading)
    seen = [next(chunks)]
    with engine.begin() as conn:  # a late commit with a timestamp before the as-of time
        conn.exec_driver_sql(INSERT_ONE.format(t="penguins_rr", k=5000, ts="'2024-01-02 00:00:00'"))
    seen += list(chunks)
    keys = [k for c in seen for k in c["row_id"].tolist()]
    assert len(keys) == 169 and "5000" not in keys
    later = data.load_rows(spec, url, "2024-01-08T00:00:00")
    assert len(later) == 170 and 5000 in later.columns["row_id"].tolist()


def test_a_timestamp_with_time_zone_is_compared_in_utc(engine):
    url = _table(engine, "penguins_tz", with_time_zone=True)
    with engine.begin() as conn:  # the server's and the session's zone must not matter
        conn.exec_driver_sql("ALTER DATABASE shipyard_test SET timezone TO 'Pacific/Auckland'")
    try:
        spec = _spec("penguins_tz")
        assert len(data.load_rows(spec, url, "2024-01-08T00:00:00")) == 169
        assert len(data.load_rows(spec, url, "2024-01-08T02:00:00+02:00")) == 169
        assert len(data.load_rows(spec, url, "2024-01-07T23:59:59")) == 168
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER DATABASE shipyard_test RESET timezone")


ROWS = 300_000


def _large_table(engine, name):
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        conn.exec_driver_sql(
            f"CREATE TABLE {name} (row_id bigint PRIMARY KEY, ingested_at timestamp NOT NULL, species text,"
            " island text, bill_length_mm double precision, bill_depth_mm double precision,"
            " flipper_length_mm double precision, body_mass_g double precision, sex text, year integer)"
        )
        conn.execute(
            sa.text(
                f"INSERT INTO {name} SELECT i, timestamp '2024-01-01' + i * interval '1 second',"
                " (ARRAY['Adelie','Chinstrap','Gentoo'])[i % 3 + 1],"
                " (ARRAY['Biscoe','Dream','Torgersen'])[i % 7 % 3 + 1],"
                " 30 + (i * 37 % 300) / 10.0, 13 + (i * 11 % 80) / 10.0, 170 + i * 13 % 60, 2700 + i * 97 % 3600,"
                f" CASE WHEN i % 11 = 0 THEN NULL WHEN i % 2 = 0 THEN 'male' ELSE 'female' END, 2007 + i % 3"
                f" FROM generate_series(0, {ROWS - 1}) AS i"
            )
        )


def test_a_large_table_is_read_in_bounded_memory(engine, tmp_path):
    _large_table(engine, "penguins_large")
    url = engine.url.render_as_string(hide_password=False)
    spec = _spec("penguins_large")

    tracemalloc.start()
    rows = data.load_rows(spec, url, "2030-01-01T00:00:00")
    in_memory = tracemalloc.get_traced_memory()[1]
    expected = content_sha256(rows.columns, rows.key)
    del rows
    tracemalloc.reset_peak()
    reading = data.Reading(spec, url, "2030-01-01T00:00:00", chunk_rows=5_000)
    prepared = prepare(spec, reading, tmp_path / "work", tmp_path / "snapshot.parquet", reading.counts)
    streamed = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert prepared.sha256 == expected and prepared.rows == ROWS
    assert sum(prepared.split_sizes.values()) == ROWS
    prepared.close()
    # Holding every row costs what the table is; streaming holds a block of rows (and 8 bytes a key).
    assert streamed < in_memory / 3, (streamed, in_memory)


def test_train_from_postgres_end_to_end(engine, tmp_path):
    url = _table(engine, "penguins")
    r = run_cli(
        "train",
        "--spec",
        str(SPECS / "penguins.toml"),
        "--source",
        url,
        "--as-of",
        "2030-01-01T00:00:00",
        "--out",
        str(tmp_path / "runs"),
        "--chunk-rows",
        "50",
        "--seed",
        "1",
    )
    assert r.returncode == 0, r.stderr
    csv = data.load_rows(SPEC, None, None)
    assert f"data_sha256    {content_sha256(csv.columns, csv.key)}" in r.stdout
    assert "read: 344 rows" in r.stderr  # progress through the project's logging


def test_shadow_logs_from_concurrent_writers(postgres_url):  # noqa: F811
    from shipyard_client import SQLAlchemySink

    writers, each = 4, 250
    start = threading.Barrier(writers)
    stats = []

    def write(w):
        sink = SQLAlchemySink(postgres_url, batch_size=16)
        start.wait()
        for i in range(each):
            sink.write(
                {
                    "request_id": f"{w}-{i}",
                    "time": dt.datetime.now(dt.UTC).timestamp(),
                    "method": "predict",
                    "inputs": {"x": np.float32(i)},
                    "primary_outputs": {"p": [i]},
                    "shadow_outputs": {"p": [i + 1]},
                }
            )
        stats.append(sink.close(timeout=30))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    e = sa.create_engine(postgres_url)
    with e.connect() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT request_id FROM shadow_log")]
    e.dispose()
    assert sorted(ids) == sorted(f"{w}-{i}" for w in range(writers) for i in range(each))
    assert all(s.get("records_dropped", 0) == 0 and s.get("records_failed", 0) == 0 for s in stats), stats
