"""The book's training loop (``ch04/train_neuralnet.py``), with any gradient.

Per step: a random mini-batch drawn with ``np.random.choice(train_size, batch_size)``
(with replacement, as the book), the gradient, ``params[key] -= lr * grad[key]``
for every parameter, the batch loss after the update recorded; every
``eval_every`` steps (the book: once per epoch, at steps 0, 600, 1200, ...)
the accuracy on the whole training set and the whole test set recorded.

The gradient kind does not touch the random stream, so with the same seed a
numerical run and a backprop run see the same batches.
"""

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from ._validate import as_labels
from .progress import TrainingProgress, compile_notice, interactive_session
from .registry import kind_of

GRADIENTS = {
    "numerical": lambda net, x, t: net.numerical_gradient(x, t),
    "numerical-full": lambda net, x, t: net.numerical_gradient(x, t, method="full"),
    "backprop": lambda net, x, t: net.gradient(x, t),
}
"""Gradient kinds by name: the exact numerical gradient (incremental, the
default), the same computed the book's way (full), and backpropagation."""


@dataclass
class History:
    """What a run records. Lists grow as the run goes; JSON-serialisable.

    ``history.plot()`` draws it (the book's accuracy figure and the loss).
    """

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
    iter_per_epoch: float = 1.0
    """Steps per epoch, for the epoch axis of the accuracy figure."""
    steps_done: int = 0
    """Steps done in total, set by ``fit``."""
    diverged_at: Optional[int] = None
    """The step at which the loss or a parameter stopped being finite (``fit`` stops there), or None."""

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{k: (list(v) if isinstance(v, list) else v) for k, v in fields.items()})

    def plot(self, title=""):
        """The accuracy (train solid, test dashed, 0 to 1) and the batch loss, side by side.

        Returns
        -------
        matplotlib.figure.Figure
            Shown inline when it is the last expression of a notebook cell;
            ``fig.savefig(path)`` writes it.
        """
        from .plots import history_figure

        return history_figure(self, title)


@dataclass
class TrainState:
    """Where a run stands, handed to the callbacks."""

    step: int
    """The last step done (0-based)."""
    iters: int
    iter_per_epoch: float
    history: History
    rng: object

    @property
    def epoch(self):
        return (self.step + 1) / self.iter_per_epoch


def iterations_per_epoch(train_size, batch_size):
    """The book's ``max(train_size / batch_size, 1)``."""
    return max(train_size / batch_size, 1)


def warm_up(network, gradient, x, t, write=None, compiling=None):
    """Compile (or load from numba's cache) the kernels a run of ``gradient`` calls.

    Runs them once on two samples, telling the user when that means compiling
    (``progress.compile_notice``); when numba's cache does not hold them yet,
    every other kernel compiles in a second process at the same time
    (``fastnum._compile``). Leaves ``network.params`` unchanged and draws
    nothing from ``np.random``. ``compiling``: a ``fastnum._compile.CompileJob``
    started earlier (the CLI starts it before loading the data), finished
    here. Returns the seconds it took.
    """
    check_gradient(network, gradient)
    from ._compile import compile_in_parallel
    from ._first_run import compile_now

    with compile_notice(write) as timing, compile_now():
        x_dtype = np.float32 if network.READS_FLOAT32 and x.dtype == np.float32 else np.float64
        if compiling is not None:
            compiling.finish()
        else:
            # first run on a machine: half of the kernels compile in a second process meanwhile
            compile_in_parallel(network, gradient, x_dtype)
        # a copy: dropout draws from np.random and batch norm updates its running statistics
        network = copy.deepcopy(network)
        saved = np.random.get_state()
        try:
            GRADIENTS[gradient](network, x[:2].astype(x_dtype), t[:2])
            network.loss(x[:2].astype(x_dtype), t[:2])
            network.accuracy(x[:2].astype(x_dtype), t[:2])
        finally:
            np.random.set_state(saved)
    return timing["seconds"]


