import shutil
from pathlib import Path

import pytest

from tests.fixtures.servers import docker_unavailable_reason, start_docker, start_local
from tests.fixtures.tf1_models import build_tf1_model


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


BACKENDS = ["local", "docker"]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    if request.param == "docker":
        reason = docker_unavailable_reason()
        if reason:
            pytest.skip(reason)
    return request.param


def start(backend: str, flags: list[str], base: Path, log_dir: Path):
    if backend == "docker":
        return start_docker(flags, [base], log_dir)
    return start_local(flags, log_dir)
