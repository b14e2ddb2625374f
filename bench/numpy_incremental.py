"""Contender 2: the incremental mathematics in the best plain numpy (no numba).

The same function values as ``TwoLayerNet.numerical_gradient(method="incremental")``:
perturbed losses evaluated from the cached forward pass, one per (sample,
distinct pixel value, hidden unit) for W1 and b1 and one per (sample, hidden
unit, class) for W2 and b2, each the book's formula on the perturbed values
(new hidden activation, new logits, softmax with the new row maximum
subtracted, ``-log(y_t + 1e-7)``). Written the way a strong numpy user would:
everything vectorised over samples, values and parameters in (chunks of)
large arrays, numpy's SIMD ``exp``/``log``, ``bincount`` for the scatter.
This separates what the algorithm buys from what compilation buys.
"""

import numpy as np

from fastnum._config import LOG_EPS, H

CHUNK_ELEMENTS = 1 << 21  # keep each (pairs, units, classes) temporary near 16 MB


def _activation(a, relu):
    return np.maximum(0, a) if relu else 1 / (1 + np.exp(-a))


def _target_prob(logits, target_index):
    """softmax(logits)[..., target] over the last axis, the row max subtracted."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return np.take_along_axis(e, target_index, axis=-1)[..., 0] / e.sum(axis=-1)


def numerical_gradient(params, x, t, relu=False):
    W1, b1, W2, b2 = (np.asarray(params[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t)
    t = t.argmax(axis=1) if t.ndim == 2 else t.astype(np.int64)
    n_samples, n_in = x.shape
    n_hidden, n_out = W2.shape
    a1 = x @ W1 + b1
    z1 = _activation(a1, relu)
    a2 = z1 @ W2 + b2
    to_gradient = 1.0 / n_samples / (2 * H)

    # distinct (sample, value) pairs over the nonzero pixels, plus a value-1 "pixel" per sample (bias)
    nz_b, nz_i = np.nonzero(x)
    pair_b = np.concatenate([nz_b, np.arange(n_samples)])
    pair_v = np.concatenate([x[nz_b, nz_i], np.ones(n_samples)])
    keys = np.stack([pair_b.astype(np.float64), pair_v])
    (unique_b, unique_v), inverse = np.unique(keys, axis=1, return_inverse=True)
    unique_b = unique_b.astype(np.int64)
    inverse = inverse.reshape(-1)
    pixel_pair, bias_pair = inverse[: nz_b.size], inverse[nz_b.size:]

    # W1 and b1: loss difference per (pair, hidden unit), in chunks of pairs
    n_pairs = unique_b.size
    diff = np.empty((n_pairs, n_hidden))
    chunk = max(1, CHUNK_ELEMENTS // (n_hidden * n_out))
    for start in range(0, n_pairs, chunk):
        sl = slice(start, start + chunk)
        b = unique_b[sl]
        a = a1[b]
        z = z1[b]
        d = H * unique_v[sl, None]
        target = t[b][:, None, None]
        y = []
        for sign in (1.0, -1.0):
            dz = _activation(a + sign * d, relu) - z
            logits = a2[b][:, None, :] + dz[:, :, None] * W2[None, :, :]
            y.append(_target_prob(logits, np.broadcast_to(target, logits.shape[:2] + (1,))))
        diff[sl] = -np.log((y[0] + LOG_EPS) / (y[1] + LOG_EPS))
    grad_W1 = np.empty((n_in, n_hidden))
    per_pixel = diff[pixel_pair]
    for j in range(n_hidden):
        grad_W1[:, j] = np.bincount(nz_i, weights=per_pixel[:, j], minlength=n_in)
    grad_W1 *= to_gradient
    grad_b1 = diff[bias_pair].sum(axis=0) * to_gradient

    # W2 and b2: logit k of sample b moves by +-h * z1[b, j] (or +-h): all (b, j, k) at once
    z_ext = np.concatenate([z1, np.ones((n_samples, 1))], axis=1)  # the bias as unit H
    eye = np.eye(n_out)
    target = np.broadcast_to(t[:, None, None, None], (n_samples, n_hidden + 1, n_out, 1))
    y = []
    for sign in (1.0, -1.0):
        moved = a2[:, None, None, :] + sign * H * z_ext[:, :, None, None] * eye[None, None, :, :]
        y.append(_target_prob(moved, target))
    diff_out = -np.log((y[0] + LOG_EPS) / (y[1] + LOG_EPS)).sum(axis=0) * to_gradient
    return {"W1": grad_W1, "b1": grad_b1, "W2": diff_out[:n_hidden], "b2": diff_out[n_hidden]}
