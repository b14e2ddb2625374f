"""Pictures of a training history: the book's accuracy figure and the loss curve.

The same drawing functions make the figure a notebook shows
(``History.plot()``) and the PNGs ``fastnum train`` writes. Figures are made
with ``matplotlib.figure.Figure``, not pyplot: no global state, nothing left
open, and a notebook shows a returned figure once.
"""

import numpy as np

RUNNING_MEAN_STEPS = 50
"""Window of the running mean drawn over the batch losses."""


def _legend_below(ax):
    # below the axes, so that it never covers the last points of a curve
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)


def draw_accuracy(ax, history):
    """Train (solid) and test (dashed) accuracy per epoch, 0 to 1, as the book's figure."""
    epochs = [(step + 1) / history.iter_per_epoch for step in history.eval_steps]
    ax.plot(epochs, history.train_acc_list, marker="o", markersize=3, label="train acc")
    ax.plot(epochs, history.test_acc_list, linestyle="--", marker="s", markersize=3, label="test acc")
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("epochs")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    _legend_below(ax)


def draw_loss(ax, history):
    """The batch loss of every step and, once there are enough steps, its running mean."""
    losses = np.asarray(history.train_loss_list, dtype=float)
    steps = np.arange(losses.size)
    ax.plot(steps, losses, linewidth=0.5, alpha=0.6, label="batch loss")
    window = RUNNING_MEAN_STEPS
    if losses.size >= 2 * window:  # a mean over a handful of points would be an invisible stub
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, linewidth=1.5, label=f"mean of {window} steps")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    _legend_below(ax)


def accuracy_figure(history, title=""):
    """A ``Figure`` with the accuracy curves alone."""
    return _single(draw_accuracy, history, title)


def loss_figure(history, title=""):
    """A ``Figure`` with the loss curve alone."""
    return _single(draw_loss, history, title)


def _notebook_display():
    """In IPython/Jupyter, let a returned ``Figure`` display itself (inline PNG).

    The inline backend registers its display formatter when pyplot is first
    imported; fastnum draws without pyplot, so it imports it here, in an
    IPython session only.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    import matplotlib.pyplot  # noqa: F401  (the inline backend registers its formatters now)
    from matplotlib.figure import Figure

    formatters = shell.display_formatter.formatters
    for mime in ("image/png", "image/svg+xml", "image/jpeg", "application/pdf"):
        try:
            formatters[mime].lookup_by_type(Figure)
            return  # the user's (or the backend's) choice of format stands
        except KeyError:
            continue
    from IPython.core.pylabtools import select_figure_formats

    select_figure_formats(shell, {"png"})


def history_figure(history, title=""):
    """A ``Figure`` with the accuracy (left) and the loss (right) side by side."""
    from matplotlib.figure import Figure

    _notebook_display()
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    draw_accuracy(left, history)
    draw_loss(right, history)
    if title:
        fig.suptitle(title)
    return fig


def _single(draw, history, title):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.8), layout="constrained")
    ax = fig.subplots()
    draw(ax, history)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
