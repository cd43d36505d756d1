"""Metrics and the comparison of two models' predictions, without TensorFlow: used by training, the
export gate, `python -m monitor diff` and the shadow report, so all report the same numbers.

>>> flips, agreement, rates = class_flips(np.array([0, 0, 1]), np.array([0, 1, 1]), ["a", "b"])
>>> flips.tolist(), round(agreement, 3), rates
([[1, 1], [0, 1]], 0.667, {'a': 0.5, 'b': 0.0})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

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


def class_flips(
    reference: np.ndarray, other: np.ndarray, names: list[str]
) -> tuple[np.ndarray, float, dict[str, float]]:
    """(flip matrix, agreement, flip rate per class) of two models' predicted class indices. Rows of
    the matrix are the reference's class, columns the other's; a class's flip rate is the share of
    the reference's predictions of it that the other model predicts differently."""
    k = len(names)
    flips = np.zeros((k, k), dtype=int)
    np.add.at(flips, (reference, other), 1)
    rates = {names[i]: (float(1 - flips[i, i] / flips[i].sum()) if flips[i].sum() else 0.0) for i in range(k)}
    return flips, float(np.mean(reference == other)), rates


def compare_classification(
    y: np.ndarray, classes: list[str], cand: np.ndarray, prod: np.ndarray, limits: Mapping[str, float]
) -> dict[str, Any]:
    mc, mp = evaluate("classification", y, cand), evaluate("classification", y, prod)
    flips, agreement, flip_rate = class_flips(prod.argmax(1), cand.argmax(1), classes)
    diff = np.abs(cand - prod)
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
