"""Running a kernel on several threads: fastnum's own small pool instead of numba's ``prange``.

Every kernel is a serial ``nogil`` worker whose first argument is a fresh
``counters`` array (``fastnum.kernels.tasks``): ``run_parallel`` hands the
same call to the pool's helper threads and runs it on the calling thread
too; the threads share the tasks through the counters, and the call returns
when the calling thread's worker does, which is when every task is finished.

Why not ``prange``: a parallel kernel compiles about twice as long as the
same work as a serial function (numba's parfor pipeline outlines the loop
into a gufunc and links, optimises and generates machine code for every
function it calls once more), and the first run of a book script on a fresh
machine is mostly compiling. A call costs the calling thread only a queue
put; a helper joins a few tens of microseconds later (a thread's wake-up)
and takes the tasks left, and one that does not get a core (a busy machine)
holds nothing up. numba's threading layers are not used at all, so nothing
here depends on TBB, OpenMP or their absence (numba's workqueue layer, the
fallback on Apple Silicon, cannot run two parallel kernels at once).

The number of threads is numba's (``numba.set_num_threads``, ``NUMBA_NUM_THREADS``).
"""

import os
import queue
import threading
import time

import numpy as np
from numba import njit

from ._config import NJIT_OPTIONS
from .kernels.tasks import ABORT, spin_while_equal

COUNTER_SLOTS = 8
"""Slots of a call's ``counters``: ``ABORT``, then a kernel's own (next task and tasks done per phase)."""


SPIN_SECONDS = 200e-6
"""How long an idle helper spins (without the GIL) before it sleeps on the queue: the next parallel
region of a training step usually starts within that, and a sleeping thread wakes 85 to 300 µs late
on a virtual machine (the chapter-4 training ran about 10% slower with helpers that slept at once)."""


@njit(**NJIT_OPTIONS)
def _spin(bell, seen, rounds):
    return spin_while_equal(bell, seen, rounds)


def _spin_rounds(bell):
    """The spin-loop reads that take about ``SPIN_SECONDS`` on this processor (timed once)."""
    from ._compile import discard_unreadable_indexes

    discard_unreadable_indexes()  # called directly, not through _compile.compile_kernel
    _spin(bell, bell[0], 1)  # compiles or loads it
    rounds = 20_000
    started = time.perf_counter()
    _spin(bell, bell[0], rounds)
    elapsed = max(time.perf_counter() - started, 1e-7)
    return max(1, min(int(rounds * SPIN_SECONDS / elapsed), 10_000_000))


class _Pool:
    """Helper threads that run the workers handed to them, one call after another."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rounds = None
        self._start()

    def _start(self):
        self._pid = os.getpid()
        self._queue = queue.SimpleQueue()
        self._bell = np.zeros(1, dtype=np.int64)  # rung (incremented) after every submit
        self._threads = []

    def _helper(self, jobs, bell, rounds):
        while True:
            seen = int(bell[0])  # read before looking at the queue: a later submit changes it
            try:
                worker, args, failures = jobs.get_nowait()
            except queue.Empty:
                _spin(bell, seen, rounds)  # nogil: returns as soon as a submit rings
                worker, args, failures = jobs.get()
            try:
                worker(*args)
            except BaseException as error:  # noqa: BLE001 - handed to the calling thread
                args[0][ABORT] = 1
                failures.append(error)

    def submit(self, worker, args, n_helpers, failures):
        with self._lock:
            if self._pid != os.getpid():  # a forked child has the queue but not the threads
                self._start()
            if len(self._threads) < n_helpers and self._rounds is None:
                self._rounds = _spin_rounds(self._bell)
            while len(self._threads) < n_helpers:
                thread = threading.Thread(target=self._helper, args=(self._queue, self._bell, self._rounds),
                                          daemon=True, name=f"fastnum-worker-{len(self._threads) + 1}")
                thread.start()
                self._threads.append(thread)
            for _ in range(n_helpers):
                self._queue.put((worker, args, failures))
            self._bell[0] += 1


_POOL = _Pool()


def new_counters(n_slots=COUNTER_SLOTS):
    """A call's counters: all zero (``n_slots`` for a worker with many phases)."""
    return np.zeros(n_slots, dtype=np.int64)


def thread_count():
    """The threads a kernel runs on: numba's setting (``numba.set_num_threads``, else
    ``NUMBA_NUM_THREADS``: all cores).

    numba's own count is read only once numba has started its threading layer
    (``set_num_threads`` does): asking for it starts the layer's threads, which
    fastnum's kernels do not use.
    """
    import numba
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", True):
        return numba.get_num_threads()
    return numba.config.NUMBA_NUM_THREADS


_WORKERS = set()


def parallel_worker(dispatcher):
    """Mark a compiled worker (its first argument the call's counters) as one ``launch`` runs on
    every thread; returns it unchanged."""
    _WORKERS.add(dispatcher)
    return dispatcher


def is_parallel_worker(kernel):
    return kernel in _WORKERS


def launch(kernel, args):
    """Run one (kernel, arguments) call: a parallel worker on every thread (``run_parallel``),
    any other kernel directly. Returns what the kernel returns (None for workers)."""
    if kernel in _WORKERS:
        run_parallel(kernel, args)
        return None
    return kernel(*args)


def run_parallel(worker, args, n_threads=None):
    """``worker(*args)`` on ``n_threads`` threads (default ``thread_count()``), this one included.

    ``args[0]`` is the call's ``counters`` (``new_counters()``). Returns when
    this thread's worker returns; an error on any thread is raised here.
    """
    n_threads = thread_count() if n_threads is None else n_threads
    failures = []
    if n_threads > 1:
        _POOL.submit(worker, args, n_threads - 1, failures)
    try:
        worker(*args)
    except BaseException:
        args[0][ABORT] = 1  # helpers waiting for a task of this thread's stop waiting
        raise
    if failures:
        raise failures[0]
