"""The package boundaries of the design, checked on every import statement in the source (top-level
and inside functions): who may import whom."""

import ast

import pytest

from tests.conftest import ROOT

OURS = {
    "modelbase",
    "compare",
    "release",
    "train",
    "export",
    "serving",
    "monitor",
    "shipyard_client",
    "bench",
    "examples",
}

# package -> the packages of ours it may import (itself always)
ALLOWED = {
    "modelbase": set(),
    "compare": set(),
    "train": {"modelbase", "compare"},
    "export": {"modelbase", "compare", "train", "serving", "release"},
    "serving": {"modelbase"},
    "shipyard_client": set(),
    "release": {"modelbase"},
    # monitor: the SDK, the on-disk contract, the comparison code; and three named exceptions below
    "monitor": {"modelbase", "compare", "shipyard_client"},
}
# (importing package, imported module): the exceptions, each with why it stays
EXCEPTIONS = {
    ("monitor", "train.run"): "`monitor diff --data RUN_DIR` reads a training run's test split",
    ("monitor", "train.quiet"): "the CLIs share one way of keeping TensorFlow's start-up lines off the terminal",
    ("monitor", "serving.servable"): "the on-disk diff loads versions with the loader that serves them",
}


def _sources(package):
    base = ROOT / "client_sdk" / "src" / "shipyard_client" if package == "shipyard_client" else ROOT / package
    return sorted(base.rglob("*.py"))


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from (f"{node.module}.{a.name}" for a in node.names)  # `from train import quiet`: train.quiet


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_the_design_allows(package):
    wrong = []
    for path in _sources(package):
        for module in _imports(path):
            top = module.split(".")[0]
            if top not in OURS or top == package or top in ALLOWED[package]:
                continue
            if any(module == m or module.startswith(m + ".") for p, m in EXCEPTIONS if p == package):
                continue
            wrong.append(f"{path.relative_to(ROOT)}: {module}")
    assert not wrong, f"{package} imports across the design's boundary:\n" + "\n".join(wrong)


def test_the_sdk_and_the_comparison_code_never_import_tensorflow():
    for package in ("shipyard_client", "compare"):
        for path in _sources(package):
            tf = [m for m in _imports(path) if m.split(".")[0] in ("tensorflow", "tensorflow_serving", "keras")]
            assert not tf, f"{path.relative_to(ROOT)} imports {tf}"


def test_nothing_but_tests_and_bench_imports_monitor():
    for package in ALLOWED:
        if package == "monitor":
            continue
        for path in _sources(package):
            assert not [m for m in _imports(path) if m.split(".")[0] == "monitor"], path
