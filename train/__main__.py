"""python -m train: train a model from a spec, or repeat a run and check its weights.

    python -m train --spec specs/penguins.toml [--seed N] [--source CSV|URL] [--as-of TS] [--out artifacts/runs]
    python -m train --reproduce artifacts/runs/<run_id> [--use-current-builder]

Exit codes: 0 done (or reproduced bit for bit), 1 reproduced weights differ, 2 bad input, 3 an
unexpected error (one line; the traceback with -v). No run directory is left on 2 or 3.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from train.errors import InputError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--spec", help="the feature spec (TOML), e.g. specs/penguins.toml")
    what.add_argument("--reproduce", metavar="RUN_DIR", help="retrain a run from its snapshot and compare weights")
    p.add_argument(
        "--use-current-builder",
        action="store_true",
        help="with --reproduce: run the builder file as it is now when it differs from the run's recorded copy",
    )
    p.add_argument("--seed", type=int, help="override the spec's [training].seed")
    p.add_argument("--source", help="a CSV or Parquet path, or a SQLAlchemy URL (default: the palmerpenguins CSV)")
    p.add_argument(
        "--as-of",
        help="with a SQL source: read the rows whose timestamp is at or before this "
        "ISO-8601 time (default: now, recorded in the manifest)",
    )
    p.add_argument(
        "--chunk-rows",
        type=int,
        default=None,
        help="rows read from the source at a time (default: 65536, fewer for wide rows); "
        "memory and results do not depend on it",
    )
    p.add_argument("--out", default="artifacts/runs", help="where run directories go (default: %(default)s)")
    p.add_argument(
        "--no-op-determinism",
        action="store_true",
        help="turn TF op determinism off (for GPU ops without a deterministic kernel); recorded",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="also TensorFlow's C++ start-up lines and a builder's traceback"
    )
    return p


def _summary(m: dict, path: Path) -> str:
    metrics = "  ".join(
        f"{split}: " + ", ".join(f"{k}={v:.4f}" for k, v in vals.items() if k != "rows")
        for split, vals in m["metrics"].items()
    )
    return (
        f"run {m['run_id']}\n  path           {path}\n  rows           {m['rows']} "
        f"(train {m['split_sizes']['train']}, validation {m['split_sizes']['validation']}, "
        f"test {m['split_sizes']['test']})\n  metrics        {metrics}\n"
        f"  data_sha256    {m['data_sha256']}\n  weights_sha256 {m['weights_sha256']}\n"
        f"  seed {m['seed']}, device {m['device']}, {m['wall_time_seconds']:.1f}s"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        from train import quiet, run

        if args.reproduce:
            if args.spec or args.seed is not None or args.source or args.as_of or args.chunk_rows is not None:
                raise InputError(
                    "--reproduce takes everything from the run; no --seed, --source, --as-of or --chunk-rows"
                )
            quiet.import_tensorflow(not args.verbose)
            r = run.reproduce(Path(args.reproduce), use_current_builder=args.use_current_builder)
            if r.builder_ran:
                print(f"ran {r.builder_ran}")
            if r.matches:
                print(f"reproduced: weights_sha256 {r.got} matches the manifest")
                return 0
            print(
                f"NOT reproduced: weights_sha256 {r.got} != manifest {r.expected}"
                + (f" (environment differs: {'; '.join(r.differences)})" if r.differences else "")
            )
            return 1
        if args.use_current_builder:
            raise InputError("--use-current-builder goes with --reproduce")
        from train.data import DEFAULT_CHUNK_ROWS
        from train.spec import load_spec

        spec = load_spec(args.spec)
        if args.seed is not None:
            if not 0 <= args.seed < 2**32:
                raise InputError(f"--seed must be in [0, 2**32), got {args.seed}")
            spec = spec.with_seed(args.seed)
        quiet.import_tensorflow(not args.verbose)
        result = run.train_run(
            spec,
            args.source,
            args.as_of,
            Path(args.out),
            op_determinism=not args.no_op_determinism,
            spec_path=args.spec,
            chunk_rows=DEFAULT_CHUNK_ROWS if args.chunk_rows is None else args.chunk_rows,
        )
        print(_summary(result.manifest, result.path))
        return 0
    except InputError as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - one line and an exit code of its own, never a traceback
        from train.quiet import unexpected_error

        return unexpected_error("train", e, args.verbose, 3)


if __name__ == "__main__":
    sys.exit(main())
