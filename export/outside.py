"""Models trained elsewhere: a Keras model file (`.keras`) or a SavedModel directory, with a spec that
declares its inputs, task and label, and labelled rows to validate and gate on.

    python -m export --model path/to/model.keras --spec specs/mine.toml --data rows.csv --model-base-path models

The model must take the spec's features by name, raw, as a Shipyard model does (see train.model:
numbers float32 with NaN for missing, categories and text as strings, integer categories int64,
images decoded to float32 [h, w, c] in [0, 1]); for a SavedModel, through its `serving_default`
signature. It must output class probabilities [batch, n_classes] in the order of `--classes` (default:
the labels sorted, Shipyard's order) or, for regression, [batch] or [batch, 1]; a SavedModel
signature with several outputs must have one named `probabilities` or `predictions`.

It then takes the same road as a run: the same signatures, warmup from the rows, validation in a fresh
process, the differential gate, atomic publish, and a model card marked `trained_elsewhere` with the
file's SHA-256 and the rows' statistics. What cannot be guaranteed: retraining it bit for bit (its
code, data and seed are not known here), and that its preprocessing learned nothing from the rows it
is validated on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from train.errors import InputError

VALIDATION_ROWS = 2000  # validation and the gate run on at most this many rows (in key order)
WARMUP_ROWS = 16


def tree_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a directory: every file's relative path and content, in sorted order."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
        return h.hexdigest()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(path)).encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


class _SignatureModel:
    """A SavedModel's serving_default, called like a Keras model on a dict of features."""

    def __init__(self, signature: Any, output: str) -> None:
        self.signature = signature
        self.output = output

    def __call__(self, features: dict[str, Any], training: bool = False) -> Any:
        import tensorflow as tf

        return self.signature(**{k: tf.convert_to_tensor(v) for k, v in features.items()})[self.output]


def load(path: Path, task: str) -> tuple[Any, Any, str]:
    """(callable model, the Keras object to track, format) for a `.keras` file or a SavedModel directory."""
    import keras

    import train.layers  # noqa: F401 - a model built with Shipyard's layers loads too

    if path.is_file() and path.suffix == ".keras":
        try:
            model = keras.saving.load_model(path)
        except Exception as e:  # noqa: BLE001 - whatever Keras raises, the file cannot be used
            raise InputError(f"--model: cannot load {path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
        return model, model, "keras"
    if path.is_dir() and (path / "saved_model.pb").is_file():
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(path))
            sig = loaded.signatures["serving_default"]
        except KeyError:
            raise InputError(f"--model: {path} has no serving_default signature") from None
        except Exception as e:  # noqa: BLE001
            raise InputError(f"--model: cannot load {path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
        outputs = list(sig.structured_outputs)
        wanted = "probabilities" if task == "classification" else "predictions"
        if len(outputs) == 1:
            output = outputs[0]
        elif wanted in outputs:
            output = wanted
        else:
            raise InputError(
                f"--model: {path}'s serving_default has outputs {', '.join(sorted(outputs))}; "
                f"one of them must be named {wanted!r}"
            )
        return _SignatureModel(sig, output), loaded, "saved_model"
    raise InputError(f"--model: {path} is neither a .keras file nor a SavedModel directory (saved_model.pb)")


def _outputs(model: Any, feeds: dict[str, np.ndarray], batch: int = 256) -> np.ndarray:
    n = len(next(iter(feeds.values())))
    parts = [
        np.asarray(model({k: v[i : i + batch] for k, v in feeds.items()}, training=False)) for i in range(0, n, batch)
    ]
    return np.concatenate(parts, axis=0)


def candidate(
    model_path: Path, spec_path: str, source: str | None, as_of: str | None, classes: list[str] | None
) -> Any:
    from compare.metrics import evaluate
    from export.pipeline import Candidate
    from train import data, snapshot
    from train.manifest import FORMAT_VERSION
    from train.model import model_inputs
    from train.spec import encode_labels, load_spec

    spec = load_spec(spec_path)
    if spec.builder:
        raise InputError("--model: the spec names a [model] builder; a model trained elsewhere is given as a file")
    if not model_path.exists():
        raise InputError(f"--model: {model_path} does not exist")
    rows = data.load_rows(spec, source, as_of)
    cols = rows.columns
    labels = sorted(set(cols[spec.label].tolist())) if spec.task == "classification" else None
    if classes is not None and spec.task == "classification":
        unknown = sorted(set(labels or []) - set(classes))
        if unknown:
            raise InputError(f"--classes: the data has labels {unknown} that --classes does not list")
        labels = classes
    model, track, fmt = load(model_path, spec.task)
    take = {k: v[:VALIDATION_ROWS] for k, v in cols.items()}
    feeds = model_inputs(spec, take)
    try:
        expected = _outputs(model, feeds)
    except Exception as e:  # noqa: BLE001 - the model does not take the spec's features as declared
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(
            f"--model: {model_path} does not run on the spec's features ({', '.join(spec.feature_names)}): {first}"
        ) from None
    if spec.task == "classification":
        assert labels is not None
        if expected.ndim != 2 or expected.shape[1] != len(labels):
            raise InputError(
                f"--model: it outputs {list(expected.shape[1:])} per row; a classifier of {len(labels)} classes "
                f"({', '.join(labels)}) must output [batch, {len(labels)}] probabilities"
            )
        bad = ~np.isfinite(expected).all(axis=1)
        if bad.any():
            raise InputError(
                f"--model: it outputs non-finite values on {int(bad.sum())} of {len(bad)} rows (missing values it "
                "does not handle? declare those features `required` to drop such rows)"
            )
        if (expected < -1e-6).any() or not np.allclose(expected.sum(axis=1), 1.0, atol=1e-3):
            raise InputError("--model: its outputs are not probabilities (rows in [0, 1] summing to 1)")
    elif expected.reshape(len(expected), -1).shape[1] != 1:
        raise InputError(f"--model: a regressor must output [batch] or [batch, 1], not {list(expected.shape)}")
    y = encode_labels(spec, take[spec.label], labels)
    record = {
        "format_version": FORMAT_VERSION,
        "name": spec.name,
        "task": spec.task,
        "label": spec.label,
        "spec": spec.to_json(),
        "spec_path": spec_path,
        "trained_elsewhere": {
            "file": str(model_path),
            "format": fmt,
            "sha256": tree_sha256(model_path),
            "note": "trained outside Shipyard: no seed, code or training data known; not reproducible here",
        },
        "data_source": data.describe_source(source),
        "as_of": rows.as_of,
        "data_sha256": snapshot.content_sha256(cols, rows.key),
        "rows": len(rows),
        "rows_dropped_missing_label": rows.dropped_missing_label,
        "rows_dropped_missing_required": rows.dropped_missing_required,
        "classes": labels,
        "metrics": {"given_rows": evaluate(spec.task, y, expected)},
        "registered_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    warm = {k: v[:WARMUP_ROWS] for k, v in cols.items()}
    return Candidate(spec, model, track, labels, record, cols, warm, take, expected, None)
