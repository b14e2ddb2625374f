"""Reading a network built from the book's layer classes into a ``LayerStack``.

``numerical_gradient_of(network, x, t)`` takes any object that holds the
book's layer objects in ``network.layers`` (a list, or an ``OrderedDict``
as in ``ch05/two_layer_net.py``), its loss layer in ``network.lastLayer`` or
``network.last_layer``, and its parameters in ``network.params``: the book's
own classes, fastnum's, or a reader's, built from ``common.layers`` or from
layer classes of the same shape. Each layer is recognised by its class name
and read by its attributes (``W``, ``b``, ``stride``, ``pad``, ``pool_h``,
``gamma``, ``dropout_ratio``, ...); a parameter is matched to its key of
``network.params`` by identity (the book's layers hold the very arrays of
``params``). A weight decay ``network.weight_decay_lambda`` applies to every
affine weight, as the book's ``MultiLayerNet``.

Before it trusts its reading it evaluates its loss and compares it with
``network.loss(x, t)`` in the mode that call runs (evaluation or training,
with the same dropout masks: ``np.random`` is saved and restored around
both), and refuses, saying what it could not read, a network whose loss it
cannot reproduce. The network is left as it was (batch norm's running
statistics, which the book's training-mode ``loss`` moves, are put back).
"""

from collections import OrderedDict

import numpy as np

from .._config import H
from .activations import Relu, Sigmoid
from .affine import Affine
from .batchnorm import BatchNormalization
from .convolution import Convolution
from .dropout import Dropout
from .numerical import numerical_gradient
from .pooling import Pooling
from .softmax_loss import SoftmaxWithLoss
from .stack import ForwardPass, LayerStack

LOSS_TOLERANCE = 1e-9
"""Relative difference between ``network.loss(x, t)`` and the reading's loss that still counts as the
same loss (the two evaluation orders differ by rounding only)."""


class UnreadableNetwork(ValueError):
    """The network is not one ``numerical_gradient_of`` can reproduce; the message says why."""


def _layers_of(network):
    layers = getattr(network, "layers", None)
    if layers is None:
        raise UnreadableNetwork(f"{type(network).__name__} has no .layers (the book's networks keep their layer "
                                "objects in a list or OrderedDict called layers)")
    if isinstance(layers, (dict, OrderedDict)):
        return list(layers.values())
    try:
        return list(layers)
    except TypeError:
        raise UnreadableNetwork(f"network.layers is a {type(layers).__name__}, not a list or dict of layers") \
            from None


def _loss_layer_of(network):
    for name in ("lastLayer", "last_layer"):
        layer = getattr(network, name, None)
        if layer is not None:
            return layer
    raise UnreadableNetwork(f"{type(network).__name__} has no lastLayer or last_layer (its SoftmaxWithLoss)")


def _key_of(array, params, what):
    for key, value in params.items():
        if value is array:
            return key
    raise UnreadableNetwork(f"{what} is not one of the arrays in network.params (the book's layers hold the very "
                            "arrays of params; was params[...] replaced without the layer's attribute?)")


