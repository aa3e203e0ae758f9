"""The sparse first-layer kernels (kernels/sparse.py) against the dense products they replace.

In float64 the two ways of adding up agree to ~1e-12, so any wrong index, missed row or
misplaced background term shows.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_digits.kernels import sparse


def inputs(seed: int, n: int, d: int, background: float, fraction: float, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, d)).astype(dtype)
    x[rng.random((n, d)) < fraction] = background
    return x


CASES = dict(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 12),
    d=st.integers(1, 40),
    m=st.integers(1, 19),
    background=st.sampled_from([0.0, -0.424, 1.5]),
    fraction=st.sampled_from([0.0, 0.5, 0.81, 1.0]),
)


@settings(max_examples=60, deadline=None)
@given(**CASES)
def test_csr_rows_hold_exactly_the_non_background_entries(seed, n, d, m, background, fraction):
    x = inputs(seed, n, d, background, fraction)
    indptr, indices, values = sparse.csr_rows(x, background)
    rebuilt = np.full_like(x, background)
    for i in range(n):
        cols = indices[indptr[i] : indptr[i + 1]]
        assert np.all(np.diff(cols) > 0)  # each row's columns in order, no repeats
        rebuilt[i, cols] += values[indptr[i] : indptr[i + 1]]
    np.testing.assert_allclose(rebuilt, x, rtol=1e-15, atol=1e-15)
    assert indptr[-1] == np.count_nonzero(x != background)


def column_block(d: int, data) -> tuple[int, int]:
    first = data.draw(st.integers(0, d))
    return first, data.draw(st.integers(first, d))


@settings(max_examples=60, deadline=None)
@given(**CASES, data=st.data())
def test_sparse_forward_is_the_dense_product_of_a_block_of_columns(seed, n, d, m, background, fraction, data):
    x = inputs(seed, n, d, background, fraction)
    rows = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=2 * n)), np.int64)
    w = np.random.default_rng(seed + 1).normal(0, 1, (d, m))
    csr = sparse.csr_rows(x, background)
    for first, last in ((0, d), column_block(d, data)):
        y, spans = np.full((len(rows), m), np.nan), np.full((len(rows), 2), -1, np.int64)
        sparse.sparse_forward(*csr, rows, first, last, w, y, spans)
        block = x[rows][:, first:last]
        np.testing.assert_allclose(y + background * w[first:last].sum(axis=0), block @ w[first:last],
                                   rtol=1e-10, atol=1e-10)
        for i, r in enumerate(rows):  # the spans hold exactly the row's entries in those columns
            cols = csr[1][spans[i, 0] : spans[i, 1]]
            assert spans[i, 0] >= csr[0][r] and spans[i, 1] <= csr[0][r + 1]
            assert cols.tolist() == [k for k in range(first, last) if x[r, k] != background]


@settings(max_examples=60, deadline=None)
@given(**CASES, blocks=st.integers(1, 4), data=st.data())
def test_the_blocks_products_add_up_to_the_dense_product(seed, n, d, m, background, fraction, blocks, data):
    """A thread's share of the forward product: its block of w's rows, over the whole batch."""
    x = inputs(seed, n, d, background, fraction)
    rows = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=2 * n)), np.int64)
    w = np.random.default_rng(seed + 1).normal(0, 1, (d, m))
    bounds = sorted(data.draw(st.lists(st.integers(0, d), min_size=blocks - 1, max_size=blocks - 1)))
    bounds = [0, *bounds, d]
    total = background * w.sum(axis=0) + np.zeros((len(rows), m))
    for first, last in zip(bounds, bounds[1:]):
        y = np.full((len(rows), m), np.nan)
        sparse.sparse_forward(*sparse.csr_rows(x, background), rows, first, last, w, y,
                              np.zeros((len(rows), 2), np.int64))
        total += y
    np.testing.assert_allclose(total, x[rows] @ w, rtol=1e-10, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(**CASES, data=st.data())
def test_sparse_weight_grad_is_the_dense_product(seed, n, d, m, background, fraction, data):
    x = inputs(seed, n, d, background, fraction)
    rows = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=2 * n)), np.int64)
    dz = np.random.default_rng(seed + 2).normal(0, 1, (len(rows), m))
    expected = x[rows].T @ dz
    csr = sparse.csr_rows(x, background)
    whole = None
    for lo, hi in ((0, d), column_block(d, data)):  # the whole of dw, and a block of its rows
        dw = np.full((hi - lo, m), np.nan)
        sparse.sparse_weight_grad(*csr, rows, lo, hi, d, dz, background, dz.sum(axis=0), dw)
        np.testing.assert_allclose(dw, expected[lo:hi], rtol=1e-10, atol=1e-10)
        whole = dw if whole is None else whole
        assert dw.tobytes() == whole[lo:hi].tobytes()  # a row of dw adds up its column alone, in order


def test_float32_mnist_like_rows_agree_with_blas_to_float32_rounding(rng):
    """The training dtype on an MNIST-like input (81% background at -0.424), in two blocks."""
    x = inputs(5, 300, 784, -0.424, 0.81, np.float32)
    rows = rng.permutation(300)[:128].astype(np.int64)
    csr = sparse.csr_rows(x, np.float32(-0.424))
    w = rng.normal(0, 0.05, (784, 128)).astype(np.float32)
    y = np.float32(-0.424) * w.sum(axis=0, dtype=np.float32) + np.zeros((128, 128), np.float32)
    for first, last in ((0, 406), (406, 784)):
        part = np.empty((128, 128), np.float32)
        sparse.sparse_forward(*csr, rows, first, last, w, part, np.zeros((128, 2), np.int64))
        y += part
    exact = x[rows].astype(np.float64) @ w.astype(np.float64)
    assert np.abs(y - exact).max() <= 1e-5 * np.abs(exact).max()
    dz = rng.normal(0, 1, (128, 128)).astype(np.float32)
    dw = np.empty((784, 128), np.float32)
    sparse.sparse_weight_grad(*csr, rows, 0, 784, 784, dz, np.float32(-0.424), dz.sum(axis=0), dw)
    exact = x[rows].T.astype(np.float64) @ dz.astype(np.float64)
    assert np.abs(dw - exact).max() <= 1e-5 * np.abs(exact).max()


@settings(max_examples=60, deadline=None)
@given(**CASES)
def test_dense_rows_forward_is_the_dense_product(seed, n, d, m, background, fraction):
    x = inputs(seed, n, d, background, fraction)
    w = np.random.default_rng(seed + 3).normal(0, 1, (d, m))
    w_sums = np.empty(m)
    sparse.column_sums(w, w_sums)
    y = np.full((n, m), np.nan)
    sparse.dense_rows_forward(x, background, w, w_sums, y)
    np.testing.assert_allclose(y, x @ w, rtol=1e-10, atol=1e-10)


ROW_CASES = dict(
    seed=st.integers(0, 2**16),
    m=st.one_of(st.integers(1, 40), st.integers(100, 300)),  # under a vector, a few, more than a pass holds
    entries=st.integers(0, 30),
    dtype=st.sampled_from([np.float32, np.float64]),
)


def row_entries(seed, m, entries, dtype, d=60):
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(d, entries, replace=False)).astype(np.uint16)
    return rng, rng.normal(0, 1, entries).astype(dtype), indices, rng.normal(0, 1, (d, m)).astype(dtype)


@settings(max_examples=80, deadline=None)
@given(**ROW_CASES)
def test_a_row_adds_its_entries_one_at_a_time_in_order_to_the_bit(seed, m, entries, dtype):
    """_add_rows holds the row in vector registers: each element must still be the plain loop's
    sum, entry after entry, rounded after every multiply and every add (no fused multiply-add)."""
    rng, values, indices, w = row_entries(seed, m, entries, dtype)
    out = rng.normal(0, 1, (3, m)).astype(dtype)
    expected = out.copy()
    lo, hi = entries // 3, entries
    for p in range(lo, hi):
        expected[1] = expected[1] + values[p] * w[indices[p]]
    sparse._add_rows(out, 1, values, indices, lo, hi, w)
    assert out.tobytes() == expected.tobytes()


@settings(max_examples=80, deadline=None)
@given(**ROW_CASES, first=st.integers(0, 5))
def test_an_entry_adds_its_scaled_row_of_dz_to_its_row_of_dw_to_the_bit(seed, m, entries, dtype, first):
    """_add_outer holds dz's row in vector registers: every row of dw gets the plain loop's value."""
    rng, values, indices, _ = row_entries(seed, m, entries, dtype)
    indices = (indices + first).astype(np.uint16)
    dz = rng.normal(0, 1, (2, m)).astype(dtype)
    dw = rng.normal(0, 1, (60, m)).astype(dtype)
    expected = dw.copy()
    for p in range(entries):
        expected[indices[p] - first] = expected[indices[p] - first] + values[p] * dz[1]
    sparse._add_outer(dw, first, values, indices, 0, entries, dz, 1)
    assert dw.tobytes() == expected.tobytes()


def test_a_vector_is_as_wide_as_the_registers_numba_compiles_for():
    """64 bytes where the compiled code may use AVX-512, else 32: read from Numba's target, so a
    Numba that no longer tells would show here, not as a silent halving of the width."""
    from numba import njit
    from numba.core import codegen, config

    from tinygrad_digits.kernels.row_sums import lanes

    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else codegen.get_host_cpu_features()
    width = njit(lambda a: lanes(a))
    for dtype in (np.float32, np.float64):
        elements = width(np.zeros((1, 1), dtype))
        assert elements * np.dtype(dtype).itemsize == (64 if "+avx512f" in features.split(",") else 32)


def test_the_row_kernels_agree_to_the_bit_on_a_cpu_without_avx512(tmp_path):
    """Compiled for Haswell (AVX2: vectors of 32 bytes, not 64), the row kernels give the same
    bits as the plain loop, in a process of their own with a cache of its own."""
    import os
    import subprocess
    import sys

    code = """if True:
        import numpy as np
        from numba import njit
        from tinygrad_digits.kernels import sparse
        from tinygrad_digits.kernels.row_sums import lanes
        width = njit(lambda a: lanes(a))
        rng = np.random.default_rng(0)
        for dtype in (np.float32, np.float64):
            assert width(np.zeros((1, 1), dtype)) * np.dtype(dtype).itemsize == 32
            for m in (5, 8, 72, 100, 128, 201):
                w = rng.normal(size=(40, m)).astype(dtype)
                values, indices = rng.normal(size=12).astype(dtype), np.arange(1, 37, 3).astype(np.uint16)
                out, dw = np.zeros((1, m), dtype), np.zeros((40, m), dtype)
                sparse._add_rows(out, 0, values, indices, 0, 12, w)
                sparse._add_outer(dw, 0, values, indices, 0, 12, w, 2)
                row = np.zeros(m, dtype)
                for p in range(12):
                    row = row + values[p] * w[indices[p]]
                    assert dw[indices[p]].tobytes() == (values[p] * w[2]).tobytes()
                assert out[0].tobytes() == row.tobytes()
        print("same")
    """
    env = {**os.environ, "NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600,
                          check=False)
    assert done.stdout.strip() == "same", done.stderr[-2000:]


def test_a_prefetch_changes_no_value():
    from numba import njit

    from tinygrad_digits.kernels.prefetch import prefetch

    @njit
    def read_after_asking(a, out):
        for i in range(a.size):
            prefetch(a, i)
        for i in range(a.size):
            out[i] = a[i]

    for dtype in (np.uint16, np.int64, np.float32, np.float64):
        a = np.arange(1, 200, dtype=dtype)
        before, out = a.copy(), np.zeros_like(a)
        read_after_asking(a, out)
        assert np.array_equal(out, before) and np.array_equal(a, before)


def test_the_row_kernels_tell_llvm_that_their_arrays_do_not_overlap():
    """_jit's noalias option, which the row kernels take, reaches the compiler: beside the two
    arguments every function marks (its return and exception pointers), the arrays' pointers are
    marked noalias too. (Cached code cannot be inspected: a twin without the cache is.)"""
    from numba import njit

    out, w = np.zeros((2, 4), np.float32), np.arange(12, dtype=np.float32).reshape(3, 4)
    values, indices = np.array([1.0, 2.0], np.float32), np.array([0, 2], np.uint16)
    sparse._add_rows(out, 1, values, indices, 0, 2, w)
    np.testing.assert_array_equal(out, [[0, 0, 0, 0], w[0] + 2 * w[2]])
    dw = np.zeros((3, 4), np.float32)
    sparse._add_outer(dw, 0, values, indices, 0, 2, out, 1)
    np.testing.assert_array_equal(dw, [out[1], [0, 0, 0, 0], 2 * out[1]])
    for function in (sparse._add_rows, sparse._add_outer):
        assert function.targetoptions["noalias"] is True
    marked = {}
    for noalias in (False, True):
        twin = njit(noalias=noalias)(sparse._add_rows.py_func)
        twin(out, 1, values, indices, 0, 2, w)
        ir = twin.inspect_llvm(twin.signatures[0])
        marked[noalias] = max(line.count("noalias") for line in ir.splitlines() if line.startswith("define"))
    assert marked[False] == 2 and marked[True] > 2 + 4, marked
