"""Request sets for `make drift`: `fresh.csv`, rows drawn from the penguins data as they are, and
`drifted.csv`, the same rows with bills 8 mm longer, bodies 20% heavier and a third of them from an
island never seen in training ("Atlantis").

    python scripts/make_requests.py [--out artifacts/demo] [--rows 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from train.data import penguins_csv


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="artifacts/demo", type=Path)
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    df = pd.read_csv(penguins_csv())
    fresh = df.sample(n=args.rows, replace=True, random_state=args.seed).reset_index(drop=True)
    drifted = fresh.copy()
    drifted["bill_length_mm"] = drifted["bill_length_mm"] + 8.0
    drifted["body_mass_g"] = drifted["body_mass_g"] * 1.2
    drifted.loc[np.arange(len(drifted)) % 3 == 0, "island"] = "Atlantis"
    args.out.mkdir(parents=True, exist_ok=True)
    fresh.to_csv(args.out / "fresh.csv", index=False)
    drifted.to_csv(args.out / "drifted.csv", index=False)
    print(f"wrote {args.out / 'fresh.csv'} and {args.out / 'drifted.csv'} ({args.rows} rows each)")


if __name__ == "__main__":
    main()
