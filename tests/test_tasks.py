"""fastnum's own threads (``fastnum._workers``) and the task counters of the workers
(``fastnum.kernels.tasks``): every task once, phases that see what the last one wrote, any thread
count, failures that end the call instead of hanging it, forked processes."""

import multiprocessing
import os
import sys

import numpy as np
import pytest
from numba import njit

from fastnum._workers import new_counters, run_parallel, thread_count
from fastnum.kernels.tasks import ABORT, finish, take, wait_for

TASKS, DONE, TASKS2, DONE2 = 1, 2, 3, 4


@njit(nogil=True)
def _two_phases(counters, n_tasks, first, second, taken_by, marker):
    """Phase 1 writes ``first[task]``; phase 2 reads every entry of ``first`` (all finished by then)."""
    task = take(counters, TASKS)
    while task < n_tasks:
        total = 0.0
        for i in range(3000):  # long enough that a second thread joins in
            total += np.sqrt(i + task)
        first[task] = task + 1.0 + (total < 0.0)
        taken_by[task] += marker
        finish(counters, DONE)
        task = take(counters, TASKS)
    wait_for(counters, DONE, n_tasks)
    task = take(counters, TASKS2)
    while task < n_tasks:
        acc = 0.0
        for j in range(n_tasks):
            acc += first[j]
        second[task] = acc
        finish(counters, DONE2)
        task = take(counters, TASKS2)
    wait_for(counters, DONE2, n_tasks)


def _run(n_tasks, n_threads):
    first, second = np.zeros(n_tasks), np.zeros(n_tasks)
    taken_by = np.zeros(n_tasks, dtype=np.int64)
    counters = new_counters()
    run_parallel(_two_phases, (counters, n_tasks, first, second, taken_by, 1), n_threads)
    return first, second, taken_by, counters


@pytest.mark.parametrize("n_threads", [1, 2, 5])
@pytest.mark.parametrize("n_tasks", [0, 1, 3, 64, 1000])
def test_every_task_runs_once_and_the_second_phase_sees_the_first(n_tasks, n_threads):
    first, second, taken_by, counters = _run(n_tasks, n_threads)
    assert (taken_by == 1).all()  # a task taken twice would count twice
    assert np.array_equal(first, np.arange(1.0, n_tasks + 1))
    assert (second == n_tasks * (n_tasks + 1) / 2).all()  # every write of phase 1 visible in phase 2
    assert counters[DONE] == counters[DONE2] == n_tasks and counters[ABORT] == 0


def test_the_thread_count_is_numbas_setting(numba_threads):
    numba_threads(1)
    assert thread_count() == 1
    numba_threads(2)
    assert thread_count() == 2


def test_a_failing_thread_ends_the_call_with_its_error_instead_of_a_hang():
    @njit(nogil=True)
    def fails(counters, n_tasks):
        task = take(counters, TASKS)
        while task < n_tasks:
            if task == 3:
                raise ValueError("a deliberate failure")
            finish(counters, DONE)
            task = take(counters, TASKS)
        wait_for(counters, DONE, n_tasks)

    for n_threads in (1, 2):
        with pytest.raises(ValueError, match="a deliberate failure"):
            run_parallel(fails, (new_counters(), 1000), n_threads)
    first, second, taken_by, _ = _run(10, 2)  # the pool still serves the next call
    assert (taken_by == 1).all()


def _in_forked_child(queue):
    first, second, taken_by, _ = _run(50, 2)
    queue.put(bool((taken_by == 1).all() and (second == 50 * 51 / 2).all()))


@pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_gets_threads_of_its_own():
    _run(20, 2)  # the parent's helper threads exist; a forked child has none of them
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_forked_child, args=(queue,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0 and queue.get(timeout=10)


def test_an_idle_helper_spins_until_the_bell_rings_or_its_rounds_pass():
    import threading
    import time

    from fastnum import _workers

    bell = np.zeros(1, dtype=np.int64)
    assert _workers._spin(bell, 0, 1000) == 0  # unchanged: returns after its rounds
    assert _workers._spin(bell, 5, 10**12) == 0  # already different: returns at once
    ringer = threading.Timer(0.05, lambda: bell.__setitem__(0, 7))
    ringer.start()
    started = time.perf_counter()
    assert _workers._spin(bell, 0, 10**11) == 7  # without the bell this would spin for an hour
    assert time.perf_counter() - started < 30
    ringer.join()
    assert 1 <= _workers._spin_rounds(bell) <= 10_000_000


def test_helpers_take_calls_submitted_while_they_spin_and_after_they_sleep():
    import time

    from fastnum import _workers

    for pause in (0.0, 2 * _workers.SPIN_SECONDS + 0.05):  # spinning, then asleep on the queue
        time.sleep(pause)
        first, second, taken_by, counters = _run(64, 2)
        assert (taken_by == 1).all() and np.array_equal(first, np.arange(1.0, 65))
