"""``Pooling`` (the book's ``common/layers.py``): the maximum of each window, per channel."""

from dataclasses import dataclass

import numpy as np

from .convolution import col2im, padded, windows


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

    def working_size(self, in_shape, params):
        return 2 * int(np.prod(in_shape))
