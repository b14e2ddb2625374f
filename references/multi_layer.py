"""The book's fully connected networks in plain numpy, written for the tests.

A statement of what ``common/multi_layer_net.py``, ``common/multi_layer_net_extend.py``
and ``common/layers.py`` compute, not a copy of them: one function per layer
kind, loops where the book's semantics are easiest to see in a loop, and
nothing cached between calls. Networks are described by ``NetConfig`` and
their parameters by the book's dict (``W1..``, ``b1..``, ``gamma1..``, ``beta1..``).

Used by ``tests/`` (every fastnum network is compared with it) and by
``bench/`` (it is the book's loop there: whole-batch products, as the
book's layers, so it costs what the book's code costs).
"""

from typing import NamedTuple, Optional

import numpy as np

from references.naive import central_differences

BN_EPS = 10e-7
LOG_EPS = 1e-7
MOMENTUM = 0.9


class NetConfig(NamedTuple):
    """What a network computes besides its parameters."""

    n_hidden_layers: int
    activation: str = "relu"
    weight_decay_lambda: float = 0.0
    use_batchnorm: bool = False
    dropout_ratio: Optional[float] = None
    """None: no dropout layers."""


def initial_params(input_size, hidden_size_list, output_size, weight_init_std="relu", use_batchnorm=False):
    """The book's initial parameters, drawing from ``np.random`` in the book's order."""
    sizes = [input_size] + list(hidden_size_list) + [output_size]
    params = {}
    for idx in range(1, len(sizes)):
        scale = weight_init_std
        if str(weight_init_std).lower() in ("relu", "he"):
            scale = np.sqrt(2.0 / sizes[idx - 1])
        elif str(weight_init_std).lower() in ("sigmoid", "xavier"):
            scale = np.sqrt(1.0 / sizes[idx - 1])
        params[f"W{idx}"] = scale * np.random.randn(sizes[idx - 1], sizes[idx])
        params[f"b{idx}"] = np.zeros(sizes[idx])
    if use_batchnorm:
        for idx in range(1, len(sizes) - 1):
            params[f"gamma{idx}"] = np.ones(sizes[idx])
            params[f"beta{idx}"] = np.zeros(sizes[idx])
    return params


def affine(x, W, b):
    return np.dot(x, W) + b


def activation(a, kind):
    if kind == "relu":
        return np.where(a > 0, a, 0.0)
    return 1.0 / (1.0 + np.exp(-a))


def batchnorm_train(a, gamma, beta):
    """Normalisation by the batch's own mean and (biased) variance; returns (out, mean, var)."""
    mean = a.sum(axis=0) / a.shape[0]
    centred = a - mean
    var = (centred ** 2).sum(axis=0) / a.shape[0]
    return gamma * (centred / np.sqrt(var + BN_EPS)) + beta, mean, var


def batchnorm_eval(a, gamma, beta, running_mean, running_var):
    return gamma * ((a - running_mean) / np.sqrt(running_var + BN_EPS)) + beta


def softmax_cross_entropy(logits, labels):
    """Mean of ``-log(softmax(logits)[t] + 1e-7)`` over the rows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    y = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return -np.sum(np.log(y[np.arange(logits.shape[0]), labels] + LOG_EPS)) / logits.shape[0]


def labels_of(t, n_samples):
    """Class indices from any label form the book's ``SoftmaxWithLoss`` takes."""
    t = np.asarray(t)
    if t.ndim == 2 and t.shape[1] > 1:
        return np.argmax(t, axis=1)
    return t.reshape(n_samples).astype(np.int64)


def dropout_masks(config, n_samples, sizes):
    """The masks one training forward pass draws from ``np.random``, layer by layer."""
    if config.dropout_ratio is None:
        return None
    return [np.random.rand(n_samples, size) > config.dropout_ratio for size in sizes[1:-1]]


def forward(params, x, config, train_flg=False, masks=None, running=None):
    """Logits, and per BN layer (mean, var) of the batch when training.

    ``running``: list of (running_mean, running_var) per hidden layer, used in
    evaluation mode (zeros before any training pass, as the book's layer).
    """
    z = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
    stats = []
    for idx in range(1, config.n_hidden_layers + 1):
        a = affine(z, params[f"W{idx}"], params[f"b{idx}"])
        if config.use_batchnorm:
            gamma, beta = params[f"gamma{idx}"], params[f"beta{idx}"]
            if train_flg:
                a, mean, var = batchnorm_train(a, gamma, beta)
                stats.append((mean, var))
            else:
                mean, var = running[idx - 1] if running is not None else (np.zeros(a.shape[1]),) * 2
                a = batchnorm_eval(a, gamma, beta, mean, var)
        z = activation(a, config.activation)
        if config.dropout_ratio is not None:
            z = z * masks[idx - 1] if train_flg else z * (1.0 - config.dropout_ratio)
    idx = config.n_hidden_layers + 1
    return affine(z, params[f"W{idx}"], params[f"b{idx}"]), stats


