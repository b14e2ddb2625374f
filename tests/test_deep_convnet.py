"""DeepConvNet (the book's ``ch08/deep_convnet.py``): the book's initial weights, passes and parameter
files, and its numerical gradient held to 1e-10 of the book's loop over ``references.layers``, at
full size on sampled entries and whole on a narrow variant."""

import pickle

import numpy as np
import pytest

import fastnum
from fastnum._config import H
from fastnum.layers import ForwardPass
from fastnum.layers.numerical import numerical_gradient as stack_gradient
from references import layers as ref
from references.table import DEEP_CONVNET_NARROW

TOLERANCE = 1e-10
NARROW = DEEP_CONVNET_NARROW


def _books_initial_params(conv_params, hidden=50, output=10):
    """What the book's constructor draws after a seed: He scales of its fixed fan-ins, W then b."""
    fan_ins = np.array([1 * 3 * 3, 16 * 3 * 3, 16 * 3 * 3, 32 * 3 * 3, 32 * 3 * 3, 64 * 3 * 3, 64 * 4 * 4, hidden])
    scales = np.sqrt(2.0 / fan_ins)
    params, channels = {}, 1
    for k, conv in enumerate(conv_params):
        params[f"W{k + 1}"] = scales[k] * np.random.randn(conv["filter_num"], channels, 3, 3)
        params[f"b{k + 1}"] = np.zeros(conv["filter_num"])
        channels = conv["filter_num"]
    params["W7"] = scales[6] * np.random.randn(64 * 4 * 4, hidden)
    params["b7"] = np.zeros(hidden)
    params["W8"] = scales[7] * np.random.randn(hidden, output)
    params["b8"] = np.zeros(output)
    return params


def _batch(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 28, 28)), rng.integers(0, 10, n)


def _masks_after(seed, params, x):
    """The dropout masks a training pass draws after ``np.random.seed(seed)``."""
    np.random.seed(seed)
    masks = {}
    ref.forward(ref.deep_convnet_layers(), params, x, True, masks)
    return masks


def _sampled(params, per_key, seed=1):
    rng = np.random.default_rng(seed)
    return {key: np.sort(rng.choice(value.size, size=min(per_key, value.size), replace=False))
            for key, value in params.items()}


def test_the_books_initial_weights_and_passes():
    np.random.seed(0)
    net = fastnum.DeepConvNet()
    np.random.seed(0)
    expected = _books_initial_params(fastnum.conv.deep.DEFAULT_CONV_PARAMS)
    assert list(net.params) == list(expected)
    for key in expected:
        assert np.array_equal(net.params[key], expected[key]), key
    x, t = _batch(3)
    layers = ref.deep_convnet_layers()
    np.testing.assert_allclose(net.predict(x), ref.forward(layers, net.params, x), rtol=0, atol=1e-12)
    np.random.seed(7)
    loss = net.loss(x, t)  # training mode, as the book's: its dropout masks from np.random
    masks = _masks_after(7, net.params, x)
    assert abs(loss - ref.loss(layers, net.params, x, t, train=True, masks=masks)) <= 1e-12
    scores = ref.forward(layers, net.params, np.concatenate([x, x[:2]]))
    labels = np.concatenate([t, t[:2]])
    correct = np.sum(np.argmax(scores[:4], axis=1) == labels[:4])  # two whole batches of 2; the 5th counts below
    assert net.accuracy(np.concatenate([x, x[:2]]), labels, batch_size=2) == correct / 5


def test_full_size_numerical_gradient_on_sampled_entries_matches_the_books_loop():
    np.random.seed(0)
    net = fastnum.DeepConvNet()
    x, t = _batch(2, seed=3)
    entries = _sampled(net.params, 3)
    np.random.seed(11)
    got = stack_gradient(net.stack, net.params, x, t, ForwardPass(train=True), H, entries=entries)
    masks = _masks_after(11, net.params, x)
    listed = [(key, np.unravel_index(i, net.params[key].shape)) for key in entries for i in entries[key]]
    expected = ref.numerical_gradient_entries(ref.deep_convnet_layers(), net.params, x, t, listed, train=True,
                                              masks=masks)
    assert np.abs(np.concatenate([got[key] for key in entries]) - expected).max() <= TOLERANCE


