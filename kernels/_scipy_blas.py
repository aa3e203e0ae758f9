"""Start-up: Numba's BLAS table without the rest of scipy.linalg (see load_cython_blas).

kernels/__init__ runs this before any kernel module imports Numba. It also sets SciPy's
OpenBLAS threads to sleep as soon as they finish (OPENBLAS_THREAD_TIMEOUT, unless set).
"""

import importlib.machinery
import importlib.util
import os
import sys


def load_cython_blas() -> None:
    """Load SciPy's BLAS table alone, before Numba imports it through all of scipy.linalg.

    Numba's ``np.dot`` calls BLAS through ``scipy.linalg.cython_blas``, and importing Numba
    imports that module, which runs ``scipy.linalg/__init__`` first: 0.25-0.3 s of decompositions
    and array-API shims that no kernel uses, on every start. The extension module itself needs
    none of them, so it is loaded from its file under its own name; Python's import then finds it
    in ``sys.modules``, and a later ``import scipy.linalg`` adopts the same module. Whenever that
    is not possible (Numba already imported, another SciPy layout), nothing changes.
    """
    name = "scipy.linalg.cython_blas"
    if name in sys.modules or "numba" in sys.modules:
        return
    spec = importlib.util.find_spec("scipy")
    if spec is None or spec.origin is None:
        return
    folder = os.path.join(os.path.dirname(spec.origin), "linalg")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, "cython_blas" + suffix)
        if os.path.exists(path):
            break
    else:
        return
    import scipy  # noqa: F401  (the parent package: cheap, and the module's __package__)

    # OpenBLAS reads this as it loads, just below. Its threads busy-wait 2^28 cycles (0.1 s)
    # after each product by default, and they then take a core from our own threads (the
    # parallel training kernel, after each epoch's validation) or from another process. With
    # 2^4, they sleep as soon as they are done; a product wakes them in microseconds.
    # Set for the load only, so child processes see the environment they were given.
    ours = "OPENBLAS_THREAD_TIMEOUT" not in os.environ
    if ours:
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        return
    finally:
        if ours:
            del os.environ["OPENBLAS_THREAD_TIMEOUT"]
    sys.meta_path.insert(0, _AdoptCythonBlas(module))


class _AdoptCythonBlas:
    """Import hook for a later ``import scipy.linalg``: once the package has run, it gets the
    already loaded module as its ``cython_blas`` attribute, as a normal import would have set."""

    def __init__(self, module):
        self.module = module

    def find_spec(self, name, path=None, target=None):
        if name != "scipy.linalg":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(package):
            run(package)
            package.cython_blas = self.module

        spec.loader.exec_module = exec_module
        return spec

