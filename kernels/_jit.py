"""The decorator of every kernel: ``njit`` with the disk cache and NumPy's error model, and a
cache of our own (_KernelCache) that loads faster and never serves stale code.

``error_model="numpy"``: division by zero gives inf/nan as in NumPy instead of a Python
exception, and without that check LLVM can vectorize the loops (Adam: 9x faster).

``noalias=True`` (``@kernel(noalias=True)``) tells LLVM that the kernel's array arguments share
no memory, where the caller guarantees it. A loop that writes one array while reading others
then needs no run-time check of their overlap before its vector form: the sparse layer's row
products ran 8-12% faster without the check, and the training step 2-4% faster again with the
rows phase's and Adam's kernels marked too. Numba has the flag but no decorator option for it,
so the option is mapped to the flag here.
"""

import functools
import hashlib
import sys
import types
from pathlib import Path

from numba import njit
from numba.core import caching
from numba.core.cpu import CPUTargetOptions
from numba.core.options import TargetOptions
from numba.core.runtime import rtsys

if not hasattr(CPUTargetOptions, "noalias"):  # module doc
    CPUTargetOptions.noalias = TargetOptions.Mapping("noalias")

# The Numba internals _KernelCache builds on; a Numba without one of them keeps its own cache.
_LOCATOR = getattr(caching, "UserProvidedCacheLocator", None)  # the one NUMBA_CACHE_DIR selects
_IMPL = getattr(caching, "CompileResultCacheImpl", None)
_OURS = _LOCATOR is not None and _IMPL is not None and all(
    hasattr(caching.FunctionCache, name) for name in ("_load_overload", "_guard_against_spurious_io_errors")
)


def kernel(function=None, name=None, **options):
    """``@kernel`` or ``@kernel(parallel=True, ...)``: ``njit(cache=True, error_model="numpy")``
    with ``options`` added, its cache a _KernelCache.

    ``kernel(function, name=..., ...)`` compiles one Python function as a kernel of that name, so
    that one loop can be compiled twice (with and without ``parallel``): Numba names a kernel's
    cache files after the function, and two kernels of one name would load each other's code.
    """
    if function is None:
        return lambda function: kernel(function, name, **options)
    if name is not None:
        function = _renamed(function, name)
    dispatcher = njit(error_model="numpy", **options)(function)
    if _OURS:
        dispatcher._cache = _KernelCache(function)  # what dispatcher.enable_caching() does, with ours
    else:
        dispatcher.enable_caching()
    return dispatcher


def _renamed(function, name: str):
    """A copy of ``function`` (the same code and globals) called ``name``."""
    twin = types.FunctionType(function.__code__, function.__globals__, name, function.__defaults__,
                              function.__closure__)
    twin.__qualname__, twin.__doc__, twin.__module__ = name, function.__doc__, function.__module__
    return twin


def source_stamp() -> str:
    """The stamp of the kernels' cache entries, as hex: it changes with any kernel module."""
    return _folder_stamp(str(Path(__file__).resolve().parent)).hex()


@functools.cache
def _folder_stamp(folder: str) -> bytes:
    """sha256 of every module in ``folder``, names and sources (read once per process)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


if _OURS:

    class _FolderLocator(_LOCATOR):
        """Numba's locator for NUMBA_CACHE_DIR, with the whole folder's sources as the stamp.

        Numba keeps a cached kernel while its own file is unchanged, but the machine code holds
        every kernel it calls, from other files too: change sparse.py alone and steps.py's
        training kernel would load with the old sparse code. Here a change to any kernel module
        makes every cached kernel stale, and they compile again.
        """

        def get_source_stamp(self):
            return _folder_stamp(str(Path(self._py_file).resolve().parent))

    class _FolderCacheImpl(_IMPL):
        _locator_classes = [_FolderLocator, *_IMPL._locator_classes]

    class _KernelCache(caching.FunctionCache):
        """Numba's disk cache, stamped by the folder (_FolderLocator), loading without Numba's
        registry refresh.

        Before loading any cached function, Numba refreshes its target context: it imports and
        installs every typing and lowering registry it has (strings, dicts, random generators,
        linear algebra, ...), 0.25-0.4 s at every start, which the machine code read from the
        cache never uses. A load only needs the runtime (NRT), which compiled code calls into;
        that is initialized here. Compiling a kernel (a cold cache, a new signature) still
        refreshes in full: Numba's compiler does it first.
        """

        _impl_class = _FolderCacheImpl

        def load_overload(self, sig, target_context):
            rtsys.initialize(target_context)
            try:
                with self._guard_against_spurious_io_errors():
                    return self._load_overload(sig, target_context)
            except Exception as e:  # a damaged entry (cut short, overwritten): compile again
                self._drop(e)
                return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except Exception as e:  # saving reads the index first: a damaged one is replaced
                self._drop(e)
                super().save_overload(sig, data)

        def _drop(self, error: Exception) -> None:
            """Remove this kernel's damaged index, saying so in one line."""
            index = Path(self._cache_file._index_path)
            if index.exists():
                sys.stderr.write(f"kernel cache: {index} could not be read ({type(error).__name__}); "
                                 "it is rebuilt\n")
                index.unlink(missing_ok=True)
