"""fastnum: the numerical-gradient training of "Deep Learning from Scratch"
(chapter 4), exact and fast enough to run.

Drop-in names for the book's modules::

    from fastnum import TwoLayerNet, numerical_gradient, load_mnist
    from fastnum.functions import sigmoid, softmax, cross_entropy_error
"""

from importlib import metadata as _metadata

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
from .mnist import load_mnist
from .two_layer_net import TwoLayerNet

try:
    __version__ = _metadata.version("fastnum")
except _metadata.PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "TwoLayerNet",
    "load_mnist",
    "numerical_diff",
    "numerical_gradient",
    "numerical_gradient_2d",
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
