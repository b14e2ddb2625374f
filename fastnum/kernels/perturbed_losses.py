"""Perturbed losses of one sample, from a cached forward pass: the kernels every network's
incremental numerical gradient ends in.

* ``_sample_loss_differences`` / ``_sample_loss_differences_small_steps``:
  a hidden unit's pre-activation moves by ``+-h * value`` for each of the
  sample's distinct input values; the unit's output change ``dz`` moves the
  logits by ``dz * w_row`` (``W2[j]`` in the two-layer net, the unit's
  sensitivity row in deeper ones); the loss difference of the two
  perturbations is evaluated per value, by the book's softmax and log.
* ``_output_row_gradient``: a last-layer weight moves one logit of each sample.
* ``ForwardCache`` / ``_sample_caches``: what those reuse of the forward pass.

The exactness argument (which evaluation orders compute the same real
numbers, and the bounds checked before a shortcut is taken) is in each
function's docstring.
"""

from typing import NamedTuple

import numpy as np

from .._config import LOG_EPS, compiled_helper
from .activations import hidden_activation
from .vecmath import _C1, _C2, _C3, _C4, _C5, SMALL_EXP_GUARD, exp, expm1_small, fma, log, log1p_short, log1p_small

TINY_STEP_GUARD = 2.0**-12
"""Largest ``h * max|value|`` of a sample for which the small-step path takes the sigmoid's
step by a short series instead of a division (see ``_sample_loss_differences_small_steps``)."""


LOW_DEGREE_GUARD = 2.0**-14
"""Largest bound on a perturbed sample's logit steps ``|dz w_c|`` for which
``_sample_loss_differences_small_steps`` stops its polynomials at degree 3 and its log at ``d**5``."""


N_SCRATCH_ROWS = 9
"""Vectors of length max-distinct-values each hidden unit needs in the hidden-layer kernel."""


@compiled_helper(inline="always")
def _loss_differences(nv, target_plus, sum_plus, target_minus, sum_minus, loss_diff):
    """``-log(y(+h) + 1e-7) + log(y(-h) + 1e-7)`` for each value, as one log,
    from the softmax numerators of the target class and the denominators."""
    for v in range(nv):
        loss_diff[v] = -log(
            (target_plus[v] / sum_plus[v] + LOG_EPS) / (target_minus[v] / sum_minus[v] + LOG_EPS)
        )


class SampleSteps(NamedTuple):
    """One sample's distinct input values, as the perturbed losses of a unit read them."""

    values: np.ndarray
    """(V,) the distinct values (padded past ``n_values``)."""
    n_values: int
    expm1_minus_step: np.ndarray
    """(V,) ``expm1(-h value)``: the sigmoid's small-step path."""
    expm1_plus_step: np.ndarray
    """(V,) ``expm1(h value)``."""
    tiny: bool
    """``h max|value| <= TINY_STEP_GUARD``: the sigmoid's step by its cut series."""


class UnitState(NamedTuple):
    """One hidden unit of one sample, unperturbed: its pre-activation, its output, and ``1 - z`` of a
    sigmoid (``sigmoid(-a)``; unused for ReLU)."""

    a: float
    z: float
    one_minus_z: float


@compiled_helper
def _sample_loss_differences(steps, unit, a2_row, target, w_row, h, relu, scratch, loss_diff):
    """``l_b(p+h) - l_b(p-h)`` of one sample for each of its distinct pixel values.

    The perturbation moves hidden unit j's pre-activation ``unit.a`` by
    ``+-h * steps.values[v]``; ``w_row`` is ``W2[j]``. A function of its own (not
    inlined into the parallel loop) so that LLVM vectorises its loops over v.
    """
    values, nv, a, z = steps.values, steps.n_values, unit.a, unit.z
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


