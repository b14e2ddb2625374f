"""The book's fully connected networks of chapters 5-6: ``MultiLayerNet`` and ``MultiLayerNetExtend``.

``net.py`` holds the facades; ``_passes.py`` the numpy forward and backprop;
``_numgrad_per_sample.py`` the numerical gradient without batch norm and
``_numgrad_batchnorm.py`` with it (each with its driver); ``_buffers.py``
what both drivers build.
"""

from .net import MultiLayerNet, MultiLayerNetExtend

__all__ = ["MultiLayerNet", "MultiLayerNetExtend"]
