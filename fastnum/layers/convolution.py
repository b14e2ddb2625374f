"""``Convolution`` (the book's ``common/layers.py``): im2col, then one matrix product.

``out[n, f, y, x] = b[f] + sum_{c, i, j} W[f, c, i, j] xpad[n, c, y*stride + i, x*stride + j]``
with the book's output size ``1 + (H + 2 pad - FH) // stride``.
"""

from dataclasses import dataclass

import numpy as np

from .moves import UNIT_ROUNDOFF, carried_bound, first_move, largest, unbounded_radius, weighted_rounding_bound


def windows(x_padded, fh, fw, stride, out_h, out_w):
    """(..., out_h, out_w, fh, fw) views of every window of the last two axes (no copy)."""
    view = np.lib.stride_tricks.sliding_window_view(x_padded, (fh, fw), axis=(-2, -1))
    return view[..., : (out_h - 1) * stride + 1 : stride, : (out_w - 1) * stride + 1 : stride, :, :]


def padded(x, pad):
    """Any (..., H, W) maps zero-padded by ``pad`` on each side of H and W (a zero array filled: several
    times faster than ``np.pad`` on the small maps of a chunk of moves)."""
    if not pad:
        return x
    out = np.zeros(x.shape[:-2] + (x.shape[-2] + 2 * pad, x.shape[-1] + 2 * pad), dtype=x.dtype)
    out[..., pad:-pad, pad:-pad] = x
    return out


def window_max(values, fh, fw, stride, pad, out_h, out_w):
    """(..., out_h, out_w): the largest of ``values`` (..., H, W) under each window (zero padding); one
    elementwise maximum per tap (much faster than reducing the strided window view)."""
    maps = padded(values, pad)
    largest = None
    for i in range(fh):
        for j in range(fw):
            tap = maps[..., i:i + (out_h - 1) * stride + 1:stride, j:j + (out_w - 1) * stride + 1:stride]
            largest = tap.copy() if largest is None else np.maximum(largest, tap, out=largest)
    return largest


