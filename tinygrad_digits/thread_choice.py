"""Which of a kernel's two compilations to call: in the calling thread, or over Numba's threads.

The image kernels (kernels/conv.py, kernels/pool.py) give the same bits either way, so the
choice is free to follow the clock. On an idle 2-core machine the threaded kernels are about
twice as fast; when another process holds a core, a threaded call waits at its end for a
thread that is not running, and takes several times as long as the one-thread call. So each
call site (a kernel and the size of its work) keeps the recent seconds of both, calls the
faster, and calls the other now and then to see whether the machine has changed: after 2 calls
at first, half as often each time the other is confirmed slower, down to one in PROBE_EVERY.
A kernel's time falls at once to a faster call (a first call that compiled, or loaded, the
kernel is forgotten as soon as it runs again) and rises by SMOOTHING of a slower one.
"""

from __future__ import annotations

import time

PROBE_EVERY = 64  # at most this many calls between two runs of the kernel not in use
SMOOTHING = 0.3  # the weight of a slower newest time in a kernel's running average (a faster one replaces it)


class _Site:
    __slots__ = ("seconds", "wait", "gap", "probing")

    def __init__(self):
        self.seconds = {False: None, True: None}  # running average of a call, one thread / threads
        self.wait, self.gap, self.probing = 0, 2, False


class ThreadChoice:
    """``choice.call(key, run)``: ``run(parallel)``'s result, parallel chosen for this call site."""

    def __init__(self):
        self.sites: dict = {}

    def pick(self, key) -> bool:
        """True for the threaded kernel at this call site, False for the one-thread kernel."""
        site = self.sites.get(key)
        if site is None:
            site = self.sites[key] = _Site()
        for parallel in (True, False):
            if site.seconds[parallel] is None:
                return parallel
        best = site.seconds[True] < site.seconds[False]
        site.probing = site.wait <= 0
        if site.probing:
            site.wait = site.gap
            return not best
        site.wait -= 1
        return best

    def record(self, key, parallel: bool, seconds: float) -> None:
        site = self.sites[key]
        before = site.seconds[parallel]
        site.seconds[parallel] = seconds if before is None or seconds < before else before + SMOOTHING * (seconds - before)
        if site.probing and None not in site.seconds.values():
            still = (site.seconds[True] < site.seconds[False]) != parallel  # the probed kernel still loses
            site.gap = min(2 * site.gap, PROBE_EVERY) if still else 2
            site.probing = False

    def call(self, key, run):
        parallel = self.pick(key)
        started = time.perf_counter()
        out = run(parallel)
        self.record(key, parallel, time.perf_counter() - started)
        return out
