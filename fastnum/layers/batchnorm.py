"""``BatchNormalization`` (the book's ``common/layers.py``): normalised by the batch in training mode.

Inputs of any shape are flattened per sample (N, D) as the book's layer
does for convolution outputs; ``gamma`` and ``beta`` have D entries. With a
leading perturbation axis (P, N, D) every perturbed network is normalised
by its own batch statistics.
"""

from dataclasses import dataclass

import numpy as np

from .._config import BN_EPS, BN_MOMENTUM


@dataclass(frozen=True)
class BatchNormalization:
    """Training: ``gamma (x - mean) / sqrt(var + 10e-7) + beta`` with the batch's mean and (biased)
    variance; evaluation: the running statistics instead (zeros before any training pass)."""

    gamma: str
    beta: str
    momentum: float = BN_MOMENTUM

    @property
    def param_keys(self):
        return {"gamma": self.gamma, "beta": self.beta}

    def output_shape(self, in_shape, params):
        return tuple(in_shape)

    def input_error(self, in_shape, params):
        """Why an input of one sample's shape ``in_shape`` does not fit, or None."""
        size, features = int(np.prod(in_shape)), params[self.gamma].size
        if size != features:
            return f"normalises {features} features per sample ({self.gamma} has {features}), not {size}"
        return None

    def forward(self, x, params, pass_):
        shape = x.shape
        flat = x.reshape(shape[0], shape[1], -1)
        if pass_.train:
            mu = flat.mean(axis=1, keepdims=True)
            xc = flat - mu
            var = np.mean(xc ** 2, axis=1, keepdims=True)
            std = np.sqrt(var + BN_EPS)
            xn = xc / std
            if pass_.records:
                pass_.stats[pass_.index] = (mu[0, 0], var[0, 0])
            cache = (xc, xn, std)
        else:
            mean, var = pass_.running.get(pass_.index, (None, None))
            d = flat.shape[-1]
            mean = np.zeros(d) if mean is None else mean
            var = np.zeros(d) if var is None else var
            xn = (flat - mean) / np.sqrt(var + BN_EPS)
            cache = (None, xn, None)
        out = params[self.gamma] * xn + params[self.beta]
        return out.reshape(shape), cache

    def backward(self, dout, params, cache):
        xc, xn, std = cache
        xc, xn, std = xc[0], xn[0], std[0]
        d = dout.reshape(dout.shape[1], -1)
        n = d.shape[0]
        dbeta = d.sum(axis=0)
        dgamma = np.sum(xn * d, axis=0)
        dxn = params[self.gamma] * d
        dxc = dxn / std
        dstd = -np.sum((dxn * xc) / (std * std), axis=0)
        dvar = 0.5 * dstd / std
        dxc += (2.0 / n) * xc * dvar
        dmu = np.sum(dxc, axis=0)
        dx = dxc - dmu / n
        return dx.reshape(dout.shape), {self.gamma: dgamma, self.beta: dbeta}

    def perturbed(self, x, out, cache, params, role, entries, h):
        """``out`` with ``gamma[u]`` (or ``beta[u]``) moved by +h then -h: feature u moves by
        ``+-h`` times its normalised value (or ``+-h``). (2E, N, ...)."""
        shape = out.shape
        flat_out = out.reshape(1, shape[1], -1)
        moved = np.repeat(flat_out, 2 * len(entries), axis=0)
        rows = np.arange(len(entries))
        if role == "gamma":
            xn = cache[1]  # the pass's normalised input, (1, N, D)
            step = h * xn[0][:, entries].T
        else:
            step = h
        moved[rows, :, entries] += step
        moved[len(entries) + rows, :, entries] -= step
        return moved.reshape((2 * len(entries),) + shape[1:])

    def working_size(self, in_shape, params):
        return 3 * int(np.prod(in_shape))
