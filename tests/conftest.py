import os
import subprocess
import sys
from pathlib import Path

import pytest

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
