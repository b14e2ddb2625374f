"""Backpropagation (the book's ``TwoLayerNet.gradient``), compiled.

From the cached forward pass: ``dy = (softmax(a2) - onehot(t)) / B``,
``dW2 = z1.T @ dy``, ``db2 = sum(dy)``, ``dz1 = (dy @ W2.T) * act'(a1)``,
``dW1 = x.T @ dz1``, ``db1 = sum(dz1)``, with ``act'`` the book's
``sigmoid_grad`` (``(1 - z) * z``) or the ReLU layer's mask (1 where a1 > 0).
Parallel loops own disjoint output rows and sum over samples in order, so the
result does not depend on the thread count.
"""

from numba import njit, prange

from .._config import NJIT_OPTIONS, PARALLEL_NJIT_OPTIONS
from ._forward import softmax_kernel


@njit(**NJIT_OPTIONS)
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


@njit(**PARALLEL_NJIT_OPTIONS)
def backprop_kernel(x, t, W2, relu, a1, z1, a2, dy, dz1, grad_W1, grad_b1, grad_W2, grad_b2):
    """Gradients of the book's loss into ``grad_*``; ``dy`` (B, O) and ``dz1`` (B, H) are scratch."""
    n_samples, n_in = x.shape
    n_hidden, n_out = W2.shape
    softmax_kernel(a2, dy)
    for b in prange(n_samples):
        for k in range(n_out):
            dy[b, k] = (dy[b, k] - (1.0 if k == t[b] else 0.0)) / n_samples
        for j in range(n_hidden):
            total = 0.0
            for k in range(n_out):
                total += dy[b, k] * W2[j, k]
            if relu:
                dz1[b, j] = total if a1[b, j] > 0.0 else 0.0
            else:
                dz1[b, j] = total * ((1.0 - z1[b, j]) * z1[b, j])
    for j in prange(n_hidden):
        bias = 0.0
        for b in range(n_samples):
            bias += dz1[b, j]
        grad_b1[j] = bias
        for k in range(n_out):
            total = 0.0
            for b in range(n_samples):
                total += z1[b, j] * dy[b, k]
            grad_W2[j, k] = total
    for k in range(n_out):
        total = 0.0
        for b in range(n_samples):
            total += dy[b, k]
        grad_b2[k] = total
    n_chunks = (n_in + ROWS_PER_CHUNK - 1) // ROWS_PER_CHUNK
    for chunk in prange(n_chunks):
        _input_weight_rows(x, dz1, chunk * ROWS_PER_CHUNK, min(n_in, (chunk + 1) * ROWS_PER_CHUNK), grad_W1)
