"""Write scikit-learn's bundled digits (1797 8x8 grayscale images, no download) as PNG files and a CSV.

    python -m examples.digits_data --out data/digits       # data/digits/digits.csv, data/digits/images/*.png

The CSV has `row_id`, `image` (the PNG's path relative to the CSV's folder, the way a spec's image
feature reads it) and `digit` (the label, 0-9). Pixel values 0-16 are scaled to 0-255.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np

from train.images import encode_png


def write(out: Path, limit: int | None = None) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    n = len(images) if limit is None else min(limit, len(images))
    (out / "images").mkdir(parents=True, exist_ok=True)
    csv_path = out / "digits.csv"
    tmp = out / ".digits.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "image", "digit"])
        for i in range(n):
            rel = f"images/{i:04d}.png"
            (out / rel).write_bytes(encode_png(images[i]))
            w.writerow([i, rel, int(digits.target[i])])
    os.replace(tmp, csv_path)
    return csv_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.digits_data", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="data/digits", help="the folder to write (default: %(default)s)")
    p.add_argument("--limit", type=int, help="only the first N images")
    args = p.parse_args(argv)
    print(write(Path(args.out), args.limit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
