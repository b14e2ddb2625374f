"""Per-value kernels every network's forward pass shares: the hidden activations and the list of
an input row's nonzero entries (zero inputs add nothing to a product, and are skipped)."""

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
