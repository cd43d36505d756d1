"""The model card, `assets.extra/model_card.json`: what the version is, where it came from, what it
takes, and the training-data statistics that live inputs are later compared with (drift).

Numeric features: `bin_edges` (deciles of the training split, strictly increasing; live values
below the first or above the last edge fall in the outer bins), `counts` per bin, missing rate,
min, max, mean. Categorical features: category frequencies (counts) and missing rate. Text: the
distribution of token counts (`length`, as for a numeric feature) and the out-of-vocabulary rate.
Images: the distributions of encoded size (`bytes`), pixel count (`pixels`) and `mean_intensity`.
A numeric feature with a shape: missing rate, min, max and mean over its elements (no bins: drift
is not tracked for it, and the card says so).

`format_version` 2 (cards written before it have none and read as 1): adds text and image kinds,
shapes, `required`, the builder's source and `trained_elsewhere`.
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
FORMAT_VERSION = 2
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


def training_statistics(
    spec: Spec, train_columns: Mapping[str, np.ndarray], learned: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    from compare.summaries import image_summary, text_summary
    from train.data import is_missing

    out = {}
    for f in spec.features:
        v = train_columns[f.name]
        missing_rate = float(is_missing(f.kind, v).mean()) if len(v) else 0.0
        if f.kind == "numeric" and f.shape:
            flat = v.reshape(len(v), -1)
            present = flat[~np.isnan(flat)]
            out[f.name] = {
                "kind": "numeric",
                "shape": list(f.shape),
                "rows": len(v),
                "missing_rate": missing_rate,
                "min": float(present.min()) if present.size else None,
                "max": float(present.max()) if present.size else None,
                "mean": float(present.mean()) if present.size else None,
                "drift": "not tracked for a tensor feature",
            }
        elif f.kind == "numeric":
            out[f.name] = {"kind": "numeric", **numeric_stats(v)}
        elif f.kind == "text":
            vocab = set((learned or {}).get(f.name, {}).get("vocabulary", []))
            lengths, oov = text_summary(v.tolist(), vocab, f.standardize)
            out[f.name] = {
                "kind": "text",
                "rows": len(v),
                "missing_rate": missing_rate,
                "standardize": f.standardize,
                "length": numeric_stats(lengths) if len(lengths) else {"rows": 0, "bin_edges": [], "counts": []},
                "oov_rate": oov,
            }
        elif f.kind == "image":
            summary = image_summary(v.tolist())
            out[f.name] = {"kind": "image", "rows": len(v), "missing_rate": missing_rate} | {
                k: numeric_stats(a) if len(a) else {"rows": 0, "bin_edges": [], "counts": []}
                for k, a in summary.items()
            }
        else:
            out[f.name] = {"kind": f.kind, **categorical_stats(v, "" if f.kind == "string" else MISSING_INT)}
    return out


def input_schema(spec: Spec, manifest: Mapping[str, Any], train_columns: Mapping[str, np.ndarray]) -> list[dict]:
    dtypes = {
        "numeric": "DT_FLOAT",
        "string": "DT_STRING",
        "integer": "DT_INT64",
        "text": "DT_STRING",
        "image": "DT_STRING",
    }
    missing = {"numeric": "NaN", "string": '""', "integer": str(MISSING_INT), "text": '""', "image": "empty bytes"}
    learned = manifest.get("feature_stats", {})
    out = []
    for f in spec.features:
        item: dict[str, Any] = {
            "name": f.name,
            "kind": f.kind,
            "dtype": dtypes[f.kind],
            "shape": [-1, *f.tensor_shape],
            "missing_value": missing[f.kind],
            "required": f.required,
        }
        if f.kind == "numeric" and f.shape:
            item["imputed_with"] = "the training mean over all elements"
        elif f.kind == "text":
            item["text"] = {
                "standardize": f.standardize,
                "output_mode": f.output_mode,
                "max_tokens": f.max_tokens,
                "ngrams": f.ngrams,
                "sequence_length": f.sequence_length,
            }
            item["vocabulary"] = learned.get(f.name, {}).get("vocabulary", [])
        elif f.kind == "image":
            item["image"] = {
                "encoding": "PNG or JPEG bytes",
                "decoded_to": [f.height, f.width, f.channels],
                "scaled_to": [0.0, 1.0],
            }
        elif f.kind == "numeric":
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
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "task": spec.task,
        "label": spec.label,
        "classes": manifest.get("classes"),
        "run": dict(manifest),
        "input_schema": input_schema(spec, manifest, train_columns),
        "signatures": dict(signatures),
        "builder": manifest.get("builder"),
        "trained_elsewhere": manifest.get("trained_elsewhere"),
        "training_statistics": training_statistics(spec, train_columns, manifest.get("feature_stats", {})),
    }


def write_card(saved_model_dir: Path, card: Mapping[str, Any]) -> Path:
    path = saved_model_dir / CARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_card(version_dir: Path) -> dict[str, Any]:
    return json.loads((version_dir / CARD_FILE).read_text(encoding="utf-8"))
