"""The numerical gradient of any ``LayerStack``, exact, in vectorised numpy.

For every parameter entry p the book's ``(L(p + h) - L(p - h)) / (2h)``, each
loss evaluated at the perturbed parameters. What stays the same is not
recomputed: the layers below p's layer run once. Then one of three paths:

* **unit moves** (``fastnum.layers.unit_moves``), for an affine layer's
  entries where every layer above (past the activation right over it,
  evaluated exactly at the unit) has a ``move_radius``: one response per
  (unit, sample) carried up, each entry's step scaling it, each pair checked
  against the response's radius and the book's rounding; the losses once per
  distinct (sample, step) and unit; failed pairs by the general path;
* **moves** (``fastnum.layers.moves``), where p's layer has a ``first_move``
  and every layer above a ``propagate`` (affine, convolution, ReLU, pooling,
  dropout: no batch norm, so each sample's loss is its own): the move of p's
  layer output is carried up, chunk by chunk of entries moving one channel,
  with each layer's run-time proof that it stays linear; the (entry, sample)
  pairs whose proof fails are recomputed for that sample by the general path.
  About one pass of the layers above per entry instead of two;
* **general**: p's layer gives its output with p moved (``layer.perturbed``:
  the output plus the move, the same real number as recomputing it); the
  layers above run on a batch of perturbed networks at once, a leading axis
  of 2E networks (E entries, each moved by +h and by -h) over the N samples,
  with the dropout masks of the call and, for batch norm, each network's own
  batch statistics.

The weight decay term moves by ``0.5 lambda ((w + h)**2 - (w - h)**2)`` for a
decayed weight. This is the plain-numpy engine: what a first call uses while
compiled kernels are not cached (the book's toy checks take milliseconds),
what ``DeepConvNet`` and ``fastnum.numerical_gradient_of`` run.
"""

from typing import NamedTuple

import numpy as np

from .._config import H
from .stack import ForwardPass
from .unit_moves import distinct_pairs, takes_unit_moves, unit_move_sums

MEMORY_BUDGET = 64 * 2**20
"""Bytes the perturbed networks of one chunk may take (their largest activations)."""


