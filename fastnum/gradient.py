"""Drop-in for the book's ``common/gradient.py`` and chapter 4's helpers.

``numerical_gradient(f, x)`` perturbs ``x`` in place and calls ``f(x)``, as the
book's does: its exercises pass closures that ignore their argument and read
the very array being perturbed (``lambda W: net.loss(x, t)``).

The book assumes float64. Narrower floats are refused rather than computed
in float64 and written back: the perturbation happens *in* the caller's
array, which ``f`` reads, so a float32 array cannot hold ``x + 1e-4``
exactly (float32 resolves about 1e-7 relative, so near 3.0 the step is
rounded by 1%) and the gradient comes out wrong by percents; float16 rounds
the step away entirely and gives zeros.
"""

import numpy as np

from ._config import H

__all__ = ["numerical_diff", "numerical_gradient", "numerical_gradient_2d"]


def _check_precision(x, name):
    dtype = getattr(x, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.floating) and dtype.itemsize < 8:
        raise TypeError(
            f"{name} has dtype {dtype}: h = 1e-4 is below what {dtype} can resolve around most values "
            f"(x + h is rounded, so the central difference is wrong by percents, or zero in float16); "
            f"the book computes in float64: convert with {name}.astype(np.float64)"
        )


def numerical_diff(f, x):
    """Central difference ``(f(x + h) - f(x - h)) / (2h)``, h = 1e-4.

    Parameters
    ----------
    f : callable
        Function of one variable.
    x : float
        A Python float or a float64 number (narrower floats are refused).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``x`` is a float32 or float16 number or array.
    """
    _check_precision(x, "x")
    h = H
    return (f(x + h) - f(x - h)) / (2 * h)


def _check_perturbable(x, name="x"):
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array, perturbed in place, got {type(x).__name__}"
        )
    if np.issubdtype(x.dtype, np.complexfloating):
        raise TypeError(
            f"{name} has dtype {x.dtype}: the numerical gradient is of a real function of real numbers; "
            f"pass the real parts ({name}.real.astype(np.float64)) or split real and imaginary parts into "
            "two real arrays"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{name} has dtype {x.dtype}: it must be a float array, because x + 1e-4 "
            "cannot be stored in an integer array (convert with x.astype(float))"
        )
    _check_precision(x, name)
    if not x.flags.writeable:
        raise ValueError(f"{name} is read-only; it must be writable to be perturbed in place")


def _central_differences(f, x):
    """The book's loop over every element of float array ``x`` (checked by the caller)."""
    h = H
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        try:
            x[idx] = float(tmp_val) + h
            fxh1 = f(x)  # f(x+h)
            x[idx] = tmp_val - h
            fxh2 = f(x)  # f(x-h)
        finally:
            x[idx] = tmp_val  # restored even when f raises
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        it.iternext()
    return grad


def numerical_gradient(f, x):
    """Gradient of ``f`` at ``x`` by central differences, h = 1e-4, as the book.

    Every element of ``x`` in turn is set to ``x + h`` and ``x - h`` in place,
    ``f(x)`` is called for each, and the element is restored.

    Parameters
    ----------
    f : callable
        Called as ``f(x)``; returns a scalar.
    x : numpy.ndarray of float, any shape
        Perturbed in place; always restored, also when ``f`` raises.

    Returns
    -------
    numpy.ndarray
        Shaped like ``x``.

    Raises
    ------
    TypeError
        If ``x`` is not a float64 (or wider) numpy array: the book silently
        returns a wrong gradient for integer arrays, and float32/float16
        cannot resolve ``x + 1e-4``.
    """
    _check_perturbable(x)
    return _central_differences(f, x)


def numerical_gradient_2d(f, X):
    """Row-by-row gradient for a batch of points (chapter 4's ``gradient_2d.py``).

    Parameters
    ----------
    f : callable
        Called with one 1-D point (a row of ``X``, perturbed in place) and
        returns one value.
    X : numpy.ndarray of float, (N, D) or (D,)

    Returns
    -------
    numpy.ndarray
        Shaped like ``X``: row n is the gradient of ``f`` at ``X[n]``.
    """
    _check_perturbable(X, "X")
    if X.ndim == 1:
        return _central_differences(f, X)
    if X.ndim != 2:
        raise ValueError(f"X must be 1-D or 2-D (points, dims), got shape {X.shape}")
    grad = np.zeros_like(X)
    for idx, x in enumerate(X):
        grad[idx] = _central_differences(f, x)
    return grad
