"""What a training run leaves in its folder, and reading it back.

* ``checkpoint.npz``: parameters, next step, RNG state, history and config;
  written atomically (a temporary file renamed over the old one), so a crash
  or Ctrl-C never leaves half a checkpoint.
* ``history.json`` and ``history.csv``: the recorded lists.
* ``params.npz``: the final parameters (``load_network`` turns them back
  into a ``TwoLayerNet``).
* ``accuracy.png`` and ``loss.png``.
* ``run.json``: the exact command, the configuration, versions and timings.

Everything is stored without pickles (``np.load(..., allow_pickle=False)``).
"""

import csv
import io
import json
from pathlib import Path

import numpy as np

from ._atomic import atomic_write
from .train import PARAM_NAMES, History
from .two_layer_net import TwoLayerNet

CHECKPOINT = "checkpoint.npz"
PARAMS = "params.npz"


def _text(data):
    return np.array(json.dumps(data))


def save_checkpoint(folder, network, next_step, rng, history, config):
    """Write ``checkpoint.npz``: everything needed to continue the run bit for bit."""
    kind, keys, pos, has_gauss, cached_gaussian = rng.get_state()
    arrays = {name: network.params[name] for name in PARAM_NAMES}
    arrays.update(
        next_step=np.array(next_step),
        rng_keys=keys,
        rng_pos=np.array(pos),
        rng_has_gauss=np.array(has_gauss),
        rng_cached_gaussian=np.array(cached_gaussian),
        history=_text(history.to_dict()),
        config=_text(config),
    )
    atomic_write(Path(folder) / CHECKPOINT, lambda handle: np.savez(handle, **arrays))


def load_checkpoint(folder):
    """Read ``checkpoint.npz``: (params dict, next step, RandomState, History, config)."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            params = {name: data[name].copy() for name in PARAM_NAMES}
            rng = np.random.RandomState()
            rng.set_state((
                "MT19937", data["rng_keys"], int(data["rng_pos"]),
                int(data["rng_has_gauss"]), float(data["rng_cached_gaussian"]),
            ))
            history = History.from_dict(json.loads(str(data["history"])))
            config = json.loads(str(data["config"]))
            next_step = int(data["next_step"])
    except (KeyError, ValueError, OSError) as error:
        raise ValueError(f"{path} is not a readable fastnum checkpoint: {error}") from None
    return params, next_step, rng, history, config


def save_params(path, network):
    """Write the parameters, sizes and activation as ``.npz``."""
    arrays = {name: network.params[name] for name in PARAM_NAMES}
    arrays["activation"] = np.array(network.activation)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_network(path):
    """A ``TwoLayerNet`` with the parameters saved by ``save_params`` (``params.npz``)."""
    with np.load(path, allow_pickle=False) as data:
        params = {name: data[name].copy() for name in PARAM_NAMES}
        activation = str(data["activation"]) if "activation" in data else "sigmoid"
    n_in, n_hidden = params["W1"].shape
    network = TwoLayerNet(n_in, n_hidden, params["W2"].shape[1], activation=activation)
    network.params = params
    return network


def save_history(folder, history, iter_per_epoch):
    """``history.json`` (the lists) and ``history.csv`` (one row per step)."""
    folder = Path(folder)
    data = history.to_dict()
    atomic_write(folder / "history.json", lambda handle: handle.write(json.dumps(data, indent=1).encode()))
    evals = {step: n for n, step in enumerate(history.eval_steps)}

    def write_csv(handle):
        lines = []
        for step, loss in enumerate(history.train_loss_list):
            n = evals.get(step)
            lines.append([
                step, f"{(step + 1) / iter_per_epoch:.4f}", repr(loss), f"{history.step_times[step]:.6f}",
                "" if n is None else repr(history.train_acc_list[n]),
                "" if n is None else repr(history.test_acc_list[n]),
            ])
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["step", "epoch", "train_loss", "step_seconds", "train_acc", "test_acc"])
        writer.writerows(lines)
        handle.write(text.getvalue().encode())

    atomic_write(folder / "history.csv", write_csv)


def plot_history(folder, history, iter_per_epoch, title=""):
    """``accuracy.png`` (train solid, test dashed, 0 to 1, as the book's figure) and ``loss.png``."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    folder = Path(folder)

    def save(fig, ax, name, xlabel, ylabel, legend_at):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(loc=legend_at)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        atomic_write(folder / name, lambda handle: fig.savefig(handle, format="png", dpi=110))
        plt.close(fig)

    epochs = [(step + 1) / iter_per_epoch for step in history.eval_steps]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(epochs, history.train_acc_list, marker="o", markersize=3, label="train acc")
    ax.plot(epochs, history.test_acc_list, linestyle="--", marker="s", markersize=3, label="test acc")
    ax.set_ylim(0, 1.0)
    save(fig, ax, "accuracy.png", "epochs", "accuracy", "lower right")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    steps = np.arange(len(history.train_loss_list))
    ax.plot(steps, history.train_loss_list, linewidth=0.5, alpha=0.6, label="batch loss")
    window = 50
    if len(steps) >= window:
        smooth = np.convolve(history.train_loss_list, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, linewidth=1.5, label=f"mean of {window} steps")
    save(fig, ax, "loss.png", "iteration", "loss", "upper right")
