"""The differential gate: compare a candidate version with the version in production before it is
published, on the same held-out rows, through the same session-based loader that serves them.

Production is the version labelled `stable` in `<model_base_path>/models.config` where one is,
otherwise the newest published version. First the interface: every signature, input and output
of production must still exist in the candidate with the same dtype, and the candidate may not
require inputs that production did not (a renamed or retyped input breaks every client on
rollover). Then the numbers: metric deltas against the spec's `[gate]` thresholds, agreement of
predicted classes, flip matrix and flip rate per class, mean and max absolute score difference.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compare.plots import plot_comparison
from modelbase import labels_of, version_dir, versions

REPORT_FILE = "differential_report.json"
PLOT_FILE = "differential_report.png"


def production_version(model_base_path: Path, name: str) -> int | None:
    model_dir = model_base_path / name
    stable = labels_of(model_base_path, name).get("stable")
    if stable is not None and version_dir(model_dir, stable) is not None:
        return stable
    return max(versions(model_dir), default=None)


def interface_problems(production: Mapping[str, Any], candidate: Mapping[str, Any]) -> list[str]:
    """What would break a client of `production` if `candidate` replaced it (signature descriptions
    as from export.signatures.describe_signatures)."""
    problems = []
    for sig, p in sorted(production.items()):
        c = candidate.get(sig)
        if c is None:
            problems.append(f"signature {sig!r} is gone")
            continue
        for name, t in sorted(p["inputs"].items()):
            if name not in c["inputs"]:
                problems.append(f"{sig}: input {name!r} is gone")
            elif c["inputs"][name]["dtype"] != t["dtype"]:
                problems.append(f"{sig}: input {name!r} changed dtype {t['dtype']} -> {c['inputs'][name]['dtype']}")
        for name in sorted(set(c["inputs"]) - set(p["inputs"])):
            problems.append(f"{sig}: new required input {name!r} that current clients do not send")
        for name, t in sorted(p["outputs"].items()):
            if name not in c["outputs"]:
                problems.append(f"{sig}: output {name!r} is gone")
            elif c["outputs"][name]["dtype"] != t["dtype"]:
                problems.append(f"{sig}: output {name!r} changed dtype {t['dtype']} -> {c['outputs'][name]['dtype']}")
        if p.get("method_name") != c.get("method_name"):
            problems.append(f"{sig}: method name {p.get('method_name')} -> {c.get('method_name')}")
    return problems


def _gate_title(report: Mapping[str, Any]) -> str:
    what = f"candidate {report.get('candidate_run') or ''}".strip()
    return (
        f"differential gate: {what} vs production v{report.get('production_version')} on "
        f"{report.get('rows', '?')} held-out rows: {report['verdict'].upper()}"
    )


def write_report(report: Mapping[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    base = f"production v{report.get('production_version')}"
    plot_comparison(report, directory / PLOT_FILE, _gate_title(report), (base, "candidate"))
    return directory / REPORT_FILE
