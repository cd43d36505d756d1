"""The repository's own promises: the README's commands and CI (the Dockerfile: tests/serving)."""

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
