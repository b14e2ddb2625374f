"""The book's convolutional networks: chapter 7's ``SimpleConvNet``, chapter 8's ``DeepConvNet``.

``net.py`` holds the facade (and the book's pickle files); ``_passes.py`` the
numpy forward and backprop; ``_numgrad.py`` the numerical gradient's kernels
and driver (the dense layers reuse ``fastnum.multi_layer``'s per-sample kernels).
"""

from .deep import DeepConvNet
from .net import SimpleConvNet

__all__ = ["SimpleConvNet", "DeepConvNet"]
