"""Drop-in for the book's ``common/functions.py``: same names, same results.

These work on numpy arrays of any shape, exactly as the book's do; the
compiled networks use their own kernels (``two_layer/_forward.py``, ...) for the same formulas.
"""

import numpy as np

__all__ = [
    "identity_function",
    "step_function",
    "sigmoid",
    "sigmoid_grad",
    "relu",
    "relu_grad",
    "softmax",
    "sum_squared_error",
    "cross_entropy_error",
    "softmax_loss",
]


def identity_function(x):
    """Return ``x`` unchanged (the output activation for regression)."""
    return x


def step_function(x):
    """1 where ``x > 0``, else 0, as an integer array."""
    return np.array(np.asarray(x) > 0, dtype=int)


def sigmoid(x):
    """``1 / (1 + exp(-x))``."""
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x):
    """Derivative of the sigmoid at ``x``: ``(1 - sigmoid(x)) * sigmoid(x)``."""
    return (1.0 - sigmoid(x)) * sigmoid(x)


def relu(x):
    """``max(0, x)`` elementwise."""
    return np.maximum(0, x)


def relu_grad(x):
    """1 where ``x >= 0``, else 0 (the book's convention at 0)."""
    x = np.asarray(x)
    grad = np.zeros_like(x)
    grad[x >= 0] = 1
    return grad


def softmax(x):
    """Softmax over the last axis, with the maximum subtracted first (1-D or 2-D)."""
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def sum_squared_error(y, t):
    """``0.5 * sum((y - t)**2)``."""
    return 0.5 * np.sum((y - t) ** 2)


def cross_entropy_error(y, t):
    """Mean cross-entropy ``-sum(log(y[b, t_b] + 1e-7)) / B``.

    Parameters
    ----------
    y : array_like, (B, C) or (C,)
        Class probabilities.
    t : array_like
        One-hot labels shaped like ``y``, or class indices (B,) (a single
        index for 1-D ``y``).

    Returns
    -------
    float
    """
    y = np.asarray(y)
    t = np.asarray(t)
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if y.ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}")
    # one-hot labels become class indices, as in the book
    if t.size == y.size:
        t = t.argmax(axis=1)
    t = t.reshape(-1)
    batch_size = y.shape[0]
    if t.shape[0] != batch_size:
        raise ValueError(f"t has {t.shape[0]} labels for a batch of {batch_size}")
    if not np.issubdtype(t.dtype, np.integer):
        if (t != np.round(t)).any():
            raise ValueError("t as class indices must hold whole numbers")
        t = t.astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= y.shape[1]):
        raise ValueError(f"labels in t must lie in [0, {y.shape[1]})")
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def softmax_loss(X, t):
    """``cross_entropy_error(softmax(X), t)``."""
    y = softmax(X)
    return cross_entropy_error(y, t)
