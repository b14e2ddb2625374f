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

A gradient is two parallel regions: ``prepare_kernel`` (per sample: the
forward pass, the distinct values, the caches) and ``perturb_kernel`` (per
hidden unit and per row of W2: the perturbed losses). Each task of the second
owns its entries of the result and one slice of scratch, and sums over samples
in a fixed order, so the result is bitwise the same for any number of threads.
Few regions matter on a busy machine, where every region waits for its slowest
thread.
"""

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ._config import LOG_EPS, NJIT_OPTIONS, PARALLEL_NJIT_OPTIONS
from ._forward import forward_row_sparse, hidden_activation
from ._vecmath import (
    _C1,
    _C2,
    _C3,
    _C4,
    _C5,
    _C6,
    SMALL_EXP_GUARD,
    _float64_bits_as_int64,
    exp,
    exp_small,
    expm1_small,
    fma,
    log,
    log1p_small,
)

SIGMOID_PAIR_LIMIT = 1e150
"""Largest ``exp(-a1)`` for which the small-step path computes two sigmoids with one
division: ``(1 + u e-)(1 + u e+)`` stays far below the float64 maximum (1.8e308)."""

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


def hash_table_size(n_in):
    """Slots of a sample's value table: a power of two at least twice the values it can hold."""
    size = 16
    while size < 2 * (n_in + 1):
        size *= 2
    return size


@njit(inline="always", **NJIT_OPTIONS)
def _slot_of(value, mask):
    """Home slot of a nonzero float64 in an open-addressing table (mask = size - 1)."""
    bits = _float64_bits_as_int64(value)
    # data from float32 images have 29 zero low bits: fold the high bits down before masking
    bits ^= bits >> 29
    bits ^= bits >> 13
    return bits & mask


@njit(inline="always", **NJIT_OPTIONS)
def _code_of(value, row_values, table, used_slots, n_distinct):
    """Position of ``value`` among the sample's distinct values, added when new.

    Returns (code, n_distinct after the call).
    """
    mask = table.shape[0] - 1
    slot = _slot_of(value, mask)
    while table[slot] >= 0:
        code = table[slot]
        if row_values[code] == value:
            return code, n_distinct
        slot = (slot + 1) & mask
    table[slot] = n_distinct
    used_slots[n_distinct] = slot
    row_values[n_distinct] = value
    return n_distinct, n_distinct + 1


