"""The shadow report: how the shadow (candidate) answered the same requests as the primary.

Classification (outputs with `probabilities`): agreement of predicted classes, the flip matrix
(rows: primary's class, columns: shadow's), score differences (mean, p99, max of |shadow - primary|
over all class scores). Regression (`predictions` or `values`): error statistics of shadow against
primary (mean difference, MAE, RMSE, max). Both: latency of each side (p50, p99), shadow errors, and
the dropped count the client recorded.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from compare.metrics import class_flips
from shipyard_client.sinks import read_records


def _scores(outputs: dict[str, Any] | None) -> np.ndarray | None:
    if not outputs:
        return None
    for key in ("probabilities", "scores"):
        if key in outputs:
            return np.asarray(outputs[key], dtype=np.float64)
    for key in ("predictions", "values", "outputs"):
        if key in outputs:
            return np.asarray(outputs[key], dtype=np.float64).reshape(-1)
    return None


STATS_KEYS = ("sampled", "dropped", "shadow_errors", "records_dropped", "records_failed", "records_unwritten")


def _class_names(records: list[dict[str, Any]], k: int) -> list[str] | None:
    """Class names in score order, from what the records hold: classify's `labels` (every class per row),
    or predict's `class_ids` beside `classes` (the predicted class's id and name)."""
    names: dict[int, str] = {}
    for r in records:
        out = r.get("primary_outputs") or {}
        labels = out.get("labels")
        if labels and isinstance(labels[0], list) and len(labels[0]) == k:
            return [str(x) for x in labels[0]]
        ids, classes = out.get("class_ids"), out.get("classes")
        if isinstance(ids, list) and isinstance(classes, list) and len(ids) == len(classes):
            for i, c in zip(ids, classes, strict=True):
                if isinstance(i, int) and 0 <= i < k:
                    names.setdefault(i, str(c))
        if len(names) == k:
            return [names[i] for i in range(k)]
    return None


def _stats(source: Path) -> dict[str, int]:
    """The counters the client and the sink wrote at close: shadow calls sampled and dropped, shadow
    errors, and the records the sink dropped (queue full), failed to write, or had not written by its
    close deadline (logs written before these last three existed count 0)."""
    out = dict.fromkeys(STATS_KEYS, 0)
    if source.suffix in (".jsonl", ".json"):
        for line in source.read_text(encoding="utf-8").splitlines():
            if line and '"stats"' in line:
                s = json.loads(line)["stats"]
                for k in out:
                    out[k] += int(s.get(k, 0))
        return out
    with sqlite3.connect(source) as db:
        have = {row[1] for row in db.execute("PRAGMA table_info(shadow_stats)")}
        keys = [k for k in STATS_KEYS if k in have]
        row = db.execute(f"SELECT {', '.join(f'SUM({k})' for k in keys)} FROM shadow_stats").fetchone()
    out |= {k: int(v or 0) for k, v in zip(keys, row, strict=True)}
    return out


def _latency(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None}
    a = np.asarray(values)
    return {"p50_ms": float(np.median(a)), "p99_ms": float(np.quantile(a, 0.99))}


def report(
    records: Iterable[dict[str, Any]], stats: dict[str, int] | None = None, class_names: list[str] | None = None
) -> dict[str, Any]:
    recs = list(records)
    both, primary_ms, shadow_ms, errors = [], [], [], 0
    versions: dict[str, set[Any]] = {"primary": set(), "shadow": set()}
    for r in recs:
        versions["primary"].add(r.get("primary_version"))
        versions["shadow"].add(r.get("shadow_version"))
        if r.get("primary_ms") is not None:
            primary_ms.append(r["primary_ms"])
        if r.get("shadow_ms") is not None:
            shadow_ms.append(r["shadow_ms"])
        if r.get("error"):
            errors += 1
        p, s = _scores(r.get("primary_outputs")), _scores(r.get("shadow_outputs"))
        if p is not None and s is not None and p.shape == s.shape:
            both.append((p, s))
    out: dict[str, Any] = {
        "records": len(recs),
        "compared": len(both),
        "errors": errors,
        "model": next((r.get("primary_model") for r in recs if r.get("primary_model")), None),
        "primary_versions": sorted(v for v in versions["primary"] if v is not None),
        "shadow_versions": sorted(v for v in versions["shadow"] if v is not None),
        "latency": {"primary": _latency(primary_ms), "shadow": _latency(shadow_ms)},
        "client": stats or {},
        # Requests sampled whose record is not in the log, and why (all counted by the client and the sink).
        "not_recorded": {
            "shadow_calls_dropped": (stats or {}).get("dropped", 0),
            "records_dropped": (stats or {}).get("records_dropped", 0),
            "records_failed": (stats or {}).get("records_failed", 0),
            "records_unwritten_at_close": (stats or {}).get("records_unwritten", 0),
        },
    }
    if not both:
        out["task"] = None
        return out
    p = np.concatenate([x for x, _ in both])
    s = np.concatenate([y for _, y in both])
    if p.ndim == 2:
        k = p.shape[1]
        names = class_names if class_names and len(class_names) == k else _class_names(recs, k)
        names = names or [f"class {i}" for i in range(k)]
        flips, agreement, flip_rate = class_flips(p.argmax(1), s.argmax(1), names)
        diff = np.abs(s - p)
        out |= {
            "task": "classification",
            "rows": len(p),
            "agreement": agreement,
            "flip_matrix": {"rows_primary_columns_shadow": names, "counts": flips.tolist()},
            "flip_rate_per_class": flip_rate,
            "score_difference": {
                "mean": float(diff.mean()),
                "p99": float(np.quantile(diff, 0.99)),
                "max": float(diff.max()),
            },
        }
    else:
        d = s - p
        out |= {
            "task": "regression",
            "rows": len(p),
            "mean_difference": float(d.mean()),
            "mae": float(np.abs(d).mean()),
            "rmse": float(np.sqrt((d**2).mean())),
            "max_abs_difference": float(np.abs(d).max()),
        }
    return out


def report_from(source: str | Path, class_names: list[str] | None = None) -> dict[str, Any]:
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no shadow log at {path}")
    return report(read_records(path), _stats(path), class_names)


def plot(rep: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    lat = rep["latency"]
    axes[0].bar(
        ["primary p50", "shadow p50", "primary p99", "shadow p99"],
        [
            lat["primary"]["p50_ms"] or 0,
            lat["shadow"]["p50_ms"] or 0,
            lat["primary"]["p99_ms"] or 0,
            lat["shadow"]["p99_ms"] or 0,
        ],
        color=["C0", "C1", "C0", "C1"],
    )
    axes[0].set_ylabel("ms")
    lost = sum(rep.get("not_recorded", {}).values())
    axes[0].set_title(f"latency ({rep['records']} records, {rep['errors']} errors, {lost} not recorded)")
    if rep.get("task") == "classification":
        from compare.plots import flip_matrix

        flip_matrix(
            axes[1],
            rep["flip_matrix"]["counts"],
            rep["flip_matrix"]["rows_primary_columns_shadow"],
            "shadow",
            "primary",
            f"predicted classes (agreement {rep['agreement']:.3f})",
        )
    else:
        axes[1].axis("off")
        axes[1].text(0, 0.5, json.dumps({k: rep.get(k) for k in ("mae", "rmse", "max_abs_difference")}, indent=1))
    fig.suptitle(
        f"shadow report of {rep.get('model') or 'the model'}: shadow v{rep['shadow_versions']} against primary "
        f"v{rep['primary_versions']}, same requests",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
