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

import os

# Before any kernel imports Numba: it saves a quarter of a second at every start (see there).
from ._scipy_blas import load_cython_blas

load_cython_blas()

# Before any kernel compiles or loads: 512-bit vectors wherever the CPU has them (see there).
from ._vectors import widen_vectors  # noqa: E402 (after the BLAS table)

widen_vectors()

# Numba's OpenMP threads spin after each parallel kernel (GNU OpenMP's default: 300,000 turns)
# for long enough to take the cores from a BLAS product that follows, measured 4x slower. 10,000
# turns keep the threads awake between the parallel loops of one kernel (the fused steps ran no
# slower) and let them sleep before the next product. Read when OpenMP loads: the first
# parallel call.
if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"
