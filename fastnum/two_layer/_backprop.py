"""Backpropagation (the book's ``TwoLayerNet.gradient``), compiled.

From the cached forward pass: ``dy = (softmax(a2) - onehot(t)) / B``,
``dW2 = z1.T @ dy``, ``db2 = sum(dy)``, ``dz1 = (dy @ W2.T) * act'(a1)``,
``dW1 = x.T @ dz1``, ``db1 = sum(dz1)``, with ``act'`` the book's
``sigmoid_grad`` (``(1 - z) * z``) or the ReLU layer's mask (1 where a1 > 0).
Every task owns disjoint output rows and sums over samples in order, so the
result does not depend on the thread count.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from .._config import NJIT_OPTIONS, compiled_helper
from .._workers import parallel_worker
from ..kernels.tasks import finish, take, wait_for
from ..kernels.vecmath import exp


@compiled_helper
def _input_weight_rows(x, dz1, first, stop, grad_W1):
    """Rows ``first:stop`` of ``dW1 = x.T @ dz1``, skipping zero pixels; samples in order.

    A function of its own (not inlined into the parallel loop) so that LLVM
    vectorises the loop over hidden units.
    """
    for i in range(first, stop):
        row = grad_W1[i]
        row[:] = 0.0
        for b in range(x.shape[0]):
            xv = x[b, i]
            if xv != 0.0:
                for j in range(row.shape[0]):
                    row[j] += xv * dz1[b, j]


ROWS_PER_CHUNK = 64

SAMPLE_TASKS, SAMPLES_DONE, GRADIENT_TASKS, GRADIENTS_DONE = 1, 2, 3, 4
"""Slots of a call's counters (``kernels.tasks``)."""


class Deltas(NamedTuple):
    """Backprop's per-sample scratch: ``dy`` (B, O), the loss's gradient at the logits, and ``dz1`` (B, H),
    at the hidden pre-activations."""

    dy: np.ndarray
    dz1: np.ndarray


@compiled_helper
def _sample_deltas(b, t_b, W2, relu, fw, deltas):
    """Sample b's ``dy`` (its softmax minus the one-hot label, over B) and ``dz1``, from the forward pass
    in ``fw`` (``_forward.Activations``)."""
    a1, z1, a2, dy, dz1 = fw.a1, fw.z1, fw.a2, deltas.dy, deltas.dz1
    n_samples = a2.shape[0]
    n_hidden, n_out = W2.shape
    row_max = a2[b, 0]
    for k in range(1, n_out):
        if a2[b, k] > row_max:
            row_max = a2[b, k]
    total = 0.0
    for k in range(n_out):
        dy[b, k] = exp(a2[b, k] - row_max)
        total += dy[b, k]
    for k in range(n_out):
        dy[b, k] = ((dy[b, k] / total) - (1.0 if k == t_b else 0.0)) / n_samples
    for j in range(n_hidden):
        acc = 0.0
        for k in range(n_out):
            acc += dy[b, k] * W2[j, k]
        if relu:
            dz1[b, j] = acc if a1[b, j] > 0.0 else 0.0
        else:
            dz1[b, j] = acc * ((1.0 - z1[b, j]) * z1[b, j])


@compiled_helper
def _hidden_unit_sums(j, z1, dy, dz1, grad_b1, grad_W2):
    """``db1[j]`` and row j of ``dW2``, samples in order."""
    n_samples = dy.shape[0]
    bias = 0.0
    for b in range(n_samples):
        bias += dz1[b, j]
    grad_b1[j] = bias
    for k in range(dy.shape[1]):
        total = 0.0
        for b in range(n_samples):
            total += z1[b, j] * dy[b, k]
        grad_W2[j, k] = total


@parallel_worker
@njit(**NJIT_OPTIONS)
def backprop_worker(counters, x, t, W2, relu, fw, deltas, grads):
    """Gradients of the book's loss into ``grads`` (a ``Gradients``), on every thread, from the forward
    pass in ``fw`` (``_forward.Activations``); ``deltas`` (``Deltas``) is scratch.

    Two phases: per sample its ``dy`` and ``dz1`` rows; then, once every
    sample is done, the hidden units' ``db1``/``dW2`` rows, ``db2``, and
    chunks of ``dW1`` rows as tasks. Every entry sums over samples in order.
    """
    n_samples, n_in = x.shape
    n_hidden, n_out = W2.shape
    z1, dy, dz1 = fw.z1, deltas.dy, deltas.dz1
    b = take(counters, SAMPLE_TASKS)
    while b < n_samples:
        _sample_deltas(b, t[b], W2, relu, fw, deltas)
        finish(counters, SAMPLES_DONE)
        b = take(counters, SAMPLE_TASKS)
    wait_for(counters, SAMPLES_DONE, n_samples)
    n_chunks = (n_in + ROWS_PER_CHUNK - 1) // ROWS_PER_CHUNK
    n_tasks = n_chunks + n_hidden + 1
    task = take(counters, GRADIENT_TASKS)
    while task < n_tasks:
        if task < n_chunks:  # the heaviest first
            _input_weight_rows(x, dz1, task * ROWS_PER_CHUNK, min(n_in, (task + 1) * ROWS_PER_CHUNK), grads.W1)
        elif task < n_chunks + n_hidden:
            _hidden_unit_sums(task - n_chunks, z1, dy, dz1, grads.b1, grads.W2)
        else:
            for k in range(n_out):
                total = 0.0
                for i in range(n_samples):
                    total += dy[i, k]
                grads.b2[k] = total
        finish(counters, GRADIENTS_DONE)
        task = take(counters, GRADIENT_TASKS)
    wait_for(counters, GRADIENTS_DONE, n_tasks)
