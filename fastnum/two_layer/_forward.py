"""Forward-pass kernels: hidden layer, output logits, softmax and the book's loss.

Every kernel here computes exactly what the book's ``TwoLayerNet.predict``
and ``cross_entropy_error`` compute, in float64:

    a1 = x @ W1 + b1,  z1 = sigmoid(a1) (or relu),  a2 = z1 @ W2 + b2,
    y = softmax(a2) with the row max subtracted,
    loss = -sum_b log(y[b, t_b] + 1e-7) / B.

The product ``x @ W1`` skips zero pixels: ``0 * w`` adds nothing to a sum,
and about 80% of MNIST pixels are zero. The nonzero pixels of a sample are
listed first, without branches (``nonzero_pixels``), and the product runs
over that list.
"""

import math

import numpy as np
from numba import njit

from .._config import LOG_EPS, NJIT_OPTIONS
from .._workers import new_counters, parallel_worker, run_parallel
from ..kernels.activations import affine_row_sparse, hidden_activation, nonzero_pixels
from ..kernels.tasks import finish, take, wait_for
from ..kernels.vecmath import exp


@njit(**NJIT_OPTIONS)
def forward_row_sparse(x_row, nonzero_idx, n_nonzero, W1, b1, W2, b2, relu, a1_row, z1_row, a2_row):
    """Forward pass of one sample whose nonzero pixels are ``nonzero_idx[:n_nonzero]``."""
    n_hidden = W1.shape[1]
    n_out = W2.shape[1]
    affine_row_sparse(x_row, nonzero_idx, n_nonzero, W1, b1, a1_row)
    for j in range(n_hidden):
        z1_row[j] = hidden_activation(a1_row[j], relu)
    for k in range(n_out):
        a2_row[k] = 0.0
    for j in range(n_hidden):
        zj = z1_row[j]
        for k in range(n_out):
            a2_row[k] += zj * W2[j, k]
    for k in range(n_out):
        a2_row[k] += b2[k]


@njit(inline="always", **NJIT_OPTIONS)
def forward_row(x, b, W1, b1, W2, b2, relu, a1_row, z1_row, a2_row, nonzero_idx):
    """Forward pass of sample ``b`` into the given row buffers (``nonzero_idx``: scratch of n_in)."""
    n_nonzero = nonzero_pixels(x[b], nonzero_idx)
    forward_row_sparse(x[b], nonzero_idx, n_nonzero, W1, b1, W2, b2, relu, a1_row, z1_row, a2_row)


@njit(inline="always", **NJIT_OPTIONS)
def sample_loss(a2_row, target):
    """-log(softmax(a2_row)[target] + 1e-7), the book's per-sample loss."""
    n_out = a2_row.shape[0]
    row_max = a2_row[0]
    for k in range(1, n_out):
        if a2_row[k] > row_max:
            row_max = a2_row[k]
    total = 0.0
    for k in range(n_out):
        total += exp(a2_row[k] - row_max)
    return -math.log(exp(a2_row[target] - row_max) / total + LOG_EPS)


SAMPLES_PER_TASK = 4
"""Samples per task of ``forward_worker`` (one scratch list of pixels each)."""

TASKS, DONE = 1, 2
"""``forward_worker``'s slots of the call's counters (``kernels.tasks``)."""


@parallel_worker
@njit(**NJIT_OPTIONS)
def forward_worker(counters, x, W1, b1, W2, b2, relu, a1, z1, a2):
    """Forward pass of every sample, ``SAMPLES_PER_TASK`` samples a task, on every thread
    (``fastnum._workers.run_parallel``).

    Fills ``a1`` and ``z1`` (B, H) and the logits ``a2`` (B, O).
    """
    n_samples = x.shape[0]
    n_tasks = (n_samples + SAMPLES_PER_TASK - 1) // SAMPLES_PER_TASK
    nonzero_idx = np.empty(x.shape[1], dtype=np.int64)
    task = take(counters, TASKS)
    while task < n_tasks:
        for b in range(task * SAMPLES_PER_TASK, min(n_samples, (task + 1) * SAMPLES_PER_TASK)):
            forward_row(x, b, W1, b1, W2, b2, relu, a1[b], z1[b], a2[b], nonzero_idx)
        finish(counters, DONE)
        task = take(counters, TASKS)
    wait_for(counters, DONE, n_tasks)


@njit(**NJIT_OPTIONS)
def softmax_kernel(a2, y):
    """Row-wise softmax of the logits ``a2`` into ``y`` (row max subtracted)."""
    for b in range(a2.shape[0]):
        row_max = a2[b, 0]
        for k in range(1, a2.shape[1]):
            if a2[b, k] > row_max:
                row_max = a2[b, k]
        total = 0.0
        for k in range(a2.shape[1]):
            y[b, k] = exp(a2[b, k] - row_max)
            total += y[b, k]
        for k in range(a2.shape[1]):
            y[b, k] = y[b, k] / total


@njit(**NJIT_OPTIONS)
def mean_loss_kernel(a2, t):
    """The book's ``cross_entropy_error(softmax(a2), t)`` for class indices ``t``."""
    total = 0.0
    for b in range(a2.shape[0]):
        total += sample_loss(a2[b], t[b])
    return total / a2.shape[0]


EVAL_CHUNK_ROWS = 4096
"""Samples per forward pass in ``predicted_labels``: its buffers stay a few MB for any data set."""


def predicted_labels(x, W1, b1, W2, b2, relu):
    """The book's ``argmax(predict(x), axis=1)`` for every sample of ``x``.

    Runs ``forward_worker`` (on every thread) and ``softmax_kernel`` on
    chunks of ``EVAL_CHUNK_ROWS`` samples, so nothing of size (N, H) is
    allocated for a whole data set. The argmax is numpy's, over the softmax
    probabilities, not the logits: two logits whose probabilities round to
    the same value tie exactly as they do in the book (first index wins).
    Only the kernels a training step already uses are needed (no compiling
    of a kernel of its own).
    """
    n_samples = x.shape[0]
    rows = min(n_samples, EVAL_CHUNK_ROWS)
    a1 = np.empty((rows, W1.shape[1]))
    z1 = np.empty((rows, W1.shape[1]))
    a2 = np.empty((rows, W2.shape[1]))
    y = np.empty((rows, W2.shape[1]))
    labels = np.empty(n_samples, dtype=np.int64)
    for start in range(0, n_samples, rows):
        stop = min(n_samples, start + rows)
        m = stop - start
        run_parallel(forward_worker, (new_counters(), x[start:stop], W1, b1, W2, b2, relu, a1[:m], z1[:m], a2[:m]))
        softmax_kernel(a2[:m], y[:m])
        labels[start:stop] = np.argmax(y[:m], axis=1)
    return labels
