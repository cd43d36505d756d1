"""Dockerfile.serving checked statically (no Docker engine here): hadolint, the pinned tag, ports,
paths and flags against the Makefile, the flag parser and the config generator."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import modelbase
from release import model_config
from serving import config as cfg
from serving import flags
from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile.serving").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


def entrypoint_flags() -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    (entry,) = re.findall(r"^ENTRYPOINT \[(.*)\]$", joined, re.M)
    (cmd,) = re.findall(r"^CMD \[(.*)\]$", joined, re.M)
    words = re.findall(r'"([^"]*)"', entry) + re.findall(r'"([^"]*)"', cmd)
    assert words[0] == "/usr/bin/tensorflow_model_server"
    return words[1:]


def test_hadolint_passes():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    r = subprocess.run([hadolint, str(ROOT / "Dockerfile.serving")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_tf_serving_release_is_pinned_and_matches_the_exporting_tensorflow():
    tags = re.findall(r"^FROM tensorflow/serving:(\S+)", DOCKERFILE, re.M)
    assert tags == ["2.21.0"]
    tf_version = re.search(r"^tensorflow==(\S+)$", (ROOT / "requirements/lock.txt").read_text(), re.M)[1]
    assert tuple(map(int, tags[0].split(".")[:2])) >= tuple(map(int, tf_version.split(".")[:2]))
    assert "latest" not in DOCKERFILE.split("FROM tensorflow/serving:")[1].split()[0]


def test_ports_match_the_makefile():
    assert "EXPOSE 8500 8501" in DOCKERFILE
    f = entrypoint_flags()
    assert "--port=8500" in f and "--rest_api_port=8501" in f
    assert "-p $(GRPC_PORT):8500 -p $(REST_PORT):8501" in MAKEFILE


def test_every_flag_is_one_the_local_server_takes_and_the_configs_parse():
    words = entrypoint_flags()
    parsed = flags.parse(
        [*words, "--model_base_path=/unused"] if not any(w.startswith("--model_config_file=") for w in words) else words
    )
    assert parsed.enable_batching is True
    copied = re.search(r"^COPY (serving/configs/\S+) (serving/configs/\S+) (/etc/shipyard/)$", DOCKERFILE, re.M)
    assert copied, "the batching and monitoring configs are copied into the image"
    in_image = {f"/etc/shipyard/{Path(p).name}": ROOT / p for p in copied.groups()[:2]}
    assert in_image[parsed.batching_parameters_file].is_file()
    assert cfg.batching_parameters(in_image[parsed.batching_parameters_file]).max_batch_size >= 1
    mon = cfg.monitoring(in_image[parsed.monitoring_config_file])
    assert mon.prometheus and mon.path == "/monitoring/prometheus/metrics"
    assert parsed.model_config_file == f"/models/{modelbase.CONFIG_FILE}"  # the generator's file name


@pytest.mark.slow
def test_make_serve_docker_mounts_the_base_path_where_models_config_points(tmp_path):
    assert '-v "$(abspath $(MODELS)):$(abspath $(MODELS))"' in MAKEFILE
    assert "--model_config_file=$(abspath $(MODELS))/models.config" in MAKEFILE
    engine = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    if not engine:  # with an engine the target would start serving in the foreground
        r = subprocess.run(
            ["make", "-s", "serve-docker", f"MODELS={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert r.returncode != 0 and "needs a running Docker engine" in r.stderr


def _base(tmp_path: Path) -> Path:
    for name, versions in {"penguins": [1, 2, 3], "other": [5]}.items():
        for v in versions:
            (tmp_path / name / str(v)).mkdir(parents=True)
    (tmp_path / "penguins" / ".staging-9-x").mkdir()
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_generator_policies_labels_and_prefix(tmp_path):
    base = _base(tmp_path)
    c = model_config.build(base, {})
    got = {m.name: m for m in c.model_config_list.config}
    assert set(got) == {"penguins", "other"}
    assert got["penguins"].model_version_policy.latest.num_versions == 1
    assert got["penguins"].base_path == str((base / "penguins").resolve())
    c = model_config.build(base, {"penguins": {"stable": 1, "canary": 2}}, path_prefix="/models")
    p = {m.name: m for m in c.model_config_list.config}["penguins"]
    assert list(p.model_version_policy.specific.versions) == [1, 2, 3]  # labelled ones and the newest
    assert dict(p.version_labels) == {"stable": 1, "canary": 2} and p.base_path == "/models/penguins"
    path = modelbase.write_config(base, c)
    assert cfg.model_server_config(path).model_config_list.config[0].name in {"penguins", "other"}
    assert model_config.path_prefix_of(modelbase.read_config(base), base) == "/models"


def test_label_and_rollback_through_the_file(tmp_path):
    base = _base(tmp_path)
    modelbase.write_config(base, model_config.build(base, {}))
    assert (
        model_config.main(
            ["label", "--model-base-path", str(base), "--name", "penguins", "--label", "stable", "--version", "2"]
        )
        == 0
    )
    assert model_config.current_labels(modelbase.read_config(base))["penguins"] == {"stable": 2}
    # stable was never anything but 2: there is no previous stable to go back to (not "version 1")
    assert model_config.main(["rollback", "--model-base-path", str(base), "--name", "penguins"]) == 2
    for version in ("1", "2"):
        args = ["label", "--model-base-path", str(base), "--name", "penguins", "--label", "stable"]
        assert model_config.main([*args, "--version", version]) == 0
    assert model_config.main(["rollback", "--model-base-path", str(base), "--name", "penguins"]) == 0
    assert model_config.current_labels(modelbase.read_config(base))["penguins"] == {"stable": 1}
    assert (
        model_config.main(
            ["label", "--model-base-path", str(base), "--name", "penguins", "--label", "stable", "--version", "7"]
        )
        == 2
    )


def test_canary_needs_a_version():
    r = subprocess.run(["make", "-s", "canary"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "usage: make" in r.stderr


def test_promote_without_a_canary_is_refused_with_one_line(tmp_path):
    base = _base(tmp_path)
    modelbase.write_config(base, model_config.build(base, {"penguins": {"stable": 1}}))
    before = (base / "models.config").read_bytes()
    assert model_config.main(["promote", "--model-base-path", str(base), "--name", "penguins"]) == 2
    assert (base / "models.config").read_bytes() == before
