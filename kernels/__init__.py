"""Numba kernels: loops over arrays and scalars only, jitted once at module level by ``_jit.kernel``
(``njit`` with ``cache=True``).

Installed as ``tinygrad_digits.kernels``. Nothing here validates, allocates dicts or does I/O:
the callers in ``tinygrad_digits`` fix dtypes and contiguity before a kernel sees data, so the
same kernel serves float32 training and float64 gradient checks without recompiling by accident.

Every kernel uses ``error_model="numpy"``: division by zero gives inf/nan as in NumPy instead
of a Python exception, and without that check LLVM can vectorize the loops (Adam: 9x faster).
Their cache is stamped by all the modules here, and loads without Numba's registry refresh
(see ``_jit``).
"""

# Before any kernel imports Numba: it saves a quarter of a second at every start (see there).
from ._scipy_blas import load_cython_blas

load_cython_blas()
