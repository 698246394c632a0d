"""Pictures of a run: ``curves.png`` (loss, top-1 of the raw and EMA models, learning rate and speed against
epochs, from the metrics records) and ``confusion_<split>.png`` (row-normalised, readable at 400 classes).

Headless (matplotlib's Agg backend), written atomically, on any iopath handler.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from rs3d.utils.atomic import atomic_path

#: Above this many classes the confusion matrix is drawn sorted by accuracy, the worst classes named beside it.
LABEL_ALL_UP_TO = 40
#: How many of the worst classes are named on a large confusion matrix.
WORST_NAMED = 25


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def epoch_axis(records: Sequence[dict]) -> float:
    """Optimizer steps per epoch, from the first epoch-end record (``train_epoch``: its step over its epoch)."""
    for r in records:
        if r.get("split") == "train_epoch" and r.get("epoch"):
            return r["step"] / r["epoch"]
    return 0.0


def plot_training_curves(records: Sequence[dict], path: str) -> bool:
    """Four panels against epochs: training loss (per log step and per epoch), top-1 (training, and validation of
    the raw and EMA models), learning rate, clips/s. Returns False (and writes nothing) before the first epoch."""
    per_epoch = epoch_axis(records)
    if not per_epoch:
        return False

    def series(split: str, key: str) -> tuple[list[float], list[float]]:
        pts = [(r["step"] / per_epoch, r[key]) for r in records if r.get("split") == split and key in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=100)
    (loss_ax, acc_ax), (lr_ax, speed_ax) = axes
    loss_ax.plot(*series("train", "loss"), lw=0.8, alpha=0.5, label="train (log steps)")
    loss_ax.plot(*series("train_epoch", "train_loss"), "o-", ms=3, label="train (epoch mean)")
    for split, name in (("val", "val raw"), ("val_ema", "val EMA")):
        if series(split, "loss")[0]:
            loss_ax.plot(*series(split, "loss"), "s--", ms=4, label=name)
    loss_ax.set_title("loss")
    acc_ax.plot(*series("train_epoch", "train_top1"), "o-", ms=3, label="train")
    acc_ax.plot(*series("val", "top1"), "s-", ms=4, label="val, raw model")
    acc_ax.plot(*series("val_ema", "top1"), "^-", ms=4, label="val, EMA model")
    acc_ax.set_title("top-1 (%)")
    lr_ax.plot(*series("train", "lr"), lw=1.2)
    lr_ax.set_title("learning rate")
    speed_ax.plot(*series("train", "clips_per_s"), lw=1.0)
    speed_ax.set_title("training clips/s")
    for ax in axes.flat:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return True


def plot_confusion(matrix: torch.Tensor, class_names: Sequence[str], path: str, title: str = "") -> None:
    """Row-normalised confusion matrix (rows: true class, columns: predicted). Up to :data:`LABEL_ALL_UP_TO`
    classes: every name, in class order. Beyond: the matrix sorted by per-class accuracy (worst first, a square-root
    colour scale so that sparse confusions show) beside a bar chart of the :data:`WORST_NAMED` worst classes, each
    with the class it is most often taken for."""
    from matplotlib.colors import PowerNorm

    counts = matrix.double()
    rows = counts.sum(1, keepdim=True)
    normalised = torch.where(rows > 0, counts / rows.clamp(min=1), torch.zeros_like(counts))
    accuracy = normalised.diagonal()
    n = len(class_names)
    title = title or f"confusion matrix, mean class accuracy {100 * accuracy.mean():.1f}%"
    plt = _pyplot()
    if n <= LABEL_ALL_UP_TO:
        size = 4 + 0.25 * n
        fig, ax = plt.subplots(figsize=(size + 1, size), dpi=100)
        image = ax.imshow(normalised.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks(range(n), list(class_names), rotation=90, fontsize=8)
        ax.set_yticks(range(n), list(class_names), fontsize=8)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    else:
        order = torch.argsort(accuracy, stable=True)
        fig, (ax, bars) = plt.subplots(1, 2, figsize=(18, 9), dpi=100, gridspec_kw={"width_ratios": [1.1, 1]})
        image = ax.imshow(normalised[order][:, order].numpy(), cmap="viridis", norm=PowerNorm(0.5, 0.0, 1.0),
                          interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"predicted class ({n} classes, sorted by accuracy, worst first)")
        ax.set_ylabel("true class (same order)")
        ax.set_title(title)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class (square-root scale)")
        worst = order[:WORST_NAMED].tolist()
        off_diagonal = normalised.clone()
        off_diagonal.fill_diagonal_(-1.0)
        labels = []
        for i in worst:
            j = int(off_diagonal[i].argmax())
            labels.append(f"{class_names[i]}  (as {class_names[j]}: {100 * normalised[i, j]:.0f}%)")
        positions = list(range(len(worst)))[::-1]
        bars.barh(positions, [100 * float(accuracy[i]) for i in worst], color="tab:red")
        bars.set_yticks(positions, labels, fontsize=8)
        bars.set_xlim(0, 100)
        bars.set_xlabel("accuracy (%)")
        bars.set_title(f"the {len(worst)} worst classes, and what they are taken for most")
        bars.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
