"""The book's numerical gradient, compiled: every perturbation re-evaluates the
whole forward pass and loss.

For each parameter, in the book's order: remember its value, set ``p + h``,
evaluate the loss, set ``p - h``, evaluate the loss, restore it, store
``(L(p+h) - L(p-h)) / (2h)``. The parameters are laid out as one flat vector
(W1, b1, W2, b2, each row-major) and cut into a fixed number of slices; each
parallel iteration owns one slice and its own copy of the parameters and of
the forward buffers, allocated once per call. Every entry is computed on its
own, so the result does not depend on the number of threads.
"""

import numpy as np
from numba import njit, prange

from .._config import PARALLEL_NJIT_OPTIONS
from ._forward import batch_loss, nonzero_pixels

N_SLICES = 64
"""Parameter slices of the parallel loop (fixed, so independent of the thread count)."""


@njit(**PARALLEL_NJIT_OPTIONS)
def full_kernel(x, t, n_in, n_hidden, n_out, relu, h, param_copies, a1, z1, a2, grad):
    """Numerical gradient of the flat parameter vector ``param_copies[s]``.

    ``param_copies`` (N_SLICES, P) holds one copy of the flat parameters per
    slice; ``a1``, ``z1`` (N_SLICES, H) and ``a2`` (N_SLICES, O) are the
    per-slice forward rows. Writes ``grad`` (P,).
    """
    n_params = param_copies.shape[1]
    n_slices = param_copies.shape[0]
    end_W1 = n_in * n_hidden
    end_b1 = end_W1 + n_hidden
    end_W2 = end_b1 + n_hidden * n_out
    per_slice = (n_params + n_slices - 1) // n_slices
    # the nonzero pixels of every sample, found once: skipping zero pixels changes no value
    nonzero_idx = np.empty(x.shape, dtype=np.int64)
    n_nonzero = np.empty(x.shape[0], dtype=np.int64)
    for b in range(x.shape[0]):
        n_nonzero[b] = nonzero_pixels(x[b], nonzero_idx[b])
    for s in prange(n_slices):
        theta = param_copies[s]
        W1 = theta[:end_W1].reshape((n_in, n_hidden))
        b1 = theta[end_W1:end_b1]
        W2 = theta[end_b1:end_W2].reshape((n_hidden, n_out))
        b2 = theta[end_W2:]
        for p in range(s * per_slice, min(n_params, (s + 1) * per_slice)):
            original = theta[p]
            theta[p] = original + h
            loss_plus = batch_loss(x, t, nonzero_idx, n_nonzero, W1, b1, W2, b2, relu, a1[s], z1[s], a2[s])
            theta[p] = original - h
            loss_minus = batch_loss(x, t, nonzero_idx, n_nonzero, W1, b1, W2, b2, relu, a1[s], z1[s], a2[s])
            theta[p] = original
            grad[p] = (loss_plus - loss_minus) / (2.0 * h)
