"""The two versions under test: the two newest under --model-base-path, or (without the option, as in
CI) two versions trained here with different seeds and exported, so the release check always runs."""

from dataclasses import dataclass
from pathlib import Path

import pytest

import modelbase
from train.data import penguins_csv


@dataclass
class Pair:
    baseline: Path
    candidate: Path
    data: Path


@pytest.fixture(scope="session")
def release_pair(request, tmp_path_factory):
    base = request.config.getoption("--model-base-path")
    if base:
        model_dir = Path(base) / request.config.getoption("--model-name")
        versions = [path for _, path in sorted(modelbase.scan_versions(model_dir).items())]
        if len(versions) < 2:
            pytest.fail(f"{model_dir} needs at least two published versions for a differential test")
        data = request.config.getoption("--diff-data") or penguins_csv()
        return Pair(versions[-2], versions[-1], Path(data))
    from export.pipeline import export_run
    from train.run import train_run
    from train.spec import load_spec

    tmp = tmp_path_factory.mktemp("release")
    spec = load_spec(Path(__file__).resolve().parents[2] / "specs" / "penguins.toml")
    first = train_run(spec.with_seed(42), None, None, tmp / "runs")
    second = train_run(spec.with_seed(7), None, None, tmp / "runs")
    a = export_run(first.path, tmp / "models")
    b = export_run(second.path, tmp / "models", force=True)  # the tests below judge it, not the gate
    return Pair(a.path, b.path, second.path)
