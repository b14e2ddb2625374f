"""Forward and backward passes of the fully connected networks, whole batches in numpy.

These are the book's ``predict``, ``loss`` and ``gradient`` (backprop): a few
matrix products per call, which numpy hands to BLAS, the fastest way to do
them; nothing here is part of the numerical gradient, whose kernels live in
``_numgrad_per_sample.py`` and ``_numgrad_batchnorm.py``.
"""

from typing import NamedTuple, Optional

import numpy as np

from .._config import BN_EPS, LOG_EPS


class Architecture(NamedTuple):
    """What a network computes besides its parameters."""

    n_hidden_layers: int
    relu: bool
    use_batchnorm: bool
    dropout_ratio: Optional[float]
    weight_decay_lambda: float


class Trace(NamedTuple):
    """What a training forward pass keeps for backprop, per hidden layer."""

    inputs: list
    centred: list
    normalised: list
    stds: list
    pre_activations: list
    activations: list


def activation(a, relu):
    return np.where(a > 0, a, 0.0) if relu else 1 / (1 + np.exp(-a))


def draw_dropout_masks(arch, n_samples, hidden_sizes):
    """The masks one training forward pass of the book draws from ``np.random``, in layer order."""
    if arch.dropout_ratio is None:
        return None
    return [np.random.rand(n_samples, size) > arch.dropout_ratio for size in hidden_sizes]


def forward(arch, W, b, gamma, beta, x, train_flg, masks, running):
    """Logits of ``x``; with ``train_flg`` also the trace for backprop and the batch statistics.

    ``running``: per hidden layer [mean, var] (arrays; zeros before any
    training pass, as the book's layer), read in evaluation mode.
    """
    z = x
    trace = Trace([], [], [], [], [], [])
    stats = []
    for k in range(arch.n_hidden_layers):
        trace.inputs.append(z)
        a = z @ W[k] + b[k]
        if arch.use_batchnorm:
            if train_flg:
                mean = a.mean(axis=0)
                centred = a - mean
                var = np.mean(centred ** 2, axis=0)
                std = np.sqrt(var + BN_EPS)
                normalised = centred / std
                stats.append((mean, var))
                trace.centred.append(centred)
                trace.normalised.append(normalised)
                trace.stds.append(std)
            else:
                normalised = (a - running[k][0]) / np.sqrt(running[k][1] + BN_EPS)
            a = gamma[k] * normalised + beta[k]
        trace.pre_activations.append(a)
        z = activation(a, arch.relu)
        trace.activations.append(z)
        if arch.dropout_ratio is not None:
            z = z * masks[k] if train_flg else z * (1.0 - arch.dropout_ratio)
    trace.inputs.append(z)
    return z @ W[-1] + b[-1], trace, stats


def cross_entropy(logits, labels):
    """The book's ``SoftmaxWithLoss``: softmax (row max subtracted), mean of ``-log(y_t + 1e-7)``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    y = np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)
    return -np.sum(np.log(y[np.arange(labels.shape[0]), labels] + LOG_EPS)) / labels.shape[0]


def weight_decay(arch, W):
    """The book's ``0.5 * lambda * sum(W**2)`` over every weight matrix."""
    total = 0
    for weight in W:
        total += 0.5 * arch.weight_decay_lambda * np.sum(weight ** 2)
    return total


def cross_entropy_backward(scores, labels):
    """The book's ``SoftmaxWithLoss.backward``: ``(softmax(scores) - onehot(t)) / B``."""
    n = labels.shape[0]
    y = np.exp(scores - scores.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    y[np.arange(n), labels] -= 1
    return y / n


def backward(arch, W, gamma, logits, labels, trace, masks):
    """Backprop of the training-mode loss (the book's ``gradient``); lists per layer.

    Returns (dW, db, dgamma, dbeta); the weight decay's ``lambda W`` is in dW.
    """
    n = labels.shape[0]
    dout = cross_entropy_backward(logits, labels)
    n_layers = arch.n_hidden_layers + 1
    dW, db = [None] * n_layers, [None] * n_layers
    dgamma, dbeta = [None] * arch.n_hidden_layers, [None] * arch.n_hidden_layers
    for layer in range(n_layers - 1, -1, -1):
        dW[layer] = trace.inputs[layer].T @ dout + arch.weight_decay_lambda * W[layer]
        db[layer] = dout.sum(axis=0)
        if layer == 0:
            break
        k = layer - 1
        dout = dout @ W[layer].T
        if arch.dropout_ratio is not None:
            dout = dout * masks[k]
        if arch.relu:
            dout = np.where(trace.pre_activations[k] > 0, dout, 0.0)
        else:
            dout = dout * (1.0 - trace.activations[k]) * trace.activations[k]
        if arch.use_batchnorm:
            centred, normalised, std = trace.centred[k], trace.normalised[k], trace.stds[k]
            dbeta[k] = dout.sum(axis=0)
            dgamma[k] = np.sum(normalised * dout, axis=0)
            dn = gamma[k] * dout
            dcentred = dn / std
            dstd = -np.sum((dn * centred) / (std * std), axis=0)
            dvar = 0.5 * dstd / std
            dcentred += (2.0 / n) * centred * dvar
            dout = dcentred - np.sum(dcentred, axis=0) / n
    return dW, db, dgamma, dbeta
