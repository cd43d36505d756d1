"""Metrics, label encoding and the comparison of two models' predictions, without TensorFlow: used by
training, the export gate and monitoring (`python -m monitor diff`), so all report the same numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from train.spec import Spec

DEFAULT_THRESHOLDS = {
    "classification": {"max_accuracy_drop": 0.01, "max_log_loss_increase": 0.05},
    "regression": {},  # relative defaults, see thresholds()
}


def thresholds(task: str, spec_gate: Mapping[str, float], production_metrics: Mapping[str, float]) -> dict:
    t = dict(DEFAULT_THRESHOLDS[task])
    if task == "regression":  # by default the error may grow by 2% of production's
        t = {
            "max_rmse_increase": 0.02 * production_metrics["rmse"],
            "max_mae_increase": 0.02 * production_metrics["mae"],
        }
    return t | dict(spec_gate)


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


def compare_classification(
    y: np.ndarray, classes: list[str], cand: np.ndarray, prod: np.ndarray, limits: Mapping[str, float]
) -> dict[str, Any]:
    mc, mp = evaluate("classification", y, cand), evaluate("classification", y, prod)
    pc, pp = cand.argmax(1), prod.argmax(1)
    k = len(classes)
    flips = np.zeros((k, k), dtype=int)
    np.add.at(flips, (pp, pc), 1)
    flip_rate = {classes[i]: (float(1 - flips[i, i] / flips[i].sum()) if flips[i].sum() else 0.0) for i in range(k)}
    diff = np.abs(cand - prod)
    agreement = float(np.mean(pc == pp))
    checks = {
        "max_accuracy_drop": (mp["accuracy"] - mc["accuracy"], "accuracy drop"),
        "max_log_loss_increase": (mc["log_loss"] - mp["log_loss"], "log loss increase"),
    }
    failures = [
        f"{what} {value:.4f} > {limits[key]:.4f}"
        for key, (value, what) in checks.items()
        if key in limits and value > limits[key] + 1e-12
    ]
    if "min_class_agreement" in limits and agreement < limits["min_class_agreement"]:
        failures.append(f"class agreement {agreement:.4f} < {limits['min_class_agreement']:.4f}")
    return {
        "metrics": {"candidate": mc, "production": mp, "delta": {m: mc[m] - mp[m] for m in ("accuracy", "log_loss")}},
        "agreement": agreement,
        "flip_matrix": {"rows_production_columns_candidate": classes, "counts": flips.tolist()},
        "flip_rate_per_class": flip_rate,
        "score_difference": {
            "mean": float(diff.mean()),
            "max": float(diff.max()),
            "p99": float(np.quantile(diff.max(axis=1), 0.99)),
        },
        "failures": failures,
    }


def compare_regression(y: np.ndarray, cand: np.ndarray, prod: np.ndarray, limits: Mapping[str, float]) -> dict:
    mc, mp = evaluate("regression", y, cand), evaluate("regression", y, prod)
    diff = np.abs(cand.reshape(-1) - prod.reshape(-1))
    failures = [
        f"{m} increase {mc[m] - mp[m]:.4f} > {limits[key]:.4f}"
        for m, key in (("rmse", "max_rmse_increase"), ("mae", "max_mae_increase"))
        if key in limits and mc[m] - mp[m] > limits[key] + 1e-12
    ]
    return {
        "metrics": {"candidate": mc, "production": mp, "delta": {m: mc[m] - mp[m] for m in ("rmse", "mae")}},
        "score_difference": {
            "mean": float(diff.mean()),
            "max": float(diff.max()),
            "p99": float(np.quantile(diff, 0.99)),
        },
        "failures": failures,
    }
