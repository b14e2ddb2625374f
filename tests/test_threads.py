"""Results do not depend on the number of numba threads: bitwise identical with 1 and 2."""

import numpy as np
import pytest

from fastnum import TwoLayerNet
from references import naive


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_bitwise_identical_with_one_and_two_threads(activation, numba_threads, rng):
    np.random.seed(5)
    net = TwoLayerNet(784, 50, 10, activation=activation)
    net.params["W1"] *= 10
    x, t = naive.mnist_like_batch(rng, 100)
    results = []
    for threads in (1, 2):
        numba_threads(threads)
        results.append({
            "incremental": net.numerical_gradient(x, t),
            "full": net.numerical_gradient(x[:10], t[:10], method="full"),
            "backprop": net.gradient(x, t),
            "predict": {"y": net.predict(x)},
            "loss": {"loss": np.array(net.loss(x, t))},
            "accuracy": {"acc": np.array(net.accuracy(x, t))},
        })
    one, two = results
    for kind in one:
        for name in one[kind]:
            np.testing.assert_array_equal(one[kind][name], two[kind][name], err_msg=f"{kind} {name}")
