"""Keras's "Simple MNIST convnet" three ways in one run: our autodiff path, its GEMM floor, Keras.

    python benchmarks/bench_conv.py                 # one epoch of 48,000 images, batch 128
    python benchmarks/bench_conv.py --steps 60      # 60 steps, scaled to the epoch's 375
    python benchmarks/bench_conv.py --no-keras
    digits bench --conv                             # the same, from the CLI

The network: Conv 32 3x3 relu, max-pool 2, Conv 64 3x3 relu, max-pool 2, flatten, dropout 0.5,
dense 10 (34,826 parameters); Adam, batch 128.

- ours: ``train.train`` (value_and_grad of the loss through ``ops``, then Adam), its
  ``train_seconds`` for the epoch (validation excluded);
- floor: the epoch's products as sgemm calls of the same shapes: per step, each convolution's
  forward (pixels, k) @ (k, c_out), weight gradient (k, pixels) @ (pixels, c_out) and, above the
  first layer, input gradient (pixels, c_out) @ (c_out, k), with pixels = batch * out_h * out_w
  and k = 3 * 3 * c_in, and the dense layer's three. Each shape is timed on NumPy's BLAS with
  its threads and with one (the faster counts), median of repeats, times the steps;
- Keras: ``model.fit`` in its own process (benchmarks/keras_conv.py), the second epoch (the
  first includes tracing), on the same images.

Prints GFLOP per epoch, seconds and GFLOP/s of each, Keras/ours and ours/floor, and one image's
latencies (in a process of their own, as ``digits predict`` and ``digits draw`` run: the forward
pass through model.apply, and raw image to probabilities through model.Predictor). Figures move with the machine's load: the script prints ``uptime``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def convnet():
    from tinygrad_digits.conv_layers import simple_convnet

    return simple_convnet()


def products(batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every sgemm of one training step of the convnet at this batch size."""
    conv1, conv2, dense = (batch * 26 * 26, 9, 32), (batch * 11 * 11, 288, 64), (batch, 1600, 10)
    out = []
    for i, (pixels, k, c_out) in enumerate((conv1, conv2, dense)):
        out += [(pixels, k, c_out), (k, pixels, c_out)]  # forward, weight gradient
        if i > 0:
            out.append((pixels, c_out, k))  # input gradient
    return out


def gflop(batch: int, steps: int) -> float:
    return steps * sum(2.0 * m * k * n for m, k, n in products(batch)) / 1e9


def floor_seconds(batch: int, steps: int, repeats: int = 15) -> tuple[float, list]:
    """The epoch's products as sgemm calls of their shapes (see the module doc)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    total, rows = 0.0, []
    for m, k, n in products(batch):
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, n), dtype=np.float32)
        out = np.empty((m, n), dtype=np.float32)
        best = []
        for limit in (None, 1):
            with threadpool_limits(limit):
                np.dot(a, b, out=out)
                times = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    np.dot(a, b, out=out)
                    times.append(time.perf_counter() - started)
                best.append(float(np.median(times)))
        rows.append(((m, k, n), best))
        total += min(best)
    return total * steps, rows


def ours_seconds(x, y, batch: int, threads: int | None) -> float:
    import numba

    from tinygrad_digits import optimizers as O
    from tinygrad_digits import train as T

    if threads:
        numba.set_num_threads(threads)
    model = convnet()
    params = model.init(np.random.default_rng(0), (28, 28, 1))
    adam = O.OptimizerConfig("adam", learning_rate=0.001, schedule="constant")
    warm = T.TrainConfig(epochs=1, batch_size=batch, seed=1)
    T.train(
        model,
        {k: v.copy() for k, v in params.items()},
        x[: 4 * batch],
        y[: 4 * batch],
        x[:0],
        y[:0],
        warm,
        adam,
    )
    config = T.TrainConfig(epochs=1, batch_size=batch, seed=0)
    result = T.train(model, params, x, y, x[:0], y[:0], config, adam)
    return result.history[0]["train_seconds"]


def forward_latency(repeats: int = 300) -> float:
    """Median seconds of one image's forward pass (no dropout), through model.apply."""
    model = convnet()
    params = model.init(np.random.default_rng(0), (28, 28, 1))
    image = np.random.default_rng(1).random((1, 28, 28, 1), dtype=np.float32)
    return _median_seconds(lambda: model.apply(params, image), repeats)


