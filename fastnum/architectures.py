"""Which network the CLI's options ask for, as a spec (``fastnum.registry``)."""

import numpy as np

from .registry import CLI_NAMES

CONVNET_DEFAULT_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
"""The book's ``SimpleConvNet`` convolution."""

MULTI_LAYER_OPTIONS = ("weight_init", "weight_decay", "batchnorm", "dropout")
"""Options only ``MultiLayerNetExtend`` has: any of them makes the network one."""


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
    kind = CLI_NAMES.get(network)
    if kind == "SimpleConvNet":
        return {"network": kind, "hidden": hidden, "activation": "relu", "conv_param": dict(CONVNET_DEFAULT_CONV)}
    multi = len(hidden) > 1 or weight_init is not None or bool(weight_decay) or bool(batchnorm) \
        or dropout is not None or kind == "MultiLayerNetExtend"
    if not multi:
        return {"network": "TwoLayerNet", "hidden": hidden, "activation": activation or "sigmoid"}
    return {
        "network": "MultiLayerNetExtend", "hidden": hidden, "activation": activation or "relu",
        "weight_init_std": "relu" if weight_init is None else weight_init,
        "weight_decay_lambda": float(weight_decay or 0.0), "use_dropout": dropout is not None,
        "dropout_ration": 0.5 if dropout is None else float(dropout), "use_batchnorm": bool(batchnorm),
    }


def spec_from_config(config):
    """The network a run's configuration (``fastnum train``'s settings, a checkpoint's ``config``) describes."""
    return spec_from_options(config["hidden"], config.get("activation"), config.get("weight_init"),
                             config.get("weight_decay"), config.get("batchnorm"), config.get("dropout"),
                             config.get("network"))