def test_the_whole_numerical_gradient_of_a_narrow_deep_convnet():
    np.random.seed(1)
    net = fastnum.DeepConvNet(*[(1, 28, 28)], *NARROW, hidden_size=6)
    before = {k: v.copy() for k, v in net.params.items()}
    x, t = _batch(2, seed=4)
    np.random.seed(5)
    grads = net.numerical_gradient(x, np.eye(10)[t])
    masks = _masks_after(5, net.params, x)
    after_masks = np.random.rand()  # the call drew its masks as one training pass: np.random moved on as far
    np.random.seed(5)
    _masks_after(5, net.params, x)
    assert np.random.rand() == after_masks
    entries = _sampled(net.params, 6, seed=2)
    listed = [(key, np.unravel_index(i, net.params[key].shape)) for key in entries for i in entries[key]]
    expected = ref.numerical_gradient_entries(ref.deep_convnet_layers(), net.params, x, t, listed, train=True,
                                              masks=masks)
    got = np.array([grads[key][index] for key, index in listed])
    assert np.abs(got - expected).max() <= TOLERANCE
    assert list(grads) == list(net.params) and all(grads[k].shape == net.params[k].shape for k in grads)
    for key in before:
        assert np.array_equal(net.params[key], before[key])  # bitwise unchanged


def test_backprop_agrees_with_the_numerical_gradient_away_from_kinks():
    np.random.seed(1)
    net = fastnum.DeepConvNet((1, 28, 28), *NARROW, hidden_size=6)
    rng = np.random.default_rng(8)
    for k in range(1, 9):  # zero biases put the padded border's outputs exactly on a ReLU's kink
        net.params[f"b{k}"] = rng.normal(0.0, 0.1, net.params[f"b{k}"].shape)
    x, t = _batch(2, seed=4)
    np.random.seed(5)
    numerical = net.numerical_gradient(x, t)
    np.random.seed(5)
    backprop = net.gradient(x, t)  # the same masks: the same network
    for key in numerical:  # the same direction (ReLUs within a step of their kink make single entries differ)
        a, b = backprop[key].ravel(), numerical[key].ravel()
        assert a @ b >= 0.99 * np.linalg.norm(a) * np.linalg.norm(b), key


def test_parameter_files_in_the_books_format(tmp_path):
    np.random.seed(0)
    net = fastnum.DeepConvNet()
    path = tmp_path / "deep_convnet_params.pkl"
    net.save_params(path)
    with open(path, "rb") as handle:
        stored = pickle.load(handle)
    assert list(stored) == list(net.params) and all(np.array_equal(stored[k], net.params[k]) for k in stored)
    np.random.seed(1)
    other = fastnum.DeepConvNet()
    other.load_params(path)
    assert all(np.array_equal(other.params[k], net.params[k]) for k in net.params)
    x, _ = _batch(2)
    assert np.array_equal(other.predict(x), net.predict(x))
    wrong = dict(stored, W3=np.zeros((3, 3)))
    with open(tmp_path / "wrong.pkl", "wb") as handle:
        pickle.dump(wrong, handle)
    before = {k: v.copy() for k, v in other.params.items()}
    with pytest.raises(ValueError, match=r"wrong.pkl does not fit this network: .*W3 has shape \(3, 3\)"):
        other.load_params(tmp_path / "wrong.pkl")
    assert all(np.array_equal(other.params[k], before[k]) for k in before)


def test_the_registry_builds_it_and_bad_input_is_named():
    from fastnum.registry import build, kind_of, with_params

    np.random.seed(0)
    net = build({"network": "DeepConvNet", "hidden": [50]}, 784, 10)
    assert kind_of(net).cli_name == "deep-convnet"
    twin = with_params(net.spec(), net.params)
    assert all(np.array_equal(twin.params[k], net.params[k]) for k in net.params)
    assert net.memory_bytes(net.spec(), 784, 10, 10) > 8 * sum(v.size for v in net.params.values())
    with pytest.raises(ValueError, match="64 maps of 4x4"):
        fastnum.DeepConvNet(input_dim=(1, 40, 40))
    with pytest.raises(ValueError, match="conv_param_2 lacks stride"):
        fastnum.DeepConvNet(conv_param_2={"filter_num": 16, "filter_size": 3, "pad": 1})
    x, t = _batch(2)
    with pytest.raises(ValueError):
        net.numerical_gradient(x[:, :, :20], t)
    with pytest.raises(ValueError):
        net.loss(x, np.array([3, 12]))


def test_the_gradient_check_example_runs_on_real_shaped_images(data_dir, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "deep_convnet_gradient_check.py"
    spec = importlib.util.spec_from_file_location("deep_convnet_gradient_check", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.NARROW_CONVOLUTIONS == NARROW
    numerical, backprop = example.main(["--narrow", "--images", "2", "--data-dir", str(data_dir),
                                        "--no-verify-data"])
    printed = capsys.readouterr().out
    assert all(f"\n  {key} " in printed for key in numerical) and list(numerical) == list(backprop)
    for key in ("W1", "W7", "W8"):  # weights away from kinks: the two gradients agree closely
        assert np.abs(numerical[key] - backprop[key]).max() <= 1e-5 * max(1.0, np.abs(backprop[key]).max()), key
    with pytest.raises(SystemExit):
        example.main(["--images", "0"])
