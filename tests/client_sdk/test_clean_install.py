"""`pip install ./client_sdk` into a clean virtual environment without TensorFlow: the SDK's unit tests
pass there, and the README's example runs there against the local server."""

import re
import subprocess
import venv

import pytest

import modelbase
from release import model_config
from tests.conftest import ROOT, copy_base
from tests.fixtures.servers import start_local


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory):
    where = tmp_path_factory.mktemp("sdk-venv")
    venv.create(where, with_pip=True)
    py = where / "bin" / "python"
    r = subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"{ROOT / 'client_sdk'}[test,pandas]",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return py


def test_no_tensorflow_in_the_clean_venv(clean_venv):
    r = subprocess.run(
        [
            str(clean_venv),
            "-c",
            "import importlib.util as u; print(u.find_spec('tensorflow'), u.find_spec('tensorflow_serving'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert r.stdout.split() == ["None", "None"]


def test_sdk_unit_tests_pass_without_tensorflow(clean_venv, tmp_path):
    r = subprocess.run(
        [str(clean_venv), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "client_sdk/tests")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-3000:]
    assert re.search(r"\d+ passed", r.stdout)


def test_the_readme_example_runs_without_tensorflow(clean_venv, exported, tmp_path):
    readme = (ROOT / "README.md").read_text()
    (snippet,) = re.findall(r"<!-- sdk-example -->\n```python\n(.*?)```", readme, re.S)
    assert len(snippet.strip().splitlines()) <= 6 + 1  # six lines of code, and the blank line after the imports
    base = copy_base(exported, tmp_path / "models", {"penguins": [1]})
    modelbase.write_config(base, model_config.build(base, {"penguins": {"stable": 1}}))
    server = start_local([f"--model_config_file={base / 'models.config'}"], tmp_path)
    try:
        code = snippet.replace("127.0.0.1:8500", server.target)
        r = subprocess.run(
            [str(clean_venv), "-c", code + "\nimport sys\nassert 'tensorflow' not in sys.modules\n"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        assert "Chinstrap" in r.stdout and "version 1" in r.stdout
    finally:
        server.stop()
