"""A sweep's report: one row per architecture over its seeds (``summarize``), as a ranked table,
a per-digit matrix and a plot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def summarize(records: list[dict]) -> list[dict]:
    """One row per architecture, best first: {label, hidden, conv, activation, n_params, seeds,
    test_accuracy (mean), test_accuracy_sd (sample sd over seeds, 0 for one), test_accuracy_min,
    test_accuracy_max, val_accuracy, test_loss, seconds_per_epoch (means), per_digit_accuracy
    [10] (mean), weakest_digit, stopped (how many runs stopped early)}."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["label"], []).append(record)
    rows = []
    for label, group in groups.items():
        acc = np.array([r["test_accuracy"] for r in group], dtype=float)
        digits = np.array([r["per_digit_accuracy"] for r in group], dtype=float).mean(axis=0)
        rows.append(
            {
                "label": label,
                "hidden": group[0]["hidden"],
                "conv": group[0].get("conv", []),
                "activation": group[0]["activation"],
                "n_params": group[0]["n_params"],
                "seeds": sorted(r["seed"] for r in group),
                "test_accuracy": float(acc.mean()),
                "test_accuracy_sd": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                "test_accuracy_min": float(acc.min()),
                "test_accuracy_max": float(acc.max()),
                "val_accuracy": float(np.mean([r["val_accuracy"] for r in group])),
                "test_loss": float(np.mean([r["test_loss"] for r in group])),
                "seconds_per_epoch": float(np.mean([r["seconds_per_epoch"] for r in group])),
                "per_digit_accuracy": [float(a) for a in digits],
                "weakest_digit": int(np.nanargmin(digits)) if np.isfinite(digits).any() else None,
                "stopped": sum(1 for r in group if r.get("stopped")),
            }
        )
    rows.sort(key=lambda row: -row["test_accuracy"] if math.isfinite(row["test_accuracy"]) else math.inf)
    return rows


def _pct(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}" if math.isfinite(value) else "-"


def format_table(rows: list[dict]) -> str:
    """The ranked table: test accuracy mean +- sd over seeds, validation accuracy, test loss,
    seconds per epoch, parameter count."""
    width = max([len("configuration")] + [len(r["label"]) for r in rows])
    head = (
        f"{'rank':>4}  {'configuration':<{width}}  {'params':>9}  {'test acc %':>10} {'± sd':>5}  "
        f"{'val acc %':>9}  {'test loss':>9}  {'s/epoch':>7}  {'seeds':>5}"
    )
    lines = [head]
    for rank, r in enumerate(rows, 1):
        sd = _pct(r["test_accuracy_sd"]) if len(r["seeds"]) > 1 else "-"
        note = f"  ({r['stopped']} stopped early)" if r["stopped"] else ""
        lines.append(
            f"{rank:>4}  {r['label']:<{width}}  {r['n_params']:>9,}  {_pct(r['test_accuracy']):>10} {sd:>5}  "
            f"{_pct(r['val_accuracy']):>9}  {r['test_loss']:>9.4f}  {r['seconds_per_epoch']:>7.2f}  "
            f"{len(r['seeds']):>5}{note}"
        )
    return "\n".join(lines)


def format_digit_matrix(rows: list[dict]) -> str:
    """Per-digit test accuracy (%) per configuration; ``*`` marks each row's weakest digit."""
    width = max([len("configuration")] + [len(r["label"]) for r in rows])
    lines = [
        "per-digit test accuracy (%); * marks each configuration's weakest digit",
        f"{'configuration':<{width}}" + "".join(f"{d:>8}" for d in range(10)),
    ]
    for r in rows:
        cells = []
        for d, acc in enumerate(r["per_digit_accuracy"]):
            mark = "*" if d == r["weakest_digit"] else " "
            cells.append(f"{_pct(acc, 1):>7}{mark}")
        lines.append(f"{r['label']:<{width}}" + "".join(cells))
    return "\n".join(lines)


def plot_sweep(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Two panels: the ranked test accuracies (bars: mean; whiskers: min and max over seeds),
    and the per-digit error rates (configuration x digit), each row's weakest digit boxed."""
    from .plots import _pyplot, _save

    plt = _pyplot()
    n = len(rows)
    fig, (ax_bar, ax_map) = plt.subplots(
        1, 2, figsize=(13, max(3.0, 0.45 * n + 1.5)), gridspec_kw={"width_ratios": [1, 1.4]}
    )
    labels = [r["label"] for r in rows]
    y = np.arange(n)
    acc = np.array([100 * r["test_accuracy"] for r in rows])
    low = acc - np.array([100 * r["test_accuracy_min"] for r in rows])
    high = np.array([100 * r["test_accuracy_max"] for r in rows]) - acc
    ax_bar.barh(y, acc, xerr=[low, high], color="C0", alpha=0.8, capsize=3)
    finite = np.isfinite(acc)
    if finite.any():
        lowest, highest = (acc - low)[finite].min(), (acc + high)[finite].max()
        ax_bar.set_xlim(max(0.0, lowest - 1.0), min(100.0, highest) + 0.25 * (highest - lowest) + 0.3)
    for i, value in enumerate(acc):
        if math.isfinite(value):
            ax_bar.text(value + high[i], i, f" {value:.2f}", va="center", fontsize=8)
    ax_bar.set(yticks=y, yticklabels=labels, xlabel="test accuracy (%)", title="ranked by test accuracy")
    ax_bar.invert_yaxis()
    ax_bar.grid(axis="x", alpha=0.3)

    errors = 100 * (1 - np.array([r["per_digit_accuracy"] for r in rows], dtype=float))
    image = ax_map.imshow(errors, cmap="Reds", aspect="auto")
    for i, r in enumerate(rows):
        for d in range(10):
            colour = "white" if errors[i, d] > 0.6 * np.nanmax(errors) else "black"
            ax_map.text(d, i, f"{errors[i, d]:.1f}", ha="center", va="center", fontsize=7, color=colour)
        if r["weakest_digit"] is not None:
            ax_map.add_patch(  # inset, so that boxes in neighbouring rows never share an edge
                plt.Rectangle(
                    (r["weakest_digit"] - 0.42, i - 0.42),
                    0.84,
                    0.84,
                    fill=False,
                    edgecolor="black",
                    linewidth=1.5,
                )
            )
    ax_map.set(
        xticks=range(10),
        yticks=y,
        yticklabels=labels,
        xlabel="digit",
        title="per-digit test error (%), weakest digit boxed",
    )
    fig.colorbar(image, ax=ax_map, label="error (%)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
