"""Training throughput of the pipeline (`train.fit.fit`: batches gathered from the split stores in
a seeded permutation, op determinism, per-epoch logging) against a bare `model.fit` on the same
numpy arrays and the same model, in one run. The penguins rows are repeated to make epochs long enough to time."""

from __future__ import annotations

import dataclasses
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

NAME = "train_throughput"
TITLE = "training examples/s: pipeline vs bare model.fit"
REPEAT_ROWS = 30  # 344 rows x 30
EPOCHS = 5
TRIALS = 3


def run() -> list[dict]:
    import keras

    from train import fit
    from train.data import load_rows
    from train.model import build_model, feature_stats, model_inputs
    from train.prepare import from_columns
    from train.run import split_rows
    from train.spec import encode_labels, load_spec

    logging.getLogger("train").setLevel(logging.WARNING)
    spec = load_spec("specs/penguins.toml")
    rows = load_rows(spec, None, None)
    big = {k: np.tile(v, REPEAT_ROWS) for k, v in rows.columns.items()}
    big[rows.key] = np.arange(len(big[rows.key]))
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training, epochs=EPOCHS))
    splits = split_rows(spec, big, rows.key)
    n_train = len(splits["train"][rows.key])

    pipeline = []
    with tempfile.TemporaryDirectory() as tmp:
        prepared = from_columns(spec, big, rows.key, Path(tmp) / "work")
        for _ in range(TRIALS):
            t = fit.fit(spec, prepared)
            pipeline.append(t.examples_per_second)
        prepared.close()

    bare = []
    classes = sorted(set(big[spec.label].tolist()))
    y = encode_labels(spec, splits["train"][spec.label], classes)
    x = model_inputs(spec, splits["train"])
    xv = model_inputs(spec, splits["validation"])
    yv = encode_labels(spec, splits["validation"][spec.label], classes)
    for _ in range(TRIALS):
        keras.backend.clear_session()
        stats = {f.name: feature_stats(f, splits["train"][f.name]) for f in spec.features}
        model = build_model(spec, stats, len(classes))
        model.compile(
            optimizer=keras.optimizers.Adam(spec.training.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        start = time.perf_counter()
        model.fit(x, y, batch_size=spec.training.batch_size, epochs=EPOCHS, validation_data=(xv, yv), verbose=0)
        bare.append(n_train * EPOCHS / (time.perf_counter() - start))

    p, b = statistics.median(pipeline), statistics.median(bare)
    ctx = {"train_rows": n_train, "epochs": EPOCHS, "batch_size": spec.training.batch_size, "trials": TRIALS}
    return [
        {"metric": "pipeline examples/s (median)", "value": round(p, 1), "unit": "examples/s", **ctx},
        {"metric": "bare model.fit examples/s (median)", "value": round(b, 1), "unit": "examples/s", **ctx},
        {"metric": "pipeline / bare", "value": round(p / b, 3), "unit": "ratio"},
    ]
