"""The book's numerical gradient, compiled: every perturbation re-evaluates the
whole forward pass and loss.

For each parameter the book sets ``p + h``, evaluates the loss, sets
``p - h``, evaluates the loss, restores ``p`` and stores
``(L(p+h) - L(p-h)) / (2h)``. Here ``LANES`` (8) such perturbed networks are
evaluated side by side: the ``+h`` and ``-h`` networks of four neighbouring
parameters of one row of W1, b1, W2 or b2 (a "group"). Every buffer of the
forward pass has one lane per network (``a1[c, l]`` is hidden unit c of
network l), so one vector instruction (``kernels.lanes``) advances all eight
networks by the same step of their own passes. Each network still does every
multiply-add, activation, exponential and logarithm of its own whole forward
pass and loss over the batch, from its own parameters, in the book's order;
nothing is carried from one perturbation to another (that is
``method="incremental"``).

Why this is faster than one network at a time (about 150 us a pass on one
core before, about 56 us now): a 50-wide row of one network leaves vector
remainders at every step and pulls W1's rows from the L2 cache for every
perturbation; eight lanes fill a vector exactly, and the rows of W1 are read
once per group. The hidden layer now runs at the core's multiply-add
throughput (about 38 us of the 56).

Products are fused multiply-adds (one rounding instead of two, still the
book's sums in input order). Zero pixels are skipped: ``0 * w`` adds nothing
to a sum. Every group is computed on its own, so the result does not depend
on the number of threads.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .._config import LOG_EPS, NJIT_OPTIONS, compiled_helper
from .._workers import parallel_worker
from ..kernels.activations import hidden_activation, nonzero_pixels
from ..kernels.lanes import LANES, fma_lanes, max_lanes
from ..kernels.tasks import finish, take, wait_for
from ..kernels.vecmath import exp

W1_ID, B1_ID, W2_ID, B2_ID = 0, 1, 2, 3
"""Which parameter array a group perturbs (column 0 of ``parameter_groups``)."""


class LaneBuffers(NamedTuple):
    """One slice's buffers: column ``l`` belongs to the perturbed network of lane ``l``."""

    W1_row: np.ndarray  # (H, LANES): the group's row of W1 in each network (a W1 group only)
    b1: np.ndarray  # (H, LANES)
    W2_row: np.ndarray  # (O, LANES): the group's row of W2 in each network (a W2 group only)
    b2: np.ndarray  # (O, LANES)
    a1: np.ndarray  # (H, LANES): hidden pre-activations, then activations
    a2: np.ndarray  # (O, LANES): logits, then exp(logit - row max)
    row_max: np.ndarray  # (LANES,)
    exp_sum: np.ndarray  # (LANES,)
    loss_sum: np.ndarray  # (LANES,): sum over the batch of each network's per-sample loss


VECTOR_ALIGNMENT = 64
"""Bytes: every lane row starts on a cache line (numba aligns arrays to 32 bytes only, and an
AVX-512 load or store that straddles two lines costs two)."""


@njit(**NJIT_OPTIONS)
def lane_buffers(n_hidden, n_out):
    """Fresh ``LaneBuffers`` for a net of ``n_hidden`` hidden units and ``n_out`` outputs,
    carved from one block so that every lane row is ``VECTOR_ALIGNMENT``-aligned."""
    n_rows = 3 * n_hidden + 3 * n_out + 3
    per_line = VECTOR_ALIGNMENT // 8
    block = np.empty(n_rows * LANES + per_line)
    skip = (-(block.ctypes.data % VECTOR_ALIGNMENT) % VECTOR_ALIGNMENT) // 8
    rows_of = block[skip:skip + n_rows * LANES].reshape((n_rows, LANES))
    return LaneBuffers(
        W1_row=rows_of[:n_hidden], b1=rows_of[n_hidden:2 * n_hidden], a1=rows_of[2 * n_hidden:3 * n_hidden],
        W2_row=rows_of[3 * n_hidden:3 * n_hidden + n_out], b2=rows_of[3 * n_hidden + n_out:3 * n_hidden + 2 * n_out],
        a2=rows_of[3 * n_hidden + 2 * n_out:3 * n_hidden + 3 * n_out],
        row_max=rows_of[n_rows - 3], exp_sum=rows_of[n_rows - 2], loss_sum=rows_of[n_rows - 1],
    )


