"""Which of a kernel's two compilations to call: in the calling thread, or over Numba's threads.

The image kernels (kernels/conv.py, kernels/pool.py) give the same bits either way, so the
choice is free to follow the clock. On an idle 2-core machine the threaded kernels are about
twice as fast; when another process holds a core, a threaded call waits at its end for a
thread that is not running, and takes several times as long as the one-thread call. So each
call site (a kernel and the size of its work) keeps the recent seconds of both, calls the
faster, and calls the other now and then to see whether the machine has changed: after 2 calls
at first, half as often each time the other is confirmed slower, down to one in PROBE_EVERY.
A kernel's time is the (lower) median of its last WINDOW calls: one call slowed by the machine,
or a first call that compiled the kernel, moves nothing. A probe faster than the kernel in use
brings the next probes close again (after 2 calls), so that a change of the machine is confirmed
in a few calls.

``ThreadChoice.split`` makes the same choice for kernels compiled once with ``nogil`` (the
augmentation's, the optimizers'): whole in the calling thread, or cut into parts that plain
threads run at the same time.

``PairedChoice`` is the fused trainer's choice between its one-thread and parallel step kernels
(fastpath.py), which compares the two in runs side by side rather than by times of their own.
"""

from __future__ import annotations

import time
from collections import deque

PROBE_EVERY = 64  # at most this many calls between two runs of the kernel not in use
WINDOW = 5  # a kernel's time: the median of its last WINDOW calls


class _Site:
    __slots__ = ("times", "wait", "gap", "probing")

    def __init__(self):
        self.times = {False: deque(maxlen=WINDOW), True: deque(maxlen=WINDOW)}  # one thread / threads
        self.wait, self.gap, self.probing = 0, 2, False

    def seconds(self, parallel: bool) -> float:
        return lower_median(self.times[parallel])


def lower_median(times) -> float:
    """The (lower) median of recent seconds: one call slowed by the machine moves nothing."""
    times = sorted(times)
    return times[(len(times) - 1) // 2]


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
            if not site.times[parallel]:
                return parallel
        best = site.seconds(True) < site.seconds(False)
        site.probing = site.wait <= 0
        if site.probing:
            site.wait = site.gap
            return not best
        site.wait -= 1
        return best

    def record(self, key, parallel: bool, seconds: float) -> None:
        site = self.sites[key]
        site.times[parallel].append(seconds)
        if site.probing:
            other = site.times[not parallel]
            loses = not other or seconds >= site.seconds(not parallel)  # the probed kernel: slower again
            site.gap = min(2 * site.gap, PROBE_EVERY) if loses else 2
            site.wait = min(site.wait, site.gap)
            site.probing = False

    def call(self, key, run):
        parallel = self.pick(key)
        started = time.perf_counter()
        out = run(parallel)
        self.record(key, parallel, time.perf_counter() - started)
        return out

    def split(self, key, work: int, least: int, run) -> None:
        """``run(start, stop)`` over [0, work): whole in the calling thread, or in one part per
        thread of Numba's count, all at once (the calling thread takes the last), whichever is
        faster at the moment at this call site (key, work). Less work than ``least`` runs whole.

        ``run`` calls kernels compiled with ``nogil``, and its parts write disjoint outputs: each
        does what the whole would do to its share, so both ways give the same bits.
        """
        import numba

        parts = numba.get_num_threads() if work >= least else 1
        if parts < 2:
            run(0, work)
            return
        self.call((key, work), lambda parallel: _in_parts(run, work, parts if parallel else 1))


class PairedChoice:
    """The fused trainer's choice between its one-thread and parallel kernels (fastpath.FusedSteps),
    chunk by chunk: ``plan(chunk)`` gives the kernel and the most steps of the next run, and
    ``timed(parallel, steps, seconds)`` takes its time.

    The kernels are compared by the ratio of their seconds per step in runs side by side: a short
    run of the other kernel (``probe`` steps) between two runs of the one in use gives two ratios,
    and the parallel kernel is kept while the median of the last WINDOW ratios is below
    ``margin``. A shared host's speed changes by half within minutes, for both kernels at once:
    times of the two kernels taken minutes apart compare the moments, not the kernels. The runs
    of the other kernel come after ``gaps[0]`` chunks at first, twice as far apart each time one
    confirms the kernel in use, up to ``gaps[1]``, and close again when one does not; and at
    once when the kernel in use runs DRIFT times slower or faster than when last compared (a
    core taken or given back).
    """

    DRIFT = 1.3

    def __init__(self, parallel: bool, margin: float, probe: int, gaps: tuple[int, int]):
        self.parallel, self.margin, self.probe, self.gaps = parallel, margin, probe, gaps
        self.ratios = deque(maxlen=WINDOW)  # parallel / one-thread seconds per step, runs side by side
        self.loaded: set = set()  # the kernels whose first run (their load, not timed) is done
        self.last = None  # (kernel, seconds per step) of the last timed run
        self.reference = None  # the kernel in use's seconds per step when last compared
        self.chunks, self.gap, self.probe_at = 0, gaps[0], gaps[0]

    def plan(self, chunk: int) -> tuple[bool, int]:
        self.chunks += 1
        other = not self.parallel
        for kernel in (self.parallel, other):
            if kernel not in self.loaded:
                return kernel, self.probe
        if self.last is None or self.last[0] != self.parallel or self.chunks < self.probe_at:
            return self.parallel, chunk
        return other, self.probe

    def timed(self, parallel: bool, steps: int, seconds: float) -> None:
        if parallel not in self.loaded or steps <= 0:
            self.loaded.add(parallel)
            return
        step = seconds / steps
        last, self.last = self.last, (parallel, step)
        if last is None or last[0] == parallel:
            drifted = self.reference and not 1 / self.DRIFT < step / self.reference < self.DRIFT
            if parallel == self.parallel and drifted:
                self.reference, self.probe_at = None, self.chunks
            return
        ratio = step / last[1] if parallel else last[1] / step
        self.ratios.append(ratio)
        before = self.parallel
        self.parallel = lower_median(self.ratios) < self.margin
        self.reference = step if parallel == self.parallel else last[1]
        if self.parallel == before == parallel:
            return  # the run back after a run of the other kernel
        agrees = self.parallel == before and (ratio < self.margin) == before
        self.gap = min(2 * self.gap, self.gaps[1]) if agrees else self.gaps[0]
        self.probe_at = self.chunks + self.gap


_POOLS: dict = {}  # by size: the worker threads that run all parts but the calling thread's


def _in_parts(run, work: int, parts: int) -> None:
    if parts == 1:
        run(0, work)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = _POOLS.get(parts - 1)
    if pool is None:
        pool = _POOLS[parts - 1] = ThreadPoolExecutor(parts - 1, thread_name_prefix="tinygrad-digits-part")
    bounds = [work * i // parts for i in range(parts + 1)]
    futures = [pool.submit(run, a, b) for a, b in zip(bounds[:-2], bounds[1:-1])]
    run(bounds[-2], bounds[-1])
    for future in futures:
        future.result()
