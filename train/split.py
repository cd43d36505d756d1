"""A deterministic train/validation/test split that stays stable when rows are appended.

Each row goes to a split by a hash of (split seed, row key), never by a shuffle of positions:
appending rows does not move any existing row to another split.

>>> import numpy as np
>>> s = assign_splits(np.arange(1000), split_seed=0, validation_fraction=0.15, test_fraction=0.15)
>>> sorted(set(s.tolist())), bool(abs((s == "test").mean() - 0.15) < 0.05)
(['test', 'train', 'validation'], True)
"""

from __future__ import annotations

import hashlib

import numpy as np

SPLITS = ("train", "validation", "test")


def unit_hash(split_seed: int, key: object) -> float:
    """A number in [0, 1) fixed by the seed and the key alone."""
    digest = hashlib.sha256(f"{split_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(keys: np.ndarray, split_seed: int, validation_fraction: float, test_fraction: float) -> np.ndarray:
    u = np.array([unit_hash(split_seed, k) for k in keys.tolist()], dtype=np.float64)
    out = np.full(len(keys), "train", dtype=object)
    out[u < test_fraction + validation_fraction] = "validation"
    out[u < test_fraction] = "test"
    return out
