"""The README's Python example runs as written (on fewer steps) and learns."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import MNIST_DIR, ROOT


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    found = [b for b in blocks if "td.value_and_grad(loss_fn)" in b]
    assert len(found) == 1, "the README has one example written with td.value_and_grad"
    return found[0]


def test_the_readme_example_trains_a_residual_mlp(tmp_path):
    code = readme_example()
    assert "range(3000)" in code and len(code.strip().splitlines()) <= 25
    script = tmp_path / "example.py"
    script.write_text(code.replace("range(3000)", "range(300)"))
    env = {**os.environ, "DIGITS_DATA": str(MNIST_DIR)}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", done.stdout).group(1))
    assert accuracy > 85.0, done.stdout  # 300 steps of 128 images; chance is 10%
