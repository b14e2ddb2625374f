"""Moves (``fastnum.layers.moves``): the numerical gradient carried up as moves of the layers' outputs,
each path of its proof held to 1e-10 of the book's loop (``references.layers``): moves that stay
linear, a ReLU or maximum that changes side above the last convolution (evaluated exactly, two-sided),
a proof that fails below it (the pair recomputed by the general path), and the rounding check."""

import numpy as np
import pytest

from fastnum.layers import ForwardPass
from fastnum.layers import numerical as numerical_module
from fastnum.layers.numerical import numerical_gradient
from fastnum.layers.reading import read_network
from references import layers as ref
from tests import book_style_layers as book

TOLERANCE = 1e-10


def _gradient(description, params, x, labels):
    """The report of ``numerical_gradient`` (its entries held to the book's loop) and the loop's gradient."""
    stack, _ = read_network(book.Network(description, params), x.shape[1:])
    report = {}
    got = numerical_gradient(stack, params, x, labels, ForwardPass(train=False), report=report)
    expected = ref.numerical_gradient(description, params, x, labels)
    for key in params:
        assert np.abs(got[key] - expected[key]).max() <= TOLERANCE, key
    return report, expected


def _conv_net(rng, zero_biases=False):
    description = [("conv", "W0", "b0", 1, 1), ("relu",), ("pool", 2, 2, 2), ("conv", "W3", "b3", 1, 1), ("relu",),
                   ("pool", 2, 2, 2), ("affine", "W6", "b6"), ("relu",), ("affine", "W8", "b8")]
    params = {"W0": 0.5 * rng.standard_normal((3, 1, 3, 3)), "b0": 0.1 * rng.standard_normal(3),
              "W3": 0.4 * rng.standard_normal((4, 3, 3, 3)), "b3": 0.1 * rng.standard_normal(4),
              "W6": 0.5 * rng.standard_normal((16, 5)), "b6": 0.1 * rng.standard_normal(5),
              "W8": 0.5 * rng.standard_normal((5, 3)), "b8": 0.1 * rng.standard_normal(3)}
    if zero_biases:
        for key in ("b0", "b3", "b6", "b8"):
            params[key] = np.zeros_like(params[key])
    return description, params


def test_a_convnet_is_carried_by_moves():
    rng = np.random.default_rng(0)
    description, params = _conv_net(rng)
    report, _ = _gradient(description, params, rng.random((3, 1, 8, 8)), np.array([0, 2, 1]))
    assert report["moved"] > 0.9 * sum(p.size for p in params.values())


def test_a_proof_that_fails_below_the_last_convolution_is_recomputed():
    # zero biases and a blank border: the first ReLU's inputs there are exactly 0, and a bias step moves
    # them, so the ReLU changes side below the second convolution: the general path, pair by pair
    rng = np.random.default_rng(1)
    description, params = _conv_net(rng, zero_biases=True)
    x = np.zeros((2, 1, 8, 8))
    x[:, :, 2:6, 2:6] = rng.random((2, 1, 4, 4))
    report, _ = _gradient(description, params, x, np.array([1, 0]))
    assert report["recomputed"] >= params["b0"].size
    assert report["pairs recomputed"] >= report["recomputed"] and report["moved"] > 0


def test_a_relu_that_changes_side_above_the_last_convolution_is_evaluated_exactly():
    # hidden unit 0's input is 2e-5: a step of W0[0, 0] (input 1) moves it by 1e-4, across its kink
    description = [("affine", "W0", "b0"), ("relu",), ("affine", "W2", "b2")]
    params = {"W0": np.array([[0.3, -0.2], [0.1, 0.4]]), "b0": np.array([2e-5 - 0.3, 0.05]),
              "W2": np.array([[1.0, -0.5], [0.2, 0.7]]), "b2": np.array([0.0, 0.1])}
    x, labels = np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([0, 1])
    report, _ = _gradient(description, params, x, labels)
    assert report["recomputed"] == 0 and report["moved"] == sum(p.size for p in params.values())


def test_a_maximum_that_changes_place_is_evaluated_exactly():
    # a 1x1 convolution of two channels: pixel (0, 0) gives w0, pixel (0, 1) gives w1, 1e-6 apart in one
    # pooling window; a step of w1 puts it above w0
    description = [("conv", "W0", "b0", 1, 0), ("relu",), ("pool", 2, 2, 2), ("affine", "W3", "b3")]
    params = {"W0": np.array([[[[0.5 + 1e-6]], [[0.5]]]]), "b0": np.array([0.0]),
              "W3": np.array([[1.0, -1.0]]), "b3": np.array([0.0, 0.2])}
    x = np.zeros((1, 2, 2, 2))
    x[0, 0, 0, 0], x[0, 1, 0, 1] = 1.0, 1.0
    report, _ = _gradient(description, params, x, np.array([0]))
    assert report["recomputed"] == 0


