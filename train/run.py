"""A training run: read the rows, snapshot them, split, fit, and write `<out>/<run_id>/` atomically.

The run directory is built under a hidden temporary name and renamed into place at the end: a run
that fails at any point leaves no run directory behind. Its files:

    manifest.json          seed, spec, data source and as-of, hashes, split sizes, metrics, versions
    spec.toml              the spec as it was read
    snapshot.parquet       the exact rows used (see train.snapshot for the hash)
    model.keras            the trained model (raw features in, see train.model)
    training_curves.png    loss and metric per epoch
    history.json           the same curves as numbers
    builder/<module>.py    with a `[model] builder`: the module file that built the model (hash in the manifest)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelbase import fsync_tree
from train import builder as builders
from train import data, manifest, prepare, snapshot, split
from train.errors import InputError
from train.spec import Spec, parse_spec

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
WORK_DIR = ".work"  # the staging and split stores while a run trains; removed before the run is complete
SPEC_FILE = "spec.toml"


def split_rows(spec: Spec, columns: dict[str, np.ndarray], key: str) -> dict[str, dict[str, np.ndarray]]:
    """The split of rows held in memory (tools and the export's gate; training streams, see train.prepare)."""
    t = spec.training
    assigned = split.assign_splits(columns[key], t.split_seed, t.validation_fraction, t.test_fraction)
    out = {name: {k: v[assigned == name] for k, v in columns.items()} for name in split.SPLITS}
    empty = [name for name in split.SPLITS if len(out[name][key]) == 0]
    if empty:
        raise InputError(f"data: {len(columns[key])} rows leave the {empty[0]} split empty; more rows are needed")
    return out


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


@dataclass
class RunResult:
    path: Path
    manifest: dict[str, Any]


def train_run(
    spec: Spec,
    source: str | None,
    as_of: str | None,
    out: Path,
    op_determinism: bool = True,
    spec_path: str | None = None,
    chunk_rows: int = data.DEFAULT_CHUNK_ROWS,
) -> RunResult:
    """Read `source` in chunks of `chunk_rows` rows into the run's snapshot and split stores (see
    train.prepare), then fit: memory holds a chunk or a block of rows, never all of them."""
    wall = time.perf_counter()
    source_code = builders.locate(spec.builder) if spec.builder else None
    reading = data.Reading(spec, source, as_of, chunk_rows)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out: cannot create {out}: {e.strerror}") from None
    run_id = new_run_id()
    tmp = out / f".tmp-{run_id}"
    tmp.mkdir()
    try:
        prepared = prepare.prepare(spec, reading, tmp / WORK_DIR, tmp / snapshot.SNAPSHOT_FILE, reading.counts)
        counts = reading.counts

        from train import fit, plots  # TensorFlow is imported only once the input is known to be good

        (tmp / SPEC_FILE).write_text(spec.source_text, encoding="utf-8")
        build = None
        if source_code is not None:
            (tmp / builders.BUILDER_DIR).mkdir()
            shutil.copyfile(source_code.file, tmp / source_code.record["file"])
            if builders.file_sha256(tmp / source_code.record["file"]) != source_code.sha256:
                raise InputError(f"builder {spec.builder!r}: {source_code.file} changed while it was being recorded")
            build = builders.load_function(source_code, tmp / source_code.record["file"])
        trained = fit.fit(spec, prepared, op_determinism=op_determinism, build=build)
        split_sizes = prepared.split_sizes
        prepared.close()
        trained.model.save(tmp / MODEL_FILE)
        (tmp / "history.json").write_text(json.dumps(trained.history, indent=1) + "\n", encoding="utf-8")
        plots.training_curves(trained.history, f"{spec.name} seed {spec.training.seed}", tmp / "training_curves.png")
        m = {
            "format_version": manifest.FORMAT_VERSION,
            "run_id": run_id,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "name": spec.name,
            "task": spec.task,
            "label": spec.label,
            "seed": spec.training.seed,
            "shuffle": manifest.SHUFFLE,
            "split_seed": spec.training.split_seed,
            "op_determinism": op_determinism,
            "spec": spec.to_json(),
            "spec_path": spec_path,
            "data_source": data.describe_source(source),
            "as_of": counts.as_of,
            "data_sha256": prepared.sha256,
            "key": prepared.key,
            "rows": prepared.rows,
            "rows_dropped_missing_label": counts.dropped_missing_label,
            "rows_dropped_missing_required": counts.dropped_missing_required,
            "builder": source_code.record | {"ran": "the spec's builder file"} if source_code else None,
            "builder_sample_rows": trained.builder_sample_rows if source_code else None,
            "split_sizes": split_sizes,
            "classes": trained.classes,
            "label_stats": trained.label_stats,
            "feature_stats": trained.stats,
            "weights_sha256": trained.weights_sha256,
            "metrics": trained.metrics,
            "early_stopping": trained.early_stopping,
            "packages": manifest.package_versions(),
            "machine": manifest.machine(),
            "git_commit": manifest.git_commit(),
            "device": trained.device,
            "train_seconds": round(trained.train_seconds, 3),
            "wall_time_seconds": round(time.perf_counter() - wall, 3),
        }
        manifest.write_manifest(tmp, m)
        fsync_tree(tmp)
        final = out / run_id
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RunResult(final, m)


@dataclass
class Reproduction:
    matches: bool
    expected: str
    got: str
    differences: list[str]
    builder_ran: str | None = None  # which builder code ran, when the run has one


def read_run(run_dir: Path) -> tuple[dict[str, Any], Spec]:
    """Manifest and spec (with the run's seed) of a run."""
    m = manifest.read_manifest(run_dir)
    try:
        spec = parse_spec((run_dir / SPEC_FILE).read_text(encoding="utf-8"), str(run_dir / SPEC_FILE))
    except OSError:
        raise InputError(f"run: {run_dir} has no {SPEC_FILE}") from None
    return m, spec.with_seed(int(m["seed"]))


def load_run_inputs(run_dir: Path) -> tuple[dict[str, Any], Spec, dict[str, np.ndarray], str]:
    """Manifest, spec and snapshot columns of a run in memory, after checking the snapshot against its hash."""
    m, spec = read_run(run_dir)
    cols, key, _ = snapshot.read_snapshot(run_dir / snapshot.SNAPSHOT_FILE)
    sha = snapshot.content_sha256(cols, key)
    if sha != m["data_sha256"]:
        raise InputError(
            f"run: the snapshot of {run_dir} no longer matches its hash "
            f"(manifest {m['data_sha256'][:12]}..., file {sha[:12]}...)"
        )
    return m, spec, cols, key


def recorded_builder(run_dir: Path, m: dict[str, Any]) -> tuple[builders.BuilderSource, Path] | None:
    """The run's builder record and its recorded copy, checked against the recorded hash."""
    record = m.get("builder")
    if not record:
        return None
    copy = run_dir / record["file"]
    if not copy.is_file():
        raise InputError(f"run: {run_dir} lacks {record['file']}, the builder code it was trained with")
    if builders.file_sha256(copy) != record["sha256"]:
        raise InputError(f"run: {copy} no longer matches the builder hash in the manifest")
    name = record["builder"]
    return builders.BuilderSource(name, copy, name.rpartition(":")[2], record["sha256"]), copy


def reproduce(run_dir: Path, use_current_builder: bool = False) -> Reproduction:
    """Retrain from the run's own spec, snapshot and recorded builder code; compare weights_sha256 with
    the manifest. When the builder file on disk differs from the recorded one, refuse unless
    `use_current_builder`, which runs today's file instead (and says so)."""
    m, spec = read_run(run_dir)
    diffs = manifest.differences(m)
    for d in diffs:
        log.warning("environment differs from the run's: %s (bit-identical weights are not expected)", d)
    build = None
    ran = None
    recorded = recorded_builder(run_dir, m)
    if recorded is not None:
        source, copy = recorded
        try:
            current: builders.BuilderSource | None = builders.locate(source.name)
        except InputError:
            current = None
        if current is not None and current.sha256 == source.sha256:
            build, ran = builders.load_function(source, copy), f"the recorded builder (sha256 {source.sha256[:12]}...)"
        elif not use_current_builder:
            now = f"is {current.sha256[:12]}... now" if current else "is not found now"
            raise InputError(
                f"--reproduce: the builder {source.name!r} {now}, the run recorded {source.sha256[:12]}...; "
                "--use-current-builder runs today's code instead (the weights are then not expected to match)"
            )
        elif current is None:
            raise InputError(f"--use-current-builder: the builder {source.name!r} is not found in this directory")
        else:
            build = builders.load_function(current)
            ran = f"the current builder file {current.file} (sha256 {current.sha256[:12]}...), not the recorded one"
    elif use_current_builder:
        raise InputError("--use-current-builder: this run used the built-in model, it has no builder")
    from train import fit

    with tempfile.TemporaryDirectory(prefix=".reproduce-", dir=run_dir.parent) as work:
        prepared = prepare.from_snapshot(spec, run_dir / snapshot.SNAPSHOT_FILE, Path(work) / WORK_DIR)
        try:
            if prepared.sha256 != m["data_sha256"]:
                raise InputError(
                    f"run: the snapshot of {run_dir} no longer matches its hash "
                    f"(manifest {m['data_sha256'][:12]}..., file {prepared.sha256[:12]}...)"
                )
            trained = fit.fit(spec, prepared, op_determinism=bool(m.get("op_determinism", True)), build=build)
        finally:
            prepared.close()
    return Reproduction(
        trained.weights_sha256 == m["weights_sha256"], m["weights_sha256"], trained.weights_sha256, diffs, ran
    )
