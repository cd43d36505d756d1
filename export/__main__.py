"""python -m export: publish a training run, or a model trained elsewhere, as a served-ready SavedModel version.

    python -m export --run artifacts/runs/<run_id> --model-base-path models [--name NAME] [--version N]
                     [--keep N] [--allow-breaking] [--force]
    python -m export --model MODEL.keras|SAVED_MODEL_DIR --spec SPEC.toml --data CSV|URL [--as-of TS]
                     [--classes A,B,...] --model-base-path models [...]

A published version is a **candidate**: it is labelled `canary` in `<model base path>/models.config`
while `stable` keeps its version (the first version of a model becomes `stable`); `promote` and
`rollback` (python -m release) move `stable`. With `--server` the canary is loaded and
labelled through the server at once; without, a server polling models.config picks it up.
`--newest-takes-all` leaves the labels alone.

Exit codes: 0 published; 1 not published (validation or the differential gate failed); 2 bad input;
3 an unexpected error (one line; the traceback with -v); 4 published, but the server could not take the
canary label (models.config unchanged). Nothing is published on 1, 2 or 3.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from modelbase import ConfigFileError
from train.errors import InputError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--run", help="a run directory written by python -m train")
    what.add_argument(
        "--model", help="a .keras file or a SavedModel directory trained elsewhere (needs --spec, --data)"
    )
    p.add_argument("--spec", help="with --model: the spec declaring its inputs, task and label")
    p.add_argument("--data", help="with --model: labelled rows to validate and gate on (a CSV path or a SQL URL)")
    p.add_argument("--as-of", help="with --model and a SQL --data: read the rows as of this time")
    p.add_argument("--classes", help="with --model: the class names in the order of its outputs (default: sorted)")
    p.add_argument("--model-base-path", required=True, help="where models/<name>/<version>/ go")
    p.add_argument("--name", help="the model name (default: the spec's [model].name)")
    p.add_argument("--version", type=int, help="the version number (default: one above the highest present)")
    p.add_argument("--keep", type=int, help="after publishing, keep only the newest N versions (labelled ones stay)")
    p.add_argument("--allow-breaking", action="store_true", help="publish even if the interface changed")
    p.add_argument("--force", action="store_true", help="publish even if the differential gate fails")
    p.add_argument(
        "--server",
        help="host:port of a running server: the canary is loaded and labelled through HandleReloadConfigRequest",
    )
    p.add_argument(
        "--newest-takes-all",
        action="store_true",
        help="no labels: the new version serves every request once loaded (the behaviour before canary-first)",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true", help="also TensorFlow's C++ start-up lines")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    from train import quiet

    quiet.import_tensorflow(not args.verbose)
    from export.pipeline import Rejected, export_outside, export_run

    try:
        if args.run:
            if args.spec or args.data or args.as_of or args.classes:
                raise InputError("--spec, --data, --as-of and --classes go with --model; a run has its own")
            r = export_run(
                Path(args.run),
                Path(args.model_base_path),
                args.name,
                args.version,
                args.keep,
                args.allow_breaking,
                args.force,
            )
        else:
            if not args.spec or not args.data:
                raise InputError("--model needs --spec (its inputs, task and label) and --data (labelled rows)")
            r = export_outside(
                Path(args.model),
                args.spec,
                args.data,
                args.as_of,
                Path(args.model_base_path),
                args.name,
                args.version,
                args.keep,
                args.allow_breaking,
                args.force,
                [c.strip() for c in args.classes.split(",")] if args.classes else None,
            )
    except (InputError, ConfigFileError) as e:  # ConfigFileError: a models.config that does not parse
        print(f"export: error: {e}", file=sys.stderr)
        return 2
    except Rejected as e:
        print(f"export: not published: {e}", file=sys.stderr)
        if e.report and "production_version" in e.report and args.run:
            print(
                f"export: the differential report is kept in {Path(args.run) / 'differential_report.json'}",
                file=sys.stderr,
            )
        return 1
    except Exception as e:  # noqa: BLE001 - one line and an exit code of its own, never a traceback
        from train.quiet import unexpected_error

        return unexpected_error("export", e, args.verbose, 3)
    if r.gate is None:
        verdict = "no earlier version to compare with"
    else:
        verdict = f"{r.gate['verdict']} against version {r.gate['production_version']}"
        if r.gate.get("forced"):
            verdict += " (forced)"
    print(
        f"published {r.name} version {r.version}\n  path       {r.path}\n  gate       {verdict}\n"
        f"  validation {r.validation['rows']} test rows, {r.validation['warmup_records']} warmup records, "
        f"max abs diff {max(r.validation['max_abs_diff'].values()):.2e}\n  took       {r.seconds:.1f}s"
        + (f"\n  pruned     versions {r.pruned}" if r.pruned else "")
    )
    if args.newest_takes_all:
        print("  serving    no labels moved: the newest version takes every request once loaded")
        return 0
    from release import model_config

    base = Path(args.model_base_path)
    try:
        server = model_config.Server(args.server) if args.server else None
        now = model_config.release_candidate(base, r.name, r.version, server)
    except (model_config.ServerError, model_config.ReleaseError, ConfigFileError) as e:
        print(
            f"export: version {r.version} is published but not labelled: {e}; models.config is unchanged",
            file=sys.stderr,
        )
        return 4
    print(f"  serving    {model_config.serving_summary(r.name, now)}")
    if "canary" in now and now.get("canary") == r.version:
        print(
            f"  next       python -m release promote --model-base-path {base} --name {r.name}"
            + (f" --server {args.server}" if args.server else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
