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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from train import builder as builders
from train.metrics import encode_labels, evaluate
from train.model import feature_stats, make_inputs, model_inputs
from train.spec import Spec

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


def class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    """ "balanced": n / (classes * count) per class present in the training labels.

    >>> class_weights(np.array([0, 0, 0, 1]), 2)
    {0: 0.6666666666666666, 1: 2.0}
    """
    counts = np.bincount(y.astype(np.int64), minlength=n_classes)
    return {i: float(len(y) / (n_classes * c)) if c else 1.0 for i, c in enumerate(counts.tolist())}


def select_strategy() -> tuple[tf.distribute.Strategy, str]:
    """The default strategy on CPU or one GPU; MirroredStrategy across several GPUs of this host.
    (Keras 3 does not support multi-worker training reliably, so there is no multi-host path.)"""
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), f"MirroredStrategy over {len(gpus)} GPUs"
    if len(gpus) == 1:
        return tf.distribute.get_strategy(), "GPU:0"
    return tf.distribute.get_strategy(), "CPU"


def dataset(x: dict[str, np.ndarray], y: np.ndarray, batch_size: int, shuffle_seed: int | None) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size)


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
    """One log line per epoch: the progress of a long training, through stdlib logging."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
        log.info("epoch %d/%d %s (%.1fs)", epoch + 1, self.epochs, shown, time.perf_counter() - self.start)


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


def fit(
    spec: Spec,
    splits: dict[str, dict[str, np.ndarray]],
    op_determinism: bool = True,
    build: Callable[..., Any] | None = None,
) -> Trained:
    """Fit the spec's model on splits["train"], report metrics on "validation" and "test".

    `build`: the user's builder function (see train.builder); None for the built-in model."""
    seed = spec.training.seed
    configure(seed, op_determinism)
    train = splits["train"]
    classes = (
        sorted(set().union(*(set(s[spec.label].tolist()) for s in splits.values())))
        if spec.task == "classification"
        else None
    )
    stats = {f.name: feature_stats(f, train[f.name]) for f in spec.features}
    label_stats: dict[str, float] = {}
    if spec.task == "regression":
        y = train[spec.label]
        label_stats = {"mean": float(y.mean()), "std": float(y.std()) or 1.0}

    ys = {name: encode_labels(spec, s[spec.label], classes) for name, s in splits.items()}
    xs = {name: model_inputs(spec, s) for name, s in splits.items()}

    strategy, device = select_strategy()
    with strategy.scope():
        ctx = builders.BuildContext(
            spec,
            make_inputs(spec),
            stats,
            xs["train"],
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
    train_ds = dataset(xs["train"], ys["train"], bs, shuffle_seed=seed)
    val_ds = dataset(xs["validation"], ys["validation"], bs, shuffle_seed=None)
    epochs = spec.training.epochs
    log.info(
        "training %s on %d rows (%d validation, %d test), %d epochs, device %s",
        spec.name,
        len(ys["train"]),
        len(ys["validation"]),
        len(ys["test"]),
        epochs,
        device,
    )
    weights = class_weights(ys["train"], len(classes)) if spec.training.class_weight == "balanced" and classes else None
    callbacks: list[keras.callbacks.Callback] = [EpochLog(epochs)]
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
        pred = model.predict(dataset(xs[name], ys[name], 256, None), verbose=0)
        metrics[name] = evaluate(spec.task, ys[name], pred)
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
        examples_per_second=len(ys["train"]) * epochs_run / seconds if seconds else 0.0,
        label_stats=label_stats,
        early_stopping=early,
    )
