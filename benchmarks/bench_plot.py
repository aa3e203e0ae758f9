"""The plot of ``digits bench``: seconds per epoch against hidden and batch size, or per runner."""

from __future__ import annotations

from pathlib import Path

from tinygrad_digits.apps.bench import BenchPlan


def plot_report(report: dict, path: str | Path) -> Path:
    """Seconds per epoch against hidden size and batch size (or per runner, for one config)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = [c for c in report["configs"] if c["openblas"] == "unset"]
    plan = report["plan"]
    hidden0, batch0 = BenchPlan(hidden=tuple(tuple(h) for h in plan["hidden"]),
                                batch_sizes=tuple(plan["batch_sizes"])).centre()
    by_hidden = [c for c in configs if c["batch_size"] == batch0]
    by_batch = [c for c in configs if tuple(c["hidden"]) == hidden0]
    panels = [(p, key, label) for p, key, label in (
        (by_hidden, lambda c: sum(c["hidden"]), "hidden units (total)"),
        (by_batch, lambda c: c["batch_size"], "batch size"),
    ) if len(p) > 1]
    if not panels:
        fig, ax = plt.subplots(figsize=(7, 4))
        c = configs[0]
        names = [*c["runners"], "GEMM floor"]
        values = [*(r["seconds_per_epoch"] for r in c["runners"].values()), c["floor"]["seconds"]]
        ax.barh(names, values, color=[f"C{i}" for i in range(len(names))])
        ax.set(xlabel="seconds per epoch (median)", title=f"784-{'-'.join(map(str, c['hidden']))}-10, batch {c['batch_size']}")
        ax.invert_yaxis()
    else:
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
        for ax, (group, key, label) in zip(axes[0], panels):
            group = sorted(group, key=key)
            xs = [key(c) for c in group]
            for i, name in enumerate(group[0]["runners"]):
                ax.plot(xs, [c["runners"][name]["seconds_per_epoch"] for c in group], "o-", color=f"C{i}", label=name)
            ax.plot(xs, [c["floor"]["seconds"] for c in group], "k--", label="GEMM floor")
            ax.set(xscale="log", yscale="log", xlabel=label, ylabel="seconds per epoch (median)")
            ax.set_xticks(xs, [str(x) for x in xs], minor=False)
            ax.set_xticks([], minor=True)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
