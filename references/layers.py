"""Any network of the book's layers (``common/layers.py``) in plain numpy, written for the tests.

A network is a list of layer descriptions, each a tuple:

    ("affine", "W1", "b1")          x.reshape(N, -1) @ W + b
    ("relu",)  ("sigmoid",)
    ("batchnorm", "gamma1", "beta1") per feature of x.reshape(N, -1): the batch's mean and biased
                                     variance in training mode, the running ones (zeros at first)
                                     in evaluation mode, 10e-7 added to the variance
    ("dropout", ratio)               training: x * mask (the mask given, or rand(*x.shape) > ratio);
                                     evaluation: x * (1 - ratio)
    ("conv", "W1", "b1", stride, pad)  each output pixel the sum over its window
    ("pool", pool_h, pool_w, stride)   the maximum of each window

followed by softmax with the cross-entropy loss (1e-7 in the log) and the
weight decay ``0.5 lambda sum(W**2)`` of the listed weights. Each layer is
its definition written out on whole batches (the convolution and pooling on
views of every window, costing what the book's im2col code costs): a
statement of the book's semantics, not a copy of its code.
"""

import numpy as np

from references.naive import central_differences

LOG_EPS = 1e-7
BN_EPS = 10e-7


def conv(x, W, b, stride, pad):
    """``out[n, f, y, z] = b[f] + sum_{c,i,j} W[f, c, i, j] xpad[n, c, y stride + i, z stride + j]``: every
    window at once (a view), then one contraction over (c, i, j), as the book's im2col product costs."""
    n, channels, height, width = x.shape
    n_filters, _, fh, fw = W.shape
    padded = np.zeros((n, channels, height + 2 * pad, width + 2 * pad))
    padded[:, :, pad:pad + height, pad:pad + width] = x
    out_h = 1 + (height + 2 * pad - fh) // stride
    out_w = 1 + (width + 2 * pad - fw) // stride
    windows = np.lib.stride_tricks.sliding_window_view(padded, (fh, fw), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride][:, :, :out_h, :out_w]  # (n, C, out_h, out_w, fh, fw)
    out = np.tensordot(windows, W, axes=([1, 4, 5], [1, 2, 3])) + b  # (n, out_h, out_w, F)
    return out.transpose(0, 3, 1, 2)


def pool(x, pool_h, pool_w, stride):
    """The maximum of every ``pool_h`` x ``pool_w`` window, ``stride`` apart."""
    n, channels, height, width = x.shape
    out_h = 1 + (height - pool_h) // stride
    out_w = 1 + (width - pool_w) // stride
    windows = np.lib.stride_tricks.sliding_window_view(x, (pool_h, pool_w), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride][:, :, :out_h, :out_w]
    return windows.max(axis=(4, 5))


def forward(layers, params, x, train=False, masks=None, running=None):
    """The scores of ``x``; ``masks`` (layer index -> mask) are used, or drawn and stored, in training
    mode; ``running`` (layer index -> (mean, var)) in evaluation mode."""
    masks = {} if masks is None else masks
    running = {} if running is None else running
    a = np.asarray(x, dtype=np.float64)
    for index, layer in enumerate(layers):
        kind = layer[0]
        if kind == "affine":
            a = a.reshape(a.shape[0], -1) @ params[layer[1]] + params[layer[2]]
        elif kind == "relu":
            a = np.where(a > 0, a, 0.0)
        elif kind == "sigmoid":
            a = 1.0 / (1.0 + np.exp(-a))
        elif kind == "batchnorm":
            flat = a.reshape(a.shape[0], -1)
            if train:
                mean = flat.mean(axis=0)
                var = ((flat - mean) ** 2).mean(axis=0)
            else:
                mean, var = running.get(index, (np.zeros(flat.shape[1]), np.zeros(flat.shape[1])))
            flat = params[layer[1]] * ((flat - mean) / np.sqrt(var + BN_EPS)) + params[layer[2]]
            a = flat.reshape(a.shape)
        elif kind == "dropout":
            if train:
                if index not in masks:
                    masks[index] = np.random.rand(*a.shape) > layer[1]
                a = a * masks[index]
            else:
                a = a * (1.0 - layer[1])
        elif kind == "conv":
            a = conv(a, params[layer[1]], params[layer[2]], layer[3], layer[4])
        elif kind == "pool":
            a = pool(a, layer[1], layer[2], layer[3])
        else:
            raise ValueError(f"unknown layer {layer!r}")
    return a


def softmax_cross_entropy(scores, labels):
    shifted = scores - scores.max(axis=1, keepdims=True)
    y = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return -np.sum(np.log(y[np.arange(scores.shape[0]), labels] + LOG_EPS)) / scores.shape[0]


def loss(layers, params, x, labels, train=False, masks=None, running=None, weight_decay=()):
    """The book's loss: softmax cross-entropy of the scores plus ``0.5 lambda sum(W**2)`` per
    ``(key, lambda)`` of ``weight_decay``."""
    data = softmax_cross_entropy(forward(layers, params, x, train, masks, running), labels)
    return data + sum(0.5 * lam * np.sum(params[key] ** 2) for key, lam in weight_decay)


def numerical_gradient_entries(layers, params, x, labels, entries, **kwargs):
    """The book's central difference of ``loss`` for the listed (key, index) entries."""
    return central_differences(params, entries, lambda p: loss(layers, p, x, labels, **kwargs))


def numerical_gradient(layers, params, x, labels, **kwargs):
    """Every entry of every parameter, one at a time (the book's loop)."""
    grads = {}
    for key, value in params.items():
        entries = [(key, index) for index in np.ndindex(value.shape)]
        grads[key] = numerical_gradient_entries(layers, params, x, labels, entries, **kwargs).reshape(value.shape)
    return grads


def deep_convnet_layers(conv_params=None):
    """The book's ``ch08/deep_convnet.py`` as layer descriptions: six convolutions (3x3, stride 1, pads
    1, 1, 1, 2, 1, 1 by default, or those of ``conv_params``), a pooling after every second, two affine
    layers, two dropouts of 0.5."""
    pads = [1, 1, 1, 2, 1, 1] if conv_params is None else [p["pad"] for p in conv_params]
    strides = [1] * 6 if conv_params is None else [p["stride"] for p in conv_params]
    layers = []
    for k in range(6):
        layers += [("conv", f"W{k + 1}", f"b{k + 1}", strides[k], pads[k]), ("relu",)]
        if k % 2 == 1:
            layers.append(("pool", 2, 2, 2))
    return layers + [("affine", "W7", "b7"), ("relu",), ("dropout", 0.5), ("affine", "W8", "b8"), ("dropout", 0.5)]
