import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.tf1_models import build_tf1_model

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `python -m <args>` in a fresh process, as a user would."""
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def spec_text(name: str = "penguins.toml", **training: object) -> str:
    """A shipped spec's text with some [training] values replaced (e.g. fewer epochs for speed)."""
    import tomllib

    text = (SPECS / name).read_text()
    tomllib.loads(text)  # the shipped spec is valid as it is
    lines = text.splitlines()
    out, section = [], ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        key = stripped.split("=")[0].strip()
        if section == "[training]" and key in training:
            line = f"{key} = {training[key]!r}"
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.fixture
def fast_spec_file(tmp_path: Path) -> Path:
    p = tmp_path / "penguins_fast.toml"
    p.write_text(spec_text(epochs=4))
    return p


def _train(tmp_path_factory: pytest.TempPathFactory, text: str, seed: int | None = None):
    from train.run import train_run
    from train.spec import parse_spec

    spec = parse_spec(text)
    if seed is not None:
        spec = spec.with_seed(seed)
    return train_run(spec, None, None, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def penguins_run(tmp_path_factory):
    """A short training of the penguins classifier (shared by the export tests)."""
    return _train(tmp_path_factory, spec_text(epochs=6))


@pytest.fixture(scope="session")
def penguins_run_other_seed(tmp_path_factory):
    return _train(tmp_path_factory, spec_text(epochs=6), seed=1234)


@pytest.fixture(scope="session")
def penguins_worse_run(tmp_path_factory):
    """A deliberately worse classifier: one epoch at a tiny learning rate."""
    return _train(tmp_path_factory, spec_text(epochs=1, learning_rate=0.0005))


@pytest.fixture(scope="session")
def body_mass_run(tmp_path_factory):
    return _train(tmp_path_factory, spec_text("penguins_body_mass.toml", epochs=4))


@pytest.fixture(scope="session")
def exported(penguins_run, penguins_run_other_seed, body_mass_run, tmp_path_factory):
    """A pristine model base path: penguins v1 and v2 (another seed), penguins_body_mass v1, and the
    TF1-era model as tf1 v1. Tests copy it before changing anything."""
    from export.pipeline import export_run

    base = tmp_path_factory.mktemp("exported")
    export_run(penguins_run.path, base)
    export_run(penguins_run_other_seed.path, base, force=True)
    export_run(body_mass_run.path, base)
    build_tf1_model(base / "tf1" / "1")
    return base


def copy_base(exported: Path, dest: Path, keep: dict[str, list[int]]) -> Path:
    """A fresh model base path with only the given versions."""
    for name, versions in keep.items():
        for v in versions:
            shutil.copytree(exported / name / str(v), dest / name / str(v))
    return dest


# The fast lane (`make test-fast`: pytest -m "not slow") is every test that needs no server, no training
# and no database server. A test is `slow` when it uses one of these fixtures, or its module or the test
# itself is marked so (it trains, exports or starts a server inline).
SLOW_FIXTURES = frozenset(
    {
        "penguins_run",
        "penguins_run_other_seed",
        "penguins_worse_run",
        "body_mass_run",
        "exported",
        "first_run",
        "backend",
        "release_pair",
        "server",
        "published",
        "published_regression",
        "tf1_model",
        "runs",
        "served",
        "outside",
        "postgres_url",
        "clean_venv",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("differential", "the release check (tests/differential)")
    group.addoption("--model-base-path", help="compare the two newest versions published here")
    group.addoption("--model-name", default="penguins", help="the model under --model-base-path")
    group.addoption(
        "--diff-data",
        help="labelled rows (CSV/Parquet) or a training run directory; default: "
        "the penguins CSV (which includes training rows)",
    )
