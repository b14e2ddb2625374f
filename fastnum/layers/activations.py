"""``Relu`` and ``Sigmoid`` (the book's ``common/layers.py``): elementwise, no parameters."""

from dataclasses import dataclass

import numpy as np


class Elementwise:
    """What every elementwise layer without parameters shares (``Relu``, ``Sigmoid``, ``Dropout``):
    no keys of ``params``, its output shaped like its input, one value of work per element."""

    @property
    def param_keys(self):
        return {}

    def output_shape(self, in_shape, params):
        return tuple(in_shape)

    def working_size(self, in_shape, params):
        return int(np.prod(in_shape))


@dataclass(frozen=True)
class Relu(Elementwise):
    """``out = x`` where ``x > 0``, else 0 (the book zeroes where ``x <= 0``)."""

    def forward(self, x, params, pass_):
        mask = x <= 0
        out = x.copy()
        out[mask] = 0
        return out, mask

    def backward(self, dout, params, mask):
        return np.where(mask, 0.0, dout), {}


@dataclass(frozen=True)
class Sigmoid(Elementwise):
    """``out = 1 / (1 + exp(-x))``."""

    def forward(self, x, params, pass_):
        out = 1 / (1 + np.exp(-x))
        return out, out

    def backward(self, dout, params, out):
        return dout * (1.0 - out) * out, {}
