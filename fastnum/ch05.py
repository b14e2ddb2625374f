"""Chapter 5's ``TwoLayerNet`` (``ch05/two_layer_net.py``): Affine, ReLU, Affine, SoftmaxWithLoss.

Replaces ``from two_layer_net import TwoLayerNet`` in the book's chapter-5
scripts (``gradient_check.py``, ``train_neuralnet.py``)::

    from fastnum.ch05 import TwoLayerNet

The same kernels as chapter 4's ``fastnum.TwoLayerNet(activation="relu")``;
what differs is the book's chapter-5 API: ``predict`` returns the scores (the
last affine layer's output, no softmax) and ``accuracy`` takes their argmax.
"""

import numpy as np

from ._concurrency import serialised
from ._first_run import numpy_path
from .progress import first_call_notice
from .two_layer import TwoLayerNet as _ChapterFourNet


class TwoLayerNet(_ChapterFourNet):
    """The book's chapter-5 two-layer network (ReLU hidden layer).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
    weight_init_std : float, default 0.01
        ``W1`` then ``W2`` are ``weight_init_std * np.random.randn(...)``, as the book.

    Methods ``loss``, ``numerical_gradient`` (compiled, exact: see
    ``fastnum.TwoLayerNet``) and ``gradient`` (backprop) are chapter 4's with
    ReLU, which is what chapter 5's layers compute.
    """

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
        super().__init__(input_size, hidden_size, output_size, weight_init_std=weight_init_std, activation="relu")

    @serialised
    def predict(self, x):
        """Scores: the last affine layer's output, (B, output_size) (chapter 5 has no softmax here)."""
        params = self._params()
        x, _, single = self._inputs(x)
        if numpy_path(self, "predict", x, None):
            scores = self._numpy_scores(x, params)
        else:
            with first_call_notice("ch05.TwoLayerNet.predict"):
                scores = self._forward(x, params).a2.copy()
        return scores[0] if single else scores

    @serialised
    def accuracy(self, x, t):
        """Fraction of samples whose highest score is the label."""
        params = self._params()
        x, labels, _ = self._inputs(x, t)
        if numpy_path(self, "accuracy", x, labels):
            predicted = np.argmax(self._numpy_scores(x, params), axis=1)
        else:
            with first_call_notice("ch05.TwoLayerNet.accuracy"):
                predicted = np.argmax(self._forward(x, params).a2, axis=1)
        return np.sum(predicted == labels) / float(x.shape[0])


__all__ = ["TwoLayerNet"]
