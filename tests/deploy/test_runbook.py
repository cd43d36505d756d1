"""Every command in docs/operations.md exists: make targets in the Makefile, python -m modules in the
repository, files and directories it names."""

import re

from tests.conftest import ROOT

DOC = (ROOT / "docs" / "operations.md").read_text()
BLOCKS = re.findall(r"```sh\n(.*?)```", DOC, re.S)
COMMANDS = [line.strip() for block in BLOCKS for line in block.splitlines() if line.strip()]
MAKEFILE = (ROOT / "Makefile").read_text()


def test_the_runbook_has_commands():
    assert len(COMMANDS) >= 12


def test_make_targets_exist():
    for cmd in COMMANDS:
        if cmd.startswith("make "):
            target = cmd.split()[1]
            assert re.search(rf"^{re.escape(target)}:", MAKEFILE, re.M), cmd


def test_python_modules_exist():
    for cmd in COMMANDS:
        m = re.match(r"python -m ([\w.]+)", cmd)
        if m:
            module = m.group(1).replace(".", "/")
            assert (ROOT / f"{module}.py").is_file() or (ROOT / module / "__main__.py").is_file(), cmd


def test_files_and_kustomizations_exist():
    for cmd in COMMANDS:
        for path in re.findall(r"(?:-f|-k|kustomize)\s+(\S+)", cmd):
            assert (ROOT / path).exists(), cmd
        if cmd.startswith("pytest "):
            assert (ROOT / cmd.split()[1]).is_dir(), cmd
    assert (ROOT / "deploy" / "train-and-export.sh").is_file()
