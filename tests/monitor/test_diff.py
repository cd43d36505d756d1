import json

import modelbase
from monitor.__main__ import main
from release import model_config
from tests.conftest import copy_base
from tests.fixtures.servers import start_local


def test_live_diff_exit_codes(exported, penguins_run, penguins_worse_run, tmp_path):
    from export.pipeline import export_run

    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    export_run(penguins_worse_run.path, base, force=True)  # version 2: the deliberately worse model
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
        # version 2 is a worse model than the export gate lets through (published with --force)
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
    rep = json.loads((tmp_path / "diff_report.json").read_text())
    gate = json.loads((exported / "penguins" / "2" / "assets.extra" / "differential_report.json").read_text())
    assert rep["verdict"] == gate["verdict"] and code == (0 if gate["verdict"] == "pass" else 1)
    assert rep["metrics"]["delta"] == gate["metrics"]["delta"]  # same rows, same numbers as the gate
    assert rep["flip_matrix"] == gate["flip_matrix"]


def test_bad_diff_arguments_are_exit_2(tmp_path, capsys):
    assert main(["diff", "--data", str(tmp_path)]) == 2
    assert "give --target" in capsys.readouterr().err


def test_live_diff_fits_a_server_whose_batching_caps_the_batch(exported, penguins_run, tmp_path, capsys):
    base = copy_base(exported, tmp_path / "models", {"penguins": [1, 2]})
    modelbase.write_config(base, model_config.build(base, {"penguins": {"stable": 1, "canary": 2}}))
    batching = tmp_path / "batching.config"
    batching.write_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 0 }\nnum_batch_threads { value: 2 }\n"
    )
    server = start_local(
        [
            f"--model_config_file={base / 'models.config'}",
            "--enable_batching",
            f"--batching_parameters_file={batching}",
        ],
        tmp_path,
    )
    try:
        args = ["diff", "--target", server.target, "--model", "penguins", "--card", str(base / "penguins" / "1")]
        args += ["--data", str(penguins_run.path), "--baseline", "stable", "--candidate", "stable"]
        assert main([*args, "--out", str(tmp_path / "out")]) == 0
        rep = json.loads((tmp_path / "out" / "diff_report.json").read_text())
        assert rep["rows"] > 8 and rep["agreement"] == 1.0  # every row, in batches of at most 8
    finally:
        server.stop()
    capsys.readouterr()
    # The server gone: one line and the exit code for "the server", not a traceback.
    assert main([*args, "--out", str(tmp_path / "gone")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("monitor: the server:") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
