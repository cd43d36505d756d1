"""The export, step by step: run -> staging SavedModel -> warmup -> model card -> validation in a
fresh process -> differential gate -> atomic publish (-> prune). Nothing is published unless every
step before the rename succeeded; a failure removes the staging directory."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import modelbase
from compare.metrics import compare_classification, compare_regression, evaluate, thresholds
from export import gate, model_card, publish, signatures, validate, warmup
from export.examples import to_examples
from train.errors import InputError
from train.run import MODEL_FILE, load_run_inputs, split_rows

log = logging.getLogger(__name__)

WARMUP_ROWS = 16


class Rejected(Exception):
    """The candidate failed validation or the gate; nothing was published."""

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ExportResult:
    name: str
    version: int
    path: Path
    validation: dict[str, Any]
    gate: dict[str, Any] | None
    pruned: list[int] = field(default_factory=list)
    seconds: float = 0.0


def check_base_path(base: Path, name: str) -> Path:
    model_dir = base / name
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=model_dir, prefix=publish.STAGING_PREFIX, delete=True)  # noqa: SIM115
        probe.close()
    except OSError as e:
        raise InputError(f"--model-base-path: cannot write to {model_dir}: {e.strerror}") from None
    return model_dir


def run_gate(
    spec: Any,
    staging: Path,
    base: Path,
    name: str,
    y: np.ndarray,
    feeds: dict[str, np.ndarray],
    classes: list[str] | None,
    allow_breaking: bool,
) -> dict[str, Any] | None:
    from serving.servable import Servable

    prod_version = gate.production_version(base, name)
    if prod_version is None:
        log.info("gate: no version of %s is published yet; nothing to compare with", name)
        return None
    prod_dir = modelbase.version_dir(base / name, prod_version)
    assert prod_dir is not None
    prod_sigs = signatures.describe_signatures(prod_dir)
    cand_sigs = signatures.describe_signatures(staging)
    problems = gate.interface_problems(prod_sigs, cand_sigs)
    report: dict[str, Any] = {
        "production_version": prod_version,
        "interface_problems": problems,
        "allow_breaking": allow_breaking,
        "rows": len(y),
    }
    prod_card_path = prod_dir / model_card.CARD_FILE
    prod_classes = model_card.read_card(prod_dir).get("classes") if prod_card_path.is_file() else None
    if spec.task == "classification" and prod_classes is not None and prod_classes != classes:
        problems.append(f"classes changed {prod_classes} -> {classes}")
    comparable = not problems or all("new required input" not in p and "gone" not in p for p in problems)
    failures = [] if allow_breaking else [f"interface: {p}" for p in problems]
    if comparable:
        cand = Servable.load(name, 0, staging)
        prod = Servable.load(name, prod_version, prod_dir)
        try:
            out_c, out_p = cand.run("serving_default", feeds), prod.run("serving_default", feeds)
        finally:
            cand.close()
            prod.close()
        if spec.task == "classification":
            assert classes is not None  # a classifier's run records its classes
            limits = thresholds(spec.task, spec.gate, {})
            numbers = compare_classification(y, classes, out_c["probabilities"], out_p["probabilities"], limits)
        else:
            limits = thresholds(spec.task, spec.gate, evaluate("regression", y, out_p["predictions"]))
            numbers = compare_regression(y, out_c["predictions"], out_p["predictions"], limits)
        report |= numbers | {"thresholds": limits}
        failures += numbers.pop("failures")
        report.pop("failures", None)
    else:
        report |= {"metrics": None, "note": "interfaces differ too much to run both on the same inputs"}
    report["failures"] = failures
    report["verdict"] = "pass" if not failures else "fail"
    return report


def _check_target(base: Path, name: str, version: int | None, keep: int | None) -> Path:
    if not name or not all(c.isalnum() or c in "_-." for c in name) or name.startswith("."):
        raise InputError(f"--name: {name!r} is not a usable model name (letters, digits, '_', '-', '.')")
    if version is not None and version < 0:
        raise InputError(f"--version must be a non-negative integer, got {version}")
    if keep is not None and keep < 1:
        raise InputError(f"--keep must be at least 1, got {keep}")
    model_dir = check_base_path(base, name)
    if version is not None and modelbase.version_dir(model_dir, version) is not None:
        raise InputError(f"--version: {model_dir / str(version)} already exists; versions are never overwritten")
    for p in publish.remove_stale_staging(model_dir):
        log.info("removed %s, left by an exporter that is gone", p)
    return model_dir


@dataclass
class Candidate:
    """What the export publishes: a model (raw-feature inputs, see train.model) and where it came from."""

    spec: Any
    model: Any  # callable(features, training=False) -> probabilities [n, k] or predictions
    track: Any  # the Keras object whose variables the SavedModel holds
    classes: list[str] | None
    manifest: dict[str, Any]  # a run's manifest, or the record of a model trained elsewhere
    stats_rows: dict[str, np.ndarray]  # the rows the card's training statistics describe
    warmup_rows: dict[str, np.ndarray]
    test_rows: dict[str, np.ndarray]  # validation in a fresh process and the gate run on these
    expected: np.ndarray  # the model's own outputs on test_rows
    report_dir: Path | None  # where the differential report is kept, published or not


def export_run(
    run_dir: Path,
    base: Path,
    name: str | None = None,
    version: int | None = None,
    keep: int | None = None,
    allow_breaking: bool = False,
    force: bool = False,
) -> ExportResult:
    start = time.perf_counter()
    if not run_dir.is_dir():
        raise InputError(f"--run: {run_dir} is not a directory")
    if not (run_dir / MODEL_FILE).is_file():
        raise InputError(f"--run: {run_dir} is incomplete: it has no {MODEL_FILE}")
    manifest, spec, cols, key = load_run_inputs(run_dir)
    name = name or manifest["name"]
    model_dir = _check_target(base, name, version, keep)

    import keras

    import train.layers  # noqa: F401 - registers the custom layers for loading
    from train import builder as builders
    from train.run import recorded_builder

    recorded = recorded_builder(run_dir, manifest)
    if recorded is not None:  # its module may register custom layers the saved model needs
        builders.load_function(*recorded)
    from train.model import model_inputs

    splits = split_rows(spec, cols, key)
    test = splits["test"]
    model = keras.saving.load_model(run_dir / MODEL_FILE)
    from train.fit import weights_sha256

    got = weights_sha256(model)
    if got != manifest["weights_sha256"]:  # never publish one model with another's card
        raise InputError(
            f"--run: {run_dir / MODEL_FILE} is not the model this run trained (weights_sha256 {got[:12]}..., "
            f"manifest {manifest['weights_sha256'][:12]}...)"
        )
    expected = np.asarray(model.predict(model_inputs(spec, test), verbose=0))
    candidate = Candidate(
        spec,
        model,
        model,
        manifest.get("classes"),
        manifest,
        splits["train"],
        {k: v[:WARMUP_ROWS] for k, v in splits["validation"].items()},
        test,
        expected,
        run_dir,
    )
    return publish_candidate(candidate, base, model_dir, name, version, keep, allow_breaking, force, start)


def publish_candidate(
    c: Candidate,
    base: Path,
    model_dir: Path,
    name: str,
    version: int | None,
    keep: int | None,
    allow_breaking: bool,
    force: bool,
    start: float,
) -> ExportResult:
    """Staging SavedModel -> warmup -> validation in a fresh process -> gate -> card -> atomic publish."""
    from train.spec import encode_labels

    spec = c.spec
    test = c.test_rows
    y = encode_labels(spec, test[spec.label], c.classes)
    feeds = warmup.predict_feeds(spec, test)
    manifest = c.manifest
    staging = publish.new_staging_dir(model_dir)
    try:
        log.info("writing the SavedModel to %s", staging)
        signatures.write_saved_model(c.model, spec, c.classes, staging, track=c.track)
        logs = warmup.build_logs(spec, name, c.warmup_rows)
        warmup.write_warmup(staging, logs)
        log.info("wrote %d warmup records", len(logs))

        cases = {f"predict__{k}": v for k, v in feeds.items()}
        cases |= {
            "examples": np.array(to_examples(spec.features, test), dtype=object),
            "expected": c.expected,
            "task": np.array(spec.task),
        }
        with tempfile.TemporaryDirectory() as tmp:
            np.savez(Path(tmp) / "cases.npz", allow_pickle=True, **cases)  # string cases are object arrays
            log.info("validating in a fresh process (session-based load, warmup replay, %d test rows)", len(y))
            report = validate.validate_in_fresh_process(staging, Path(tmp) / "cases.npz")
        if not report.get("ok"):
            raise Rejected(f"validation failed: {report.get('error') or report.get('max_abs_diff')}", report)
        log.info("validation passed: max abs differences %s", report["max_abs_diff"])

        gate_report = run_gate(spec, staging, base, name, y, feeds, c.classes, allow_breaking)
        if gate_report is not None:
            gate_report["candidate_run"] = manifest.get("run_id") or manifest.get("trained_elsewhere", {}).get("file")
            if c.report_dir is not None:
                gate.write_report(gate_report, c.report_dir)  # kept with the run, published or not
            if gate_report["verdict"] == "fail":
                if not force:
                    raise Rejected("the differential gate failed: " + "; ".join(gate_report["failures"]), gate_report)
                log.warning("the gate failed but --force publishes anyway: %s", "; ".join(gate_report["failures"]))
                gate_report["forced"] = True
            gate.write_report(gate_report, staging / "assets.extra")

        final_version = version if version is not None else max(modelbase.versions(model_dir), default=0) + 1
        card = model_card.build_card(
            name, final_version, spec, manifest, signatures.describe_signatures(staging), c.stats_rows
        )
        card["validation"] = report
        card["differential_gate"] = gate_report
        model_card.write_card(staging, card)
        try:
            published = publish.publish(staging, model_dir, version)
        except publish.VersionExists as e:
            raise InputError(f"--version: {e} already exists; versions are never overwritten") from None
        if published != final_version:  # another exporter took the number first: fix the card's version
            card["version"] = published
            model_card.write_card(model_dir / str(published), card)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    path = model_dir / str(published)
    pruned = publish.prune(base, name, keep) if keep else []
    return ExportResult(name, published, path, report, gate_report, pruned, time.perf_counter() - start)


def export_outside(
    model_path: Path,
    spec_path: str,
    source: str | None,
    as_of: str | None,
    base: Path,
    name: str | None = None,
    version: int | None = None,
    keep: int | None = None,
    allow_breaking: bool = False,
    force: bool = False,
    classes: list[str] | None = None,
) -> ExportResult:
    """Publish a model trained elsewhere (see export.outside) the same way as a run."""
    from export import outside

    start = time.perf_counter()
    c = outside.candidate(model_path, spec_path, source, as_of, classes)
    name = name or c.spec.name
    model_dir = _check_target(base, name, version, keep)
    return publish_candidate(c, base, model_dir, name, version, keep, allow_breaking, force, start)