@njit(**NJIT_OPTIONS)
def _distinct_values_of_sample(
    x_row, h, row_values, nonzero_idx, codes, exp_minus_step, exp_plus_step, table, used_slots,
):
    """A sample's nonzero pixels and their distinct values; returns
    (n_nonzero, n_values, one_code, max_abs_value).

    Fills ``nonzero_idx[:n_nonzero]`` the indices of the nonzero pixels,
    ``row_values[:n_values]`` the distinct nonzero values and 1.0 (the bias
    "pixel"), in order of first appearance, then zeros up to a multiple of
    ``VALUE_PADDING`` (``n_values`` counts the padding), ``codes[p]`` the
    position in ``row_values`` of the value of nonzero pixel p, ``one_code``
    the position of 1.0, ``exp_minus_step[v] = exp(-h * row_values[v])`` and
    ``exp_plus_step[v] = exp(h * row_values[v])`` (the factors by which
    ``exp(-a1)`` moves when a1 moves by ``+-h * value``).

    Distinct values are found with a hash table in one pass (no sort): their
    order does not matter, since each value's loss difference is computed
    independently of the others. ``table`` is all -1 on entry and on exit.
    """
    one_code, n_distinct = _code_of(1.0, row_values, table, used_slots, 0)
    count = 0
    for i in range(x_row.shape[0]):
        value = x_row[i]
        if value != 0.0:
            nonzero_idx[count] = i
            codes[count], n_distinct = _code_of(value, row_values, table, used_slots, n_distinct)
            count += 1
    max_abs_value = 0.0
    for v in range(n_distinct):
        table[used_slots[v]] = -1
        max_abs_value = max(max_abs_value, abs(row_values[v]))
    n_padded = -(-n_distinct // VALUE_PADDING) * VALUE_PADDING
    row_values[n_distinct:n_padded] = 0.0
    for v in range(n_padded):
        exp_minus_step[v] = exp(-h * row_values[v])
        exp_plus_step[v] = exp(h * row_values[v])
    return count, n_padded, one_code, max_abs_value


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
    values, nv, exp_minus_step, exp_plus_step, a, z, exp_minus_a, exps_row, target, w_row, h, relu, loss_diff,
):
    """The same differences as ``_sample_loss_differences``, for small logit steps.

    Used when a bound proves every logit step ``|dz * W2[j, c]|`` at most
    ``SMALL_EXP_GUARD`` (2**-8). Then, exactly:

    * ``sigmoid(a +- d) = 1 / (1 + exp(-a) * exp(-+d))``, with ``exp(-a)``
      cached per (sample, unit) and ``exp(-+d)`` per (sample, value);
    * the softmax of the perturbed logits, shifted by the unperturbed row
      maximum m (the softmax does not depend on the shift), has the terms
      ``exp(a2[c] + dz w_c - m) = e_c * exp(dz w_c)`` with ``e_c = exp(a2[c] - m)``
      cached; ``exp(dz w_c)`` is ``exp_small``'s degree-6 Taylor polynomial
      ``P(dz w_c)``, whose truncation error on ``|dz w_c| <= 2**-7`` is below
      4e-19 relative (``_vecmath.exp_small``: within 1 ulp of exp);
    * the denominator ``S(dz) = sum_c e_c P(dz w_c)`` is, as a polynomial in
      dz, ``sum_k dz**k M_k`` with the moments ``M_k = sum_c e_c w_c**k / k!``:
      the same real number, so it is computed once per (sample, unit) as seven
      moments and then, per value, by one degree-6 Horner scheme instead of
      ten polynomials. Rounding: ``|dz**k M_k| <= M_0 (2**-8)**k / k!``, so
      every term past ``M_0`` is tiny against it and the computed sum carries
      the same few ulps of relative error as the sum over classes;
    * the target's numerator is ``e_t P(dz w_t)``, as before, and the loss
      difference ``-log((T+ / S+ + 1e-7) / (T- / S- + 1e-7))`` is evaluated as
      ``-log1p(d)`` with ``d = (N - D) / D``, ``N = (T+ + 1e-7 S+) S-`` and
      ``D = (T- + 1e-7 S-) S+``: the same real number with one division.
      Since the logits of the two perturbed samples differ by at most
      ``|dz+ - dz-| max_c |w_t - w_c| <= 4 * bound``, ``|log(N / D)| <= 2**-6``
      and so ``|d| <= 2**-6 (1 + 2**-6)``, where ``_vecmath.log1p_small`` is
      within 1 ulp (its series' remainder is below 1e-18 relative there);
    * both sigmoids share one division: ``1 / (1 + u e-+) = (1 + u e+-) /
      ((1 + u e-)(1 + u e+))``, exact in real numbers, a few ulps in doubles
      (as the book's own sigmoid of a perturbed pre-activation); the caller
      keeps ``u = exp(-a) <= SIGMOID_PAIR_LIMIT`` so the product cannot
      overflow.

    The loop over values then has no inner loop and no scratch: one
    vectorised pass of fused multiply-adds and two divisions.
    """
    m0 = 0.0
    m1 = 0.0
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    m5 = 0.0
    m6 = 0.0
    for c in range(exps_row.shape[0]):
        w = w_row[c]
        p = exps_row[c]
        m0 += p
        p *= w
        m1 += p
        p *= w
        m2 += p
        p *= w
        m3 += p
        p *= w
        m4 += p
        p *= w
        m5 += p
        p *= w
        m6 += p
    m1 *= _C1
    m2 *= _C2
    m3 *= _C3
    m4 *= _C4
    m5 *= _C5
    m6 *= _C6
    e_target = exps_row[target]
    w_target = w_row[target]
    for v in range(nv):
        if relu:
            d = h * values[v]
            dz_plus = hidden_activation(a + d, True) - z
            dz_minus = hidden_activation(a - d, True) - z
        else:
            # both sigmoids with one division (the caller keeps exp(-a) <= SIGMOID_PAIR_LIMIT)
            den_plus = 1.0 + exp_minus_a * exp_minus_step[v]
            den_minus = 1.0 + exp_minus_a * exp_plus_step[v]
            inv = 1.0 / (den_plus * den_minus)
            dz_plus = den_minus * inv - z
            dz_minus = den_plus * inv - z
        sum_plus = fma(fma(fma(fma(fma(fma(m6, dz_plus, m5), dz_plus, m4), dz_plus, m3), dz_plus, m2),
                           dz_plus, m1), dz_plus, m0)
        sum_minus = fma(fma(fma(fma(fma(fma(m6, dz_minus, m5), dz_minus, m4), dz_minus, m3), dz_minus, m2),
                            dz_minus, m1), dz_minus, m0)
        target_plus = e_target * exp_small(dz_plus * w_target)
        target_minus = e_target * exp_small(dz_minus * w_target)
        numerator = (target_plus + LOG_EPS * sum_plus) * sum_minus
        denominator = (target_minus + LOG_EPS * sum_minus) * sum_plus
        loss_diff[v] = -log1p_small((numerator - denominator) / denominator)


