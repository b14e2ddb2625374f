"""``Affine`` (the book's ``common/layers.py``): ``x.reshape(N, -1) @ W + b``."""

from dataclasses import dataclass

import numpy as np

from .moves import UNIT_ROUNDOFF, carried_bound, first_move, largest, unbounded_radius, weighted_rounding_bound


@dataclass(frozen=True)
class Affine:
    """``out = x.reshape(N, -1) @ params[W] + params[b]``."""

    W: str
    b: str

    @property
    def param_keys(self):
        return {"W": self.W, "b": self.b}

    def output_shape(self, in_shape, params):
        return (params[self.W].shape[1],)

    def input_error(self, in_shape, params):
        """Why an input of one sample's shape ``in_shape`` does not fit, or None."""
        n_in, size = params[self.W].shape[0], int(np.prod(in_shape))
        if size != n_in:
            return f"takes {n_in} inputs per sample ({self.W} is {params[self.W].shape}), not {size}"
        return None

    def forward(self, x, params, pass_):
        n_perturbations, n_samples = x.shape[:2]
        flat = x.reshape(n_perturbations * n_samples, -1)
        out = np.dot(flat, params[self.W]) + params[self.b]
        return out.reshape(n_perturbations, n_samples, -1), (x.shape, flat)

    def backward(self, dout, params, cache):
        shape, flat = cache
        d = dout.reshape(-1, dout.shape[-1])
        dx = np.dot(d, params[self.W].T).reshape(shape)
        return dx, {self.W: np.dot(flat.T, d), self.b: np.sum(d, axis=0)}

    def perturbed(self, x, out, cache, params, role, entries, h):
        """``out`` with weight entry (i, j) (flat ``entries`` of ``W``) moved by +h then -h: output
        column j moves by ``+-h x[:, i]`` (or ``+-h`` for ``b[j]``). (2E, N, n_out)."""
        n_out = out.shape[-1]
        moved = np.repeat(out, 2 * len(entries), axis=0)
        rows = np.arange(len(entries))
        if role == "W":
            inputs, columns = np.divmod(entries, n_out)
            step = h * x.reshape(x.shape[1], -1)[:, inputs].T
        else:
            columns, step = entries, h
        moved[rows, :, columns] += step
        moved[len(entries) + rows, :, columns] -= step
        return moved

    # -- moves (fastnum.layers.moves) ------------------------------------------------------------

    def move_channels(self, params, role, entries):
        """The output unit each entry moves: j of ``W[i, j]`` or of ``b[j]``."""
        if role == "b":
            return np.asarray(entries)
        return np.asarray(entries) % params[self.W].shape[1]

    def first_move(self, x, out, params, role, entries, h):
        """Unit j's move for entries of one column j: ``h x[:, i]`` for ``W[i, j]`` (one rounding), ``h`` for
        ``b[j]``. (E, N)."""
        n_samples = out.shape[1]
        if role == "b":
            (j,) = set(np.asarray(entries).tolist())
            delta = np.full((1, n_samples), h)
            return first_move(delta, np.zeros(delta.shape), j)
        inputs, columns = np.divmod(np.asarray(entries), params[self.W].shape[1])
        delta = h * x.reshape(n_samples, -1)[:, inputs].T
        return first_move(delta, 2 * UNIT_ROUNDOFF * largest(delta), columns[0])

    def unit_scales(self, x, params, role, entries):
        """(R, N) the steps of the entries' units per sample, in units of h (``fastnum.layers.unit_moves``),
        and (E,) each entry's row: ``W[i, j]`` steps unit j by ``h x[n, i]`` (a row per input i), ``b[j]`` by
        ``h`` (one row of ones)."""
        n_samples = x.shape[1]
        if role == "b":
            return np.ones((1, n_samples)), np.zeros(len(entries), dtype=np.int64)
        inputs, row_of_entry = np.unique(np.asarray(entries) // params[self.W].shape[1], return_inverse=True)
        return x.reshape(n_samples, -1)[:, inputs].T, row_of_entry.reshape(-1)

    def move_context(self, x, out, cache, params, pass_):
        return None

    move_radius = unbounded_radius

    def propagate(self, move, context, params):
        """The move of the output (the bias does not move): the input's move (flattened as the book's
        ``x.reshape(N, -1)``; one channel moving is a block of rows) times ``W``; the bound
        ``max_j sum_i |W[i, j]| * (gamma max |move| + err)``."""
        W = params[self.W]
        e, n = move.failed.shape
        if move.channel >= 0:
            rows = int(np.prod(move.delta.shape[2:]))  # the channel's entries, consecutive in the flattening
            weights = W[move.channel * rows:(move.channel + 1) * rows]
        else:
            weights = W
        flat = move.delta.reshape(e * n, -1)
        delta = np.dot(flat, weights).reshape(e, n, -1)
        err = carried_bound(np.abs(weights).sum(axis=0).max(), weights.shape[0], move)
        return move._replace(delta=delta, err=err, channel=-1)

    def rounding_bound(self, bound, x, out, params):
        """(N,) a bound on the rounding of the book's own pass of this layer per sample, given ``bound``
        on its input's (``moves.weighted_rounding_bound``)."""
        W = params[self.W]
        return weighted_rounding_bound(np.abs(W).sum(axis=0).max(), W.shape[0], bound, x, out)

    def working_size(self, in_shape, params):
        """Floats per sample one pass of this layer holds (its output)."""
        return params[self.W].shape[1]
