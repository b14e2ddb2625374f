"""``Affine`` (the book's ``common/layers.py``): ``x.reshape(N, -1) @ W + b``."""

from dataclasses import dataclass

import numpy as np


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

    def working_size(self, in_shape, params):
        """Floats per sample one pass of this layer holds (its output)."""
        return params[self.W].shape[1]
