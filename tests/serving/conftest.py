from pathlib import Path

import pytest

from tests.conftest import copy_base  # noqa: F401 - re-exported for the serving tests
from tests.fixtures.servers import docker_unavailable_reason, start_docker, start_local

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
