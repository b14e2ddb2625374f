"""The book's parameter files (``save_params`` / ``load_params``): a pickled dict of numpy arrays.

Reading goes through an unpickler that builds numpy arrays, dicts and
nothing else, so a file that names any other class (which could run code)
is refused without running it; what it holds is then checked against the
network (``fastnum.registry.checked_params``) before ``params`` change.
"""

import pickle

import numpy as np


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and nothing else: a pickle that names any other class
    (which could run code) is refused instead of loaded."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"), ("collections", "OrderedDict"),
        ("_codecs", "encode"),  # protocol 2 writes bytes as str.encode calls: a pure conversion
    }
    """What numpy arrays pickle to (protocols 2 to 5; numpy 1 and 2 module names)."""

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it names {module}.{name}, which is not part of a parameter file "
                                     f"(only numpy arrays in a dict are read)")


def save_param_pickle(params, file_name):
    """Write ``params`` as the book does: a pickled dict of numpy arrays."""
    arrays = {key: np.asarray(value) for key, value in params.items()}
    with open(file_name, "wb") as handle:
        pickle.dump(arrays, handle)


def load_param_pickle(network, file_name):
    """``network.params`` updated with those in ``file_name`` (a new dict; ``network`` is not changed).

    As the book's ``load_params``, a file may hold some of the parameters;
    each one it holds is checked (known key, numpy array of real numbers,
    shape, no NaN or inf). Raises ``ValueError`` naming the file (and the
    key) when it is not a pickled dict of arrays or does not fit.
    """
    from .registry import checked_params

    with open(file_name, "rb") as handle:
        try:
            loaded = _ArraysOnlyUnpickler(handle).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                KeyError, MemoryError) as error:
            raise ValueError(f"{file_name} is not a parameter file: {error}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{file_name} holds a {type(loaded).__name__}, not a dict of parameters")
    if not loaded:
        raise ValueError(f"{file_name} holds no parameters")
    try:
        checked = checked_params(network, loaded, "it", partial=True)
    except ValueError as error:
        raise ValueError(f"{file_name} does not fit this network: {error}") from None
    return {**network.params, **checked}
