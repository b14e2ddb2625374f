"""The eight-lane vector operations and the side-by-side layout of method="full"."""

import numpy as np
import pytest
from numba import njit

from fastnum.kernels.lanes import LANES, fma_lanes, max_lanes
from fastnum.kernels.vecmath import fma
from fastnum.two_layer._numgrad_full import VECTOR_ALIGNMENT, lane_buffers, parameter_groups


@njit
def _fma_rows(dst, a, b):
    for r in range(dst.shape[0]):
        fma_lanes(dst[r], a[r], b[r])


@njit
def _fma_row_scalar(dst, a, b):
    for r in range(dst.shape[0]):
        fma_lanes(dst[r], a[r], b[r, 0])


@njit
def _fma_scalar_row(dst, a, b):
    for r in range(dst.shape[0]):
        fma_lanes(dst[r], a[r, 0], b[r])


@njit
def _fma_scalars(dst, a, b):
    for r in range(dst.shape[0]):
        fma_lanes(dst[r], a[r, 0], b[r, 0])


@njit
def _scalar_fmas(dst, a, b):
    for r in range(dst.shape[0]):
        for lane in range(dst.shape[1]):
            dst[r, lane] = fma(a[r, lane], b[r, lane], dst[r, lane])


@pytest.mark.parametrize("kind", ["row-row", "row-scalar", "scalar-row", "scalar-scalar"])
def test_fma_lanes_is_the_scalar_fma_in_every_lane(kind, rng):
    dst = rng.standard_normal((50, LANES))
    a = rng.standard_normal((50, LANES))
    b = rng.standard_normal((50, LANES))
    if kind.startswith("scalar"):
        a[:] = a[:, :1]
    if kind.endswith("scalar"):
        b[:] = b[:, :1]
    vector_op = {"row-row": _fma_rows, "row-scalar": _fma_row_scalar, "scalar-row": _fma_scalar_row,
                 "scalar-scalar": _fma_scalars}[kind]
    expected = dst.copy()
    _scalar_fmas(expected, a, b)
    got = dst.copy()
    vector_op(got, a, b)
    assert np.array_equal(got, expected)
    # one rounding, not two: somewhere the fused result differs from the product rounded first
    assert not np.array_equal(got, dst + a * b)


@njit
def _running_max(dst, rows):
    for r in range(rows.shape[0]):
        max_lanes(dst, rows[r])


def test_max_lanes_is_a_running_maximum_that_passes_over_nan(rng):
    rows = rng.standard_normal((10, LANES))
    rows[3, 2] = np.nan
    rows[7, 5] = np.inf
    got = rows[0].copy()
    _running_max(got, rows[1:])
    expected = rows[0].copy()
    for row in rows[1:]:
        expected = np.where(row > expected, row, expected)
    assert np.array_equal(got, expected)
    assert got[5] == np.inf and not np.isnan(got).any()


@pytest.mark.parametrize("shape", [(784, 50, 10), (20, 7, 4), (3, 1, 2), (5, 9, 1)])
def test_parameter_groups_cover_every_parameter_once_in_the_books_order(shape):
    n_in, n_hidden, n_out = shape
    groups = parameter_groups(n_in, n_hidden, n_out)
    cols_of = {0: n_hidden, 1: n_hidden, 2: n_out, 3: n_out}
    covered = []
    for array_id, row, col0, count in groups:
        assert 1 <= count <= LANES // 2
        assert col0 + count <= cols_of[array_id]  # never past the end of its row
        covered += [(array_id, row, col0 + q) for q in range(count)]
    expected = [(0, i, j) for i in range(n_in) for j in range(n_hidden)] + [(1, 0, j) for j in range(n_hidden)]
    expected += [(2, j, k) for j in range(n_hidden) for k in range(n_out)] + [(3, 0, k) for k in range(n_out)]
    assert covered == expected


def test_every_lane_row_starts_on_a_cache_line():
    for _ in range(5):
        lanes = lane_buffers(50, 10)
        for name, buffer in lanes._asdict().items():
            assert buffer.shape[-1] == LANES, name
            assert buffer.ctypes.data % VECTOR_ALIGNMENT == 0, name
            assert buffer.flags.c_contiguous, name
