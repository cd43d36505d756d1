"""Training curves as a PNG: loss, and the task's metric, per epoch for training and validation."""

from __future__ import annotations

from pathlib import Path


def training_curves(history: dict[str, list[float]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric_names = sorted({k.removeprefix("val_") for k in history} - {"loss"})
    panels = ["loss", *metric_names]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, name in zip(axes[0], panels, strict=True):
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in history:
                epochs = range(1, len(history[key]) + 1)
                ax.plot(epochs, history[key], style, label="validation" if key.startswith("val_") else "training")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
