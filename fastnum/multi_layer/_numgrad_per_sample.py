"""The incremental numerical gradient of a fully connected network without batch norm.

``MultiLayerNet`` and ``MultiLayerNetExtend`` without batch norm (dropout
allowed, its masks fixed for the call): K hidden layers, then the logits.
Without batch norm every sample's loss depends on that sample only, so, as in
the two-layer kernels (``fastnum/two_layer/_numgrad_incremental.py``; the per-sample
functions both use are in ``fastnum/kernels/``), each perturbation is evaluated sample by
sample, and only in the samples it moves:

* ``W_k[i, j]`` (hidden layer k) moves the pre-activation ``A[k, b, j]`` by
  ``+-h * input[b, i]``, only where that input is nonzero and unit j is not
  dropped; the perturbed loss of sample b depends on (b, j, input value)
  only, so it is computed once per *distinct* input value of the sample and
  added to every input holding that value. ``b_k[j]`` is an input of value 1.
* The change ``dz`` of unit j's output reaches the logits through the layers
  above. Above the last hidden layer that is ``dz * W_K[j]``. Deeper down,
  with ReLU, the layers above are linear in ``dz`` as long as no ReLU above
  changes side (and the dropout masks are fixed): then, exactly in real
  numbers, the perturbed logits are ``logits + dz * G[k, b, j]`` with
  ``G[k, b] = W_{k+1} diag(m_{k+1}[b]) ... W_K`` (``m``: 1 where a unit is
  kept and its pre-activation positive). ``prepare_worker`` computes G and
  proves, per (sample, unit), that no ReLU above can change side: with
  ``dz_max = h * max |input value|``, each pre-activation above moves by at
  most ``dz_max * |P[j, i]|`` (P the same product up to that layer), which
  must stay below ``|A[k', b, i]| (1 - 2**-40)``; the margin is far above the
  rounding of the cached values. Where the proof fails (or with sigmoid
  below the last hidden layer), ``_perturbed_target_probability``
  recomputes the layers above for that sample from the cached activations:
  the general path.
* The last layer moves one logit (``_output_row_gradient``, unchanged).

From the perturbed logits each perturbed loss is the book's softmax and
``-log(y_t + 1e-7)``, with the same exact small-step evaluation as the
two-layer kernels. The weight decay term ``0.5 lambda sum W**2`` of the loss
changes by ``0.5 lambda ((w + h)**2 - (w - h)**2)`` when ``w`` moves: that
difference is added to each weight's entry.

Three calls of workers run on every thread per gradient: ``prepare_worker``
(per sample), ``hidden_units_worker`` (per hidden unit, the layers
interleaved) and ``output_rows_worker`` (per row of the last layer, which
the batch-norm gradient runs too). Two perturbation workers instead of one
compile on two processes at once (a first run). Each task owns its entries
and sums over samples in order: bitwise the same for any thread count.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from .._config import LOG_EPS, NJIT_OPTIONS, compiled_helper
from .._workers import new_counters, parallel_worker
from ..kernels.activations import affine_row_sparse, hidden_activation, nonzero_pixels
from ..kernels.distinct_values import DistinctValues, _distinct_values_into, distinct_values_buffers, padded_width
from ..kernels.perturbed_losses import (
    N_SCRATCH_ROWS,
    TINY_STEP_GUARD,
    ForwardCache,
    SampleSteps,
    UnitState,
    _output_row_gradient,
    _sample_caches,
    _sample_loss_differences,
    _sample_loss_differences_small_steps,
    forward_cache_buffers,
)
from ..kernels.tasks import finish, take, wait_for
from ..kernels.vecmath import SMALL_EXP_GUARD, exp, log
from ._buffers import interleaved_tasks, layer_weights, top_gradients, transposed_weight_offsets

CROSSING_MARGIN = 1.0 - 2.0**-40
"""A ReLU above the perturbed unit counts as fixed only while its input's largest move stays
below ``|pre-activation| * CROSSING_MARGIN``."""


@compiled_helper(inline="always")
def weights(layers, layer):
    """The weights of affine layer ``layer`` as a (sizes[layer], sizes[layer + 1]) view."""
    n_in = layers.sizes[layer]
    n_out = layers.sizes[layer + 1]
    start = layers.w_off[layer]
    return layers.W[start:start + n_in * n_out].reshape((n_in, n_out))


@compiled_helper(inline="always")
def bias(layers, layer):
    """The bias of affine layer ``layer`` as a (sizes[layer + 1],) view."""
    start = layers.b_off[layer]
    return layers.b[start:start + layers.sizes[layer + 1]]


class HiddenCache(NamedTuple):
    """Per hidden layer k, per sample b (rows padded to the widest layer)."""

    A: np.ndarray
    """(K, B, N) pre-activations."""
    Z: np.ndarray
    """(K, B, N) outputs: activation times the dropout mask."""
    keep: np.ndarray
    """(K, B, N) dropout masks (1.0 kept, 0.0 dropped; all ones without dropout)."""
    G: np.ndarray
    """(K - 1, B, N, O) sensitivities of the logits to a unit's output (ReLU networks)."""
    linear_above: np.ndarray
    """(K, B, N) bool: the layers above unit j are proven linear for sample b."""
    top_nonzero: np.ndarray
    """(B, N) int64 scratch: the nonzero outputs of the last hidden layer."""


