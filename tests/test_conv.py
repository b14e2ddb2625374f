"""SimpleConvNet against the plain-numpy statement of the book (references/conv.py)."""

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastnum
from references import conv as ref

TOL = 1e-10
NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")


def make_net(input_dim, filter_num, filter_size, pad, stride, hidden=5, n_out=4, scale=0.3, seed=0):
    np.random.seed(seed)
    conv_param = {"filter_num": filter_num, "filter_size": filter_size, "pad": pad, "stride": stride}
    return fastnum.SimpleConvNet(input_dim, conv_param, hidden, n_out, weight_init_std=scale)


def images(rng, n, input_dim, zero_fraction=0.4):
    x = rng.random((n,) + tuple(input_dim))
    x[rng.random(x.shape) < zero_fraction] = 0.0
    return x


def assert_close(grads, expected, tol=TOL):
    assert list(grads) == list(NAMES)
    for name in NAMES:
        assert grads[name].shape == expected[name].shape, name
        np.testing.assert_allclose(grads[name], expected[name], rtol=0, atol=tol, err_msg=name)


def valid_sizes(side, size, pad, stride):
    conv = (side - size + 2 * pad) / stride + 1
    return conv >= 2 and conv == int(conv) and int(conv) % 2 == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pooled=st.integers(1, 3), size=st.integers(1, 4), pad=st.integers(0, 2), stride=st.integers(1, 3),
       channels=st.integers(1, 2), filters=st.integers(1, 3), n_samples=st.integers(1, 3),
       label_form=st.sampled_from(["indices", "one-hot", "column"]), seed=st.integers(0, 2**16))
def test_every_entry_matches_the_book(pooled, size, pad, stride, channels, filters, n_samples, label_form, seed):
    # the image side for which the convolution gives 2 * pooled outputs, as the book's sizes require
    side = (2 * pooled - 1) * stride + size - 2 * pad
    assume(side >= 1 and valid_sizes(side, size, pad, stride))
    rng = np.random.default_rng(seed)
    net = make_net((channels, side, side), filters, size, pad, stride, seed=seed % 100)
    x = images(rng, n_samples, (channels, side, side))
    t = rng.integers(0, 4, n_samples)
    labels = {"indices": t, "one-hot": np.eye(4)[t], "column": t.reshape(-1, 1)}[label_form]
    grads = net.numerical_gradient(x, labels)
    assert_close(grads, ref.numerical_gradient(net.params, x, t, stride, pad))


def test_the_books_toy_gradient_check():
    """``ch07/gradient_check.py``: a 10x10 image, 10 filters of 3x3, 10 hidden units, a (1, 1) label."""
    np.random.seed(3)
    net = fastnum.SimpleConvNet(input_dim=(1, 10, 10), conv_param={"filter_num": 10, "filter_size": 3, "pad": 0,
                                                                   "stride": 1},
                                hidden_size=10, output_size=10, weight_init_std=0.01)
    x = np.random.rand(100).reshape((1, 1, 10, 10))
    t = np.array([1]).reshape((1, 1))
    grads = net.numerical_gradient(x, t)
    assert_close(grads, ref.numerical_gradient(net.params, x, t))
    backprop = net.gradient(x, t)
    for name in NAMES:
        assert np.abs(backprop[name] - grads[name]).mean() < 1e-4, name  # a ReLU kink can cost a few 1e-6


def test_full_size_network_sampled_entries(rng):
    from references.naive import mnist_like_batch

    np.random.seed(0)
    net = fastnum.SimpleConvNet()
    net.params = {k: v * 30 for k, v in net.params.items()}  # weights large enough that every layer matters
    x, t = mnist_like_batch(rng, 4)
    x = x.reshape(4, 1, 28, 28)
    grads = net.numerical_gradient(x, t)
    entries = [(name, tuple(int(rng.integers(0, s)) for s in net.params[name].shape))
               for name in NAMES for _ in range(8)]
    expected = ref.numerical_gradient_entries(net.params, x.astype(np.float64), t, entries)
    got = np.array([grads[name][idx] for name, idx in entries])
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


def test_bitwise_same_for_any_thread_count(rng, assert_thread_invariant):
    net = make_net((1, 12, 12), 4, 3, 1, 1)
    x = images(rng, 5, (1, 12, 12))
    t = rng.integers(0, 4, 5)
    assert_thread_invariant(lambda: net.numerical_gradient(x, t))


def test_pooling_ties_go_to_the_first_maximum(rng):
    """Equal maxima in a window (here: ReLU zeros and repeated pixels): the book's argmax takes the first,
    so backprop sends the gradient there; the forward value is the same either way."""
    from fastnum.conv._passes import forward

    net = make_net((1, 6, 6), 2, 1, 0, 1)
    net.params["W1"] = np.abs(net.params["W1"])
    x = np.repeat(np.repeat(rng.random((2, 1, 3, 3)), 2, axis=2), 2, axis=3)  # 2x2 blocks of equal pixels
    x[0, 0, :2, :2] = 0.0
    scores, trace = forward(net._shape, net._params(), x)
    a = ref.conv(x, net.params["W1"], net.params["b1"], 1, 0)
    _, first = ref.max_pool(np.where(a > 0, a, 0.0))
    assert np.array_equal(trace.pool_argmax, first.transpose(0, 2, 3, 1).reshape(-1))
    np.testing.assert_allclose(scores, ref.scores(net.params, x), rtol=0, atol=1e-12)
    t = np.array([1, 2])
    assert_close(net.numerical_gradient(x, t), ref.numerical_gradient(net.params, x, t))