@njit(**NJIT_OPTIONS)
def _distinct_values_into(b, x_row, h, dv):
    """``_distinct_values_of_sample`` for sample b, into the tables of ``dv``."""
    n_nonzero, n_values, one_code, max_abs_value = _distinct_values_of_sample(
        x_row, h, dv.values[b], dv.nonzero_idx[b], dv.codes[b], dv.exp_minus_step[b], dv.exp_plus_step[b],
        dv.tables[b], dv.used_slots[b],
    )
    dv.n_nonzero[b] = n_nonzero
    dv.n_values[b] = n_values
    dv.one_code[b] = one_code
    dv.max_abs_value[b] = max_abs_value


class ForwardCache(NamedTuple):
    """The forward pass of a batch and what the perturbed losses reuse from it."""

    a1: np.ndarray
    """(B, H) hidden pre-activations."""
    z1: np.ndarray
    """(B, H) hidden activations."""
    a2: np.ndarray
    """(B, O) logits."""
    exp_minus_a1: np.ndarray
    """(B, H) ``exp(-a1)``."""
    exps: np.ndarray
    """(B, O) ``exp(a2 - m)`` with m the row maximum."""
    row_max: np.ndarray
    """(B,) m."""
    target_exp: np.ndarray
    """(B,) ``exp(a2[b, t_b] - m)``."""
    logits_T: np.ndarray
    """(O, B) the logits, laid out per class for loops over samples."""
    max_without_T: np.ndarray
    """(O, B) the maximum logit over the other classes."""
    sum_without_T: np.ndarray
    """(O, B) ``sum_{c != k} exp(a2[b, c] - m)``."""
    exps_T: np.ndarray
    """(O, B) ``exps`` transposed."""
    z1_T: np.ndarray
    """(H + 1, B) z1 transposed, and a last row of ones (the output bias's "activation")."""


class DistinctValues(NamedTuple):
    """Per sample: nonzero pixels, their distinct values and the factors of the sigmoid's step."""

    values: np.ndarray
    n_values: np.ndarray
    nonzero_idx: np.ndarray
    n_nonzero: np.ndarray
    codes: np.ndarray
    one_code: np.ndarray
    exp_minus_step: np.ndarray
    exp_plus_step: np.ndarray
    max_abs_value: np.ndarray
    tables: np.ndarray
    used_slots: np.ndarray


class Gradients(NamedTuple):
    """Where the kernels write the gradient; W1's transposed (each hidden unit owns a row)."""

    W1_T: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray


@njit(**NJIT_OPTIONS)
def _sample_caches(b, t_b, fw):
    """Sample b's entries of the caches in ``fw`` (from its a1, z1 and a2)."""
    n_hidden = fw.a1.shape[1]
    n_out = fw.a2.shape[1]
    for j in range(n_hidden):
        fw.exp_minus_a1[b, j] = exp(-fw.a1[b, j])
        fw.z1_T[j, b] = fw.z1[b, j]
    fw.z1_T[n_hidden, b] = 1.0
    m = fw.a2[b, 0]
    for c in range(1, n_out):
        if fw.a2[b, c] > m:
            m = fw.a2[b, c]
    fw.row_max[b] = m
    for c in range(n_out):
        fw.exps[b, c] = exp(fw.a2[b, c] - m)
    fw.target_exp[b] = fw.exps[b, t_b]
    for k in range(n_out):
        fw.logits_T[k, b] = fw.a2[b, k]
        best = -np.inf
        total = 0.0
        for c in range(n_out):
            if c != k:
                total += fw.exps[b, c]
                if fw.a2[b, c] > best:
                    best = fw.a2[b, c]
        fw.max_without_T[k, b] = best
        fw.sum_without_T[k, b] = total
        fw.exps_T[k, b] = fw.exps[b, k]


