"""Seeded, deterministic training.

`keras.utils.set_random_seed` seeds Python, NumPy, TensorFlow and Keras's SeedGenerator, and
`tf.config.experimental.enable_op_determinism` makes every op (and the seeded `tf.data` shuffle)
run deterministically: two trainings with the same spec, rows and seed give bit-identical weights
on the same machine and package versions. On a GPU the same code runs there (MirroredStrategy
across the GPUs of one host when there are several); where a GPU op has no deterministic kernel
it raises under op determinism, and `op_determinism=False` turns it off (recorded in the manifest).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from compare.metrics import evaluate
from train import builder as builders
from train.model import INPUT_DTYPES, STATS_BLOCK_ROWS, Moments, input_shape, make_inputs, model_inputs, split_stats
from train.prepare import Prepared
from train.spec import Spec, encode_labels

log = logging.getLogger(__name__)


def configure(seed: int, op_determinism: bool) -> None:
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if op_determinism:
        tf.config.experimental.enable_op_determinism()
    else:
        # TF 2.21 has no public disable_op_determinism (only enable_...); its framework module does.
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()


def optimizer(spec: Spec) -> keras.optimizers.Optimizer:
    t = spec.training
    if t.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=t.learning_rate, momentum=t.momentum)
    if t.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=t.learning_rate, momentum=t.momentum)
    if t.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=t.learning_rate, weight_decay=t.weight_decay)
    return keras.optimizers.Adam(learning_rate=t.learning_rate)


def class_weights(counts: list[int]) -> dict[int, float]:
    """ "balanced": n / (classes * count) per class present in the training labels (counts per class index).

    >>> class_weights([3, 1])
    {0: 0.6666666666666666, 1: 2.0}
    """
    n, k = sum(counts), len(counts)
    return {i: float(n / (k * c)) if c else 1.0 for i, c in enumerate(counts)}


def select_strategy() -> tuple[tf.distribute.Strategy, str]:
    """The default strategy on CPU or one GPU; MirroredStrategy across several GPUs of this host.
    (Keras 3 does not support multi-worker training reliably, so there is no multi-host path.)"""
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), f"MirroredStrategy over {len(gpus)} GPUs"
    if len(gpus) == 1:
        return tf.distribute.get_strategy(), "GPU:0"
    return tf.distribute.get_strategy(), "CPU"


GATHER_ROWS = 4096  # rows read from the split store at a time (whole batches of them)...
GATHER_BYTES = 64 << 20  # ...or fewer, when wide rows (images) would take more than this in memory
SAMPLE_ROWS = 100_000  # at most this many training rows in `ctx.train` for a builder's own adapt()...
SAMPLE_BYTES = 512 << 20  # ...or fewer, when their model inputs would take more than this
SAMPLE_STREAM = 1 << 30  # the permutation that picks them (epochs use 0, 1, ...)


def permutation(n: int, seed: int, epoch: int, start: int, stop: int) -> np.ndarray:
    """Positions [start, stop) of one seeded permutation of range(n), computed without a buffer:
    `tf.random.experimental.index_shuffle`, a bijection fixed by (seed, epoch) alone."""
    if n == 1:
        return np.zeros(stop - start, dtype=np.int64)
    return tf.random.experimental.index_shuffle(
        tf.range(start, stop, dtype=tf.int64), seed=tf.constant([seed, epoch], tf.int64), max_index=n - 1
    ).numpy()


def input_row_bytes(spec: Spec, table: Any) -> float:
    """About what one row takes in memory as model inputs: its bytes in the store, and a decoded image
    (float32 [height, width, channels]) for each image feature."""
    stored = table.row_bytes([*spec.feature_names, spec.label]) if hasattr(table, "row_bytes") else 0.0
    decoded = sum(4 * math.prod(f.image_shape) for f in spec.features if f.kind == "image")
    return float(stored + decoded)


def dataset(
    spec: Spec, table: Any, classes: list[str] | None, batch_size: int, shuffle_seed: int | None
) -> tf.data.Dataset:
    """Batches of (model inputs, encoded labels) from a split store. With a seed, epoch e visits the
    rows in `permutation(n, seed, e)` order, so no shuffle buffer holds rows: memory is one gather
    of rows, whatever the split's size, and small and large data take the same code."""
    n = len(table)
    names = [*spec.feature_names, spec.label]
    per_row = input_row_bytes(spec, table)
    rows = min(GATHER_ROWS, max(1, int(GATHER_BYTES // per_row))) if per_row else GATHER_ROWS
    gather = max(1, rows // batch_size) * batch_size  # the batches do not depend on it: positions do
    epochs = iter(range(1 << 62))

    def batches() -> Any:
        epoch = next(epochs)
        for start in range(0, n, gather):
            stop = min(n, start + gather)
            if shuffle_seed is None:
                cols = table.slice(start, stop, names)
            else:
                cols = table.take(permutation(n, shuffle_seed, epoch, start, stop), names)
            x = model_inputs(spec, cols)
            y = encode_labels(spec, cols[spec.label], classes)
            for b in range(0, stop - start, batch_size):
                yield {k: v[b : b + batch_size] for k, v in x.items()}, y[b : b + batch_size]

    x_sig = {f.name: tf.TensorSpec((None, *input_shape(f)), tf.as_dtype(INPUT_DTYPES[f.kind])) for f in spec.features}
    y_sig = tf.TensorSpec((None,), tf.int64 if spec.task == "classification" else tf.float32)
    ds = tf.data.Dataset.from_generator(batches, output_signature=(x_sig, y_sig))
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-n // batch_size)))
    return ds.prefetch(2)


def builder_sample(spec: Spec, table: Any, seed: int) -> tuple[dict[str, np.ndarray], int]:
    """The training rows a builder sees in `ctx.train`: all of them up to SAMPLE_ROWS (fewer for wide
    rows, see SAMPLE_BYTES), else that many rows chosen by a seeded permutation, in key order. Returns
    the model inputs and the row count."""
    n = len(table)
    per_row = input_row_bytes(spec, table)
    limit = min(SAMPLE_ROWS, max(1_000, int(SAMPLE_BYTES // per_row))) if per_row else SAMPLE_ROWS
    if n <= limit:
        cols = table.slice(0, n, spec.feature_names)
    else:
        cols = table.take(np.sort(permutation(n, seed, SAMPLE_STREAM, 0, limit)), spec.feature_names)
    return model_inputs(spec, cols), min(n, limit)


def weights_sha256(model: keras.Model) -> str:
    """SHA-256 over every variable of the model (not the optimizer), in the model's fixed order:
    for each, its path, dtype and shape, then its values as little-endian bytes."""
    h = hashlib.sha256()
    for v in model.weights:
        a = np.ascontiguousarray(keras.ops.convert_to_numpy(v))
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        h.update(f"{v.path}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class EpochLog(keras.callbacks.Callback):
    """One log line per epoch (rows, rate, metrics) and, within a long epoch, a line at most every
    `every` seconds with the rows done: the progress of a long training, through stdlib logging."""

    def __init__(self, epochs: int, rows: int, batch_size: int, every: float = 30.0) -> None:
        super().__init__()
        self.epochs = epochs
        self.rows = rows
        self.batch_size = batch_size
        self.every = every
        self.start = self.epoch_start = self.last = time.perf_counter()
        self.epoch: int = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch = epoch
        self.epoch_start = self.last = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            done = min(self.rows, (batch + 1) * self.batch_size)
            rate = done / (now - self.epoch_start)
            log.info("epoch %d/%d: %d of %d rows (%.0f rows/s)", self.epoch + 1, self.epochs, done, self.rows, rate)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
        seconds = time.perf_counter() - self.epoch_start
        rate = self.rows / seconds if seconds else 0.0
        elapsed = time.perf_counter() - self.start
        what = f"epoch {epoch + 1}/{self.epochs}: {self.rows} rows ({rate:.0f} rows/s)"
        log.info("%s %s (%.1fs)", what, shown, elapsed)


@dataclass
class Trained:
    model: keras.Model
    history: dict[str, list[float]]
    metrics: dict[str, dict[str, float]]
    weights_sha256: str
    classes: list[str] | None
    stats: dict[str, Any]
    device: str
    train_seconds: float
    examples_per_second: float
    label_stats: dict[str, float] = field(default_factory=dict)
    # With early stopping: the patience, the epochs run, the epoch kept (1-based) and its validation loss.
    early_stopping: dict[str, Any] | None = None
    builder_sample_rows: int = 0  # training rows in ctx.train


def fit(
    spec: Spec,
    prepared: Prepared,
    op_determinism: bool = True,
    build: Callable[..., Any] | None = None,
) -> Trained:
    """Fit the spec's model on the prepared "train" split, report metrics on "validation" and "test".

    `build`: the user's builder function (see train.builder); None for the built-in model."""
    seed = spec.training.seed
    configure(seed, op_determinism)
    splits = prepared.splits
    train = splits["train"]
    classes = prepared.classes
    stats = split_stats(spec.features, train)
    label_stats: dict[str, float] = {}
    y_train = train.slice(0, len(train), [spec.label])[spec.label]
    if spec.task == "regression":
        moments = Moments()
        for at in range(0, len(y_train), STATS_BLOCK_ROWS):
            moments.update(y_train[at : at + STATS_BLOCK_ROWS])
        _, mean, var = moments.result()
        label_stats = {"mean": float(mean[0]), "std": float(np.sqrt(var[0])) or 1.0}
    sample, sample_rows = builder_sample(spec, train, seed)

    strategy, device = select_strategy()
    with strategy.scope():
        ctx = builders.BuildContext(
            spec,
            make_inputs(spec),
            stats,
            sample,
            classes,
            label_stats.get("mean", 0.0),
            label_stats.get("std", 1.0),
        )
        model = builders.builtin(ctx) if build is None else builders.build(build, spec.builder or "?", ctx)
        if not getattr(model, "compiled", False):
            opt = optimizer(spec)
            if spec.task == "classification":
                model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            else:
                model.compile(optimizer=opt, loss="mse", metrics=["mae"])
    bs = spec.training.batch_size
    train_ds = dataset(spec, train, classes, bs, shuffle_seed=seed)
    val_ds = dataset(spec, splits["validation"], classes, bs, shuffle_seed=None)
    epochs = spec.training.epochs
    log.info(
        "training %s on %d rows (%d validation, %d test), %d epochs, device %s",
        spec.name,
        len(train),
        len(splits["validation"]),
        len(splits["test"]),
        epochs,
        device,
    )
    weights = None
    if spec.training.class_weight == "balanced" and classes:
        per_class = np.bincount(encode_labels(spec, y_train, classes), minlength=len(classes))
        weights = class_weights(per_class.tolist())
    del y_train
    callbacks: list[keras.callbacks.Callback] = [EpochLog(epochs, len(train), bs)]
    patience = spec.training.early_stopping_patience
    stopper = None
    if patience:
        # Keras restores the best epoch's weights at the end of training, also when patience never ran out.
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        callbacks.append(stopper)
    start = time.perf_counter()
    hist = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        verbose=0,
        shuffle=False,  # shuffled by tf.data
        callbacks=callbacks,
        class_weight=weights,
    )
    seconds = time.perf_counter() - start
    epochs_run = len(hist.history.get("loss", [])) or epochs
    early = None
    if stopper is not None:
        early = {
            "patience": patience,
            "epochs_run": epochs_run,
            "epoch_kept": int(stopper.best_epoch) + 1,
            "val_loss": float(stopper.best),
        }
        log.info(
            "early stopping: kept epoch %d of %d (val_loss %.4f)", early["epoch_kept"], epochs_run, early["val_loss"]
        )

    metrics = {}
    for name in ("validation", "test"):
        table = splits[name]
        pred = model.predict(dataset(spec, table, classes, 256, None), verbose=0)
        y = encode_labels(spec, table.slice(0, len(table), [spec.label])[spec.label], classes)
        metrics[name] = evaluate(spec.task, y, pred)
    stats_json = {k: vars(v) for k, v in stats.items()}
    return Trained(
        model=model,
        history={k: [float(x) for x in v] for k, v in hist.history.items()},
        metrics=metrics,
        weights_sha256=weights_sha256(model),
        classes=classes,
        stats=stats_json,
        device=device,
        train_seconds=seconds,
        examples_per_second=len(train) * epochs_run / seconds if seconds else 0.0,
        label_stats=label_stats,
        early_stopping=early,
        builder_sample_rows=sample_rows,
    )
