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
the softmax does not depend on the shift, so both are the same real number.
Each W2/b2 perturbation moves one logit, and its softmax reuses the cached
terms of the other classes, rescaled when the maximum moves. The
per-sample difference of the two perturbed losses is taken as one log,
``-log((y_t(+h) + 1e-7) / (y_t(-h) + 1e-7))``, which is the same real number as
``l_b(p+h) - l_b(p-h)``.

Each parallel iteration owns one hidden unit j (one column of the result and
one slice of scratch), and sums over samples in a fixed order, so the result
is bitwise the same for any number of threads.
"""

import numpy as np
from numba import njit, prange

from ._config import LOG_EPS, NJIT_OPTIONS, PARALLEL_NJIT_OPTIONS
from ._forward import hidden_activation
from ._vecmath import SMALL_EXP_GUARD, exp, exp_small, log

N_SCRATCH_ROWS = 9
"""Vectors of length max-distinct-values each hidden unit needs in the hidden-layer kernel."""

VALUE_PADDING = 8
"""The distinct values of a sample are padded with zeros to a multiple of this
(8 doubles: one AVX-512 register, two AVX2 ones), so that the vectorised loops
over them never fall into their slow scalar remainder. A zero value is a
perturbation that changes nothing; its loss difference is never used."""


def padded_width(n_in):
    """Columns of the distinct-value tables for ``n_in`` pixels (plus the bias "pixel")."""
    return -(-(n_in + 1) // VALUE_PADDING) * VALUE_PADDING


@njit(**NJIT_OPTIONS)
def _distinct_values_of_sample(
    x_row, h, row_values, nonzero_idx, codes, exp_minus_step, exp_plus_step,
):
    """One sample's share of ``distinct_pixel_values_kernel``; returns
    (n_nonzero, n_values, one_code, max_abs_value)."""
    count = 0
    for i in range(x_row.shape[0]):
        if x_row[i] != 0.0:
            nonzero_idx[count] = i
            row_values[count] = x_row[i]
            count += 1
    row_values[count] = 1.0
    # sort in place and keep each value once
    row_values[: count + 1].sort()
    n_distinct = 1
    for p in range(1, count + 1):
        if row_values[p] != row_values[n_distinct - 1]:
            row_values[n_distinct] = row_values[p]
            n_distinct += 1
    distinct = row_values[:n_distinct]
    for p in range(count):
        codes[p] = np.searchsorted(distinct, x_row[nonzero_idx[p]])
    one_code = np.searchsorted(distinct, 1.0)
    max_abs_value = max(abs(distinct[0]), abs(distinct[n_distinct - 1]))
    n_padded = -(-n_distinct // VALUE_PADDING) * VALUE_PADDING
    row_values[n_distinct:n_padded] = 0.0
    for v in range(n_padded):
        exp_minus_step[v] = exp(-h * row_values[v])
        exp_plus_step[v] = exp(h * row_values[v])
    return count, n_padded, one_code, max_abs_value


@njit(**PARALLEL_NJIT_OPTIONS)
def distinct_pixel_values_kernel(
    x, h, values, n_values, nonzero_idx, n_nonzero, codes, one_code, exp_minus_step, exp_plus_step, max_abs_value,
):
    """Per sample: its nonzero pixels and their distinct values.

    Fills, for every sample b,
    ``nonzero_idx[b, :n_nonzero[b]]`` the indices of its nonzero pixels,
    ``values[b, :n_values[b]]`` the sorted distinct nonzero values plus 1.0
    (the bias "pixel"), then zeros up to a multiple of ``VALUE_PADDING``
    (``n_values`` counts the padding), ``codes[b, p]`` the position in ``values[b]`` of the
    value of nonzero pixel p, ``one_code[b]`` the position of 1.0,
    ``exp_minus_step[b, v] = exp(-h * values[b, v])`` and
    ``exp_plus_step[b, v] = exp(h * values[b, v])`` (the factors by which
    ``exp(-a1)`` moves when a1 moves by ``+-h * value``), and
    ``max_abs_value[b]``.
    """
    for b in prange(x.shape[0]):
        n_nonzero[b], n_values[b], one_code[b], max_abs_value[b] = _distinct_values_of_sample(
            x[b], h, values[b], nonzero_idx[b], codes[b], exp_minus_step[b], exp_plus_step[b]
        )


@njit(inline="always", **NJIT_OPTIONS)
def _loss_differences(nv, target_plus, sum_plus, target_minus, sum_minus, loss_diff):
    """``-log(y(+h) + 1e-7) + log(y(-h) + 1e-7)`` for each value, as one log,
    from the softmax numerators of the target class and the denominators."""
    for v in range(nv):
        loss_diff[v] = -log(
            (target_plus[v] / sum_plus[v] + LOG_EPS) / (target_minus[v] / sum_minus[v] + LOG_EPS)
        )


@njit(**NJIT_OPTIONS)
def _sample_loss_differences(values, nv, a, z, a2_row, target, w_row, h, relu, scratch, loss_diff):
    """``l_b(p+h) - l_b(p-h)`` of one sample for each of its distinct pixel values.

    The perturbation moves hidden unit j's pre-activation ``a`` by
    ``+-h * values[v]``; ``w_row`` is ``W2[j]``. A function of its own (not
    inlined into the parallel loop) so that LLVM vectorises its loops over v.
    """
    dz_plus = scratch[0]
    dz_minus = scratch[1]
    max_plus = scratch[2]
    max_minus = scratch[3]
    sum_plus = scratch[4]
    sum_minus = scratch[5]
    target_plus = scratch[6]
    target_minus = scratch[7]
    n_out = a2_row.shape[0]
    # the perturbed hidden activation, for every distinct pixel value
    for v in range(nv):
        d = h * values[v]
        dz_plus[v] = hidden_activation(a + d, relu) - z
        dz_minus[v] = hidden_activation(a - d, relu) - z
        max_plus[v] = -np.inf
        max_minus[v] = -np.inf
        sum_plus[v] = 0.0
        sum_minus[v] = 0.0
    # the perturbed logits a2[b, c] + dz * W2[j, c]: their row maximum ...
    for c in range(n_out):
        base = a2_row[c]
        w = w_row[c]
        for v in range(nv):
            logit = base + dz_plus[v] * w
            max_plus[v] = logit if logit > max_plus[v] else max_plus[v]
            logit = base + dz_minus[v] * w
            max_minus[v] = logit if logit > max_minus[v] else max_minus[v]
    # ... and the softmax: the sum over classes (in class order) and the target's term
    for c in range(n_out):
        base = a2_row[c]
        w = w_row[c]
        if c == target:
            for v in range(nv):
                target_plus[v] = exp(base + dz_plus[v] * w - max_plus[v])
                target_minus[v] = exp(base + dz_minus[v] * w - max_minus[v])
                sum_plus[v] += target_plus[v]
                sum_minus[v] += target_minus[v]
        else:
            for v in range(nv):
                sum_plus[v] += exp(base + dz_plus[v] * w - max_plus[v])
                sum_minus[v] += exp(base + dz_minus[v] * w - max_minus[v])
    _loss_differences(nv, target_plus, sum_plus, target_minus, sum_minus, loss_diff)


@njit(**NJIT_OPTIONS)
def _sample_loss_differences_small_steps(
    values, nv, exp_minus_step, exp_plus_step, a, z, exp_minus_a, exps_row, target, w_row, h, relu, scratch, loss_diff,
):
    """The same differences as ``_sample_loss_differences``, for small logit steps.

    Used when a bound proves every logit step ``|dz * W2[j, c]|`` at most
    ``SMALL_EXP_GUARD``. Then, exactly:

    * ``sigmoid(a +- d) = 1 / (1 + exp(-a) * exp(-+d))``, with ``exp(-a)``
      cached per (sample, unit) and ``exp(-+d)`` per (sample, value);
    * the softmax of the perturbed logits, shifted by the unperturbed row
      maximum m (the softmax does not depend on the shift), has the terms
      ``exp(a2[c] + dz w_c - m) = exp(a2[c] - m) * exp(dz w_c)``: the cached
      term times ``exp_small`` of the step, which is exp to within 1 ulp on
      that domain.
    """
    dz_plus = scratch[0]
    dz_minus = scratch[1]
    sum_plus = scratch[4]
    sum_minus = scratch[5]
    target_plus = scratch[6]
    target_minus = scratch[7]
    n_out = exps_row.shape[0]
    for v in range(nv):
        if relu:
            d = h * values[v]
            dz_plus[v] = hidden_activation(a + d, True) - z
            dz_minus[v] = hidden_activation(a - d, True) - z
        else:
            dz_plus[v] = 1.0 / (1.0 + exp_minus_a * exp_minus_step[v]) - z
            dz_minus[v] = 1.0 / (1.0 + exp_minus_a * exp_plus_step[v]) - z
        sum_plus[v] = 0.0
        sum_minus[v] = 0.0
    for c in range(n_out):
        e = exps_row[c]
        w = w_row[c]
        if c == target:
            for v in range(nv):
                target_plus[v] = e * exp_small(dz_plus[v] * w)
                target_minus[v] = e * exp_small(dz_minus[v] * w)
                sum_plus[v] += target_plus[v]
                sum_minus[v] += target_minus[v]
        else:
            for v in range(nv):
                sum_plus[v] += e * exp_small(dz_plus[v] * w)
                sum_minus[v] += e * exp_small(dz_minus[v] * w)
    _loss_differences(nv, target_plus, sum_plus, target_minus, sum_minus, loss_diff)


@njit(**PARALLEL_NJIT_OPTIONS)
def hidden_layer_kernel(
    t, W2, relu, a1, z1, a2, exp_minus_a1, exps, values, n_values, exp_minus_step, exp_plus_step, max_abs_value,
    nonzero_idx, n_nonzero, codes, one_code, h, scratch, grad_W1_T, grad_b1,
):
    """Numerical gradient of the loss with respect to W1 and b1.

    Parameters: ``t`` (B,) class indices; ``a1``, ``z1`` (B, H) and ``a2`` (B, O)
    the cached forward pass, ``exp_minus_a1`` and ``exps`` the caches of
    ``perturbation_cache_kernel``; the tables of
    ``distinct_pixel_values_kernel``; ``scratch`` (H, N_SCRATCH_ROWS, V).
    Writes ``grad_W1_T`` (H, I), the transpose of the W1 gradient (each hidden
    unit owns one contiguous row), and ``grad_b1`` (H,).
    """
    n_samples, n_hidden = a1.shape
    to_gradient = 1.0 / n_samples / (2.0 * h)
    # |sigmoid(a + d) - sigmoid(a)| <= |d| / 4; |relu(a + d) - relu(a)| <= |d|
    slope = 1.0 if relu else 0.25
    for j in prange(n_hidden):
        loss_diff = scratch[j, N_SCRATCH_ROWS - 1]
        grad_row = grad_W1_T[j]
        grad_row[:] = 0.0
        grad_bias = 0.0
        max_abs_w = 0.0
        for c in range(W2.shape[1]):
            max_abs_w = max(max_abs_w, abs(W2[j, c]))
        for b in range(n_samples):
            if slope * h * max_abs_value[b] * max_abs_w <= SMALL_EXP_GUARD:
                _sample_loss_differences_small_steps(
                    values[b], n_values[b], exp_minus_step[b], exp_plus_step[b], a1[b, j], z1[b, j],
                    exp_minus_a1[b, j], exps[b], t[b], W2[j], h, relu, scratch[j], loss_diff,
                )
            else:
                _sample_loss_differences(
                    values[b], n_values[b], a1[b, j], z1[b, j], a2[b], t[b], W2[j], h, relu, scratch[j], loss_diff
                )
            # every nonzero pixel of the sample adds the difference of its value
            for p in range(n_nonzero[b]):
                grad_row[nonzero_idx[b, p]] += loss_diff[codes[b, p]]
            grad_bias += loss_diff[one_code[b]]
        for i in range(grad_row.shape[0]):
            grad_row[i] *= to_gradient
        grad_b1[j] = grad_bias * to_gradient


@njit(**NJIT_OPTIONS)
def perturbation_cache_kernel(
    a1, a2, t, z1, exp_minus_a1, exps, row_max, target_exp, logits_T, max_without_T, sum_without_T, z1_T,
):
    """What the perturbed losses reuse from the forward pass.

    Per sample b: ``exp(-a1[b, j])``, the row maximum ``m`` of the logits,
    ``exps[b, c] = exp(a2[b, c] - m)``, ``exp(a2[b, t_b] - m)``; per class k and
    sample b, laid out (class, sample) for contiguous loops: the logit, the
    maximum over the other classes and ``sum_{c != k} exp(a2[b, c] - m)``;
    and ``z1`` transposed, with a last row of ones (H + 1, B).
    """
    n_samples, n_out = a2.shape
    for b in range(n_samples):
        for j in range(a1.shape[1]):
            exp_minus_a1[b, j] = exp(-a1[b, j])
        m = a2[b, 0]
        for c in range(1, n_out):
            if a2[b, c] > m:
                m = a2[b, c]
        row_max[b] = m
        for c in range(n_out):
            exps[b, c] = exp(a2[b, c] - m)
        target_exp[b] = exps[b, t[b]]
        for k in range(n_out):
            logits_T[k, b] = a2[b, k]
            best = -np.inf
            total = 0.0
            for c in range(n_out):
                if c != k:
                    total += exps[b, c]
                    if a2[b, c] > best:
                        best = a2[b, c]
            max_without_T[k, b] = best
            sum_without_T[k, b] = total
    for j in range(z1.shape[1]):
        for b in range(n_samples):
            z1_T[j, b] = z1[b, j]
    # the output bias b2 acts like a hidden unit whose activation is always 1
    z1_T[z1.shape[1], :] = 1.0


@njit(**NJIT_OPTIONS)
def _output_loss_differences(k, t, z_row, h, row_max, target_exp, logits, max_without, sum_without, ratio):
    """Sum over samples of ``l_b(p+h) - l_b(p-h)`` when logit k moves by ``+-h * z_row[b]``.

    With the logit moved to ``a'``, the new row maximum is
    ``m' = max(max_{c != k} a2[b, c], a')`` and the book's softmax terms are
    ``exp(a2[b, c] - m') = exp(a2[b, c] - m) * exp(m - m')`` for c != k (the
    cached terms, rescaled; the factor is exactly 1 when the maximum does not
    move) and ``exp(a' - m')``. A function of its own so that LLVM
    vectorises its loop over samples.
    """
    n_samples = z_row.shape[0]
    for b in range(n_samples):
        d = h * z_row[b]
        is_target = t[b] == k
        moved = logits[b] + d
        new_max = moved if moved > max_without[b] else max_without[b]
        rescale = exp(row_max[b] - new_max)
        e_moved = exp(moved - new_max)
        y_plus = (e_moved if is_target else target_exp[b] * rescale) / (sum_without[b] * rescale + e_moved)
        moved = logits[b] - d
        new_max = moved if moved > max_without[b] else max_without[b]
        rescale = exp(row_max[b] - new_max)
        e_moved = exp(moved - new_max)
        y_minus = (e_moved if is_target else target_exp[b] * rescale) / (sum_without[b] * rescale + e_moved)
        ratio[b] = (y_plus + LOG_EPS) / (y_minus + LOG_EPS)
    for b in range(n_samples):
        ratio[b] = log(ratio[b])
    total = 0.0
    for b in range(n_samples):
        total -= ratio[b]
    return total


@njit(**PARALLEL_NJIT_OPTIONS)
def output_layer_kernel(t, z1_T, h, row_max, target_exp, logits_T, max_without_T, sum_without_T, scratch,
                        grad_W2, grad_b2):
    """Numerical gradient of the loss with respect to W2 and b2.

    Perturbing ``W2[j, k]`` moves logit k of sample b by ``+-h * z1[b, j]``;
    perturbing ``b2[k]`` moves it by ``+-h``. ``z1_T`` is (H + 1, B): z1
    transposed, and a row of ones for the bias. Parallel over its rows;
    ``scratch`` is (H + 1, B).
    """
    n_hidden = z1_T.shape[0] - 1
    n_samples = z1_T.shape[1]
    n_out = logits_T.shape[0]
    to_gradient = 1.0 / n_samples / (2.0 * h)
    for j in prange(n_hidden + 1):
        ratio = scratch[j]
        for k in range(n_out):
            total = _output_loss_differences(
                k, t, z1_T[j], h, row_max, target_exp, logits_T[k], max_without_T[k], sum_without_T[k], ratio
            )
            if j == n_hidden:
                grad_b2[k] = total * to_gradient
            else:
                grad_W2[j, k] = total * to_gradient
