"""The incremental numerical gradient: the book's central differences, evaluated
without recomputing what one perturbation cannot change.

For every parameter p the gradient entry is ``(L(p+h) - L(p-h)) / (2h)`` with L
the book's mean loss. L is a sum over samples, so that difference is the sum
over samples of ``l_b(p+h) - l_b(p-h)``; samples whose loss cannot move add
exactly nothing and are skipped. What moves, per kind of parameter:

* ``W1[i, j]`` moves only hidden unit j of the samples whose pixel ``x[b, i]``
  is nonzero, by ``+-h * x[b, i]``. The perturbed loss of sample b therefore
  depends on (b, j, x[b, i]) only: it is computed once for every *distinct*
  pixel value of the sample (about 67 per MNIST image instead of 150 nonzero
  pixels) and then added to every pixel holding that value.
* ``b1[j]`` is the same with a "pixel" of value 1 in every sample.
* ``W2[j, k]`` moves only logit k, by ``+-h * z1[b, j]``; ``b2[k]`` by ``+-h``.

From the cached forward pass each perturbed loss is evaluated by the book's
formulas on the perturbed values: the new hidden activation, the new logits,
their softmax, ``-log(y_t + 1e-7)``. The softmax is shifted by the new row
maximum (the general path) or, where a bound proves every logit step tiny, by
the old one, whose exponentials are cached (``_sample_loss_differences_small_steps``);
the softmax does not depend on the shift, so both are the same real number;
on that path the ten softmax terms of a perturbed sample collapse into one
polynomial in the step, through moments precomputed per (sample, unit).
Each W2/b2 perturbation moves one logit, and its softmax reuses the cached
terms of the other classes, rescaled when the maximum moves. The
per-sample difference of the two perturbed losses is taken as one log,
``-log((y_t(+h) + 1e-7) / (y_t(-h) + 1e-7))``, which is the same real number as
``l_b(p+h) - l_b(p-h)``.

A gradient is two calls of workers run on every thread
(``fastnum._workers.run_parallel``): ``_forward.gradient_caches_worker``
(per sample: the forward pass, the distinct values, the caches) and
``perturb_worker`` (per block of four hidden units and per row of W2: the
perturbed losses; tasks
taken by whichever thread is free, ``kernels.tasks``). Each task of the
second owns its entries of the result and its scratch, and sums over samples
in a fixed order, so the result is bitwise the same for any number of threads
and any schedule. ``perturb_worker`` without the general paths
(``general_paths=None``) is what every MNIST step runs (the facade checks
with ``all_steps_small`` that no step needs them); with them
(``general_paths=True``) it is compiled when a batch first needs it.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from .._config import NJIT_OPTIONS, compiled_helper
from .._workers import parallel_worker
from ..kernels.distinct_values import _distinct_values_into
from ..kernels.perturbed_losses import (
    N_SCRATCH_ROWS,
    TINY_STEP_GUARD,
    SampleSteps,
    UnitState,
    _output_row_gradient,
    _output_row_gradient_by,
    _sample_loss_differences,
    _sample_loss_differences_small_steps,
)
from ..kernels.tasks import finish, take, wait_for
from ..kernels.vecmath import SMALL_EXP_GUARD, add_rows4

PREPARE_TASKS, PREPARE_DONE, PERTURB_TASKS, PERTURB_DONE = 1, 2, 3, 4
"""Slots of a call's counters (``kernels.tasks``): next task and tasks done of each worker."""


UNITS_PER_BLOCK = 4
"""Hidden units per task of ``perturb_worker``: their loss differences are added to the W1
gradient together, one 4-wide vector add per nonzero pixel instead of four scalar ones."""