@compiled_helper(inline="always")
def _unit_steps(v, steps, unit, h, relu):
    """The unit's output change ``(dz+, dz-)`` for the sample's value v: the perturbed activation minus
    the unperturbed one (see ``_sample_loss_differences_small_steps`` for the sigmoid's form)."""
    if relu:
        d = h * steps.values[v]
        return hidden_activation(unit.a + d, True) - unit.z, hidden_activation(unit.a - d, True) - unit.z
    s_plus = unit.one_minus_z * steps.expm1_minus_step[v]
    s_minus = unit.one_minus_z * steps.expm1_plus_step[v]
    if steps.tiny:
        # -z s (1 - s + s**2 - s**3)
        return ((-unit.z * s_plus) * fma(fma(s_plus - 1.0, s_plus, 1.0), -s_plus, 1.0),
                (-unit.z * s_minus) * fma(fma(s_minus - 1.0, s_minus, 1.0), -s_minus, 1.0))
    return (-unit.z * s_plus) / (1.0 + s_plus), (-unit.z * s_minus) / (1.0 + s_minus)


@compiled_helper
def _sample_loss_differences_small_steps(steps, unit, exps_row, target, w_row, h, relu, logit_step_bound,
                                         loss_diff):
    """The same differences as ``_sample_loss_differences``, for small logit steps.

    Used when a bound proves every logit step ``|dz * W2[j, c]|`` at most
    ``SMALL_EXP_GUARD`` (2**-8); ``logit_step_bound`` is the caller's bound
    (``slope * h max|value| * max|w_row|``). Then, exactly in real numbers:

    * the sigmoid's step, with ``s = (1 - z) expm1(-+d)`` (``1 - z = sigmoid(-a)``
      cached per (sample, unit), ``expm1(-+d)`` per (sample, value)):
      ``sigmoid(a +- d) = z / (1 + s)``, so ``dz = -z s / (1 + s)``, with no
      cancellation. When ``steps.tiny`` (the caller has checked
      ``h max|value| <= TINY_STEP_GUARD`` = 2**-12, so ``|s| <= 2**-11.9``)
      ``1 / (1 + s)`` is its series cut after ``s**3``, whose remainder
      ``s**4 / (1 - |s|) < 2**-47`` relative moves dz by less than
      ``z 2**-59``, far under half an ulp of z (the book's own rounding of
      ``sigmoid(a +- d)``); otherwise one division per sign;
    * the softmax of the perturbed logits, shifted by the unperturbed row
      maximum m (the softmax does not depend on the shift), has the terms
      ``exp(a2[c] + dz w_c - m) = e_c * exp(dz w_c)`` with ``e_c = exp(a2[c] - m)``
      cached; ``exp(dz w_c)`` is its degree-5 Taylor polynomial
      ``P(dz w_c)``, whose truncation error on ``|dz w_c| <= 2**-8`` is below
      ``2**-48 / 6! < 2**-57`` relative, a sixteenth of an ulp;
    * the denominator ``S(dz) = sum_c e_c P(dz w_c)`` is, as a polynomial in
      dz, ``sum_k dz**k M_k`` with the moments ``M_k = sum_c e_c w_c**k / k!``,
      and the target's term plus the book's 1e-7 times the denominator,
      ``A(dz) = e_t P(dz w_t) + 1e-7 S(dz)``, is ``sum_k dz**k (e_t w_t**k / k! + 1e-7 M_k)``:
      the same real numbers, so both are computed once per (sample, unit) as
      six coefficients each and then, per value, by degree-5 Horner
      schemes instead of eleven polynomials. Rounding: ``|dz**k M_k| <= M_0 (2**-8)**k / k!``,
      so every term past the constant is tiny against it and each computed
      polynomial carries the same few ulps of relative error as a sum over
      classes;
    * the loss difference ``-log((T+ / S+ + 1e-7) / (T- / S- + 1e-7))`` is
      ``-log1p(q)`` with ``q = (N - D) / D``, ``N = A(dz+) S(dz-)`` and
      ``D = A(dz-) S(dz+)``: the same real number with one division. Since
      every logit of a perturbed sample is within ``2**-8`` of the
      unperturbed one, ``|log(N / D)| <= 2**-6``, so
      ``|q| <= 2**-6 (1 + 2**-6)``, where ``vecmath.log1p_small`` is within
      1 ulp (its series' remainder is below 1e-18 relative there).

    * **Lower degrees for smaller steps.** When the caller's bound
      ``logit_step_bound`` on ``|dz w_c|`` is at most ``LOW_DEGREE_GUARD``
      (2**-14), the polynomials stop at degree 3, whose truncation
      ``(2**-14)**4 / 4! < 2**-60`` relative is under a hundredth of an ulp, and the
      log at ``d**5`` (``vecmath.log1p_short``): there
      ``|log(N / D)| <= 4 * 2**-14 = 2**-12``, inside its domain
      ``2**-12 (1 + 2**-12)``, where its remainder is below ``2**-62``
      relative. Both are the same real numbers as above to within those
      remainders, far under the rounding of either. In the book's chapter-4
      training every (sample, unit) takes this path (``|W2| <= 1.9`` after 16
      epochs, ``h max|x| = 1e-4``, the sigmoid's slope at most 1/4: a bound
      of ``4.6e-5``, under 2**-14 = ``6.1e-5``); it is 1.7 times faster per
      value (13 fused multiply-adds fewer of about 45).

    The loop over values then has no inner loop and no scratch: one
    vectorised pass of fused multiply-adds and one division.
    """
    nv = steps.n_values
    m0 = 0.0
    m1 = 0.0
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    m5 = 0.0
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
    m1 *= _C1
    m2 *= _C2
    m3 *= _C3
    m4 *= _C4
    m5 *= _C5
    # A's coefficients: the target's e_t w_t**k / k! plus 1e-7 times S's
    w_target = w_row[target]
    p = exps_row[target]
    a0 = fma(LOG_EPS, m0, p)
    p *= w_target
    a1 = fma(LOG_EPS, m1, p * _C1)
    p *= w_target
    a2 = fma(LOG_EPS, m2, p * _C2)
    p *= w_target
    a3 = fma(LOG_EPS, m3, p * _C3)
    p *= w_target
    a4 = fma(LOG_EPS, m4, p * _C4)
    p *= w_target
    a5 = fma(LOG_EPS, m5, p * _C5)
    if logit_step_bound <= LOW_DEGREE_GUARD:
        for v in range(nv):
            dz_plus, dz_minus = _unit_steps(v, steps, unit, h, relu)
            sum_plus = fma(fma(fma(m3, dz_plus, m2), dz_plus, m1), dz_plus, m0)
            sum_minus = fma(fma(fma(m3, dz_minus, m2), dz_minus, m1), dz_minus, m0)
            target_plus = fma(fma(fma(a3, dz_plus, a2), dz_plus, a1), dz_plus, a0)
            target_minus = fma(fma(fma(a3, dz_minus, a2), dz_minus, a1), dz_minus, a0)
            numerator = target_plus * sum_minus
            denominator = target_minus * sum_plus
            loss_diff[v] = -log1p_short((numerator - denominator) / denominator)
        return
    for v in range(nv):
        dz_plus, dz_minus = _unit_steps(v, steps, unit, h, relu)
        sum_plus = fma(fma(fma(fma(fma(m5, dz_plus, m4), dz_plus, m3), dz_plus, m2), dz_plus, m1), dz_plus, m0)
        sum_minus = fma(fma(fma(fma(fma(m5, dz_minus, m4), dz_minus, m3), dz_minus, m2), dz_minus, m1), dz_minus, m0)
        target_plus = fma(fma(fma(fma(fma(a5, dz_plus, a4), dz_plus, a3), dz_plus, a2), dz_plus, a1), dz_plus, a0)
        target_minus = fma(fma(fma(fma(fma(a5, dz_minus, a4), dz_minus, a3), dz_minus, a2), dz_minus, a1),
                           dz_minus, a0)
        numerator = target_plus * sum_minus
        denominator = target_minus * sum_plus
        loss_diff[v] = -log1p_small((numerator - denominator) / denominator)


