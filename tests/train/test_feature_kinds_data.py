"""Reading text, images and tensors from a CSV or a SQL table: typed, snapshotted with their bytes,
required features dropped and counted, bad values named."""

import json

import numpy as np
import pytest
import sqlalchemy as sa

from train.data import load_rows
from train.errors import InputError
from train.images import encode_png
from train.snapshot import content_sha256, read_snapshot, write_snapshot
from train.spec import parse_spec

SPEC = """
[model]
name = "m"
task = "classification"
label = "y"
[data]
table = "t"
timestamp_column = "ts"
[[features]]
name = "img"
kind = "image"
height = 2
width = 2
channels = 1
[[features]]
name = "note"
kind = "text"
required = true
[[features]]
name = "grid"
kind = "numeric"
shape = [2, 2]
"""


def _png(v: int) -> bytes:
    return encode_png(np.full((2, 2), v, dtype=np.uint8))


@pytest.fixture
def csv_source(tmp_path):
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        (tmp_path / "imgs" / f"{i}.png").write_bytes(_png(40 * i))
    rows = [
        "row_id,img,note,grid,y",
        f'0,imgs/0.png,first note,"{json.dumps([[1, 2], [3, 4]])}",a',
        f'1,imgs/1.png,,"{json.dumps([1, 2, 3, None])}",b',  # no note: dropped (required)
        '2,,third note,"",a',  # no image, no grid: kept (neither is required)
        f'3,imgs/2.png,fourth,"{json.dumps([0, 0, 0, 0])}",b',
    ]
    path = tmp_path / "data.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_images_text_and_tensors_are_typed_and_required_rows_dropped(csv_source):
    rows = load_rows(parse_spec(SPEC), str(csv_source), None)
    c = rows.columns
    assert c["row_id"].tolist() == [0, 2, 3] and rows.dropped_missing_required == {"note": 1}
    assert c["img"][0] == _png(0) and c["img"][1] == b"" and c["img"][2] == _png(80)
    assert c["grid"].shape == (3, 2, 2) and c["grid"][0].tolist() == [[1, 2], [3, 4]] and np.isnan(c["grid"][1]).all()
    assert c["note"].tolist() == ["first note", "third note", "fourth"]


def test_the_snapshot_holds_the_image_bytes_so_an_edited_file_cannot_change_a_run(csv_source, tmp_path):
    spec = parse_spec(SPEC)
    rows = load_rows(spec, str(csv_source), None)
    sha = content_sha256(rows.columns, rows.key)
    write_snapshot(tmp_path / "s.parquet", rows.columns, rows.key, sha)
    (csv_source.parent / "imgs" / "0.png").write_bytes(_png(255))  # edited after the run
    cols, key, recorded = read_snapshot(tmp_path / "s.parquet")
    assert recorded == sha == content_sha256(cols, key)
    assert cols["img"][0] == _png(0) and cols["grid"].shape == (3, 2, 2)
    assert content_sha256(load_rows(spec, str(csv_source), None).columns, key) != sha  # the data did change


@pytest.mark.parametrize(
    "cell, phrase",
    [
        ("imgs/missing.png", "cannot read"),
        ("data.csv", "is not a PNG or JPEG file"),
    ],
)
def test_a_bad_image_cell_names_the_row(csv_source, cell, phrase):
    text = csv_source.read_text().replace("imgs/0.png", cell)
    csv_source.write_text(text)
    with pytest.raises(InputError, match=f"image 'img' of row 0.*{phrase}"):
        load_rows(parse_spec(SPEC), str(csv_source), None)


def test_a_tensor_cell_of_the_wrong_size_names_the_row(csv_source):
    csv_source.write_text(csv_source.read_text().replace(json.dumps([[1, 2], [3, 4]]), "[1, 2, 3]"))
    with pytest.raises(InputError, match=r"shape \[2, 2\] but row 0 holds .*3 numbers, the shape \[2, 2\] needs 4"):
        load_rows(parse_spec(SPEC), str(csv_source), None)


def test_a_sql_table_holds_the_image_bytes(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    engine = sa.create_engine(url)
    md = sa.MetaData()
    t = sa.Table(
        "t",
        md,
        sa.Column("row_id", sa.Integer, primary_key=True),
        sa.Column("img", sa.LargeBinary),
        sa.Column("note", sa.Text),
        sa.Column("grid", sa.Text),
        sa.Column("y", sa.Text),
        sa.Column("ts", sa.DateTime),
    )
    md.create_all(engine)
    import datetime as dt

    with engine.begin() as conn:
        for i in range(3):
            conn.execute(
                t.insert().values(
                    row_id=i, img=_png(i), note=f"n {i}", grid="[1,2,3,4]", y="ab"[i % 2], ts=dt.datetime(2024, 1, 1)
                )
            )
    rows = load_rows(parse_spec(SPEC), url, "2024-06-01T00:00:00")
    assert rows.columns["img"].tolist() == [_png(0), _png(1), _png(2)]
    engine.dispose()
