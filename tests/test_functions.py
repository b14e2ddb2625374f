"""fastnum.functions against the plain-numpy reference, pair by pair."""

import numpy as np
import pytest

from fastnum import functions as F
from references import naive


@pytest.mark.parametrize("fast, reference", naive.FUNCTION_PAIRS, ids=lambda f: getattr(f, "__name__", ""))
@pytest.mark.parametrize("shape", [(7,), (5, 10), (3, 4, 6)])
def test_function_matches_reference(fast, reference, shape, rng):
    x = rng.normal(scale=3.0, size=shape)
    x[..., 0] = 0.0  # the step/relu conventions at zero
    np.testing.assert_allclose(fast(x), reference(x), rtol=1e-15, atol=0)


def test_softmax_rows_sum_to_one_and_survive_large_inputs():
    y = F.softmax(np.array([[1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]]))
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(F.softmax(np.array([0.3, 2.9, 4.0])), naive.softmax(np.array([0.3, 2.9, 4.0])))


def test_step_function_is_integer():
    assert F.step_function(np.array([-1.0, 0.0, 2.0])).tolist() == [0, 0, 1]


@pytest.mark.parametrize("fast, reference", naive.LOSS_PAIRS, ids=lambda f: getattr(f, "__name__", ""))
def test_losses_match_reference_for_one_hot_and_indices(fast, reference, rng):
    logits = rng.normal(size=(6, 10))
    y = naive.softmax(logits)
    indices = rng.integers(0, 10, 6)
    one_hot = np.eye(10)[indices]
    source = logits if fast is F.softmax_loss else y
    assert fast(source, one_hot) == pytest.approx(reference(source, one_hot), rel=1e-14)
    if fast is not F.sum_squared_error:
        assert fast(source, indices) == pytest.approx(reference(source, one_hot), rel=1e-14)


def test_cross_entropy_error_book_formula_and_1d():
    y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    t = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    assert F.cross_entropy_error(y, t) == pytest.approx(-np.log(0.6 + 1e-7))
    assert F.cross_entropy_error(y, 2) == pytest.approx(-np.log(0.6 + 1e-7))
    assert F.cross_entropy_error(y, np.array([2])) == pytest.approx(-np.log(0.6 + 1e-7))
    assert F.sum_squared_error(y, t) == pytest.approx(0.0975)


def test_cross_entropy_error_rejects_bad_labels():
    y = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="labels"):
        F.cross_entropy_error(y, np.array([0, 3]))
    with pytest.raises(ValueError, match="labels for a batch"):
        F.cross_entropy_error(y, np.array([0, 1, 2, 0]))
