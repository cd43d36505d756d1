"""Drift of live inputs against the training data, per feature, from the model card's statistics.

Numeric features: PSI and Jensen-Shannon distance (base 2) between the training bins' proportions and
the live values' on the same bins (values beyond the outer edges count in the outer bins); missing
rate. Categorical features: L-infinity distance between category frequencies, the rate of categories
never seen in training, missing rate.

The verdict accounts for sample size. PSI on a few hundred rows is noisy (a fresh sample of 50 rows
from the training distribution has PSI near 0.26 with no drift at all), so below `min_rows_for_distance`
(1000) rows a feature is flagged by a chi-squared goodness-of-fit test of the live bin (or category)
counts against the training proportions, at alpha = 0.05 split over the features (Bonferroni), the way
Evidently switches to statistical tests on small samples; from 1000 rows on, by the distance thresholds
(PSI > 0.2 or JS > 0.1; L-inf > 0.1 or unseen rate > 0.05). A change of missing rate by more than 0.1
is flagged at any size. The report says how many rows it saw.

Text features: the token-count distribution is compared like a numeric feature, and an
out-of-vocabulary rate that moved by more than 0.1 is flagged. Images: the distributions of mean
intensity and pixel count, each like a numeric feature. A numeric feature with a shape is skipped,
and the report says so by name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

EPS = 1e-4
THRESHOLDS = {
    "psi": 0.2,
    "js": 0.1,
    "linf": 0.1,
    "unseen_rate": 0.05,
    "missing_rate_change": 0.1,
    "alpha": 0.05,
    "min_rows_for_distance": 1000,
}


def read_card(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "assets.extra" / "model_card.json"
    return json.loads(p.read_text(encoding="utf-8"))


def _proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    p = counts / total if total else np.full(len(counts), 1 / len(counts))
    return np.clip(p, EPS, None) / np.clip(p, EPS, None).sum()


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = _proportions(expected), _proportions(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = _proportions(expected), _proportions(actual)
    m = (e + a) / 2
    kl = 0.5 * np.sum(e * np.log2(e / m)) + 0.5 * np.sum(a * np.log2(a / m))
    return float(math.sqrt(max(kl, 0.0)))


def _chi2_p(expected: np.ndarray, observed: np.ndarray) -> float:
    from scipy.stats import chisquare

    n = observed.sum()
    if n == 0:
        return 1.0
    exp = _proportions(expected) * n
    return float(chisquare(observed, exp).pvalue)


def _bin(values: np.ndarray, edges: list[float]) -> np.ndarray:
    idx = np.clip(np.searchsorted(np.asarray(edges), values, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1)


def numeric_drift(train: Mapping[str, Any], live: np.ndarray) -> dict[str, Any]:
    live = np.asarray(live, dtype=np.float64)
    missing = np.isnan(live)
    present = live[~missing]
    out: dict[str, Any] = {
        "kind": "numeric",
        "rows": len(live),
        "missing_rate": float(missing.mean()) if len(live) else 0.0,
        "training_missing_rate": train["missing_rate"],
    }
    edges = train.get("bin_edges") or []
    if len(edges) < 2 or not len(present):
        return out | {"psi": None, "js": None, "p_value": None}
    expected, observed = np.asarray(train["counts"], dtype=np.float64), _bin(present, edges).astype(np.float64)
    return out | {
        "psi": psi(expected, observed),
        "js": js_distance(expected, observed),
        "p_value": _chi2_p(expected, observed),
        "live_mean": float(present.mean()),
        "training_mean": train.get("mean"),
    }


def categorical_drift(train: Mapping[str, Any], live: list[Any], missing_value: Any) -> dict[str, Any]:
    freq = {str(k): v for k, v in train["frequencies"].items()}
    values = [str(v) for v in live if v is not None and v != missing_value and str(v) != str(missing_value)]
    n_missing = len(live) - len(values)
    cats = list(freq)
    observed = np.array([sum(1 for v in values if v == c) for c in cats], dtype=np.float64)
    unseen = sum(1 for v in values if v not in freq)
    expected = np.array([freq[c] for c in cats], dtype=np.float64)
    p_train = expected / expected.sum() if expected.sum() else expected
    p_live = observed / len(values) if values else np.zeros(len(cats))
    seen_counts = observed.copy()
    return {
        "kind": "categorical",
        "rows": len(live),
        "missing_rate": n_missing / len(live) if live else 0.0,
        "training_missing_rate": train["missing_rate"],
        "linf": float(np.max(np.abs(p_live - p_train))) if values else None,
        "unseen_rate": unseen / len(values) if values else 0.0,
        "unseen_examples": sorted({v for v in values if v not in freq})[:5],
        "p_value": _chi2_p(np.append(expected, 0.0), np.append(seen_counts, unseen)) if values else None,
    }


def verdict(result: dict[str, Any], n_features: int, t: Mapping[str, float]) -> list[str]:
    reasons = []
    if abs(result["missing_rate"] - result["training_missing_rate"]) > t["missing_rate_change"]:
        reasons.append(f"missing rate {result['training_missing_rate']:.3f} -> {result['missing_rate']:.3f}")
    small = result["rows"] < t["min_rows_for_distance"]
    if small:
        p = result.get("p_value")
        if p is not None and p < t["alpha"] / n_features:
            reasons.append(f"chi-squared p={p:.2g} < {t['alpha'] / n_features:.2g} ({result['rows']} rows)")
        if result["kind"] == "categorical" and result["unseen_rate"] > t["unseen_rate"] and result["rows"] >= 20:
            reasons.append(f"unseen categories {result['unseen_rate']:.3f} ({result['unseen_examples']})")
        return reasons
    if result["kind"] == "numeric":
        if result["psi"] is not None and result["psi"] > t["psi"]:
            reasons.append(f"PSI {result['psi']:.3f} > {t['psi']}")
        if result["js"] is not None and result["js"] > t["js"]:
            reasons.append(f"JS {result['js']:.3f} > {t['js']}")
    else:
        if result["linf"] is not None and result["linf"] > t["linf"]:
            reasons.append(f"L-inf {result['linf']:.3f} > {t['linf']}")
        if result["unseen_rate"] > t["unseen_rate"]:
            reasons.append(f"unseen categories {result['unseen_rate']:.3f} ({result['unseen_examples']})")
    return reasons


def _parts_drift(
    kind: str, train: Mapping[str, Any], parts: Mapping[str, np.ndarray], rows: int, missing_rate: float, n: int, t: Any
) -> dict[str, Any]:
    """A text or image feature: each summary (token count, intensity, ...) compared like a numeric feature."""
    out: dict[str, Any] = {
        "kind": kind,
        "rows": rows,
        "missing_rate": missing_rate,
        "training_missing_rate": train["missing_rate"],
    }
    reasons = []
    if abs(missing_rate - train["missing_rate"]) > t["missing_rate_change"]:
        reasons.append(f"missing rate {train['missing_rate']:.3f} -> {missing_rate:.3f}")
    for part, live in parts.items():
        r = numeric_drift(train[part] | {"missing_rate": 0.0}, live)
        r["rows"] = rows
        out[part] = r
        reasons += [f"{part}: {x}" for x in verdict(r, n, t) if not x.startswith("missing rate")]
    out["reasons"] = reasons
    out["drift"] = bool(reasons)
    return out


def _is_missing_text(v: Any) -> bool:
    return v is None or v == "" or v == b""


def _text_drift(
    train: Mapping[str, Any], card: Mapping[str, Any], name: str, values: list[Any], n: int, t: Any
) -> dict[str, Any]:
    from compare.summaries import text_summary

    schema: dict[str, Any] = next((s for s in card.get("input_schema", []) if s.get("name") == name), {})
    texts = [
        v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values if not _is_missing_text(v)
    ]
    lengths, oov = text_summary(texts, set(schema.get("vocabulary", [])), train.get("standardize"))
    missing = (len(values) - len(texts)) / len(values) if values else 0.0
    out = _parts_drift("text", train, {"length": lengths}, len(values), missing, n, t)
    out |= {"oov_rate": oov, "training_oov_rate": train.get("oov_rate", 0.0)}
    if texts and abs(oov - train.get("oov_rate", 0.0)) > t["missing_rate_change"]:
        out["reasons"].append(f"out-of-vocabulary rate {train.get('oov_rate', 0.0):.3f} -> {oov:.3f}")
        out["drift"] = True
    return out


def _image_drift(train: Mapping[str, Any], values: list[Any], n: int, t: Any) -> dict[str, Any]:
    import base64

    from compare.summaries import image_summary

    raw = []
    for v in values:
        if isinstance(v, dict) and "b64" in v:  # as logged from a REST request
            v = base64.b64decode(v["b64"])
        raw.append(v if isinstance(v, bytes) else b"")
    present = [v for v in raw if v]
    summary = image_summary(present)
    missing = (len(raw) - len(present)) / len(raw) if raw else 0.0
    parts = {"mean_intensity": summary["mean_intensity"], "pixels": summary["pixels"]}
    return _parts_drift("image", train, parts, len(values), missing, n, t)


def drift_report(
    card: Mapping[str, Any], live: Mapping[str, list[Any]], thresholds: Mapping[str, float] | None = None
) -> dict[str, Any]:
    t = dict(THRESHOLDS) | dict(thresholds or {})
    stats = card["training_statistics"]
    features = {}
    for name, train in stats.items():
        values = live.get(name)
        if values is None:
            features[name] = {"kind": train["kind"], "rows": 0, "absent": True, "drift": False, "reasons": []}
            continue
        if train.get("drift") or (train["kind"] == "numeric" and "shape" in train):
            features[name] = {
                "kind": train["kind"],
                "skipped": train.get("drift") or "a tensor feature",
                "drift": False,
                "reasons": [],
                "rows": len(values),
            }
            continue
        if train["kind"] == "text":
            features[name] = _text_drift(train, card, name, list(values), len(stats), t)
            continue
        if train["kind"] == "image":
            features[name] = _image_drift(train, list(values), len(stats), t)
            continue
        if train["kind"] == "numeric":
            r = numeric_drift(train, np.array([np.nan if v is None else v for v in values], dtype=np.float64))
        else:
            r = categorical_drift(train, list(values), "" if train["kind"] == "string" else -1)  # as train.data
        r["reasons"] = verdict(r, len(stats), t)
        r["drift"] = bool(r["reasons"])
        features[name] = r
    rows = max((f["rows"] for f in features.values()), default=0)
    return {
        "model": card.get("name"),
        "version": card.get("version"),
        "rows": rows,
        "thresholds": t,
        "method": "chi-squared test" if rows < t["min_rows_for_distance"] else "distance thresholds",
        "drifted": sorted(k for k, f in features.items() if f["drift"]),
        "features": features,
    }


def live_inputs_from(source: str | Path) -> dict[str, list[Any]]:
    """Live inputs from a shadow log (SQLite or JSON Lines) or a CSV/Parquet file of requests."""
    path = Path(source)
    if path.suffix in (".csv", ".parquet"):
        import pandas as pd

        df = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        return {
            str(c): [None if isinstance(v, float) and math.isnan(v) else v for v in df[c].tolist()] for c in df.columns
        }
    from shipyard_client.sinks import read_records

    out: dict[str, list[Any]] = {}
    for r in read_records(path):
        inputs = r.get("inputs")
        rows = inputs if isinstance(inputs, list) else [inputs] if inputs else []
        for row in rows:
            for k, v in row.items():
                out.setdefault(k, []).extend(v if isinstance(v, list) else [v])
    return out


def _decision(f: Mapping[str, Any], rep: Mapping[str, Any]) -> tuple[float, str]:
    """How close a feature came to being flagged, as statistic / threshold (1 = the line), and the label
    saying which statistic decided: the chi-squared p-value below `min_rows_for_distance` rows, else
    PSI (numbers, text length, image intensity) or L-infinity (categories)."""
    t = rep["thresholds"]
    if f.get("skipped") or f.get("absent"):
        return 0.0, "skipped" if f.get("skipped") else "absent"
    main = f.get("length") if f["kind"] == "text" else f.get("mean_intensity") if f["kind"] == "image" else f
    main = main or {}
    if rep["method"] == "chi-squared test":
        p, alpha = main.get("p_value"), t["alpha"] / max(1, len(rep["features"]))
        if p is None:
            return 0.0, "no values"
        ratio = math.log10(max(p, 1e-300)) / math.log10(alpha)
        return ratio, f"p={p:.2g} (flag below {alpha:.2g})"
    if f["kind"] == "categorical":
        v = f.get("linf") or 0.0
        return v / t["linf"], f"L-inf {v:.3f} (limit {t['linf']})"
    v = main.get("psi") or 0.0
    what = {"text": "length PSI", "image": "intensity PSI"}.get(f["kind"], "PSI")
    return v / t["psi"], f"{what} {v:.3f} (limit {t['psi']})"


def plot(rep: Mapping[str, Any], path: Path) -> None:
    """Each feature's deciding statistic against its threshold (the dashed line); red: flagged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rep["features"])
    decisions = [_decision(rep["features"][n], rep) for n in names]
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(names) + 1.6))
    y = np.arange(len(names))
    colors = ["C3" if rep["features"][n]["drift"] else "C0" for n in names]
    ax.barh(y, [d[0] for d in decisions], color=colors)
    ax.axvline(1.0, color="k", linestyle="--", linewidth=1)
    for i, (ratio, label) in enumerate(decisions):
        ax.text(max(ratio, 0) + 0.02, i, label, va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("statistic / its threshold (flagged beyond the dashed line)")
    ax.set_xlim(0, max(2.0, max((d[0] for d in decisions), default=0) * 1.4))
    ax.set_title(
        f"drift of {rep['rows']} live rows vs the training data of {rep.get('model')} v{rep.get('version')} "
        f"(decided by {rep['method']}); red: flagged",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
