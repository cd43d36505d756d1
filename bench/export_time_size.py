"""Export time (whole export: SavedModel, warmup, card, fresh-process validation, gate, publish) and
the size of a published version, for the penguins classifier."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

NAME = "export"
TITLE = "export time and SavedModel size (penguins classifier)"
TRIALS = 3


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run() -> list[dict]:
    from export import signatures
    from export.pipeline import export_run
    from train.run import train_run
    from train.spec import load_spec

    logging.getLogger("train").setLevel(logging.WARNING)
    logging.getLogger("export").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        run = train_run(load_spec("specs/penguins.toml"), None, None, tmp_path / "runs")
        totals, writes = [], []
        for _ in range(TRIALS):
            r = export_run(run.path, tmp_path / "models")
            totals.append(r.seconds)
        import keras

        import train.layers  # noqa: F401

        model = keras.saving.load_model(run.path / "model.keras")
        spec = load_spec("specs/penguins.toml")
        for i in range(TRIALS):
            start = time.perf_counter()
            signatures.write_saved_model(model, spec, run.manifest["classes"], tmp_path / f"sm{i}")
            writes.append(time.perf_counter() - start)
        size = _size(r.path)
        pb = (r.path / "saved_model.pb").stat().st_size
        variables = _size(r.path / "variables")
        extra = _size(r.path / "assets.extra")
    return [
        {
            "metric": "export, all steps (median)",
            "value": round(statistics.median(totals), 3),
            "unit": "s",
            "trials": TRIALS,
        },
        {"metric": "SavedModel write alone (median)", "value": round(statistics.median(writes), 3), "unit": "s"},
        {"metric": "published version size", "value": size, "unit": "bytes"},
        {"metric": "  saved_model.pb", "value": pb, "unit": "bytes"},
        {"metric": "  variables/", "value": variables, "unit": "bytes"},
        {"metric": "  assets.extra/ (warmup, card, report)", "value": extra, "unit": "bytes"},
    ]
