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

FASTMATH = False

NJIT_OPTIONS = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")
"""Options for serial kernels."""

PARALLEL_NJIT_OPTIONS = dict(NJIT_OPTIONS, parallel=True)
"""Options for kernels with a ``prange`` loop."""

H = 1e-4
"""The book's finite-difference step."""

LOG_EPS = 1e-7
"""The constant the book adds inside ``log`` in ``cross_entropy_error``."""
