"""The repository's own promises: CI runs the test command, the Makefile has the documented targets
(the Dockerfile: tests/serving)."""

from tests.conftest import ROOT


def test_ci_runs_the_readme_test_command():
    lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert "make test" in lines


def test_makefile_has_the_documented_targets():
    text = (ROOT / "Makefile").read_text()
    for target in ("setup", "demo", "train", "test", "bench", "reproduce", "penguins-db", "train-sql"):
        assert f"\n{target}:" in text, target
