import json

import modelbase
from monitor.__main__ import main
from serving import model_config
from tests.conftest import copy_base
from tests.fixtures.servers import start_local


def test_live_diff_exit_codes(exported, penguins_run, tmp_path):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1, 2]})
    modelbase.write_config(base, model_config.build(base, {"penguins": {"stable": 1, "canary": 2}}))
    server = start_local([f"--model_config_file={base / 'models.config'}"], tmp_path)
    try:
        common = [
            "diff",
            "--target",
            server.target,
            "--model",
            "penguins",
            "--card",
            str(base / "penguins" / "1"),
            "--data",
            str(penguins_run.path),
        ]
        assert main([*common, "--baseline", "stable", "--candidate", "1", "--out", str(tmp_path / "same")]) == 0
        # version 2 is the worse model the export gate refused (published with --force)
        assert main([*common, "--baseline", "stable", "--candidate", "canary", "--out", str(tmp_path / "worse")]) == 1
        rep = json.loads((tmp_path / "worse" / "diff_report.json").read_text())
        assert rep["verdict"] == "fail" and any("accuracy drop" in f for f in rep["failures"])
        assert (rep["baseline_version"], rep["candidate_version"]) == (1, 2)
    finally:
        server.stop()


def test_disk_diff_matches_the_export_gate(exported, penguins_run, tmp_path):
    code = main(
        [
            "diff",
            "--baseline-dir",
            str(exported / "penguins" / "1"),
            "--candidate-dir",
            str(exported / "penguins" / "2"),
            "--data",
            str(penguins_run.path),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 1
    rep = json.loads((tmp_path / "diff_report.json").read_text())
    gate = json.loads((exported / "penguins" / "2" / "assets.extra" / "differential_report.json").read_text())
    assert rep["metrics"]["delta"] == gate["metrics"]["delta"]  # same rows, same numbers as the gate
    assert rep["flip_matrix"] == gate["flip_matrix"]


def test_bad_diff_arguments_are_exit_2(tmp_path, capsys):
    assert main(["diff", "--data", str(tmp_path)]) == 2
    assert "give --target" in capsys.readouterr().err