class DeepGradients(NamedTuple):
    """Where the kernel writes: hidden layers' weights transposed (a unit owns a row), flat."""

    W_T: np.ndarray
    """Hidden layer k's (sizes[k + 1], sizes[k]) transposed gradient from ``W_T_off[k]``."""
    W_T_off: np.ndarray
    b: np.ndarray
    """Hidden layer k's bias gradient from ``Layers.b_off[k]``."""


class Settings(NamedTuple):
    """The scalars every kernel of a call reads: the activation, the step, the weight decay."""

    relu: bool
    h: float
    weight_decay_lambda: float


class Caches(NamedTuple):
    """What ``prepare_worker`` writes and the perturbation workers read."""

    hidden: HiddenCache
    distinct: DistinctValues
    """The hidden layers' inputs' distinct values, with a leading axis per layer."""
    top: ForwardCache
    """The last layer's caches (the two-layer net's, with the last hidden layer as its hidden layer)."""


class PerturbTasks(NamedTuple):
    """``hidden_units_worker``'s tasks: task n is unit ``unit[n]`` of hidden layer ``layer[n]``."""

    layer: np.ndarray
    unit: np.ndarray


class PerturbScratch(NamedTuple):
    """``hidden_units_worker``'s scratch: per hidden unit slot (``N * k + j``) its loss rows and two rows
    of the widest layer."""

    hidden: np.ndarray
    deep: np.ndarray


@compiled_helper(inline="always")
def _layer_view(dv, k):
    """Hidden layer k's tables of ``dv`` as the two-layer net's ``DistinctValues`` (views)."""
    return DistinctValues(dv.values[k], dv.n_values[k], dv.nonzero_idx[k], dv.n_nonzero[k], dv.codes[k],
                          dv.one_code[k], dv.expm1_minus_step[k], dv.expm1_plus_step[k], dv.max_abs_value[k],
                          dv.tables[k], dv.used_slots[k])


@compiled_helper
def _hidden_layer_of_sample(k, b, in_row, layers, settings, caches):
    """Hidden layer k of sample b: the distinct values of its input, then A, Z."""
    hc, dv, relu = caches.hidden, caches.distinct, settings.relu
    n_out = layers.sizes[k + 1]
    _distinct_values_into(b, in_row, settings.h, _layer_view(dv, k))
    n_nonzero = dv.n_nonzero[k, b]
    a_row = hc.A[k, b, :n_out]
    affine_row_sparse(in_row, dv.nonzero_idx[k, b], n_nonzero, weights(layers, k), bias(layers, k), a_row)
    keep = hc.keep[k, b]
    z_row = hc.Z[k, b]
    for j in range(n_out):
        z_row[j] = hidden_activation(a_row[j], relu) * keep[j]


