"""Differential test of two model versions on a labelled dataset: metric deltas against thresholds,
agreement of predicted classes, flip rates per class, score differences. The same numbers and report
format as the export gate (compare.metrics), for versions that are already live:

- live: two versions served by one server (labels or version numbers), called through the SDK;
- on disk: two published version directories, loaded as TF Serving loads them (session loader).

The model card of the candidate gives the input schema, the label and the classes; thresholds come
from the card's spec `[gate]`, with the gate's defaults.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import modelbase
from compare.metrics import compare_classification, compare_regression, evaluate, thresholds

log = logging.getLogger(__name__)
NP = {"DT_FLOAT": np.float32, "DT_INT64": np.int64, "DT_STRING": object, "DT_DOUBLE": np.float64}


def labelled_data(card: Mapping[str, Any], source: str | Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Inputs typed by the card's schema, and the labels (class indices or values), from a CSV or
    Parquet file with the feature and label columns, or from a training run directory (its test split)."""
    path = Path(source)
    if path.is_dir():
        from train.run import load_run_inputs, split_rows

        _, spec, cols, key = load_run_inputs(path)
        columns = {k: list(v) for k, v in split_rows(spec, cols, key)["test"].items()}
    else:
        import pandas as pd

        df = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        columns = {str(c): df[c].tolist() for c in df.columns}
    label = card["label"]
    if label not in columns:
        raise KeyError(f"the data has no label column {label!r}")
    keep = [i for i, v in enumerate(columns[label]) if not (v is None or (isinstance(v, float) and math.isnan(v)))]
    inputs = {}
    for f in card["input_schema"]:
        name, dtype = f["name"], f["dtype"]
        if name not in columns:
            raise KeyError(f"the data has no column {name!r} for input {name!r}")
        values = [columns[name][i] for i in keep]
        if dtype == "DT_STRING":
            values = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]
        elif dtype == "DT_INT64":
            values = [-1 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v) for v in values]
        else:
            values = [np.nan if v is None else v for v in values]
        inputs[name] = np.array(values, dtype=NP.get(dtype, object))
    labels = [columns[label][i] for i in keep]
    if card["task"] == "classification":
        index = {c: i for i, c in enumerate(card["classes"])}
        y = np.array([index[str(v)] for v in labels], dtype=np.int64)
    else:
        y = np.array(labels, dtype=np.float64)
    return inputs, y


def _output(task: str, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.asarray(outputs["probabilities"] if task == "classification" else outputs["predictions"])


BATCH_SIZE = 512
_TOO_LARGE = re.compile(r"maximum (?:input |execution )?batch size\D{0,20}(\d+)", re.IGNORECASE)


def fitting_batch(message: str, sent: int) -> int | None:
    """The batch size a server's refusal asks for: the maximum it names (TF Serving's batching says
    "Task size N is larger than maximum batch size M"), else half of what was sent; None when the
    refusal is not about size.

    >>> fitting_batch("Task size 512 is larger than maximum batch size 32", 512)
    32
    >>> fitting_batch("Expects arg[0] to be float but double is provided", 512) is None
    True
    """
    m = _TOO_LARGE.search(message)
    if m:
        return max(1, min(int(m.group(1)), sent - 1))
    if "batch" in message.lower() and ("larg" in message.lower() or "exceed" in message.lower()):
        return max(1, sent // 2)
    return None


def predict_live(
    target: str, model: str, ref: str, inputs: Mapping[str, np.ndarray], task: str, batch_size: int = BATCH_SIZE
) -> tuple[np.ndarray, int]:
    """Both versions are called in batches that fit what the server accepts: a batch refused for its size
    (INVALID_ARGUMENT or RESOURCE_EXHAUSTED naming a batch size) is sent again in smaller batches."""
    from shipyard_client import Client, InvalidInputError, ResourceExhaustedError

    version, label = (int(ref), None) if ref.isdigit() else (None, ref)
    size = batch_size
    with Client(target, timeout=60) as c:
        while True:
            try:
                r = c.predict(model, dict(inputs), version=version, label=label, batch_size=size)
                return _output(task, r), r.version
            except (InvalidInputError, ResourceExhaustedError) as e:
                smaller = fitting_batch(e.message, size) if size > 1 else None
                if smaller is None:
                    raise
                log.info("the server refused batches of %d rows (%s); sending %d at a time", size, e.message, smaller)
                size = smaller


def predict_disk(version_dir: Path, inputs: Mapping[str, np.ndarray], task: str) -> tuple[np.ndarray, int]:
    from serving.servable import Servable

    feeds = {
        k: (np.array([str(x).encode() for x in v], dtype=object) if v.dtype == object else v) for k, v in inputs.items()
    }
    s = Servable.load("diff", modelbase.version_number(version_dir.name) or 0, version_dir)
    try:
        return _output(task, s.run("serving_default", feeds)), s.version
    finally:
        s.close()


def diff(card: Mapping[str, Any], y: np.ndarray, baseline: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    task = card["task"]
    gate = (card.get("run", {}).get("spec", {}) or {}).get("gate", {}) or {}
    if task == "classification":
        limits = thresholds(task, gate, {})
        rep = compare_classification(y, list(card["classes"]), candidate, baseline, limits)
    else:
        limits = thresholds(task, gate, evaluate("regression", y, baseline))
        rep = compare_regression(y, candidate, baseline, limits)
    rep["thresholds"] = limits
    rep["rows"] = len(y)
    rep["verdict"] = "pass" if not rep["failures"] else "fail"
    return rep