def check_gradient(network, gradient):
    """Refuse a gradient kind the network does not have, naming the ones it has."""
    kind = kind_of(network)
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {tuple(GRADIENTS)}, got {gradient!r}")
    if gradient not in network.GRADIENTS:
        raise ValueError(f"gradient {gradient!r} is not one {kind.name} has: it has "
                         f"{', '.join(repr(g) for g in network.GRADIENTS)} ('numerical-full', the book's "
                         "whole-forward loop compiled, exists for the two-layer net only)")


def _whole_number(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _data_arrays(network, x, t, split):
    """``x`` and ``t`` of one split as arrays, checked as the network's methods check a batch."""
    x, t = np.asarray(x), np.asarray(t)
    if x.ndim == 0 or t.ndim == 0:
        raise ValueError(f"x_{split} and t_{split} must be arrays of samples, got shapes {x.shape} and {t.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"x_{split} is empty (0 samples)")
    if x.shape[0] != t.shape[0]:
        raise ValueError(f"x_{split} has {x.shape[0]} samples but t_{split} has {t.shape[0]} labels")
    try:
        network.check_batch(x[:1], t[:1])  # shapes, dtypes and the label form, as every method checks them
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        labels = as_labels(t, x.shape[0], network.output_size)  # every label in range, every row one-hot
    except (TypeError, ValueError) as error:
        raise type(error)(f"the {split} set: {error}") from None
    return x, labels


def check_fit_arguments(network, x_train, t_train, x_test, t_test, iters, batch_size, learning_rate, gradient,
                        eval_every, rng, history, start_step, callbacks):
    """Every argument of ``fit``, checked before its first step (the network is left unchanged).

    Returns the data as arrays. Raises ``TypeError`` or ``ValueError``
    naming the argument.
    """
    check_gradient(network, gradient)
    _whole_number(iters, "iters", 0)
    _whole_number(batch_size, "batch_size", 1)
    _whole_number(start_step, "start_step", 0)
    if start_step > iters:
        raise ValueError(f"start_step {start_step} is past iters {iters}")
    if eval_every is not None:
        _whole_number(eval_every, "eval_every", 1)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.integer, np.floating)):
        raise TypeError(f"learning_rate must be a number, got {learning_rate!r}")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive finite number, got {learning_rate!r}")
    if rng is not None and not callable(getattr(rng, "choice", None)):
        raise TypeError(f"rng must be a numpy RandomState (or have a choice method), got {type(rng).__name__}")
    if history is not None and not isinstance(history, History):
        raise TypeError(f"history must be a fastnum.train.History, got {type(history).__name__}")
    for name, callback in callbacks.items():
        if callback is not None and not callable(callback):
            raise TypeError(f"{name} must be callable, got {type(callback).__name__}")
    x_train, t_train = _data_arrays(network, x_train, t_train, "train")
    x_test, t_test = _data_arrays(network, x_test, t_test, "test")
    return x_train, t_train, x_test, t_test


def params_are_finite(network, names):
    """Whether every parameter in ``names`` holds finite numbers only."""
    return all(np.isfinite(network.params[name]).all() for name in names)


def _progress_for(progress, iters, start_step, gradient):
    """(the TrainingProgress to report to, whether fit owns it)."""
    if isinstance(progress, TrainingProgress):
        return progress, False
    show = interactive_session() if progress is None else bool(progress)
    return TrainingProgress(iters, start_step, bar=show, lines=show, desc=gradient), True


