import json

import numpy as np
import pytest

import modelbase
from monitor import shadow_report
from monitor.__main__ import main
from release import model_config
from shipyard_client import Client, Endpoint, JsonLinesSink, ShadowClient, SQLiteSink
from tests.conftest import copy_base
from tests.fixtures.servers import start_local


def _rec(p, s, pm, sm, error=None):
    return {
        "primary_version": 1,
        "shadow_version": 2,
        "primary_outputs": {"probabilities": [p]},
        "shadow_outputs": {"probabilities": [s]} if s is not None else None,
        "primary_ms": pm,
        "shadow_ms": sm,
        "error": error,
        "inputs": {},
    }


def test_numbers_match_a_hand_computed_log():
    recs = [
        _rec([0.9, 0.1], [0.8, 0.2], 1.0, 2.0),  # both class 0; |diff| 0.1, 0.1
        _rec([0.7, 0.3], [0.4, 0.6], 3.0, 4.0),  # flip 0 -> 1; |diff| 0.3, 0.3
        _rec([0.2, 0.8], [0.2, 0.8], 5.0, 6.0),  # both class 1; 0, 0
        _rec([0.6, 0.4], None, 7.0, None, "shadow: UnavailableError"),
    ]
    rep = shadow_report.report(recs, {"sampled": 4, "dropped": 1, "shadow_errors": 1}, ["a", "b"])
    assert rep["records"] == 4 and rep["compared"] == 3 and rep["errors"] == 1
    assert rep["agreement"] == pytest.approx(2 / 3)
    assert rep["flip_matrix"]["counts"] == [[1, 1], [0, 1]]
    assert rep["flip_rate_per_class"] == {"a": 0.5, "b": 0.0}
    assert rep["score_difference"]["mean"] == pytest.approx((0.1 + 0.1 + 0.3 + 0.3) / 6)
    assert rep["score_difference"]["max"] == pytest.approx(0.3)
    assert rep["latency"]["primary"]["p50_ms"] == pytest.approx(4.0)  # median of 1, 3, 5, 7
    assert rep["latency"]["shadow"]["p50_ms"] == pytest.approx(4.0)  # median of 2, 4, 6
    assert rep["client"]["dropped"] == 1


def test_regression_numbers():
    recs = [
        {
            "primary_outputs": {"predictions": [10.0, 20.0]},
            "shadow_outputs": {"predictions": [11.0, 17.0]},
            "primary_ms": 1.0,
            "shadow_ms": 1.0,
        }
    ]
    rep = shadow_report.report(recs)
    assert rep["task"] == "regression" and rep["mean_difference"] == pytest.approx(-1.0)
    assert rep["mae"] == pytest.approx(2.0) and rep["rmse"] == pytest.approx(np.sqrt(5.0))


def test_shadow_client_against_stable_and_canary_then_the_report(exported, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1, 2]})
    modelbase.write_config(base, model_config.build(base, {"penguins": {"stable": 1, "canary": 2}}))
    server = start_local([f"--model_config_file={base / 'models.config'}"], tmp_path)
    try:
        with Client(server.target, validate=True) as client:
            sc = ShadowClient(
                Endpoint(client, "penguins", label="stable"),
                Endpoint(client, "penguins", label="canary"),
                SQLiteSink(tmp_path / "shadow.db"),
            )
            row = {
                "island": ["Dream"],
                "sex": ["female"],
                "year": [2007],
                "bill_length_mm": [46.5],
                "bill_depth_mm": [17.9],
                "flipper_length_mm": [192.0],
                "body_mass_g": [3500.0],
            }
            answers = [sc.predict(dict(row, bill_length_mm=[35.0 + i])) for i in range(30)]
            sc.close()
        assert {a.version for a in answers} == {1}  # the caller always gets stable's answer
        code = main(
            [
                "shadow-report",
                "--db",
                str(tmp_path / "shadow.db"),
                "--classes",
                "Adelie,Chinstrap,Gentoo",
                "--out",
                str(tmp_path / "report"),
            ]
        )
        assert code == 0
        rep = json.loads((tmp_path / "report" / "shadow_report.json").read_text())
        assert rep["records"] == 30 and rep["primary_versions"] == [1] and rep["shadow_versions"] == [2]
        assert rep["task"] == "classification" and 0.0 <= rep["agreement"] <= 1.0
        assert (tmp_path / "report" / "shadow_report.png").read_bytes()[:4] == b"\x89PNG"
    finally:
        server.stop()


def test_jsonl_log_works_too(tmp_path):
    with JsonLinesSink(tmp_path / "s.jsonl") as sink:
        sink.write(_rec([0.9, 0.1], [0.1, 0.9], 1.0, 1.0) | {"request_id": "x", "time": 1.0})
        sink.record_stats(1, 0, 0)
    rep = shadow_report.report_from(tmp_path / "s.jsonl")
    assert rep["records"] == 1 and rep["agreement"] == 0.0 and rep["client"]["sampled"] == 1


def test_missing_log_is_exit_2(tmp_path, capsys):
    assert main(["shadow-report", "--db", str(tmp_path / "nope.db")]) == 2
    assert "no shadow log" in capsys.readouterr().err


def test_the_report_names_classes_from_what_the_records_hold(tmp_path):
    recs = []
    for i, name in ((0, "Adelie"), (1, "Chinstrap"), (2, "Gentoo")):
        p = [0.1, 0.1, 0.1]
        p[i] = 0.8
        r = _rec(p, p, 1.0, 1.0)
        r["primary_outputs"] |= {"class_ids": [i], "classes": [name]}
        recs.append(r)
    rep = shadow_report.report(recs)
    assert rep["flip_matrix"]["rows_primary_columns_shadow"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert list(rep["flip_rate_per_class"]) == ["Adelie", "Chinstrap", "Gentoo"]
    shadow_report.plot(rep, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
