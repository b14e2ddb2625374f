"""fastnum: the numerical gradients of "Deep Learning from Scratch" (chapters
4 to 8, and any network built from the book's layers), exact and fast enough to use.

Drop-in names for the book's modules::

    from fastnum import TwoLayerNet, numerical_gradient, load_mnist
    from fastnum import MultiLayerNet, MultiLayerNetExtend   # common/multi_layer_net*.py
    from fastnum.ch05 import TwoLayerNet                     # ch05/two_layer_net.py
    from fastnum import SimpleConvNet                        # ch07/simple_convnet.py
    from fastnum import DeepConvNet                          # ch08/deep_convnet.py
    from fastnum.functions import sigmoid, softmax, cross_entropy_error
    from fastnum import numerical_gradient_of                 # a network built from common/layers.py

``fastnum.precompile()`` (or ``fastnum compile`` in a shell) compiles every
kernel once per machine, up front, with a progress bar.
"""

from importlib import metadata as _metadata

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
from .precompiling import precompile
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
    "precompile",
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
