"""The incremental numerical gradient of ``SimpleConvNet``.

Conv (F filters) - ReLU - max pool 2x2 - affine - ReLU - affine - softmax.
Every entry is the book's central difference of the book's loss; what a
perturbation moves, and so what is recomputed:

* ``W2``, ``b2`` (the first affine layer) and ``W3``, ``b3``: above the
  pooled features the network is ``fastnum.multi_layer``'s one-hidden-layer
  ReLU net, so its per-sample kernels compute these entries with the pooled
  features as the input (a weight ``W2[k, j]`` moves hidden unit j only in
  samples whose pooled feature k is nonzero, evaluated once per distinct
  feature value; a last-layer weight moves one logit).
* ``W1[f, c, i, j]`` and ``b1[f]`` (filter f): the perturbation moves only
  feature map f, at every position ``(y, x)`` by ``+-h`` times the input
  pixel under that tap (``+-h`` for the bias), and only where that pixel is
  nonzero. ``_filter_entry_gradient`` recomputes, per sample, the ReLU and
  the 2x2 maxima of map f from the cached convolution (a maximum that does
  not move passes nothing on), the hidden pre-activations moved by the
  changed pooled features times their rows of ``W2``, the hidden ReLUs,
  the logits moved by the changed hidden outputs times their rows of
  ``W3``, and the book's softmax and log.

Everything is evaluated by the book's formulas on the perturbed values
(increments added to cached sums are the same real numbers as the sums
recomputed); nothing is expanded or truncated. ``conv_forward_worker`` runs
a task per sample, the per-sample workers two more calls, ``filter_worker``
a task per filter entry, each on every thread; every task owns its entries
and sums over samples in order, so results are bitwise the same for any
number of threads.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from .._config import LOG_EPS, NJIT_OPTIONS, compiled_helper
from .._workers import launch, new_counters, parallel_worker
from ..kernels.tasks import finish, take, wait_for
from ..kernels.vecmath import exp, log
from ..multi_layer._buffers import layer_weights


class ConvCache(NamedTuple):
    """The convolution and pooling of a batch."""

    x_padded: np.ndarray
    """(B, C, H + 2 pad, W + 2 pad) the images, zero-padded."""
    conv: np.ndarray
    """(B, F, OH, OW) convolution plus bias (before ReLU)."""
    pooled: np.ndarray
    """(B, F * PH * PW) the 2x2 maxima of the ReLU'd maps, flattened as the book's Affine does."""


@compiled_helper
def _conv_of_sample(b, W1, b1, stride, cache):
    """Sample b's feature maps and their pooled maxima."""
    n_filters, n_channels, size, _ = W1.shape
    conv_h, conv_w = cache.conv.shape[2], cache.conv.shape[3]
    image = cache.x_padded[b]
    for f in range(n_filters):
        out = cache.conv[b, f]
        for y in range(conv_h):
            for x in range(conv_w):
                total = 0.0
                for c in range(n_channels):
                    for i in range(size):
                        for j in range(size):
                            total += W1[f, c, i, j] * image[c, y * stride + i, x * stride + j]
                out[y, x] = total + b1[f]
    pool_h = conv_h // 2 if conv_h >= 2 else 0
    pool_w = conv_w // 2 if conv_w >= 2 else 0
    for f in range(n_filters):
        for py in range(pool_h):
            for px in range(pool_w):
                best = 0.0  # ReLU outputs are >= 0; the window's maximum of them
                for di in range(2):
                    for dj in range(2):
                        v = cache.conv[b, f, 2 * py + di, 2 * px + dj]
                        if v > best:
                            best = v
                cache.pooled[b, (f * pool_h + py) * pool_w + px] = best


SAMPLE_TASKS, SAMPLES_DONE, FILTER_TASKS, FILTERS_DONE = 1, 2, 3, 4
"""Slots of a call's counters (``kernels.tasks``)."""


@parallel_worker
@njit(**NJIT_OPTIONS)
def conv_forward_worker(counters, W1, b1, stride, cache):
    """The convolution and pooling of every sample, one sample a task, on every thread."""
    n_samples = cache.conv.shape[0]
    b = take(counters, SAMPLE_TASKS)
    while b < n_samples:
        _conv_of_sample(b, W1, b1, stride, cache)
        finish(counters, SAMPLES_DONE)
        b = take(counters, SAMPLE_TASKS)
    wait_for(counters, SAMPLES_DONE, n_samples)