def predictor_latency(repeats: int = 300) -> float:
    """Median seconds from one raw image to its probabilities through model.Predictor (what
    digits draw and digits predict call: its kernels one after another, conv_inference), for
    the same convnet as a ModelSpec."""
    from tinygrad_digits import model as M

    spec = M.ModelSpec(hidden=(), activations=(), conv=(32, 64), dropout=0.5, input_mean=0.13, input_std=0.31)
    predictor = M.Predictor(spec, M.init_params(spec, np.random.default_rng(0)))
    image = np.random.default_rng(1).random(784, dtype=np.float32)
    return _median_seconds(lambda: predictor(image), repeats)


def latencies() -> dict:
    """{"forward_latency_seconds", "predictor_latency_seconds"}, measured in a process of their
    own, as digits predict and digits draw run: one that has not trained."""
    run = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--latency"], capture_output=True,
                         text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def _median_seconds(call, repeats: int) -> float:
    for _ in range(20):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def keras_seconds(x, y, batch: int) -> dict | None:
    """Keras's second epoch on the same images, in its own process; None if it is missing."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npz"
        np.savez(path, x=x, y=y)
        run = subprocess.run(
            [sys.executable, str(HERE / "keras_conv.py"), str(path), "2", str(batch)],
            capture_output=True,
            text=True,
            check=False,
        )
    if run.returncode != 0:
        print(f"keras: failed ({run.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def run(
    x_train,
    y_train,
    train_size: int | None = None,
    batch: int = 128,
    keras: bool = True,
    threads: int | None = None,
    blas_threads: int | None = None,
    log=lambda message: None,
) -> dict:
    """The three timings on raw [0, 1] images x_train (n, 784) with labels (n,): an epoch is all n
    of them; with ``train_size`` the first that many are timed and the figures scaled to the epoch.

    Returns {"network", "parameters", "batch_size", "epoch_images", "timed_images", "scale",
    "gflop_per_epoch", "ours", "floor" (each {"seconds_per_epoch", "gflop_per_second"}; the floor
    also "products": [{"shape": [m, k, n], "seconds_threaded", "seconds_one_thread"}]), "keras"
    (the same and "keras", "tensorflow" versions, or None), "keras_over_ours" (or None),
    "ours_over_floor", "forward_latency_seconds", "predictor_latency_seconds", "threads", "blas_threads", "load" (before and
    after)}. ``log(message)`` reports each stage as it starts.
    """
    from threadpoolctl import threadpool_limits

    epoch_images = len(x_train)
    epoch_steps = -(-epoch_images // batch)
    n = epoch_images if train_size is None else min(epoch_images, train_size)
    scale = epoch_steps / -(-n // batch)
    x = ((np.asarray(x_train[:n]) - 0.13) / 0.31).reshape(-1, 28, 28, 1).astype(np.float32)
    y = np.asarray(y_train[:n]).astype(np.int64)
    work = gflop(batch, epoch_steps)
    report = {"network": "Simple MNIST convnet: conv32 3x3 relu, maxpool 2, conv64 3x3 relu, maxpool 2, "
                         "flatten, dropout 0.5, dense 10; Adam",
              "parameters": sum(v.size for v in convnet().init(np.random.default_rng(0), (28, 28, 1)).values()),
              "batch_size": batch, "epoch_images": epoch_images, "timed_images": n, "scale": scale,
              "gflop_per_epoch": work, "threads": threads, "blas_threads": blas_threads, "load": [load()]}

    def timing(seconds: float) -> dict:
        return {"seconds_per_epoch": seconds, "gflop_per_second": work / seconds}

    log(f"ours: {-(-n // batch)} steps of batch {batch}")
    with threadpool_limits(blas_threads):
        report["ours"] = timing(ours_seconds(x, y, batch, threads) * scale)
    report.update(latencies())
    log("the GEMM floor: every product of an epoch as an sgemm call")
    floor, rows = floor_seconds(batch, epoch_steps)
    report["floor"] = {**timing(floor), "products": [
        {"shape": list(shape), "seconds_threaded": threaded, "seconds_one_thread": one}
        for shape, (threaded, one) in rows]}
    report["keras"] = report["keras_over_ours"] = None
    if keras:
        log("keras: model.fit in its own process, 2 epochs")
        answer = keras_seconds(x, y, batch)
        if answer is not None:
            report["keras"] = {**timing(answer["epoch_seconds"][-1] * scale), "keras": answer["keras"],
                               "tensorflow": answer["tensorflow"]}
            report["keras_over_ours"] = report["keras"]["seconds_per_epoch"] / report["ours"]["seconds_per_epoch"]
    report["ours_over_floor"] = report["ours"]["seconds_per_epoch"] / floor
    report["load"].append(load())
    return report


def format_report(report: dict) -> str:
    """The report of ``run`` as text: GFLOP per epoch, s/epoch and GFLOP/s of each, the ratios
    and one image's forward latency."""
    lines = [
        f"{report['network']} ({report['parameters']:,} parameters), batch {report['batch_size']}, "
        f"{report['epoch_images']:,} images: {report['gflop_per_epoch']:.1f} GFLOP per epoch",
        f"timed on {report['timed_images']:,} images, scaled by {report['scale']:.2f} to an epoch; Numba's "
        f"threads: {report['threads'] or 'default'}, BLAS's for ours: {report['blas_threads'] or 'default'}; "
        f"{report['load'][0]}",
        "",
        f"{'':<8}{'s/epoch':>9}{'GFLOP/s':>9}",
    ]
    for name in ("ours", "floor", "keras"):
        side = report[name]
        if side is None:
            continue
        extra = f"   (Keras {side['keras']}, TensorFlow {side['tensorflow']})" if name == "keras" else ""
        lines.append(f"{name:<8}{side['seconds_per_epoch']:>9.2f}{side['gflop_per_second']:>9.1f}{extra}")
    for row in report["floor"]["products"]:
        m, k, n = row["shape"]
        lines.append(f"    sgemm ({m}, {k}) @ ({k}, {n}): {row['seconds_threaded'] * 1e3:7.2f} ms on BLAS's "
                     f"threads, {row['seconds_one_thread'] * 1e3:7.2f} on one")
    lines.append("")
    if report["keras_over_ours"] is not None:
        lines.append(f"keras / ours = {report['keras_over_ours']:.2f}")
    lines.append(f"ours / floor = {report['ours_over_floor']:.2f}")
    lines.append(f"one image's forward pass: {report['forward_latency_seconds'] * 1e6:.0f} us through model.apply "
                 f"(op by op); image to probabilities {report['predictor_latency_seconds'] * 1e6:.0f} us through "
                 "model.Predictor (kernel after kernel, as digits draw and digits predict run it)")
    lines.append(report["load"][-1])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="time this many steps, scaled to the epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="Numba's threads (default: Numba's)")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="hold BLAS to this many threads for ours (default: BLAS's)",
    )
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras process")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--latency", action="store_true", help="only one image's latencies, as JSON")
    args = parser.parse_args()
    if args.latency:
        print(json.dumps({"forward_latency_seconds": forward_latency(),
                          "predictor_latency_seconds": predictor_latency()}))
        return

    from tinygrad_digits.data import load_splits

    splits = load_splits()
    size = None if args.steps is None else args.steps * args.batch_size
    report = run(splits.x_train, splits.y_train, size, args.batch_size, not args.no_keras, args.threads,
                 args.blas_threads, log=lambda message: print(message, file=sys.stderr))
    print(json.dumps(report) if args.json else format_report(report))


if __name__ == "__main__":
    main()