@njit(**NJIT_OPTIONS)
def parameter_groups(n_in, n_hidden, n_out):
    """Groups of at most ``LANES // 2`` neighbouring parameters within one row.

    Returns an (n_groups, 4) int64 array of rows (array id, row, first column,
    count), in the book's order: W1, b1, W2, b2, each row-major.
    """
    per_group = LANES // 2
    shapes = ((n_in, n_hidden), (1, n_hidden), (n_hidden, n_out), (1, n_out))
    n_groups = 0
    for rows, cols in shapes:
        n_groups += rows * ((cols + per_group - 1) // per_group)
    groups = np.empty((n_groups, 4), dtype=np.int64)
    g = 0
    for array_id in range(4):
        rows, cols = shapes[array_id]
        for row in range(rows):
            for col in range(0, cols, per_group):
                count = min(per_group, cols - col)
                groups[g, 0] = array_id
                groups[g, 1] = row
                groups[g, 2] = col
                groups[g, 3] = count
                g += 1
    return groups


@compiled_helper(inline="always")
def _copy_to_lanes(source, target):
    """``target[c, l] = source[c]`` for every lane: the unperturbed values."""
    for c in range(source.shape[0]):
        value = source[c]
        for lane in range(target.shape[1]):
            target[c, lane] = value


class PixelLists(NamedTuple):
    """Per sample its nonzero pixels, listed once (scratch of ``full_worker``)."""

    nonzero_idx: np.ndarray
    """(B, n_in) the nonzero pixels' indices, first ``n_nonzero[b]`` of each row."""
    n_nonzero: np.ndarray
    """(B,)"""
    pixel_position: np.ndarray
    """(B, n_in) where each pixel sits in its row's list (``n_nonzero[b]`` for a zero pixel)."""


@compiled_helper
def set_lane_parameters(group, params, h, lanes):
    """Each lane's copy of the parameters a group can touch; lanes 2q and 2q+1 of the
    group's q-th parameter hold ``p + h`` and ``p - h``, as the book sets them."""
    array_id, row, col0, count = group[0], group[1], group[2], group[3]
    W1, b1, W2, b2 = params.W1, params.b1, params.W2, params.b2
    _copy_to_lanes(b1, lanes.b1)
    _copy_to_lanes(b2, lanes.b2)
    if array_id == W1_ID:
        _copy_to_lanes(W1[row], lanes.W1_row)
        target, source = lanes.W1_row, W1[row]
    elif array_id == B1_ID:
        target, source = lanes.b1, b1
    elif array_id == W2_ID:
        _copy_to_lanes(W2[row], lanes.W2_row)
        target, source = lanes.W2_row, W2[row]
    else:
        target, source = lanes.b2, b2
    for q in range(count):
        original = source[col0 + q]
        target[col0 + q, 2 * q] = original + h
        target[col0 + q, 2 * q + 1] = original - h


@compiled_helper(inline="always")
def _accumulate_shared_rows(x_row, nonzero_idx, start, stop, W1, a1):
    """``a1[c] += x_row[i] * W1[i, c]`` in every lane for the listed pixels ``start:stop``,
    in order: rows no lane perturbs.

    Four pixels per pass over ``a1``: each lane still adds its products in
    pixel order, and the four products stay in registers between them.
    """
    n_hidden = a1.shape[0]
    p = start
    while p + 4 <= stop:
        i0 = nonzero_idx[p]
        i1 = nonzero_idx[p + 1]
        i2 = nonzero_idx[p + 2]
        i3 = nonzero_idx[p + 3]
        x0 = np.float64(x_row[i0])  # float32 images widen exactly
        x1 = np.float64(x_row[i1])
        x2 = np.float64(x_row[i2])
        x3 = np.float64(x_row[i3])
        for c in range(n_hidden):
            acc = a1[c]
            fma_lanes(acc, x0, W1[i0, c])
            fma_lanes(acc, x1, W1[i1, c])
            fma_lanes(acc, x2, W1[i2, c])
            fma_lanes(acc, x3, W1[i3, c])
        p += 4
    while p < stop:
        i = nonzero_idx[p]
        xi = np.float64(x_row[i])
        for c in range(n_hidden):
            fma_lanes(a1[c], xi, W1[i, c])
        p += 1


@compiled_helper(inline="always")
def _add_lane_losses(x_row, nonzero_idx, n_nonzero, lane_pixel, target, W1, W2, w2_row, relu, lanes):
    """Every lane's forward pass and loss of one sample, added to ``lanes.loss_sum``.

    ``lane_pixel`` is the position of the perturbed W1 row among the sample's
    listed pixels (``n_nonzero`` when the group is not in W1 or that pixel is
    zero); ``w2_row`` the perturbed row of W2 (-1: none).
    """
    a1, a2 = lanes.a1, lanes.a2
    n_hidden, n_out = W2.shape
    n_lanes = lanes.loss_sum.shape[0]  # LANES, read at run time: LLVM vectorises the loop instead of unrolling it
    # a1 = x @ W1 + b1, the perturbed row in its place in pixel order; z1 = activation(a1)
    a1[:, :] = 0.0
    _accumulate_shared_rows(x_row, nonzero_idx, 0, lane_pixel, W1, a1)
    if lane_pixel < n_nonzero:
        xi = np.float64(x_row[nonzero_idx[lane_pixel]])
        for c in range(n_hidden):
            fma_lanes(a1[c], xi, lanes.W1_row[c])
        _accumulate_shared_rows(x_row, nonzero_idx, lane_pixel + 1, n_nonzero, W1, a1)
    a1_flat, b1_flat = a1.reshape(-1), lanes.b1.reshape(-1)
    for k in range(a1_flat.shape[0]):
        a1_flat[k] = hidden_activation(a1_flat[k] + b1_flat[k], relu)
    # a2 = z1 @ W2 + b2
    a2[:, :] = 0.0
    for j in range(n_hidden):
        if j == w2_row:
            for c in range(n_out):
                fma_lanes(a2[c], a1[j], lanes.W2_row[c])
        else:
            for c in range(n_out):
                fma_lanes(a2[c], a1[j], W2[j, c])
    a2_flat, b2_flat = a2.reshape(-1), lanes.b2.reshape(-1)
    for k in range(a2_flat.shape[0]):
        a2_flat[k] += b2_flat[k]
    # -log(softmax(a2)[target] + 1e-7), the row max subtracted
    row_max, exp_sum, loss_sum = lanes.row_max, lanes.exp_sum, lanes.loss_sum
    first_row = a2[0]
    for lane in range(n_lanes):  # a loop, not row_max[:] = a2[0]: numba's array-to-slice copy
        row_max[lane] = first_row[lane]  # compiles its shape-mismatch message (about 3.5 s, strings)
    for c in range(1, n_out):
        max_lanes(row_max, a2[c])
    exp_sum[:] = 0.0
    for c in range(n_out):
        shifted = a2[c]
        for lane in range(n_lanes):
            shifted[lane] = exp(shifted[lane] - row_max[lane])
        fma_lanes(exp_sum, shifted, 1.0)  # exp_sum += shifted: times 1.0, one rounding, the same sum
    for lane in range(n_lanes):
        # libm's log: one per network and sample, and the vectorised one adds a second to compiling
        loss_sum[lane] -= math.log(a2[target, lane] / exp_sum[lane] + LOG_EPS)


@compiled_helper
def group_gradient(group, x, t, pixels, params, relu, h, lanes, grads):
    """The gradient entries of one group: each lane's loss over the batch from whole forward passes
    (``grads``: the four gradients as 2D arrays, indexed by the group's array)."""
    array_id, row, col0, count = group[0], group[1], group[2], group[3]
    n_samples = x.shape[0]
    nonzero_idx, n_nonzero, pixel_position = pixels.nonzero_idx, pixels.n_nonzero, pixels.pixel_position
    W1, W2 = params.W1, params.W2
    set_lane_parameters(group, params, h, lanes)
    w1_row = row if array_id == W1_ID else -1
    w2_row = row if array_id == W2_ID else -1
    lanes.loss_sum[:] = 0.0
    for b in range(n_samples):
        lane_pixel = pixel_position[b, w1_row] if w1_row >= 0 else n_nonzero[b]
        _add_lane_losses(x[b], nonzero_idx[b], n_nonzero[b], lane_pixel, t[b], W1, W2, w2_row, relu, lanes)
    grad = grads[array_id]
    first = row * grad.shape[1] + col0
    for q in range(count):
        loss_plus = lanes.loss_sum[2 * q] / n_samples
        loss_minus = lanes.loss_sum[2 * q + 1] / n_samples
        grad.flat[first + q] = (loss_plus - loss_minus) / (2.0 * h)


SAMPLE_TASKS, SAMPLES_DONE, GROUP_TASKS, GROUPS_DONE = 1, 2, 3, 4
"""Slots of a call's counters (``kernels.tasks``)."""


@compiled_helper
def _list_nonzero_pixels(b, x, pixels):
    """Sample b's nonzero pixels, listed once, and where each pixel sits in that list."""
    nonzero_idx, n_nonzero, pixel_position = pixels.nonzero_idx, pixels.n_nonzero, pixels.pixel_position
    n_nonzero[b] = nonzero_pixels(x[b], nonzero_idx[b])
    for i in range(pixel_position.shape[1]):  # every pixel not listed: past the list's end
        pixel_position[b, i] = n_nonzero[b]
    for p in range(n_nonzero[b]):
        pixel_position[b, nonzero_idx[b, p]] = p


@parallel_worker
@njit(**NJIT_OPTIONS)
def full_worker(counters, x, t, params, relu, h, groups, pixels, grads):
    """Numerical gradient of the book's loss, every perturbed loss from a whole forward pass, on every
    thread.

    Writes ``grads`` (a ``Gradients``, shaped like ``params``, a
    ``TwoLayerParams``). First each sample's nonzero pixels (``pixels``, a
    ``PixelLists``), then the parameter ``groups`` (``parameter_groups``) one
    at a time, each thread with lane buffers of its own.
    """
    n_samples = x.shape[0]
    n_hidden, n_out = params.W2.shape
    by_array = (grads.W1, grads.b1.reshape((1, n_hidden)), grads.W2, grads.b2.reshape((1, n_out)))
    b = take(counters, SAMPLE_TASKS)
    while b < n_samples:
        _list_nonzero_pixels(b, x, pixels)
        finish(counters, SAMPLES_DONE)
        b = take(counters, SAMPLE_TASKS)
    wait_for(counters, SAMPLES_DONE, n_samples)
    n_groups = groups.shape[0]
    lanes = lane_buffers(n_hidden, n_out)
    g = take(counters, GROUP_TASKS)
    while g < n_groups:
        group_gradient(groups[g], x, t, pixels, params, relu, h, lanes, by_array)
        finish(counters, GROUPS_DONE)
        g = take(counters, GROUP_TASKS)
    wait_for(counters, GROUPS_DONE, n_groups)
