"""Benchmark batches: real MNIST when it can be found, else labelled synthetic."""

import os
from pathlib import Path

import numpy as np

from fastnum import load_mnist

SHARED_MNIST = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"


def display_path(path):
    """``path`` as reports print it: relative to the project or the home folder, never absolute."""
    path = Path(path).resolve()
    project = Path(__file__).resolve().parent.parent
    for base, prefix in ((project, ""), (project.parent, "../"), (Path.home(), "~/")):
        try:
            return prefix + str(path.relative_to(base))
        except ValueError:
            continue
    return path.name


def report_command(argv):
    """``python -m bench ARGS`` as a report records it: absolute paths among the arguments (``--data-dir
    /home/me/mnist``, ``--out=/tmp/x``) shown as ``display_path`` shows them, never absolute."""
    def shown(arg):
        option, equals, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        return option + equals + (display_path(value) if os.path.isabs(value) else value)

    return "python -m bench " + " ".join(shown(arg) for arg in argv)


def mnist_dir(data_dir=None):
    """The folder to read MNIST from: --data-dir, $FASTNUM_DATA_DIR, or ../shared/data/mnist."""
    for candidate in (data_dir, os.environ.get("FASTNUM_DATA_DIR"), SHARED_MNIST):
        if candidate and Path(candidate, "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate)
    return None


def synthetic_mnist(rng, n):
    """MNIST-shaped data: 81% zero pixels, the rest k/255 with MNIST's share of full-ink pixels."""
    x = np.zeros((n, 784), dtype=np.float32)
    on = rng.random((n, 784)) < 0.19
    values = np.where(rng.random(on.sum()) < 0.35, 1.0, rng.integers(1, 255, on.sum()) / 255.0)
    x[on] = values.astype(np.float32)
    t = rng.integers(0, 10, n).astype(np.uint8)
    return x, t


DENSE_INPUTS = {
    "dense-levels": "MNIST-shaped, no zero pixel, levels k/255 (k = 1..255)",
    "dense-uniform": "MNIST-shaped, no zero pixel, continuous uniform (0, 1]",
}
"""Inputs that defeat both shortcuts of real MNIST (zero pixels, few distinct values)."""


def dense_batches(kind, n_batches=1, batch_size=100, seed=0):
    """Batches of ``DENSE_INPUTS[kind]``, float32 as ``load_mnist`` gives, and their label."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(n_batches):
        if kind == "dense-levels":
            x = rng.integers(1, 256, (batch_size, 784)) / np.float32(255.0)
        else:
            x = 1.0 - rng.random((batch_size, 784))
        batches.append((x.astype(np.float32), rng.integers(0, 10, batch_size).astype(np.uint8)))
    return batches, DENSE_INPUTS[kind]


def load_batches(data_dir=None, n_batches=1, batch_size=100, seed=0, inputs="mnist"):
    """``n_batches`` mini-batches drawn as the book draws them, and a label for their source."""
    if inputs != "mnist":
        return dense_batches(inputs, n_batches, batch_size, seed)
    folder = mnist_dir(data_dir)
    rng = np.random.RandomState(seed)
    if folder is not None:
        (x_train, t_train), _ = load_mnist(data_dir=folder, download=False)
        source = f"real MNIST ({display_path(folder)})"
    else:
        x_train, t_train = synthetic_mnist(np.random.default_rng(seed), 60000)
        source = "SYNTHETIC MNIST-shaped data (no MNIST files found)"
    batches = []
    for _ in range(n_batches):
        mask = rng.choice(x_train.shape[0], batch_size)
        batches.append((x_train[mask], t_train[mask]))
    return batches, source
