"""The report of ``digits bench``: targets, tables and the reference figures printed beside them."""

from __future__ import annotations

import math

from tinygrad_digits.apps.bench import HEADLINE

# Median seconds per epoch for 784-128-10, batch 128, Adam, measured on the project's earlier
# machine type, a 2-core AMD EPYC with AVX2, on 2026-11-27 (one run, not this one); "floor" is
# that run's GEMM floor with OpenBLAS's variables unset.
REFERENCE_FIGURES = {
    "Keras 3 / TF 2.21": 0.60, "PyTorch 2.13 eager": 0.25, "NumPy (seed)": 0.19,
    "JAX jitted step": 0.135, "JAX epoch in lax.scan": 0.09,
}
REFERENCE_FLOOR = 0.057
TARGETS = [  # (what, the runner or figure, comparison, limit)
    ("Keras / ours, s per epoch", "keras", ">=", 6.0),
    ("NumPy reference / ours, s per epoch", "numpy reference", ">=", 2.5),
    # the reference is as fast as plain NumPy allows: never slower than the minimal script, but for noise
    ("NumPy minimal / NumPy reference, s per epoch", "numpy minimal", ">=", 0.95),
    ("JAX jitted step / ours, s per epoch", "jax jitted step", ">=", 1.5),
    ("JAX epoch in lax.scan / ours, s per epoch", "jax epoch in lax.scan", ">=", 1.0),
    ("ours / GEMM floor, s per epoch", "floor", "<=", 1.3),
    ("ours / work floor, s per epoch", "work_floor", "<=", 2.0),
]


def _headline(report: dict) -> dict | None:
    configs = [c for c in report["configs"] if c["openblas"] == "unset"]
    for c in configs:
        if (tuple(c["hidden"]), c["batch_size"]) == HEADLINE:
            return c
    return configs[0] if configs else None


def check_targets(report: dict) -> list[dict]:
    """The speed targets, each {"target", "value", "limit", "met"} (value None if not measured).
    Per-epoch ratios are medians of the paired rounds."""
    head = _headline(report)
    runners = head["runners"] if head else {}
    ours = runners.get("ours", {}).get("seconds_per_epoch")

    def value(name):
        if not ours:
            return None
        if name in ("floor", "work_floor"):
            return runners["ours"].get(f"paired_vs_{name}")
        if name == "numpy minimal":  # the reference must be at least as fast as the minimal script
            ref, minimal = runners.get("numpy reference"), runners.get(name)
            return minimal["seconds_per_epoch"] / ref["seconds_per_epoch"] if ref and minimal else None
        return runners[name].get("paired_vs_ours") if name in runners else None

    startup = report.get("startup", {})
    inference = report.get("inference", {}).get("ours", {})
    rows = [(what, value(name), op, limit) for what, name, op, limit in TARGETS] + [
        ("single-image forward pass (sparse kernel), us",
         inference.get("single_sparse_kernel_us", inference.get("single_kernel_us")), "<=", 10.0),
        ("digits --help, s", startup.get("help_s"), "<=", 0.3),
        ("warm-cache start of training, s", startup.get("warm", {}).get("wall_s"), "<=", 1.0),
        ("peak memory of the default digits train, MB", startup.get("peak_train_mb"), "<=", 400.0),
    ]
    out = []
    for target, value, op, limit in rows:
        met = None if value is None else (value >= limit if op == ">=" else value <= limit)
        out.append({"target": target, "value": value, "limit": f"{op} {limit:g}", "met": met})
    return out


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def format_report(report: dict) -> str:
    """The human-readable tables of a report."""
    lines = []
    env = report["environment"]
    plan = report["plan"]
    load = env.get("load_average_before")
    after = env.get("load_average_after")
    choice = env.get("thread_choice") or {}
    timed = ", ".join(f"{k} {1e3 * v:.2f} ms" for k, v in choice.get("seconds", {}).items())
    kernel = {True: "parallel", False: "one thread", None: "parallel (no choice recorded)"}[env.get("parallel_chosen")]
    lines.append(
        f"{env.get('cpu_model', 'CPU')}, {env['cpus']} CPUs ({' '.join(env.get('vector_extensions', [])) or '-'}); "
        f"Numba threads {_fmt(env.get('threads'), 'd')}; training kernel: {kernel}"
        + {True: "; 512-bit vectors (LLVM's 256-bit preference lifted)", False: "; LLVM's vector width",
           None: ""}[env.get("widened_vectors")]
        + (f" (warm-up's step: {timed})" if timed else "")
    )
    lines.append(
        f"load average {_fmt(load and load[0], '.2f')} before, "
        f"{_fmt(after and after[0], '.2f')} after; medians of epochs 2-{plan['epochs']} (epoch 1 apart)"
    )
    for note in report["notes"]:
        lines.append(f"note: {note}")
    for config in report["configs"]:
        lines.append("")
        lines += _config_table(config)
    sweep = [c for c in report["configs"] if c["openblas"] == "unset"]
    if len(sweep) > 1:
        lines.append("")
        lines += _sweep_table(sweep)
    if report.get("inference"):
        lines.append("")
        lines.append("inference, median latency (ours: the sparse forward kernel, which skips blank pixels and "
                     "BLAS, and model.Predictor around it with normalization and softmax; the dense fused "
                     "forward kernel; model.forward one op at a time; predict_proba)")
        for name, r in report["inference"].items():
            single = f"single image {r['single_us']:9.1f} us"
            if "single_sparse_kernel_us" in r:
                single = (f"single image: forward kernel {r['single_sparse_kernel_us']:.1f} us (model.Predictor, "
                          f"image to probabilities, {r['single_predictor_us']:.1f} us), dense fused kernel "
                          f"{r['single_kernel_us']:.1f} us, "
                          f"model.forward {r['single_us']:.1f} us, predict_proba {r['single_predict_us']:.1f} us")
            elif "single_kernel_us" in r:
                single = (f"single image: kernel {r['single_kernel_us']:.1f} us, model.forward {r['single_us']:.1f} us, "
                          f"predict_proba {r['single_predict_us']:.1f} us")
            lines.append(f"  {name:<22} {single}; 10k batch {r['batch10k_ms']:7.1f} ms")
    if report.get("startup"):
        s = report["startup"]
        cold, warm = s["cold"], s["warm"]
        lines.append("")
        lines.append(f"start-up: cold compile {cold['kernels_s']:.1f} s (process {cold['wall_s']:.1f} s, empty cache); "
                     f"warm start of training {warm['wall_s']:.2f} s from launch to the first step done (imports "
                     f"{warm['import_s']:.2f}, first step with its kernel loads {warm['first_step_s']:.3f}; "
                     f"the process then exits in {warm.get('exit_s', 0.0):.2f}); "
                     f"digits --help {_fmt(s.get('help_s'), '.2f')} s; peak memory of the default digits train "
                     f"{_fmt(s.get('peak_train_mb'), '.0f')} MB")
    head = _headline(report)
    if head and "ours" in head["runners"]:
        ours = head["runners"]["ours"]["seconds_per_epoch"]
        floor = head["floor"]["seconds"]
        lines.append("")
        lines.append("reference figures measured on a 2-core AMD EPYC (AVX2) on 2026-11-27, not in this run "
                     "(784-128-10, batch 128, Adam):")
        for name, seconds in REFERENCE_FIGURES.items():
            lines.append(f"  {name:<24} {seconds:6.3f} s/epoch = {seconds / REFERENCE_FLOOR:4.2f}x that run's GEMM floor "
                         f"({REFERENCE_FLOOR:.3f} s)")
        lines.append(f"  {'ours, this run':<24} {ours:6.3f} s/epoch = {ours / floor:4.2f}x this run's floor "
                     f"({floor:.3f} s)")
    if report.get("targets"):
        lines.append("")
        lines.append("targets (784-128-10, batch 128, Adam; per-epoch ratios are medians of the paired rounds)")
        for t in report["targets"]:
            verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
            lines.append(f"  {t['target']:<46} {_fmt(t['value'], '8.2f'):>8}  (target {t['limit']})  {verdict}")
    return "\n".join(lines)