def n_unit_blocks(n_hidden):
    """Tasks of ``UNITS_PER_BLOCK`` hidden units (the last one may hold fewer)."""
    return -(-n_hidden // UNITS_PER_BLOCK)


class IncrementalScratch(NamedTuple):
    """The scratch of ``perturb_worker``'s tasks (each task writes only its own rows)."""

    hidden: np.ndarray
    """(H, N_SCRATCH_ROWS, V) per hidden unit: the general path's rows, its loss differences last."""
    block_losses: np.ndarray
    """(blocks, V, 4) per block of units: each unit's differences per distinct value, in its lane."""
    block_grads: np.ndarray
    """(blocks, n_in + 1, 4) per block: the block's W1 columns and b1 entries being summed."""
    output: np.ndarray
    """(H + 1, B) per row of W2 (the last one b2's): one value per sample."""


@compiled_helper
def _hidden_block_gradient(block, t, W2, relu, h, fw, dv, task_scratch, grads, general_paths):
    """Columns ``4 block ... 4 block + 3`` of the W1 gradient and their b1 entries.

    Per sample, each unit's loss differences (one per distinct value) go into
    its lane of ``block_losses`` (V, 4); then every nonzero pixel adds its
    value's four differences to its row of ``block_grads`` (n_in + 1, 4) at
    once, and the bias "pixel" to the last row. Every entry still sums its
    samples' differences in sample order, exactly as one unit at a time
    would. Lanes past the last unit hold zeros. ``general_paths=None``: the
    caller has checked that every step is small, and numba leaves the general
    path out of the compiled code (the branch on ``None`` is decided by
    type); a pair that needed it would come out NaN, never a wrong number.
    """
    hidden_scratch = task_scratch.hidden  # an ``IncrementalScratch``: the unit rows, then this block's own
    block_losses, block_grads = task_scratch.block_losses[block], task_scratch.block_grads[block]
    n_samples = fw.a1.shape[0]
    n_hidden = fw.a1.shape[1]
    to_gradient = 1.0 / n_samples / (2.0 * h)
    first = block * UNITS_PER_BLOCK
    n_units = min(UNITS_PER_BLOCK, n_hidden - first)
    n_in = block_grads.shape[0] - 1
    block_losses[:, :] = 0.0
    block_grads[:, :] = 0.0
    # |sigmoid(a + d) - sigmoid(a)| <= |d| / 4; |relu(a + d) - relu(a)| <= |d|
    slope = 1.0 if relu else 0.25
    for b in range(n_samples):
        n_values = dv.n_values[b]
        step_max = h * dv.max_abs_value[b]
        steps = SampleSteps(dv.values[b], n_values, dv.expm1_minus_step[b], dv.expm1_plus_step[b],
                            step_max <= TINY_STEP_GUARD)
        for u in range(n_units):
            j = first + u
            scratch = hidden_scratch[j]
            loss_diff = scratch[N_SCRATCH_ROWS - 1]
            max_abs_w = 0.0
            for c in range(W2.shape[1]):
                max_abs_w = max(max_abs_w, abs(W2[j, c]))
            unit = UnitState(fw.a1[b, j], fw.z1[b, j], fw.one_minus_z1[b, j])
            logit_step_bound = slope * step_max * max_abs_w
            if logit_step_bound <= SMALL_EXP_GUARD:
                _sample_loss_differences_small_steps(steps, unit, fw.exps[b], t[b], W2[j], h, relu, logit_step_bound,
                                                     loss_diff)
            elif general_paths is None:
                loss_diff[:n_values] = np.nan
            else:
                _sample_loss_differences(steps, unit, fw.a2[b], t[b], W2[j], h, relu, scratch, loss_diff)
            for v in range(n_values):
                block_losses[v, u] = loss_diff[v]
        # every nonzero pixel of the sample adds the differences of its value, four units at once
        codes = dv.codes[b]
        nonzero_idx = dv.nonzero_idx[b]
        for p in range(dv.n_nonzero[b]):
            add_rows4(block_grads, nonzero_idx[p], block_losses, codes[p])
        add_rows4(block_grads, n_in, block_losses, dv.one_code[b])
    grad_W1 = grads.W1
    for i in range(n_in):
        for u in range(n_units):
            grad_W1[i, first + u] = block_grads[i, u] * to_gradient
    for u in range(n_units):
        grads.b1[first + u] = block_grads[n_in, u] * to_gradient


@parallel_worker
@njit(**NJIT_OPTIONS)
def perturb_worker(counters, t, W2, relu, h, fw, dv, scratch, grads, general_paths):
    """The whole numerical gradient from the caches, on every thread.

    The tasks: blocks of ``UNITS_PER_BLOCK`` hidden units (their W1 columns
    and b1 entries), then the rows of W2 (the last one b2), heavy ones first,
    taken one at a time by whichever thread is free (``kernels.tasks``).
    Each task writes only its own entries and sums over samples in a fixed
    order: bitwise the same for any number of threads and any schedule.
    ``scratch`` is an ``IncrementalScratch``.

    ``general_paths=None``: the caller has checked (``all_steps_small``) that
    every hidden unit's logit steps and every output row's steps satisfy the
    small-step bounds, and numba leaves the general paths out of the
    compiled code (most of its compile time); ``True``: with them, compiled
    only when a batch first needs it.
    """
    n_hidden = fw.a1.shape[1]
    n_blocks = scratch.block_losses.shape[0]
    n_tasks = n_blocks + n_hidden + 1
    task = take(counters, PERTURB_TASKS)
    while task < n_tasks:
        if task < n_blocks:
            _hidden_block_gradient(task, t, W2, relu, h, fw, dv, scratch, grads, general_paths)
        else:
            row = task - n_blocks
            _output_row_gradient_by(row, t, h, fw, scratch.output[row], grads, general_paths)
        finish(counters, PERTURB_DONE)
        task = take(counters, PERTURB_TASKS)
    wait_for(counters, PERTURB_DONE, n_tasks)


def all_steps_small(relu, h, max_abs_value, W2, z1):
    """Whether every perturbation's steps pass the small-step bounds (``perturb_worker`` without its
    general paths assumes them).

    The same products the kernels test per (sample, unit) and per output
    row, taken at their maxima: rounded multiplication by non-negative
    numbers is monotone, so the largest of the kernels' products is exactly
    this one.
    """
    slope = 1.0 if relu else 0.25
    hidden = slope * (h * float(max_abs_value.max())) * float(np.abs(W2).max()) <= SMALL_EXP_GUARD
    # a sigmoid is at most 1 (1 + exp(-a) >= 1, and rounding keeps the quotient <= 1), so
    # max(|z1|, 1) is 1 without reading z1; ReLU activations are unbounded and are read
    largest_z1 = float(np.abs(z1).max()) if relu else 1.0
    output = h * max(largest_z1, 1.0) <= SMALL_EXP_GUARD
    return bool(hidden and output)


@parallel_worker
@njit(**NJIT_OPTIONS)
def distinct_pixel_values_worker(counters, x, h, dv):
    """The distinct values of every sample alone (``prepare_worker``'s share of them; for profiling)."""
    b = take(counters, PREPARE_TASKS)
    while b < x.shape[0]:
        _distinct_values_into(b, x[b], h, dv)
        finish(counters, PREPARE_DONE)
        b = take(counters, PREPARE_TASKS)
    wait_for(counters, PREPARE_DONE, x.shape[0])


@parallel_worker
@njit(**NJIT_OPTIONS)
def hidden_layer_worker(counters, t, W2, relu, h, fw, dv, scratch, grads):
    """The W1 and b1 gradient alone (``perturb_worker``'s hidden-unit tasks; for profiling)."""
    n_blocks = scratch.block_losses.shape[0]
    block = take(counters, PERTURB_TASKS)
    while block < n_blocks:
        _hidden_block_gradient(block, t, W2, relu, h, fw, dv, scratch, grads, True)
        finish(counters, PERTURB_DONE)
        block = take(counters, PERTURB_TASKS)
    wait_for(counters, PERTURB_DONE, n_blocks)


@parallel_worker
@njit(**NJIT_OPTIONS)
def output_layer_worker(counters, t, h, fw, output_scratch, grads):
    """The W2 and b2 gradient alone (``perturb_worker``'s output-row tasks; for profiling)."""
    n_rows = fw.z1_T.shape[0]
    j = take(counters, PERTURB_TASKS)
    while j < n_rows:
        _output_row_gradient(j, t, h, fw, output_scratch[j], grads)
        finish(counters, PERTURB_DONE)
        j = take(counters, PERTURB_TASKS)
    wait_for(counters, PERTURB_DONE, n_rows)
