"""MultiLayerNet / MultiLayerNetExtend against the plain-numpy statement of the book (references/multi_layer.py)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastnum
from references import multi_layer as ref

TOL = 1e-10


def make_net(n_in, hidden, n_out, activation="relu", lam=0.0, batchnorm=False, dropout=None, seed=0, jitter=0.0,
             rng=None):
    np.random.seed(seed)
    net = fastnum.MultiLayerNetExtend(
        n_in, hidden, n_out, activation=activation, weight_decay_lambda=lam, use_dropout=dropout is not None,
        dropout_ration=0.5 if dropout is None else dropout, use_batchnorm=batchnorm,
    )
    if jitter:
        for name in net.params:
            net.params[name] = net.params[name] + jitter * rng.standard_normal(net.params[name].shape)
    config = ref.NetConfig(len(hidden), activation, lam, batchnorm, dropout)
    return net, config


def batch(rng, n_samples, n_in, n_out, zero_fraction=0.5):
    x = rng.random((n_samples, n_in))
    x[rng.random(x.shape) < zero_fraction] = 0.0
    return x, rng.integers(0, n_out, n_samples)


def numerical_and_reference(net, config, x, t):
    """fastnum's numerical gradient and the reference's with the masks fastnum drew."""
    state = np.random.get_state()
    grads = net.numerical_gradient(x, t)
    np.random.set_state(state)
    masks = ref.dropout_masks(config, x.shape[0], [x.shape[1]] + list(net.hidden_size_list) + [net.output_size])
    return grads, ref.numerical_gradient(net.params, x, t, config, masks)


def assert_close(grads, expected, tol=TOL):
    assert list(grads) == list(expected)
    for name in expected:
        assert grads[name].shape == expected[name].shape, name
        np.testing.assert_allclose(grads[name], expected[name], rtol=0, atol=tol, err_msg=name)


CONFIGS = [
    dict(hidden=[6]),
    dict(hidden=[6, 5]),
    dict(hidden=[6, 5, 4]),
    dict(hidden=[6, 5], activation="sigmoid"),
    dict(hidden=[5, 4, 3], activation="sigmoid", lam=0.2),
    dict(hidden=[6, 5, 4], lam=0.1, dropout=0.3),
    dict(hidden=[6], batchnorm=True),
    dict(hidden=[6, 5], batchnorm=True, lam=0.1),
    dict(hidden=[5, 4, 3], batchnorm=True, activation="sigmoid", dropout=0.4),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_every_entry_matches_the_book(rng, config):
    net, cfg = make_net(10, rng=rng, jitter=0.3, n_out=4, **config)
    x, t = batch(rng, 6, 10, 4)
    grads, expected = numerical_and_reference(net, cfg, x, t)
    assert_close(grads, expected)


def test_large_weights_take_the_general_softmax_path(rng):
    """Logit steps too large for the small-step series: the general per-value softmax."""
    net, cfg = make_net(8, [5, 4], 3, rng=rng, jitter=30.0)
    x, t = batch(rng, 5, 8, 3, zero_fraction=0.2)
    grads, expected = numerical_and_reference(net, cfg, x, t)
    assert_close(grads, expected, tol=1e-9 * max(1.0, max(np.abs(g).max() for g in expected.values())))


def test_both_sides_of_the_linearity_proof(rng):
    """A ReLU above a unit sitting within reach of a perturbation (proof fails: layers above
    recomputed) beside units far from their kink (proof holds: the sensitivities)."""
    net, cfg = make_net(8, [5, 4, 3], 3, rng=rng, jitter=0.3)
    x, t = batch(rng, 4, 8, 3, zero_fraction=0.2)
    logits, trace, *_ = net._forward(x, False)
    # put sample 0's first unit of hidden layer 2 a hair above its kink: perturbations below cross it
    net.params["b2"] = net.params["b2"].copy()
    net.params["b2"][0] -= trace.pre_activations[1][0, 0] - 1e-9
    grads, expected = numerical_and_reference(net, cfg, x, t)
    linear = net._driver(4).hidden.linear_above[0, :, :5]
    assert not linear[0].all() and linear[1:].any()
    assert_close(grads, expected)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    depth=st.integers(1, 3), width=st.integers(1, 6), n_samples=st.integers(1, 5),
    activation=st.sampled_from(["relu", "sigmoid"]), batchnorm=st.booleans(),
    dropout=st.sampled_from([None, 0.25]), label_form=st.sampled_from(["indices", "one-hot", "column"]),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_shapes_and_label_forms(depth, width, n_samples, activation, batchnorm, dropout, label_form, seed):
    """Batches whose batch-norm variance is tiny are left out: a unit with variance v scales the
    rounding of its inputs by about ``1 / sqrt(v + 1e-7)`` (500 at v = 3e-6, two nearly equal
    samples), so two float64 evaluations of the same loss in different orders, the book's loop
    included, differ by more than 1e-10 there."""
    rng = np.random.default_rng(seed)
    hidden = [int(w) for w in rng.integers(1, width + 1, depth)]
    net, cfg = make_net(7, hidden, 3, activation=activation, batchnorm=batchnorm, dropout=dropout, seed=seed % 100,
                        jitter=0.3, rng=rng)
    x, t = batch(rng, n_samples, 7, 3)
    if batchnorm:
        state = np.random.get_state()
        masks = ref.dropout_masks(cfg, n_samples, [7] + hidden + [3])
        np.random.set_state(state)
        _, stats = ref.forward(net.params, x, cfg, train_flg=True, masks=masks)
        assume(n_samples == 1 or min(float(var.min()) for _, var in stats) >= 1e-3)
    labels = {"indices": t, "one-hot": np.eye(3)[t], "column": t.reshape(-1, 1)}[label_form]
    grads, expected = numerical_and_reference(net, cfg, x, labels)
    assert_close(grads, expected)


def mnist_like(rng, n_samples):
    from references.naive import mnist_like_batch

    x, t = mnist_like_batch(rng, n_samples)
    return x.astype(np.float64), t


def sampled_entries(rng, net, config, n_per_param=6):
    entries = []
    for name in ref.param_names(config):
        shape = net.params[name].shape
        for _ in range(n_per_param):
            entries.append((name, tuple(int(rng.integers(0, s)) for s in shape)))
    return entries


@pytest.mark.parametrize("batchnorm", [False, True])
def test_full_size_sampled_entries(rng, batchnorm):
    hidden = [100, 100] if batchnorm else [100, 100, 100]
    net, cfg = make_net(784, hidden, 10, batchnorm=batchnorm, lam=0.05)
    x, t = mnist_like(rng, 20 if batchnorm else 50)
    grads = net.numerical_gradient(x, t)
    entries = sampled_entries(rng, net, cfg)
    expected = ref.numerical_gradient_entries(net.params, x, t, cfg, entries)
    got = np.array([grads[name][idx] for name, idx in entries])
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_bitwise_same_for_any_thread_count(rng, assert_thread_invariant, batchnorm):
    net, _ = make_net(30, [9, 7], 4, batchnorm=batchnorm, jitter=0.2, rng=rng)
    x, t = batch(rng, 12, 30, 4)
    assert_thread_invariant(lambda: net.numerical_gradient(x, t))


def test_params_unchanged_and_running_statistics_as_one_training_pass(rng):
    net, _ = make_net(10, [6, 5], 3, batchnorm=True, jitter=0.3, rng=rng)
    twin, _ = make_net(10, [6, 5], 3, batchnorm=True)
    twin.params = {k: v.copy() for k, v in net.params.items()}
    before = {k: v.copy() for k, v in net.params.items()}
    x, t = batch(rng, 8, 10, 3)
    net.numerical_gradient(x, t)
    for name in before:
        assert np.array_equal(net.params[name], before[name]), name
    twin.predict(x, train_flg=True)
    for k in range(2):
        np.testing.assert_allclose(net.running_mean[k], twin.running_mean[k], rtol=0, atol=1e-14)
        np.testing.assert_allclose(net.running_var[k], twin.running_var[k], rtol=0, atol=1e-14)


def test_dropout_numerical_gradient_and_backprop_see_the_same_masks(rng):
    net, cfg = make_net(12, [8, 6], 3, dropout=0.4, jitter=0.2, rng=rng)
    x, t = batch(rng, 10, 12, 3)
    np.random.seed(5)
    numerical = net.numerical_gradient(x, t)
    np.random.seed(5)
    backprop = net.gradient(x, t)
    for name in numerical:
        np.testing.assert_allclose(numerical[name], backprop[name], rtol=1e-4, atol=1e-6, err_msg=name)
    # and both used the masks one training pass draws: a different state gives other gradients
    np.random.seed(6)
    other = net.gradient(x, t)
    assert any(not np.allclose(other[name], backprop[name]) for name in other)


@pytest.mark.parametrize("config", CONFIGS[:2] + CONFIGS[5:8], ids=str)
def test_backprop_predict_loss_accuracy_match_the_book(rng, config):
    net, cfg = make_net(10, rng=rng, jitter=0.3, n_out=4, **config)
    x, t = batch(rng, 6, 10, 4)
    state = np.random.get_state()
    grads = net.gradient(x, t)
    np.random.set_state(state)
    masks = ref.dropout_masks(cfg, 6, [10] + config["hidden"] + [4])
    assert_close(grads, ref.gradient(net.params, x, t, cfg, masks), tol=1e-12)
    running = [(m, v) for m, v in zip(net.running_mean, net.running_var)] if cfg.use_batchnorm else None
    logits, _ = ref.forward(net.params, x, cfg, False, None, running)
    np.testing.assert_allclose(net.predict(x), logits, rtol=0, atol=1e-12)
    assert net.loss(x, t) == pytest.approx(ref.loss(net.params, x, t, cfg, False, None, running), abs=1e-12)
    assert net.accuracy(x, t) == np.mean(np.argmax(logits, axis=1) == t)


@pytest.mark.parametrize("weight_init_std", ["relu", "He", "sigmoid", "xavier", 0.05])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_initialisation_is_the_books(weight_init_std, batchnorm):
    np.random.seed(42)
    net = fastnum.MultiLayerNetExtend(20, [7, 5], 3, weight_init_std=weight_init_std, use_batchnorm=batchnorm)
    after = np.random.rand()
    np.random.seed(42)
    expected = ref.initial_params(20, [7, 5], 3, weight_init_std, batchnorm)
    assert np.random.rand() == after
    assert list(net.params) == list(expected)
    for name in expected:
        assert np.array_equal(net.params[name], expected[name]), name
    np.random.seed(42)
    plain = fastnum.MultiLayerNet(20, [7, 5], 3, weight_init_std=weight_init_std)
    assert all(np.array_equal(plain.params[k], net.params[k]) for k in plain.params)


def test_float32_images_and_flattened_input(rng):
    net, cfg = make_net(12, [5], 3)
    x, t = batch(rng, 4, 12, 3)
    x32 = x.astype(np.float32)
    grads = net.numerical_gradient(x32.reshape(4, 3, 4), t)
    assert_close(grads, ref.numerical_gradient(net.params, x32.astype(np.float64), t, cfg))


@pytest.mark.parametrize("call, message", [
    (lambda net, x, t: net.numerical_gradient(x[:, :5], t), "features per sample"),
    (lambda net, x, t: net.numerical_gradient(x[:0], t[:0]), "empty batch"),
    (lambda net, x, t: net.numerical_gradient(x, t + 3), "outside"),
    (lambda net, x, t: net.numerical_gradient(x, t[:2]), "labels but x has"),
    (lambda net, x, t: net.numerical_gradient(np.where(x > 0.5, np.nan, x), t), "NaN"),
    (lambda net, x, t: net.gradient(x, np.ones((4, 3))), "one-hot"),
])
def test_bad_input_is_refused_before_anything_changes(rng, call, message):
    net, _ = make_net(12, [5, 4], 3, batchnorm=True)
    x, t = batch(rng, 4, 12, 3)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match=message):
        call(net, x, t)
    assert all(np.array_equal(net.params[k], before[k]) for k in before)
    assert net.running_mean == [None, None]


def test_bad_params_are_named(rng):
    net, _ = make_net(12, [5], 3, batchnorm=True)
    x, t = batch(rng, 4, 12, 3)
    del net.params["gamma1"]
    with pytest.raises(KeyError, match="gamma1"):
        net.numerical_gradient(x, t)
    net, _ = make_net(12, [5], 3)
    net.params["W2"] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"params\['W2'\] has shape"):
        net.loss(x, t)
    net.params["W2"] = np.full((5, 3), np.inf)
    with pytest.raises(ValueError, match="NaN or inf"):
        net.gradient(x, t)


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden_size_list=[]), "at least one hidden layer"),
    (dict(hidden_size_list=100), "list of layer sizes"),
    (dict(hidden_size_list=[10, 0]), "positive integer"),
    (dict(activation="tanh"), "activation"),
    (dict(weight_init_std="kaiming"), "weight_init_std"),
    (dict(weight_decay_lambda=-1), "weight_decay_lambda"),
    (dict(dropout_ration=1.0), "dropout_ration"),
])
def test_bad_constructor_arguments(kwargs, message):
    arguments = dict(input_size=10, hidden_size_list=[5], output_size=3) | kwargs
    with pytest.raises(ValueError, match=message):
        fastnum.MultiLayerNetExtend(**arguments)


def test_chapter_five_two_layer_net(rng):
    """``fastnum.ch05.TwoLayerNet``: the book's chapter-5 net (ReLU, scores from predict)."""
    from fastnum.ch05 import TwoLayerNet
    from references import naive

    np.random.seed(1)
    net = TwoLayerNet(12, 6, 3)
    np.random.seed(1)
    W1 = 0.01 * np.random.randn(12, 6)
    W2 = 0.01 * np.random.randn(6, 3)
    assert np.array_equal(net.params["W1"], W1) and np.array_equal(net.params["W2"], W2)
    net.params = {k: v + 0.5 * rng.standard_normal(v.shape) for k, v in net.params.items()}
    x, t = batch(rng, 5, 12, 3)
    scores = np.maximum(0, x @ net.params["W1"] + net.params["b1"]) @ net.params["W2"] + net.params["b2"]
    np.testing.assert_allclose(net.predict(x), scores, rtol=0, atol=1e-12)
    assert net.accuracy(x, t) == np.mean(np.argmax(scores, axis=1) == t)
    grads = net.numerical_gradient(x, t)
    expected = naive.numerical_gradient_net(net.params, x, t, activation="relu")
    assert_close(grads, expected)
