"""Load the penguins rows into a SQL table with ingestion timestamps, to try the as-of path.

    python -m train.sql_table [--url sqlite:///artifacts/penguins.db] [--table penguins]

Row i (the CSV's row_id) is stamped `start + i * step` (default 2024-01-01T00:00, one hour apart),
so `--as-of 2024-01-08T00:00:00` reads the first 169 rows (ids 0 to 168). The table keeps the key
column `row_id`. An existing table of that name is replaced.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys

from train.data import penguins_csv

NUMERIC = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")


def write_penguins_table(
    url: str,
    table: str = "penguins",
    start: dt.datetime = dt.datetime(2024, 1, 1),
    step: dt.timedelta = dt.timedelta(hours=1),
    limit: int | None = None,
) -> int:
    import sqlalchemy as sa

    with open(penguins_csv(), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:limit]
    md = sa.MetaData()
    t = sa.Table(
        table,
        md,
        sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ingested_at", sa.DateTime, nullable=False, index=True),
        sa.Column("species", sa.String),
        sa.Column("island", sa.String),
        *(sa.Column(n, sa.Float) for n in NUMERIC),
        sa.Column("sex", sa.String),
        sa.Column("year", sa.Integer),
    )

    def value(name: str, v: str) -> object:
        if v in ("", "NA"):
            return None
        if name in NUMERIC:
            return float(v)
        return int(v) if name == "year" else v

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            md.drop_all(conn, tables=[t], checkfirst=True)
            md.create_all(conn, tables=[t])
            if not rows:
                return 0
            conn.execute(
                t.insert(),
                [
                    {"row_id": i, "ingested_at": start + i * step, **{k: value(k, v) for k, v in r.items()}}
                    for i, r in enumerate(rows)
                ],
            )
    finally:
        engine.dispose()
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.sql_table", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="sqlite:///artifacts/penguins.db")
    p.add_argument("--table", default="penguins")
    args = p.parse_args(argv)
    if args.url.startswith("sqlite:///"):
        from pathlib import Path

        Path(args.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    n = write_penguins_table(args.url, args.table)
    print(f"wrote {n} rows to table {args.table!r} at {args.url} (ingested_at 2024-01-01T00:00 + row_id hours)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
