"""Training at scale: `python -m train` (streaming: chunks, snapshot, split stores, batches gathered in
a seeded permutation) on synthetic penguins-like CSVs of 100k and 1M rows, 2 epochs, against the
in-memory path on the same rows in the same run: every row loaded, split and fed to `model.fit` as
numpy arrays (Keras shuffling in memory). Each side runs in a process of its own; its peak RSS is
the kernel's (ru_maxrss of that process), its wall time the whole command's.

The 5M-row point takes about ten minutes a side; it is the separate benchmark `train_scale_5m`
(`make bench-large`), which runs the streaming side only (the in-memory side needed 12.7 GB there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NAME = "train_scale"
TITLE = "training 100k and 1M rows: streaming vs in memory (wall per row, peak RSS)"
SIZES = (100_000, 1_000_000)
EPOCHS = 2

SPEC = """
[model]
name = "penguins_synthetic"
task = "classification"
label = "species"

[data]
key = "row_id"

[[features]]
name = "bill_length_mm"
kind = "numeric"

[[features]]
name = "bill_depth_mm"
kind = "numeric"

[[features]]
name = "flipper_length_mm"
kind = "numeric"
bucketize = [185.0, 195.0, 205.0, 215.0]

[[features]]
name = "body_mass_g"
kind = "numeric"

[[features]]
name = "island"
kind = "string"

[[features]]
name = "sex"
kind = "string"

[[features]]
name = "year"
kind = "integer"

[training]
seed = 42
epochs = {epochs}
batch_size = 32
learning_rate = 0.01
hidden_units = [16]
"""


def write_rows(path: Path, n: int, seed: int = 0, block: int = 500_000) -> None:
    """A CSV like the penguins one (same columns, about 60 bytes a row), written a block at a time."""
    rng = np.random.default_rng(seed)
    species = np.array(["Adelie", "Chinstrap", "Gentoo"])
    islands = np.array(["Biscoe", "Dream", "Torgersen"])
    means = np.array([[38.8, 18.3, 190.0, 3700.0], [48.8, 18.4, 196.0, 3733.0], [47.5, 15.0, 217.0, 5076.0]])
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n")
        for start in range(0, n, block):
            m = min(block, n - start)
            s = rng.integers(0, 3, m)
            x = means[s] * rng.normal(1.0, 0.06, (m, 4))
            cells = [np.char.mod("%.1f", x[:, j]).astype(object) for j in range(4)]
            for j in range(4):
                cells[j][rng.random(m) < 0.01] = "NA"
            sex = np.where(rng.random(m) < 0.5, "male", "female").astype(object)
            sex[rng.random(m) < 0.03] = "NA"
            isl = islands[(s + rng.integers(0, 2, m)) % 3]
            year = 2007 + rng.integers(0, 3, m)
            lines = [
                f"{a},{b},{c},{d},{e},{f},{g},{h}\n"
                for a, b, c, d, e, f, g, h in zip(species[s], isl, *cells, sex, year.tolist(), strict=True)
            ]
            fh.write("".join(lines))


def _measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of one command run to its end (it must succeed)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024 / 1024  # KiB on Linux


def in_memory(spec_path: str, csv_path: str) -> None:
    """The in-memory path: every row in memory, then model.fit on numpy arrays (run as a subprocess)."""
    import keras

    from train.data import load_rows
    from train.model import build_model, feature_stats, model_inputs
    from train.run import split_rows
    from train.spec import encode_labels, load_spec

    spec = load_spec(spec_path)
    rows = load_rows(spec, csv_path, None)
    splits = split_rows(spec, rows.columns, rows.key)
    del rows
    classes = sorted(set(splits["train"][spec.label].tolist()))
    keras.utils.set_random_seed(spec.training.seed)
    stats = {f.name: feature_stats(f, splits["train"][f.name]) for f in spec.features}
    model = build_model(spec, stats, len(classes))
    model.compile(
        optimizer=keras.optimizers.Adam(spec.training.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x, y = model_inputs(spec, splits["train"]), encode_labels(spec, splits["train"][spec.label], classes)
    xv, yv = model_inputs(spec, splits["validation"]), encode_labels(spec, splits["validation"][spec.label], classes)
    model.fit(
        x, y, batch_size=spec.training.batch_size, epochs=spec.training.epochs, validation_data=(xv, yv), verbose=0
    )


def measure(sizes: tuple[int, ...], baseline: bool) -> list[dict]:
    rows_out: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.toml"
        spec_path.write_text(SPEC.replace("{epochs}", str(EPOCHS)), encoding="utf-8")
        for n in sizes:
            csv_path = Path(tmp) / f"rows_{n}.csv"
            write_rows(csv_path, n)
            env_py = sys.executable
            wall, rss = _measure(
                [
                    env_py,
                    "-m",
                    "train",
                    "-q",
                    "--spec",
                    str(spec_path),
                    "--source",
                    str(csv_path),
                    "--out",
                    str(Path(tmp) / "runs"),
                ]
            )
            ctx = {"rows": n, "epochs": EPOCHS, "batch_size": 32}
            rows_out.append(
                {
                    "metric": f"{n:,} rows: streaming wall per row",
                    "value": round(wall / n * 1e6, 1),
                    "unit": "µs/row",
                    **ctx,
                }
            )
            rows_out.append({"metric": f"{n:,} rows: streaming peak RSS", "value": round(rss, 3), "unit": "GB", **ctx})
            if baseline:
                code = "import sys; from bench.train_scale import in_memory; in_memory(sys.argv[1], sys.argv[2])"
                bwall, brss = _measure([env_py, "-c", code, str(spec_path), str(csv_path)])
                rows_out += [
                    {
                        "metric": f"{n:,} rows: in-memory wall per row",
                        "value": round(bwall / n * 1e6, 1),
                        "unit": "µs/row",
                        **ctx,
                    },
                    {"metric": f"{n:,} rows: in-memory peak RSS", "value": round(brss, 3), "unit": "GB", **ctx},
                    {
                        "metric": f"{n:,} rows: wall streaming / in memory",
                        "value": round(wall / bwall, 3),
                        "unit": "ratio",
                    },
                    {
                        "metric": f"{n:,} rows: peak RSS streaming / in memory",
                        "value": round(rss / brss, 3),
                        "unit": "ratio",
                    },
                ]
            csv_path.unlink()
    return rows_out


def run() -> list[dict]:
    return measure(SIZES, baseline=True)
