"""TwoLayerNet against the book's plain-numpy code."""

import numpy as np
import pytest

from fastnum import TwoLayerNet
from references import naive

ACTIVATIONS = ["sigmoid", "relu"]
METHODS = ["incremental", "full"]


def _all_close(got, expected, atol):
    assert set(got) == {"W1", "b1", "W2", "b2"}
    for name in got:
        assert got[name].shape == expected[name].shape, name
        assert got[name].dtype == np.float64
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=atol, err_msg=name)


def test_initialisation_is_the_books():
    np.random.seed(7)
    net = TwoLayerNet(784, 50, 10)
    np.random.seed(7)
    W1 = 0.01 * np.random.randn(784, 50)
    W2 = 0.01 * np.random.randn(50, 10)
    np.testing.assert_array_equal(net.params["W1"], W1)
    np.testing.assert_array_equal(net.params["W2"], W2)
    np.testing.assert_array_equal(net.params["b1"], np.zeros(50))
    np.testing.assert_array_equal(net.params["b2"], np.zeros(10))
    assert all(p.dtype == np.float64 for p in net.params.values())


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_predict_loss_accuracy_match_the_book(activation, rng):
    params = naive.random_params(rng, 30, 8, 5)
    net = naive.net_with(params, activation)
    x, t = naive.mnist_like_batch(rng, 40, n_in=30, n_out=5)
    one_hot = np.eye(5)[t]
    np.testing.assert_allclose(net.predict(x), naive.predict(params, x.astype(float), activation), rtol=1e-13)
    expected_loss = naive.loss(params, x.astype(float), t, activation)
    for labels in (t, one_hot, t.astype(np.uint8)):
        assert net.loss(x, labels) == pytest.approx(expected_loss, rel=1e-14)
        assert net.accuracy(x, labels) == naive.accuracy(params, x.astype(float), t, activation)
    single = net.predict(x[0])
    assert single.shape == (5,)
    np.testing.assert_allclose(single, net.predict(x[:1])[0])


def test_accuracy_over_several_chunks_and_ties(rng, monkeypatch):
    """The labels come chunk by chunk (``EVAL_CHUNK_ROWS``); across the chunks' edges they are the
    book's, and two classes whose probabilities are equal go to the first, as np.argmax does."""
    from fastnum.two_layer import _forward

    monkeypatch.setattr(_forward, "EVAL_CHUNK_ROWS", 16)
    params = naive.random_params(rng, 30, 8, 5)
    params["W2"][:, 3] = params["W2"][:, 1]  # classes 1 and 3 tie in every sample
    params["b2"][3] = params["b2"][1] = 5.0  # and lead
    net = naive.net_with(params)
    x, _ = naive.mnist_like_batch(rng, 16 * 3 + 5, n_in=30, n_out=5)
    for t in (np.full(x.shape[0], 1), np.full(x.shape[0], 3)):
        assert net.accuracy(x, t) == naive.accuracy(params, x.astype(float), t) == float(t[0] == 1)
    params["W2"][:, 3] = rng.standard_normal(8)  # no tie: labels vary across the chunks
    params["b2"][:] = 0.0
    net = naive.net_with(params)
    expected = np.argmax(naive.predict(params, x.astype(float)), axis=1)
    assert len(set(expected.tolist())) > 1
    np.testing.assert_array_equal(_forward.predicted_labels(x, *net._params(), False), expected)


def test_input_layouts_give_the_same_results(rng):
    params = naive.random_params(rng, 12, 6, 4)
    net = naive.net_with(params)
    x, t = naive.mnist_like_batch(rng, 9, n_in=12, n_out=4)
    wide = np.zeros((9, 24), dtype=np.float32)
    wide[:, ::2] = x
    layouts = [x, x.astype(np.float64), np.asfortranarray(x), wide[:, ::2], np.asfortranarray(x.astype(np.float64))]
    expected = net.numerical_gradient(x, t)
    for layout in layouts:
        assert net.loss(layout, t) == net.loss(x, t)
        for name, value in net.numerical_gradient(layout, t).items():
            np.testing.assert_array_equal(value, expected[name])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("method", METHODS)