@compiled_helper
def _sensitivities_of_sample(b, layers, h, hc, dv, p, q):
    """``G[k, b]`` for k < K - 1 and the proof that the layers above each unit stay linear (ReLU).

    ``p`` and ``q`` are scratch rows of the widest layer.
    """
    n_hidden_layers = layers.sizes.shape[0] - 2
    top = n_hidden_layers - 1
    n_classes = layers.sizes[top + 2]
    W_last = weights(layers, top + 1)
    for k in range(top - 1, -1, -1):
        n_units = layers.sizes[k + 1]
        n_next = layers.sizes[k + 2]
        W_next = weights(layers, k + 1)
        A_next = hc.A[k + 1, b]
        keep_next = hc.keep[k + 1, b]
        for j in range(n_units):
            g = hc.G[k, b, j]
            for c in range(n_classes):
                g[c] = 0.0
            for i in range(n_next):
                if keep_next[i] != 0.0 and A_next[i] > 0.0:
                    w = W_next[j, i]
                    upper = W_last[i] if k + 1 == top else hc.G[k + 1, b, i]
                    for c in range(n_classes):
                        g[c] += w * upper[c]
        # the proof, one unit at a time: P's row j layer by layer
        dz_max = h * dv.max_abs_value[k, b]
        for j in range(n_units):
            linear = True
            for i in range(n_next):
                p[i] = W_next[j, i]
            n_p = n_next
            for layer in range(k + 1, top + 1):
                A_row = hc.A[layer, b]
                keep_row = hc.keep[layer, b]
                for i in range(n_p):
                    if keep_row[i] != 0.0 and p[i] != 0.0 and \
                            dz_max * abs(p[i]) >= abs(A_row[i]) * CROSSING_MARGIN:
                        linear = False
                if not linear or layer == top:
                    break
                W_up = weights(layers, layer + 1)
                n_q = layers.sizes[layer + 2]
                for c in range(n_q):
                    q[c] = 0.0
                for i in range(n_p):
                    if keep_row[i] != 0.0 and A_row[i] > 0.0:
                        pi = p[i]
                        for c in range(n_q):
                            q[c] += pi * W_up[i, c]
                for c in range(n_q):
                    p[c] = q[c]
                n_p = n_q
            hc.linear_above[k, b, j] = linear
    for j in range(layers.sizes[top + 1]):
        hc.linear_above[top, b, j] = True


@compiled_helper
def _logits_of_sample(b, t_b, layers, hc, top):
    """Sample b's logits from its last hidden layer, and the last layer's caches in ``top``.

    (A function of its own: numba's parallel loops can drop writes made
    directly in their body through a NamedTuple's arrays.)
    """
    last = layers.sizes.shape[0] - 3
    n_top = layers.sizes[last + 1]
    z_top = hc.Z[last, b, :n_top]
    n_nonzero = nonzero_pixels(z_top, hc.top_nonzero[b])
    affine_row_sparse(z_top, hc.top_nonzero[b], n_nonzero, weights(layers, last + 1), bias(layers, last + 1), top.a2[b])
    for j in range(n_top):
        top.a1[b, j] = hc.A[last, b, j]
        top.z1[b, j] = z_top[j]
    _sample_caches(b, t_b, top)


PREPARE_TASKS, PREPARE_DONE, PERTURB_TASKS, PERTURB_DONE = 1, 2, 1, 2
"""Slots of a call's counters (``kernels.tasks``): every worker's call has counters of its own."""


@parallel_worker
@njit(**NJIT_OPTIONS)
def prepare_worker(counters, x, t, layers, settings, caches, scratch):
    """Per sample, on every thread: the forward pass, each hidden layer's distinct input values, the
    caches of the last layer (``caches.top``, a ``ForwardCache``) and, with ReLU, the sensitivities."""
    hc = caches.hidden
    n_samples = x.shape[0]
    n_hidden_layers = layers.sizes.shape[0] - 2
    b = take(counters, PREPARE_TASKS)
    while b < n_samples:
        for k in range(n_hidden_layers):  # one call site: one compiled signature (k a variable)
            in_row = x[b] if k == 0 else hc.Z[k - 1, b, :layers.sizes[k]]
            _hidden_layer_of_sample(k, b, in_row, layers, settings, caches)
        _logits_of_sample(b, t[b], layers, hc, caches.top)
        if settings.relu and n_hidden_layers > 1:
            _sensitivities_of_sample(b, layers, settings.h, hc, caches.distinct, scratch[b, 0], scratch[b, 1])
        finish(counters, PREPARE_DONE)
        b = take(counters, PREPARE_TASKS)
    wait_for(counters, PREPARE_DONE, n_samples)


