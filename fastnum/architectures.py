"""Which network a run trains: a JSON-able description, and the network built from it.

The CLI, checkpoints and ``params.npz`` describe a network by a small dict
(``spec``): ``{"network": "TwoLayerNet", "hidden": [50], "activation": ...}``
or ``{"network": "MultiLayerNetExtend", "hidden": [100, 100], ...}`` with
the book's constructor arguments. Besides ``params`` a network may carry
state that a run must keep: batch norm's running statistics (``state_arrays``).
"""

import numpy as np

TWO_LAYER = "TwoLayerNet"
MULTI_LAYER = "MultiLayerNetExtend"
CONVNET = "SimpleConvNet"
NETWORK_CHOICES = {"two-layer": TWO_LAYER, "multi-layer": MULTI_LAYER, "convnet": CONVNET}
"""The CLI's ``--network`` names."""


def spec_from_options(hidden, activation=None, weight_init=None, weight_decay=None, batchnorm=False, dropout=None,
                      network=None):
    """The network the CLI options ask for.

    ``network="convnet"``: the book's chapter-7 ``SimpleConvNet`` (its default
    convolution, ``hidden`` units after the pooling). Otherwise one hidden
    size and none of the multi-layer options: the book's chapter-4
    ``TwoLayerNet`` (sigmoid unless ``activation``); else
    ``MultiLayerNetExtend`` with the book's defaults (ReLU, He initialisation).
    """
    hidden = [int(hidden)] if np.isscalar(hidden) else [int(h) for h in hidden]
    if NETWORK_CHOICES.get(network) == CONVNET:
        return {"network": CONVNET, "hidden": hidden, "activation": "relu",
                "conv_param": {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}}
    multi = len(hidden) > 1 or weight_init is not None or bool(weight_decay) or batchnorm or dropout is not None
    multi = multi or NETWORK_CHOICES.get(network) == MULTI_LAYER
    if not multi:
        return {"network": TWO_LAYER, "hidden": hidden, "activation": activation or "sigmoid"}
    return {
        "network": MULTI_LAYER, "hidden": hidden, "activation": activation or "relu",
        "weight_init_std": "relu" if weight_init is None else weight_init,
        "weight_decay_lambda": float(weight_decay or 0.0), "use_dropout": dropout is not None,
        "dropout_ration": 0.5 if dropout is None else float(dropout), "use_batchnorm": bool(batchnorm),
    }


def describe(network):
    """The spec of ``network``."""
    from .conv import SimpleConvNet
    from .multi_layer import MultiLayerNetExtend

    if isinstance(network, SimpleConvNet):
        return {"network": CONVNET, "hidden": [network.hidden_size], "activation": "relu",
                "conv_param": dict(network.conv_param), "input_dim": list(network.input_dim)}
    if isinstance(network, MultiLayerNetExtend):
        return {
            "network": MULTI_LAYER, "hidden": list(network.hidden_size_list), "activation": network.activation,
            "weight_init_std": network.weight_init_std, "weight_decay_lambda": network.weight_decay_lambda,
            "use_dropout": network.use_dropout, "dropout_ration": network.dropout_ration,
            "use_batchnorm": network.use_batchnorm,
        }
    return {"network": TWO_LAYER, "hidden": [network.hidden_size], "activation": network.activation}


def build(spec, n_in, n_out):
    """A new network for ``spec``, drawing its initial weights from ``np.random`` as the book.

    A convnet's images are square, one channel, of ``n_in`` pixels (unless the spec names its input).
    """
    from .conv import SimpleConvNet
    from .multi_layer import MultiLayerNetExtend
    from .two_layer import TwoLayerNet

    if spec["network"] == CONVNET:
        side = int(round(np.sqrt(n_in)))
        input_dim = tuple(spec.get("input_dim", (1, side, side)))
        return SimpleConvNet(input_dim, dict(spec["conv_param"]), spec["hidden"][0], n_out)
    if spec["network"] == TWO_LAYER:
        return TwoLayerNet(n_in, spec["hidden"][0], n_out, activation=spec["activation"])
    return MultiLayerNetExtend(
        n_in, spec["hidden"], n_out, activation=spec["activation"], weight_init_std=spec["weight_init_std"],
        weight_decay_lambda=spec["weight_decay_lambda"], use_dropout=spec["use_dropout"],
        dropout_ration=spec["dropout_ration"], use_batchnorm=spec["use_batchnorm"],
    )


def with_params(spec, params, state=None):
    """A network for ``spec`` holding ``params`` (and ``state``), built without drawing from ``np.random``."""
    if spec["network"] == CONVNET:
        channels, height, width = spec.get("input_dim", (params["W1"].shape[1], 28, 28))
        n_in, n_out = channels * height * width, params["W3"].shape[1]
    else:
        n_in = params["W1"].shape[0]
        n_out = params[f"W{len(spec['hidden']) + 1}"].shape[1]
    saved = np.random.get_state()
    try:
        network = build(spec, n_in, n_out)
    finally:
        np.random.set_state(saved)
    network.params = params
    set_state_arrays(network, state or {})
    return network


def state_arrays(network):
    """Arrays besides ``params`` that a run must keep: ``running_mean{k}``, ``running_var{k}`` (batch norm)."""
    arrays = {}
    for k, (mean, var) in enumerate(zip(getattr(network, "running_mean", ()), getattr(network, "running_var", ()))):
        if mean is not None:
            arrays[f"running_mean{k + 1}"] = mean
            arrays[f"running_var{k + 1}"] = var
    return arrays


def set_state_arrays(network, arrays):
    """Put ``state_arrays``' arrays back into ``network``."""
    for k in range(len(getattr(network, "running_mean", ()))):
        if f"running_mean{k + 1}" in arrays:
            network.running_mean[k] = np.asarray(arrays[f"running_mean{k + 1}"], dtype=np.float64)
            network.running_var[k] = np.asarray(arrays[f"running_var{k + 1}"], dtype=np.float64)
