"""The incremental numerical gradient of a fully connected network with batch norm.

``MultiLayerNetExtend(use_batchnorm=True)``: every hidden layer is affine,
batch norm (training mode: the batch's own mean and variance), activation,
optional dropout (masks fixed for the call). Batch norm couples the samples:
a perturbation of a weight into unit j of hidden layer k moves that unit's
pre-activation in the samples whose input is nonzero, hence its batch mean
and variance, hence its normalised output in *every* sample. What stays
unchanged is everything else below and beside unit j, so each perturbed
loss is evaluated as:

* the perturbed column: ``a' = A[k, j] +- h * input[i]`` over the batch (or
  ``+- h`` for ``b_k[j]``), its batch mean and variance, ``y' = gamma (a' -
  mean') / sqrt(var' + 10e-7) + beta`` (for ``gamma_k[j]`` / ``beta_k[j]``:
  the cached normalised column with the parameter moved), the activation and
  the dropout mask: the new output column ``z'``;
* above it, when unit j is in the last hidden layer, only the logits move:
  ``logits + (z' - z) W_K[j]``, sample by sample;
* otherwise the next layer's pre-activations move by ``(z' - z) W_{k+1}[j]``
  (a rank-one update of the cached ones), and from there every layer above
  is recomputed for the whole batch, batch norm included, up to the logits.

Inputs whose column is zero in every sample move nothing (their entries are
exactly zero plus the weight decay). The loss difference of the two
perturbations is summed per sample as ``-log((y_t(+h) + 1e-7) / (y_t(-h) +
1e-7))``, the same real number as the difference of the book's two batch
losses. Everything is evaluated by the book's formulas on the perturbed
values: no expansion, nothing truncated.

Arrays are laid out unit-major (unit, sample), so that every inner loop runs
over the samples of one unit and vectorises. ``forward_worker`` computes
the cached training forward pass (one phase per layer, its units as tasks);
``hidden_units_worker`` runs one task per hidden unit, and the per-sample
gradient's ``output_rows_worker`` one per row of the last layer (a
last-layer weight moves one logit of each sample: one compiled kernel
serves both networks), each with its own scratch and sums in a fixed order:
bitwise the same for any thread count.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from .._config import BN_EPS, LOG_EPS, NJIT_OPTIONS, compiled_helper
from .._workers import new_counters, parallel_worker
from ..kernels.activations import hidden_activation
from ..kernels.perturbed_losses import _sample_caches, forward_cache_buffers
from ..kernels.tasks import finish, take, wait_for
from ..kernels.vecmath import exp, log
from ._buffers import interleaved_tasks, layer_weights, top_gradients, transposed_weight_offsets
from ._numgrad_per_sample import PerturbTasks, Settings, bias, output_rows_worker, weights

WEIGHT, BIAS, GAMMA, BETA = 0, 1, 2, 3
"""What a perturbation moves in unit j's column."""


class BatchNormCache(NamedTuple):
    """The training forward pass, unit-major: per hidden layer k, unit j, sample b."""

    XT: np.ndarray
    """(n_in, B) the input, transposed."""
    AT: np.ndarray
    """(K, N, B) affine outputs (before batch norm)."""
    XN: np.ndarray
    """(K, N, B) normalised: ``(A - mean) / sqrt(var + 10e-7)``."""
    ZT: np.ndarray
    """(K, N, B) outputs: activation of ``gamma XN + beta``, times the dropout mask."""
    keepT: np.ndarray
    """(K, N, B) dropout masks (ones without dropout)."""
    mean: np.ndarray
    """(K, N) batch means."""
    var: np.ndarray
    """(K, N) batch variances."""
    logitsT: np.ndarray
    """(O, B)."""
    input_moves: np.ndarray
    """(K, max_in) bool: input i of hidden layer k is nonzero in some sample."""


@compiled_helper
def _normalise_row(a_row, gamma, beta, relu, keep_row, xn_row, z_row):
    """Batch norm (training) of one unit over the batch, then activation and mask; returns (mean, var)."""
    n = a_row.shape[0]
    total = 0.0
    for b in range(n):
        total += a_row[b]
    mean = total / n
    total = 0.0
    for b in range(n):
        d = a_row[b] - mean
        total += d * d
    var = total / n
    # one division per unit, then products: (a - mean) * (1 / std) is the book's (a - mean) / std
    # within one more rounding (half an ulp), and divisions would dominate these loops
    inv_std = 1.0 / np.sqrt(var + BN_EPS)
    if xn_row.shape[0] == n:
        for b in range(n):
            xn = (a_row[b] - mean) * inv_std
            xn_row[b] = xn
            z_row[b] = hidden_activation(gamma * xn + beta, relu) * keep_row[b]
    else:
        for b in range(n):
            z_row[b] = hidden_activation(gamma * ((a_row[b] - mean) * inv_std) + beta, relu) * keep_row[b]
    return mean, var


