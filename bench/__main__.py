"""Run the benchmarks and report: a table on stdout, JSON in artifacts/bench/results.json."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BENCHMARKS = [
    "bench.train_throughput",
    "bench.train_scale",
    "bench.export_time_size",
    "bench.digits_cnn",
    "bench.serving",
    "bench.serving_frontends",
    "bench.http_libraries",
    "bench.client_sdk",
    "bench.shadow_overhead",
]

EXTRA = ["bench.train_scale_5m"]  # run only when named (`make bench-large`)


def _table(results: dict[str, dict]) -> str:
    lines = [f"{'benchmark':<22} {'metric':<44} {'value':>14}  unit", "-" * 90]
    for name, r in results.items():
        for row in r["rows"]:
            v = row["value"]
            shown = f"{v:,.3f}" if isinstance(v, float) else str(v)
            lines.append(f"{name:<22} {row['metric']:<44} {shown:>14}  {row.get('unit', '')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "names", nargs="*", help="benchmarks to run (default: all but the large ones): " + ", ".join(BENCHMARKS + EXTRA)
    )
    p.add_argument("--out", default="artifacts/bench", help="where the JSON goes (default: %(default)s)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    chosen = [b for b in BENCHMARKS + EXTRA if (b in BENCHMARKS and not args.names) or b.split(".")[-1] in args.names]
    if not chosen:
        print(f"no benchmark named {args.names}; have: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    results = {}
    for modname in chosen:
        mod = importlib.import_module(modname)
        logging.info("benchmark %s: %s", mod.NAME, mod.TITLE)
        start = time.perf_counter()
        rows = mod.run()
        results[mod.NAME] = {"title": mod.TITLE, "seconds": round(time.perf_counter() - start, 2), "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(_table(results))
    print(f"\nwritten: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
