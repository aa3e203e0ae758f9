"""Kernel warm-up: the CLI's "compiling kernels (first run only)" depends on kernels_cached."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tinygrad_digits import warmup


def test_an_empty_cache_is_cold(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nothing-here"))
    assert not warmup.kernels_cached()


def test_a_cache_warmed_up_from_these_sources_with_every_kernel_module_is_warm(tmp_path, monkeypatch):
    from numba.core import config

    from tinygrad_digits.kernels._jit import source_stamp

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    nested = tmp_path / "work_main_kernels"
    nested.mkdir()
    for name in warmup.KERNEL_MODULES:
        (nested / f"{name}.some_kernel-12.py311.nbi").write_bytes(b"")
    assert not warmup.kernels_cached()  # warm_up has not run here
    (tmp_path / warmup.STAMP_FILE).write_text("0" * 64)
    assert not warmup.kernels_cached()  # it ran on other kernel sources (an upgrade, an edit)
    (tmp_path / warmup.STAMP_FILE).write_text(source_stamp())
    assert not warmup.kernels_cached()  # these sources, but no CPU target: an older stamp
    (tmp_path / warmup.STAMP_FILE).write_text(warmup.cache_stamp())
    assert warmup.kernels_cached()
    monkeypatch.setattr(config, "CPU_NAME", "haswell")  # what NUMBA_CPU_NAME=haswell sets
    monkeypatch.setattr(config, "CPU_FEATURES", "")
    assert warmup.cache_stamp().split()[0] == source_stamp()
    assert not warmup.kernels_cached()  # warmed up for another CPU target: its kernels would compile again
    monkeypatch.undo()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert warmup.kernels_cached()
    (nested / f"{warmup.KERNEL_MODULES[-1]}.some_kernel-12.py311.nbi").unlink()
    assert not warmup.kernels_cached()  # one module missing


def test_the_kernel_source_stamp_changes_with_any_kernel_module(tmp_path):
    from tinygrad_digits.kernels import _jit

    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    before = _jit._folder_stamp(str(tmp_path))
    (tmp_path / "b.py").write_text("y = 3\n")
    _jit._folder_stamp.cache_clear()
    assert _jit._folder_stamp(str(tmp_path)) != before
    (tmp_path / "b.py").write_text("y = 2\n")
    _jit._folder_stamp.cache_clear()
    assert _jit._folder_stamp(str(tmp_path)) == before


def test_warm_up_compiles_the_float32_training_kernels_and_says_so_in_the_cache():
    import importlib

    from tinygrad_digits.kernels._jit import source_stamp

    stamp = Path(os.environ["NUMBA_CACHE_DIR"]) / warmup.STAMP_FILE
    stamp.unlink(missing_ok=True)
    warmup.warm_up()
    assert stamp.read_text() == warmup.cache_stamp() and warmup.kernels_cached()
    assert stamp.read_text().split()[0] == source_stamp()
    for module in ("dense", "dropout", "softmax", "optim", "augment", "ink"):
        kernels = importlib.import_module(f"tinygrad_digits.kernels.{module}")
        for name in dir(kernels):
            dispatcher = getattr(kernels, name)
            if name == "softmax_cross_entropy_rows" or name.startswith("_"):
                continue  # called only inside other kernels, which a warm cache loads whole
            if name == "labels_within":
                assert dispatcher.signatures, name  # integer labels only: no float signature
                continue
            if hasattr(dispatcher, "signatures") and dispatcher.__module__ == kernels.__name__:
                assert any("float32" in str(sig) for sig in dispatcher.signatures), f"{module}.{name}"


def test_the_kernels_reach_blas_without_importing_all_of_scipy_linalg():
    """kernels/__init__ loads scipy.linalg.cython_blas alone (0.25 s less at every start); np.dot
    in a kernel still works, and a later ``import scipy.linalg`` adopts the same module."""
    import subprocess
    import sys

    probe = (
        "import sys, numpy as np\n"
        "from tinygrad_digits.kernels import dense\n"
        "a = np.ones((3, 4), np.float32)\n"
        "y = dense.dense_forward(a, np.ones((4, 2), np.float32), np.zeros(2, np.float32), 0, 0.0)\n"
        "assert y.tolist() == [[4.0, 4.0]] * 3, y\n"
        "assert 'scipy.linalg' not in sys.modules, 'scipy.linalg was imported'\n"
        "blas = sys.modules['scipy.linalg.cython_blas']\n"
        "import scipy.linalg\n"
        "assert scipy.linalg.cython_blas is blas\n"
        "from scipy.linalg import cython_blas\n"
        "assert cython_blas is blas\n"
        "assert np.allclose(scipy.linalg.blas.sgemm(1.0, a, a.T), 4.0)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_warm_cache_loads_the_training_kernel_without_numbas_registry_refresh(tmp_path, mnist_splits):
    """_jit.kernel loads cached machine code without Numba's registry refresh (0.25-0.4 s at every
    start). In a new process, from the session's cache: the training kernel (the parallel one on
    two or more threads), its threads and the runtime it calls are all there, and training comes
    out as in this process; a function compiled afterwards still compiles (Numba's compiler
    refreshes the registries itself)."""
    import subprocess
    import sys

    import numpy as np

    from tinygrad_digits import model as M
    from tinygrad_digits import optimizers as O
    from tinygrad_digits import train as T

    warmup.warm_up()  # the session's cache holds the kernels (compiled once per session)
    x, y = mnist_splits.x_train[:1000], mnist_splits.y_train[:1000]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    spec = M.ModelSpec(hidden=(32,), activations=("relu",))
    config, optimizer = T.TrainConfig(epochs=2, batch_size=64), O.OptimizerConfig("adam")
    here = T.train(spec, M.init_params(spec, np.random.default_rng(0)), x, y, x[:0], y[:0], config, optimizer)
    probe = (
        "import sys, numpy as np\n"
        "from tinygrad_digits import model as M, optimizers as O, train as T\n"
        "from tinygrad_digits.kernels import steps\n"
        "x, y = np.load(sys.argv[1] + '/x.npy'), np.load(sys.argv[1] + '/y.npy')\n"
        "spec = M.ModelSpec(hidden=(32,), activations=('relu',))\n"
        "result = T.train(spec, M.init_params(spec, np.random.default_rng(0)), x, y, x[:0], y[:0],\n"
        "                 T.TrainConfig(epochs=2, batch_size=64), O.OptimizerConfig('adam'))\n"
        "np.savez(sys.argv[1] + '/there.npz', **result.params)\n"
        "stats = [k.stats for k in (steps.train_steps_parallel, steps.train_steps)]  # whichever ran: one, or\n"
        "hits = [sum(s.cache_hits.values()) for s in stats]  # both (the trainer times them on two threads)\n"
        "assert max(hits) == 1 and sum(hits) >= 1, stats\n"
        "assert not any(s.cache_misses for s in stats), stats\n"
        "assert 'numba.typed.typeddict' not in sys.modules, 'the registries were refreshed'\n"
        "from numba import njit\n"
        "total = njit(lambda a: a.sum())  # compiled here, uncached: Numba's compiler refreshes first\n"
        "assert total(np.arange(6.0)) == 15.0\n"
        "assert 'numba.typed.typeddict' in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    there = np.load(tmp_path / "there.npz")
    for name, value in here.params.items():
        np.testing.assert_array_equal(there[name], value, err_msg=name)


def test_a_kernel_changed_in_another_file_is_compiled_again_not_loaded_stale(tmp_path):
    """A cached kernel holds the code of the kernels it calls; Numba alone keeps it while its own
    file is unchanged. _jit.kernel stamps the cache by the whole folder of modules."""
    import subprocess
    import sys

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "outer.py").write_text(
        "from tinygrad_digits.kernels._jit import kernel\n"
        "from .inner import inner\n\n\n"
        "@kernel\ndef outer(x):\n    return inner(x) + 1.0\n"
    )
    probe = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from pkg.outer import outer\n"
        "print(outer(2.0), sum(outer.stats.cache_hits.values()))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run(factor):
        (package / "inner.py").write_text(
            "from tinygrad_digits.kernels._jit import kernel\n\n\n"
            f"@kernel\ndef inner(x):\n    return x * {factor}\n"
        )
        done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run(2.0) == ["5.0", "0"]  # compiled
    assert run(2.0) == ["5.0", "1"]  # loaded from the cache
    assert run(3.0) == ["7.0", "0"]  # inner.py changed: outer compiled again, with the new inner
    assert run(3.0) == ["7.0", "1"]


def test_the_cli_compiles_up_front_only_when_the_cache_is_cold(monkeypatch, capsys):
    from tinygrad_digits.cli import options

    calls = []
    monkeypatch.setattr(warmup, "warm_up", lambda: calls.append("warm_up"))
    monkeypatch.setattr(warmup, "kernels_cached", lambda: True)
    options.announce_compile(as_json=False)
    assert calls == [] and "compiling" not in capsys.readouterr().err  # kernels load as they are called
    monkeypatch.setattr(warmup, "kernels_cached", lambda: False)
    options.announce_compile(as_json=False)
    assert calls == ["warm_up"] and "compiling kernels (first run only)" in capsys.readouterr().err


def test_warm_up_records_which_training_kernel_is_faster_here_and_training_follows_it(monkeypatch):
    import numba
    import numpy as np

    from tinygrad_digits import fastpath as F
    from tinygrad_digits import model as M
    from tinygrad_digits import optimizers as O

    if not F.parallel_possible(warmup.CHOICE_SHAPE["batch_size"]):
        assert numba.get_num_threads() < 2
        return  # one thread: nothing to choose, and nothing is recorded
    (Path(os.environ["NUMBA_CACHE_DIR"]) / warmup.THREADS_FILE).unlink(missing_ok=True)
    assert warmup.thread_choice() is None
    warmup.warm_up()
    recorded = json.loads((Path(os.environ["NUMBA_CACHE_DIR"]) / warmup.THREADS_FILE).read_text())
    assert recorded["key"] == warmup.thread_key() and recorded["threads"] == numba.get_num_threads()
    seconds = recorded["seconds"]
    assert set(seconds) == {"one thread", "parallel"} and all(s > 0 for s in seconds.values())
    assert recorded["parallel"] == (seconds["parallel"] < F.PARALLEL_MARGIN * seconds["one thread"])
    assert warmup.thread_choice() is recorded["parallel"]

    spec = M.ModelSpec(hidden=(8,))
    x, y = np.zeros((64, spec.inputs), np.float32), np.zeros(64, np.int64)
    monkeypatch.setattr(F, "USE_PARALLEL", None)
    for choice, parallel in ((True, True), (False, False), (None, True)):
        monkeypatch.setattr(warmup, "thread_choice", lambda choice=choice: choice)
        steps = F.FusedSteps(M.dense_chain(spec), spec.alpha, M.init_params(spec, np.random.default_rng(0)), x, y,
                             32, O.OptimizerConfig("adam"))
        # the step in parts for the threads either way; the kernel training starts with
        assert steps.parts == numba.get_num_threads() and steps.adaptive
        assert steps.parallel is parallel, choice


def test_a_thread_choice_made_elsewhere_does_not_hold_here(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    path = tmp_path / warmup.THREADS_FILE
    path.write_text(json.dumps({"parallel": False, "key": warmup.thread_key()}))
    assert warmup.thread_choice() is False
    for other in ("0" * 64 + "/2/another CPU", warmup.thread_key() + "x"):
        path.write_text(json.dumps({"parallel": False, "key": other}))
        assert warmup.thread_choice() is None
    path.write_text("{not json")
    assert warmup.thread_choice() is None
