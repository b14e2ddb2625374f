"""The two-layer net's pass over samples: the forward pass, then per sample what the call needs.

Every number here is what the book's ``TwoLayerNet.predict`` and
``cross_entropy_error`` compute, in float64:

    a1 = x @ W1 + b1,  z1 = sigmoid(a1) (or relu),  a2 = z1 @ W2 + b2,
    y = softmax(a2) with the row max subtracted,
    loss = -sum_b log(y[b, t_b] + 1e-7) / B.

The product ``x @ W1`` skips zero pixels: ``0 * w`` adds nothing to a sum,
and about 80% of MNIST pixels are zero. The nonzero pixels of a sample are
listed first, without branches (``nonzero_pixels``), and the product runs
over that list.

Two workers: ``sample_pass_worker`` runs the forward pass of each sample
and then, by ``mode``, nothing more (``FORWARD``: the scores), the book's
per-sample loss (``LOSSES``) or the softmax (``PROBABILITIES``:
``predict``, ``accuracy``): one compiled function for ``loss``,
``accuracy``, ``predict`` and backprop's forward pass. ``gradient_caches_worker``
runs it for what the incremental numerical gradient starts from
(``GRADIENT_CACHES``: the sample's distinct pixel values and the caches of
``kernels.perturbed_losses``). Two kernels rather than one with every mode:
a first numerical gradient compiles this one beside the perturbation
kernel, and backprop and the evaluations never compile the distinct values
and caches (measured alone, each in a fresh process: 4.9 s for the kernel
with every mode, against 2.2 to 3.5 s and 4.5 to 4.8 s apart).
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .._config import LOG_EPS, NJIT_OPTIONS, H, compiled_helper
from .._workers import new_counters, parallel_worker, run_parallel
from ..kernels.activations import affine_row_sparse, hidden_activation, nonzero_pixels
from ..kernels.distinct_values import _distinct_values_into
from ..kernels.perturbed_losses import _sample_caches
from ..kernels.tasks import finish, take, wait_for
from ..kernels.vecmath import exp

FORWARD, LOSSES, PROBABILITIES, GRADIENT_CACHES = 0, 1, 2, 3
"""What ``sample_pass_worker`` computes per sample after its forward pass."""

TASKS, DONE = 1, 2
"""``sample_pass_worker``'s slots of the call's counters (``kernels.tasks``)."""

SAMPLES_PER_TASK = 4
"""Samples per task of the forward-only modes (one scratch list of pixels each)."""


class Activations(NamedTuple):
    """The forward pass of a batch: what ``sample_pass_worker`` writes and backprop reads."""

    a1: np.ndarray
    """(B, H) hidden pre-activations."""
    z1: np.ndarray
    """(B, H) hidden activations."""
    a2: np.ndarray
    """(B, O) logits."""


class TwoLayerParams(NamedTuple):
    """The parameters, as the book's ``params`` holds them."""

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray


@compiled_helper
def forward_row_sparse(x_row, nonzero_idx, n_nonzero, params, relu, a1_row, z1_row, a2_row):
    """Forward pass of one sample whose nonzero pixels are ``nonzero_idx[:n_nonzero]``."""
    W1, b1, W2, b2 = params.W1, params.b1, params.W2, params.b2
    n_hidden = W1.shape[1]
    n_out = W2.shape[1]
    affine_row_sparse(x_row, nonzero_idx, n_nonzero, W1, b1, a1_row)
    for j in range(n_hidden):
        z1_row[j] = hidden_activation(a1_row[j], relu)
    for k in range(n_out):
        a2_row[k] = 0.0
    for j in range(n_hidden):
        zj = z1_row[j]
        for k in range(n_out):
            a2_row[k] += zj * W2[j, k]
    for k in range(n_out):
        a2_row[k] += b2[k]


@compiled_helper
def _scores_to_output(mode, a2_row, target, out_row):
    """``LOSSES``: ``out_row[0] = -log(softmax(a2_row)[target] + 1e-7)``, the book's per-sample loss;
    ``PROBABILITIES``: ``out_row`` = the softmax of ``a2_row`` (row max subtracted)."""
    n_out = a2_row.shape[0]
    row_max = a2_row[0]
    for k in range(1, n_out):
        if a2_row[k] > row_max:
            row_max = a2_row[k]
    if mode == PROBABILITIES:
        total = 0.0
        for k in range(n_out):
            out_row[k] = exp(a2_row[k] - row_max)
            total += out_row[k]
        for k in range(n_out):
            out_row[k] = out_row[k] / total
        return
    total = 0.0
    for k in range(n_out):
        total += exp(a2_row[k] - row_max)
    out_row[0] = -math.log(exp(a2_row[target] - row_max) / total + LOG_EPS)


