"""How well models read digits from outside MNIST: the UCI optical digits that scikit-learn ships.

    pip install scikit-learn                      # optional: not a dependency of the package
    python benchmarks/other_sources.py MODEL [MODEL ...]

scikit-learn's ``load_digits`` holds 1,797 handwritten digits by 43 writers outside MNIST's,
scanned and reduced to 8x8 pixels of 17 grey levels (UCI "Optical Recognition of Handwritten
Digits", test part). They are written as PNG files into a temporary ``DIR/<digit>/`` folder, and
each model is scored there by ``digits evaluate MODEL --images DIR``: the same preprocessing
as ``digits predict``, so an 8x8 scan is scaled up to MNIST's 20x20 box. Prints each model's
accuracy and its per-digit accuracy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def write_folder(root: Path) -> int:
    """The digits as ``root/<digit>/<index>.png``, white ink on black; returns how many."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index, (image, label) in enumerate(zip(digits.images, digits.target)):
        folder = root / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.round(image * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels, "L").save(folder / f"{index:04d}.png")
    return len(digits.target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model files (.npz)")
    args = parser.parse_args()
    try:
        import sklearn  # noqa: F401
    except ImportError:
        sys.exit("other_sources.py: needs scikit-learn for its digits: pip install scikit-learn")
    digits = Path(sys.executable).parent / "digits"
    with tempfile.TemporaryDirectory(prefix="digits-other-sources-") as folder:
        count = write_folder(Path(folder))
        print(f"UCI optical digits (scikit-learn's load_digits): {count} images, 8x8")
        for model in args.models:
            done = subprocess.run([str(digits), "evaluate", model, "--images", folder, "--json"],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{model}: {done.stderr.strip()}")
                continue
            report = json.loads(done.stdout)
            per_digit = "  ".join(f"{d}:{100 * a:.0f}%" for d, a in enumerate(report["per_digit_accuracy"]))
            print(f"{model}: {100 * report['accuracy']:.2f}%   {per_digit}")


if __name__ == "__main__":
    main()
