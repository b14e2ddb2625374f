"""``Relu`` and ``Sigmoid`` (the book's ``common/layers.py``): elementwise, no parameters."""

from dataclasses import dataclass

import numpy as np

from .moves import BOUND_SLACK, CROSSING_MARGIN, UNIT_ROUNDOFF, failed_where, largest, limit_radius, two_sided

SIGMOID_ERROR = 8 * UNIT_ROUNDOFF
"""A bound on the relative error of numpy's ``1 / (1 + exp(-x))`` in float64: measured against 80-bit
``long double`` on 10**7 arguments in [-30, 30] here, at most 1.0 units of roundoff for ``exp`` and 2.0
for the sigmoid (``exp``'s error, the sum's and the quotient's); 8 leaves room for other ``exp``
implementations. The book's pass carries it as the moves' steps do (``Sigmoid.rounding_bound``)."""


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

    def move_context(self, x, out, cache, params, pass_):
        """Per sample: the largest move that keeps each input on its side, ``|z| (1 - 2**-40)`` made a hair
        smaller so that ``|move| <= limit`` proves ``|move| < |z| (1 - 2**-40)`` (and, where z is 0, that
        the move is exactly 0); 1.0 where the input passes (z > 0), else 0.0; z."""
        z = x[0]
        return np.abs(z) * (CROSSING_MARGIN * (1.0 - 2.0**-50)), (z > 0).astype(np.float64), z

    def move_radius(self, move, context):
        """(R, N) the largest factor s by which each pair's move may be multiplied with every input kept on
        its side, ``s |move| <= limit`` (``propagate``'s proof; for ``fastnum.layers.unit_moves``)."""
        limit = context[0] if move.channel < 0 else context[0][:, move.channel]
        return limit_radius(limit, np.abs(move.delta))

    def unit_step(self, z, moved, out):
        """The output's move where inputs ``z`` move to ``moved`` (``fastnum.layers.unit_moves``), evaluated
        exactly: ``max(moved, 0) - max(z, 0)``, and its bound: the two roundings, ``moved``'s and the
        difference's (the ReLU is 1-Lipschitz)."""
        step = np.maximum(moved, 0.0) - np.maximum(z, 0.0)
        return step, BOUND_SLACK * UNIT_ROUNDOFF * (np.abs(moved) + np.abs(step))

    def propagate(self, move, context, params):
        """Linear while the computed move keeps every input on its side (``move_context``): the move then
        passes where ``z > 0`` and is zero elsewhere. An input that may change side fails its pair, or,
        where the move ``may_split``, is evaluated exactly: ``max(z + move, 0) - max(z, 0)``, the bound
        growing by its two roundings. The ReLU is 1-Lipschitz: the bound carries over."""
        limit, passes, z = context
        if move.channel >= 0:
            limit, passes, z = limit[:, move.channel], passes[:, move.channel], z[:, move.channel]
        stays = np.abs(move.delta) <= limit
        if not move.may_split or stays.all():
            return move._replace(delta=move.delta * passes, failed=failed_where(move, ~stays))
        move, stays = two_sided(move, stays)
        moved = z + move.delta
        exact = np.maximum(moved, 0.0) - np.maximum(z, 0.0)
        rounding = BOUND_SLACK * UNIT_ROUNDOFF * (largest(moved) + largest(exact))
        return move._replace(delta=np.where(stays, move.delta * passes, exact), err=move.err + rounding)

    def rounding_bound(self, bound, x, out, params):
        return bound


@dataclass(frozen=True)
class Sigmoid(Elementwise):
    """``out = 1 / (1 + exp(-x))``."""

    def forward(self, x, params, pass_):
        out = 1 / (1 + np.exp(-x))
        return out, out

    def backward(self, dout, params, out):
        return dout * (1.0 - out) * out, {}

    def rounding_bound(self, bound, x, out, params):
        """(N,) the rounding of the book's own pass per sample, given ``bound`` on its input's: the sigmoid is
        1/4-Lipschitz, and its evaluation is within ``SIGMOID_ERROR`` of each output."""
        n_samples = out.shape[1]
        return BOUND_SLACK * (0.25 * bound + SIGMOID_ERROR * np.abs(out[0]).reshape(n_samples, -1).max(axis=1))

    def unit_step(self, z, moved, out):
        """The output's move where inputs ``z`` (whose output is ``out``) move to ``moved``
        (``fastnum.layers.unit_moves``): ``1 / (1 + exp(-moved)) - out``, the book's formula, and its bound:
        ``SIGMOID_ERROR`` of each of the two sigmoids, ``moved``'s rounding (the sigmoid is 1/4-Lipschitz)
        and the difference's."""
        step = 1 / (1 + np.exp(-moved)) - out
        return step, BOUND_SLACK * (SIGMOID_ERROR * (np.abs(step + out) + np.abs(out))
                                    + UNIT_ROUNDOFF * (0.25 * np.abs(moved) + np.abs(step)))
