import json

import numpy as np
import pytest

from export.pipeline import export_run
from serving.servable import LoadError, Servable
from serving.warmup import WARMUP_PATH, read_records, replay


@pytest.fixture(scope="module")
def published(penguins_run, tmp_path_factory):
    return export_run(penguins_run.path, tmp_path_factory.mktemp("models"))


def test_warmup_file_parses_as_prediction_logs_and_replays(published):
    from tensorflow_serving.apis import prediction_log_pb2

    records = read_records(published.path / WARMUP_PATH)
    kinds = []
    for raw in records:
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(raw)
        kinds.append(log.WhichOneof("log_type"))
        if kinds[-1] == "predict_log":
            req = log.predict_log.request
            assert req.model_spec.name == "penguins" and req.model_spec.signature_name == "serving_default"
            assert set(req.inputs) >= {"island", "bill_length_mm", "year"}
        else:
            assert log.classify_log.request.model_spec.signature_name == "classification"
            assert len(log.classify_log.request.input.example_list.examples) == 4
    assert kinds == ["predict_log", "classify_log"] * 4
    s = Servable.load("penguins", 1, published.path)
    try:
        assert replay(s) == 8
    finally:
        s.close()


def test_tfrecord_framing_is_what_tf_serving_reads(published):
    """Check the file's framing by hand: uint64 length, masked CRC32C of it, data, masked CRC32C."""
    import struct

    def crc32c(data: bytes) -> int:
        crc = 0xFFFFFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
        return crc ^ 0xFFFFFFFF

    def masked(data: bytes) -> int:
        c = crc32c(data)
        return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    raw = (published.path / WARMUP_PATH).read_bytes()
    pos, n = 0, 0
    while pos < len(raw):
        (length,) = struct.unpack("<Q", raw[pos : pos + 8])
        (len_crc,) = struct.unpack("<I", raw[pos + 8 : pos + 12])
        assert len_crc == masked(raw[pos : pos + 8])
        data = raw[pos + 12 : pos + 12 + length]
        (data_crc,) = struct.unpack("<I", raw[pos + 12 + length : pos + 16 + length])
        assert data_crc == masked(data)
        pos += 16 + length
        n += 1
    assert n == 8 and pos == len(raw)


def test_a_corrupt_warmup_file_fails_the_load(published, tmp_path):
    import shutil

    copy = shutil.copytree(published.path, tmp_path / "1")
    w = copy / WARMUP_PATH
    data = bytearray(w.read_bytes())
    data[20] ^= 0xFF
    w.write_bytes(bytes(data))
    s = Servable.load("penguins", 1, copy)
    try:
        with pytest.raises(LoadError, match="warmup"):
            replay(s)
    finally:
        s.close()


def test_model_card(published, penguins_run):
    card = json.loads((published.path / "assets.extra/model_card.json").read_text())
    assert card["name"] == "penguins" and card["version"] == published.version
    run = card["run"]
    for k in ("seed", "data_sha256", "weights_sha256", "metrics"):
        assert run[k] == penguins_run.manifest[k]
    schema = {f["name"]: f for f in card["input_schema"]}
    assert schema["island"]["dtype"] == "DT_STRING" and set(schema["island"]["vocabulary"]) == {
        "Biscoe",
        "Dream",
        "Torgersen",
    }
    assert schema["year"]["dtype"] == "DT_INT64" and schema["bill_length_mm"]["dtype"] == "DT_FLOAT"
    lo, hi = schema["flipper_length_mm"]["range"]
    assert 170 <= lo < hi <= 235
    assert set(card["signatures"]) == {"serving_default", "classification"}
    st = card["training_statistics"]
    n_train = penguins_run.manifest["split_sizes"]["train"]
    bl = st["bill_length_mm"]
    assert sum(bl["counts"]) + round(bl["missing_rate"] * n_train) == n_train
    assert len(bl["counts"]) == len(bl["bin_edges"]) - 1
    assert np.all(np.diff(bl["bin_edges"]) > 0)
    sex = st["sex"]
    assert sum(sex["frequencies"].values()) + round(sex["missing_rate"] * n_train) == n_train
    assert card["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
