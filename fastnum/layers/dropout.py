"""``Dropout`` (the book's ``common/layers.py``): masks drawn from ``np.random`` in training mode."""

from dataclasses import dataclass

import numpy as np

from .activations import Elementwise


@dataclass(frozen=True)
class Dropout(Elementwise):
    """Training: ``x * mask`` with ``mask = np.random.rand(*x.shape) > ratio``; evaluation: ``x * (1 - ratio)``.

    A pass's masks live in its ``ForwardPass``: drawn at the layer's first
    training-mode run (as the book draws them, in layer order), reused by
    every perturbed pass of a numerical gradient.
    """

    ratio: float

    def forward(self, x, params, pass_):
        if not pass_.train:
            return x * (1.0 - self.ratio), None
        mask = pass_.masks.get(pass_.index)
        if mask is None:
            mask = np.random.rand(*x.shape[1:]) > self.ratio
            pass_.masks[pass_.index] = mask
        return x * mask, mask

    def backward(self, dout, params, mask):
        return dout * mask, {}