def col2im(dcol, image_shape, fh, fw, stride, pad, out_h, out_w):
    """The book's ``col2im``: each window's entries added back to the pixels they came from."""
    n, c, height, width = image_shape
    col = dcol.reshape(n, out_h, out_w, c, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    image = np.zeros((n, c, height + 2 * pad + stride - 1, width + 2 * pad + stride - 1))
    for y in range(fh):
        for x in range(fw):
            image[:, :, y:y + stride * out_h:stride, x:x + stride * out_w:stride] += col[:, :, y, x]
    return image[:, :, pad:height + pad, pad:width + pad]


def image_input_error(in_shape):
    """Why one sample's ``in_shape`` is not an image (channels, height, width), or None: what a
    convolution or pooling layer takes."""
    if len(in_shape) != 3:
        return f"takes images (channels, height, width), its input has shape {tuple(in_shape)}"
    return None


@dataclass(frozen=True)
class Convolution:
    """The book's ``Convolution(W, b, stride, pad)``: filters (FN, C, FH, FW), bias (FN,)."""

    W: str
    b: str
    stride: int = 1
    pad: int = 0

    HEAVY_MOVE = True
    """A move costs a matrix product per map: ReLUs and maxima below it are not split (``fastnum.layers.moves``)."""

    @property
    def param_keys(self):
        return {"W": self.W, "b": self.b}

    def input_error(self, in_shape, params):
        """Why an input of one sample's shape ``in_shape`` does not fit, or None."""
        not_an_image = image_input_error(in_shape)
        if not_an_image:
            return not_an_image
        channels = params[self.W].shape[1]
        if in_shape[0] != channels:
            return f"takes {channels} channels ({self.W} is {params[self.W].shape}), its input has {in_shape[0]}"
        if min(self.output_shape(in_shape, params)[1:]) < 1:
            return (f"has {params[self.W].shape[2]}x{params[self.W].shape[3]} filters, larger than its "
                    f"{tuple(in_shape[1:])} input image padded by {self.pad}")
        return None

    def output_shape(self, in_shape, params):
        n_filters, _, fh, fw = params[self.W].shape
        _, height, width = in_shape
        return (n_filters, 1 + (height + 2 * self.pad - fh) // self.stride,
                1 + (width + 2 * self.pad - fw) // self.stride)

    def forward(self, x, params, pass_):
        W = params[self.W]
        n_filters, _, fh, fw = W.shape
        n_perturbations, n_samples, c, height, width = x.shape
        _, out_h, out_w = self.output_shape((c, height, width), params)
        images = x.reshape(n_perturbations * n_samples, c, height, width)
        col = windows(padded(images, self.pad), fh, fw, self.stride, out_h, out_w)
        col = col.transpose(0, 2, 3, 1, 4, 5).reshape(n_perturbations * n_samples * out_h * out_w, -1)
        out = np.dot(col, W.reshape(n_filters, -1).T) + params[self.b]
        out = out.reshape(n_perturbations * n_samples, out_h, out_w, n_filters).transpose(0, 3, 1, 2)
        return out.reshape(n_perturbations, n_samples, n_filters, out_h, out_w), (images.shape, col)

    def backward(self, dout, params, cache):
        image_shape, col = cache
        W = params[self.W]
        n_filters, _, fh, fw = W.shape
        out_h, out_w = dout.shape[-2:]
        d = dout.reshape(-1, n_filters, out_h, out_w).transpose(0, 2, 3, 1).reshape(-1, n_filters)
        grads = {self.b: np.sum(d, axis=0), self.W: np.dot(col.T, d).transpose(1, 0).reshape(W.shape)}
        dcol = np.dot(d, W.reshape(n_filters, -1))
        dx = col2im(dcol, image_shape, fh, fw, self.stride, self.pad, out_h, out_w)
        return dx.reshape((1,) + tuple(image_shape)), grads

    def perturbed(self, x, out, cache, params, role, entries, h):
        """``out`` with filter entry (f, c, i, j) moved by +h then -h: map f moves at every position
        by ``+-h`` times the pixel under that tap (``+-h`` for ``b[f]``). (2E, N, F, OH, OW)."""
        moved = np.repeat(out, 2 * len(entries), axis=0)
        rows = np.arange(len(entries))
        if role == "W":
            W = params[self.W]
            filters, channels, taps_i, taps_j = np.unravel_index(entries, W.shape)
            out_h, out_w = out.shape[-2:]
            view = windows(padded(x[0], self.pad), W.shape[2], W.shape[3], self.stride, out_h, out_w)
            step = h * view[:, channels, :, :, taps_i, taps_j]  # (E, N, OH, OW)
        else:
            filters, step = entries, h
        moved[rows, :, filters] += step
        moved[len(entries) + rows, :, filters] -= step
        return moved

    # -- moves (fastnum.layers.moves) ------------------------------------------------------------

    def move_channels(self, params, role, entries):
        """The map each entry moves: ``f`` of ``W[f, c, i, j]`` or of ``b[f]``."""
        if role == "b":
            return np.asarray(entries)
        return np.asarray(entries) // int(np.prod(params[self.W].shape[1:]))

    def first_move(self, x, out, params, role, entries, h):
        """The output's move for entries of one map f: ``h`` times the pixel under each filter entry's
        tap at every position (one rounding), or ``h`` everywhere for ``b[f]``."""
        W = params[self.W]
        out_h, out_w = out.shape[-2:]
        if role == "b":
            (f,) = set(np.asarray(entries).tolist())
            delta = np.full((1, out.shape[1], out_h, out_w), h)
            return first_move(delta, np.zeros(delta.shape[:2]), f)
        filters, channels, taps_i, taps_j = np.unravel_index(entries, W.shape)
        view = windows(padded(x[0], self.pad), W.shape[2], W.shape[3], self.stride, out_h, out_w)
        delta = h * view[:, channels, :, :, taps_i, taps_j]  # (E, N, OH, OW)
        return first_move(delta, 2 * UNIT_ROUNDOFF * largest(delta), filters[0])

    def move_context(self, x, out, cache, params, pass_):
        """The output's spatial size (what a move of the input becomes)."""
        return out.shape[-2:]

    move_radius = unbounded_radius

    def propagate(self, move, context, params):
        """The move of the output (without the bias, which does not move): the convolution of the input's
        move, a matrix product per pair; the bound ``max_f sum |W[f]| * (gamma |move| + err)``."""
        W = params[self.W]
        n_filters, _, fh, fw = W.shape
        e, n = move.failed.shape
        out_h, out_w = context
        if move.channel >= 0:  # one input map moves: its column of filters
            filters = W[:, move.channel].reshape(n_filters, -1)
            maps = move.delta.reshape(e * n, 1, *move.delta.shape[2:])
        else:
            filters = W.reshape(n_filters, -1)
            maps = move.delta.reshape(e * n, *move.delta.shape[2:])
        # im2col with the positions innermost (copied in runs of a row), then one product per pair: the
        # output comes out as (pair, filter, position), the moves' own layout, with no transpose to copy
        col = windows(padded(maps, self.pad), fh, fw, self.stride, out_h, out_w)
        col = col.transpose(0, 1, 4, 5, 2, 3).reshape(e * n, filters.shape[1], out_h * out_w)
        delta = np.matmul(filters, col).reshape(e, n, n_filters, out_h, out_w)
        err = carried_bound(np.abs(filters).sum(axis=1).max(), filters.shape[1], move)
        return move._replace(delta=delta, err=err, channel=-1)

    def rounding_bound(self, bound, x, out, params):
        """(N,) a bound on the rounding of the book's own pass of this layer per sample, given ``bound``
        on its input's (``moves.weighted_rounding_bound``)."""
        filters = params[self.W].reshape(params[self.W].shape[0], -1)
        return weighted_rounding_bound(np.abs(filters).sum(axis=1).max(), filters.shape[1], bound, x, out)

    def working_size(self, in_shape, params):
        """Floats per sample a pass holds: its im2col matrix and its output."""
        n_filters, channels, fh, fw = params[self.W].shape
        _, out_h, out_w = self.output_shape(in_shape, params)
        return out_h * out_w * (channels * fh * fw + 2 * n_filters)
