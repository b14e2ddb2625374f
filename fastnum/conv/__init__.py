"""The book's chapter-7 ``SimpleConvNet``.

``net.py`` holds the facade (and the book's pickle files); ``_passes.py`` the
numpy forward and backprop; ``_numgrad.py`` the numerical gradient's kernels
and driver (the dense layers reuse ``fastnum.multi_layer``'s per-sample kernels).
"""

from .net import SimpleConvNet

__all__ = ["SimpleConvNet"]
