"""Input checks shared by the public API.

Every check runs before anything is computed or changed, and every failure
names the argument and what is wrong with it.
"""

import numpy as np

PARAM_NAMES = ("W1", "b1", "W2", "b2")


UNLABELLED = object()
"""The default ``t`` of the facades' ``_inputs``: the call takes no labels (``predict``). A ``t`` of
None from a caller is refused like any other ``t`` that is not an array of labels."""


def as_flag(value, name):
    """``value`` as a bool, for a yes/no option: True or False, numpy's bools and the integers 0 and 1;
    anything else is a ``TypeError`` naming the option (``"False"`` is a true string, not False)."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def _real_array(value, name):
    if type(value) is np.ndarray and value.dtype in (np.float64, np.float32):
        return value  # the common case, without numpy's slower dtype tests
    if value is None:
        raise TypeError(f"{name} must be an array of real numbers, got None")
    array = np.asarray(value)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    return array


def as_batch(x, n_in, keep_float32=False):
    """``x`` as a C-ordered float64 (B, n_in) array; 1-D ``x`` is one sample.

    With ``keep_float32``, float32 input stays float32 (the kernels then
    widen each value to float64 as they read it, exactly as ``np.dot`` does),
    which spares a float64 copy of a whole data set.

    Returns the array and whether the input was 1-D.
    """
    x = _real_array(x, "x")
    single = x.ndim == 1
    if single:
        x = x.reshape(1, -1)
    if x.ndim != 2:
        raise ValueError(
            f"x must be 2-D (batch, {n_in}) or 1-D ({n_in},), got shape {x.shape}; "
            "images from load_mnist(flatten=False) must be reshaped to (batch, 784)"
        )
    if x.shape[1] != n_in:
        raise ValueError(f"x has {x.shape[1]} features per sample, the network expects {n_in}")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch (0 samples)")
    dtype = np.float32 if keep_float32 and x.dtype == np.float32 else np.float64
    x = np.ascontiguousarray(x, dtype=dtype)
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"x contains NaN or inf (first at sample {bad[0]}, feature {bad[1]})")
    return x, single


def as_labels(t, n_samples, n_out, single=False):
    """Class indices (int64, shape (B,)) from one-hot rows or class indices.

    Class indices may also come as a (B, 1) column, as the book's
    ``SoftmaxWithLoss`` takes them (``ch07/gradient_check.py``).
    """
    t = _real_array(t, "t")
    if single and t.ndim in (0, 1) and (t.ndim == 0 or t.shape[0] == n_out):
        t = t.reshape(1, -1) if t.ndim == 1 else t.reshape(1)
    if t.ndim == 2 and t.shape == (n_samples, 1) and n_out > 1:
        t = t.reshape(n_samples)
    if t.ndim == 2:
        if t.shape != (n_samples, n_out):
            raise ValueError(
                f"one-hot t must have shape ({n_samples}, {n_out}) to match x, got {t.shape}"
            )
        ones = t == 1
        valid_rows = ((t == 0) | ones).all(axis=1) & (ones.sum(axis=1) == 1)
        if not valid_rows.all():
            row = int(np.flatnonzero(~valid_rows)[0])
            raise ValueError(
                f"t is 2-D but row {row} is not one-hot (exactly one 1, the rest 0): {t[row]}"
            )
        return np.argmax(t, axis=1).astype(np.int64)
    if t.ndim != 1:
        raise ValueError(f"t must be class indices (B,) or one-hot rows (B, {n_out}), got shape {t.shape}")
    if t.shape[0] != n_samples:
        raise ValueError(f"t has {t.shape[0]} labels but x has {n_samples} samples")
    if not np.issubdtype(t.dtype, np.integer):
        if not np.isfinite(t).all() or (t != np.round(t)).any():
            raise ValueError("t as class indices must hold whole numbers")
    labels = t.astype(np.int64)
    if labels.min() < 0 or labels.max() >= n_out:
        bad = labels[(labels < 0) | (labels >= n_out)][0]
        raise ValueError(f"label {bad} in t is outside [0, {n_out})")
    return labels


def as_named_params(params, expected):
    """``params[name]`` for every name of ``expected`` (name -> shape), as C-ordered float64, checked:
    present, real, of the expected shape, finite. Arrays that already are C-ordered float64 are
    returned as they are (no copy); the kernels only read them."""
    arrays = {}
    for name, shape in expected.items():
        if name not in params:
            raise KeyError(f"params has no {name!r}; it needs {', '.join(expected)}")
        array = _real_array(params[name], f"params[{name!r}]")
        if array.shape != shape:
            raise ValueError(f"params[{name!r}] has shape {array.shape}, expected {shape}")
        array = np.ascontiguousarray(array, dtype=np.float64)
        if not np.isfinite(array).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            raise ValueError(
                f"params[{name!r}] contains NaN or inf (first at index {bad}); "
                "every gradient of it would be NaN"
            )
        arrays[name] = array
    return arrays


def as_params(params, n_in, n_hidden, n_out):
    """The two-layer net's four parameter arrays (``as_named_params``), in ``PARAM_NAMES`` order."""
    expected = {"W1": (n_in, n_hidden), "b1": (n_hidden,), "W2": (n_hidden, n_out), "b2": (n_out,)}
    arrays = as_named_params(params, expected)
    return [arrays[name] for name in PARAM_NAMES]


def as_images(x, input_dim):
    """``x`` as C-ordered float64 images (N, *input_dim), checked: shape, non-empty, finite.

    Flat images of the right size get a hint (``reshape`` or
    ``load_mnist(flatten=False)``).
    """
    x = _real_array(x, "x")
    want = tuple(input_dim)
    if x.ndim != 4 or x.shape[1:] != want:
        hint = (f"; flat images need x.reshape(-1, {', '.join(map(str, want))}) "
                "(or load_mnist(flatten=False))") if x.ndim == 2 and x.shape[1] == int(np.prod(want)) else ""
        raise ValueError(f"x must be images (N, {', '.join(map(str, want))}), got shape {x.shape}{hint}")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch (0 samples)")
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    return x
