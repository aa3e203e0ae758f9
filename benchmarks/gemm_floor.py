"""The GEMM floor: how long the matrix products of one training epoch take, and nothing else.

One step of an MLP with layer sizes s0..sL and batch b multiplies, for every layer i,
(b, s_i) @ (s_i, s_i+1) forward, (s_i, b) @ (b, s_i+1) for the weight gradient, and, above the
first layer, (b, s_i+1) @ (s_i+1, s_i) for the input gradient: 2 b s_i s_i+1 flops each. The
probe runs exactly those sgemm calls for every step of an epoch (the last, partial batch
included) into preallocated outputs, with transposed operands as views, back to back. No
trainer can do the same products in less time on the same BLAS, so it is the floor.

``numpy_floor`` (NumPy's BLAS) lives in numpy_reference.py, so that its worker imports no
Numba; ``numba_floor`` here uses the BLAS that Numba's ``np.dot`` calls (SciPy's), from a
jitted loop with no Python in it. ``python benchmarks/gemm_floor.py`` prints both.
"""

from __future__ import annotations

import time

import numpy as np

from bench_common import steps_of_epoch


def epoch_flops(sizes, n: int) -> float:
    """Flops of one epoch's products (forward, weight and input gradients)."""
    total = 0.0
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        products = 3 if i > 0 else 2
        total += products * 2.0 * n * fan_in * fan_out
    return total


def _numba_kernel():
    from numba import njit

    @njit(cache=True)
    def gemm_epoch(steps, sizes, batch_size, weights, grads, acts, deltas):
        layers = sizes.size - 1
        for rows in steps:
            w_at, a_at = 0, 0
            for i in range(layers):
                fan_in, fan_out = sizes[i], sizes[i + 1]
                w = weights[w_at : w_at + fan_in * fan_out].reshape((fan_in, fan_out))
                h = acts[a_at : a_at + rows * fan_in].reshape((rows, fan_in))
                y = acts[a_at + batch_size * fan_in : a_at + batch_size * fan_in + rows * fan_out]
                np.dot(h, w, y.reshape((rows, fan_out)))
                w_at += fan_in * fan_out
                a_at += batch_size * fan_in
            for i in range(layers - 1, -1, -1):
                fan_in, fan_out = sizes[i], sizes[i + 1]
                w_at -= fan_in * fan_out
                a_at -= batch_size * fan_in
                w = weights[w_at : w_at + fan_in * fan_out].reshape((fan_in, fan_out))
                g = grads[w_at : w_at + fan_in * fan_out].reshape((fan_in, fan_out))
                h = acts[a_at : a_at + rows * fan_in].reshape((rows, fan_in))
                d = deltas[a_at + batch_size * fan_in : a_at + batch_size * fan_in + rows * fan_out]
                d = d.reshape((rows, fan_out))
                np.dot(h.T, d, g)
                if i > 0:
                    np.dot(d, w.T, deltas[a_at : a_at + rows * fan_in].reshape((rows, fan_in)))

    return gemm_epoch


_KERNEL = []


def numba_floor(sizes, n: int, batch_size: int) -> float:
    """Seconds for the products of one epoch through Numba's np.dot (SciPy's OpenBLAS)."""
    if not _KERNEL:
        _KERNEL.append(_numba_kernel())
    kernel = _KERNEL[0]
    sizes = np.asarray(sizes, dtype=np.int64)
    weights = np.ones(int(np.sum(sizes[:-1] * sizes[1:])), np.float32)
    grads = np.empty_like(weights)
    acts = np.ones(int(batch_size * sizes.sum()), np.float32)
    deltas = np.ones_like(acts)
    steps = np.asarray(steps_of_epoch(n, batch_size), dtype=np.int64)
    kernel(steps[:1], sizes, batch_size, weights, grads, acts, deltas)  # compile or load
    start = time.perf_counter()
    kernel(steps, sizes, batch_size, weights, grads, acts, deltas)
    return time.perf_counter() - start


def main() -> None:
    from numpy_reference import numpy_floor

    sizes, n, batch = [784, 128, 10], 48000, 128
    print(f"{sizes}, batch {batch}, {n} rows: {epoch_flops(sizes, n) / 1e9:.2f} GFLOP per epoch")
    for name, probe in (("numpy", numpy_floor), ("numba", numba_floor)):
        runs = sorted(probe(sizes, n, batch) for _ in range(7))
        print(f"{name:>6} BLAS: median {runs[3]:.4f} s, best {runs[0]:.4f} s "
              f"({epoch_flops(sizes, n) / runs[3] / 1e9:.0f} GFLOP/s)")


if __name__ == "__main__":
    main()
