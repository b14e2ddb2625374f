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


from numba import njit, prange

from .._config import NJIT_OPTIONS, PARALLEL_NJIT_OPTIONS
from ..kernels.distinct_values import _distinct_values_into
from ..kernels.perturbed_losses import (
    N_SCRATCH_ROWS,
    TINY_STEP_GUARD,
    _output_row_gradient,
    _sample_caches,
    _sample_loss_differences,
    _sample_loss_differences_small_steps,
)
from ..kernels.vecmath import SMALL_EXP_GUARD
from ._forward import forward_row_sparse


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
    """Column j of the W1 gradient and ``b1[j]``'s: the perturbations of hidden unit j.

    The column is summed over samples in ``grads.W1_T[j]`` (contiguous) and
    written, scaled, into ``grads.W1`` at the end.
    """
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
        step_max = h * dv.max_abs_value[b]
        if slope * step_max * max_abs_w <= SMALL_EXP_GUARD:
            _sample_loss_differences_small_steps(
                dv.values[b], dv.n_values[b], dv.expm1_minus_step[b], dv.expm1_plus_step[b], fw.a1[b, j],
                fw.z1[b, j], fw.one_minus_z1[b, j], fw.exps[b], t[b], W2[j], h, relu, step_max <= TINY_STEP_GUARD,
                loss_diff,
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
    grad_W1 = grads.W1
    for i in range(grad_row.shape[0]):
        grad_W1[i, j] = grad_row[i] * to_gradient
    grads.b1[j] = grad_bias * to_gradient


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
