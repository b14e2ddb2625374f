"""Every network of ``references.table`` against its plain-numpy reference: every entry of the
numerical gradient within 1e-10 of the book's loop (sampled entries where the loop over all would take
minutes), bitwise the same for one and two threads."""

import numpy as np
import pytest

from references.table import NETWORKS

TOLERANCE = 1e-10
SAMPLED = {"deep_convnet": 8}
"""Entries per parameter array checked where the book's loop over every entry is too slow for a test."""


def _entries(network, name, rng):
    entries = []
    for key, value in network.params.items():
        if name in SAMPLED:
            picked = rng.choice(value.size, size=min(SAMPLED[name], value.size), replace=False)
            entries += [(key, np.unravel_index(i, value.shape)) for i in np.sort(picked)]
        else:
            entries += [(key, index) for index in np.ndindex(value.shape)]
    return entries


@pytest.mark.parametrize("name", list(NETWORKS))
def test_numerical_gradient_matches_the_books_loop(name, assert_thread_invariant):
    case = NETWORKS[name]
    rng = np.random.default_rng(20261201)
    network, x, t = case.build("test", rng)
    before = {key: value.copy() for key, value in network.params.items()}

    def compute():
        np.random.seed(17)
        return network.numerical_gradient(x, t)

    grads = compute()
    if name not in SAMPLED:
        assert_thread_invariant(compute)
    entries = _entries(network, name, rng)
    expected = case.reference(network, x, t, entries, seed=17)
    got = np.array([grads[key][index] for key, index in entries])
    assert np.abs(got - expected).max() <= TOLERANCE, name
    assert sorted(grads) == sorted(network.params)  # (in the order of the book's numerical_gradient)
    for key in before:
        assert np.array_equal(network.params[key], before[key]), key


@pytest.mark.parametrize("name", [name for name, case in NETWORKS.items() if case.specialised is not None])
def test_each_specialised_reference_is_the_layers_loss(name):
    """The benchmark times a network's own plain-numpy statement; it must be the layers' loss."""
    case = NETWORKS[name]
    network, x, t = case.build("test", np.random.default_rng(3))
    labels, masks = case.labels(t), case.masks(network, x, seed=4)
    specialised = case.specialised(network, x, labels, masks)(network.params)
    assert abs(specialised - case.layers_loss(network, x, labels, masks)(network.params)) <= 1e-12