class ForwardCache(NamedTuple):
    """The forward pass of a batch and what the perturbed losses reuse from it."""

    a1: np.ndarray
    """(B, H) hidden pre-activations."""
    z1: np.ndarray
    """(B, H) hidden activations."""
    a2: np.ndarray
    """(B, O) logits."""
    one_minus_z1: np.ndarray
    """(B, H) ``1 - sigmoid(a1)``, computed as ``sigmoid(-a1)`` (no cancellation, no overflow)."""
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


def forward_cache_buffers(n_samples, n_hidden, n_out, activations=None):
    """A ``ForwardCache`` for ``n_samples`` samples of a hidden layer of ``n_hidden`` units and
    ``n_out`` logits; its ``a1``, ``z1``, ``a2`` are ``activations``' when given (shared with the forward
    pass that fills them), else new."""
    if activations is None:
        a1, z1, a2 = np.empty((n_samples, n_hidden)), np.empty((n_samples, n_hidden)), np.empty((n_samples, n_out))
    else:
        a1, z1, a2 = activations
    return ForwardCache(
        a1=a1, z1=z1, a2=a2,
        one_minus_z1=np.empty((n_samples, n_hidden)), exps=np.empty((n_samples, n_out)),
        row_max=np.empty(n_samples), target_exp=np.empty(n_samples),
        logits_T=np.empty((n_out, n_samples)), max_without_T=np.empty((n_out, n_samples)),
        sum_without_T=np.empty((n_out, n_samples)), exps_T=np.empty((n_out, n_samples)),
        z1_T=np.empty((n_hidden + 1, n_samples)),
    )


