"""``Dropout`` (the book's ``common/layers.py``): masks drawn from ``np.random`` in training mode."""

from dataclasses import dataclass

import numpy as np

from .activations import Elementwise
from .moves import UNIT_ROUNDOFF, largest, unbounded_radius


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

    def move_context(self, x, out, cache, params, pass_):
        """The call's mask as 0.0 / 1.0 (training), or None (evaluation: the scale ``1 - ratio``)."""
        return None if cache is None else cache.astype(np.float64)

    move_radius = unbounded_radius

    def propagate(self, move, context, params):
        """Linear: the call's mask (0 or 1, exact), or the evaluation scale ``1 - ratio`` (one rounding)."""
        if context is not None:
            mask = context if move.channel < 0 else context[:, move.channel]
            return move._replace(delta=move.delta * mask)  # 0 or 1: the bound carries over
        scale = 1.0 - self.ratio
        delta = move.delta * scale
        return move._replace(delta=delta, err=move.err * scale + UNIT_ROUNDOFF * largest(delta))

    def rounding_bound(self, bound, x, out, params):
        n_samples = out.shape[1]
        return bound + UNIT_ROUNDOFF * np.abs(out[0]).reshape(n_samples, -1).max(axis=1)
