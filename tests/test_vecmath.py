"""The vectorisable exp and log used by the kernels are as accurate as libm's."""

import math

import numpy as np
import pytest
from numba import njit

from fastnum.kernels.vecmath import SMALL_EXP_DOMAIN, SMALL_EXP_GUARD, exp, exp_small, log


def _elementwise(function):
    """``function`` applied in a compiled loop, as the kernels use it."""

    @njit
    def apply(values, out):
        for i in range(values.size):
            out[i] = function(values[i])

    def call(values):
        out = np.empty_like(values)
        apply(values, out)
        return out

    return call


_fast_exp = _elementwise(exp)
_fast_log = _elementwise(log)
_fast_exp_small = _elementwise(exp_small)


@pytest.mark.parametrize("low, high", [(-1e-6, 1e-6), (-1.0, 1.0), (-40.0, 40.0), (-708.0, 709.7)])
def test_within_one_ulp_of_libm(low, high):
    values = np.random.default_rng(0).uniform(low, high, 200_000)
    reference = np.array([math.exp(v) for v in values])
    ulps = np.abs(_fast_exp(values) - reference) / np.spacing(reference)
    assert ulps.max() <= 1.0


def test_special_values():
    values = np.array([0.0, -0.0, np.inf, -np.inf, 710.0, -746.0, 709.78, -745.0])
    out = _fast_exp(values)
    assert out[0] == 1.0 and out[1] == 1.0
    assert out[2] == np.inf and out[3] == 0.0
    assert out[4] == np.inf and out[5] == 0.0
    assert np.isfinite(out[6]) and out[6] == pytest.approx(math.exp(709.78), rel=1e-15)
    assert out[7] == math.exp(-745.0)  # the smallest subnormal
    assert np.isnan(_fast_exp(np.array([np.nan]))[0])


def test_exact_powers():
    values = np.array([math.log(2.0) * k for k in (-3, -1, 1, 2, 10)])
    np.testing.assert_allclose(_fast_exp(values), [2.0**k for k in (-3, -1, 1, 2, 10)], rtol=2.3e-16)


@pytest.mark.parametrize(
    "low, high", [(1 - 1e-4, 1 + 1e-4), (0.5, 2.0), (1e-300, 1e-290), (1.0, 1e300), (1e-320, 1e-310)]
)
def test_log_within_one_ulp_of_libm(low, high):
    values = np.random.default_rng(1).uniform(low, high, 200_000)
    reference = np.array([math.log(v) for v in values])
    ulps = np.abs(_fast_log(values) - reference) / np.spacing(np.abs(reference))
    assert ulps.max() <= 1.0


def test_log_special_values():
    out = _fast_log(np.array([1.0, 0.0, -1.0, np.inf, np.nan, 5e-324, 2.0, np.e]))
    assert out[0] == 0.0
    assert out[1] == -np.inf
    assert np.isnan(out[2]) and np.isnan(out[4])
    assert out[3] == np.inf
    assert out[5] == math.log(5e-324)
    assert out[6] == math.log(2.0)
    assert abs(out[7] - 1.0) <= 2.3e-16


def test_exp_small_within_one_ulp_on_its_domain():
    values = np.random.default_rng(2).uniform(-SMALL_EXP_DOMAIN, SMALL_EXP_DOMAIN, 400_000)
    values[:3] = [0.0, SMALL_EXP_DOMAIN, -SMALL_EXP_DOMAIN]
    out = _fast_exp_small(values)
    reference = np.array([math.exp(v) for v in values])
    assert (np.abs(out - reference) / np.spacing(reference)).max() <= 1.0
    assert SMALL_EXP_GUARD <= SMALL_EXP_DOMAIN / 2


@pytest.mark.parametrize("name, guard_name", [("log1p_small", "SMALL_EXP_GUARD"), ("log1p_short", "LOW_DEGREE_GUARD")])
def test_log1p_series_within_one_ulp_on_their_domains(name, guard_name):
    """Each cut series of log1p on its domain, and the bound each kernel path relies on: logit steps of at
    most its guard give ``|log(N / D)| <= 4 guard``, inside the domain."""
    from fastnum.kernels import perturbed_losses, vecmath

    fast = _elementwise(getattr(vecmath, name))
    domain = getattr(vecmath, name.upper() + "_DOMAIN")
    guard = getattr(perturbed_losses, guard_name)
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.uniform(-domain, domain, 300_000), rng.uniform(-1e-9, 1e-9, 10_000),
                             [0.0, domain, -domain]])
    reference = np.array([math.log1p(v) for v in values])
    out = fast(values)
    nonzero = reference != 0
    assert (np.abs(out - reference)[nonzero] / np.spacing(np.abs(reference[nonzero]))).max() <= 1.0
    assert out[~nonzero].tolist() == [0.0] * int((~nonzero).sum())
    assert math.expm1(4 * guard) <= domain
    # and the domain is where the cut matters: eight times as far out, the series is off by more
    far = np.linspace(8 * domain, 16 * domain, 1000)
    assert (np.abs(fast(far) - np.log1p(far)) / np.spacing(np.log1p(far))).max() > 1.0


def test_expm1_small_within_one_ulp_on_its_domain():
    from fastnum.kernels.vecmath import expm1_small

    fast = _elementwise(expm1_small)
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.uniform(-SMALL_EXP_DOMAIN, SMALL_EXP_DOMAIN, 300_000),
                             rng.uniform(-1e-8, 1e-8, 10_000), [SMALL_EXP_DOMAIN, -SMALL_EXP_DOMAIN]])
    reference = np.array([math.expm1(v) for v in values])
    assert (np.abs(fast(values) - reference) / np.spacing(np.abs(reference))).max() <= 1.0
    assert fast(np.array([0.0]))[0] == 0.0


def test_expm1_within_a_few_ulps_everywhere():
    from fastnum.kernels.vecmath import EXPM1_DIRECT, expm1

    fast = _elementwise(expm1)
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.uniform(-1e-3, 1e-3, 50_000), rng.uniform(-1.0, 1.0, 100_000),
                             rng.uniform(-40.0, 40.0, 50_000), rng.uniform(-745.0, 709.0, 10_000),
                             [SMALL_EXP_DOMAIN, -SMALL_EXP_DOMAIN, np.nextafter(SMALL_EXP_DOMAIN, 1.0),
                              EXPM1_DIRECT, -EXPM1_DIRECT, np.nextafter(EXPM1_DIRECT, 1.0), 0.0, -800.0]])
    reference = np.array([math.expm1(v) for v in values])
    nonzero = reference != 0
    ulps = np.abs(fast(values) - reference)[nonzero] / np.spacing(np.abs(reference[nonzero]))
    assert ulps.max() <= 3.0
    assert fast(np.array([0.0, -800.0, 800.0])).tolist() == [0.0, -1.0, np.inf]


def test_add_rows4_adds_one_row_to_another():
    from fastnum.kernels.vecmath import add_rows4

    @njit
    def add_all(dst, rows, src, source_rows):
        for p in range(rows.shape[0]):
            add_rows4(dst, rows[p], src, source_rows[p])

    rng = np.random.default_rng(6)
    dst = rng.standard_normal((7, 4))
    src = rng.standard_normal((5, 4))
    rows, source_rows = rng.integers(0, 7, 40), rng.integers(0, 5, 40)
    expected = dst.copy()
    for row, source in zip(rows, source_rows):
        expected[row] += src[source]  # the same additions in the same order: bitwise equal
    add_all(dst, rows, src, source_rows)
    assert np.array_equal(dst, expected)
