"""Moves: what one parameter entry's perturbation changes, carried up through the layers above it.

A parameter entry of an ``Affine`` or ``Convolution`` layer moves that
layer's output by a known amount (``first_move``): a weight ``W[i, j]``
moves output unit j by ``h x[i]``, a filter entry ``W[f, c, i, j]`` moves
map f by ``h`` times the pixel under that tap, a bias moves its unit or map
by ``h``. Above it, ``Affine``, ``Convolution`` (without their biases),
``Dropout`` with its masks fixed for the call, ``Relu`` while no input
changes side and ``Pooling`` while no window's maximum changes place are
linear maps: then, exactly in real numbers, the perturbed network's every
activation is the unperturbed one plus the move carried through those maps
(``propagate``), and the move of ``-h`` is minus the move of ``+h``. The
perturbed scores are ``scores +- move`` and the book's softmax and
``-log(y_t + 1e-7)`` are evaluated on them.

What is computed, per entry and sample, and checked at run time by each layer:

* the computed move carries a bound ``err`` (one number per pair) on its
  distance from the real move, at every element: ``sum |w| (gamma(k) max
  |move| + err)`` after each sum of k products (``gamma``: Higham's bound on
  the rounding of any summation order); ReLU, maximum and the 0/1 dropout
  masks are 1-Lipschitz, so the bound carries through them;
* ``Relu``: the computed move keeps each input on its side, ``|move| <= |z|
  (1 - 2**-40)`` (strictly below ``|z|``; an input at exactly 0 needs a move
  of exactly 0, as both signs must keep it there): then the ReLU of the
  moved input is, in real numbers, the input's move where ``z > 0`` and 0
  elsewhere, and within ``err`` of the ReLU of the real move;
* ``Pooling``: the computed move keeps each window's first maximum its
  maximum, ``|move_e - move_max| <= max - x_e`` for every element e, which
  ``2 max_window |move| <= the window's smallest gap`` proves (at equality
  the maximum's value is the same either way);
* at the scores, the bound is below the book's own rounding bound of its
  forward pass (``rounding_bound``, the same recurrence over the
  activations): the perturbed scores computed here are then the real ones to
  within twice the rounding the book's own recomputation carries.

Above the last ``Convolution`` (where a move is cheap), a ReLU input or a
window maximum that does change side is evaluated exactly instead, on the
moved values (``relu(z + move) - relu(z)``, the window's new maximum minus
its old one; the bound grows by their rounding): the ``+h`` and ``-h``
moves then differ and are carried as rows of their own (``two_sided``).
A pair (entry, sample) where a check fails below that, or whose move is
not finite, is recomputed by the general path (``fastnum.layers.numerical``:
the layers above run on the perturbed output). Layers without ``propagate``
(``Sigmoid``, ``BatchNormalization``) above an entry send it there too.
"""

from typing import NamedTuple

import numpy as np

UNIT_ROUNDOFF = 2.0**-53
CROSSING_MARGIN = 1.0 - 2.0**-40
"""An input counts as staying on its side only while its largest move stays below ``|z| * CROSSING_MARGIN``."""
BOUND_SLACK = 1.0 + 2.0**-30
"""Each bound is multiplied by this once more: the bound's own arithmetic rounds too."""


def gamma(n_terms):
    """A bound on the relative rounding of a sum of ``n_terms`` products, in any order, with or without fused
    multiply-adds: ``|fl(sum) - sum| <= gamma(n) sum |terms|`` (Higham's gamma_n, with one term to spare)."""
    nu = (n_terms + 1) * UNIT_ROUNDOFF
    return BOUND_SLACK * nu / (1.0 - nu)


class Move(NamedTuple):
    """The move of one layer's output for a chunk of E parameter entries (their ``+h`` perturbation), N samples."""

    delta: np.ndarray
    """(R, N, *shape): the output's move; with ``channel >= 0`` only that channel's, (R, N, *shape[1:]).
    R = E rows, the ``+h`` moves (``-h`` moves minus them), or, once ``two_sided``, 2E: the ``+h``
    moves of the E entries, then their ``-h`` moves."""
    err: np.ndarray
    """(R, N): a bound on ``|delta - the real move|`` at every element of the pair's move."""
    channel: int
    """-1: ``delta`` covers the whole output; else the only channel (map, or unit) that moves."""
    failed: np.ndarray
    """(R, N) bool: the pairs whose linearity proof failed (recomputed by the general path)."""
    two_sided: bool = False
    """Whether the ``-h`` moves are rows of their own (after a ReLU or maximum that changed side)."""
    may_split: bool = False
    """Whether a layer may evaluate a side change exactly, making the move two-sided (set by the driver
    where no layer whose move costs a matrix product per map lies above)."""


def first_move(delta, err, channel):
    """A ``Move`` of a perturbed layer's own output (nothing failed yet); ``err`` (R, N)."""
    return Move(delta, err, int(channel), np.zeros(delta.shape[:2], dtype=bool))


def largest(values):
    """(R, N) the largest ``|value|`` of each pair's (R, N, ...) values."""
    r, n = values.shape[:2]
    return np.abs(values.reshape(r, n, -1)).max(axis=-1) if values.ndim > 2 else np.abs(values)


def two_sided(move, stays):
    """``move`` with its ``-h`` rows of their own (minus the ``+h`` rows, the same bounds), and ``stays``
    (a check of the move's rows, which holds for ``-move`` as for ``move``) matched to those rows."""
    if move.two_sided:
        return move, stays
    return (move._replace(delta=np.concatenate([move.delta, -move.delta]), err=np.concatenate([move.err, move.err]),
                          failed=np.concatenate([move.failed, move.failed]), two_sided=True),
            np.concatenate([stays, stays]))


def carried_bound(weight_sum, n_terms, move):
    """(R, N) the bound of a move after sums of ``n_terms`` products with weights whose largest
    ``sum |w|`` is ``weight_sum``: ``sum |w| (gamma(k) max |move| + err)``."""
    return weight_sum * BOUND_SLACK * (gamma(n_terms) * largest(move.delta) + move.err)


def weighted_rounding_bound(weight_sum, n_terms, bound, x, out):
    """(N,) the rounding of the book's own pass of an affine or convolution layer, per sample, given
    ``bound`` on its input's: ``sum |w| (gamma(k) max |x| + bound) + u max |out|`` (the bias added last)."""
    n_samples = out.shape[1]
    reach = gamma(n_terms) * np.abs(x[0]).reshape(n_samples, -1).max(axis=1) + bound
    return BOUND_SLACK * (weight_sum * reach + UNIT_ROUNDOFF * np.abs(out[0]).reshape(n_samples, -1).max(axis=1))


def unbounded_radius(layer, move, context):
    """The ``move_radius`` of a linear layer (affine, convolution, dropout): any multiple of a move stays
    linear, so nothing bounds it (``fastnum.layers.unit_moves``)."""
    return None


def limit_radius(limit, size):
    """(R, N) the largest factor s with ``s size <= limit`` in every element of each pair (``size`` and
    ``limit`` shaped like a move's delta, or broadcast to it): the ``move_radius`` of a layer whose proof
    is such a limit (a ReLU's distance to its kink, a pooling window's gap); inf where nothing moves."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(size > 0, limit / size, np.inf)
    return ratio.reshape(ratio.shape[0], ratio.shape[1], -1).min(axis=-1)


def failed_where(move, bad):
    """``move.failed`` or, per (row, sample), any element of ``bad`` (shaped like ``move.delta``)."""
    e, n = move.failed.shape
    return move.failed | bad.reshape(e, n, -1).any(axis=-1)