@compiled_helper
def _perturbed_target_probability(k, j, b, dz, target, layers, relu, hc, rows):
    """Sample b's softmax probability of its label when unit j of hidden layer k (k < K - 1) outputs
    ``dz`` more: the layers above recomputed from the cached pre-activations (the general path).
    ``rows``: two scratch rows of the widest layer."""
    cur, nxt = rows[0], rows[1]
    n_hidden_layers = layers.sizes.shape[0] - 2
    n_next = layers.sizes[k + 2]
    W_next = weights(layers, k + 1)
    A_next = hc.A[k + 1, b]
    keep_next = hc.keep[k + 1, b]
    for i in range(n_next):
        cur[i] = hidden_activation(A_next[i] + dz * W_next[j, i], relu) * keep_next[i]
    n_cur = n_next
    for layer in range(k + 2, n_hidden_layers + 1):
        W = weights(layers, layer)
        bias_row = bias(layers, layer)
        n_up = layers.sizes[layer + 1]
        for c in range(n_up):
            nxt[c] = 0.0
        for i in range(n_cur):
            zi = cur[i]
            if zi != 0.0:
                for c in range(n_up):
                    nxt[c] += zi * W[i, c]
        if layer == n_hidden_layers:  # the logits
            row_max = nxt[0] + bias_row[0]
            for c in range(n_up):
                nxt[c] += bias_row[c]
                row_max = max(row_max, nxt[c])
            total = 0.0
            for c in range(n_up):
                total += exp(nxt[c] - row_max)
            return exp(nxt[target] - row_max) / total
        keep = hc.keep[layer, b]
        for c in range(n_up):
            cur[c] = hidden_activation(nxt[c] + bias_row[c], relu) * keep[c]
        n_cur = n_up
    return 0.0  # not reached: the loop ends at the logits


@compiled_helper
def _sample_loss_differences_general(k, j, b, steps, unit, target, layers, relu, h, hc, rows, loss_diff):
    """``l_b(p+h) - l_b(p-h)`` for each distinct input value (``steps``, a ``SampleSteps``) of unit j of
    layer k (``unit``, a ``UnitState``), through the recomputed layers above."""
    a, z = unit.a, unit.z
    for v in range(steps.n_values):
        d = h * steps.values[v]
        y_plus = _perturbed_target_probability(k, j, b, hidden_activation(a + d, relu) - z, target, layers, relu, hc,
                                               rows)
        y_minus = _perturbed_target_probability(k, j, b, hidden_activation(a - d, relu) - z, target, layers, relu,
                                                hc, rows)
        loss_diff[v] = -log((y_plus + LOG_EPS) / (y_minus + LOG_EPS))


@compiled_helper
def output_row_gradient(j, t, settings, W_last, top, scratch, top_grads):
    """Row j of the last layer's weight gradient (its bias when j is the last hidden layer's width),
    weight decay included."""
    h, weight_decay_lambda = settings.h, settings.weight_decay_lambda
    _output_row_gradient(j, t, h, top, scratch, top_grads)
    if j < W_last.shape[0]:
        grad_row = top_grads.W2[j]
        if weight_decay_lambda != 0.0:  # the weight decay term's move: 0.5 lambda ((w + h)**2 - (w - h)**2)
            for i in range(grad_row.shape[0]):
                w = W_last[j, i]
                grad_row[i] += 0.5 * weight_decay_lambda * ((w + h) * (w + h) - (w - h) * (w - h)) * (1.0 / (2.0 * h))