@compiled_helper
def _affine_rows(in_rows, n_in, W, bias_row, out_rows, c):
    """``out_rows[c] = bias_row[c] + sum_i W[i, c] in_rows[i]`` over the batch, inputs in order.

    Four inputs per pass over the row: each entry still adds its products in
    input order (the same sum, bit for bit), but the row is loaded and
    stored a quarter as often, which is what bounds this loop.
    """
    out = out_rows[c]
    n = out.shape[0]
    out[:] = 0.0
    i = 0
    while i + 4 <= n_in:
        w0 = W[i, c]
        w1 = W[i + 1, c]
        w2 = W[i + 2, c]
        w3 = W[i + 3, c]
        r0 = in_rows[i]
        r1 = in_rows[i + 1]
        r2 = in_rows[i + 2]
        r3 = in_rows[i + 3]
        for b in range(n):
            acc = out[b]
            acc += w0 * r0[b]
            acc += w1 * r1[b]
            acc += w2 * r2[b]
            acc += w3 * r3[b]
            out[b] = acc
        i += 4
    while i < n_in:
        w = W[i, c]
        row = in_rows[i]
        for b in range(n):
            out[b] += w * row[b]
        i += 1
    for b in range(n):
        out[b] += bias_row[c]


@compiled_helper
def _hidden_unit_forward(k, c, in_rows, n_in, W, bias_row, gamma, beta, relu, cache):
    """Unit c of hidden layer k over the batch: affine, batch norm, activation, mask."""
    _affine_rows(in_rows, n_in, W, bias_row, cache.AT[k], c)
    mean, var = _normalise_row(cache.AT[k, c], gamma, beta, relu, cache.keepT[k, c], cache.XN[k, c], cache.ZT[k, c])
    cache.mean[k, c] = mean
    cache.var[k, c] = var


def forward_counter_slots(n_hidden_layers):
    """Slots ``forward_worker``'s counters need: ``ABORT``, then next task and tasks done per phase."""
    return 1 + 2 * (n_hidden_layers + 2)


@parallel_worker
@njit(**NJIT_OPTIONS)
def forward_worker(counters, layers, gamma, beta, relu, t, cache, top):
    """The training forward pass into ``cache`` and the last layer's caches into ``top``, on every
    thread (``counters`` of ``forward_counter_slots`` slots).

    One phase per layer: its units (and, for a hidden layer, which of its
    inputs move) as tasks, once every unit of the layer below is done; then
    one over samples.
    """
    n_hidden_layers = layers.sizes.shape[0] - 2
    n_samples = cache.XT.shape[1]
    for k in range(n_hidden_layers + 1):
        tasks, done = 1 + 2 * k, 2 + 2 * k
        n_in = layers.sizes[k]
        n_units = layers.sizes[k + 1]
        W = weights(layers, k)
        bias_row = bias(layers, k)
        in_rows = cache.XT if k == 0 else cache.ZT[k - 1]
        n_marks = n_in if k < n_hidden_layers else 0
        n_tasks = n_units + n_marks
        task = take(counters, tasks)
        while task < n_tasks:
            if task >= n_units:
                _mark_moving_input(k, task - n_units, in_rows, cache)
            elif k == n_hidden_layers:
                _affine_rows(in_rows, n_in, W, bias_row, cache.logitsT, task)
            else:
                start = layers.b_off[k]
                _hidden_unit_forward(k, task, in_rows, n_in, W, bias_row, gamma[start + task], beta[start + task],
                                     relu, cache)
            finish(counters, done)
            task = take(counters, tasks)
        wait_for(counters, done, n_tasks)
    tasks, done = 1 + 2 * (n_hidden_layers + 1), 2 + 2 * (n_hidden_layers + 1)
    b = take(counters, tasks)
    while b < n_samples:
        _top_caches_of_sample(b, t[b], layers, cache, top)
        finish(counters, done)
        b = take(counters, tasks)
    wait_for(counters, done, n_samples)


