"""What both multi-layer gradient drivers build: flat parameters, the task order, the last layer's caches."""

from typing import NamedTuple

import numpy as np

from ..kernels.perturbed_losses import Gradients


class Layers(NamedTuple):
    """The parameters of the affine layers, flat: layer l maps ``sizes[l]`` to ``sizes[l + 1]`` units."""

    sizes: np.ndarray
    """(K + 2,) int64: input, hidden layers, output."""
    W: np.ndarray
    """All weights, each layer's (sizes[l], sizes[l + 1]) block row-major from ``w_off[l]``."""
    w_off: np.ndarray
    b: np.ndarray
    """All biases, layer l's from ``b_off[l]``."""
    b_off: np.ndarray


def pack_layers(weights, biases):
    """``Layers`` from the per-layer weight (n_in, n_out) and bias arrays (copied into two flat arrays)."""
    sizes = np.array([weights[0].shape[0]] + [W.shape[1] for W in weights], dtype=np.int64)
    w_sizes = [W.size for W in weights]
    b_sizes = [b.size for b in biases]
    return Layers(
        sizes=sizes,
        W=np.concatenate([W.ravel() for W in weights]),
        w_off=np.concatenate([[0], np.cumsum(w_sizes)[:-1]]).astype(np.int64),
        b=np.concatenate(biases),
        b_off=np.concatenate([[0], np.cumsum(b_sizes)[:-1]]).astype(np.int64),
    )


def interleaved_tasks(sizes):
    """(task_layer, task_unit): every hidden unit of every layer, dealt round-robin across the layers.

    The threads take tasks in order; dealt this way the costly units of deep
    layers and the cheap ones of the layers above alternate, and no thread
    is left with a run of costly ones at the end.
    """
    n_hidden_layers = len(sizes) - 2
    per_layer = [[(k, j) for j in range(sizes[k + 1])] for k in range(n_hidden_layers)]
    order = []
    for r in range(max(len(tasks) for tasks in per_layer)):
        order += [tasks[r] for tasks in per_layer if r < len(tasks)]
    layer, unit = zip(*order)
    return np.array(layer, dtype=np.int64), np.array(unit, dtype=np.int64)


def layer_weights(layers, layer):
    """Affine layer ``layer``'s weights as a (sizes[layer], sizes[layer + 1]) view of ``layers.W``
    (``-1``: the last layer); the Python twin of the kernels' ``_numgrad_per_sample.weights``."""
    layer = layer % (len(layers.sizes) - 1)
    n_in, n_out = int(layers.sizes[layer]), int(layers.sizes[layer + 1])
    start = int(layers.w_off[layer])
    return layers.W[start:start + n_in * n_out].reshape(n_in, n_out)


def top_gradients(n_top, n_out):
    """``Gradients`` whose W2, b2 receive the last layer's gradient (W1, b1 unused)."""
    return Gradients(W1=np.empty((0, 0)), b1=np.empty(0), W2=np.empty((n_top, n_out)), b2=np.empty(n_out))


def transposed_weight_offsets(sizes):
    """Offsets of each hidden layer's transposed weight gradient in one flat array, and its length."""
    n_hidden_layers = len(sizes) - 2
    block = [int(sizes[k]) * int(sizes[k + 1]) for k in range(n_hidden_layers)]
    return np.concatenate([[0], np.cumsum(block)[:-1]]).astype(np.int64), int(sum(block))


def unpack_hidden_weights(W_T, W_T_off, sizes):
    """Each hidden layer's weight gradient (n_in, n_out) from the flat transposed one."""
    out = []
    for k in range(len(sizes) - 2):
        n_in, n_out = int(sizes[k]), int(sizes[k + 1])
        out.append(W_T[W_T_off[k]:W_T_off[k] + n_in * n_out].reshape(n_out, n_in).T.copy())
    return out