class Gradients(NamedTuple):
    """Where the kernels write the gradient, in the parameters' layout."""

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray


@compiled_helper
def _sample_caches(b, t_b, fw):
    """Sample b's entries of the caches in ``fw`` (from its a1, z1 and a2)."""
    n_hidden = fw.a1.shape[1]
    n_out = fw.a2.shape[1]
    for j in range(n_hidden):
        fw.one_minus_z1[b, j] = 1.0 / (1.0 + exp(fw.a1[b, j]))
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


@compiled_helper
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


@compiled_helper
def _output_loss_differences_small_steps(k, t, z_row, h, target_exp, exps_k, sum_without, ratio):
    """The same sum as ``_output_loss_differences``, when every step ``|h * z_row[b]|`` is at most
    ``SMALL_EXP_GUARD``.

    Shifted by the unperturbed row maximum m (the softmax does not depend on
    the shift), the moved logit's term is ``e_k exp(u)`` with ``u = +-h z``
    and the others stay ``e_c``: the denominator is ``S + e_k expm1(u)``
    with ``S = sum_c e_c``, and ``expm1`` on ``|u| <= 2**-8`` is
    ``vecmath.expm1_small`` (within 1 ulp). The loss difference is
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


@compiled_helper
def _output_row_gradient(j, t, h, fw, ratio, grads):
    """Row j of the W2 gradient (``b2``'s when j is the number of hidden units).

    Perturbing ``W2[j, k]`` moves logit k of sample b by ``+-h * z1[b, j]``;
    perturbing ``b2[k]`` moves it by ``+-h``.
    """
    _output_row_gradient_by(j, t, h, fw, ratio, grads, True)


@compiled_helper
def _output_row_gradient_by(j, t, h, fw, ratio, grads, general_paths):
    """``_output_row_gradient``; with ``general_paths=None`` for callers that have checked that
    ``h max|z1| <= SMALL_EXP_GUARD``: numba then leaves the general path out of the compiled
    code (the branch on ``None`` is decided by type), and a row that needed it would come out
    NaN, never a wrong number."""
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
            if general_paths is None:
                total = np.nan
            else:
                total = _output_loss_differences(
                    k, t, z_row, h, fw.row_max, fw.target_exp, fw.logits_T[k], fw.max_without_T[k],
                    fw.sum_without_T[k], ratio,
                )
        if j == n_hidden:
            grads.b2[k] = total * to_gradient
        else:
            grads.W2[j, k] = total * to_gradient