@compiled_helper
def _mark_moving_input(k, i, in_rows, cache):
    """Whether input i of hidden layer k is nonzero in some sample (else its weights move nothing).

    (Writes through a NamedTuple's arrays happen in functions of their own:
    numba's parallel loops can drop them when made directly in their body.)
    """
    moves = False
    for b in range(in_rows.shape[1]):
        if in_rows[i, b] != 0.0:
            moves = True
    cache.input_moves[k, i] = moves


@compiled_helper
def _top_caches_of_sample(b, t_b, layers, cache, top):
    """Sample b's last hidden layer and logits, sample-major, and the last layer's caches in ``top``."""
    last = layers.sizes.shape[0] - 3
    for j in range(layers.sizes[last + 1]):
        top.a1[b, j] = cache.AT[last, j, b]
        top.z1[b, j] = cache.ZT[last, j, b]
    for c in range(top.a2.shape[1]):
        top.a2[b, c] = cache.logitsT[c, b]
    _sample_caches(b, t_b, top)


@compiled_helper
def _target_probabilities(logitsT, t, row_max, total, prob):
    """Softmax probability of each sample's label from unit-major logits (row max subtracted)."""
    n_classes, n_samples = logitsT.shape
    for b in range(n_samples):
        row_max[b] = logitsT[0, b]
        total[b] = 0.0
    for c in range(1, n_classes):
        for b in range(n_samples):
            row_max[b] = max(row_max[b], logitsT[c, b])
    for c in range(n_classes):
        for b in range(n_samples):
            total[b] += exp(logitsT[c, b] - row_max[b])
    for b in range(n_samples):
        prob[b] = exp(logitsT[t[b], b] - row_max[b]) / total[b]


class Perturbed(NamedTuple):
    """One perturbed parameter: of unit j of hidden layer k, by ``mode`` its weight from one input
    (``WEIGHT``), its bias, gamma or beta."""

    k: int
    j: int
    mode: int


@compiled_helper
def _perturbed_probabilities(entry, layers, norm, relu, t, cache, scratch, prob):
    """Each sample's label probability when unit j of hidden layer k (``entry``) outputs the column
    ``scratch.z_new``."""
    k, j, z_new = entry.k, entry.j, scratch.z_new
    gamma, beta = norm.gamma, norm.beta
    n_hidden_layers = layers.sizes.shape[0] - 2
    n_samples = z_new.shape[0]
    delta = scratch.delta
    for b in range(n_samples):
        delta[b] = z_new[b] - cache.ZT[k, j, b]
    logits = scratch.logits
    if k == n_hidden_layers - 1:
        W_last = weights(layers, n_hidden_layers)
        for c in range(logits.shape[0]):
            w = W_last[j, c]
            for b in range(n_samples):
                logits[c, b] = cache.logitsT[c, b] + delta[b] * w
        _target_probabilities(logits, t, scratch.row_max, scratch.total, prob)
        return
    # the next hidden layer: a rank-one update of its cached pre-activations, then its batch norm
    W_next = weights(layers, k + 1)
    cur = scratch.cur
    n_cur = layers.sizes[k + 2]
    start = layers.b_off[k + 1]
    for c in range(n_cur):
        a_row = scratch.a_row
        w = W_next[j, c]
        for b in range(n_samples):
            a_row[b] = cache.AT[k + 1, c, b] + delta[b] * w
        _normalise_row(a_row, gamma[start + c], beta[start + c], relu, cache.keepT[k + 1, c], scratch.no_row,
                       cur[c])
    # every layer above, whole
    for layer in range(k + 2, n_hidden_layers + 1):
        W = weights(layers, layer)
        bias_row = bias(layers, layer)
        n_up = layers.sizes[layer + 1]
        if layer == n_hidden_layers:
            for c in range(n_up):
                _affine_rows(cur, n_cur, W, bias_row, logits, c)
            _target_probabilities(logits, t, scratch.row_max, scratch.total, prob)
            return
        nxt = scratch.nxt
        start = layers.b_off[layer]
        for c in range(n_up):
            _affine_rows(cur, n_cur, W, bias_row, nxt, c)
            _normalise_row(nxt[c], gamma[start + c], beta[start + c], relu, cache.keepT[layer, c], scratch.no_row,
                           nxt[c])
        for c in range(n_up):  # element by element: a slice copy compiles numba's shape-mismatch
            for b in range(n_samples):  # message, about 3.9 s of string code
                cur[c, b] = nxt[c, b]
        n_cur = n_up


