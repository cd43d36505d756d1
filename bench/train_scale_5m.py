"""Training 5M synthetic penguins-like rows, 2 epochs, streaming (`make bench-large`; not in `make
bench`: about ten minutes). Target: peak RSS at most 2 GB, wall per row no worse than the in-memory
path measured at 1M rows by `train_scale` (104 to 139 µs a row before streaming)."""

from __future__ import annotations

from bench.train_scale import measure

NAME = "train_scale_5m"
TITLE = "training 5M rows streaming (wall per row, peak RSS; target <= 2 GB)"


def run() -> list[dict]:
    return measure((5_000_000,), baseline=False)
