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
from numba import njit, prange

from .._config import LOG_EPS, NJIT_OPTIONS, PARALLEL_NJIT_OPTIONS
from ..kernels.activations import affine_row_sparse, hidden_activation, nonzero_pixels
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


@njit(inline="always", **NJIT_OPTIONS)
def batch_loss(x, t, nonzero_idx, n_nonzero, W1, b1, W2, b2, relu, a1_row, z1_row, a2_row):
    """The book's mean loss over the batch, one sample at a time in the given rows.

    ``nonzero_idx[b, :n_nonzero[b]]`` are sample b's nonzero pixels (found once
    per batch: skipping zeros changes no value).
    """
    total = 0.0
    for b in range(x.shape[0]):
        forward_row_sparse(x[b], nonzero_idx[b], n_nonzero[b], W1, b1, W2, b2, relu, a1_row, z1_row, a2_row)
        total += sample_loss(a2_row, t[b])
    return total / x.shape[0]


@njit(**PARALLEL_NJIT_OPTIONS)
def forward_kernel(x, W1, b1, W2, b2, relu, a1, z1, a2):
    """Forward pass of every sample, parallel over samples.

    Fills ``a1`` and ``z1`` (B, H) and the logits ``a2`` (B, O).
    """
    for b in prange(x.shape[0]):
        nonzero_idx = np.empty(x.shape[1], dtype=np.int64)
        forward_row(x, b, W1, b1, W2, b2, relu, a1[b], z1[b], a2[b], nonzero_idx)


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


ROWS_PER_CHUNK = 256
"""Samples per parallel chunk in ``predict_labels_kernel`` (one scratch row set each)."""


@njit(**PARALLEL_NJIT_OPTIONS)
def predict_labels_kernel(x, W1, b1, W2, b2, relu, labels):
    """The book's ``argmax(predict(x), axis=1)`` for every sample.

    The argmax is taken over the softmax probabilities, not the logits, so that
    two logits whose probabilities round to the same value tie exactly as they
    do in the book (first index wins). Parallel over chunks of samples, each
    with its own scratch rows, so nothing of size (N, H) is allocated.
    """
    n_samples = x.shape[0]
    n_hidden = W1.shape[1]
    n_out = W2.shape[1]
    n_chunks = (n_samples + ROWS_PER_CHUNK - 1) // ROWS_PER_CHUNK
    for chunk in prange(n_chunks):
        a1_row = np.empty(n_hidden)
        z1_row = np.empty(n_hidden)
        a2_row = np.empty((1, n_out))
        y_row = np.empty((1, n_out))
        nonzero_idx = np.empty(x.shape[1], dtype=np.int64)
        stop = min(n_samples, (chunk + 1) * ROWS_PER_CHUNK)
        for b in range(chunk * ROWS_PER_CHUNK, stop):
            forward_row(x, b, W1, b1, W2, b2, relu, a1_row, z1_row, a2_row[0], nonzero_idx)
            softmax_kernel(a2_row, y_row)
            best = 0
            for k in range(1, n_out):
                if y_row[0, k] > y_row[0, best]:
                    best = k
            labels[b] = best