class FilterEntry(NamedTuple):
    """One perturbed entry: ``W1[f, c, i, j]``, or ``b1[f]`` when ``is_bias``."""

    f: int
    c: int
    i: int
    j: int
    is_bias: bool


class LayersAbove(NamedTuple):
    """What a filter's move passes through: the convolution's stride, then the two affine layers."""

    stride: int
    W2: np.ndarray
    """(F * PH * PW, H) pooled features to hidden units."""
    W3: np.ndarray
    """(H, O) hidden units to logits."""


class FilterScratch(NamedTuple):
    """One thread's scratch: the pooled features a move changed, by how much, and what follows."""

    changed: np.ndarray
    changed_value: np.ndarray
    hidden_move: np.ndarray
    logits: np.ndarray


class FilterGradients(NamedTuple):
    """Where ``filter_worker`` writes: the gradients of ``W1`` and ``b1``."""

    W1: np.ndarray
    b1: np.ndarray


@compiled_helper
def _perturbed_probability(b, entry, step, target, above, cache, top, scratch):
    """Sample b's softmax probability of its label with ``entry`` (a ``FilterEntry``) moved by ``step``.

    Returns -1.0 when nothing moved (the caller then knows the difference is 0).
    """
    conv_h, conv_w = cache.conv.shape[2], cache.conv.shape[3]
    pool_h = conv_h // 2
    pool_w = conv_w // 2
    f, i, j, stride = entry.f, entry.i, entry.j, above.stride
    image = cache.x_padded[b, entry.c]
    changed, changed_value = scratch.changed, scratch.changed_value
    n_changed = 0
    for py in range(pool_h):
        for px in range(pool_w):
            best = 0.0
            for di in range(2):
                for dj in range(2):
                    y = 2 * py + di
                    x = 2 * px + dj
                    tap = 1.0 if entry.is_bias else image[y * stride + i, x * stride + j]
                    v = cache.conv[b, f, y, x] + step * tap
                    if v > best:
                        best = v
            k = (f * pool_h + py) * pool_w + px
            move = best - cache.pooled[b, k]
            if move != 0.0:
                changed[n_changed] = k
                changed_value[n_changed] = move
                n_changed += 1
    if n_changed == 0:
        return -1.0
    W2, W3 = above.W2, above.W3
    hidden_move, logits = scratch.hidden_move, scratch.logits
    n_hidden = W2.shape[1]
    for u in range(n_hidden):
        hidden_move[u] = 0.0
    for q in range(n_changed):
        row = W2[changed[q]]
        move = changed_value[q]
        for u in range(n_hidden):
            hidden_move[u] += move * row[u]
    n_out = W3.shape[1]
    for o in range(n_out):
        logits[o] = top.a2[b, o]
    for u in range(n_hidden):
        a = top.a1[b, u] + hidden_move[u]
        dz = (a if a > 0.0 else 0.0) - top.z1[b, u]
        if dz != 0.0:
            for o in range(n_out):
                logits[o] += dz * W3[u, o]
    row_max = logits[0]
    for o in range(1, n_out):
        row_max = max(row_max, logits[o])
    total = 0.0
    for o in range(n_out):
        total += exp(logits[o] - row_max)
    return exp(logits[target] - row_max) / total


@compiled_helper
def _filter_entry_gradient(entry, t, h, above, cache, top, scratch):
    """``(L(p+h) - L(p-h)) / (2h)`` for ``entry`` (a ``FilterEntry``)."""
    n_samples = cache.conv.shape[0]
    total = 0.0
    for b in range(n_samples):
        y_plus = _perturbed_probability(b, entry, h, t[b], above, cache, top, scratch)
        y_minus = _perturbed_probability(b, entry, -h, t[b], above, cache, top, scratch)
        if y_plus < 0.0 and y_minus < 0.0:
            continue  # neither perturbation moved a pooled feature of this sample
        unmoved = top.target_exp[b] / (top.sum_without_T[t[b], b] + top.target_exp[b])
        y_plus = unmoved if y_plus < 0.0 else y_plus
        y_minus = unmoved if y_minus < 0.0 else y_minus
        total -= log((y_plus + LOG_EPS) / (y_minus + LOG_EPS))
    return total / n_samples / (2.0 * h)


