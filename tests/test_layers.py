"""The book's layers (``fastnum.layers``) and ``numerical_gradient_of``: random stacks of every layer
kind held to 1e-10 of the book's loop over ``references.layers``, a reader's network built from
book-style layer classes, and the refusal of a network whose loss fastnum cannot reproduce."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

import fastnum
from fastnum.layers.reading import UnreadableNetwork
from references import layers as ref
from tests import book_style_layers as book

TOLERANCE = 1e-10


def _param(rng, shape, scale=0.5):
    return scale * rng.standard_normal(shape)


@st.composite
def stacks(draw):
    """A random network of the book's layers: convolutions (pad, stride), poolings, batch norm,
    dropout, ReLU and sigmoid on images, then affine layers; small sizes, float64 parameters."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    description, params, running = [], {}, {}
    n_samples = draw(st.integers(1, 3))
    image = draw(st.booleans())
    if image:
        shape = (draw(st.integers(1, 2)), draw(st.integers(4, 7)), draw(st.integers(4, 7)))
        x = rng.random((n_samples,) + shape)
        for _block in range(draw(st.integers(1, 2))):
            filters, size = draw(st.integers(1, 3)), draw(st.integers(1, 3))
            stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
            out_h = 1 + (shape[1] + 2 * pad - size) // stride
            out_w = 1 + (shape[2] + 2 * pad - size) // stride
            if out_h < 1 or out_w < 1:
                break
            k = len(description)
            params[f"W{k}"], params[f"b{k}"] = _param(rng, (filters, shape[0], size, size)), _param(rng, filters)
            description.append(("conv", f"W{k}", f"b{k}", stride, pad))
            shape = (filters, out_h, out_w)
            description.append((draw(st.sampled_from(["relu", "sigmoid"])),))
            if out_h >= 2 and out_w >= 2 and draw(st.booleans()):
                pool_stride = draw(st.integers(1, 2))
                description.append(("pool", 2, 2, pool_stride))
                shape = (filters, 1 + (out_h - 2) // pool_stride, 1 + (out_w - 2) // pool_stride)
            if draw(st.booleans()):
                description.append(("dropout", draw(st.sampled_from([0.2, 0.5]))))
        width = int(np.prod(shape))
    else:
        width = draw(st.integers(2, 6))
        x = rng.standard_normal((n_samples, width))
    for _layer in range(draw(st.integers(0, 2))):
        units = draw(st.integers(2, 5))
        k = len(description)
        params[f"W{k}"], params[f"b{k}"] = _param(rng, (width, units)), _param(rng, units)
        description.append(("affine", f"W{k}", f"b{k}"))
        if draw(st.booleans()):
            k = len(description)
            params[f"gamma{k}"], params[f"beta{k}"] = 1 + _param(rng, units, 0.2), _param(rng, units, 0.2)
            running[k] = (_param(rng, units, 0.3), rng.uniform(0.5, 2.0, units))
            description.append(("batchnorm", f"gamma{k}", f"beta{k}"))
        description.append((draw(st.sampled_from(["relu", "sigmoid"])),))
        if draw(st.booleans()):
            description.append(("dropout", 0.5))
        width = units
    n_classes = draw(st.integers(2, 4))
    k = len(description)
    params[f"W{k}"], params[f"b{k}"] = _param(rng, (width, n_classes)), _param(rng, n_classes)
    description.append(("affine", f"W{k}", f"b{k}"))
    labels = rng.integers(0, n_classes, n_samples)
    train = draw(st.booleans())
    decay = draw(st.sampled_from([0.0, 0.1]))
    if train and any(layer[0] == "batchnorm" for layer in description) and n_samples == 1:
        n_samples = 2  # one sample's batch statistics normalise every feature to 0: keep the case informative
        x = np.concatenate([x, x[::-1] + 0.5])
        labels = np.concatenate([labels, labels[::-1]])
    return description, params, running, x, labels, train, decay, seed


def _reference(description, params, running, x, labels, train, decay, seed):
    """The book's loop: every entry, with the masks the call draws after ``np.random.seed(seed)``."""
    np.random.seed(seed)
    masks = {}
    ref.forward(description, params, x, train, masks, running)
    weight_decay = tuple((layer[1], decay) for layer in description if layer[0] == "affine") if decay else ()
    return ref.numerical_gradient(description, params, x, labels, train=train, masks=masks, running=running,
                                  weight_decay=weight_decay)


BATCH_NORM_CONDITION_LIMIT = 30.0
"""Draws whose training-mode batch norm is worse conditioned are left out (``_batch_norm_condition``)."""


def _batch_norm_condition(description, params, running, x, train, seed):
    """The largest ``max_n |a[n, f]| / sqrt(var_f + eps)`` over the features of training-mode batch norms.

    ``a - mean`` cancels that many times over, so the book's own loop (the
    reference) carries rounding noise of about ``u * condition / h`` in its
    entries: measured over 2,000 draws, its difference to fastnum stayed
    below 2.2e-11 up to a condition of 30 and reached 1.2e-10 above 300 (two
    samples whose features nearly agree, after saturated sigmoids). Such a
    draw tests the reference's rounding, not fastnum."""
    if not train:
        return 0.0
    np.random.seed(seed)
    masks = {}
    ref.forward(description, params, x, train, masks, running)  # the masks the call draws
    worst = 0.0
    for index, layer in enumerate(description):
        if layer[0] == "batchnorm":
            flat = ref.forward(description[:index], params, x, train, masks, running).reshape(x.shape[0], -1)
            var = ((flat - flat.mean(axis=0)) ** 2).mean(axis=0)
            worst = max(worst, float((np.abs(flat).max(axis=0) / np.sqrt(var + ref.BN_EPS)).max()))
    return worst


def _book_style(description, params, running, train, decay):
    running = {k: (m.copy(), v.copy()) for k, (m, v) in running.items()}
    return book.Network(description, params, train_loss=train, weight_decay_lambda=decay, running=running)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_random_stacks_of_the_books_layers_match_the_books_loop(case):
    description, params, running, x, labels, train, decay, seed = case
    assume(_batch_norm_condition(description, params, running, x, train, seed) <= BATCH_NORM_CONDITION_LIMIT)
    network = _book_style(description, params, running, train, decay)
    before = {k: v.copy() for k, v in params.items()}
    statistics = [(layer, layer.running_mean, layer.running_var) for layer in network.layers.values()
                  if isinstance(layer, book.BatchNormalization)]
    np.random.seed(seed)
    state = np.random.get_state()
    got = fastnum.numerical_gradient_of(network, x, labels)
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    expected = _reference(description, params, running, x, labels, train, decay, seed)
    assert list(got) == list(params)
    for key in params:
        assert got[key].shape == params[key].shape
        assert np.abs(got[key] - expected[key]).max() <= TOLERANCE, (key, description, train)
        assert np.array_equal(params[key], before[key])  # bitwise unchanged
    for layer, mean, var in statistics:  # a training-mode loss moves them; numerical_gradient_of puts them back
        assert layer.running_mean is mean and layer.running_var is var


def test_one_hot_labels_an_unused_array_and_blas_threads():
    rng = np.random.default_rng(3)
    description = [("conv", "W0", "b0", 1, 1), ("relu",), ("pool", 2, 2, 2), ("affine", "W3", "b3")]
    params = {"W0": _param(rng, (2, 1, 3, 3)), "b0": _param(rng, 2), "W3": _param(rng, (18, 3)),
              "b3": _param(rng, 3), "unused": np.ones(4)}
    x, labels = rng.random((3, 1, 6, 6)), np.array([0, 2, 1])
    network = book.Network(description, params)
    with threadpool_limits(1):
        one = fastnum.numerical_gradient_of(network, x, np.eye(3)[labels])
    with threadpool_limits(2):
        two = fastnum.numerical_gradient_of(network, x, labels)
    expected = ref.numerical_gradient(description, params, x, labels)
    for key in params:
        assert np.array_equal(one[key], two[key]), key  # bitwise, for any BLAS thread count
        assert np.abs(one[key] - expected[key]).max() <= TOLERANCE, key
    assert not one["unused"].any()  # as the book's loop finds it: no layer reads it


def _small_network(**kwargs):
    rng = np.random.default_rng(5)
    params = {"W0": _param(rng, (4, 3)), "b0": _param(rng, 3), "W2": _param(rng, (3, 2)), "b2": _param(rng, 2)}
    network = book.Network([("affine", "W0", "b0"), ("relu",), ("affine", "W2", "b2")], params, **kwargs)
    return network, rng.standard_normal((3, 4)), np.array([0, 1, 1])


class _Penalised(book.Network):
    def loss(self, x, t):
        return super().loss(x, t) + 0.01 * np.abs(self.params["W0"]).sum()  # an L1 term fastnum cannot read


class _Unknown:
    def forward(self, x):
        return np.tanh(x)


def _refusals():
    penalised, x, t = _small_network()
    penalised.__class__ = _Penalised
    unknown, _, _ = _small_network()
    unknown.layers["relu1"] = _Unknown()
    replaced, _, _ = _small_network()
    replaced.params["W0"] = replaced.params["W0"].copy()
    other_loss, _, _ = _small_network()
    other_loss.lastLayer = object()
    no_layers, _, _ = _small_network()
    del no_layers.layers
    failing, _, _ = _small_network()
    failing.loss = lambda x, t: 1 / 0
    return x, t, [
        (penalised, "the loss holds something more than those layers"),
        (unknown, "layer 1 (_Unknown): fastnum does not know this layer kind"),
        (replaced, "layer 0 (Affine).W is not one of the arrays in network.params"),
        (other_loss, "the loss layer is a object; fastnum reads SoftmaxWithLoss"),
        (no_layers, "has no .layers"),
        (failing, "network.loss(x, t) failed (ZeroDivisionError"),
    ]


def test_a_network_whose_loss_fastnum_cannot_reproduce_is_refused_and_left_unchanged():
    x, t, cases = _refusals()
    for network, message in cases:
        before = {k: v.copy() for k, v in network.params.items()}
        with pytest.raises(UnreadableNetwork, match=message.replace("(", r"\(").replace(")", r"\)")):
            fastnum.numerical_gradient_of(network, x, t)
        for key, value in before.items():
            assert np.array_equal(network.params[key], value)


def test_shared_weights_are_refused():
    rng = np.random.default_rng(6)
    tied = _param(rng, (3, 3))
    params = {"W0": tied, "b0": _param(rng, 3), "W1": tied, "b1": _param(rng, 3)}  # one array, two layers
    network = book.Network([("affine", "W0", "b0"), ("relu",), ("affine", "W1", "b1")], params)
    with pytest.raises(UnreadableNetwork, match="W0 are used by more than one layer"):
        fastnum.numerical_gradient_of(network, rng.standard_normal((2, 3)), np.array([0, 2]))


@pytest.mark.parametrize("x, message", [
    (np.zeros((0, 4)), "non-empty batch"),
    (np.full((3, 4), np.nan), "NaN or inf"),
    (np.zeros((3, 4), dtype=complex), "x must be an array of real numbers, got dtype complex128"),
])
def test_bad_batches_are_named(x, message):
    network, _, t = _small_network()
    with pytest.raises((ValueError, TypeError), match=message):
        fastnum.numerical_gradient_of(network, x, t)


def test_samples_a_layer_does_not_take_are_named_before_the_networks_own_loss_runs():
    """Each kind checks its input's shape (``input_error``): the error names the layer, not numpy's
    matmul inside the user's ``loss``; labels given as a list reach that loss as an array."""
    network, x, t = _small_network()
    with pytest.raises(ValueError, match=r"layer 0 \(Affine\) takes 4 inputs per sample \(W0 is \(4, 3\)\), not 5"):
        fastnum.numerical_gradient_of(network, np.zeros((3, 5)), t)
    assert set(fastnum.numerical_gradient_of(network, x, t.tolist())) == set(network.params)
    rng = np.random.default_rng(8)
    params = {"W0": _param(rng, (2, 1, 3, 3)), "b0": _param(rng, 2), "W3": _param(rng, (8, 2)), "b3": _param(rng, 2)}
    conv = book.Network([("conv", "W0", "b0", 1, 0), ("relu",), ("pool", 2, 2, 2), ("affine", "W3", "b3")], params)
    labels = np.array([0, 1])
    with pytest.raises(ValueError, match=r"layer 0 \(Convolution\) takes 1 channels"):
        fastnum.numerical_gradient_of(conv, rng.standard_normal((2, 2, 6, 6)), labels)
    with pytest.raises(ValueError, match=r"layer 2 \(Pooling\) has 2x2 windows, larger than its \(1, 1\) input image"):
        fastnum.numerical_gradient_of(conv, rng.standard_normal((2, 1, 3, 3)), labels)
    with pytest.raises(ValueError, match=r"layer 3 \(Affine\) takes 8 inputs per sample"):
        fastnum.numerical_gradient_of(conv, rng.standard_normal((2, 1, 8, 8)), labels)
    assert set(fastnum.numerical_gradient_of(conv, rng.standard_normal((2, 1, 6, 6)), labels)) == set(params)


def test_weight_decay_and_a_training_mode_loss_are_read():
    network, x, t = _small_network(weight_decay_lambda=0.3, train_loss=True)
    description = [("affine", "W0", "b0"), ("relu",), ("affine", "W2", "b2")]
    got = fastnum.numerical_gradient_of(network, x, t)
    expected = ref.numerical_gradient(description, network.params, x, t, weight_decay=(("W0", 0.3), ("W2", 0.3)))
    for key in network.params:
        assert np.abs(got[key] - expected[key]).max() <= TOLERANCE
