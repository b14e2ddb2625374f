"""Unit moves: an affine layer's entries carried up as one response per (unit, sample), scaled.

An entry of an ``Affine`` layer moves one unit of its output per sample:
``W[i, j]`` moves unit j of sample n by ``h x[n, i]``, ``b[j]`` by ``h``
(``Affine.unit_scales``: the step in units of h). The activation right
above (``Relu``, ``Sigmoid``: ``unit_step``) is evaluated exactly at that
unit, for ``+h`` and ``-h`` apart. Every layer above that is linear while
its proof holds (``fastnum.layers.moves``), so in real numbers the scores
move by the unit's step times the unit's *response*: the move of the
scores that a step of 1 at that unit of that sample makes. One response per
(unit, sample), carried by the layers' own ``propagate``, serves every
entry of the unit; the engine of ``fastnum.layers.moves`` carries one move
per entry instead, the layers above run once per entry (MultiLayerNet(784,
[100, 100, 100], 10) on 100 images: 33 s for the moves, about a second
here). The perturbed losses are evaluated once per distinct (sample, step)
(MNIST's pixels take at most 256 values) and unit.

What is checked per (entry, sample), with the step s computed for each sign:

* the response carries a *radius* (``move_radius`` of every layer above):
  every ReLU input keeps its side, every window maximum its place, for any
  move ``s`` times the computed response with ``|s| <= radius``; the
  computed move ``s * response`` is then the proof ``propagate`` makes for
  a move of its own (a ReLU's limit, a window's gap), and the real move is
  within the bound below of it (those layers are 1-Lipschitz);
* the bound: ``|s| err + err_s gain + u |s| max |response|`` is below the
  book's own rounding bound of the scores, as ``move_loss_differences``
  asks of a move. ``err`` is the response's own bound (``propagate``'s),
  ``err_s`` the step's (its rounding, the activation's evaluation), and
  ``gain`` what the layers above make of a bound of 1 at the unit
  (``propagate`` of a move of zeros with a bound of 1: the same recurrence);
* both are finite.

A pair that fails any of them is recomputed by the general path, as the
moves' are (``fastnum.layers.numerical._recomputed_losses``).
"""

import numpy as np

from .moves import BOUND_SLACK, UNIT_ROUNDOFF, Move, largest

ELEMENTS_PER_CHUNK = 1 << 20
"""About the floats of the largest temporary of a chunk (pairs x units x classes): it stays in cache."""
RADIUS_MARGIN = 1.0 - 2.0**-50
"""The radius is a quotient (one rounding): made a hair smaller, ``|s| <= radius`` proves ``|s| |move| <= limit``."""


def takes_unit_moves(stack, index):
    """Whether entries of layer ``index`` can be carried as unit moves: the layer has ``unit_scales``
    and every layer above (past an activation evaluated at the unit) a ``move_radius``."""
    if not hasattr(stack.layers[index], "unit_scales"):
        return False
    return all(hasattr(layer, "move_radius") for layer in stack.layers[_first_linear(stack, index):])


def _first_linear(stack, index):
    """The lowest layer the responses are carried through: above the activation (``unit_step``) right
    over layer ``index``, where there is one."""
    above = index + 1
    return above + 1 if above < len(stack.layers) and hasattr(stack.layers[above], "unit_step") else above


def distinct_pairs(scales):
    """The distinct nonzero (sample, scale) of ``scales`` (R, N): (M,) their samples, (M,) their scales,
    and (R, N) each element's pair (-1 where the scale is zero: that entry does not move that sample)."""
    rows, n_samples = scales.shape
    values = scales.T.ravel()  # sample-major: (N * R,)
    samples = np.repeat(np.arange(n_samples), rows)
    moving = np.flatnonzero(values != 0)  # NaN moves (and fails its checks later)
    order = moving[np.lexsort((values[moving], samples[moving]))]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (samples[order[1:]] != samples[order[:-1]]) | (values[order[1:]] != values[order[:-1]])
    pair_of = np.full(values.size, -1, dtype=np.int64)
    pair_of[order] = np.cumsum(new) - 1
    first = order[new]
    return samples[first], values[first], pair_of.reshape(n_samples, rows).T


def _responses(stack, params, contexts, first, units, n_samples, n_units):
    """The responses of ``units`` of layer ``first - 1``'s output: (C, N, O) the scores' move per step
    of 1 at each unit, (C, N) their bounds, (C, N) their radii and (N,) the gain of a bound."""
    count = len(units)
    delta = np.zeros((count, n_samples, n_units))
    delta[np.arange(count), :, units] = 1.0
    move = Move(delta, np.zeros((count, n_samples)), -1, np.zeros((count, n_samples), dtype=bool))
    carried = Move(np.zeros((1, n_samples, n_units)), np.ones((1, n_samples)), -1, np.zeros((1, n_samples), bool))
    radius = np.full((count, n_samples), np.inf)
    for above in range(first, len(stack.layers)):
        layer = stack.layers[above]
        reach = layer.move_radius(move, contexts.get(above))
        if reach is not None:
            radius = np.minimum(radius, reach * RADIUS_MARGIN)
        move = layer.propagate(move, contexts.get(above), params)
        carried = layer.propagate(carried, contexts.get(above), params)
    return move.delta, move.err, radius, carried.err[0]


