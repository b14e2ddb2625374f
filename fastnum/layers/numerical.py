"""The numerical gradient of any ``LayerStack``, exact, in vectorised numpy.

For every parameter entry p the book's ``(L(p + h) - L(p - h)) / (2h)``, each
loss evaluated at the perturbed parameters. What stays the same is not
recomputed: the layers below p's layer run once; p's layer gives its output
with p moved (``layer.perturbed``: the output plus the move, the same real
number as recomputing it); the layers above run on a batch of perturbed
networks at once, a leading axis of 2E networks (E entries, each moved by
+h and by -h) over the N samples, with the dropout masks of the call and,
for batch norm, each network's own batch statistics. The weight decay term
moves by ``0.5 lambda ((w + h)**2 - (w - h)**2)`` for a decayed weight.

This is the plain-numpy path: cost about twice a forward pass above the
layer per entry, vectorised; what a first call uses while compiled kernels
are not cached (the book's toy checks take milliseconds), and what
``fastnum.numerical_gradient_of`` falls back on.
"""

import numpy as np

from .._config import H
from .stack import ForwardPass

MEMORY_BUDGET = 64 * 2**20
"""Bytes the perturbed networks of one chunk may take (their largest activations)."""


def _entries_per_chunk(stack, params, index, in_shape, n_samples):
    """How many entries of layer ``index``'s parameters to perturb at once (2 networks each)."""
    shape = in_shape
    largest = 1
    for layer in stack.layers[index:]:
        largest = max(largest, layer.working_size(shape, params))
        shape = layer.output_shape(shape, params)
    per_entry = 2 * n_samples * largest * 8
    return int(max(1, min(4096, MEMORY_BUDGET // per_entry)))


def numerical_gradient(stack, params, x, labels, pass_, h=H, entries=None, on_entries=None):
    """Every entry of every parameter ``stack``'s layers read: dict in layer order.

    ``pass_`` is the call's ``ForwardPass`` (its mode, dropout masks drawn here
    on the first pass and reused by every perturbed one, running statistics);
    a training-mode pass leaves batch norm's statistics in ``pass_.stats``.
    With ``entries`` (key -> flat indices) only those entries: key -> their
    values, in the order given (a sampled check of a large network).
    ``on_entries(n)`` is called after each chunk of ``n`` entries (a progress bar).
    """
    scores, trace = stack.forward(params, x, pass_, keep=True)
    decay = dict(stack.weight_decay)
    n_samples = labels.shape[0]
    grads = {}
    shape = tuple(stack.sample_shape)
    for index, layer in enumerate(stack.layers):
        layer_in, layer_out, cache = trace[index]
        if layer.param_keys:
            chunk = _entries_per_chunk(stack, params, index, shape, n_samples)
            above = ForwardPass(train=pass_.train, masks=pass_.masks, running=pass_.running, records=False)
            for role, key in layer.param_keys.items():
                if entries is not None and key not in entries:
                    continue
                wanted = np.arange(params[key].size) if entries is None else np.asarray(entries[key], dtype=np.int64)
                grad = np.empty(wanted.size)
                for start in range(0, wanted.size, chunk):
                    some = wanted[start:start + chunk]
                    moved = layer.perturbed(layer_in, layer_out, cache, params, role, some, h)
                    top, _ = stack.run(params, moved, above, first=index + 1)
                    losses = stack.loss_layer.loss(top, labels)
                    e = len(some)
                    grad[start:start + e] = (losses[:e] - losses[e:]) / (2 * h)
                    if on_entries is not None:
                        on_entries(e)
                if key in decay:
                    w = params[key].ravel()[wanted]
                    grad += 0.5 * decay[key] * ((w + h) * (w + h) - (w - h) * (w - h)) / (2 * h)
                grads[key] = grad.reshape(params[key].shape) if entries is None else grad
        shape = layer.output_shape(shape, params)
    return {key: grads[key] for key in stack.param_keys() if key in grads}


def _layer_flops(layer, in_shape, params):
    """Floating-point operations of one layer's forward pass for one sample (about)."""
    size = int(np.prod(in_shape))
    if hasattr(layer, "W") and hasattr(layer, "stride"):  # a convolution
        n_filters, channels, fh, fw = params[layer.W].shape
        _, out_h, out_w = layer.output_shape(in_shape, params)
        return 2 * out_h * out_w * n_filters * channels * fh * fw
    if hasattr(layer, "W"):  # an affine layer
        return 2 * size * params[layer.W].shape[1]
    return 10 * size


def estimated_flops(stack, params, n_samples):
    """About the floating-point operations of ``numerical_gradient`` on ``n_samples`` samples: for
    every parameter entry, two passes of the layers above its own (``params`` may hold any arrays of
    the right shapes)."""
    shape = tuple(stack.sample_shape)
    per_layer = []
    for layer in stack.layers:
        per_layer.append(_layer_flops(layer, shape, params))
        shape = layer.output_shape(shape, params)
    n_out = int(np.prod(shape))
    total = sum(per_layer) * n_samples
    shape = tuple(stack.sample_shape)
    for index, layer in enumerate(stack.layers):
        out_shape = layer.output_shape(shape, params)
        entries = sum(int(np.prod(params[key].shape)) for key in layer.param_keys.values())
        # the moved output (copied), then the layers above and the loss
        above = 2 * int(np.prod(out_shape)) + sum(per_layer[index + 1:]) + 20 * n_out
        total += entries * 2 * n_samples * above
        shape = out_shape
    return float(total)
