"""Kernel warm-up: the CLI's "compiling kernels (first run only)" depends on kernels_cached."""

from __future__ import annotations

from tinygrad_digits import warmup


def test_an_empty_cache_is_cold(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nothing-here"))
    assert not warmup.kernels_cached()


def test_a_cache_with_every_kernel_module_is_warm(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    nested = tmp_path / "work_main_kernels"
    nested.mkdir()
    for name in warmup.KERNEL_MODULES[:-1]:
        (nested / f"{name}.some_kernel-12.py311.nbi").write_bytes(b"")
    assert not warmup.kernels_cached()  # one module still missing
    (nested / f"{warmup.KERNEL_MODULES[-1]}.some_kernel-3.py311.nbi").write_bytes(b"")
    assert warmup.kernels_cached()


def test_warm_up_compiles_the_float32_training_kernels():
    import importlib

    warmup.warm_up()
    for module in ("dense", "softmax", "optim"):
        kernels = importlib.import_module(f"tinygrad_digits.kernels.{module}")
        for name in dir(kernels):
            dispatcher = getattr(kernels, name)
            if hasattr(dispatcher, "signatures") and dispatcher.__module__ == kernels.__name__:
                assert any("float32" in str(sig) for sig in dispatcher.signatures), f"{module}.{name}"
