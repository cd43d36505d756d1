"""The digits CNN (examples/digits_cnn.py, a `[model] builder`) on image bytes: training examples/s
through the pipeline (`train.fit.fit`: seeded, op determinism, tf.data, callbacks) against a bare
`model.fit` of the same CNN on the same decoded arrays, side by side in one run; and the whole export
time of the trained CNN (SavedModel with image decoding inside, warmup, fresh-process validation,
publish)."""

from __future__ import annotations

import dataclasses
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

NAME = "digits_cnn"
TITLE = "digits CNN: pipeline vs bare model.fit, and export time"
REPEAT = 4  # 1797 images x 4
EPOCHS = 5
TRIALS = 3


def run() -> list[dict]:
    import keras

    from examples import digits_cnn, digits_data
    from export.pipeline import export_run
    from train import builder as builders
    from train import fit
    from train.data import load_rows
    from train.model import feature_stats, make_inputs, model_inputs
    from train.prepare import from_columns
    from train.run import split_rows, train_run
    from train.spec import encode_labels, load_spec

    for name in ("train", "export"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        csv_path = digits_data.write(tmp_path / "digits")
        spec = load_spec("specs/digits_cnn.toml")
        spec = dataclasses.replace(
            spec, training=dataclasses.replace(spec.training, epochs=EPOCHS, early_stopping_patience=0)
        )
        rows = load_rows(spec, str(csv_path), None)
        big = {k: np.concatenate([v] * REPEAT) for k, v in rows.columns.items()}
        big[rows.key] = np.arange(len(big[rows.key]))
        splits = split_rows(spec, big, rows.key)
        n_train = len(splits["train"][rows.key])

        prepared = from_columns(spec, big, rows.key, tmp_path / "work")
        pipeline = [fit.fit(spec, prepared, build=digits_cnn.build).examples_per_second for _ in range(TRIALS)]
        prepared.close()

        classes = sorted(set(big[spec.label].tolist()))
        x, xv = model_inputs(spec, splits["train"]), model_inputs(spec, splits["validation"])
        y = encode_labels(spec, splits["train"][spec.label], classes)
        yv = encode_labels(spec, splits["validation"][spec.label], classes)
        stats = {f.name: feature_stats(f, splits["train"][f.name]) for f in spec.features}
        bare = []
        for _ in range(TRIALS):
            keras.backend.clear_session()
            keras.utils.set_random_seed(spec.training.seed)
            ctx = builders.BuildContext(spec, make_inputs(spec), stats, x, classes)
            model = digits_cnn.build(ctx)
            model.compile(
                optimizer=keras.optimizers.Adam(spec.training.learning_rate),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            start = time.perf_counter()
            model.fit(x, y, batch_size=spec.training.batch_size, epochs=EPOCHS, validation_data=(xv, yv), verbose=0)
            bare.append(n_train * EPOCHS / (time.perf_counter() - start))

        run_spec = load_spec("specs/digits_cnn.toml")
        r = train_run(run_spec, str(csv_path), None, tmp_path / "runs")
        exports = [export_run(r.path, tmp_path / "models").seconds for _ in range(TRIALS)]

    p, b = statistics.median(pipeline), statistics.median(bare)
    ctx_row = {"train_rows": n_train, "epochs": EPOCHS, "trials": TRIALS}
    return [
        {"metric": "pipeline examples/s (median)", "value": round(p, 1), "unit": "examples/s", **ctx_row},
        {"metric": "bare model.fit examples/s (median)", "value": round(b, 1), "unit": "examples/s", **ctx_row},
        {"metric": "pipeline / bare (target >= 0.9)", "value": round(p / b, 3), "unit": "ratio"},
        {"metric": "export of the CNN, whole (median)", "value": round(statistics.median(exports), 2), "unit": "s"},
    ]
