"""``SoftmaxWithLoss`` (the book's ``common/layers.py``): softmax, then ``cross_entropy_error``."""

from dataclasses import dataclass

import numpy as np

LOG_EPS = 1e-7
"""What the book adds inside the log."""


@dataclass(frozen=True)
class SoftmaxWithLoss:
    """``-sum_n log(softmax(x)[n, t_n] + 1e-7) / N``, the softmax with the row maximum subtracted."""

    @property
    def param_keys(self):
        return {}

    @staticmethod
    def softmax(x):
        shifted = x - np.max(x, axis=-1, keepdims=True)
        return np.exp(shifted) / np.sum(np.exp(shifted), axis=-1, keepdims=True)

    def loss(self, scores, labels):
        """(P,) losses of the (P, N, O) scores for class indices ``labels`` (N,)."""
        y = self.softmax(scores)
        n_samples = labels.shape[0]
        return -np.sum(np.log(y[:, np.arange(n_samples), labels] + LOG_EPS), axis=-1) / n_samples

    def backward(self, scores, labels):
        """``(softmax(scores) - onehot(t)) / N`` (P = 1)."""
        y = self.softmax(scores)
        y[0, np.arange(labels.shape[0]), labels] -= 1
        return y / labels.shape[0]
