"""The book's training loop (``ch04/train_neuralnet.py``), with any gradient.

Per step: a random mini-batch drawn with ``rng.choice(train_size, batch_size)``
(with replacement, as the book), the gradient, ``params[key] -= lr * grad[key]``
for W1 b1 W2 b2, the batch loss after the update recorded; every
``eval_every`` steps (the book: once per epoch, at steps 0, 600, 1200, ...)
the accuracy on the whole training set and the whole test set recorded.

The gradient kind does not touch the random stream, so with the same seed a
numerical run and a backprop run see the same batches.
"""

import time
from dataclasses import asdict, dataclass, field

import numpy as np

PARAM_NAMES = ("W1", "b1", "W2", "b2")

GRADIENTS = {
    "numerical": lambda net, x, t: net.numerical_gradient(x, t, method="incremental"),
    "numerical-full": lambda net, x, t: net.numerical_gradient(x, t, method="full"),
    "backprop": lambda net, x, t: net.gradient(x, t),
}
"""Gradient kinds by name: the exact numerical gradient (incremental, the
default), the same computed the book's way (full), and backpropagation."""


@dataclass
class History:
    """What a run records. Lists grow as the run goes; JSON-serialisable."""

    train_loss_list: list = field(default_factory=list)
    """Batch loss after every step's update."""
    train_acc_list: list = field(default_factory=list)
    test_acc_list: list = field(default_factory=list)
    eval_steps: list = field(default_factory=list)
    """The step (0-based) after which each accuracy pair was measured."""
    step_times: list = field(default_factory=list)
    """Seconds per step: batch, gradient, update and loss."""
    eval_times: list = field(default_factory=list)
    """Seconds per evaluation of the two accuracies."""

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**{k: list(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class TrainState:
    """Where a run stands, handed to the callbacks."""

    step: int
    """The last step done (0-based)."""
    iters: int
    iter_per_epoch: float
    history: History
    rng: np.random.RandomState

    @property
    def epoch(self):
        return (self.step + 1) / self.iter_per_epoch


def iterations_per_epoch(train_size, batch_size):
    """The book's ``max(train_size / batch_size, 1)``."""
    return max(train_size / batch_size, 1)


def fit(network, x_train, t_train, x_test, t_test, *, iters, batch_size=100, learning_rate=0.1,
        gradient="numerical", eval_every=None, rng=None, history=None, start_step=0,
        final_eval=True, on_step=None, on_eval=None, should_stop=None):
    """Train ``network`` with the book's mini-batch SGD loop.

    Parameters
    ----------
    network : TwoLayerNet
        Its ``params`` are updated in place.
    x_train, t_train, x_test, t_test : numpy.ndarray
        As ``load_mnist`` returns them (labels as indices or one-hot).
    iters : int
        Total number of steps of the run (the book: 10000; 16 epochs of MNIST
        at batch 100: 9600).
    batch_size : int, default 100
    learning_rate : float, default 0.1
    gradient : {"numerical", "numerical-full", "backprop"}
    eval_every : int, optional
        Evaluate the accuracies after every step ``i`` with ``i % eval_every == 0``;
        default the book's ``iter_per_epoch``.
    rng : numpy.random.RandomState, optional
        Source of the mini-batches; default numpy's global one, exactly as
        the book's ``np.random.choice``.
    history : History, optional
        The history to extend (when resuming); a new one by default.
    start_step : int, default 0
        First step to run (when resuming from a checkpoint).
    final_eval : bool, default True
        Also evaluate after the last step when the schedule did not.
    on_step : callable(TrainState), optional
        Called after every step.
    on_eval : callable(TrainState), optional
        Called after every evaluation (for printing and checkpoints).
    should_stop : callable() -> bool, optional
        Checked after every step; when true the run stops there, cleanly.

    Returns
    -------
    (History, int)
        The history and the number of steps done in total (``iters`` unless
        stopped early).
    """
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {tuple(GRADIENTS)}, got {gradient!r}")
    compute_gradient = GRADIENTS[gradient]
    rng = np.random.mtrand._rand if rng is None else rng
    history = History() if history is None else history
    train_size = x_train.shape[0]
    iter_per_epoch = iterations_per_epoch(train_size, batch_size)
    eval_every = iter_per_epoch if eval_every is None else eval_every
    state = TrainState(step=start_step - 1, iters=iters, iter_per_epoch=iter_per_epoch, history=history, rng=rng)

    def evaluate(step):
        start = time.perf_counter()
        history.train_acc_list.append(float(network.accuracy(x_train, t_train)))
        history.test_acc_list.append(float(network.accuracy(x_test, t_test)))
        history.eval_steps.append(step)
        history.eval_times.append(time.perf_counter() - start)
        if on_eval is not None:
            on_eval(state)

    for i in range(start_step, iters):
        start = time.perf_counter()
        batch_mask = rng.choice(train_size, batch_size)
        x_batch = x_train[batch_mask]
        t_batch = t_train[batch_mask]
        grad = compute_gradient(network, x_batch, t_batch)
        for key in PARAM_NAMES:
            network.params[key] -= learning_rate * grad[key]
        history.train_loss_list.append(float(network.loss(x_batch, t_batch)))
        history.step_times.append(time.perf_counter() - start)
        state.step = i
        if on_step is not None:
            on_step(state)
        if i % eval_every == 0:
            evaluate(i)
        if should_stop is not None and should_stop() and i + 1 < iters:
            return history, i + 1
    if final_eval and iters > 0 and (not history.eval_steps or history.eval_steps[-1] != iters - 1):
        evaluate(iters - 1)
    return history, iters