@compiled_helper
def _filter_task(task, t, h, above, cache, top, scratch, grads):
    """Task ``task``: one entry of W1 (flat index), or ``b1[task - W1.size]``.

    (One call of ``_filter_entry_gradient`` with computed arguments: constants at
    two call sites would make numba compile it once for each.)
    """
    n_filters, n_channels, size, _ = grads.W1.shape
    is_bias = task >= grads.W1.size
    index = task - grads.W1.size if is_bias else task
    f = index if is_bias else index // (n_channels * size * size)
    rest = 0 if is_bias else index % (n_channels * size * size)
    entry = FilterEntry(f, rest // (size * size), (rest // size) % size, rest % size, is_bias)
    gradient = _filter_entry_gradient(entry, t, h, above, cache, top, scratch)
    if is_bias:
        grads.b1[f] = gradient
    else:
        grads.W1[entry.f, entry.c, entry.i, entry.j] = gradient


@parallel_worker
@njit(**NJIT_OPTIONS)
def filter_worker(counters, t, h, above, cache, top, grads):
    """The gradient of every filter weight and bias (``grads``, a ``FilterGradients``), one a task, on
    every thread (scratch of its own)."""
    W2, W3 = above.W2, above.W3
    scratch = FilterScratch(changed=np.empty(cache.pooled.shape[1], dtype=np.int64),
                            changed_value=np.empty(cache.pooled.shape[1]), hidden_move=np.empty(W2.shape[1]),
                            logits=np.empty(W3.shape[1]))
    n_tasks = grads.W1.size + grads.W1.shape[0]
    task = take(counters, FILTER_TASKS)
    while task < n_tasks:
        _filter_task(task, t, h, above, cache, top, scratch, grads)
        finish(counters, FILTERS_DONE)
        task = take(counters, FILTER_TASKS)
    wait_for(counters, FILTERS_DONE, n_tasks)


# -- the driver ---------------------------------------------------------------------------------------


class ConvNetGradient:
    """The buffers of one ``SimpleConvNet`` shape and batch size, and the calls of one gradient."""

    def __init__(self, shape, n_hidden, n_out, n_samples):
        from ..multi_layer._numgrad_per_sample import PerSampleGradient

        self.shape = shape
        self.cache = ConvCache(
            x_padded=np.zeros((n_samples, shape.channels, shape.height + 2 * shape.pad, shape.width + 2 * shape.pad)),
            conv=np.empty((n_samples, shape.filters, shape.conv_h, shape.conv_w)),
            pooled=np.empty((n_samples, shape.pooled_size)),
        )
        self.dense = PerSampleGradient((shape.pooled_size, n_hidden, n_out), n_samples)
        self.grads = FilterGradients(W1=np.empty((shape.filters, shape.channels, shape.filter_size, shape.filter_size)),
                                     b1=np.empty(shape.filters))

    def calls(self, x, labels, W1, b1, dense_layers, h):
        """(kernel, arguments) of one gradient: the convolution, the dense part (per-sample workers),
        then the filters. ``x`` is copied into the padded images here."""
        pad = self.shape.pad
        self.cache.x_padded[:, :, pad:pad + self.shape.height, pad:pad + self.shape.width] = x
        calls = [(conv_forward_worker, (new_counters(), W1, b1, self.shape.stride, self.cache))]
        calls += self.dense.calls(self.cache.pooled, labels, dense_layers, True, h, 0.0)
        above = LayersAbove(stride=int(self.shape.stride), W2=layer_weights(dense_layers, 0),
                            W3=layer_weights(dense_layers, 1))
        calls.append((filter_worker, (new_counters(), labels, h, above, self.cache, self.dense.top, self.grads)))
        return calls

    def run(self, x, labels, W1, b1, dense_layers, h):
        """Every entry: the calls of ``calls``, in order."""
        for call in self.calls(x, labels, W1, b1, dense_layers, h):
            launch(*call)
