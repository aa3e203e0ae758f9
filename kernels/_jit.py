"""The decorator of every kernel: ``njit`` with the disk cache and NumPy's error model, whose
loads from a warm cache skip Numba's registry refresh (see _WarmLoad).

``error_model="numpy"``: division by zero gives inf/nan as in NumPy instead of a Python
exception, and without that check LLVM can vectorize the loops (Adam: 9x faster).
"""

from numba import njit
from numba.core.caching import FunctionCache
from numba.core.runtime import rtsys

# the internals _WarmLoad.load_overload calls; a Numba without them keeps its own loads
_SKIPPABLE = all(hasattr(FunctionCache, name)
                 for name in ("_load_overload", "_guard_against_spurious_io_errors"))


def kernel(function=None, **options):
    """``@kernel`` or ``@kernel(parallel=True, ...)``: ``njit(cache=True, error_model="numpy")``
    with ``options`` added, loading from the cache through _WarmLoad."""
    if function is None:
        return lambda function: kernel(function, **options)
    dispatcher = njit(error_model="numpy", **options)(function)
    if _SKIPPABLE:
        dispatcher._cache = _WarmLoad(function)  # what dispatcher.enable_caching() does, with ours
    else:
        dispatcher.enable_caching()
    return dispatcher


class _WarmLoad(FunctionCache):
    """Numba's disk cache, without the registry refresh before each load.

    Before loading any cached function, Numba refreshes its target context: it imports and
    installs every typing and lowering registry it has (strings, dicts, random generators,
    linear algebra, ...), 0.25-0.4 s at every start, which the machine code read from the cache
    never uses. A load only needs the runtime (NRT), which compiled code calls into; that is
    initialized here. Compiling a kernel (a cold cache, a new signature) still refreshes in full:
    Numba's compiler does it first.
    """

    def load_overload(self, sig, target_context):
        rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)
