"""The runnable examples (examples/*.py) train on a small subset and print their test accuracy."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import MNIST_DIR, ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"residual_mlp.py", "custom_loss.py"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_an_example_learns_a_small_subset(example, tmp_path):
    env = {**os.environ, "DIGITS_DATA": str(MNIST_DIR)}
    done = subprocess.run(
        [sys.executable, str(example), "--train-size", "3000", "--epochs", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"test accuracy: ([\d.]+)%", done.stdout)
    assert found, done.stdout
    assert float(found.group(1)) > 85.0  # chance is 10%; 3000 images, 2 epochs reach about 90%
    assert len(example.read_text().splitlines()) <= 50