def test_moves_whose_rounding_bound_exceeds_the_books_are_recomputed(monkeypatch):
    rng = np.random.default_rng(2)
    description, params = _conv_net(rng)
    monkeypatch.setattr(numerical_module, "_scores_rounding", lambda stack, params, trace: np.zeros(2))
    report, expected = _gradient(description, params, rng.random((2, 1, 8, 8)), np.array([2, 0]))
    # only moves with nothing to round keep their bound of 0: those that are exactly zero (an input of
    # 0) and the last layer's biases (a step of exactly h on one score)
    moving = sum(int(np.count_nonzero(g)) for g in expected.values())
    assert report["recomputed"] >= moving - params["b8"].size > 0


@pytest.mark.parametrize("n_samples", [1, 4])
def test_dropout_in_training_mode_and_sampled_entries(n_samples):
    rng = np.random.default_rng(3)
    description, params = _conv_net(rng)
    description = description[:7] + [("dropout", 0.5)] + description[7:]
    x, labels = rng.random((n_samples, 1, 8, 8)), rng.integers(0, 3, n_samples)
    np.random.seed(4)
    masks = {}
    ref.forward(description, params, x, True, masks, {})
    stack, _ = read_network(book.Network(description, params), x.shape[1:])
    entries = {"W0": np.array([0, 5, 5, 26]), "b3": np.array([3, 1]), "W6": np.r_[np.arange(0, 80, 7), 14, 0]}
    np.random.seed(4)
    got = numerical_gradient(stack, params, x, labels, ForwardPass(train=True), entries=entries)
    expected = ref.numerical_gradient(description, params, x, labels, train=True, masks=masks)
    for key, wanted in entries.items():
        assert np.abs(got[key] - expected[key].ravel()[wanted]).max() <= TOLERANCE, key


# -- unit moves (fastnum.layers.unit_moves): an affine layer's entries as one response per unit ----------


def _three_affine_layers(rng, activation="relu"):
    description = [("affine", "W0", "b0"), (activation,), ("affine", "W2", "b2"), ("relu",), ("affine", "W4", "b4")]
    params = {"W0": 0.5 * rng.standard_normal((6, 4)), "b0": 0.1 * rng.standard_normal(4),
              "W2": 0.5 * rng.standard_normal((4, 5)), "b2": 0.1 * rng.standard_normal(5),
              "W4": 0.5 * rng.standard_normal((5, 3)), "b4": 0.1 * rng.standard_normal(3)}
    return description, params


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_affine_layers_are_carried_by_unit_moves(activation, monkeypatch):
    # MNIST-like inputs: zeros and a few repeated levels, so that distinct (sample, step) pairs are shared
    rng = np.random.default_rng(5)
    description, params = _three_affine_layers(rng, activation)
    x = rng.integers(0, 4, (5, 6)) / 3.0
    calls = []
    real = numerical_module.unit_move_sums
    monkeypatch.setattr(numerical_module, "unit_move_sums", lambda *a, **k: calls.append(a[5]) or real(*a, **k))
    report, _ = _gradient(description, params, x, np.array([0, 2, 1, 1, 0]))
    assert sorted(set(calls)) == [0, 2, 4]  # every affine layer: through the sigmoid too (evaluated at the unit)
    assert report["moved"] > 0.9 * sum(p.size for p in params.values())


def test_a_step_past_a_relus_radius_above_is_recomputed_and_would_be_wrong_without_it(monkeypatch):
    # the second ReLU's input 0 of sample 0 is 2e-5: a step of W0[0, j] (input 1) reaches it by
    # 1e-4 * W2[j, 0] (0.5): it changes side, so those pairs cannot be carried by their unit's response
    rng = np.random.default_rng(6)
    description, params = _three_affine_layers(rng)
    params["W0"] = np.abs(params["W0"]) + 0.1  # every hidden unit of the first layer passes
    params["b0"] = np.abs(params["b0"])
    params["W2"][:, 0] = 0.5
    x = np.zeros((2, 6))
    x[0, 0], x[1] = 1.0, rng.random(6)
    hidden = np.maximum(x[0] @ params["W0"] + params["b0"], 0)
    params["b2"][0] = 2e-5 - hidden @ params["W2"][:, 0]
    report, expected = _gradient(description, params, x, np.array([1, 2]))
    assert report["recomputed"] >= params["W0"].shape[1] and report["moved"] > 0
    # the negative control: without the radius the same pairs are carried linearly, and come out wrong
    from fastnum.layers import Relu

    monkeypatch.setattr(Relu, "move_radius", lambda self, move, context: None)
    stack, _ = read_network(book.Network(description, params), x.shape[1:])
    unchecked = numerical_gradient(stack, params, x, np.array([1, 2]), ForwardPass(train=False))
    assert np.abs(unchecked["W0"] - expected["W0"]).max() > 1e-6


