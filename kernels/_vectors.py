"""Full-width vectors on every CPU with AVX-512 (widen_vectors).

LLVM, which compiles the kernels, tunes its code for Intel's AVX-512 CPUs (Skylake-X through
Emerald Rapids) with ``prefer-256-bit``: there its loop vectorizer keeps to 256-bit vectors, for
the clock drop that 512-bit instructions caused on the first of them; for AMD's Zen 4 it takes
512-bit ones. The kernels' inner loops are LLVM's vectorized loops, so on an Intel Xeon they ran
at half the width they run at on a Zen 4. On a 2-core Xeon (Emerald Rapids) a fused training step
of the default MLP took 0.87-0.91 of its time with full-width vectors (the two builds alternated
in two processes, 150 rounds, twice; one-thread and parallel kernels alike). Full-width loads pay
only on data that starts on a cache line, as the fused kernels' buffers do (chain.aligned_empty).
"""

import os

WIDEN = "-prefer-256-bit"  # LLVM's tuning feature, turned off


def widen_vectors() -> bool:
    """Let Numba compile for the host's features with WIDEN added, where the CPU has AVX-512 and
    the user chose neither Numba's CPU nor its features (NUMBA_CPU_NAME, NUMBA_CPU_FEATURES).
    Returns whether it did.

    It is Numba's own setting (``numba.config.CPU_FEATURES``), for the whole process, and it only
    counts before Numba first compiles or loads a function: after that, nothing changes. Numba's
    cache keeps compiled code by the features it was compiled for, so code compiled either way is
    never mixed up.
    """
    if os.environ.get("NUMBA_CPU_NAME") or os.environ.get("NUMBA_CPU_FEATURES"):
        return False
    from numba.core import codegen, config

    if config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return False
    features = codegen.get_host_cpu_features()
    if "+avx512f" not in features.split(","):
        return False
    config.CPU_FEATURES = f"{features},{WIDEN}"
    return True


def widened() -> bool:
    """Whether Numba compiles this process's kernels with WIDEN (widen_vectors)."""
    from numba.core import config

    return WIDEN in (config.CPU_FEATURES or "").split(",")
