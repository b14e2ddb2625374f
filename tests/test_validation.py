"""Bad input raises an error that names the problem, before anything changes."""

import numpy as np
import pytest

from fastnum import TwoLayerNet
from references import naive

CALLS = ["loss", "accuracy", "numerical_gradient", "gradient"]


@pytest.fixture
def setup(rng):
    net = naive.net_with(naive.random_params(rng, 12, 5, 4))
    x, t = naive.mnist_like_batch(rng, 6, n_in=12, n_out=4)
    return net, x, t


def _bad_cases(x, t):
    nan_x = x.copy()
    nan_x[2, 3] = np.nan
    inf_x = x.copy()
    inf_x[0, 0] = np.inf
    soft = np.full((6, 4), 0.25)
    two_ones = np.eye(4)[t]
    two_ones[1, (t[1] + 1) % 4] = 1
    return [
        ("3-D x", x.reshape(6, 3, 4), t, ValueError, "2-D"),
        ("wrong features", x[:, :10], t, ValueError, "10 features"),
        ("batch mismatch", x, t[:5], ValueError, "5 labels but x has 6"),
        ("label too large", x, np.where(np.arange(6) == 2, 4, t), ValueError, "label 4"),
        ("negative label", x, np.where(np.arange(6) == 2, -1, t), ValueError, "label -1"),
        ("fractional label", x, t + 0.5, ValueError, "whole numbers"),
        ("soft labels", x, soft, ValueError, "row 0 is not one-hot"),
        ("two ones", x, two_ones, ValueError, "row 1 is not one-hot"),
        ("one-hot wrong width", x, np.eye(5)[t], ValueError, "shape"),
        ("NaN in x", nan_x, t, ValueError, "NaN or inf.*sample 2, feature 3"),
        ("inf in x", inf_x, t, ValueError, "NaN or inf"),
        ("empty batch", x[:0], t[:0], ValueError, "empty"),
        ("string x", np.array([["a"] * 12] * 6), t, TypeError, "real numbers"),
        ("complex x", x.astype(np.complex128), t, TypeError, "real numbers"),
        ("2-D labels of 3 dims", x, t.reshape(6, 1, 1), ValueError, "class indices"),
    ]


@pytest.mark.parametrize("call", CALLS)
def test_bad_inputs_raise_and_change_nothing(call, setup):
    net, x, t = setup
    for label, bad_x, bad_t, error, pattern in _bad_cases(x, t):
        snapshot = {k: v.copy() for k, v in net.params.items()}
        x_before = np.array(bad_x, copy=True)
        with pytest.raises(error, match=pattern):
            getattr(net, call)(bad_x, bad_t)
        for name in snapshot:
            np.testing.assert_array_equal(net.params[name], snapshot[name], err_msg=label)
        np.testing.assert_array_equal(np.asarray(bad_x), x_before, err_msg=label)


def test_predict_checks_x(setup):
    net, x, _ = setup
    with pytest.raises(ValueError, match="10 features"):
        net.predict(x[:, :10])
    with pytest.raises(ValueError, match="empty"):
        net.predict(x[:0])


@pytest.mark.parametrize("call", ["predict", "loss", "numerical_gradient", "gradient"])
def test_params_of_the_wrong_shape_are_rejected(call, setup):
    net, x, t = setup
    net.params["W2"] = np.zeros((5, 3))
    args = (x,) if call == "predict" else (x, t)
    with pytest.raises(ValueError, match=r"params\['W2'\] has shape \(5, 3\), expected \(5, 4\)"):
        getattr(net, call)(*args)
    del net.params["b1"]
    with pytest.raises(KeyError, match="b1"):
        getattr(net, call)(*args)


def test_constructor_checks_sizes_and_activation():
    with pytest.raises(ValueError, match="hidden_size"):
        TwoLayerNet(784, 0, 10)
    with pytest.raises(ValueError, match="input_size"):
        TwoLayerNet(78.4, 50, 10)
    with pytest.raises(ValueError, match="activation"):
        TwoLayerNet(784, 50, 10, activation="tanh")