def _int_attribute(layer, name, default=None):
    value = getattr(layer, name, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UnreadableNetwork(f"{type(layer).__name__}.{name} is {value!r}, not a whole number")
    return int(value)


def _read_layer(index, layer, params):
    """The ``fastnum.layers`` kind of one of the network's layer objects."""
    kind = type(layer).__name__
    where = f"layer {index} ({kind})"
    if kind == "Affine":
        return Affine(_key_of(layer.W, params, f"{where}.W"), _key_of(layer.b, params, f"{where}.b"))
    if kind == "Relu":
        return Relu()
    if kind == "Sigmoid":
        return Sigmoid()
    if kind == "Convolution":
        return Convolution(_key_of(layer.W, params, f"{where}.W"), _key_of(layer.b, params, f"{where}.b"),
                           _int_attribute(layer, "stride", 1), _int_attribute(layer, "pad", 0))
    if kind == "Pooling":
        return Pooling(_int_attribute(layer, "pool_h"), _int_attribute(layer, "pool_w"),
                       _int_attribute(layer, "stride", 2), _int_attribute(layer, "pad", 0))
    if kind == "Dropout":
        ratio = getattr(layer, "dropout_ratio", None)
        if not isinstance(ratio, (int, float, np.floating)) or not 0 <= ratio < 1:
            raise UnreadableNetwork(f"{where}.dropout_ratio is {ratio!r}, not a fraction in [0, 1)")
        return Dropout(float(ratio))
    if kind == "BatchNormalization":
        momentum = getattr(layer, "momentum", 0.9)
        return BatchNormalization(_key_of(layer.gamma, params, f"{where}.gamma"),
                                  _key_of(layer.beta, params, f"{where}.beta"), float(momentum))
    known = "Affine, Relu, Sigmoid, Convolution, Pooling, Dropout, BatchNormalization"
    raise UnreadableNetwork(f"{where}: fastnum does not know this layer kind (it reads {known}, then "
                            "SoftmaxWithLoss)")


def read_network(network, sample_shape):
    """(LayerStack, the layer objects) of a network built from the book's layers."""
    params = getattr(network, "params", None)
    if not isinstance(params, dict) or not params:
        raise UnreadableNetwork(f"{type(network).__name__} has no params dict")
    objects = _layers_of(network)
    layers = tuple(_read_layer(i, layer, params) for i, layer in enumerate(objects))
    loss_layer = _loss_layer_of(network)
    if type(loss_layer).__name__ != "SoftmaxWithLoss":
        raise UnreadableNetwork(f"the loss layer is a {type(loss_layer).__name__}; fastnum reads SoftmaxWithLoss")
    keys = [key for layer in layers for key in layer.param_keys.values()]
    shared = sorted({key for key in keys if keys.count(key) > 1})
    if shared:
        raise UnreadableNetwork(f"params {', '.join(shared)} are used by more than one layer (shared weights: "
                                "fastnum perturbs each parameter in one layer)")
    decay = getattr(network, "weight_decay_lambda", 0) or 0
    weight_decay = tuple((layer.W, float(decay)) for layer in layers if isinstance(layer, Affine)) if decay else ()
    return LayerStack(layers, SoftmaxWithLoss(), tuple(sample_shape), weight_decay), objects


def _running_statistics(objects):
    """Layer index -> (running_mean, running_var) of the network's batch norm layers."""
    return {i: (getattr(layer, "running_mean", None), getattr(layer, "running_var", None))
            for i, layer in enumerate(objects) if type(layer).__name__ == "BatchNormalization"}


def numerical_gradient_of(network, x, t):
    """The exact numerical gradient of a network built from the book's layers, every entry of ``params``.

    Returns what the book's ``numerical_gradient`` over ``network.params``
    returns (``(L(p + h) - L(p - h)) / (2h)`` of ``network.loss(x, t)``, h =
    1e-4, for every entry of every array of ``params``), computed by
    ``fastnum.layers.numerical``. Entries of an array no layer uses are 0, as
    the book's loop finds them. Dropout masks are drawn once (from
    ``np.random``, as one training pass draws them) instead of for each of
    the book's 2n evaluations, which would make each perturbed loss a
    different network's.

    Parameters
    ----------
    network : object
        Its ``layers`` (list or OrderedDict of the book's layer objects),
        ``lastLayer`` or ``last_layer`` (a ``SoftmaxWithLoss``), ``params``,
        ``loss(x, t)`` and, optionally, ``weight_decay_lambda``.
    x : array_like
        A batch, shaped as the first layer takes it.
    t : array_like
        Labels: one-hot rows or class indices.

    Returns
    -------
    dict
        Every key of ``network.params``, in its order, shaped like it.

    Raises
    ------
    ValueError
        The network is not built from layers fastnum reads, or its loss is
        not the one fastnum reproduces from them (``UnreadableNetwork``; the
        message names what could not be read); bad ``x`` or ``t``.
    """
    from .._validate import _real_array, as_labels

    x = np.ascontiguousarray(_real_array(x, "x"), dtype=np.float64)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    stack, objects = read_network(network, x.shape[1:])
    params = {key: np.asarray(value, dtype=np.float64) for key, value in network.params.items()}
    labels = as_labels(t, x.shape[0], _n_classes(stack, params, x))
    t = np.asarray(t)  # the book's loss reads t.ndim: a list becomes what the book's scripts pass
    mode, masks = _mode_of_loss(network, stack, params, objects, x, t, labels)
    pass_ = ForwardPass(train=mode, masks=masks, running=_running_statistics(objects))
    grads = numerical_gradient(stack, params, x, labels, pass_, H)
    return {key: grads[key] if key in grads else np.zeros_like(params[key]) for key in network.params}


def _n_classes(stack, params, x):
    """The classes of the network's scores; refuses (``ValueError``, naming the layer) samples of a shape
    a layer does not take (each kind's ``input_error``), before the user's own ``loss`` meets them."""
    shape = x.shape[1:]
    for index, layer in enumerate(stack.layers):
        error = layer.input_error(shape, params) if hasattr(layer, "input_error") else None
        if error:
            raise ValueError(f"x's samples have shape {tuple(x.shape[1:])}, but layer {index} "
                             f"({type(layer).__name__}) {error}")
        shape = layer.output_shape(shape, params)
    return int(np.prod(shape))


def _mode_of_loss(network, stack, params, objects, x, t, labels):
    """Which mode ``network.loss(x, t)`` runs (True: training) and the dropout masks it drew; refuses a
    network whose loss the reading does not reproduce."""
    saved_rng = np.random.get_state()
    saved_stats = [(layer, getattr(layer, "running_mean", None), getattr(layer, "running_var", None))
                   for layer in objects if type(layer).__name__ == "BatchNormalization"]
    try:
        try:
            expected = float(network.loss(x, t))
        except Exception as error:  # noqa: BLE001 - any failure of the user's loss is named
            raise UnreadableNetwork(f"network.loss(x, t) failed ({type(error).__name__}: {error})") from None
    finally:
        np.random.set_state(saved_rng)
        for layer, mean, var in saved_stats:  # a training-mode loss moved them: put them back
            layer.running_mean, layer.running_var = mean, var
    running = _running_statistics(objects)
    found = {}
    for train in (False, True):
        pass_ = ForwardPass(train=train, running=running)
        try:
            found[train] = stack.loss(params, x, labels, pass_)
        finally:
            np.random.set_state(saved_rng)
        if abs(found[train] - expected) <= LOSS_TOLERANCE * max(1.0, abs(expected)):
            return train, pass_.masks
    raise UnreadableNetwork(
        f"network.loss(x, t) is {expected!r}, but the layers fastnum read give {found[False]!r} in evaluation mode "
        f"and {found[True]!r} in training mode: the loss holds something more than those layers, a softmax with "
        "loss and weight_decay_lambda over the affine weights (fastnum reads only those)")