def fit(network, x_train, t_train, x_test, t_test, *, iters, batch_size=100, learning_rate=0.1,
        gradient="numerical", eval_every=None, rng=None, history=None, start_step=0,
        final_eval=True, progress=None, warm=True, on_step=None, on_eval=None, should_stop=None):
    """Train ``network`` with the book's mini-batch SGD loop.

    Parameters
    ----------
    network : TwoLayerNet, MultiLayerNet or MultiLayerNetExtend
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
        Source of the mini-batches; default numpy's global generator
        (``np.random.choice``, exactly as the book), so after
        ``np.random.seed(s)`` the run follows the book's batches.
    history : History, optional
        The history to extend (when resuming); a new one by default.
    start_step : int, default 0
        First step to run (when resuming from a checkpoint).
    final_eval : bool, default True
        Also evaluate after the last step when the schedule did not.
    progress : bool or TrainingProgress, optional
        A progress bar (steps per second, time left, latest batch loss; a
        widget in Jupyter) and a line per evaluation. Default: on when the
        session is interactive (Jupyter, IPython, a terminal).
    warm : bool, default True
        Compile or load the kernels before the first step, saying so when it
        compiles (once per machine), so that step times are step times.
    on_step : callable(TrainState), optional
        Called after every step.
    on_eval : callable(TrainState), optional
        Called after every evaluation (for printing and checkpoints).
    should_stop : callable() -> bool, optional
        Checked after every step; when true the run stops there, cleanly.

    Returns
    -------
    History
        The run's history; ``history.steps_done`` is the number of steps
        done in total (``iters`` unless stopped early) and
        ``history.diverged_at`` the step whose update left a parameter or
        the loss not finite (None when none did). The run stops there: that
        step is not counted nor recorded, and its parameters are left in
        ``network``.

    Raises
    ------
    TypeError, ValueError
        A bad argument, named, before the first step (``network`` unchanged).
    """
    callbacks = {"on_step": on_step, "on_eval": on_eval, "should_stop": should_stop}
    x_train, t_train, x_test, t_test = check_fit_arguments(
        network, x_train, t_train, x_test, t_test, iters, batch_size, learning_rate, gradient, eval_every, rng,
        history, start_step, callbacks)
    compute_gradient = GRADIENTS[gradient]
    rng = np.random if rng is None else rng
    train_size = x_train.shape[0]
    # float64 images for the networks that compute from float64 copies, converted per batch (the
    # same numbers); the labels are class indices, checked once for the whole set
    floating = np.issubdtype(x_train.dtype, np.floating)
    batch_dtype = None if network.READS_FLOAT32 or not floating else np.float64
    iter_per_epoch = iterations_per_epoch(train_size, batch_size)
    history = History(iter_per_epoch=iter_per_epoch) if history is None else history
    history.iter_per_epoch = iter_per_epoch
    history.steps_done = start_step
    history.diverged_at = None
    eval_every = iter_per_epoch if eval_every is None else eval_every
    state = TrainState(step=start_step - 1, iters=iters, iter_per_epoch=iter_per_epoch, history=history, rng=rng)
    report, owned = _progress_for(progress, iters, start_step, gradient)

    def evaluate(step):
        start = time.perf_counter()
        history.train_acc_list.append(float(network.accuracy(x_train, t_train)))
        history.test_acc_list.append(float(network.accuracy(x_test, t_test)))
        history.eval_steps.append(step)
        history.eval_times.append(time.perf_counter() - start)
        report.evaluation(state)
        if on_eval is not None:
            on_eval(state)

    from ._first_run import compile_now

    try:
        with compile_now():  # every call on the compiled path: the same arithmetic from the first step on
            if warm:
                warm_up(network, gradient, x_train, t_train, report.write)
            for i in range(start_step, iters):
                start = time.perf_counter()
                batch_mask = rng.choice(train_size, batch_size)
                x_batch = x_train[batch_mask] if batch_dtype is None else x_train[batch_mask].astype(batch_dtype)
                t_batch = t_train[batch_mask]
                grad = compute_gradient(network, x_batch, t_batch)
                for key in grad:
                    network.params[key] -= learning_rate * grad[key]
                # (the loss of non-finite parameters cannot be evaluated: the network refuses them)
                loss = float(network.loss(x_batch, t_batch)) if params_are_finite(network, grad) else np.nan
                if not np.isfinite(loss):
                    history.diverged_at = i  # not counted as done: its parameters are not usable
                    return history
                history.train_loss_list.append(loss)
                history.step_times.append(time.perf_counter() - start)
                state.step = i
                history.steps_done = i + 1
                report.step(state)
                if on_step is not None:
                    on_step(state)
                if i % eval_every == 0:
                    evaluate(i)
                if should_stop is not None and should_stop() and i + 1 < iters:
                    return history
            if final_eval and iters > 0 and (not history.eval_steps or history.eval_steps[-1] != iters - 1):
                evaluate(iters - 1)
        return history
    finally:
        if owned:
            report.close()
