"""Forward and backward passes of ``SimpleConvNet``, whole batches in numpy.

The book's layers (``common/layers.py``: ``Convolution``, ``Relu``,
``Pooling``, ``Affine``) by the same arithmetic: the convolution as one
matrix product over image patches (im2col), max pooling over 2x2 windows
with stride 2 (ties go to the first maximum, as ``np.argmax``), affine layers
on the flattened features. None of this is the numerical gradient, whose
kernels are in ``_numgrad.py``.
"""

from typing import NamedTuple

import numpy as np

from ..layers.convolution import padded, windows
from ..multi_layer._passes import cross_entropy_backward

POOL = 2
"""The book's pooling window and stride."""


class ConvShape(NamedTuple):
    """Sizes of one ``SimpleConvNet``."""

    channels: int
    height: int
    width: int
    filters: int
    filter_size: int
    pad: int
    stride: int
    conv_h: int
    conv_w: int
    pool_h: int
    pool_w: int

    @property
    def pooled_size(self):
        return self.filters * self.pool_h * self.pool_w


def conv_shape(input_dim, filter_num, filter_size, pad, stride):
    """The sizes the book's layers give (``Convolution``: ``1 + (H + 2 pad - FH) // stride``;
    ``Pooling``: ``1 + (H - 2) // 2``)."""
    channels, height, width = input_dim
    conv_h = 1 + (height + 2 * pad - filter_size) // stride
    conv_w = 1 + (width + 2 * pad - filter_size) // stride
    return ConvShape(channels, height, width, filter_num, filter_size, pad, stride, conv_h, conv_w,
                     1 + (conv_h - POOL) // POOL, 1 + (conv_w - POOL) // POOL)


def patches(x_padded, size, stride, out_h, out_w):
    """(N, out_h, out_w, C, size, size) windows of the padded images (views, no copy)."""
    return windows(x_padded, size, size, stride, out_h, out_w).transpose(0, 2, 3, 1, 4, 5)


class Trace(NamedTuple):
    """What the forward pass keeps for backprop."""

    col: np.ndarray
    conv: np.ndarray
    pool_argmax: np.ndarray
    pooled: np.ndarray
    hidden_pre: np.ndarray
    hidden: np.ndarray


def forward(shape, params, x):
    """Scores of the images ``x`` (N, C, H, W), and the trace for backprop."""
    n = x.shape[0]
    W1, b1, W2, b2, W3, b3 = (params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    col = patches(padded(x, shape.pad), shape.filter_size, shape.stride, shape.conv_h, shape.conv_w)
    col = col.reshape(n * shape.conv_h * shape.conv_w, -1)
    conv = (col @ W1.reshape(shape.filters, -1).T + b1).reshape(n, shape.conv_h, shape.conv_w, -1)
    conv = conv.transpose(0, 3, 1, 2)
    relu = np.where(conv > 0, conv, 0.0)
    pool_windows = patches(relu, POOL, POOL, shape.pool_h, shape.pool_w).reshape(-1, POOL * POOL)
    pool_argmax = np.argmax(pool_windows, axis=1)
    pooled = pool_windows.max(axis=1).reshape(n, shape.pool_h, shape.pool_w, shape.filters).transpose(0, 3, 1, 2)
    pooled = pooled.reshape(n, -1)
    hidden_pre = pooled @ W2 + b2
    hidden = np.where(hidden_pre > 0, hidden_pre, 0.0)
    return hidden @ W3 + b3, Trace(col, conv, pool_argmax, pooled, hidden_pre, hidden)


def backward(shape, params, scores, labels, trace):
    """Backprop of the loss (the book's ``gradient``): dict of W1..b3."""
    n = labels.shape[0]
    dout = cross_entropy_backward(scores, labels)
    grads = {"W3": trace.hidden.T @ dout, "b3": dout.sum(axis=0)}
    dout = np.where(trace.hidden_pre > 0, dout @ params["W3"].T, 0.0)
    grads["W2"] = trace.pooled.T @ dout
    grads["b2"] = dout.sum(axis=0)
    dpooled = (dout @ params["W2"].T).reshape(n, shape.filters, shape.pool_h, shape.pool_w)
    # max pooling passes each gradient to its window's (first) maximum
    drelu = np.zeros((n, shape.filters, shape.conv_h, shape.conv_w))
    flat = dpooled.transpose(0, 2, 3, 1).reshape(-1)
    nn, py, px, f = np.unravel_index(np.arange(flat.size), (n, shape.pool_h, shape.pool_w, shape.filters))
    di, dj = np.divmod(trace.pool_argmax, POOL)
    np.add.at(drelu, (nn, f, py * POOL + di, px * POOL + dj), flat)
    dconv = np.where(trace.conv > 0, drelu, 0.0)
    dconv = dconv.transpose(0, 2, 3, 1).reshape(-1, shape.filters)
    grads["b1"] = dconv.sum(axis=0)
    grads["W1"] = (trace.col.T @ dconv).T.reshape(params["W1"].shape)
    return {k: grads[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")}
