"""The model card, `assets.extra/model_card.json`: what the version is, where it came from, what it
takes, and the training-data statistics that live inputs are later compared with (drift).

Numeric features: `bin_edges` (deciles of the training split, strictly increasing; live values
below the first or above the last edge fall in the outer bins), `counts` per bin, missing rate,
min, max, mean. Categorical features: category frequencies (counts) and missing rate.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from train.data import MISSING_INT
from train.spec import Spec

CARD_FILE = Path("assets.extra") / "model_card.json"
N_BINS = 10


def bin_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts in len(edges)-1 bins; values outside the edges go to the outer bins, NaN is not counted."""
    v = values[~np.isnan(values)]
    idx = np.clip(np.searchsorted(np.asarray(edges), v, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1).astype(int).tolist()


def numeric_stats(values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    out: dict[str, Any] = {"rows": len(values), "missing_rate": float(1 - len(present) / len(values))}
    if len(present) == 0:
        return out | {"bin_edges": [], "counts": []}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, N_BINS + 1))).tolist()
    if len(edges) == 1:
        edges = [edges[0], edges[0] + 1.0]
    return out | {
        "bin_edges": edges,
        "counts": bin_counts(present, edges),
        "min": float(present.min()),
        "max": float(present.max()),
        "mean": float(present.mean()),
    }


def categorical_stats(values: np.ndarray, missing: object) -> dict[str, Any]:
    counts = Counter(v for v in values.tolist() if v != missing)
    return {
        "rows": len(values),
        "missing_rate": float(np.mean(values == missing)),
        "frequencies": {str(k): c for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))},
    }


def training_statistics(spec: Spec, train_columns: Mapping[str, np.ndarray]) -> dict[str, Any]:
    out = {}
    for f in spec.features:
        v = train_columns[f.name]
        if f.kind == "numeric":
            out[f.name] = {"kind": "numeric", **numeric_stats(v)}
        else:
            out[f.name] = {"kind": f.kind, **categorical_stats(v, "" if f.kind == "string" else MISSING_INT)}
    return out


def input_schema(spec: Spec, manifest: Mapping[str, Any], train_columns: Mapping[str, np.ndarray]) -> list[dict]:
    dtypes = {"numeric": "DT_FLOAT", "string": "DT_STRING", "integer": "DT_INT64"}
    missing = {"numeric": "NaN", "string": '""', "integer": str(MISSING_INT)}
    learned = manifest.get("feature_stats", {})
    out = []
    for f in spec.features:
        item: dict[str, Any] = {
            "name": f.name,
            "kind": f.kind,
            "dtype": dtypes[f.kind],
            "shape": [-1],
            "missing_value": missing[f.kind],
        }
        if f.kind == "numeric":
            present = train_columns[f.name][~np.isnan(train_columns[f.name])]
            item["range"] = [float(present.min()), float(present.max())] if len(present) else None
            item["imputed_with"] = learned.get(f.name, {}).get("mean")
            if f.bucketize:
                item["bucketize"] = list(f.bucketize)
        elif f.hash_bins:
            item["hash_bins"] = f.hash_bins
        else:
            item["vocabulary"] = learned.get(f.name, {}).get("vocabulary", [])
            item["out_of_vocabulary"] = "one bucket"
        out.append(item)
    return out


def build_card(
    name: str,
    version: int,
    spec: Spec,
    manifest: Mapping[str, Any],
    signatures: Mapping[str, Any],
    train_columns: Mapping[str, np.ndarray],
) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "task": spec.task,
        "label": spec.label,
        "classes": manifest.get("classes"),
        "run": dict(manifest),
        "input_schema": input_schema(spec, manifest, train_columns),
        "signatures": dict(signatures),
        "training_statistics": training_statistics(spec, train_columns),
    }


def write_card(saved_model_dir: Path, card: Mapping[str, Any]) -> Path:
    path = saved_model_dir / CARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_card(version_dir: Path) -> dict[str, Any]:
    return json.loads((version_dir / CARD_FILE).read_text(encoding="utf-8"))
