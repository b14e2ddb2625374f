"""Compilation settings shared by every numba kernel in fastnum.

All ``@njit`` decorators take their options from here, so the floating-point
contract of the whole library is decided in one place.

``fastmath`` stays off: the numerical gradient must be the book's function
evaluated in IEEE double precision, and fast-math would let LLVM reassociate
sums and drop NaN/inf semantics. Vectorisation comes from writing the hot
loops so that their lanes are independent (see ``kernels/vecmath.py``), not from
relaxing the maths.

``error_model="numpy"`` makes division by zero give inf/nan like numpy does
instead of raising, which also lets LLVM vectorise loops that divide.

``cache=True`` writes the compiled machine code next to the sources (or to
numba's user cache directory when that is read-only), so only the very first
call on a machine pays the compile time.
"""

from numba import njit
from numba.core.registry import CPUDispatcher

FASTMATH = False

NJIT_OPTIONS = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy", no_cfunc_wrapper=True)
"""Options for serial kernels called from Python (the workers). No C-callable wrapper: nothing takes a
kernel's C address, and numba would compile one per kernel."""

HELPER_NJIT_OPTIONS = dict(NJIT_OPTIONS, no_cpython_wrapper=True)
"""Options for the functions only kernels call (``compiled_helper``): no CPython wrapper either.

A wrapper unboxes every argument from Python objects (a NamedTuple of a dozen
arrays is pages of LLVM code) and was most of a small helper's compile time,
paid once per helper although no Python code calls it. The machine code the
kernels run is the same with or without it."""

PARALLEL_NJIT_OPTIONS = dict(NJIT_OPTIONS, parallel=True)
"""Options for kernels with a ``prange`` loop."""

H = 1e-4
"""The book's finite-difference step."""

LOG_EPS = 1e-7
"""The constant the book adds inside ``log`` in ``cross_entropy_error``."""

BN_EPS = 10e-7
"""The constant the book's ``BatchNormalization`` adds to the variance."""

BN_MOMENTUM = 0.9
"""The book's running-statistics momentum: ``running = 0.9 running + 0.1 batch``."""


class _HelperDispatcher(CPUDispatcher):
    """numba's CPU dispatcher for a function without a Python entry point: a Python call raises."""

    def __call__(self, *args, **kwargs):
        raise TypeError(f"{self.py_func.__module__}.{self.py_func.__qualname__} is compiled for fastnum's kernels "
                        "only and has no Python entry point; its Python source is .py_func")


def compiled_helper(function=None, *, inline="never"):
    """``@njit(**HELPER_NJIT_OPTIONS)`` for a function only other kernels call.

    It has no Python entry point (``HELPER_NJIT_OPTIONS``): calling it from
    Python raises ``TypeError`` instead of jumping into a function without its
    wrapper; its Python source is ``.py_func``. ``inline`` is numba's.
    """
    if function is None:
        return lambda f: compiled_helper(f, inline=inline)
    dispatcher = njit(inline=inline, **HELPER_NJIT_OPTIONS)(function)
    if isinstance(dispatcher, CPUDispatcher):  # not with NUMBA_DISABLE_JIT=1: then it is the Python function
        dispatcher.__class__ = _HelperDispatcher  # the same object layout: only __call__ differs
    return dispatcher
