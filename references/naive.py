"""Slow, obviously correct plain-numpy versions of the book's code.

This is the reference every fast function in fastnum is compared with, in
the tests and in the benchmark (``bench/``). It follows the book's
``common/functions.py``, ``common/gradient.py`` and ``ch04/two_layer_net.py``
line by line; where the book loops, this loops too.
"""

import numpy as np

import fastnum
from fastnum import functions as fast_functions

H = 1e-4


# -- common/functions.py -----------------------------------------------------

def identity_function(x):
    return x


def step_function(x):
    x = np.asarray(x)
    out = np.zeros(x.shape, dtype=int)
    for idx in np.ndindex(x.shape):
        out[idx] = 1 if x[idx] > 0 else 0
    return out


def sigmoid(x):
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = 1 / (1 + np.exp(-x[idx]))
    return out


def sigmoid_grad(x):
    s = sigmoid(x)
    return (1.0 - s) * s


def relu(x):
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = x[idx] if x[idx] > 0 else 0.0
    return out


def relu_grad(x):
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = 1.0 if x[idx] >= 0 else 0.0
    return out


def softmax(x):
    x = np.asarray(x, dtype=float)
    rows = x.reshape(-1, x.shape[-1])
    out = np.empty_like(rows)
    for r, row in enumerate(rows):
        shifted = row - np.max(row)
        e = np.exp(shifted)
        out[r] = e / np.sum(e)
    return out.reshape(x.shape)


def sum_squared_error(y, t):
    return 0.5 * np.sum((np.asarray(y) - np.asarray(t)) ** 2)


def labels_as_indices(t, n_classes):
    t = np.asarray(t)
    if t.ndim == 2:
        return np.argmax(t, axis=1)
    return t.astype(np.int64).reshape(-1)


def cross_entropy_error(y, t):
    y = np.asarray(y, dtype=float)
    if y.ndim == 1:
        y = y.reshape(1, -1)
        t = np.asarray(t).reshape(1, -1) if np.asarray(t).size == y.size else np.asarray(t).reshape(1)
    t = labels_as_indices(t, y.shape[1])
    total = 0.0
    for b in range(y.shape[0]):
        total += np.log(y[b, t[b]] + 1e-7)
    return -total / y.shape[0]


def softmax_loss(x, t):
    return cross_entropy_error(softmax(x), t)


FUNCTION_PAIRS = [
    (fast_functions.identity_function, identity_function),
    (fast_functions.step_function, step_function),
    (fast_functions.sigmoid, sigmoid),
    (fast_functions.sigmoid_grad, sigmoid_grad),
    (fast_functions.relu, relu),
    (fast_functions.relu_grad, relu_grad),
    (fast_functions.softmax, softmax),
]
"""Each fast elementwise/row-wise function beside its reference (numbagg style):
the tests compare every pair, the benchmark times them."""

LOSS_PAIRS = [
    (fast_functions.sum_squared_error, sum_squared_error),
    (fast_functions.cross_entropy_error, cross_entropy_error),
    (fast_functions.softmax_loss, softmax_loss),
]


# -- common/gradient.py --------------------------------------------------------

def numerical_gradient(f, x):
    """The book's loop, verbatim."""
    h = H
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)
        x[idx] = tmp_val - h
        fxh2 = f(x)
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        x[idx] = tmp_val
        it.iternext()
    return grad


# -- ch04/two_layer_net.py (and ch05's ReLU variant) ---------------------------

def predict(params, x, activation="sigmoid"):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    a1 = np.dot(x, W1) + b1
    z1 = sigmoid_fast_book(a1) if activation == "sigmoid" else np.maximum(0, a1)
    a2 = np.dot(z1, W2) + b2
    return softmax_book(a2)


def sigmoid_fast_book(x):
    """The book's vectorised sigmoid (the loop version above is for checking it)."""
    return 1 / (1 + np.exp(-x))


def softmax_book(x):
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def loss(params, x, t, activation="sigmoid"):
    y = predict(params, x, activation)
    if y.ndim == 1:
        y = y.reshape(1, -1)
    t = labels_as_indices(t, y.shape[1])
    return -np.sum(np.log(y[np.arange(y.shape[0]), t] + 1e-7)) / y.shape[0]


