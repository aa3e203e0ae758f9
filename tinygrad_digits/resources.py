"""What the machine can give: memory available now, for refusing sizes before allocating them;
glibc's malloc told to keep freed blocks; BLAS held to one thread."""

from __future__ import annotations

import contextlib
import os


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable on Linux; else all physical
    memory, or 2**63 where neither can be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 63


def human(size: int) -> str:
    """e.g. 2.1 GB, 640 MB, 12 kB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's largest: arrays below 32 MiB come from the reusable heap
TRIM_THRESHOLD = 256 << 20  # freed heap kept for the next step, up to 256 MiB
_KEPT = []


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks for reuse instead of handing them back to the system.

    An autodiff step allocates the same large arrays every time (a convolution's 11 MB output,
    its gradient) and frees them. glibc maps each block above its mmap threshold (128 kB, raised
    only as blocks up to 32 MB are freed) from the system and unmaps it on free, so every step
    faults all of its pages in again, zeroed: 5,500 page faults a step of Keras's simple convnet,
    which made a step take 50 ms instead of 28. Once called (the training loop does before its autodiff
    steps), blocks below 32 MiB come from the heap and stay there. False where the C library
    is not glibc, which is left as it is.
    """
    if _KEPT:
        return _KEPT[0]
    ok = False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = getattr(libc, "mallopt", None)
        if mallopt is not None and hasattr(libc, "gnu_get_libc_version"):
            ok = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except OSError:
        ok = False
    _KEPT.append(ok)
    return ok


_BLAS_LIBRARIES = []  # threadpoolctl's controllers of the BLAS libraries, found at the first call


@contextlib.contextmanager
def one_blas_thread():
    """BLAS held to one thread meanwhile, through each library's own set_num_threads: 2 us a
    call, where threadpoolctl's limit() costs 20-70 us, more than the products of an image or two."""
    if not _BLAS_LIBRARIES:
        import scipy.linalg.cython_blas  # noqa: F401 (the BLAS that Numba's np.dot calls: loaded before it is looked for)
        from threadpoolctl import ThreadpoolController

        _BLAS_LIBRARIES.append(ThreadpoolController().select(user_api="blas").lib_controllers)
    libraries = _BLAS_LIBRARIES[0]
    before = [library.get_num_threads() for library in libraries]
    for library in libraries:
        library.set_num_threads(1)
    try:
        yield
    finally:
        for library, threads in zip(libraries, before):
            library.set_num_threads(threads)