def test_numerical_gradient_every_entry_small_net(activation, method, rng):
    params = naive.random_params(rng, 20, 7, 4)
    net = naive.net_with(params, activation)
    x, t = naive.mnist_like_batch(rng, 16, n_in=20, n_out=4)
    expected = naive.numerical_gradient_net(params, x, t, activation)
    _all_close(net.numerical_gradient(x, t, method=method), expected, atol=1e-10)
    _all_close(net.numerical_gradient(x, np.eye(4)[t], method=method), expected, atol=1e-10)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_full_size_net_sampled_entries(activation, rng):
    """784-50-10, batch 100, MNIST-like data: both methods within 1e-10 of plain numpy."""
    np.random.seed(3)
    net = TwoLayerNet(784, 50, 10, activation=activation)
    # a trained-looking network: larger weights than the initial 0.01
    net.params["W1"] *= 10
    net.params["W2"] *= 50
    net.params["b1"] += 0.1 * rng.standard_normal(50)
    x, t = naive.mnist_like_batch(rng, 100)
    entries = []
    for name, p in net.params.items():
        count = 1500 if name == "W1" else 200
        flat = rng.choice(p.size, size=min(count, p.size), replace=False)
        entries += [(name, np.unravel_index(i, p.shape)) for i in flat]
    expected = naive.numerical_gradient_entries(net.params, x, t, entries, activation)
    for method in METHODS:
        grads = net.numerical_gradient(x, t, method=method)
        got = np.array([grads[name][idx] for name, idx in entries])
        assert np.abs(got - expected).max() <= 1e-10, method
        assert np.abs(expected).max() > 1e-4  # the comparison is not between zeros


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backprop_matches_the_book(activation, rng):
    params = naive.random_params(rng, 25, 9, 6)
    net = naive.net_with(params, activation)
    x, t = naive.mnist_like_batch(rng, 30, n_in=25, n_out=6)
    _all_close(net.gradient(x, t), naive.gradient(params, x, t, activation), atol=1e-15)
    _all_close(net.gradient(x, np.eye(6)[t]), naive.gradient(params, x, t, activation), atol=1e-15)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_check_backprop_vs_numerical(activation, rng):
    """Chapter 5's gradient check: relative error below 1e-5 (truncation error of central differences)."""
    np.random.seed(11)
    net = TwoLayerNet(784, 50, 10, activation=activation)
    x, t = naive.mnist_like_batch(rng, 3, one_hot=True)
    numerical = net.numerical_gradient(x, t)
    backprop = net.gradient(x, t)
    for name in numerical:
        scale = np.abs(backprop[name]).max()
        rel = np.abs(numerical[name] - backprop[name]).max() / scale
        assert rel < 1e-5, (name, rel)


@pytest.mark.parametrize("call", ["predict", "loss", "accuracy", "numerical_gradient", "full", "gradient"])
def test_params_are_bitwise_unchanged(call, rng):
    params = naive.random_params(rng, 10, 5, 3)
    net = naive.net_with(params)
    snapshot = {k: v.copy() for k, v in net.params.items()}
    identities = {k: id(v) for k, v in net.params.items()}
    x, t = naive.mnist_like_batch(rng, 8, n_in=10, n_out=3)
    if call == "predict":
        net.predict(x)
    elif call == "full":
        net.numerical_gradient(x, t, method="full")
    else:
        getattr(net, call)(x, t)
    for name in snapshot:
        assert id(net.params[name]) == identities[name]
        np.testing.assert_array_equal(net.params[name], snapshot[name])


def test_in_place_updates_and_replaced_arrays_are_honoured(rng):
    params = naive.random_params(rng, 10, 5, 3)
    net = naive.net_with(params)
    x, t = naive.mnist_like_batch(rng, 8, n_in=10, n_out=3)
    net.loss(x, t)
    grad = net.numerical_gradient(x, t)
    for key in ("W1", "b1", "W2", "b2"):
        net.params[key] -= 0.1 * grad[key]  # the book's update, in place
    expected = naive.numerical_gradient_net(net.params, x, t)
    _all_close(net.numerical_gradient(x, t), expected, atol=1e-10)
    net.params["W2"] = rng.standard_normal((5, 3))  # replaced outright
    assert net.loss(x, t) == pytest.approx(naive.loss(net.params, x.astype(float), t), rel=1e-14)
    net.params["b1"] = net.params["b1"].astype(np.float32)  # even with another dtype
    assert net.loss(x, t) == pytest.approx(naive.loss(net.params, x.astype(float), t), rel=1e-6)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float32_and_float64_inputs_agree(activation, rng):
    """float32 images go to the kernels as they are (widened pixel by pixel as they are read):
    every method gives, bit for bit, what a float64 copy gives."""
    params = naive.random_params(rng, 16, 4, 3)
    net = naive.net_with(params, activation)
    x, t = naive.mnist_like_batch(rng, 6, n_in=16, n_out=3)
    assert x.dtype == np.float32
    x64 = x.astype(np.float64)
    for method in METHODS:
        g32, g64 = net.numerical_gradient(x, t, method=method), net.numerical_gradient(x64, t, method=method)
        for name in g32:
            np.testing.assert_array_equal(g32[name], g64[name], err_msg=f"{method} {name}")
    for name, value in net.gradient(x, t).items():
        np.testing.assert_array_equal(value, net.gradient(x64, t)[name], err_msg=f"backprop {name}")
    assert net.loss(x, t) == net.loss(x64, t)
    np.testing.assert_array_equal(net.predict(x), net.predict(x64))
    assert net.accuracy(x, t) == net.accuracy(x64, t)


