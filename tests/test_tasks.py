"""Dynamic scheduling (``fastnum.kernels.tasks``): every task runs exactly once, whatever the workers."""

import numba
import numpy as np
import pytest
from numba import njit, prange

from fastnum.kernels.tasks import next_task


@njit(parallel=True)
def _run_tasks(n_tasks, n_workers, taken_by, counter):
    for worker in prange(n_workers):
        task = next_task(counter)
        while task < n_tasks:
            total = 0.0
            for i in range(2000):  # long enough that a second thread joins in
                total += np.sqrt(i + task)
            taken_by[task] += worker + 1 + (total < 0.0)  # a task taken twice would add twice
            task = next_task(counter)


def _run(n_tasks, n_workers):
    taken_by = np.zeros(n_tasks, dtype=np.int64)
    counter = np.zeros(1, dtype=np.int64)
    _run_tasks(n_tasks, n_workers, taken_by, counter)
    return taken_by, counter[0]


@pytest.mark.parametrize("n_workers", [1, 2, 5, 16])
@pytest.mark.parametrize("n_tasks", [0, 1, 3, 64, 1000])
def test_every_task_runs_exactly_once(n_tasks, n_workers):
    taken_by, final = _run(n_tasks, n_workers)
    assert ((taken_by >= 1) & (taken_by <= n_workers)).all()
    # each worker takes one number past the last task before it stops
    assert final == n_tasks + n_workers


def test_one_thread_runs_every_worker_in_turn():
    """On one thread the first worker takes every task and the rest find none: nothing waits."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        taken_by, final = _run(50, 4)
        assert (taken_by == 1).all() and final == 54
    finally:
        numba.set_num_threads(before)
