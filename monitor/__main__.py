"""python -m monitor: reports on a deployment.

    python -m monitor shadow-report --db artifacts/shadow.db [--classes A,B,C] [--out DIR]
    python -m monitor drift --card models/penguins/1 --inputs shadow.db|requests.csv|requests.parquet [--out DIR]
    python -m monitor diff --target HOST:PORT --model penguins --baseline stable --candidate canary \
                           --card models/penguins/2 --data labelled.csv|RUN_DIR [--out DIR]
    python -m monitor diff --baseline-dir models/penguins/1 --candidate-dir models/penguins/2 --data ... [--out DIR]

Each prints a summary, writes JSON and a PNG into --out. Exit codes:
  0  done (no drift; no threshold crossed)
  1  drift exits 1 when a feature drifted; diff exits 1 when a threshold is crossed
  2  bad input (a missing file, a card without training statistics, a bad flag)
  3  the server could not be reached, or answered with an error (live diff)
  4  an unexpected error: one line here, the traceback with -v
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _shadow(args: argparse.Namespace) -> int:
    from monitor import shadow_report

    classes = args.classes.split(",") if args.classes else None
    rep = shadow_report.report_from(args.db, classes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "shadow_report.json").write_text(json.dumps(rep, indent=2) + "\n")
    shadow_report.plot(rep, out / "shadow_report.png")
    lat = rep["latency"]
    print(
        f"shadow report: {rep['records']} records (primary versions {rep['primary_versions']}, shadow versions "
        f"{rep['shadow_versions']}), {rep['errors']} errors, client: {rep['client']}"
    )
    if rep.get("task") == "classification":
        print(f"  agreement {rep['agreement']:.4f}; flip rate per class {rep['flip_rate_per_class']}")
        sd = rep["score_difference"]
        print(f"  |score difference| mean {sd['mean']:.5f}, p99 {sd['p99']:.5f}, max {sd['max']:.5f}")
        print(f"  flip matrix (rows primary, columns shadow): {rep['flip_matrix']['counts']}")
    elif rep.get("task") == "regression":
        print(f"  shadow - primary: mean {rep['mean_difference']:.4f}, MAE {rep['mae']:.4f}, RMSE {rep['rmse']:.4f}")
    print(
        f"  latency p50/p99 ms: primary {lat['primary']['p50_ms']}/{lat['primary']['p99_ms']}, shadow "
        f"{lat['shadow']['p50_ms']}/{lat['shadow']['p99_ms']}"
    )
    print(f"  written: {out / 'shadow_report.json'}, {out / 'shadow_report.png'}")
    return 0


def _drift(args: argparse.Namespace) -> int:
    from monitor import drift

    card = drift.read_card(args.card)
    if "training_statistics" not in card:
        raise ValueError(f"{args.card}: the model card has no training_statistics")
    rep = drift.drift_report(card, drift.live_inputs_from(args.inputs))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "drift_report.json").write_text(json.dumps(rep, indent=2) + "\n")
    drift.plot(rep, out / "drift_report.png")
    print(f"drift of {rep['rows']} live rows against {rep['model']} v{rep['version']} ({rep['method']}):")
    for name, f in rep["features"].items():
        metric = (
            f"PSI {f['psi']:.3f} JS {f['js']:.3f}"
            if f.get("psi") is not None
            else (f"L-inf {f['linf']:.3f} unseen {f['unseen_rate']:.3f}" if f.get("linf") is not None else "no values")
        )
        print(f"  {'DRIFT' if f['drift'] else 'ok   '} {name:<20} {metric}  {'; '.join(f['reasons'])}")
    print(f"  written: {out / 'drift_report.json'}, {out / 'drift_report.png'}")
    return 1 if rep["drifted"] else 0


def _diff(args: argparse.Namespace) -> int:
    from compare.plots import plot_comparison
    from monitor import diff

    if args.target:
        if not (args.model and args.baseline and args.candidate and args.card):
            raise ValueError("live diff needs --model, --baseline, --candidate and --card")
        card = _card(args.card)
        inputs, y = diff.labelled_data(card, args.data)
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
        base, bv = diff.predict_live(args.target, args.model, args.baseline, inputs, card["task"], args.batch_size)
        cand, cv = diff.predict_live(args.target, args.model, args.candidate, inputs, card["task"], args.batch_size)
    else:
        if not (args.baseline_dir and args.candidate_dir):
            raise ValueError("give --target (live) or --baseline-dir and --candidate-dir (on disk)")
        card = _card(args.card or args.candidate_dir)
        inputs, y = diff.labelled_data(card, args.data)
        base, bv = diff.predict_disk(Path(args.baseline_dir), inputs, card["task"])
        cand, cv = diff.predict_disk(Path(args.candidate_dir), inputs, card["task"])
    rep = diff.diff(card, y, base, cand) | {"baseline_version": bv, "candidate_version": cv, "production_version": bv}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diff_report.json").write_text(json.dumps(rep, indent=2) + "\n")
    where = f"{args.model} at {args.target}" if args.target else "two versions on disk"
    plot_comparison(
        rep,
        out / "diff_report.png",
        title=f"monitor diff ({where}): v{cv} ({args.candidate or args.candidate_dir}) vs v{bv} "
        f"({args.baseline or args.baseline_dir}) on {Path(args.data).name}, {rep['rows']} rows: "
        f"{rep['verdict'].upper()}",
        sides=(f"baseline v{bv}", f"candidate v{cv}"),
    )
    m = rep["metrics"]
    print(
        f"diff of version {cv} (candidate) against {bv} (baseline) on {rep['rows']} labelled rows: "
        f"{rep['verdict'].upper()}"
    )
    print(f"  baseline {m['production']}\n  candidate {m['candidate']}")
    if "agreement" in rep:
        print(f"  agreement {rep['agreement']:.4f}; flip rate per class {rep['flip_rate_per_class']}")
    for f in rep["failures"]:
        print(f"  threshold crossed: {f}")
    print(f"  written: {out / 'diff_report.json'}, {out / 'diff_report.png'}")
    return 1 if rep["failures"] else 0


def _card(path: str | Path) -> dict:
    from monitor.drift import read_card

    return read_card(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m monitor", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("shadow-report")
    s.add_argument("--db", required=True, help="a shadow log: SQLite database or JSON Lines file")
    s.add_argument("--classes", help="class names in score order, comma-separated")
    s.add_argument("--out", default="artifacts/monitor")
    d = sub.add_parser("drift")
    d.add_argument("--card", required=True, help="a published version directory or its model_card.json")
    d.add_argument("--inputs", required=True, help="a shadow log, or a CSV/Parquet of requests")
    d.add_argument("--out", default="artifacts/monitor")
    f = sub.add_parser("diff")
    f.add_argument("--target", help="host:port of the server (live diff)")
    f.add_argument("--model")
    f.add_argument("--baseline", help="label or version number")
    f.add_argument("--candidate", help="label or version number")
    f.add_argument("--baseline-dir", help="a published version directory (diff on disk)")
    f.add_argument("--candidate-dir")
    f.add_argument("--card", help="the candidate's version directory or model_card.json")
    f.add_argument("--data", required=True, help="labelled rows: CSV or Parquet, or a training run directory")
    f.add_argument("--out", default="artifacts/monitor")
    f.add_argument(
        "--batch-size", type=int, default=512, help="rows per request in a live diff (smaller when the server asks)"
    )
    for sp in (s, d, f):
        sp.add_argument("-v", "--verbose", action="store_true", help="progress, and the traceback of an error")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    from shipyard_client import ShipyardError

    if args.command == "diff" and not args.target:  # on disk: TensorFlow loads the versions
        from train import quiet

        quiet.import_tensorflow(not args.verbose)
    try:
        if args.command == "diff":
            return _diff(args)
        return _shadow(args) if args.command == "shadow-report" else _drift(args)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError) as e:
        print(f"monitor: error: {e}", file=sys.stderr)
        return 2
    except ShipyardError as e:
        print(f"monitor: the server: {e}", file=sys.stderr)
        return 3
    except Exception as e:  # noqa: BLE001 - one line and an exit code of its own, never a traceback
        from train.quiet import unexpected_error

        return unexpected_error("monitor", e, args.verbose, 4)


if __name__ == "__main__":
    sys.exit(main())