@pytest.mark.parametrize("call", ["predict", "loss", "accuracy", "numerical_gradient", "gradient"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_params_are_refused(call, bad, setup):
    net, x, t = setup
    net.params["W1"][3, 1] = bad
    snapshot = {k: v.copy() for k, v in net.params.items()}
    args = (x,) if call == "predict" else (x, t)
    with pytest.raises(ValueError, match=r"params\['W1'\] contains NaN or inf \(first at index \(3, 1\)\)"):
        getattr(net, call)(*args)
    for name in snapshot:
        np.testing.assert_array_equal(net.params[name], snapshot[name])


@pytest.mark.parametrize("std", [np.nan, np.inf, "0.01", None])
def test_weight_init_std_must_be_a_finite_number(std):
    state = np.random.get_state()
    with pytest.raises(ValueError, match="weight_init_std must be a finite number"):
        TwoLayerNet(784, 50, 10, weight_init_std=std)
    assert np.random.get_state()[2] == state[2]  # nothing drawn


def _one_network_of_each_kind():
    """A small network of every registered kind (the test fails when a kind is added without one here)."""
    import fastnum
    from fastnum import registry

    np.random.seed(0)
    conv = {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1}
    networks = {
        "TwoLayerNet": (fastnum.TwoLayerNet(12, 4, 3), (5, 12)),
        "MultiLayerNetExtend": (fastnum.MultiLayerNetExtend(12, [5, 4], 3, use_batchnorm=True), (5, 12)),
        "SimpleConvNet": (fastnum.SimpleConvNet((1, 6, 6), conv, 4, 3), (5, 1, 6, 6)),
        "DeepConvNet": (fastnum.DeepConvNet(), (2, 1, 28, 28)),
    }
    assert set(networks) == set(registry.KINDS)
    return networks


@pytest.mark.parametrize("call", CALLS)
def test_none_for_x_or_t_is_named_in_every_network(call):
    """``t=None`` (or ``x=None``) is a TypeError that names it, in every kind's labelled calls, and
    leaves the parameters as they were; before, ``loss(x, None)`` failed inside the numpy path with an
    AttributeError."""
    for name, (network, x_shape) in _one_network_of_each_kind().items():
        x = np.random.rand(*x_shape)
        t = np.arange(x_shape[0]) % network.output_size
        snapshot = {k: v.copy() for k, v in network.params.items()}
        with pytest.raises(TypeError, match="t must be an array of real numbers, got None"):
            getattr(network, call)(x, None)
        with pytest.raises(TypeError, match="x must be an array of real numbers, got None"):
            getattr(network, call)(None, t)
        for key in snapshot:
            np.testing.assert_array_equal(network.params[key], snapshot[key], err_msg=f"{name} {key}")


def test_yes_no_options_of_the_networks_must_be_true_or_false():
    """``use_dropout="False"`` would turn dropout on and ``train_flg="False"`` would move batch norm's
    running statistics (or draw dropout masks): refused, naming the option, before anything changes."""
    import fastnum

    for flag in ("use_dropout", "use_batchnorm"):
        for bad in ("False", None, 2):
            with pytest.raises(TypeError, match=f"{flag} must be True or False, got {bad!r}"):
                fastnum.MultiLayerNetExtend(12, [5], 3, **{flag: bad})
        assert getattr(fastnum.MultiLayerNetExtend(12, [5], 3, **{flag: np.bool_(True)}), flag) is True
        assert getattr(fastnum.MultiLayerNetExtend(12, [5], 3, **{flag: 0}), flag) is False
    networks = _one_network_of_each_kind()
    for kind, call in [("MultiLayerNetExtend", "predict"), ("MultiLayerNetExtend", "loss"), ("DeepConvNet", "predict")]:
        network, x_shape = networks[kind]
        x = np.random.rand(*x_shape)
        args = (x, np.arange(x_shape[0]) % network.output_size) if call == "loss" else (x,)
        state = {k: v.copy() for k, v in network.state_arrays().items()}
        random_state = np.random.get_state()[1].copy()
        with pytest.raises(TypeError, match="train_flg must be True or False, got 'False'"):
            getattr(network, call)(*args, train_flg="False")
        assert all(np.array_equal(network.state_arrays()[k], v) for k, v in state.items())
        assert np.array_equal(np.random.get_state()[1], random_state)
