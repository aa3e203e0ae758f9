"""Where the fused kernels' data lies in memory, and the vector width they are compiled for."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_digits import chain as C
from tinygrad_digits import fastpath as F
from tinygrad_digits import model as M
from tinygrad_digits import optimizers as O
from tinygrad_digits.kernels import _vectors


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 40), min_size=1, max_size=3), dtype=st.sampled_from([np.float32, np.float64,
                                                                                         np.int64, np.uint16]))
def test_aligned_arrays_start_on_a_cache_line_and_are_plain_arrays(shape, dtype):
    empty, zeros = C.aligned_empty(tuple(shape), dtype), C.aligned_zeros(tuple(shape), dtype)
    for a in (empty, zeros):
        assert a.ctypes.data % C.LINE == 0
        assert a.shape == tuple(shape) and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable
    assert not zeros.any()
    empty[...] = 7  # the whole array is its own memory
    assert (empty == 7).all() and not zeros.any()


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 50), min_size=2, max_size=5), rows=st.integers(1, 20))
def test_every_block_of_the_flat_layout_starts_on_a_line_and_none_overlap(sizes, rows):
    params = {f"W{i}": np.zeros((a, b), np.float32) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))}
    params |= {f"b{i}": np.zeros(b, np.float32) for i, b in enumerate(sizes[1:])}
    chain = tuple((f"W{i}", f"b{i}", "relu") for i in range(len(sizes) - 1))
    layout, keys, size, out_size = C.flat_layout(chain, params, rows)
    spans = sorted((at, at + count) for _, at, count in keys)
    assert all(at % C.BLOCK == 0 for at, _ in spans)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))
    assert spans[-1][1] <= size and size % C.BLOCK == 0
    assert [count for _, _, count in keys] == [params[key].size for key, _, _ in keys]
    outs = layout[:, 4]
    assert all(at % C.BLOCK == 0 for at in outs)
    assert all(a + rows * d <= b for a, d, b in zip(outs, layout[:, 2], [*outs[1:], out_size]))


def test_the_fused_steps_buffers_start_on_cache_lines():
    spec = M.ModelSpec(hidden=(13,), inputs=30, outputs=4)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 30)).astype(np.float32)
    steps = F.FusedSteps(M.dense_chain(spec), spec.alpha, M.init_params(spec, rng), x, rng.integers(0, 4, 40), 8,
                         O.OptimizerConfig("adam"))
    for a in (steps.flat, steps.grads, steps.slot1, steps.slot2, steps.outs, steps.deltas, steps.xbuf):
        assert a.ctypes.data % C.LINE == 0


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(0, 30), min_size=1, max_size=40), parts=st.integers(1, 4))
def test_the_parts_blocks_of_rows_cover_the_columns_and_share_their_entries(counts, parts):
    d = len(counts)
    indices = np.repeat(np.arange(d), counts).astype(np.uint16)
    blocks = C.row_blocks(indices, d, parts)
    assert blocks.dtype == np.int64 and blocks.shape == (parts + 1,)
    assert blocks[0] == 0 and blocks[-1] == d and np.all(np.diff(blocks) >= 0)
    shares = [sum(counts[a:b]) for a, b in zip(blocks, blocks[1:])]
    if sum(counts) == 0:
        assert all(b - a in (d // parts, -(-d // parts)) for a, b in zip(blocks, blocks[1:]))
    else:  # each block is within one column of its even share of the entries
        assert max(shares) - min(shares) <= 2 * max(counts)


def test_mnist_blocks_hold_even_shares_of_its_ink(mnist_splits):
    indices = np.nonzero(mnist_splits.x_train[:5000] > mnist_splits.x_train.min())[1].astype(np.uint16)
    blocks = C.row_blocks(indices, 784, 2)
    counts = np.bincount(indices, minlength=784)
    upper, lower = counts[: blocks[1]].sum(), counts[blocks[1] :].sum()
    assert abs(int(upper) - int(lower)) <= 2 * counts.max()  # within a column of even
    assert blocks[1] > 392  # the lower half of a digit holds more ink than its upper half


def test_counting_the_columns_entries_takes_no_copy_of_them():
    """The training set's column indices are uint16: an int64 copy of MNIST's is 58 MB more at
    the peak of a run."""
    import tracemalloc

    indices = np.random.default_rng(0).integers(0, 784, 1 << 22).astype(np.uint16)  # 8 MB
    tracemalloc.start()
    try:
        blocks = C.row_blocks(indices, 784, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < indices.nbytes // 4
    assert abs(int((indices < blocks[1]).sum()) - len(indices) // 2) <= np.bincount(indices).max()


@pytest.fixture
def numba_settings(monkeypatch):
    """Numba's CPU settings as on a machine where the user set none; each test sets the host."""
    from numba.core import codegen, config

    monkeypatch.delenv("NUMBA_CPU_NAME", raising=False)
    monkeypatch.delenv("NUMBA_CPU_FEATURES", raising=False)
    monkeypatch.setattr(config, "CPU_NAME", None)
    monkeypatch.setattr(config, "CPU_FEATURES", None)

    def host(features: str):
        monkeypatch.setattr(codegen, "get_host_cpu_features", lambda: features)
        return config

    return host


def test_an_avx512_host_gets_full_width_vectors(numba_settings):
    config = numba_settings("+avx,+avx2,+avx512f,+fma")
    assert _vectors.widen_vectors()
    assert config.CPU_FEATURES == "+avx,+avx2,+avx512f,+fma,-prefer-256-bit"
    assert _vectors.widened()


def test_a_host_without_avx512_keeps_llvms_choice(numba_settings):
    config = numba_settings("+avx,+avx2,-avx512f,+fma")
    assert not _vectors.widen_vectors()
    assert config.CPU_FEATURES is None and not _vectors.widened()


@pytest.mark.parametrize("variable", ["NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES"])
def test_the_users_own_numba_cpu_settings_win(numba_settings, monkeypatch, variable):
    config = numba_settings("+avx2,+avx512f")
    monkeypatch.setenv(variable, "haswell" if variable == "NUMBA_CPU_NAME" else "+avx2")
    assert not _vectors.widen_vectors()
    assert config.CPU_FEATURES is None
    monkeypatch.delenv(variable)
    monkeypatch.setattr(config, "CPU_FEATURES", "+sse2")  # set in Numba's config directly
    assert not _vectors.widen_vectors()
    assert config.CPU_FEATURES == "+sse2"
