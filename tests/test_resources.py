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
