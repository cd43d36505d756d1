"""The plots of a comparison: the flip matrix, and a comparison report's page (metrics side by side,
then the flip matrix or the score differences). Drawn with matplotlib's Agg backend, no display needed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


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


def plot_comparison(report: Mapping[str, Any], path: Path, title: str, sides: tuple[str, str]) -> None:
    """A comparison report (`compare.metrics`) as a PNG: the metrics side by side, and the flip matrix
    or the score differences. `title` says what was compared; `sides` names the baseline and the
    candidate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if report.get("metrics") is None:  # interfaces too different to run both on one input
        fig, ax = plt.subplots(figsize=(10, 3))
        ax.axis("off")
        lines = ["interface problems:", *report.get("interface_problems", [])]
        ax.text(0, 1, "\n".join(lines), va="top", family="monospace")
        fig.suptitle(title, fontsize=10)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    m = report["metrics"]
    names = [k for k in m["candidate"] if k != "rows"]
    x = np.arange(len(names))
    base_name, cand_name = sides
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
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
