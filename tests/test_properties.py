"""Property-based tests: both gradient methods equal the book's on random nets."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from references import naive


@st.composite
def problems(draw):
    n_in = draw(st.integers(1, 12))
    n_hidden = draw(st.integers(1, 6))
    n_out = draw(st.integers(2, 5))
    n_samples = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    zero_fraction = draw(st.sampled_from([0.0, 0.5, 0.81, 1.0]))
    label_form = draw(st.sampled_from(["indices", "one_hot", "uint8", "float_indices"]))
    activation = draw(st.sampled_from(["sigmoid", "relu"]))
    scale = draw(st.sampled_from([0.01, 0.5, 3.0]))
    return n_in, n_hidden, n_out, n_samples, seed, zero_fraction, label_form, activation, scale


def _labels(t, n_out, form):
    if form == "one_hot":
        return np.eye(n_out)[t]
    if form == "uint8":
        return t.astype(np.uint8)
    if form == "float_indices":
        return t.astype(np.float64)
    return t


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_both_methods_equal_the_books_gradient(problem):
    n_in, n_hidden, n_out, n_samples, seed, zero_fraction, label_form, activation, scale = problem
    rng = np.random.default_rng(seed)
    params = naive.random_params(rng, n_in, n_hidden, n_out, scale=scale)
    x, t = naive.mnist_like_batch(rng, n_samples, n_in=n_in, n_out=n_out, zero_fraction=zero_fraction)
    net = naive.net_with(params, activation)
    labels = _labels(t, n_out, label_form)
    expected = naive.numerical_gradient_net(params, x, t, activation)
    for method in ("incremental", "full"):
        got = net.numerical_gradient(x, labels, method=method)
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-10, err_msg=f"{method} {name}")
    assert np.isclose(net.loss(x, labels), naive.loss(params, x.astype(float), t, activation), rtol=1e-13, atol=0)
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, params[name])
