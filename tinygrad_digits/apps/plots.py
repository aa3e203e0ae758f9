"""PNG figures with matplotlib's Agg backend (imported lazily: plotting is never on a hot path)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(histories: dict[str, list[dict]], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy curves, train and validation, one colour per named history."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for i, (name, history) in enumerate(histories.items()):
        colour = f"C{i}"
        epochs = [r["epoch"] for r in history]
        prefix = f"{name} " if len(histories) > 1 else ""
        ax_loss.plot(epochs, [r["train_loss"] for r in history], "-", color=colour, label=f"{prefix}train")
        ax_loss.plot(epochs, [r["val_loss"] for r in history], "--", color=colour, label=f"{prefix}validation")
        ax_acc.plot(epochs, [100 * r["train_accuracy"] for r in history], "-", color=colour, label=f"{prefix}train")
        ax_acc.plot(epochs, [100 * r["val_accuracy"] for r in history], "--", color=colour, label=f"{prefix}validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(confusion, path: str | Path, title: str = "confusion matrix") -> Path:
    """The confusion matrix (rows: true digit, columns: predicted) as an annotated heat map."""
    import numpy as np

    plt = _pyplot()
    confusion = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(np.log1p(confusion), cmap="Blues")
    k = len(confusion)
    for i in range(k):
        for j in range(k):
            colour = "white" if i == j else "black"
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7, color=colour)
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    return _save(fig, path)


def plot_misclassified(images, mistakes: list[dict], path: str | Path, title: str = "", columns: int = 9) -> Path:
    """A grid of the images (n, 784) named by ``mistakes`` (metrics.most_confident_mistakes),
    each captioned with its true and predicted label and the confidence of the prediction."""
    import math

    import numpy as np

    plt = _pyplot()
    count = max(1, len(mistakes))
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.25 * columns, 1.45 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    side = math.isqrt(np.asarray(images).shape[1])
    for ax, m in zip(axes.flat, mistakes):
        ax.imshow(np.asarray(images[m["index"]]).reshape(side, side), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"true {m['label']}, pred {m['predicted']}\n{100 * m['confidence']:.1f}%", fontsize=7)
    if not mistakes:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    from ..outputs import write_atomically

    path = Path(path)
    try:  # a reader (or an interrupted run) never sees half a picture
        return write_atomically(path, lambda f: fig.savefig(f, dpi=110, format=path.suffix[1:] or "png"))
    finally:
        plt.close(fig)