def test_backprop_predict_loss_accuracy(rng):
    net = make_net((1, 10, 10), 3, 3, 0, 1)
    x = images(rng, 6, (1, 10, 10), zero_fraction=0.0)
    t = rng.integers(0, 4, 6)
    np.testing.assert_allclose(net.predict(x), ref.scores(net.params, x), rtol=0, atol=1e-12)
    assert net.loss(x, t) == pytest.approx(ref.loss(net.params, x, t), abs=1e-12)
    assert net.accuracy(x, t, batch_size=4) == np.sum(np.argmax(ref.scores(net.params, x[:4]), axis=1) == t[:4]) / 6
    numerical = net.numerical_gradient(x, t)
    backprop = net.gradient(x, t)
    for name in NAMES:
        np.testing.assert_allclose(backprop[name], numerical[name], rtol=1e-4, atol=1e-7, err_msg=name)


def test_initialisation_is_the_books():
    np.random.seed(7)
    net = fastnum.SimpleConvNet()
    np.random.seed(7)
    W1 = 0.01 * np.random.randn(30, 1, 5, 5)
    W2 = 0.01 * np.random.randn(4320, 100)
    W3 = 0.01 * np.random.randn(100, 10)
    assert list(net.params) == list(NAMES)
    assert np.array_equal(net.params["W1"], W1) and np.array_equal(net.params["W2"], W2)
    assert np.array_equal(net.params["W3"], W3) and not net.params["b2"].any()


def test_params_files_in_the_books_format(tmp_path, rng):
    net = make_net((1, 8, 8), 2, 3, 1, 1)
    path = tmp_path / "params.pkl"
    net.save_params(path)
    with open(path, "rb") as handle:
        saved = pickle.load(handle)
    assert set(saved) == set(NAMES) and np.array_equal(saved["W2"], net.params["W2"])
    other = make_net((1, 8, 8), 2, 3, 1, 1, seed=5)
    other.load_params(path)
    for name in NAMES:
        assert np.array_equal(other.params[name], net.params[name])
    # files the book's save_params wrote: a plain pickled dict of arrays, in any protocol
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        with open(tmp_path / "book.pkl", "wb") as handle:
            pickle.dump({k: v * protocol for k, v in net.params.items()}, handle, protocol=protocol)
        other.load_params(tmp_path / "book.pkl")
        assert np.array_equal(other.params["W1"], protocol * net.params["W1"]), protocol


class _Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_load_params_refuses_foreign_pickles_and_misfits(tmp_path, capsys):
    net = make_net((1, 8, 8), 2, 3, 1, 1)
    before = {k: v.copy() for k, v in net.params.items()}
    with open(tmp_path / "evil.pkl", "wb") as handle:
        pickle.dump({"W1": _Exploit()}, handle)
    with pytest.raises(ValueError, match="not a parameter file.*builtins.print"):
        net.load_params(tmp_path / "evil.pkl")
    assert "must never run" not in capsys.readouterr().out
    with open(tmp_path / "small.pkl", "wb") as handle:
        pickle.dump({"W2": np.zeros((3, 3))}, handle)
    with pytest.raises(ValueError, match=r"does not fit this network.*W2"):
        net.load_params(tmp_path / "small.pkl")
    for name in before:
        assert np.array_equal(net.params[name], before[name])


@pytest.mark.parametrize("x_shape, message", [
    ((3, 784), r"reshape\(-1, 1, 28, 28\)"),
    ((3, 1, 27, 28), "must be images"),
    ((0, 1, 28, 28), "empty batch"),
])
def test_bad_images_are_refused(x_shape, message):
    net = fastnum.SimpleConvNet()
    with pytest.raises(ValueError, match=message):
        net.numerical_gradient(np.zeros(x_shape), np.zeros(x_shape[0], dtype=int))


def test_bad_labels_and_constructor_arguments(rng):
    net = make_net((1, 8, 8), 2, 3, 1, 1)
    x = images(rng, 2, (1, 8, 8))
    with pytest.raises(ValueError, match="outside"):
        net.numerical_gradient(x, np.array([0, 9]))
    with pytest.raises(ValueError, match="book's SimpleConvNet fails"):
        fastnum.SimpleConvNet((1, 11, 11), {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 2})
    with pytest.raises(ValueError, match="lacks stride"):
        fastnum.SimpleConvNet((1, 8, 8), {"filter_num": 3, "filter_size": 3, "pad": 0})
    with pytest.raises(ValueError, match="too small"):
        fastnum.SimpleConvNet((1, 4, 4), {"filter_num": 3, "filter_size": 4, "pad": 0, "stride": 1})