def accuracy(params, x, t, activation="sigmoid"):
    y = np.argmax(predict(params, x, activation), axis=1)
    t = labels_as_indices(t, y.shape[0])
    return np.sum(y == t) / float(x.shape[0])


def central_differences(params, entries, loss_of):
    """The book's central difference for the listed (name, index) entries, ``loss_of(params)`` the loss.

    Works on a copy of ``params``; the perturbation and restore are the book's.
    Every network's reference (two-layer, multi-layer, convnet) goes through it.
    """
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    values = np.empty(len(entries))
    for n, (name, idx) in enumerate(entries):
        p = params[name]
        tmp_val = p[idx]
        p[idx] = float(tmp_val) + H
        fxh1 = loss_of(params)
        p[idx] = tmp_val - H
        fxh2 = loss_of(params)
        p[idx] = tmp_val
        values[n] = (fxh1 - fxh2) / (2 * H)
    return values


def numerical_gradient_entries(params, x, t, entries, activation="sigmoid"):
    """The book's central difference of the two-layer net's loss for the listed (name, index) entries."""
    x = np.asarray(x, dtype=np.float64)
    return central_differences(params, entries, lambda p: loss(p, x, t, activation))


def numerical_gradient_net(params, x, t, activation="sigmoid"):
    """The book's ``TwoLayerNet.numerical_gradient``: every entry, one at a time."""
    params = {k: v.copy() for k, v in params.items()}
    x = np.asarray(x, dtype=np.float64)

    def loss_W(W):
        return loss(params, x, t, activation)

    return {name: numerical_gradient(loss_W, params[name]) for name in ("W1", "b1", "W2", "b2")}


def gradient(params, x, t, activation="sigmoid"):
    """The book's backprop ``TwoLayerNet.gradient`` (ReLU mask as chapter 5's layer)."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    x = np.asarray(x, dtype=np.float64)
    t_idx = labels_as_indices(t, W2.shape[1])
    t_onehot = np.zeros((x.shape[0], W2.shape[1]))
    t_onehot[np.arange(x.shape[0]), t_idx] = 1
    batch_num = x.shape[0]
    a1 = np.dot(x, W1) + b1
    z1 = sigmoid_fast_book(a1) if activation == "sigmoid" else np.maximum(0, a1)
    a2 = np.dot(z1, W2) + b2
    y = softmax_book(a2)
    dy = (y - t_onehot) / batch_num
    grads = {"W2": np.dot(z1.T, dy), "b2": np.sum(dy, axis=0)}
    da1 = np.dot(dy, W2.T)
    if activation == "sigmoid":
        dz1 = (1.0 - sigmoid_fast_book(a1)) * sigmoid_fast_book(a1) * da1
    else:
        dz1 = np.where(a1 > 0, da1, 0.0)
    grads["W1"] = np.dot(x.T, dz1)
    grads["b1"] = np.sum(dz1, axis=0)
    return grads


def mnist_like_batch(rng, n_samples, n_in=784, n_out=10, zero_fraction=0.81, one_hot=False):
    """Images like MNIST's (about 81% zero pixels, the rest k/255 as float32) and labels."""
    x = (rng.integers(1, 256, size=(n_samples, n_in)) / 255.0).astype(np.float32)
    x[rng.random((n_samples, n_in)) < zero_fraction] = 0.0
    t = rng.integers(0, n_out, size=n_samples)
    if one_hot:
        t = np.eye(n_out)[t]
    return x, t


def random_params(rng, n_in, n_hidden, n_out, scale=0.5):
    """Parameters larger than the book's initial ones, so every term matters."""
    return {
        "W1": scale * rng.standard_normal((n_in, n_hidden)),
        "b1": scale * rng.standard_normal(n_hidden),
        "W2": scale * rng.standard_normal((n_hidden, n_out)),
        "b2": scale * rng.standard_normal(n_out),
    }


def net_with(params, activation="sigmoid"):
    """A fastnum TwoLayerNet holding copies of ``params``."""
    n_in, n_hidden = params["W1"].shape
    n_out = params["W2"].shape[1]
    net = fastnum.TwoLayerNet(n_in, n_hidden, n_out, activation=activation)
    net.params = {k: v.copy() for k, v in params.items()}
    return net
