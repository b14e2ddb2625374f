"""``Pooling`` (the book's ``common/layers.py``): the maximum of each window, per channel."""

from dataclasses import dataclass

import numpy as np

from .convolution import col2im, image_input_error, padded, window_max, windows
from .moves import BOUND_SLACK, UNIT_ROUNDOFF, failed_where, largest, limit_radius, two_sided


@dataclass(frozen=True)
class Pooling:
    """Max pooling: windows of ``pool_h`` x ``pool_w`` every ``stride`` pixels (padded with zeros by
    ``pad``, as the book's im2col); the backward pass routes to each window's first maximum."""

    pool_h: int
    pool_w: int
    stride: int = 2
    pad: int = 0

    @property
    def param_keys(self):
        return {}

    def input_error(self, in_shape, params):
        """Why an input of one sample's shape ``in_shape`` does not fit, or None."""
        not_an_image = image_input_error(in_shape)
        if not_an_image:
            return not_an_image
        if min(self.output_shape(in_shape, params)[1:]) < 1:
            return f"has {self.pool_h}x{self.pool_w} windows, larger than its {tuple(in_shape[1:])} input image"
        return None

    def output_shape(self, in_shape, params):
        c, height, width = in_shape
        return (c, int(1 + (height - self.pool_h) / self.stride), int(1 + (width - self.pool_w) / self.stride))

    def forward(self, x, params, pass_):
        n_perturbations, n_samples, c, height, width = x.shape
        _, out_h, out_w = self.output_shape((c, height, width), params)
        images = x.reshape(n_perturbations * n_samples, c, height, width)
        view = windows(padded(images, self.pad), self.pool_h, self.pool_w, self.stride, out_h, out_w)
        flat = view.reshape(view.shape[:4] + (self.pool_h * self.pool_w,))
        out = flat.max(axis=-1)
        cache = (images.shape, np.argmax(flat, axis=-1)) if n_perturbations == 1 else None
        return out.reshape(n_perturbations, n_samples, c, out_h, out_w), cache

    def backward(self, dout, params, cache):
        image_shape, argmax = cache
        n, c, out_h, out_w = dout.shape[1:]
        size = self.pool_h * self.pool_w
        dmax = np.zeros((n, out_h, out_w, c, size))
        routed = argmax.transpose(0, 2, 3, 1)
        np.put_along_axis(dmax, routed[..., None], dout[0].transpose(0, 2, 3, 1)[..., None], axis=-1)
        dx = col2im(dmax.reshape(n * out_h * out_w, c * size), image_shape, self.pool_h, self.pool_w, self.stride,
                    self.pad, out_h, out_w)
        return dx.reshape((1,) + tuple(image_shape)), {}

    def move_context(self, x, out, cache, params, pass_):
        """Per sample and channel: where each window's first maximum lies (a flat index into the padded
        map) and the window's smallest gap between that maximum and any other of its elements."""
        out_h, out_w = out.shape[-2:]
        size = self.pool_h * self.pool_w
        maps = padded(x[0], self.pad)  # (N, C, HP, WP)
        view = windows(maps, self.pool_h, self.pool_w, self.stride, out_h, out_w)
        flat = view.reshape(view.shape[:-2] + (size,))
        first = np.argmax(flat, axis=-1)
        maxima = np.take_along_axis(flat, first[..., None], axis=-1)
        gap = maxima - flat
        np.put_along_axis(gap, first[..., None], np.inf, axis=-1)  # the maximum against itself: nothing to prove
        rows = np.arange(out_h)[:, None] * self.stride + first // self.pool_w
        cols = np.arange(out_w)[None, :] * self.stride + first % self.pool_w
        n_samples, channels = first.shape[:2]
        plane = maps.shape[-2] * maps.shape[-1]
        at_max = rows * maps.shape[-1] + cols  # (N, C, OH, OW) in the padded map
        # as indices into one sample's maps, (N, C * OH * OW), and into one channel's, (N, C, OH * OW)
        in_sample = (at_max + plane * np.arange(channels)[:, None, None]).reshape(n_samples, -1)
        return in_sample, at_max.reshape(n_samples, channels, -1), gap.min(axis=-1), maps, maxima[..., 0]

    def move_radius(self, move, context):
        """(R, N) the largest factor s by which each pair's move may be multiplied with every window's first
        maximum kept its maximum, ``2 s max_window |move| <= the smallest gap`` (``propagate``'s proof; for
        ``fastnum.layers.unit_moves``)."""
        gap = context[2] if move.channel < 0 else context[2][:, move.channel]
        reach = window_max(np.abs(move.delta), self.pool_h, self.pool_w, self.stride, self.pad, *gap.shape[-2:])
        return limit_radius(gap, 2.0 * reach)

    def propagate(self, move, context, params):
        """Linear while the computed move keeps each window's first maximum its maximum, which ``2
        max_window |move| <= the smallest gap`` proves (``|move_e - move_max|`` is at most that; at
        equality the maximum's value is the same either way); the window's move is then its maximum's.
        Where the move ``may_split``, a window that fails is evaluated exactly (its new maximum minus its
        old one). The maximum is 1-Lipschitz: the bound carries over."""
        in_sample, in_channel, gap, maps, maxima = context
        index = in_sample
        if move.channel >= 0:
            index, gap = in_channel[:, move.channel], gap[:, move.channel]
            maps, maxima = maps[:, move.channel], maxima[:, move.channel]
        out_shape = gap.shape[-2:]
        reach = window_max(np.abs(move.delta), self.pool_h, self.pool_w, self.stride, self.pad, *out_shape)
        stays = 2.0 * reach <= gap
        n = move.failed.shape[1]

        def at_maxima(values):  # one gather per row: every sample's maxima, offset by its place
            flat = padded(values, self.pad).reshape(values.shape[0], -1)
            per_sample = flat.shape[1] // n
            picked = np.take(flat, (index + (np.arange(n) * per_sample)[:, None]).ravel(), axis=1)
            return picked.reshape((values.shape[0], n) + gap.shape[1:])

        if not move.may_split or stays.all():
            return move._replace(delta=at_maxima(move.delta), failed=failed_where(move, ~stays))
        move, stays = two_sided(move, stays)
        moved = window_max(maps + padded(move.delta, self.pad), self.pool_h, self.pool_w, self.stride, 0,
                           *out_shape)
        exact = moved - maxima
        rounding = BOUND_SLACK * UNIT_ROUNDOFF * (2 * largest(moved) + largest(exact))
        return move._replace(delta=np.where(stays, at_maxima(move.delta), exact), err=move.err + rounding)

    def rounding_bound(self, bound, x, out, params):
        return bound

    def working_size(self, in_shape, params):
        return 2 * int(np.prod(in_shape))
