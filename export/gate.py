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

import numpy as np

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


def flip_matrix(ax: Any, counts: list[list[int]], names: list[str], xlabel: str, ylabel: str, title: str) -> None:
    """The flip matrix as an annotated heatmap (rows: the reference model's class, columns: the other's)."""
    fm = np.array(counts)
    ax.imshow(fm, cmap="Blues")
    for (i, j), c in np.ndenumerate(fm):
        ax.text(j, i, str(c), ha="center", va="center")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def plot_report(
    report: Mapping[str, Any], path: Path, title: str | None = None, sides: tuple[str, str] | None = None
) -> None:
    """The report as a PNG. `title` says what was compared (default: the gate's candidate against the
    production version); `sides` names the baseline and the candidate (default: production vN, candidate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if report.get("metrics") is None:  # interfaces too different to run both on one input
        fig, ax = plt.subplots(figsize=(10, 3))
        ax.axis("off")
        lines = ["interface problems:", *report.get("interface_problems", [])]
        ax.text(0, 1, "\n".join(lines), va="top", family="monospace")
        fig.suptitle(title or _gate_title(report), fontsize=10)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    m = report["metrics"]
    names = [k for k in m["candidate"] if k != "rows"]
    x = np.arange(len(names))
    base_name, cand_name = sides or (f"production v{report['production_version']}", "candidate")
    axes[0].bar(x - 0.2, [m["production"][n] for n in names], 0.4, label=base_name)
    axes[0].bar(x + 0.2, [m["candidate"][n] for n in names], 0.4, label=cand_name)
    axes[0].set_xticks(x, names)
    axes[0].legend()
    axes[0].set_title("test metrics")
    if "flip_matrix" in report:
        flip_matrix(
            axes[1],
            report["flip_matrix"]["counts"],
            report["flip_matrix"]["rows_production_columns_candidate"],
            cand_name,
            base_name,
            f"predicted classes (agreement {report['agreement']:.3f})",
        )
    else:
        sd = report["score_difference"]
        axes[1].bar(["mean", "p99", "max"], [sd["mean"], sd["p99"], sd["max"]])
        axes[1].set_title(f"|{cand_name} - {base_name}| prediction")
    fig.suptitle(title or _gate_title(report), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _gate_title(report: Mapping[str, Any]) -> str:
    what = f"candidate {report.get('candidate_run') or ''}".strip()
    return (
        f"differential gate: {what} vs production v{report.get('production_version')} on "
        f"{report.get('rows', '?')} held-out rows: {report['verdict'].upper()}"
    )


def write_report(report: Mapping[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_report(report, directory / PLOT_FILE)
    return directory / REPORT_FILE