def _entries_per_chunk(stack, params, index, in_shape, n_samples):
    """How many entries of layer ``index``'s parameters to perturb at once (2 networks each)."""
    shape = in_shape
    largest = 1
    for layer in stack.layers[index:]:
        largest = max(largest, layer.working_size(shape, params))
        shape = layer.output_shape(shape, params)
    per_entry = 2 * n_samples * largest * 8
    return int(max(1, min(4096, MEMORY_BUDGET // per_entry)))


MOVES_CHUNK_BYTES = 2**20
"""About the bytes one array of a chunk's moves may take at its largest layer: small enough to stay in
a core's cache through the dozen elementwise passes each layer makes over it (measured on DeepConvNet:
chunks of 1 MiB ran its fifth convolution's entries about twice as fast as chunks of 6 MiB)."""


def _moves_per_chunk(stack, params, index, in_shape, n_samples):
    """How many entries of layer ``index`` to carry as moves at once (``MOVES_CHUNK_BYTES``)."""
    shape, largest = in_shape, 1
    for layer in stack.layers[index:]:
        shape = layer.output_shape(shape, params)
        largest = max(largest, int(np.prod(shape)))
    return int(max(1, min(4096, MOVES_CHUNK_BYTES // (8 * n_samples * largest))))


def _moves_reach_the_loss(stack, index):
    """Whether entries of layer ``index`` can take moves: it has a ``first_move`` and every layer above
    a ``propagate`` (``fastnum.layers.moves``)."""
    return hasattr(stack.layers[index], "first_move") and all(
        hasattr(layer, "propagate") for layer in stack.layers[index + 1:])


def _scores_rounding(stack, params, trace):
    """(N,) the book's own rounding bound of each sample's scores (each layer's ``rounding_bound``; a
    layer without one adds nothing, which only makes the moves' check stricter)."""
    bound = np.zeros(trace[0][0].shape[1])
    for layer, (layer_in, layer_out, _) in zip(stack.layers, trace):
        if hasattr(layer, "rounding_bound"):
            bound = layer.rounding_bound(bound, layer_in, layer_out, params)
    return bound


class MovesOfCall(NamedTuple):
    """What every entry's moves read in one call, computed once (when a layer first takes moves)."""

    contexts: dict
    """Layer index -> what that layer's ``propagate`` reads of the cached pass (``move_context``)."""
    splits_from: int
    """The lowest layer that may evaluate a side change exactly (``may_split``): the one above the last
    layer whose move is a matrix product per map (``HEAVY_MOVE``)."""
    rounding: np.ndarray
    """(N,) the book's own rounding bound of each sample's scores (``_scores_rounding``)."""


def _moves_of_call(stack, params, trace, pass_):
    """The call's ``MovesOfCall``: every layer's context, where splitting starts, the scores' rounding."""
    contexts = {}
    for index, layer in enumerate(stack.layers):
        if hasattr(layer, "move_context"):
            pass_.index = index
            contexts[index] = layer.move_context(*trace[index], params, pass_)
    heavy = [k for k, layer in enumerate(stack.layers) if getattr(layer, "HEAVY_MOVE", False)]
    return MovesOfCall(contexts, 1 + max(heavy, default=-1), _scores_rounding(stack, params, trace))


def _moved_losses(stack, params, trace, moves, index, role, some, labels, h):
    """(E, N) ``l_n(p + h) - l_n(p - h)`` of entries ``some`` of layer ``index`` (all moving one channel)
    by moves, and (E, N) the pairs whose failed proof leaves them to the general path."""
    layer_in, layer_out, _ = trace[index]
    move = stack.layers[index].first_move(layer_in, layer_out, params, role, some, h)
    for above in range(index + 1, len(stack.layers)):
        move = stack.layers[above].propagate(move._replace(may_split=above >= moves.splits_from),
                                             moves.contexts[above], params)
    scores = trace[-1][1][0]
    differences, failed = stack.loss_layer.move_loss_differences(scores, move, labels, moves.rounding)
    shape = (len(some), labels.shape[0])  # a bias's move serves every copy of it in ``some``
    return np.broadcast_to(differences, shape), np.broadcast_to(failed, shape)


def _recomputed_losses(stack, params, trace, index, role, some, sample, labels, pass_, h):
    """(E,) ``l_n(p + h) - l_n(p - h)`` of entries ``some`` for one sample n by the general path: the
    layers above run on the perturbed output of that sample alone (its dropout masks; no batch norm
    above, so the other samples cannot matter)."""
    layer_in, layer_out, cache = trace[index]
    one = slice(sample, sample + 1)
    moved = stack.layers[index].perturbed(layer_in[:, one], layer_out[:, one], cache, params, role, some, h)
    masks = {k: mask[one] for k, mask in pass_.masks.items()}
    above = ForwardPass(train=pass_.train, masks=masks, running=pass_.running, records=False)
    top, _ = stack.run(params, moved, above, first=index + 1)
    losses = stack.loss_layer.sample_losses(top, labels[one])[:, 0]
    return losses[:len(some)] - losses[len(some):]


def _gradient_by_moves(stack, params, trace, moves, index, role, wanted, labels, pass_, h, chunks, counts,
                       on_entries):
    """(E,) the entries ``wanted`` of one role of layer ``index``: by moves, channel by channel, with each
    pair (entry, sample) whose proof fails recomputed by the general path for that sample. ``chunks``:
    (entries carried as moves at once, entries the general path perturbs at once for N samples)."""
    chunk, general_chunk = chunks
    layer = stack.layers[index]
    n_samples = labels.shape[0]
    differences = np.empty((wanted.size, n_samples))
    failed = np.empty((wanted.size, n_samples), dtype=bool)
    channels = layer.move_channels(params, role, wanted)
    for channel in np.unique(channels):
        positions = np.flatnonzero(channels == channel)
        for start in range(0, positions.size, chunk):
            at = positions[start:start + chunk]
            differences[at], failed[at] = _moved_losses(stack, params, trace, moves, index, role, wanted[at],
                                                        labels, h)
            if on_entries is not None:
                on_entries(len(at))
    failed_entries, failed_samples = np.nonzero(failed)
    _count_recomputed(counts, wanted.size, failed_entries)
    for at, sample, losses in _recomputed_pairs(stack, params, trace, index, role, wanted, failed_entries,
                                                failed_samples, labels, pass_, h, general_chunk):
        differences[at, sample] = losses
    return differences.sum(axis=1) / n_samples / (2 * h)


def _count_recomputed(counts, n_entries, failed_entries):
    """The report's counts (``numerical_gradient``) of ``n_entries`` entries whose failed pairs have the
    entries (positions) ``failed_entries``: entries wholly moved, entries recomputed in some sample, pairs."""
    recomputed = np.unique(failed_entries).size
    counts["moved"] += n_entries - recomputed
    counts["recomputed"] += recomputed
    counts["pairs recomputed"] += failed_entries.size


def _recomputed_pairs(stack, params, trace, index, role, wanted, failed_entries, failed_samples, labels, pass_, h,
                      general_chunk):
    """The failed pairs (positions into ``wanted``, samples) by the general path, sample by sample in
    chunks: yields (positions, sample, their (K,) ``l_n(p + h) - l_n(p - h)``)."""
    n_samples = labels.shape[0]
    for sample in np.unique(failed_samples):
        redo = failed_entries[failed_samples == sample]
        for start in range(0, redo.size, general_chunk * n_samples):  # one sample's networks: N times as many
            at = redo[start:start + general_chunk * n_samples]
            yield at, sample, _recomputed_losses(stack, params, trace, index, role, wanted[at], sample, labels,
                                                 pass_, h)


def _gradient_by_unit_moves(stack, params, trace, moves, index, role, wanted, labels, pass_, h, general_chunk,
                            counts, on_entries):
    """(E,) the entries ``wanted`` of one role of an affine layer ``index`` by unit moves
    (``fastnum.layers.unit_moves``), each pair whose checks fail recomputed by the general path."""
    distinct, entry_of = np.unique(wanted, return_inverse=True)
    sums, failed_entries, failed_samples = unit_move_sums(stack, params, trace, moves.contexts, moves.rounding,
                                                          index, role, distinct, labels, h)
    _count_recomputed(counts, distinct.size, failed_entries)
    for at, _sample, losses in _recomputed_pairs(stack, params, trace, index, role, distinct, failed_entries,
                                                 failed_samples, labels, pass_, h, general_chunk):
        sums[at] += losses
    if on_entries is not None:
        on_entries(wanted.size)
    return (sums / labels.shape[0] / (2 * h))[entry_of.reshape(-1)]


def numerical_gradient(stack, params, x, labels, pass_, h=H, entries=None, on_entries=None, report=None):
    """Every entry of every parameter ``stack``'s layers read: dict in layer order.

    ``pass_`` is the call's ``ForwardPass`` (its mode, dropout masks drawn here
    on the first pass and reused by every perturbed one, running statistics);
    a training-mode pass leaves batch norm's statistics in ``pass_.stats``.
    With ``entries`` (key -> flat indices) only those entries: key -> their
    values, in the order given (a sampled check of a large network).
    ``on_entries(n)`` is called after each chunk of ``n`` entries (a progress bar).
    ``report`` (a dict), when given, gets ``moved`` and ``recomputed``: how many
    entries moves gave (``fastnum.layers.moves``) and how many the general path
    (in some samples), and ``pairs recomputed`` (entry, sample).
    """
    scores, trace = stack.forward(params, x, pass_, keep=True)
    decay = dict(stack.weight_decay)
    n_samples = labels.shape[0]
    counts = {"moved": 0, "recomputed": 0, "pairs recomputed": 0}
    moves = None  # MovesOfCall, once a layer takes moves
    grads = {}
    shape = tuple(stack.sample_shape)
    for index, layer in enumerate(stack.layers):
        layer_in, layer_out, cache = trace[index]
        if layer.param_keys:
            per_chunk = _entries_per_chunk(stack, params, index, shape, n_samples)
            above = ForwardPass(train=pass_.train, masks=pass_.masks, running=pass_.running, records=False)
            by_units = takes_unit_moves(stack, index)
            by_moves = by_units or _moves_reach_the_loss(stack, index)
            if by_moves and moves is None:
                moves = _moves_of_call(stack, params, trace, above)
            for role, key in layer.param_keys.items():
                if entries is not None and key not in entries:
                    continue
                wanted = np.arange(params[key].size) if entries is None else np.asarray(entries[key], dtype=np.int64)
                if by_units:
                    grad = _gradient_by_unit_moves(stack, params, trace, moves, index, role, wanted, labels, above, h,
                                                   per_chunk, counts, on_entries)
                elif by_moves:
                    grad = _gradient_by_moves(stack, params, trace, moves, index, role, wanted, labels, above, h,
                                              (_moves_per_chunk(stack, params, index, shape, n_samples), per_chunk),
                                              counts, on_entries)
                else:
                    grad = np.empty(wanted.size)
                    counts["recomputed"] += wanted.size
                    for start in range(0, wanted.size, per_chunk):
                        some = wanted[start:start + per_chunk]
                        moved = layer.perturbed(layer_in, layer_out, cache, params, role, some, h)
                        top, _ = stack.run(params, moved, above, first=index + 1)
                        losses = stack.loss_layer.loss(top, labels)
                        e = len(some)
                        grad[start:start + e] = (losses[:e] - losses[e:]) / (2 * h)
                        if on_entries is not None:
                            on_entries(e)
                if key in decay:
                    w = params[key].ravel()[wanted]
                    grad += 0.5 * decay[key] * ((w + h) * (w + h) - (w - h) * (w - h)) / (2 * h)
                grads[key] = grad.reshape(params[key].shape) if entries is None else grad
        shape = layer.output_shape(shape, params)
    if report is not None:
        report.update(counts)
    return {key: grads[key] for key in stack.param_keys() if key in grads}


def _layer_flops(layer, in_shape, params):
    """Floating-point operations of one layer's forward pass for one sample (about)."""
    size = int(np.prod(in_shape))
    if hasattr(layer, "W") and hasattr(layer, "stride"):  # a convolution
        n_filters, channels, fh, fw = params[layer.W].shape
        _, out_h, out_w = layer.output_shape(in_shape, params)
        return 2 * out_h * out_w * n_filters * channels * fh * fw
    if hasattr(layer, "W"):  # an affine layer
        return 2 * size * params[layer.W].shape[1]
    return 10 * size


MOVE_PRODUCT_WEIGHT = 0.1
"""What one multiply-add of a move costs, in the general path's operations: moves are carried as large
BLAS products, about ten times the general path's rate (DeepConvNet, MultiLayerNet, measured)."""
MOVE_ELEMENT_WEIGHT = 4.0
"""What one element of a move costs per layer, in the general path's operations: the proofs' passes over
it (absolute values, comparisons, masks), about 4 ns per element at 1e9 operations per second (measured
on MultiLayerNet(784, [100, 100, 100], 10) when its affine layers still took per-entry moves: about 24 s
for its full gradient of 100 samples)."""
MOVE_LOSS_WEIGHT = 60.0
"""What one score of a pair costs at the loss, in the general path's operations: both perturbed softmaxes
and their logs, a dozen elementwise passes over (E, N, classes) (measured: SimpleConvNet's W2, whose
432,000 entries move one unit each, took about 650 ns per pair by per-entry moves, nearly all of it
here; unit moves' class-major losses cost about the same per (pair, unit, class): 54 ns for both signs on
MultiLayerNet's layers)."""


def _move_elements(stack, index, shapes):
    """Per layer from ``index`` up: (elements of one entry's move of its output for one sample, the moving
    share of its input). The first move fills one channel (a map, or a unit) of layer ``index``'s output;
    layers above keep to that channel until one mixes channels (affine, convolution). ``shapes[k]`` is
    layer k's input shape."""
    fraction = 1.0 / shapes[index + 1][0]
    yield int(np.prod(shapes[index + 1])) * fraction, 1.0
    for above in range(index + 1, len(stack.layers)):
        read = fraction
        if hasattr(stack.layers[above], "W"):  # affine or convolution: every output channel moves
            fraction = 1.0
        yield int(np.prod(shapes[above + 1])) * fraction, read


def _moved_flops(stack, index, shapes, per_layer, n_out):
    """About the operations, in the general path's (``MOVE_PRODUCT_WEIGHT``, ``MOVE_ELEMENT_WEIGHT``),
    of carrying one entry's move of layer ``index`` to the loss for one sample (``_move_elements``): a
    layer above that mixes channels does its products (``per_layer``, ``_layer_flops``) for the moving
    share of its input only."""
    products = elements = 0.0
    for offset, (size, read) in enumerate(_move_elements(stack, index, shapes)):
        if offset and hasattr(stack.layers[index + offset], "W"):
            products += per_layer[index + offset] / 2 * read
        elements += size
    return MOVE_PRODUCT_WEIGHT * products + MOVE_ELEMENT_WEIGHT * elements + MOVE_LOSS_WEIGHT * n_out


UNIT_GATHER_WEIGHT = 6.0
"""What one (entry, sample) costs unit moves besides its pair's losses, in the general path's operations:
gathering its pair's difference and summing (measured on MultiLayerNet(784, [100, 100, 100], 10))."""


def _unit_moved_flops(stack, index, shapes, per_layer, n_out, key_rows, n_samples, first_pairs):
    """About the operations, in the general path's, of unit moves (``fastnum.layers.unit_moves``) for all
    entries of the affine layer ``index``: a response per (unit, sample) carried as a move, the losses of
    every distinct (sample, step) pair and unit, and a gather per (entry, sample). ``key_rows``: each
    role's rows (inputs for ``W``, 1 for ``b``); ``first_pairs``: the distinct steps of the first layer's
    weights when the input is known (``unit_moves.distinct_pairs`` of the images), else every (input, sample)
    counts."""
    units = int(np.prod(shapes[index + 1]))
    total = units * n_samples * _moved_flops(stack, index, shapes, per_layer, n_out)
    for rows in key_rows:
        pairs = first_pairs if (first_pairs is not None and index == 0 and rows > 1) else rows * n_samples
        total += pairs * units * n_out * MOVE_LOSS_WEIGHT + rows * units * n_samples * UNIT_GATHER_WEIGHT
    return total


def estimated_flops(stack, params, n_samples, x=None):
    """About the floating-point operations of ``numerical_gradient`` on ``n_samples`` samples: for every
    parameter entry, the layers above its own on its move (``_moved_flops``) where moves reach the loss,
    else two passes of them (the general path); an affine layer's entries by unit moves
    (``_unit_moved_flops``, counting the distinct pixel values of ``x`` when given). ``params`` may hold
    any arrays of the right shapes."""
    shapes = [tuple(stack.sample_shape)]
    per_layer = []
    for layer in stack.layers:
        per_layer.append(_layer_flops(layer, shapes[-1], params))
        shapes.append(tuple(layer.output_shape(shapes[-1], params)))
    n_out = int(np.prod(shapes[-1]))
    total = sum(per_layer) * n_samples
    for index, layer in enumerate(stack.layers):
        entries = sum(int(np.prod(params[key].shape)) for key in layer.param_keys.values())
        if not entries:
            continue
        if takes_unit_moves(stack, index):
            rows = [params[key].shape[0] if params[key].ndim > 1 else 1 for key in layer.param_keys.values()]
            first_pairs = None  # the first layer's steps are the pixels: their distinct values count
            if index == 0 and x is not None:
                first_pairs = distinct_pairs(np.asarray(x).reshape(len(x), -1).T)[0].size
            total += _unit_moved_flops(stack, index, shapes, per_layer, n_out, rows, n_samples, first_pairs)
            continue
        if _moves_reach_the_loss(stack, index):
            per_entry = _moved_flops(stack, index, shapes, per_layer, n_out)
        else:  # the moved output (copied), then the layers above and the loss, for +h and for -h
            per_entry = 2 * (2 * int(np.prod(shapes[index + 1])) + sum(per_layer[index + 1:]) + 20 * n_out)
        total += entries * n_samples * per_entry
    return float(total)
