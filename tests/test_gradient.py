"""numerical_gradient(f, x) and the chapter's helpers behave as the book's."""

import numpy as np
import pytest

import fastnum
from fastnum import numerical_diff, numerical_gradient, numerical_gradient_2d
from references import naive


def function_1(x):
    return 0.01 * x**2 + 0.1 * x


def function_2(x):
    if x.ndim == 1:
        return np.sum(x**2)
    return np.sum(x**2, axis=1)


def test_numerical_diff_matches_book_values():
    assert numerical_diff(function_1, 5) == pytest.approx(0.2, abs=1e-9)
    assert numerical_diff(function_1, 10) == pytest.approx(0.3, abs=1e-9)


@pytest.mark.parametrize("shape", [(2,), (3, 4), (2, 3, 2)])
def test_numerical_gradient_is_bitwise_the_books(shape, rng):
    x = rng.normal(size=shape)
    expected = naive.numerical_gradient(lambda v: np.sum(np.sin(v) * v), x.copy())
    got = numerical_gradient(lambda v: np.sum(np.sin(v) * v), x)
    assert got.shape == x.shape
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got, np.sin(x) + x * np.cos(x), atol=1e-7)


def test_book_examples():
    np.testing.assert_allclose(numerical_gradient(function_2, np.array([3.0, 4.0])), [6.0, 8.0], atol=1e-6)
    np.testing.assert_allclose(numerical_gradient(function_2, np.array([0.0, 2.0])), [0.0, 4.0], atol=1e-6)


def test_closure_reading_the_perturbed_array_works_in_place(rng):
    """The book's exercises pass f = lambda W: net.loss(x, t) and rely on W being perturbed in place."""
    net = fastnum.TwoLayerNet(6, 4, 3)
    x, t = naive.mnist_like_batch(rng, 5, n_in=6, n_out=3)
    before = net.params["W2"].copy()
    grad = numerical_gradient(lambda W: net.loss(x, t), net.params["W2"])
    np.testing.assert_array_equal(net.params["W2"], before)
    reference = naive.numerical_gradient_net(net.params, x, t)["W2"]
    np.testing.assert_allclose(grad, reference, atol=1e-10)


def test_x_is_restored_when_f_raises(rng):
    x = rng.normal(size=(3, 3))
    before = x.copy()
    calls = []

    def f(v):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("boom")
        return float(np.sum(v))

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, bool])
def test_integer_arrays_are_rejected(dtype):
    with pytest.raises(TypeError, match="float"):
        numerical_gradient(function_2, np.array([3, 4], dtype=dtype))


def test_complex_arrays_are_told_what_is_wrong_with_them():
    with pytest.raises(TypeError, match=r"dtype complex128: the numerical gradient is of a real function") as info:
        numerical_gradient(function_2, np.array([3.0 + 1j, 4.0]))
    assert "integer" not in str(info.value)


def test_non_arrays_and_read_only_arrays_are_rejected():
    with pytest.raises(TypeError, match="numpy array"):
        numerical_gradient(function_2, [3.0, 4.0])
    x = np.array([3.0, 4.0])
    x.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        numerical_gradient(function_2, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_narrow_floats_are_refused_with_how_to_convert(dtype):
    """float32 cannot hold x + 1e-4 (the book's [3, 4] gave [5.989, 8.001]); float16 gave zeros."""
    x = np.array([3.0, 4.0], dtype=dtype)
    with pytest.raises(TypeError, match=r"h = 1e-4 is below what .* x.astype\(np.float64\)"):
        numerical_gradient(function_2, x)
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient_2d(function_2, np.ones((2, 2), dtype=dtype))
    with pytest.raises(TypeError, match="float64"):
        numerical_diff(lambda v: v ** 2, dtype(3.0))
    np.testing.assert_array_equal(x, [3.0, 4.0])  # untouched
    # converted as the message says, it is the book's float64 result
    np.testing.assert_allclose(numerical_gradient(function_2, x.astype(np.float64)), [6.0, 8.0], atol=1e-6)
    assert numerical_diff(lambda v: v ** 2, 3.0) == pytest.approx(6.0, abs=1e-8)


def test_numerical_gradient_2d_row_by_row(rng):
    X = rng.normal(size=(5, 2))
    before = X.copy()
    grad = numerical_gradient_2d(function_2, X)
    np.testing.assert_allclose(grad, 2 * before, atol=1e-6)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_allclose(numerical_gradient_2d(function_2, np.array([3.0, 4.0])), [6.0, 8.0], atol=1e-6)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        numerical_gradient_2d(function_2, np.zeros((2, 2, 2)))
