"""The benchmark's contenders, each a function that computes (part of) one
training step's gradient on the same batch and the same initial parameters.

CONTENDERS maps a name to (label, kind, function, runtime):

* kind "sampled": the function computes the gradient entries listed in
  ``entries`` only, one perturbation at a time; its time per entry is
  extrapolated to all parameters.
* kind "whole": the function computes the whole gradient dict.

The references come from ``references/naive.py`` (the book's code), the same table
the tests use, so the benchmark times exactly what the tests check.
"""

import numpy as np

from bench import numpy_incremental
from fastnum import TwoLayerNet
from fastnum._config import H
from references import naive

PARAM_SHAPES = {"W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
N_PARAMS = sum(int(np.prod(shape)) for shape in PARAM_SHAPES.values())


def initial_params(n_in=784, n_hidden=50, n_out=10, seed=0):
    """The book's initial parameters for ``np.random.seed(seed)``."""
    np.random.seed(seed)
    net = TwoLayerNet(n_in, n_hidden, n_out)
    return net.params


def book_loop(params, x, t, entries):
    """(1) The book's loop: perturb, whole forward pass in numpy, restore."""
    return naive.numerical_gradient_entries(params, x, t, entries)


def scipy_approx_fprime(params, x, t, entries):
    """(6) ``scipy.optimize.approx_fprime`` on the book's loss over the sampled entries.

    approx_fprime takes forward differences ``(L(p + h) - L(p)) / h``: one loss
    per entry plus one, so its values differ from the central difference by
    the truncation error of a one-sided difference.
    """
    from scipy.optimize import approx_fprime

    work = {k: v.copy() for k, v in params.items()}
    x = np.asarray(x, dtype=np.float64)
    start = np.array([work[name][idx] for name, idx in entries])

    def loss_of(values):
        for (name, idx), value in zip(entries, values):
            work[name][idx] = value
        return naive.loss(work, x, t)

    return approx_fprime(start, loss_of, H)


def numpy_incremental_whole(params, x, t):
    """(2) The incremental mathematics in plain numpy."""
    return numpy_incremental.numerical_gradient(params, x, t)


def numpy_backprop(params, x, t):
    """(5a) The book's backprop in numpy."""
    return naive.gradient(params, x, t)


def _net(params):
    net = TwoLayerNet(*params["W1"].shape, params["W2"].shape[1])
    net.params = {k: v.copy() for k, v in params.items()}
    return net


def fastnum_full(params, x, t, net=None):
    """(3) ``TwoLayerNet.numerical_gradient(method="full")``."""
    return (net or _net(params)).numerical_gradient(x, t, method="full")


def fastnum_incremental(params, x, t, net=None):
    """(4) ``TwoLayerNet.numerical_gradient(method="incremental")``."""
    return (net or _net(params)).numerical_gradient(x, t)


def fastnum_backprop(params, x, t, net=None):
    """(5b) ``TwoLayerNet.gradient``."""
    return (net or _net(params)).gradient(x, t)


CONTENDERS = {
    "book": ("(1) book's loop, plain numpy", "sampled", book_loop, "numpy"),
    "numpy_incremental": ("(2) incremental maths, best plain numpy", "whole", numpy_incremental_whole, "numpy"),
    "fastnum_full": ("(3) fastnum method='full'", "whole", fastnum_full, "numba"),
    "fastnum_incremental": ("(4) fastnum method='incremental'", "whole", fastnum_incremental, "numba"),
    "numpy_backprop": ("(5a) backprop, plain numpy", "whole", numpy_backprop, "numpy"),
    "fastnum_backprop": ("(5b) backprop, fastnum", "whole", fastnum_backprop, "numba"),
    "scipy_approx_fprime": ("(6) scipy approx_fprime (forward differences)", "sampled", scipy_approx_fprime, "numpy"),
}
"""name -> (label, kind, function, runtime); runtime "numpy" contenders run at
their faster BLAS thread count, "numba" ones at the requested numba threads."""