def test_unknown_method_is_rejected(rng):
    net = TwoLayerNet(4, 3, 2)
    x, t = naive.mnist_like_batch(rng, 2, n_in=4, n_out=2)
    with pytest.raises(ValueError, match="method"):
        net.numerical_gradient(x, t, method="backprop")


def test_batches_of_different_sizes_reuse_nothing_stale(rng):
    params = naive.random_params(rng, 10, 5, 3)
    net = naive.net_with(params)
    for n in (7, 3, 7, 1, 12):
        x, t = naive.mnist_like_batch(rng, n, n_in=10, n_out=3)
        _all_close(net.numerical_gradient(x, t), naive.numerical_gradient_net(params, x, t), atol=1e-10)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_large_logit_steps_take_the_general_path_and_agree(activation, rng):
    """Unnormalised pixels (0..255) make some logit steps too large for exp_small:
    those samples take the general path (perturbed row maximum, full exp)."""
    from fastnum._config import H
    from fastnum.kernels.vecmath import SMALL_EXP_GUARD

    params = naive.random_params(rng, 20, 6, 4, scale=1.0)
    params["W2"][0] *= 20  # unit 0 always needs the general path
    x, t = naive.mnist_like_batch(rng, 12, n_in=20, n_out=4)
    x = np.round(x * 255).astype(np.uint8)
    x[0, :] = 1  # a sample whose steps stay small for the other units
    slope = 1.0 if activation == "relu" else 0.25
    bounds = slope * H * np.abs(x).max(axis=1)[:, None] * np.abs(params["W2"]).max(axis=1)[None, :]
    assert (bounds > SMALL_EXP_GUARD).any() and (bounds <= SMALL_EXP_GUARD).any()
    net = naive.net_with(params, activation)
    expected = naive.numerical_gradient_net(params, x, t, activation)
    for method in METHODS:
        _all_close(net.numerical_gradient(x, t, method=method), expected, atol=1e-10)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")  # the book's sigmoid, at -800
def test_saturated_sigmoids_agree(rng):
    """Hidden units far in a sigmoid's tails, down to where ``exp(-a1)`` overflows, take the
    small-step path through ``1 - z = sigmoid(-a1)`` and still match the book's loop."""
    params = naive.random_params(rng, 16, 6, 4, scale=0.5)
    params["b1"][2] = -400.0  # z about 1e-174
    params["b1"][3] = -800.0  # exp(800) overflows: z = 0 exactly
    params["b1"][4] = 800.0  # z = 1 exactly, 1 - z = 0
    x, t = naive.mnist_like_batch(rng, 9, n_in=16, n_out=4)
    net = naive.net_with(params)
    expected = naive.numerical_gradient_net(params, x, t)
    got = net.numerical_gradient(x, t)
    _all_close(got, expected, atol=1e-10)
    assert np.isfinite(got["W1"]).all()


