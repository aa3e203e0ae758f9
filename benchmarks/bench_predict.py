"""Image to probabilities: what one prediction costs in ``digits draw`` and ``digits predict``.

Times, per image, the whole path the window runs after a stroke (the 280x280 drawing read as a
140x140 ink map -> ``preprocess`` -> forward pass -> ten probabilities) and, apart, its two
halves, over MNIST test digits drawn onto the canvas the way a person draws them (a digit
150-230 px tall, anywhere on the canvas); then the same canvas preprocessed at full size, and
the path of ``digits predict`` from a PNG file on disk (decode included). The budget is 2 ms
median for image to probabilities (decode excluded).

    python benchmarks/bench_predict.py [--model FILE] [--images 300] [--repeat 3]

Without a model file (and none trained) the timings use a fresh 784-128-10 network: the cost of
a forward pass does not depend on the weights.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BUDGET_MS = 2.0


def canvases(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """MNIST test digits as ink maps of the 280x280 drawing canvas."""
    from tinygrad_digits.data import load_mnist

    _, _, images, _ = load_mnist(ROOT / "data" / "mnist")
    out = []
    for digit in images[:count]:
        size = int(rng.integers(150, 231))
        big = Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR)
        big = np.asarray(big, np.float32) / 255
        ink = np.zeros((280, 280), np.float32)
        top, left = rng.integers(0, 280 - size + 1, 2)
        ink[top : top + size, left : left + size] = big
        out.append(ink)
    return out


def median_ms(fn, items, repeat: int) -> tuple[float, float, float]:
    """(median, 90th percentile, median CPU) milliseconds of fn(item) over every item, ``repeat``
    rounds. The CPU time (this thread's) is what a busy machine's wall-clock figures hide."""
    times, cpu = [], []
    for _ in range(repeat):
        for item in items:
            start, start_cpu = time.perf_counter(), time.thread_time()
            fn(item)
            times.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
    times.sort()
    p90 = times[int(0.9 * (len(times) - 1))]
    return 1e3 * statistics.median(times), 1e3 * p90, 1e3 * statistics.median(cpu)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="Model file (default: the latest trained).")
    parser.add_argument("--images", type=int, default=300, help="How many MNIST test digits to draw.")
    parser.add_argument("--repeat", type=int, default=3, help="Rounds over the images.")
    args = parser.parse_args(argv)

    from tinygrad_digits import model as M
    from tinygrad_digits.apps.preprocess import preprocess
    from tinygrad_digits.apps.recognize import Recognizer, drawing_ink

    try:
        recognizer = Recognizer.load(args.model)
        source = str(recognizer.path)
    except FileNotFoundError:
        spec = M.ModelSpec()
        recognizer = Recognizer(spec, M.init_params(spec, np.random.default_rng(0)), Path("untrained"))
        source = "a fresh 784-128-10 network (no trained model found)"
    inks = canvases(args.images, np.random.default_rng(0))
    drawings = [Image.fromarray(np.round(255 * ink).astype(np.uint8)) for ink in inks]  # as Sketch.image
    halves = [drawing_ink(d) for d in drawings]
    inputs = [x for x in map(preprocess, halves) if x is not None]
    recognizer.predict_ink(inks[0])  # load the kernels outside the timings

    rows = [
        ("drawing -> probabilities (the window's path)",
         median_ms(lambda d: recognizer.predict_ink(drawing_ink(d)), drawings, args.repeat)),
        ("  preprocess alone (140x140 ink map)", median_ms(preprocess, halves, args.repeat)),
        ("  forward pass alone (one input)", median_ms(recognizer.probabilities, inputs, args.repeat)),
        ("280x280 ink map at full size -> probabilities",
         median_ms(recognizer.predict_ink, inks, args.repeat)),
    ]
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for i, ink in enumerate(inks[:100]):
            files.append(Path(folder) / f"{i}.png")
            Image.fromarray(np.round(255 * (1 - ink)).astype(np.uint8)).save(files[-1])
        rows.append(("PNG file -> probabilities (decode included)",
                     median_ms(lambda f: recognizer.predict_files([f]), files, args.repeat)))

    print(f"model: {source}")
    print(f"{len(inks)} MNIST test digits drawn on the 280x280 canvas, {args.repeat} rounds")
    print(f"{'':46} {'median':>9} {'p90':>9} {'CPU median':>11}")
    for name, (median, p90, cpu) in rows:
        print(f"{name:46} {median:6.3f} ms {p90:6.3f} ms {cpu:8.3f} ms")
    median, _, cpu = rows[0][1]
    verdict = "within" if median <= BUDGET_MS else "OVER"
    print(f"image to probabilities: median {median:.3f} ms (CPU {cpu:.3f} ms), "
          f"{verdict} the {BUDGET_MS:g} ms budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
