"""fastnum: the numerical gradients of "Deep Learning from Scratch" (chapters
4 to 7), exact and fast enough to use.

Drop-in names for the book's modules::

    from fastnum import TwoLayerNet, numerical_gradient, load_mnist
    from fastnum import MultiLayerNet, MultiLayerNetExtend   # common/multi_layer_net*.py
    from fastnum.ch05 import TwoLayerNet                     # ch05/two_layer_net.py
    from fastnum import SimpleConvNet                        # ch07/simple_convnet.py
    from fastnum import DeepConvNet                          # ch08/deep_convnet.py
    from fastnum.functions import sigmoid, softmax, cross_entropy_error
"""

import os as _os
from importlib import metadata as _metadata

# Where numba runs on OpenMP (no TBB, see below), its threads sleep between
# parallel regions instead of spinning.
# On a machine where another process keeps a core busy, spinning threads
# steal that core's time slices and every region waits for them: a step took
# 1.7x (median) to 6x (p90) the one-thread time, against 1.05x when passive;
# idle, passive costs about 10% (README, "Where the speed comes from").
# Set before numba starts its threads; a value the user chose is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

# TBB's threads suit a gradient's short parallel regions better (fast when idle, yielding when
# busy: 1.23 against 1.50 ms a gradient here); importing _threading loads pip's TBB library so
# that numba, which takes TBB first when it can load it, finds it. It must run before numba starts
# its threads (at the first parallel kernel), not before numba is imported.
from . import _threading  # noqa: F401
from .conv import DeepConvNet, SimpleConvNet
from .functions import (
    cross_entropy_error,
    identity_function,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_loss,
    step_function,
    sum_squared_error,
)
from .gradient import numerical_diff, numerical_gradient, numerical_gradient_2d
from .layers.reading import numerical_gradient_of
from .mnist import load_mnist
from .multi_layer import MultiLayerNet, MultiLayerNetExtend
from .two_layer import TwoLayerNet

try:
    __version__ = _metadata.version("fastnum")
except _metadata.PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "TwoLayerNet",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "SimpleConvNet",
    "DeepConvNet",
    "load_mnist",
    "numerical_diff",
    "numerical_gradient",
    "numerical_gradient_2d",
    "numerical_gradient_of",
    "cross_entropy_error",
    "identity_function",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_loss",
    "step_function",
    "sum_squared_error",
]