@njit(**PARALLEL_NJIT_OPTIONS)
def prepare_kernel(x, t, W1, b1, W2, b2, relu, h, fw, dv):
    """Everything the perturbed losses start from, in one parallel pass over samples.

    Per sample: the forward pass (``fw.a1``, ``fw.z1``, ``fw.a2``, skipping
    zero pixels), its distinct pixel values (``dv``, see
    ``_distinct_values_of_sample``) and the caches of ``fw``.
    """
    for b in prange(x.shape[0]):
        _distinct_values_into(b, x[b], h, dv)
        forward_row_sparse(x[b], dv.nonzero_idx[b], dv.n_nonzero[b], W1, b1, W2, b2, relu, fw.a1[b], fw.z1[b],
                           fw.a2[b])
        _sample_caches(b, t[b], fw)


@njit(**NJIT_OPTIONS)
def _hidden_unit_gradient(j, t, W2, relu, h, fw, dv, scratch, grads):
    """Row j of the transposed W1 gradient and ``b1[j]``'s: the perturbations of hidden unit j."""
    n_samples = fw.a1.shape[0]
    to_gradient = 1.0 / n_samples / (2.0 * h)
    # |sigmoid(a + d) - sigmoid(a)| <= |d| / 4; |relu(a + d) - relu(a)| <= |d|
    slope = 1.0 if relu else 0.25
    loss_diff = scratch[N_SCRATCH_ROWS - 1]
    grad_row = grads.W1_T[j]
    grad_row[:] = 0.0
    grad_bias = 0.0
    max_abs_w = 0.0
    for c in range(W2.shape[1]):
        max_abs_w = max(max_abs_w, abs(W2[j, c]))
    for b in range(n_samples):
        small = slope * h * dv.max_abs_value[b] * max_abs_w <= SMALL_EXP_GUARD
        if small and fw.exp_minus_a1[b, j] <= SIGMOID_PAIR_LIMIT:
            _sample_loss_differences_small_steps(
                dv.values[b], dv.n_values[b], dv.exp_minus_step[b], dv.exp_plus_step[b], fw.a1[b, j], fw.z1[b, j],
                fw.exp_minus_a1[b, j], fw.exps[b], t[b], W2[j], h, relu, loss_diff,
            )
        else:
            _sample_loss_differences(
                dv.values[b], dv.n_values[b], fw.a1[b, j], fw.z1[b, j], fw.a2[b], t[b], W2[j], h, relu, scratch,
                loss_diff,
            )
        # every nonzero pixel of the sample adds the difference of its value
        codes = dv.codes[b]
        nonzero_idx = dv.nonzero_idx[b]
        for p in range(dv.n_nonzero[b]):
            grad_row[nonzero_idx[p]] += loss_diff[codes[p]]
        grad_bias += loss_diff[dv.one_code[b]]
    for i in range(grad_row.shape[0]):
        grad_row[i] *= to_gradient
    grads.b1[j] = grad_bias * to_gradient


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


@njit(**NJIT_OPTIONS)
def _output_loss_differences_small_steps(k, t, z_row, h, target_exp, exps_k, sum_without, ratio):
    """The same sum as ``_output_loss_differences``, when every step ``|h * z_row[b]|`` is at most
    ``SMALL_EXP_GUARD``.

    Shifted by the unperturbed row maximum m (the softmax does not depend on
    the shift), the moved logit's term is ``e_k exp(u)`` with ``u = +-h z``
    and the others stay ``e_c``: the denominator is ``S + e_k expm1(u)``
    with ``S = sum_c e_c``, and ``expm1`` on ``|u| <= 2**-8`` is
    ``_vecmath.expm1_small`` (within 1 ulp). The loss difference is
    ``-log1p((N - D) / D)`` as in the hidden layer, where
    ``|log(N / D)| <= |u+ - u-| <= 2**-7`` (a log-softmax moves by at most the
    logit's step) keeps ``log1p_small`` on its domain. No exp, no max, two
    divisions per sample instead of four and two logs.
    """
    total = 0.0
    for b in range(z_row.shape[0]):
        u = h * z_row[b]
        e_k = exps_k[b]
        full_sum = sum_without[b] + e_k
        grow_plus = e_k * expm1_small(u)
        grow_minus = e_k * expm1_small(-u)
        sum_plus = full_sum + grow_plus
        sum_minus = full_sum + grow_minus
        is_target = t[b] == k
        target_plus = e_k + grow_plus if is_target else target_exp[b]
        target_minus = e_k + grow_minus if is_target else target_exp[b]
        numerator = (target_plus + LOG_EPS * sum_plus) * sum_minus
        denominator = (target_minus + LOG_EPS * sum_minus) * sum_plus
        ratio[b] = log1p_small((numerator - denominator) / denominator)
    for b in range(z_row.shape[0]):
        total -= ratio[b]
    return total


