"""``SoftmaxWithLoss`` (the book's ``common/layers.py``): softmax, then ``cross_entropy_error``."""

from dataclasses import dataclass

import numpy as np

from .._config import LOG_EPS


@dataclass(frozen=True)
class SoftmaxWithLoss:
    """``-sum_n log(softmax(x)[n, t_n] + 1e-7) / N``, the softmax with the row maximum subtracted."""

    @property
    def param_keys(self):
        return {}

    @staticmethod
    def softmax(x):
        exps = np.exp(x - np.max(x, axis=-1, keepdims=True))  # numpy's exp: the same values as computed twice
        return exps / np.sum(exps, axis=-1, keepdims=True)

    def loss(self, scores, labels):
        """(P,) losses of the (P, N, O) scores for class indices ``labels`` (N,)."""
        y = self.softmax(scores)
        n_samples = labels.shape[0]
        return -np.sum(np.log(y[:, np.arange(n_samples), labels] + LOG_EPS), axis=-1) / n_samples

    def sample_losses(self, scores, labels):
        """(P, N) each sample's ``-log(softmax(x)[n, t_n] + 1e-7)`` of the (P, N, O) scores."""
        y = self.softmax(scores)
        return -np.log(y[:, np.arange(labels.shape[0]), labels] + LOG_EPS)

    @staticmethod
    def class_major_losses(scores, labels):
        """The book's per-sample loss ``-log(softmax(x)[t] + 1e-7)`` of class-major scores (O, ...) with class
        ``labels`` (broadcast to ...), the row maximum subtracted: each class a slab, so that the maximum
        and the sum run across slabs instead of along rows of ten (``fastnum.layers.unit_moves``)."""
        exps = np.exp(scores - scores.max(axis=0))
        labels = np.broadcast_to(labels, scores.shape[1:])
        target = np.take_along_axis(exps, labels[None], axis=0)[0]
        return -np.log(target / exps.sum(axis=0) + LOG_EPS)

    def move_loss_differences(self, scores, move, labels, rounding):
        """(E, N) ``l_n(scores + move) - l_n(scores - move)`` per entry and sample, and the moves' pairs
        marked failed where the move's bound exceeds ``rounding`` (N,), the book's own rounding bound
        of the scores (``fastnum.layers.moves``)."""
        e, n = move.failed.shape  # rows: E entries, or 2E once two-sided
        delta = move.delta
        if move.channel >= 0:  # one score moved
            delta = np.zeros((e, n, scores.shape[-1]))
            delta[:, :, move.channel] = move.delta
        failed = move.failed | ~(move.err <= rounding[None, :]) | ~np.isfinite(delta).all(axis=-1)
        if move.two_sided:  # the -h moves are rows of their own
            half = delta.shape[0] // 2
            plus, minus, failed = scores + delta[:half], scores + delta[half:], failed[:half] | failed[half:]
        else:
            plus, minus = scores + delta, scores - delta
        return self.sample_losses(plus, labels) - self.sample_losses(minus, labels), failed

    def backward(self, scores, labels):
        """``(softmax(scores) - onehot(t)) / N`` (P = 1)."""
        y = self.softmax(scores)
        y[0, np.arange(labels.shape[0]), labels] -= 1
        return y / labels.shape[0]