@compiled_helper
def _hidden_unit_gradient(k, j, t, layers, settings, caches, task_scratch, grads):
    """Column j of hidden layer k's weight gradient and ``b_k[j]``'s: the perturbations of unit j (its
    scratch: slot ``N k + j`` of ``task_scratch``, a ``PerturbScratch``; ``grads``: a ``DeepGradients``)."""
    relu, h, weight_decay_lambda = settings.relu, settings.h, settings.weight_decay_lambda
    hc, dv, top = caches.hidden, caches.distinct, caches.top
    slot = hc.A.shape[2] * k + j
    deep_scratch = task_scratch.deep[slot]
    scratch = task_scratch.hidden[slot]
    n_hidden_layers = layers.sizes.shape[0] - 2
    last = n_hidden_layers - 1
    n_in = layers.sizes[k]
    n_samples = hc.A.shape[1]
    to_gradient = 1.0 / n_samples / (2.0 * h)
    slope = 1.0 if relu else 0.25
    loss_diff = scratch[N_SCRATCH_ROWS - 1]
    start = grads.W_T_off[k] + j * n_in
    grad_row = grads.W_T[start:start + n_in]
    grad_row[:] = 0.0
    grad_bias = 0.0
    W_last = weights(layers, last + 1)
    for b in range(n_samples):
        if hc.keep[k, b, j] == 0.0:
            continue  # a dropped unit: no perturbation of it changes anything
        a = hc.A[k, b, j]
        step_max = h * dv.max_abs_value[k, b]
        if relu and a <= 0.0 and a + step_max <= 0.0:
            continue  # the ReLU stays at 0 for every perturbation
        z = hidden_activation(a, relu)
        values = dv.values[k, b]
        nv = dv.n_values[k, b]
        steps = SampleSteps(values, nv, dv.expm1_minus_step[k, b], dv.expm1_plus_step[k, b],
                            step_max <= TINY_STEP_GUARD)
        if k == last or hc.linear_above[k, b, j]:
            w_row = W_last[j] if k == last else hc.G[k, b, j]
            max_abs_w = 0.0
            for c in range(w_row.shape[0]):
                max_abs_w = max(max_abs_w, abs(w_row[c]))
            # 1 - z of a sigmoid (only the last hidden layer's take this path); unused for ReLU
            unit = UnitState(a, z, top.one_minus_z1[b, j] if k == last else 0.0)
            logit_step_bound = slope * step_max * max_abs_w
            if logit_step_bound <= SMALL_EXP_GUARD:
                _sample_loss_differences_small_steps(steps, unit, top.exps[b], t[b], w_row, h, relu, logit_step_bound,
                                                     loss_diff)
            else:
                _sample_loss_differences(steps, unit, top.a2[b], t[b], w_row, h, relu, scratch, loss_diff)
        else:
            _sample_loss_differences_general(k, j, b, steps, UnitState(a, z, 0.0), t[b], layers, relu, h, hc,
                                             deep_scratch, loss_diff)
        codes = dv.codes[k, b]
        nonzero_idx = dv.nonzero_idx[k, b]
        for p in range(dv.n_nonzero[k, b]):
            grad_row[nonzero_idx[p]] += loss_diff[codes[p]]
        grad_bias += loss_diff[dv.one_code[k, b]]
    for i in range(n_in):
        grad_row[i] *= to_gradient
    W = weights(layers, k)
    if weight_decay_lambda != 0.0:  # the weight decay term's move: 0.5 lambda ((w + h)**2 - (w - h)**2)
        for i in range(n_in):
            w = W[i, j]
            grad_row[i] += 0.5 * weight_decay_lambda * ((w + h) * (w + h) - (w - h) * (w - h)) * (1.0 / (2.0 * h))
    grads.b[layers.b_off[k] + j] = grad_bias * to_gradient


