"""What every network's forward pass shares: the hidden activations, the list of an input row's
nonzero entries, and the affine map of a row over that list (zero inputs add nothing to a
product, and are skipped)."""

from numba import njit

from .._config import NJIT_OPTIONS
from .vecmath import exp

ACTIVATIONS = ("sigmoid", "relu")
"""Hidden-layer activations by name; the kernels take ``relu`` as a bool (False: sigmoid)."""


@njit(inline="always", **NJIT_OPTIONS)
def hidden_activation(a, relu):
    """sigmoid(a) = 1 / (1 + exp(-a)), or max(a, 0) when ``relu``."""
    if relu:
        return a if a > 0.0 else 0.0
    return 1.0 / (1.0 + exp(-a))


@njit(inline="always", **NJIT_OPTIONS)
def nonzero_pixels(x_row, nonzero_idx):
    """Indices of the nonzero entries of ``x_row`` into ``nonzero_idx``; returns their count.

    Branch-free (every index is written, the count advances only past
    nonzeros): MNIST's zero and nonzero pixels alternate unpredictably, and a
    branch per pixel costs more in mispredictions than the products skipped.
    """
    count = 0
    for i in range(x_row.shape[0]):
        nonzero_idx[count] = i
        count += x_row[i] != 0.0
    return count


@njit(**NJIT_OPTIONS)
def affine_row_sparse(in_row, nonzero_idx, n_nonzero, W, bias_row, out):
    """``out = in_row @ W + bias_row`` over the listed nonzero inputs, in input order."""
    n_out = out.shape[0]
    for j in range(n_out):
        out[j] = 0.0
    p = 0
    # four inputs per pass over the row: each out[j] still adds its products in input order
    # (the same sum, bit for bit), but is loaded and stored a quarter as often
    while p + 4 <= n_nonzero:
        i0 = nonzero_idx[p]
        i1 = nonzero_idx[p + 1]
        i2 = nonzero_idx[p + 2]
        i3 = nonzero_idx[p + 3]
        x0 = in_row[i0]
        x1 = in_row[i1]
        x2 = in_row[i2]
        x3 = in_row[i3]
        w0 = W[i0]
        w1 = W[i1]
        w2 = W[i2]
        w3 = W[i3]
        for j in range(n_out):
            acc = out[j]
            acc += x0 * w0[j]
            acc += x1 * w1[j]
            acc += x2 * w2[j]
            acc += x3 * w3[j]
            out[j] = acc
        p += 4
    while p < n_nonzero:
        i = nonzero_idx[p]
        xv = in_row[i]
        for j in range(n_out):
            out[j] += xv * W[i, j]
        p += 1
    for j in range(n_out):
        out[j] += bias_row[j]