@pytest.mark.parametrize("scale", [1.0, 2.0, 40.0])
def test_sigmoid_step_by_series_and_by_division_agree(scale, rng):
    """Samples with ``h max|x| <= TINY_STEP_GUARD`` take the sigmoid's step by a short series,
    the others (pixels above 2.44 at h = 1e-4) by one division; small logit steps in both."""
    from fastnum._config import H
    from fastnum.kernels.perturbed_losses import TINY_STEP_GUARD
    from fastnum.kernels.vecmath import SMALL_EXP_GUARD

    params = naive.random_params(rng, 20, 6, 4, scale=0.5)
    params["W2"] *= 0.02  # keep every logit step small
    x, t = naive.mnist_like_batch(rng, 12, n_in=20, n_out=4)
    x[:6] *= scale
    step_max = H * np.abs(x).max(axis=1)
    assert (0.25 * step_max[:, None] * np.abs(params["W2"]).max(axis=1)[None, :] <= SMALL_EXP_GUARD).all()
    assert (step_max[6:] <= TINY_STEP_GUARD).all()
    assert (step_max[:6] > TINY_STEP_GUARD).any() == (scale > 2.0)
    net = naive.net_with(params)
    expected = naive.numerical_gradient_net(params, x, t)
    for method in METHODS:
        _all_close(net.numerical_gradient(x, t, method=method), expected, atol=1e-10)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_logit_steps_on_both_sides_of_the_low_degree_guard_agree(activation, rng):
    """(sample, unit) pairs whose logit-step bound is at most LOW_DEGREE_GUARD take the degree-3
    polynomials and the short log; the others, still under SMALL_EXP_GUARD, degree 5: both match the
    book's loop."""
    from fastnum._config import H
    from fastnum.kernels.perturbed_losses import LOW_DEGREE_GUARD
    from fastnum.kernels.vecmath import SMALL_EXP_GUARD

    params = naive.random_params(rng, 20, 6, 4, scale=0.5)
    params["W2"] *= np.array([0.02, 0.02, 0.5, 1.5, 3.0, 8.0])[:, None] / np.abs(params["W2"]).max(axis=1)[:, None]
    x, t = naive.mnist_like_batch(rng, 12, n_in=20, n_out=4)
    x[:4] *= 3.0  # samples whose largest step is three times the others'
    slope = 1.0 if activation == "relu" else 0.25
    bounds = slope * H * np.abs(x).max(axis=1)[:, None] * np.abs(params["W2"]).max(axis=1)[None, :]
    assert (bounds <= LOW_DEGREE_GUARD).any() and ((bounds > LOW_DEGREE_GUARD) & (bounds <= SMALL_EXP_GUARD)).any()
    net = naive.net_with(params, activation)
    _all_close(net.numerical_gradient(x, t), naive.numerical_gradient_net(params, x, t, activation), atol=1e-10)


@pytest.mark.parametrize("relu", [False, True])
def test_low_degree_loss_differences_are_the_degree_5_ones_within_rounding(relu):
    """The low-degree loop against the degree-5 one on the same (sample, unit), value by value:
    within a few ulps of 1 (the loss differences are about 1e-5, so a wrong coefficient of even the
    third power would show at 1e-16), on steps right at LOW_DEGREE_GUARD."""
    from numba import njit

    from fastnum._config import H
    from fastnum.kernels.perturbed_losses import (
        LOW_DEGREE_GUARD,
        TINY_STEP_GUARD,
        SampleSteps,
        UnitState,
        _sample_loss_differences_small_steps,
    )

    @njit(error_model="numpy")
    def both(values, expm1_minus, expm1_plus, unit, exps, target, w_row, bound, low, high):
        tiny = H * np.abs(values).max() <= TINY_STEP_GUARD
        steps = SampleSteps(values, values.shape[0], expm1_minus, expm1_plus, tiny)
        _sample_loss_differences_small_steps(steps, unit, exps, target, w_row, H, relu, 0.0, low)
        _sample_loss_differences_small_steps(steps, unit, exps, target, w_row, H, relu, bound, high)

    rng = np.random.default_rng(11)
    worst = 0.0
    for _ in range(20):
        values = rng.integers(1, 256, 67) / 255.0
        a = 0.1 + abs(rng.normal(0.0, 2.0)) if relu else rng.normal(0.0, 2.0)  # an active ReLU: its steps move
        z = a if relu else 1.0 / (1.0 + np.exp(-a))
        w_row = rng.normal(0.0, 1.0, 10)
        slope = 1.0 if relu else 0.25
        w_row *= LOW_DEGREE_GUARD / (slope * H * values.max() * np.abs(w_row).max())  # the bound, at the guard
        logits = rng.normal(0.0, 3.0, 10)
        exps = np.exp(logits - logits.max())
        low, high = np.empty(67), np.empty(67)
        both(values, np.expm1(-H * values), np.expm1(H * values), UnitState(a, z, 1.0 / (1.0 + np.exp(a))), exps,
             int(rng.integers(10)), w_row, 2.0 * LOW_DEGREE_GUARD, low, high)
        assert np.abs(high).max() > 1e-7  # steps that move the loss
        worst = max(worst, float(np.abs(low - high).max()))
    assert worst <= 8 * np.finfo(float).eps