class Scratch(NamedTuple):
    """One task's working rows."""

    a_row: np.ndarray
    z_new: np.ndarray
    delta: np.ndarray
    cur: np.ndarray
    nxt: np.ndarray
    logits: np.ndarray
    prob_plus: np.ndarray
    prob_minus: np.ndarray
    row_max: np.ndarray
    total: np.ndarray
    no_row: np.ndarray


@compiled_helper
def _new_column(entry, sign, in_row, layers, norm, settings, cache, scratch):
    """Unit j's output column after moving its parameter (``entry``) by ``sign * h``; into ``scratch.z_new``."""
    k, j, mode = entry.k, entry.j, entry.mode
    gamma, beta, h, relu = norm.gamma, norm.beta, settings.h, settings.relu
    n_samples = scratch.z_new.shape[0]
    g = gamma[layers.b_off[k] + j]
    bt = beta[layers.b_off[k] + j]
    keep = cache.keepT[k, j]
    if mode == GAMMA or mode == BETA:
        xn = cache.XN[k, j]
        if mode == GAMMA:
            g = g + sign * h
        else:
            bt = bt + sign * h
        for b in range(n_samples):
            scratch.z_new[b] = hidden_activation(g * xn[b] + bt, relu) * keep[b]
        return
    a_row = scratch.a_row
    a = cache.AT[k, j]
    for b in range(n_samples):
        a_row[b] = a[b] + sign * h * (in_row[b] if mode == WEIGHT else 1.0)
    _normalise_row(a_row, g, bt, relu, keep, scratch.no_row, scratch.z_new)


@compiled_helper
def _loss_difference(entry, in_row, layers, norm, settings, t, cache, scratch):
    """``sum_b l_b(p+h) - l_b(p-h)`` for one parameter (``entry``, a ``Perturbed``) of unit j of hidden
    layer k."""
    _new_column(entry, 1.0, in_row, layers, norm, settings, cache, scratch)
    _perturbed_probabilities(entry, layers, norm, settings.relu, t, cache, scratch, scratch.prob_plus)
    _new_column(entry, -1.0, in_row, layers, norm, settings, cache, scratch)
    _perturbed_probabilities(entry, layers, norm, settings.relu, t, cache, scratch, scratch.prob_minus)
    total = 0.0
    for b in range(scratch.prob_plus.shape[0]):
        total -= log((scratch.prob_plus[b] + LOG_EPS) / (scratch.prob_minus[b] + LOG_EPS))
    return total


@compiled_helper
def _hidden_unit_gradient(k, j, t, layers, norm, settings, cache, grads):
    """Unit j of hidden layer k: its weight column, bias, gamma and beta entries."""
    h, weight_decay_lambda = settings.h, settings.weight_decay_lambda
    n_hidden_layers = layers.sizes.shape[0] - 2
    n_samples = cache.XT.shape[1]
    n_in = layers.sizes[k]
    n_widest = cache.AT.shape[1]
    scratch = Scratch(
        a_row=np.empty(n_samples), z_new=np.empty(n_samples), delta=np.empty(n_samples),
        cur=np.empty((n_widest, n_samples)), nxt=np.empty((n_widest, n_samples)),
        logits=np.empty((layers.sizes[n_hidden_layers + 1], n_samples)), prob_plus=np.empty(n_samples),
        prob_minus=np.empty(n_samples), row_max=np.empty(n_samples), total=np.empty(n_samples),
        no_row=np.empty(0),
    )
    to_gradient = 1.0 / n_samples / (2.0 * h)
    start = grads.W_T_off[k] + j * n_in
    grad_row = grads.W_T[start:start + n_in]
    for i in range(n_in):
        if cache.input_moves[k, i]:
            in_row = cache.XT[i] if k == 0 else cache.ZT[k - 1, i]
            # np.int64: a mode that is no literal, so one compiled _loss_difference serves every mode
            grad_row[i] = _loss_difference(Perturbed(k, j, np.int64(WEIGHT)), in_row, layers, norm, settings, t,
                                           cache, scratch) * to_gradient
        else:
            grad_row[i] = 0.0
    W = weights(layers, k)
    if weight_decay_lambda != 0.0:  # the weight decay term's move: 0.5 lambda ((w + h)**2 - (w - h)**2)
        for i in range(n_in):
            w = W[i, j]
            grad_row[i] += 0.5 * weight_decay_lambda * ((w + h) * (w + h) - (w - h) * (w - h)) * (1.0 / (2.0 * h))
    slot = layers.b_off[k] + j
    no_input = scratch.no_row
    for mode in range(BIAS, BETA + 1):  # a loop variable: the same compiled _loss_difference
        value = _loss_difference(Perturbed(k, j, mode), no_input, layers, norm, settings, t, cache, scratch) * \
            to_gradient
        if mode == BIAS:
            grads.b[slot] = value
        elif mode == GAMMA:
            grads.gamma[slot] = value
        else:
            grads.beta[slot] = value