def _config_table(config: dict) -> list[str]:
    arch = "-".join(map(str, [784, *config["hidden"], 10]))
    floor = config["floor"]
    lines = [
        f"{arch} relu, batch {config['batch_size']}, Adam, {config['n']:,} images, "
        f"{config['gflop_per_epoch']:.1f} GFLOP per epoch; OpenBLAS variables {config['openblas']}",
        f"  {'runner':<22} {'s/epoch':>8} {'epoch 1':>8} {'samples/s':>10} {'x ours':>7} {'x floor':>8} {'test acc':>9}"
        f"   paired: x ours, x floor",
    ]
    for name, r in config["runners"].items():
        lines.append(
            f"  {name:<22} {r['seconds_per_epoch']:8.3f} {r['first_epoch']:8.3f} {r['samples_per_second']:10,.0f} "
            f"{_fmt(r['vs_ours'], '6.2f'):>6}x {r['vs_floor']:7.2f}x {100 * r['test_accuracy']:8.2f}%"
            f"   {_fmt(r.get('paired_vs_ours'), '6.2f'):>6}x {_fmt(r.get('paired_vs_floor'), '5.2f'):>5}x"
        )
    ours = config["runners"].get("ours", {}).get("seconds_per_epoch")
    for name, key, what in (("GEMM floor", "floor", "every product dense"),
                            ("work floor", "work_floor", "first layer over the {} non-background inputs")):
        f = config.get(key)
        if f is None:
            continue
        by_blas = ", ".join(f"{k} {v:.3f}" for k, v in f["by_blas"].items())
        lines.append(
            f"  {name:<22} {f['seconds']:8.3f} {'':>8} {config['n'] / f['seconds']:10,.0f} "
            f"{_fmt(ours and f['seconds'] / ours, '6.2f'):>6}x {f['seconds'] / floor['seconds']:7.2f}x   "
            f"({what.format(f.get('first_inputs'))}; {by_blas}; {f['gflops']:.0f} GFLOP/s)"
        )
    if ours and "work_floor" in config:
        lines.append(f"  ours / work floor {config['runners']['ours'].get('paired_vs_work_floor', 0):.2f}x (paired)")
    return lines


def _sweep_table(configs: list[dict]) -> list[str]:
    names = list(configs[0]["runners"])
    head = f"  {'model, batch':<22}" + "".join(f"{n[:22]:>23}" for n in names) + f"{'floor':>9}{'ours/floor':>11}"
    lines = ["sweep: seconds per epoch (x ours)", head]
    for c in configs:
        arch = f"784-{'-'.join(map(str, c['hidden']))}-10, {c['batch_size']}"
        cells = "".join(
            f"{c['runners'][n]['seconds_per_epoch']:15.3f} ({_fmt(c['runners'][n]['vs_ours'], '4.1f')}x)" for n in names
        )
        ours = c["runners"].get("ours", {}).get("seconds_per_epoch")
        lines.append(f"  {arch:<22}{cells}{c['floor']['seconds']:9.3f}{_fmt(ours and ours / c['floor']['seconds'], '10.2f'):>11}")
    return lines
