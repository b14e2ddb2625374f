"""The book's ``SimpleConvNet`` in plain numpy, written for the tests.

Convolution as the sum over each output position's window of filter
times pixels (all windows at once, as the book's im2col product, so it costs
what the book's code costs); pooling as the maximum of each 2x2 window
(ties: the first maximum in the window's row-major order, as ``np.argmax``);
then the affine layers. A statement of ``ch07/simple_convnet.py`` and
``common/layers.py``'s semantics, not a copy.
"""

import numpy as np

from references.naive import central_differences

LOG_EPS = 1e-7


def conv(x, W, b, stride, pad):
    n, channels, height, width = x.shape
    n_filters, _, size, _ = W.shape
    padded = np.zeros((n, channels, height + 2 * pad, width + 2 * pad))
    padded[:, :, pad:pad + height, pad:pad + width] = x
    out_h = 1 + (height + 2 * pad - size) // stride
    out_w = 1 + (width + 2 * pad - size) // stride
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride][:, :, :out_h, :out_w]  # (n, C, out_h, out_w, size, size)
    col = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_h * out_w, -1)
    out = (col @ W.reshape(n_filters, -1).T + b).reshape(n, out_h, out_w, n_filters)
    return out.transpose(0, 3, 1, 2)


def max_pool(a):
    """2x2 windows, stride 2; returns (maxima, index of the first maximum in each window)."""
    n, channels, height, width = a.shape
    out_h, out_w = 1 + (height - 2) // 2, 1 + (width - 2) // 2
    windows = a[:, :, :2 * out_h, :2 * out_w].reshape(n, channels, out_h, 2, out_w, 2)
    windows = windows.transpose(0, 1, 2, 4, 3, 5).reshape(n, channels, out_h, out_w, 4)
    return windows.max(axis=4), windows.argmax(axis=4)


def scores(params, x, stride=1, pad=0):
    a = conv(x, params["W1"], params["b1"], stride, pad)
    pooled, _ = max_pool(np.where(a > 0, a, 0.0))
    hidden = pooled.reshape(x.shape[0], -1) @ params["W2"] + params["b2"]
    return np.where(hidden > 0, hidden, 0.0) @ params["W3"] + params["b3"]


def labels_of(t, n):
    t = np.asarray(t)
    if t.ndim == 2 and t.shape[1] > 1:
        return np.argmax(t, axis=1)
    return t.reshape(n).astype(np.int64)


def loss(params, x, t, stride=1, pad=0):
    s = scores(params, x, stride, pad)
    s = s - s.max(axis=1, keepdims=True)
    y = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    labels = labels_of(t, x.shape[0])
    return -np.sum(np.log(y[np.arange(x.shape[0]), labels] + LOG_EPS)) / x.shape[0]


def numerical_gradient_entries(params, x, t, entries, stride=1, pad=0):
    """The book's central difference for the listed (name, index) entries, on a copy of ``params``."""
    return central_differences(params, entries, lambda p: loss(p, x, t, stride, pad))


def numerical_gradient(params, x, t, stride=1, pad=0):
    grads = {}
    for name in ("W1", "b1", "W2", "b2", "W3", "b3"):
        shape = params[name].shape
        entries = [(name, idx) for idx in np.ndindex(shape)]
        grads[name] = numerical_gradient_entries(params, x, t, entries, stride, pad).reshape(shape)
    return grads
