import datetime as dt

import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import SPECS, run_cli
from train.data import load_rows, penguins_csv
from train.errors import InputError
from train.snapshot import content_sha256
from train.spec import load_spec
from train.sql_table import write_penguins_table

SPEC = load_spec(SPECS / "penguins.toml")


def test_csv_rows_are_typed_and_keyed_by_position():
    rows = load_rows(SPEC, None, None)
    c = rows.columns
    assert len(rows) == 344 and c["row_id"].tolist() == list(range(344))
    assert c["bill_length_mm"].dtype == np.float64 and np.isnan(c["bill_length_mm"]).sum() == 2
    assert c["year"].dtype == np.int64 and set(c["year"].tolist()) == {2007, 2008, 2009}
    assert (c["sex"] == "").sum() == 11  # NA in the CSV is the empty category
    assert c["species"][0] == "Adelie" and c["island"][0] == "Torgersen"


def test_rows_with_missing_label_are_dropped_and_counted():
    rows = load_rows(load_spec(SPECS / "penguins_body_mass.toml"), None, None)
    assert len(rows) == 342 and rows.dropped_missing_label == 2


@pytest.fixture
def sql_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    write_penguins_table(url)
    return url


def test_as_of_reads_the_same_rows_after_later_inserts(sql_url):
    first = load_rows(SPEC, sql_url, "2024-01-08T00:00:00")
    assert len(first) == 169 and first.columns["row_id"].max() == 168
    assert first.as_of == "2024-01-08T00:00:00"
    engine = sa.create_engine(sql_url)
    with engine.begin() as conn:  # rows appended after the as-of time
        conn.execute(
            sa.text(
                "INSERT INTO penguins (row_id, ingested_at, species, island, bill_length_mm, bill_depth_mm,"
                " flipper_length_mm, body_mass_g, sex, year) VALUES"
                " (1000, '2025-01-01 00:00:00.000000', 'Gentoo', 'Biscoe', 50, 15, 220, 5000, 'male', 2025)"
            )
        )
    engine.dispose()
    again = load_rows(SPEC, sql_url, "2024-01-08T00:00:00")
    assert content_sha256(again.columns, again.key) == content_sha256(first.columns, first.key)
    later = load_rows(SPEC, sql_url, "2025-06-01T00:00:00")
    assert len(later) == 345 and 1000 in later.columns["row_id"].tolist()


def test_as_of_with_timezone_is_converted_to_utc(sql_url):
    a = load_rows(SPEC, sql_url, "2024-01-08T02:00:00+02:00")
    assert len(a) == 169


def test_sql_rows_match_the_csv_rows(sql_url):
    sql = load_rows(SPEC, sql_url, "2030-01-01T00:00:00")
    csv = load_rows(SPEC, None, None)
    assert content_sha256(sql.columns, sql.key) == content_sha256(csv.columns, csv.key)


def _csv_with(tmp_path, edit):
    lines = penguins_csv().read_text().splitlines()
    lines = edit(lines)
    p = tmp_path / "edited.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize(
    ("make_source", "as_of", "phrase"),
    [
        (
            lambda tmp, url: str(_csv_with(tmp, lambda ls: [ls[0].replace("island", "isle"), *ls[1:]])),
            None,
            "column 'island' is missing",
        ),
        (
            lambda tmp, url: str(_csv_with(tmp, lambda ls: [*ls[:1], ls[1].replace("39.1", "abc"), *ls[2:]])),
            None,
            "column 'bill_length_mm' is declared numeric but row 0 holds 'abc'",
        ),
        (
            lambda tmp, url: str(_csv_with(tmp, lambda ls: [*ls[:1], ls[1].replace(",2007", ",2007.5"), *ls[2:]])),
            None,
            "column 'year' is declared integer",
        ),
        (lambda tmp, url: str(_csv_with(tmp, lambda ls: ls[:1])), None, "has no rows"),
        (
            lambda tmp, url: str(_csv_with(tmp, lambda ls: [ls[0]] + [x for x in ls[1:] if x.startswith("Adelie")])),
            None,
            "has a single class ('Adelie')",
        ),
        (lambda tmp, url: url, "2023-12-31T00:00:00", "no rows of table 'penguins'"),
        (lambda tmp, url: url, "not-a-time", "is not an ISO-8601 timestamp"),
        (lambda tmp, url: str(penguins_csv()), "2024-01-01", "--as-of needs a SQL source"),
        (lambda tmp, url: f"sqlite:///{tmp / 'missing.db'}", None, "does not exist"),
    ],
)
def test_bad_data_names_the_problem(tmp_path, sql_url, make_source, as_of, phrase):
    with pytest.raises(InputError) as e:
        load_rows(SPEC, make_source(tmp_path, sql_url), as_of)
    assert phrase in str(e.value)


def test_empty_sql_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    write_penguins_table(url, limit=0)
    with pytest.raises(InputError, match="is empty"):
        load_rows(SPEC, url, "2030-01-01")


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["--source", "{tmp}/missing.csv"],
        ["--source", "sqlite:///{tmp}/none.db"],
        ["--as-of", "2024-01-01"],
        ["--seed", "-3"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line_and_no_run(tmp_path, args):
    out = tmp_path / "runs"
    args = [a.format(tmp=tmp_path) for a in args]
    r = run_cli("train", "--spec", str(SPECS / "penguins.toml"), "--out", str(out), *args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("train: error: ") and r.stderr.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())
    assert not (tmp_path / "none.db").exists()


def test_cli_bad_spec_exits_2(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text((SPECS / "penguins.toml").read_text().replace("[training]", "[training]\nepoch = 3"))
    r = run_cli("train", "--spec", str(spec), "--out", str(tmp_path / "runs"))
    assert r.returncode == 2 and "unknown key 'epoch' in [training]" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_as_of_time_parsing_keeps_microseconds():
    from train.data import parse_as_of

    assert parse_as_of("2024-01-01T00:00:00.5+01:00") == dt.datetime(2023, 12, 31, 23, 0, 0, 500000)
