"""The distinct nonzero values of an input row, found with a hash table.

A perturbation of weight ``W[i, j]`` moves unit j of one sample by
``+-h * input[i]``: its perturbed loss depends on the input's value, not on
i. The numerical-gradient kernels therefore evaluate one perturbed loss per
*distinct* value of a sample's input row (about 67 per MNIST image instead
of 150 nonzero pixels; every one for continuous hidden activations) and add
it to every input holding that value.
"""

from typing import NamedTuple

import numpy as np

from .._config import compiled_helper
from .vecmath import SMALL_EXP_DOMAIN, _float64_bits_as_int64, expm1, expm1_small

VALUE_PADDING = 8
"""The distinct values of a sample are padded with zeros to a multiple of this
(8 doubles: one AVX-512 register, two AVX2 ones), so that the vectorised loops
over them never fall into their slow scalar remainder. A zero value is a
perturbation that changes nothing; its loss difference is never used."""


def padded_width(n_in):
    """Columns of the distinct-value tables for ``n_in`` pixels (plus the bias "pixel")."""
    return -(-(n_in + 1) // VALUE_PADDING) * VALUE_PADDING


def hash_table_size(n_in):
    """Slots of a sample's value table: a power of two at least twice the values it can hold."""
    size = 16
    while size < 2 * (n_in + 1):
        size *= 2
    return size


@compiled_helper(inline="always")
def _slot_of(value, mask):
    """Home slot of a nonzero float64 in an open-addressing table (mask = size - 1)."""
    bits = _float64_bits_as_int64(value)
    # data from float32 images have 29 zero low bits: fold the high bits down before masking
    bits ^= bits >> 29
    bits ^= bits >> 13
    return bits & mask


@compiled_helper(inline="always")
def _code_of(value, row_values, table, used_slots, n_distinct):
    """Position of ``value`` among the sample's distinct values, added when new.

    Returns (code, n_distinct after the call).
    """
    mask = table.shape[0] - 1
    slot = _slot_of(value, mask)
    while table[slot] >= 0:
        code = table[slot]
        if row_values[code] == value:
            return code, n_distinct
        slot = (slot + 1) & mask
    table[slot] = n_distinct
    used_slots[n_distinct] = slot
    row_values[n_distinct] = value
    return n_distinct, n_distinct + 1


@compiled_helper
def _expm1_of_steps(h, row_values, n_values, out):
    """``out[v] = expm1(h * row_values[v])``: a function of its own, compiled once for both signs."""
    for v in range(n_values):
        out[v] = expm1(h * row_values[v])


@compiled_helper
def _distinct_values_of_sample(
    x_row, h, row_values, nonzero_idx, codes, expm1_minus_step, expm1_plus_step, table, used_slots,
):
    """A sample's nonzero pixels and their distinct values; returns
    (n_nonzero, n_values, one_code, max_abs_value).

    Fills ``nonzero_idx[:n_nonzero]`` the indices of the nonzero pixels,
    ``row_values[:n_values]`` the distinct nonzero values and 1.0 (the bias
    "pixel"), in order of first appearance, then zeros up to a multiple of
    ``VALUE_PADDING`` (``n_values`` counts the padding), ``codes[p]`` the
    position in ``row_values`` of the value of nonzero pixel p, ``one_code``
    the position of 1.0, ``expm1_minus_step[v] = expm1(-h * row_values[v])`` and
    ``expm1_plus_step[v] = expm1(h * row_values[v])`` (what the sigmoid's step
    is made of when a1 moves by ``+-h * value``).

    Distinct values are found with a hash table in one pass (no sort): their
    order does not matter, since each value's loss difference is computed
    independently of the others. ``table`` is all -1 on entry and on exit.
    """
    one_code, n_distinct = _code_of(1.0, row_values, table, used_slots, 0)
    count = 0
    for i in range(x_row.shape[0]):
        value = np.float64(x_row[i])  # float32 images widen exactly
        if value != 0.0:
            nonzero_idx[count] = i
            codes[count], n_distinct = _code_of(value, row_values, table, used_slots, n_distinct)
            count += 1
    max_abs_value = 0.0
    for v in range(n_distinct):
        table[used_slots[v]] = -1
        max_abs_value = max(max_abs_value, abs(row_values[v]))
    n_padded = -(-n_distinct // VALUE_PADDING) * VALUE_PADDING
    row_values[n_distinct:n_padded] = 0.0
    if h * max_abs_value <= SMALL_EXP_DOMAIN:  # every step small (MNIST): the short series alone
        for v in range(n_padded):
            expm1_minus_step[v] = expm1_small(-h * row_values[v])
            expm1_plus_step[v] = expm1_small(h * row_values[v])
    else:
        _expm1_of_steps(-h, row_values, n_padded, expm1_minus_step)
        _expm1_of_steps(h, row_values, n_padded, expm1_plus_step)
    return count, n_padded, one_code, max_abs_value


class DistinctValues(NamedTuple):
    """Per sample: nonzero pixels, their distinct values and the factors of the sigmoid's step."""

    values: np.ndarray
    n_values: np.ndarray
    nonzero_idx: np.ndarray
    n_nonzero: np.ndarray
    codes: np.ndarray
    one_code: np.ndarray
    expm1_minus_step: np.ndarray
    expm1_plus_step: np.ndarray
    max_abs_value: np.ndarray
    tables: np.ndarray
    used_slots: np.ndarray


def distinct_values_buffers(rows, n_in):
    """A ``DistinctValues`` for ``rows`` (a shape: the samples, or hidden layers and samples) of ``n_in``
    inputs each: zeros, and hash tables of empty slots (-1)."""
    rows, width = tuple(rows), padded_width(n_in)
    return DistinctValues(
        values=np.zeros(rows + (width,)), n_values=np.zeros(rows, dtype=np.int64),
        nonzero_idx=np.zeros(rows + (n_in,), dtype=np.int64), n_nonzero=np.zeros(rows, dtype=np.int64),
        codes=np.zeros(rows + (n_in,), dtype=np.int64), one_code=np.zeros(rows, dtype=np.int64),
        expm1_minus_step=np.zeros(rows + (width,)), expm1_plus_step=np.zeros(rows + (width,)),
        max_abs_value=np.zeros(rows), tables=np.full(rows + (hash_table_size(n_in),), -1, dtype=np.int64),
        used_slots=np.zeros(rows + (width,), dtype=np.int64),
    )


@compiled_helper
def _distinct_values_into(b, x_row, h, dv):
    """``_distinct_values_of_sample`` for sample b, into the tables of ``dv``."""
    n_nonzero, n_values, one_code, max_abs_value = _distinct_values_of_sample(
        x_row, h, dv.values[b], dv.nonzero_idx[b], dv.codes[b], dv.expm1_minus_step[b], dv.expm1_plus_step[b],
        dv.tables[b], dv.used_slots[b],
    )
    dv.n_nonzero[b] = n_nonzero
    dv.n_values[b] = n_values
    dv.one_code[b] = one_code
    dv.max_abs_value[b] = max_abs_value
