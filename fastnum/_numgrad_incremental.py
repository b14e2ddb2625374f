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
the softmax with the new row maximum subtracted, ``-log(y_t + 1e-7)``. The
per-sample difference of the two perturbed losses is taken as one log,
``-log((y_t(+h) + 1e-7) / (y_t(-h) + 1e-7))``, which is the same real number as
``l_b(p+h) - l_b(p-h)``.

Each parallel iteration owns one hidden unit j (one column of the result and
one slice of scratch), and sums over samples in a fixed order, so the result
is bitwise the same for any number of threads.
"""

import math

import numpy as np
from numba import njit, prange

from ._config import LOG_EPS, NJIT_OPTIONS, PARALLEL_NJIT_OPTIONS
from ._exp import exp
from ._forward import hidden_activation

N_SCRATCH_ROWS = 9
"""Vectors of length max-distinct-values each hidden unit needs in the hidden-layer kernel."""


@njit(**PARALLEL_NJIT_OPTIONS)
def distinct_pixel_values_kernel(x, values, n_values, nonzero_idx, n_nonzero, codes, one_code):
    """Per sample: its nonzero pixels and their distinct values.

    Fills, for every sample b,
    ``nonzero_idx[b, :n_nonzero[b]]`` the indices of its nonzero pixels,
    ``values[b, :n_values[b]]`` the sorted distinct nonzero values plus 1.0
    (the bias "pixel"), ``codes[b, p]`` the position in ``values[b]`` of the
    value of nonzero pixel p, and ``one_code[b]`` the position of 1.0.
    """
    n_in = x.shape[1]
    for b in prange(x.shape[0]):
        count = 0
        for i in range(n_in):
            if x[b, i] != 0.0:
                nonzero_idx[b, count] = i
                count += 1
        n_nonzero[b] = count
        row_values = np.empty(count + 1)
        for p in range(count):
            row_values[p] = x[b, nonzero_idx[b, p]]
        row_values[count] = 1.0
        distinct = np.unique(row_values)
        n_values[b] = distinct.size
        values[b, : distinct.size] = distinct
        for p in range(count):
            codes[b, p] = np.searchsorted(distinct, x[b, nonzero_idx[b, p]])
        one_code[b] = np.searchsorted(distinct, 1.0)


@njit(**PARALLEL_NJIT_OPTIONS)
def hidden_layer_kernel(
    t, W2, relu, a1, z1, a2, values, n_values, nonzero_idx, n_nonzero, codes, one_code, h,
    scratch, grad_W1_T, grad_b1,
):
    """Numerical gradient of the loss with respect to W1 and b1.

    Parameters: ``t`` (B,) class indices; ``a1``, ``z1`` (B, H) and ``a2`` (B, O)
    the cached forward pass; the distinct-value tables from
    ``distinct_pixel_values_kernel``; ``scratch`` (H, N_SCRATCH_ROWS, V).
    Writes ``grad_W1_T`` (H, I), the transpose of the W1 gradient (each hidden
    unit owns one contiguous row), and ``grad_b1`` (H,).
    """
    n_samples, n_hidden = a1.shape
    n_out = a2.shape[1]
    to_gradient = 1.0 / n_samples / (2.0 * h)
    for j in prange(n_hidden):
        dz_plus = scratch[j, 0]
        dz_minus = scratch[j, 1]
        max_plus = scratch[j, 2]
        max_minus = scratch[j, 3]
        sum_plus = scratch[j, 4]
        sum_minus = scratch[j, 5]
        target_plus = scratch[j, 6]
        target_minus = scratch[j, 7]
        loss_diff = scratch[j, 8]
        grad_row = grad_W1_T[j]
        grad_row[:] = 0.0
        grad_bias = 0.0
        for b in range(n_samples):
            nv = n_values[b]
            a = a1[b, j]
            z = z1[b, j]
            target = t[b]
            # perturbed hidden activation for every distinct pixel value
            for v in range(nv):
                d = h * values[b, v]
                dz_plus[v] = hidden_activation(a + d, relu) - z
                dz_minus[v] = hidden_activation(a - d, relu) - z
                max_plus[v] = -np.inf
                max_minus[v] = -np.inf
                sum_plus[v] = 0.0
                sum_minus[v] = 0.0
            # perturbed logits a2[b, c] + dz * W2[j, c]: their row maximum ...
            for c in range(n_out):
                base = a2[b, c]
                w = W2[j, c]
                for v in range(nv):
                    logit = base + dz_plus[v] * w
                    max_plus[v] = logit if logit > max_plus[v] else max_plus[v]
                    logit = base + dz_minus[v] * w
                    max_minus[v] = logit if logit > max_minus[v] else max_minus[v]
            # ... and the softmax denominator and target numerator
            for c in range(n_out):
                base = a2[b, c]
                w = W2[j, c]
                is_target = c == target
                for v in range(nv):
                    e_plus = exp(base + dz_plus[v] * w - max_plus[v])
                    e_minus = exp(base + dz_minus[v] * w - max_minus[v])
                    sum_plus[v] += e_plus
                    sum_minus[v] += e_minus
                    if is_target:
                        target_plus[v] = e_plus
                        target_minus[v] = e_minus
            for v in range(nv):
                loss_diff[v] = -math.log(
                    (target_plus[v] / sum_plus[v] + LOG_EPS) / (target_minus[v] / sum_minus[v] + LOG_EPS)
                )
            for p in range(n_nonzero[b]):
                grad_row[nonzero_idx[b, p]] += loss_diff[codes[b, p]]
            grad_bias += loss_diff[one_code[b]]
        for i in range(grad_row.shape[0]):
            grad_row[i] *= to_gradient
        grad_b1[j] = grad_bias * to_gradient


@njit(**NJIT_OPTIONS)
def output_softmax_cache_kernel(a2, row_max, max_without, exps, sum_without):
    """Per sample b and class k: the row maximum, the maximum over the other
    classes, ``exp(a2[b, c] - row_max)`` and the sum of those over c != k."""
    n_samples, n_out = a2.shape
    for b in range(n_samples):
        row_max[b] = a2[b, 0]
        for c in range(1, n_out):
            if a2[b, c] > row_max[b]:
                row_max[b] = a2[b, c]
        for c in range(n_out):
            exps[b, c] = exp(a2[b, c] - row_max[b])
        for k in range(n_out):
            best = -np.inf
            total = 0.0
            for c in range(n_out):
                if c != k:
                    total += exps[b, c]
                    if a2[b, c] > best:
                        best = a2[b, c]
            max_without[b, k] = best
            sum_without[b, k] = total


@njit(inline="always", **NJIT_OPTIONS)
def _target_prob_with_logit_moved(a2_row, target, k, delta, row_max, max_without_k, exps_row, sum_without_k):
    """softmax(a2_row with a2_row[k] += delta)[target], the row max subtracted."""
    moved = a2_row[k] + delta
    new_max = moved if moved > max_without_k else max_without_k
    if new_max == row_max:
        # the maximum is unchanged, so the other classes' exps are the cached ones
        e_moved = exp(moved - row_max)
        total = sum_without_k + e_moved
        numerator = e_moved if target == k else exps_row[target]
        return numerator / total
    total = 0.0
    numerator = 0.0
    for c in range(a2_row.shape[0]):
        e = exp((moved if c == k else a2_row[c]) - new_max)
        total += e
        if c == target:
            numerator = e
    return numerator / total


@njit(**PARALLEL_NJIT_OPTIONS)
def output_layer_kernel(t, z1, a2, h, row_max, max_without, exps, sum_without, grad_W2, grad_b2):
    """Numerical gradient of the loss with respect to W2 and b2.

    Perturbing ``W2[j, k]`` moves logit k of sample b by ``+-h * z1[b, j]``;
    perturbing ``b2[k]`` moves it by ``+-h``. Parallel over j (the extra
    iteration j == H is the bias).
    """
    n_samples, n_hidden = z1.shape
    n_out = a2.shape[1]
    to_gradient = 1.0 / n_samples / (2.0 * h)
    for j in prange(n_hidden + 1):
        for k in range(n_out):
            total = 0.0
            for b in range(n_samples):
                d = h if j == n_hidden else h * z1[b, j]
                y_plus = _target_prob_with_logit_moved(
                    a2[b], t[b], k, d, row_max[b], max_without[b, k], exps[b], sum_without[b, k]
                )
                y_minus = _target_prob_with_logit_moved(
                    a2[b], t[b], k, -d, row_max[b], max_without[b, k], exps[b], sum_without[b, k]
                )
                total += -math.log((y_plus + LOG_EPS) / (y_minus + LOG_EPS))
            if j == n_hidden:
                grad_b2[k] = total * to_gradient
            else:
                grad_W2[j, k] = total * to_gradient
