"""A damaged kernel cache is dropped and rebuilt, saying so in one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

MODULE = textwrap.dedent('''
    import numpy as np
    from tinygrad_digits.kernels._jit import kernel

    @kernel
    def add_one(x):
        return x + 1.0

    print(add_one(np.float64(41.0)))
''')


def run(folder, cache):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, str(folder / "tiny_kernel.py")], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("damage", [b"not a pickle", b"", b"\x80\x04\x95"])
def test_a_damaged_cache_index_is_rebuilt_with_one_line(tmp_path, damage):
    (tmp_path / "tiny_kernel.py").write_text(MODULE)
    cache = tmp_path / "cache"
    first = run(tmp_path, cache)
    assert first.returncode == 0 and first.stdout.strip() == "42.0", first.stderr
    indexes = list(cache.rglob("*add_one*.nbi"))
    assert indexes
    for index in indexes:
        index.write_bytes(damage)
    damaged = run(tmp_path, cache)
    assert damaged.returncode == 0, damaged.stderr
    assert damaged.stdout.strip() == "42.0"
    lines = [line for line in damaged.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("kernel cache: ") and "is rebuilt" in lines[0], lines
    again = run(tmp_path, cache)  # rebuilt: loads quietly
    assert again.returncode == 0 and again.stdout.strip() == "42.0" and not again.stderr.strip()
