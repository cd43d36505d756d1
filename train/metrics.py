"""Metrics and label encoding, without TensorFlow: used by training, the export gate and monitoring."""

from __future__ import annotations

import numpy as np

from train.spec import Spec


def evaluate(task: str, y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Classification: accuracy and log loss (y_true class indices, pred probabilities).
    Regression: RMSE and MAE (pred values)."""
    if task == "classification":
        p = np.clip(pred[np.arange(len(y_true)), y_true], 1e-7, 1.0)
        return {
            "accuracy": float(np.mean(pred.argmax(axis=1) == y_true)),
            "log_loss": float(-np.mean(np.log(p))),
            "rows": len(y_true),
        }
    err = pred.reshape(-1).astype(np.float64) - y_true
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "rows": len(y_true)}


def encode_labels(spec: Spec, labels: np.ndarray, classes: list[str] | None) -> np.ndarray:
    if spec.task == "classification":
        assert classes is not None
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[v] for v in labels.tolist()], dtype=np.int64)
    return labels.astype(np.float32)
