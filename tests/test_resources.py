"""Tests for resources.keep_freed_memory: glibc's malloc told to keep freed blocks, once."""

from __future__ import annotations

import platform

import pytest

from tinygrad_digits import resources

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_glibc_takes_the_thresholds_once():
    assert resources.keep_freed_memory() is True
    assert resources._KEPT == [True]
    assert resources.keep_freed_memory() is True and resources._KEPT == [True]  # again: nothing more


def test_one_blas_thread_holds_every_blas_library_to_one_thread_and_gives_back_its_count():
    from threadpoolctl import threadpool_info, threadpool_limits

    def counts():
        return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]

    with threadpool_limits(2, user_api="blas"):
        assert counts() and set(counts()) == {2}
        with resources.one_blas_thread():
            assert set(counts()) == {1}
            with resources.one_blas_thread():  # nested: the inner one gives back one thread
                assert set(counts()) == {1}
            assert set(counts()) == {1}
        assert set(counts()) == {2}