class Normalisation(NamedTuple):
    """Every hidden layer's batch norm parameters, flat (layer k's from ``Layers.b_off[k]``)."""

    gamma: np.ndarray
    beta: np.ndarray


class BatchNormGradients(NamedTuple):
    """Where the kernel writes (hidden weights transposed and flat, as ``DeepGradients``)."""

    W_T: np.ndarray
    W_T_off: np.ndarray
    b: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray


PERTURB_TASKS, PERTURB_DONE = 1, 2
"""``hidden_units_worker``'s slots of the call's counters."""


@parallel_worker
@njit(**NJIT_OPTIONS)
def hidden_units_worker(counters, t, layers, norm, settings, cache, tasks, grads):
    """Every hidden layer's entries, one unit per task (``tasks``, a ``PerturbTasks``: the layers
    interleaved), on every thread."""
    n_tasks = tasks.layer.shape[0]
    task = take(counters, PERTURB_TASKS)
    while task < n_tasks:
        _hidden_unit_gradient(tasks.layer[task], tasks.unit[task], t, layers, norm, settings, cache, grads)
        finish(counters, PERTURB_DONE)
        task = take(counters, PERTURB_TASKS)
    wait_for(counters, PERTURB_DONE, n_tasks)


# -- the driver: buffers for one batch size, both kernels in order ---------------------------------


class BatchNormGradient:
    """The buffers of one network shape and batch size, and the calls of one gradient.

    ``keepT`` (K, N, B) is filled by the caller before ``calls`` runs: ones,
    or the dropout masks of this gradient (transposed).
    """

    def __init__(self, sizes, n_samples):
        self.sizes = tuple(int(s) for s in sizes)
        n_hidden_layers = len(sizes) - 2
        widest = max(self.sizes[1:-1])
        n_out = self.sizes[-1]
        shape = (n_hidden_layers, widest, n_samples)
        self.cache = BatchNormCache(
            XT=np.empty((self.sizes[0], n_samples)), AT=np.zeros(shape), XN=np.zeros(shape), ZT=np.zeros(shape),
            keepT=np.ones(shape), mean=np.zeros((n_hidden_layers, widest)), var=np.zeros((n_hidden_layers, widest)),
            logitsT=np.empty((n_out, n_samples)),
            input_moves=np.zeros((n_hidden_layers, max(self.sizes[:-2])), dtype=np.bool_),
        )
        self.keepT = self.cache.keepT
        self.top = forward_cache_buffers(n_samples, self.sizes[-2], n_out)
        self.tasks = PerturbTasks(*interleaved_tasks(self.sizes))
        self.output_scratch = np.empty((self.sizes[-2] + 1, n_samples))
        W_T_off, total = transposed_weight_offsets(self.sizes)
        n_units = sum(self.sizes[1:-1])
        self.grads = BatchNormGradients(W_T=np.empty(total), W_T_off=W_T_off, b=np.empty(n_units),
                                        gamma=np.empty(n_units), beta=np.empty(n_units))
        self.top_grads = top_gradients(self.sizes[-2], n_out)

    def batch_statistics(self, k):
        """Hidden layer k's batch mean and variance of the last ``calls`` (copies)."""
        n = self.sizes[k + 1]
        return self.cache.mean[k, :n].copy(), self.cache.var[k, :n].copy()

    def calls(self, x, labels, layers, gamma, beta, relu, h, weight_decay_lambda):
        """(kernel, arguments) of one gradient: the forward pass, then the hidden units' and the last
        layer's perturbations."""
        self.cache.XT[:] = x.T
        n_hidden_layers = len(self.sizes) - 2
        settings = Settings(relu=bool(relu), h=float(h), weight_decay_lambda=float(weight_decay_lambda))
        return [
            (forward_worker, (new_counters(forward_counter_slots(n_hidden_layers)), layers, gamma, beta, relu, labels,
                              self.cache, self.top)),
            (hidden_units_worker, (new_counters(), labels, layers, Normalisation(gamma, beta), settings, self.cache,
                                   self.tasks, self.grads)),
            (output_rows_worker, (new_counters(), labels, settings, layer_weights(layers, -1), self.top,
                                  self.output_scratch, self.top_grads)),
        ]
