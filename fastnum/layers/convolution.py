"""``Convolution`` (the book's ``common/layers.py``): im2col, then one matrix product.

``out[n, f, y, x] = b[f] + sum_{c, i, j} W[f, c, i, j] xpad[n, c, y*stride + i, x*stride + j]``
with the book's output size ``1 + (H + 2 pad - FH) // stride``.
"""

from dataclasses import dataclass

import numpy as np


def padded(x, pad):
    """(M, C, H, W) images zero-padded by ``pad`` on each side of H and W."""
    return np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant") if pad else x


def windows(x_padded, fh, fw, stride, out_h, out_w):
    """(M, C, out_h, out_w, fh, fw) views of every window (no copy)."""
    view = np.lib.stride_tricks.sliding_window_view(x_padded, (fh, fw), axis=(2, 3))
    return view[:, :, : (out_h - 1) * stride + 1 : stride, : (out_w - 1) * stride + 1 : stride]


def col2im(dcol, image_shape, fh, fw, stride, pad, out_h, out_w):
    """The book's ``col2im``: each window's entries added back to the pixels they came from."""
    n, c, height, width = image_shape
    col = dcol.reshape(n, out_h, out_w, c, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    image = np.zeros((n, c, height + 2 * pad + stride - 1, width + 2 * pad + stride - 1))
    for y in range(fh):
        for x in range(fw):
            image[:, :, y:y + stride * out_h:stride, x:x + stride * out_w:stride] += col[:, :, y, x]
    return image[:, :, pad:height + pad, pad:width + pad]


@dataclass(frozen=True)
class Convolution:
    """The book's ``Convolution(W, b, stride, pad)``: filters (FN, C, FH, FW), bias (FN,)."""

    W: str
    b: str
    stride: int = 1
    pad: int = 0

    @property
    def param_keys(self):
        return {"W": self.W, "b": self.b}

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

    def working_size(self, in_shape, params):
        """Floats per sample a pass holds: its im2col matrix and its output."""
        n_filters, channels, fh, fw = params[self.W].shape
        _, out_h, out_w = self.output_shape(in_shape, params)
        return out_h * out_w * (channels * fh * fw + 2 * n_filters)