@njit(**NJIT_OPTIONS)
def _output_row_gradient(j, t, h, fw, ratio, grads):
    """Row j of the W2 gradient (``b2``'s when j is the number of hidden units).

    Perturbing ``W2[j, k]`` moves logit k of sample b by ``+-h * z1[b, j]``;
    perturbing ``b2[k]`` moves it by ``+-h``.
    """
    n_hidden = fw.z1_T.shape[0] - 1
    n_samples = fw.z1_T.shape[1]
    to_gradient = 1.0 / n_samples / (2.0 * h)
    z_row = fw.z1_T[j]
    max_abs_z = 0.0
    for b in range(n_samples):
        max_abs_z = max(max_abs_z, abs(z_row[b]))
    small = h * max_abs_z <= SMALL_EXP_GUARD
    for k in range(fw.logits_T.shape[0]):
        if small:
            total = _output_loss_differences_small_steps(
                k, t, z_row, h, fw.target_exp, fw.exps_T[k], fw.sum_without_T[k], ratio,
            )
        else:
            total = _output_loss_differences(
                k, t, z_row, h, fw.row_max, fw.target_exp, fw.logits_T[k], fw.max_without_T[k],
                fw.sum_without_T[k], ratio,
            )
        if j == n_hidden:
            grads.b2[k] = total * to_gradient
        else:
            grads.W2[j, k] = total * to_gradient


@njit(**PARALLEL_NJIT_OPTIONS)
def perturb_kernel(t, W2, relu, h, fw, dv, hidden_scratch, output_scratch, grads):
    """The whole numerical gradient from the caches, in one parallel pass.

    Tasks alternate between a hidden unit (its W1 column and b1 entry) and a
    row of W2 (the last one b2), so that the equal contiguous shares the
    threads get hold equal work. Each task writes only its own entries and
    sums over samples in a fixed order: bitwise the same for any number of
    threads. ``hidden_scratch`` is (H, N_SCRATCH_ROWS, V), ``output_scratch``
    (H + 1, B).
    """
    n_hidden = fw.a1.shape[1]
    for task in prange(2 * n_hidden + 1):
        unit = task // 2
        if task % 2 == 0 and unit < n_hidden:
            _hidden_unit_gradient(unit, t, W2, relu, h, fw, dv, hidden_scratch[unit], grads)
        else:
            row = n_hidden if task == 2 * n_hidden else unit
            _output_row_gradient(row, t, h, fw, output_scratch[row], grads)


# -- the same work as separate kernels, for timing each part (bench/profile_step.py) --------------


@njit(**PARALLEL_NJIT_OPTIONS)
def distinct_pixel_values_kernel(x, h, dv):
    """The distinct values of every sample alone (``prepare_kernel``'s share of them)."""
    for b in prange(x.shape[0]):
        _distinct_values_into(b, x[b], h, dv)


@njit(**PARALLEL_NJIT_OPTIONS)
def hidden_layer_kernel(t, W2, relu, h, fw, dv, hidden_scratch, grads):
    """The W1 and b1 gradient alone (``perturb_kernel``'s hidden-unit tasks)."""
    for j in prange(fw.a1.shape[1]):
        _hidden_unit_gradient(j, t, W2, relu, h, fw, dv, hidden_scratch[j], grads)


@njit(**PARALLEL_NJIT_OPTIONS)
def output_layer_kernel(t, h, fw, output_scratch, grads):
    """The W2 and b2 gradient alone (``perturb_kernel``'s output-row tasks)."""
    for j in prange(fw.z1_T.shape[0]):
        _output_row_gradient(j, t, h, fw, output_scratch[j], grads)
