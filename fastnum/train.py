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

import numpy as np

from ._validate import as_labels
from .progress import TrainingProgress, compile_notice, interactive_session

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
    half of them compile in a second process at the same time
    (``fastnum._compile``). Leaves ``network.params`` unchanged and draws
    nothing from ``np.random``. ``compiling``: a ``fastnum._compile.CompileJob``
    started earlier (the CLI starts it before loading the data), finished
    here. Returns the seconds it took.
    """
    check_gradient(network, gradient)
    from ._compile import compile_in_parallel
    from .two_layer import TwoLayerNet

    with compile_notice(write) as timing:
        x_dtype = np.float32 if x.dtype == np.float32 else np.float64
        if compiling is not None:
            compiling.finish(network, x_dtype)
        elif isinstance(network, TwoLayerNet):
            # first run on a machine: half of the kernels compile in a second process meanwhile
            compile_in_parallel(network, gradient, x_dtype)
        else:
            # dropout draws from np.random and batch norm updates its running statistics: warm a copy
            network = copy.deepcopy(network)
        saved = np.random.get_state()
        try:
            GRADIENTS[gradient](network, x[:2], t[:2])
            network.loss(x[:2], t[:2])
            network.accuracy(x[:2], t[:2])
        finally:
            np.random.set_state(saved)
    return timing["seconds"]


def check_gradient(network, gradient):
    """Refuse a gradient kind the network does not have, naming the ones it has."""
    from .two_layer import TwoLayerNet

    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {tuple(GRADIENTS)}, got {gradient!r}")
    if gradient == "numerical-full" and not isinstance(network, TwoLayerNet):
        raise ValueError(f"gradient 'numerical-full' (the book's whole-forward loop, compiled) exists for the "
                         f"two-layer net only; {type(network).__name__} has 'numerical' and 'backprop'")


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
    (History, int)
        The history and the number of steps done in total (``iters`` unless
        stopped early).
    """
    check_gradient(network, gradient)
    compute_gradient = GRADIENTS[gradient]
    rng = np.random if rng is None else rng
    train_size = x_train.shape[0]
    # what every step's gradient and loss would convert (class indices; float64 images for the
    # networks that compute from float64 copies), done once: the same numbers, and one-hot rows are
    # checked here for the whole set instead of per batch. TwoLayerNet reads float32 as it is.
    from .two_layer import TwoLayerNet

    one_hot = np.ndim(t_train) == 2 and np.shape(t_train)[1] > 1
    batch_labels = as_labels(t_train, train_size, np.shape(t_train)[1]) if one_hot else t_train
    floating = np.issubdtype(np.asarray(x_train).dtype, np.floating)
    batch_dtype = np.float64 if floating and not isinstance(network, TwoLayerNet) else None
    iter_per_epoch = iterations_per_epoch(train_size, batch_size)
    history = History(iter_per_epoch=iter_per_epoch) if history is None else history
    history.iter_per_epoch = iter_per_epoch
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

    try:
        if warm:
            warm_up(network, gradient, x_train, t_train, report.write)
        for i in range(start_step, iters):
            start = time.perf_counter()
            batch_mask = rng.choice(train_size, batch_size)
            x_batch = x_train[batch_mask] if batch_dtype is None else x_train[batch_mask].astype(batch_dtype)
            t_batch = batch_labels[batch_mask]
            grad = compute_gradient(network, x_batch, t_batch)
            for key in grad:
                network.params[key] -= learning_rate * grad[key]
            history.train_loss_list.append(float(network.loss(x_batch, t_batch)))
            history.step_times.append(time.perf_counter() - start)
            state.step = i
            report.step(state)
            if on_step is not None:
                on_step(state)
            if i % eval_every == 0:
                evaluate(i)
            if should_stop is not None and should_stop() and i + 1 < iters:
                return history, i + 1
        if final_eval and iters > 0 and (not history.eval_steps or history.eval_steps[-1] != iters - 1):
            evaluate(iters - 1)
        return history, iters
    finally:
        if owned:
            report.close()