def test_unit_moves_whose_rounding_bound_exceeds_the_books_are_recomputed(monkeypatch):
    rng = np.random.default_rng(7)
    description, params = _three_affine_layers(rng, "sigmoid")
    monkeypatch.setattr(numerical_module, "_scores_rounding", lambda stack, params, trace: np.zeros(3))
    x = rng.integers(0, 3, (3, 6)) / 2.0
    report, expected = _gradient(description, params, x, np.array([2, 0, 1]))
    # every step rounds (a bound above 0) except that of a weight whose input is 0 in every sample (a zero
    # pixel, a ReLU that does not pass), which moves nothing
    moving = 0
    for index, layer in enumerate(description):
        if layer[0] == "affine":
            inputs = ref.forward(description[:index], params, x)
            units = params[layer[1]].shape[1]
            moving += int(np.count_nonzero((inputs != 0).any(axis=0))) * units + units
    assert report["recomputed"] == moving < sum(p.size for p in params.values())


def test_distinct_pairs_share_a_samples_repeated_steps_and_skip_its_zeros():
    from fastnum.layers.unit_moves import distinct_pairs

    scales = np.array([[0.5, 0.0, np.nan], [0.5, 0.5, 1.0], [-0.0, 0.5, np.nan], [0.25, 0.0, 1.0]])  # (rows, N)
    samples, values, pair_of = distinct_pairs(scales)
    assert (pair_of[scales == 0] == -1).all() and (pair_of[scales != 0] >= 0).all()
    for r, n in zip(*np.nonzero(scales != 0)):
        assert samples[pair_of[r, n]] == n
        assert values[pair_of[r, n]] == scales[r, n] or np.isnan(scales[r, n])
    assert pair_of[0, 0] == pair_of[1, 0] != pair_of[3, 0]  # sample 0: 0.5 twice, 0.25 once
    assert pair_of[1, 1] == pair_of[2, 1] and pair_of[1, 2] == pair_of[3, 2]
    assert pair_of[0, 2] != pair_of[2, 2]  # NaN steps are never shared (they fail their checks alone)
    assert samples.size == 2 + 1 + 3


def test_every_kind_that_carries_moves_bounds_their_scaling():
    # unit moves need a move_radius of every layer above; a kind with propagate but none would quietly
    # send every affine layer below it back to the per-entry moves
    from fastnum.layers import LAYER_KINDS

    for name, kind in LAYER_KINDS.items():
        assert hasattr(kind, "propagate") == hasattr(kind, "move_radius"), name


@pytest.mark.parametrize("seed", range(12))
def test_random_affine_stacks_with_relus_at_their_kinks_match_the_books_loop(seed):
    # small fully-connected stacks (ReLU, sigmoid, dropout) whose ReLU inputs are set within a few h of
    # 0 in some sample, and inputs on a few levels or continuous: every path of unit moves (the unit's
    # own activation evaluated exactly, a radius above failing, the general path) against the book's loop
    rng = np.random.default_rng(seed)
    for _trial in range(8):
        widths = [int(w) for w in rng.integers(2, 7, int(rng.integers(1, 4)))]
        n_in, n_classes, n_samples = int(rng.integers(2, 8)), int(rng.integers(2, 5)), int(rng.integers(1, 5))
        description, params, width = [], {}, n_in
        for k, units in enumerate(widths + [n_classes]):
            index = len(description)
            params[f"W{index}"] = float(rng.choice([0.1, 0.5, 2.0])) * rng.standard_normal((width, units))
            params[f"b{index}"] = 0.1 * rng.standard_normal(units)
            description.append(("affine", f"W{index}", f"b{index}"))
            if k < len(widths):
                description.append((str(rng.choice(["relu", "relu", "sigmoid"])),))
                if rng.random() < 0.3:
                    description.append(("dropout", 0.5))
            width = units
        levels = rng.random() < 0.5
        x = rng.integers(0, 3, (n_samples, n_in)) / 2.0 if levels else rng.standard_normal((n_samples, n_in))
        for index, layer in enumerate(description[:-1]):
            if layer[0] == "affine" and description[index + 1][0] == "relu":
                j, sample = int(rng.integers(params[layer[1]].shape[1])), int(rng.integers(n_samples))
                inputs = ref.forward(description[:index], params, x).reshape(n_samples, -1)
                pre = inputs[sample] @ params[layer[1]][:, j] + params[layer[2]][j]
                params[layer[2]][j] += float(rng.choice([1, -1]) * rng.choice([0.0, 3e-5, 1e-4, 2e-4])) - pre
        labels = rng.integers(0, n_classes, n_samples)
        train = bool(rng.random() < 0.5)
        np.random.seed(seed)
        masks = {}
        ref.forward(description, params, x, train, masks, {})
        expected = ref.numerical_gradient(description, params, x, labels, train=train, masks=masks)
        stack, _ = read_network(book.Network(description, params), x.shape[1:])
        np.random.seed(seed)
        got = numerical_gradient(stack, params, x, labels, ForwardPass(train=train))
        for key in params:
            assert np.abs(got[key] - expected[key]).max() <= TOLERANCE, (key, description)
