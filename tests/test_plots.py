"""The history's pictures and the progress report (what the user sees)."""

import io

import numpy as np
from matplotlib.figure import Figure

from fastnum.cli import _title
from fastnum.plots import RUNNING_MEAN_STEPS, accuracy_figure, draw_loss, loss_figure
from fastnum.progress import TrainingProgress, compile_notice
from fastnum.train import History, TrainState


def _history(steps, evals=3):
    rng = np.random.default_rng(0)
    eval_steps = list(np.linspace(0, steps - 1, evals).astype(int))
    return History(train_loss_list=list(2.3 * np.exp(-np.arange(steps) / 50) + rng.random(steps) * 0.1),
                   train_acc_list=list(np.linspace(0.1, 0.9, evals)), test_acc_list=list(np.linspace(0.1, 0.88, evals)),
                   eval_steps=eval_steps, step_times=[0.01] * steps, eval_times=[0.1] * evals, iter_per_epoch=20.0)


def _legend(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_running_mean_only_when_it_is_drawn():
    for steps, expected in [(30, ["batch loss"]), (RUNNING_MEAN_STEPS, ["batch loss"]),
                            (4 * RUNNING_MEAN_STEPS, ["batch loss", f"mean of {RUNNING_MEAN_STEPS} steps"])]:
        ax = Figure().subplots()
        draw_loss(ax, _history(steps))
        assert _legend(ax) == expected
        assert all(len(line.get_xdata()) > 1 for line in ax.get_lines())


def test_legends_sit_below_the_curves_and_titles_say_the_run():
    history = _history(100)
    for make in (accuracy_figure, loss_figure):
        fig = make(history, "a title")
        ax = fig.axes[0]
        assert ax.get_title() == "a title"
        fig.canvas.draw()
        legend_box = ax.get_legend().get_window_extent()
        assert legend_box.y1 <= ax.get_window_extent().y0  # outside the axes: covers no point
    accuracy = accuracy_figure(history).axes[0]
    assert accuracy.get_ylim() == (0.0, 1.0)
    assert [line.get_linestyle() for line in accuracy.get_lines()] == ["-", "--"]
    config = dict(dataset="mnist", gradient="numerical", hidden=50, batch_size=100, lr=0.1, seed=0)
    assert "hidden 50, batch 100, lr 0.1, seed 0, 9600 steps" in _title(config, 9600, 9600)
    assert "INTERRUPTED after 4856 of 9600 steps" in _title(config, 4856, 9600)


def test_history_plot_is_a_figure_with_both_panels():
    fig = _history(120).plot("run")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_progress_bar_shows_the_latest_loss_every_step():
    stream = io.StringIO()
    progress = TrainingProgress(5, bar=True, lines=False, file=stream)
    history = History(iter_per_epoch=5)
    for step, loss in enumerate([2.5, 2.25, 1.125]):
        history.train_loss_list.append(loss)
        progress.step(TrainState(step=step, iters=5, iter_per_epoch=5, history=history, rng=None))
        assert progress.postfix == f"loss {loss:.4f}"
    progress.close()


def test_compile_notice_speaks_only_when_it_takes_long(monkeypatch):
    import time

    import fastnum.progress

    said = []
    with compile_notice(said.append):
        pass
    assert said == []
    monkeypatch.setattr(fastnum.progress, "COMPILE_NOTICE_AFTER_S", 0.01)
    with compile_notice(said.append) as timing:
        time.sleep(0.2)
    assert "once per machine" in said[0] and said[1].startswith("compiled in")
    assert timing["seconds"] >= 0.2