@parallel_worker
@njit(**NJIT_OPTIONS)
def sample_pass_worker(counters, mode, x, t, params, relu, fw, out):
    """Per sample, on every thread (``fastnum._workers.run_parallel``): the forward pass into ``fw``
    (``Activations``), then what ``mode`` asks for.

    ``out`` is (B, O): ``LOSSES`` writes each sample's loss into column 0,
    ``PROBABILITIES`` the softmax. ``t`` is read by ``LOSSES``.
    """
    n_samples = x.shape[0]
    n_tasks = (n_samples + SAMPLES_PER_TASK - 1) // SAMPLES_PER_TASK
    nonzero_idx = np.empty(x.shape[1], dtype=np.int64)
    task = take(counters, TASKS)
    while task < n_tasks:
        for b in range(task * SAMPLES_PER_TASK, min(n_samples, (task + 1) * SAMPLES_PER_TASK)):
            n_nonzero = nonzero_pixels(x[b], nonzero_idx)
            forward_row_sparse(x[b], nonzero_idx, n_nonzero, params, relu, fw.a1[b], fw.z1[b], fw.a2[b])
            if mode != FORWARD:
                _scores_to_output(mode, fw.a2[b], t[b] if mode == LOSSES else 0, out[b])
        finish(counters, DONE)
        task = take(counters, TASKS)
    wait_for(counters, DONE, n_tasks)


@parallel_worker
@njit(**NJIT_OPTIONS)
def gradient_caches_worker(counters, x, t, params, relu, h, fw, dv):
    """Per sample, on every thread: its distinct pixel values (``dv``, see
    ``_distinct_values_of_sample``), the forward pass over its nonzero pixels,
    and the caches of ``fw`` the incremental numerical gradient reads."""
    n_samples = x.shape[0]
    b = take(counters, TASKS)
    while b < n_samples:
        _distinct_values_into(b, x[b], h, dv)
        forward_row_sparse(x[b], dv.nonzero_idx[b], dv.n_nonzero[b], params, relu, fw.a1[b], fw.z1[b], fw.a2[b])
        _sample_caches(b, t[b], fw)
        finish(counters, DONE)
        b = take(counters, TASKS)
    wait_for(counters, DONE, n_samples)


NO_LABELS = np.empty(0, dtype=np.int64)
"""``t`` of the modes that read no label."""
NO_OUTPUT = np.empty((0, 0))
"""``out`` of the modes that write none."""


def sample_pass_call(mode, x, t, params, relu, fw, dv=None, out=NO_OUTPUT):
    """The (worker, arguments) of one pass: ``gradient_caches_worker`` for ``GRADIENT_CACHES`` (into ``fw``,
    a ``ForwardCache``, and ``dv``), else ``sample_pass_worker`` (into ``fw``, ``Activations``, and ``out``)."""
    labels = NO_LABELS if t is None else t
    if mode == GRADIENT_CACHES:
        return gradient_caches_worker, (new_counters(), x, labels, TwoLayerParams(*params), relu, H, fw, dv)
    return sample_pass_worker, (new_counters(), mode, x, labels, TwoLayerParams(*params), relu, fw, out)


EVAL_CHUNK_ROWS = 4096
"""Samples per pass in ``predicted_labels``: its buffers stay a few MB for any data set."""


def predicted_labels(x, W1, b1, W2, b2, relu):
    """The book's ``argmax(predict(x), axis=1)`` for every sample of ``x``.

    Runs ``sample_pass_worker`` (``PROBABILITIES``, on every thread) on chunks
    of ``EVAL_CHUNK_ROWS`` samples, so nothing of size (N, H) is allocated for
    a whole data set. The argmax is numpy's, over the softmax probabilities,
    not the logits: two logits whose probabilities round to the same value
    tie exactly as they do in the book (first index wins).
    """
    n_samples = x.shape[0]
    rows = min(n_samples, EVAL_CHUNK_ROWS)
    a1 = np.empty((rows, W1.shape[1]))
    z1 = np.empty((rows, W1.shape[1]))
    a2 = np.empty((rows, W2.shape[1]))
    y = np.empty((rows, W2.shape[1]))
    labels = np.empty(n_samples, dtype=np.int64)
    for start in range(0, n_samples, rows):
        stop = min(n_samples, start + rows)
        m = stop - start
        fw = Activations(a1[:m], z1[:m], a2[:m])
        run_parallel(*sample_pass_call(PROBABILITIES, x[start:stop], None, (W1, b1, W2, b2), relu, fw, out=y[:m]))
        labels[start:stop] = np.argmax(y[:m], axis=1)
    return labels