def weight_decay(params, config):
    total = 0.0
    for idx in range(1, config.n_hidden_layers + 2):
        total += 0.5 * config.weight_decay_lambda * np.sum(params[f"W{idx}"] ** 2)
    return total


def loss(params, x, t, config, train_flg=False, masks=None, running=None):
    """The book's loss: softmax cross-entropy (1e-7 in the log) plus the weight decay term."""
    logits, _ = forward(params, x, config, train_flg, masks, running)
    return softmax_cross_entropy(logits, labels_of(t, x.shape[0])) + weight_decay(params, config)


def param_names(config):
    """The book's order of ``numerical_gradient``'s keys."""
    names = []
    for idx in range(1, config.n_hidden_layers + 2):
        names += [f"W{idx}", f"b{idx}"]
        if config.use_batchnorm and idx <= config.n_hidden_layers:
            names += [f"gamma{idx}", f"beta{idx}"]
    return names


def numerical_gradient_entries(params, x, t, config, entries, masks=None):
    """The book's central difference (train mode) for the listed (name, index) entries only.

    Works on a copy of ``params``; with dropout the given masks are used for
    every evaluation (fastnum's semantics; the book draws new ones each time).
    """
    return central_differences(params, entries, lambda p: loss(p, x, t, config, True, masks))


def numerical_gradient(params, x, t, config, masks=None):
    """Every entry of every parameter, one perturbation at a time."""
    grads = {}
    for name in param_names(config):
        shape = np.shape(params[name])
        entries = [(name, idx) for idx in np.ndindex(shape)]
        grads[name] = numerical_gradient_entries(params, x, t, config, entries, masks).reshape(shape)
    return grads


def gradient(params, x, t, config, masks=None):
    """Backpropagation of the training-mode loss, layer by layer (the book's ``gradient``)."""
    x = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
    n = x.shape[0]
    labels = labels_of(t, n)
    inputs, pre, normed, stds, acts = [], [], [], [], []
    z = x
    for idx in range(1, config.n_hidden_layers + 1):
        inputs.append(z)
        a = z @ params[f"W{idx}"] + params[f"b{idx}"]
        if config.use_batchnorm:
            mean = a.mean(axis=0)
            std = np.sqrt(((a - mean) ** 2).mean(axis=0) + BN_EPS)
            normed.append((a - mean) / std)
            stds.append(std)
            a = params[f"gamma{idx}"] * normed[-1] + params[f"beta{idx}"]
        pre.append(a)
        z = activation(a, config.activation)
        acts.append(z)
        if config.dropout_ratio is not None:
            z = z * masks[idx - 1]
    inputs.append(z)
    top = config.n_hidden_layers + 1
    logits = z @ params[f"W{top}"] + params[f"b{top}"]
    y = np.exp(logits - logits.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    dout = y.copy()
    dout[np.arange(n), labels] -= 1
    dout /= n
    grads = {}
    for idx in range(top, 0, -1):
        W = params[f"W{idx}"]
        grads[f"W{idx}"] = inputs[idx - 1].T @ dout + config.weight_decay_lambda * W
        grads[f"b{idx}"] = dout.sum(axis=0)
        if idx == 1:
            break
        dout = dout @ W.T
        k = idx - 2
        if config.dropout_ratio is not None:
            dout = dout * masks[k]
        if config.activation == "relu":
            dout = dout * (pre[k] > 0)
        else:
            dout = dout * (1.0 - acts[k]) * acts[k]
        if config.use_batchnorm:
            gamma = params[f"gamma{k + 1}"]
            grads[f"gamma{k + 1}"] = (normed[k] * dout).sum(axis=0)
            grads[f"beta{k + 1}"] = dout.sum(axis=0)
            dn = gamma * dout
            # d/da of (a - mean) / std with batch statistics
            dout = (dn - dn.mean(axis=0) - normed[k] * (dn * normed[k]).mean(axis=0)) / stds[k]
    return {name: grads[name] for name in param_names(config)}