def _steps(stack, trace, index, first, h, pair_sample, pair_scale, units):
    """(2, M, C) the unit's move at the responses' layer for ``+h`` and ``-h`` of each pair and unit, and
    (2, M, C) their bounds: ``+-h s`` (one rounding, as ``Affine.first_move``), through the activation
    above evaluated exactly (``unit_step``) where there is one (``first``, the responses' layer, above it)."""
    linear = h * pair_scale[:, None]
    steps = np.stack([np.broadcast_to(linear, (linear.shape[0], len(units))),
                      np.broadcast_to(-linear, (linear.shape[0], len(units)))])
    errs = 2 * UNIT_ROUNDOFF * np.abs(steps)
    if first == index + 1:
        return steps, errs
    activation = stack.layers[index + 1]
    z = trace[index + 1][0][0][pair_sample][:, units]  # the activation's input at the pairs' units
    out = trace[index + 1][1][0][pair_sample][:, units]
    moved_steps, moved_errs = [], []
    for sign in range(2):
        step, err = activation.unit_step(z, z + steps[sign], out)
        moved_steps.append(step)
        moved_errs.append(err + errs[sign])  # the activations here are 1-Lipschitz: the step's bound carries
    return np.stack(moved_steps), np.stack(moved_errs)


def unit_move_sums(stack, params, trace, contexts, rounding, index, role, wanted, labels, h):
    """The entries ``wanted`` (distinct) of one role of layer ``index`` by unit moves: (E,) each entry's
    ``sum_n l_n(p + h) - l_n(p - h)`` over the samples whose checks hold, and the (entry, sample) pairs
    whose checks fail, (K,) and (K,), left out of those sums for the general path."""
    layer = stack.layers[index]
    layer_in, layer_out, _ = trace[index]
    n_samples = labels.shape[0]
    n_units = layer_out.shape[-1]
    scores = trace[-1][1][0]
    n_classes = scores.shape[-1]
    loss_layer = stack.loss_layer
    scales, row_of_entry = layer.unit_scales(layer_in, params, role, wanted)
    units, unit_of_entry = np.unique(layer.move_channels(params, role, wanted), return_inverse=True)
    pair_sample, pair_scale, pair_of = distinct_pairs(scales)
    n_pairs = pair_sample.size
    # per (pair, unit); then one row per sample for the entries that do not move it: its unmoved loss
    # twice, 0 (or NaN, as the book's, where that loss is not finite)
    differences = np.empty((n_pairs + n_samples, units.size))
    failed = np.zeros((n_pairs + n_samples, units.size), dtype=bool)
    unmoved = loss_layer.class_major_losses(scores.T, labels)
    differences[n_pairs:] = (unmoved - unmoved)[:, None]
    pair_of = np.where(pair_of < 0, n_pairs + np.arange(n_samples)[None, :], pair_of)
    first = _first_linear(stack, index)
    scores_by_class = scores.T  # (O, N): the losses are evaluated class-major, each class a slab
    unit_chunk = max(1, min(units.size, ELEMENTS_PER_CHUNK // (n_samples * max(n_units, n_classes))))
    for start in range(0, units.size, unit_chunk):
        some = slice(start, start + unit_chunk)
        response, err, radius, gain = _responses(stack, params, contexts, first, units[some], n_samples, n_units)
        reach = largest(response).T  # (N, C)
        response = np.ascontiguousarray(response.transpose(2, 1, 0))  # (O, N, C)
        err, radius = err.T, radius.T
        pair_chunk = max(1, ELEMENTS_PER_CHUNK // (units[some].size * n_classes))
        for p in range(0, n_pairs, pair_chunk):
            at = slice(p, min(p + pair_chunk, n_pairs))  # the rows past n_pairs are the samples'
            b = pair_sample[at]
            steps, errs = _steps(stack, trace, index, first, h, b, pair_scale[at], units[some])
            size = np.abs(steps)
            bound = BOUND_SLACK * (size * err[b] + errs * gain[b, None] + UNIT_ROUNDOFF * size * reach[b])
            ok = (size <= radius[b]) & (bound <= rounding[b, None]) & np.isfinite(bound)
            moved = response[:, b]  # (O, M, C)
            base = scores_by_class[:, b, None]
            plus = loss_layer.class_major_losses(base + steps[0] * moved, labels[b, None])
            minus = loss_layer.class_major_losses(base + steps[1] * moved, labels[b, None])
            differences[at, some] = plus - minus
            failed[at, some] = ~(ok[0] & ok[1])
    return _entry_sums(differences, failed, pair_of, row_of_entry, unit_of_entry, units.size)


def _entry_sums(differences, failed, pair_of, row_of_entry, unit_of_entry, n_units):
    """(E,) the sums over samples of each entry's differences where its checks hold, and its failed
    pairs: ``differences`` and ``failed`` are (pairs, units), ``pair_of`` (rows, N) each row's pair."""
    rows, n_samples = pair_of.shape
    sums = np.empty((rows, n_units))
    failed_rows, failed_samples, failed_units = [], [], []
    chunk = max(1, ELEMENTS_PER_CHUNK // (n_samples * n_units))
    for start in range(0, rows, chunk):
        pairs = pair_of[start:start + chunk]  # (r, N)
        values = differences[pairs]  # (r, N, units): whole rows of the table, gathered
        fails = failed[pairs]
        if fails.any():
            r, n, u = np.nonzero(fails)
            failed_rows.append(r + start)
            failed_samples.append(n)
            failed_units.append(u)
            values[fails] = 0.0
        sums[start:start + chunk] = values.sum(axis=1)
    entry_sums = sums[row_of_entry, unit_of_entry]
    if not failed_rows:
        return entry_sums, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    entry_at = np.full((rows, n_units), -1, dtype=np.int64)  # distinct entries: one per (row, unit)
    entry_at[row_of_entry, unit_of_entry] = np.arange(row_of_entry.size)
    entries = entry_at[np.concatenate(failed_rows), np.concatenate(failed_units)]
    samples = np.concatenate(failed_samples)
    keep = entries >= 0  # a (row, unit) no wanted entry has
    return entry_sums, entries[keep], samples[keep]