@parallel_worker
@njit(**NJIT_OPTIONS)
def hidden_units_worker(counters, t, layers, settings, caches, tasks, scratch, grads):
    """Every hidden layer's entries from the caches, one unit per task (``tasks``, a ``PerturbTasks``:
    the layers interleaved so that costly and cheap tasks alternate), on every thread."""
    n_tasks = tasks.layer.shape[0]
    task = take(counters, PERTURB_TASKS)
    while task < n_tasks:
        _hidden_unit_gradient(tasks.layer[task], tasks.unit[task], t, layers, settings, caches, scratch, grads)
        finish(counters, PERTURB_DONE)
        task = take(counters, PERTURB_TASKS)
    wait_for(counters, PERTURB_DONE, n_tasks)


@parallel_worker
@njit(**NJIT_OPTIONS)
def output_rows_worker(counters, t, settings, W_last, top, output_scratch, top_grads):
    """The last layer's entries, one row of ``W_last`` (n_top, n_out) per task and the bias last, from its
    caches ``top`` (a ``ForwardCache``), on every thread: the per-sample and the batch-norm gradients'."""
    n_tasks = W_last.shape[0] + 1
    task = take(counters, PERTURB_TASKS)
    while task < n_tasks:
        output_row_gradient(task, t, settings, W_last, top, output_scratch[task], top_grads)
        finish(counters, PERTURB_DONE)
        task = take(counters, PERTURB_TASKS)
    wait_for(counters, PERTURB_DONE, n_tasks)


# -- the driver: buffers for one batch size, both kernels in order ---------------------------------


class PerSampleGradient:
    """The buffers of one network shape and batch size, and the calls of one gradient.

    ``keep`` (K, B, N) is filled by the caller before ``calls`` runs: ones, or
    the dropout masks of this gradient.
    """

    def __init__(self, sizes, n_samples):
        self.sizes = tuple(int(s) for s in sizes)
        n_hidden_layers = len(sizes) - 2
        widest = max(self.sizes[1:-1])
        widest_in = max(self.sizes[:-2])
        n_out = self.sizes[-1]
        width = padded_width(widest_in)
        shape = (n_hidden_layers, n_samples)
        self.hidden = HiddenCache(
            A=np.zeros(shape + (widest,)), Z=np.zeros(shape + (widest,)), keep=np.ones(shape + (widest,)),
            G=np.zeros((max(n_hidden_layers - 1, 0), n_samples, widest, n_out)),
            linear_above=np.zeros(shape + (widest,), dtype=np.bool_),
            top_nonzero=np.empty((n_samples, widest), dtype=np.int64),
        )
        self.keep = self.hidden.keep
        # the two-layer net's tables with a leading axis: one per hidden layer's input
        self.distinct = distinct_values_buffers(shape, widest_in)
        self.top = forward_cache_buffers(n_samples, self.sizes[-2], n_out)
        self.prepare_scratch = np.empty((n_samples, 2, max(widest, n_out)))
        self.tasks = PerturbTasks(*interleaved_tasks(self.sizes))
        slots = n_hidden_layers * widest
        self.scratch = PerturbScratch(hidden=np.empty((slots, N_SCRATCH_ROWS, width)),
                                      deep=np.empty((slots, 2, max(widest, n_out))))
        self.output_scratch = np.empty((self.sizes[-2] + 1, n_samples))  # output_rows_worker's: a row per task
        W_T_off, total = transposed_weight_offsets(self.sizes)
        self.grads = DeepGradients(W_T=np.empty(total), W_T_off=W_T_off, b=np.empty(sum(self.sizes[1:-1])))
        self.top_grads = top_gradients(self.sizes[-2], n_out)

    def calls(self, x, labels, layers, relu, h, weight_decay_lambda):
        """(kernel, arguments) of the three parallel regions of one gradient."""
        settings = Settings(relu=bool(relu), h=float(h), weight_decay_lambda=float(weight_decay_lambda))
        caches = Caches(hidden=self.hidden, distinct=self.distinct, top=self.top)
        return [
            (prepare_worker, (new_counters(), x, labels, layers, settings, caches, self.prepare_scratch)),
            (hidden_units_worker, (new_counters(), labels, layers, settings, caches, self.tasks, self.scratch,
                                   self.grads)),
            (output_rows_worker, (new_counters(), labels, settings, layer_weights(layers, -1), self.top,
                                  self.output_scratch, self.top_grads)),
        ]
