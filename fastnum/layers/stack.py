"""A network as the book builds it: a list of layers and a loss layer, run in numpy.

``LayerStack`` is what every fastnum network hands the engine: the layers
(``fastnum.layers``) in order, the ``SoftmaxWithLoss`` at the end, the keys
of ``params`` whose weight decay joins the loss, and the shape of one
sample. Its ``forward``, ``loss`` and ``gradient`` are the book's passes
(``predict``, ``loss``, backprop's ``gradient``); ``fastnum.layers.numerical``
computes its numerical gradient.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ForwardPass:
    """The mode of one pass and what it reads and leaves: dropout masks, batch norm's statistics."""

    train: bool
    """Training mode: batch norm normalises by the batch, dropout drops (the book's ``train_flg``)."""
    masks: dict = field(default_factory=dict)
    """Layer index -> dropout mask (N, ...): given, or drawn from ``np.random`` when first needed."""
    running: dict = field(default_factory=dict)
    """Layer index -> (running_mean, running_var), read in evaluation mode (zeros when absent, as the book)."""
    stats: dict = field(default_factory=dict)
    """Layer index -> (batch mean, batch variance), filled by a training-mode pass that ``records``."""
    records: bool = True
    """Whether batch statistics are written to ``stats`` (not by the perturbed passes)."""
    index: int = 0
    """The layer being run (set by ``LayerStack``)."""


@dataclass(frozen=True)
class LayerStack:
    """The layers of a network, its loss layer and the weight decay of its loss.

    Parameters
    ----------
    layers : tuple of layers
        ``fastnum.layers`` kinds, in the order the book's ``predict`` runs them.
    loss_layer : SoftmaxWithLoss
    sample_shape : tuple of int
        One sample's shape as the first layer takes it ((784,), (1, 28, 28)).
    weight_decay : tuple of (str, float)
        ``(key, lambda)``: ``0.5 * lambda * sum(params[key]**2)`` joins the loss
        (the book's ``MultiLayerNet``: every affine weight).
    """

    layers: tuple
    loss_layer: object
    sample_shape: tuple
    weight_decay: tuple = ()

    def param_keys(self):
        """Every key of ``params`` a layer reads, in layer order."""
        return [key for layer in self.layers for key in layer.param_keys.values()]

    def _batch(self, x):
        x = np.asarray(x, dtype=np.float64)
        return x.reshape((1, x.shape[0]) + tuple(self.sample_shape))

    def run(self, params, x, pass_, first=0, keep=False):
        """Layers ``first..`` on ``x`` (P, N, ...); returns the scores (P, N, O) and, when ``keep``, each
        layer's (input, output, cache)."""
        trace = []
        for index in range(first, len(self.layers)):
            pass_.index = index
            out, cache = self.layers[index].forward(x, params, pass_)
            if keep:
                trace.append((x, out, cache))
            x = out
        return x, trace

    def forward(self, params, x, pass_, keep=False):
        """The scores (N, O) of ``x`` (N, *sample_shape), and the trace when ``keep``."""
        scores, trace = self.run(params, self._batch(x), pass_, keep=keep)
        return scores[0], trace

    def decay(self, params):
        """The weight decay term of the loss: ``sum 0.5 lambda sum(W**2)``."""
        total = 0
        for key, lam in self.weight_decay:
            total += 0.5 * lam * np.sum(params[key] ** 2)
        return total

    def loss(self, params, x, labels, pass_):
        """The book's loss: softmax cross-entropy (1e-7 in the log) plus the weight decay."""
        scores, _ = self.run(params, self._batch(x), pass_)
        return float(self.loss_layer.loss(scores, labels)[0] + self.decay(params))

    def gradient(self, params, x, labels, pass_):
        """Backpropagation of the loss (the book's ``gradient``): dict of every key, in layer order."""
        scores, trace = self.run(params, self._batch(x), pass_, keep=True)
        dout = self.loss_layer.backward(scores, labels)
        grads = {}
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            dout, layer_grads = layer.backward(dout, params, trace[index][2])
            grads.update(layer_grads)
        for key, lam in self.weight_decay:
            grads[key] = grads[key] + lam * params[key]
        return {key: grads[key] for key in self.param_keys()}
