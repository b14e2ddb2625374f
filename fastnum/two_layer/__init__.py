"""The book's chapter-4 ``TwoLayerNet`` (784-50-10, sigmoid or ReLU).

``net.py`` holds the facade (it validates and dispatches); ``_driver.py`` the
driver (the buffers of one batch size, each method's kernel calls, run in
order); ``_forward.py`` the forward pass, loss and
accuracy kernels; ``_numgrad_incremental.py`` the incremental numerical
gradient; ``_numgrad_full.py`` the book's whole-forward loop, compiled;
``_backprop.py`` backpropagation.
"""

from .net import TwoLayerNet

__all__ = ["TwoLayerNet"]