def test_output_layer_small_and_general_paths_agree(rng):
    """W2 rows whose activations all satisfy h * |z| <= SMALL_EXP_GUARD take the expm1/log1p path,
    the others (large ReLU activations) the general one; both match the book's loop."""
    from fastnum._config import H
    from fastnum.kernels.vecmath import SMALL_EXP_GUARD

    params = naive.random_params(rng, 12, 6, 4, scale=0.5)
    params["W1"][:, 0] = 10.0  # unit 0: ReLU activations in the hundreds
    params["b1"][1] = 60.0  # unit 1: just above the guard in every sample
    x, t = naive.mnist_like_batch(rng, 10, n_in=12, n_out=4)
    x = x * 20
    z1 = np.maximum(x @ params["W1"] + params["b1"], 0)
    small_rows = H * np.abs(z1).max(axis=0) <= SMALL_EXP_GUARD
    assert small_rows.any() and not small_rows.all()
    net = naive.net_with(params, "relu")
    expected = naive.numerical_gradient_net(params, x, t, "relu")
    _all_close(net.numerical_gradient(x, t), expected, atol=1e-10)


def test_small_steps_use_the_kernel_without_general_paths(rng, monkeypatch):
    """With every step provably small (MNIST-like data, the book's weights) the gradient comes from
    ``perturb_worker`` without the general paths compiled in (``general_paths=None``); large steps
    take it with them (``True``), and the stand-ins for the general paths in the first are NaN, so a
    wrong choice could not pass unseen."""
    import fastnum.two_layer._driver as driver_module
    from fastnum._config import H
    from fastnum._workers import launch
    from fastnum.kernels.perturbed_losses import Gradients
    from fastnum.two_layer._numgrad_incremental import all_steps_small, perturb_worker

    x, t = naive.mnist_like_batch(rng, 8, n_in=20, n_out=4)
    small = naive.random_params(rng, 20, 6, 4, scale=0.05)
    large = dict(small, W2=small["W2"] * 2000)  # logit steps past the bound for some units
    calls = []

    def recording_launch(kernel, args):
        if kernel is perturb_worker:
            calls.append(args[-1])
        return launch(kernel, args)

    monkeypatch.setattr(driver_module, "launch", recording_launch)
    for params, expect_general in ((small, False), (large, True)):
        net = naive.net_with(params)
        calls.clear()
        _all_close(net.numerical_gradient(x, t), naive.numerical_gradient_net(params, x, t), atol=1e-10)
        assert calls == [True if expect_general else None]
        ws = net._driver(8).incremental()
        assert all_steps_small(False, H, ws.distinct.max_abs_value, params["W2"], ws.forward.z1) != expect_general
    # the small-steps worker on the large-step batch: its stand-ins leave NaN, never a wrong number
    net = naive.net_with(large)
    x64, labels, _ = net._inputs(x, t)
    params = net._params()
    grads = Gradients(*(np.empty_like(p) for p in params))
    for call in net._driver(8).incremental_calls(x64, labels, params, grads):
        launch(*call)
    assert np.isnan(grads.W1).any()


def test_an_activation_set_after_construction_is_what_every_method_uses(rng):
    """The driver of a batch size is built for one activation: setting ``activation`` later must not
    leave a call on the old one (the buffers are cached per batch size)."""
    from fastnum._first_run import compile_now

    x, t = naive.mnist_like_batch(rng, 6, n_in=20, n_out=4)
    params = naive.random_params(rng, 20, 5, 4, scale=0.05)
    net = naive.net_with(params)
    with compile_now():
        net.numerical_gradient(x, t)  # builds the sigmoid driver of batches of 6
        net.activation = "relu"
        _all_close(net.numerical_gradient(x, t), naive.numerical_gradient_net(params, x, t, "relu"), atol=1e-10)
        assert np.isclose(net.loss(x, t), naive.loss(params, x.astype(np.float64), t, "relu"), rtol=0, atol=1e-12)
