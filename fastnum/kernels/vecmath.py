"""``exp`` and ``log`` that LLVM can vectorise, accurate to 1 ulp.

numba lowers ``math.exp`` and ``math.log`` to calls into libm, and a loop that
calls a function cannot be vectorised (numba's SIMD maths library, SVML,
needs an Intel-patched LLVM that the PyPI wheels do not ship). The
perturbed-loss loops spend most of their time in ``exp``, so this module
provides both functions made only of arithmetic that inlines into those
loops.

``exp``:

* Cody-Waite range reduction ``x = k ln2 + r`` with ``|r| <= ln2 / 2``, using
  fdlibm's split of ln2 so that ``k * LN2_HI`` is exact;
* ``exp(r)`` by its degree-13 Taylor polynomial, whose truncation error
  ``|r|**14 / 14!`` is below 5e-18 on that interval, far under half an ulp,
  evaluated with fused multiply-adds (one rounding per step);
* scaling by ``2**k`` built directly from the exponent bits, in two halves
  so that subnormal results come out right.

A table-driven variant (Tang's, 128 entries, degree 5) measured no faster
here: the gathers cost what the shorter polynomial saves.

``log`` is fdlibm's algorithm (``e_log.c``): ``x = 2**k * (1 + f)`` with
``1 + f`` in [sqrt(2)/2, sqrt(2)), ``s = f / (2 + f)``, and fdlibm's minimax
polynomial in ``s**2`` for ``log(1 + f)``, with its error below 1 ulp.

These are not approximations of the loss: they are implementations of the
exponential and the logarithm as accurate as libm's (``tests/test_vecmath.py``
checks the error against ``math.exp`` and ``math.log`` over the whole double
range: at most 1 ulp).
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .._config import NJIT_OPTIONS

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # upper bits of ln 2: k * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
EXP_ARG_MIN = -746.0  # below this exp underflows to 0
EXP_ARG_MAX = 710.0  # above this exp overflows to inf

(_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13) = (
    1.0 / math.factorial(n) for n in range(14)
)
_EXP_TAYLOR = (_C13, _C12, _C11, _C10, _C9, _C8, _C7, _C6, _C5, _C4, _C3, _C2, _C1, _C0)
"""exp's Taylor coefficients ``1/13!, ..., 1/1!, 1``, highest first."""
_EXP_SMALL_TAYLOR = _EXP_TAYLOR[-7:]
"""``exp_small``'s: ``1/6!, ..., 1``."""


@intrinsic
def _int64_bits_as_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (no conversion)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _float64_bits_as_int64(typingctx, value):
    """Reinterpret the 64 bits of a float64 as an int64 (no conversion)."""
    if value != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` with a single rounding (the hardware fused multiply-add)."""
    if not (a == b == c == types.float64):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return types.float64(types.float64, types.float64, types.float64), codegen


@njit(inline="always", **NJIT_OPTIONS)
def _horner(coefficients, u):
    """The polynomial with ``coefficients`` (highest degree first) at ``u``, by fused multiply-adds."""
    p = coefficients[0]
    for i in range(1, len(coefficients)):
        p = fma(p, u, coefficients[i])
    return p


@njit(inline="always", **NJIT_OPTIONS)
def _pow2(k):
    """2.0**k for an integer k in the normal exponent range [-1022, 1023]."""
    return _int64_bits_as_float64((k + 1023) << 52)


@njit(inline="always", **NJIT_OPTIONS)
def exp(x):
    """``e**x`` in float64, within 1 ulp of the correctly rounded value; vectorisable.

    NaN propagates, ``-inf`` gives 0 and ``+inf`` gives inf, as in libm.
    """
    xc = min(max(x, EXP_ARG_MIN), EXP_ARG_MAX)
    kf = math.floor(xc * LOG2E + 0.5)
    r = (xc - kf * LN2_HI) - kf * LN2_LO
    p = _horner(_EXP_TAYLOR, r)
    k = int(kf)
    k_half = k >> 1
    result = p * _pow2(k_half) * _pow2(k - k_half)
    # x != x only for NaN: hand it through unchanged, as libm does
    return result if x == x else x


SQRT2 = 1.4142135623730951
TWO54 = 18014398509481984.0  # 2**54, lifts subnormals into the normal range
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01


@njit(inline="always", **NJIT_OPTIONS)
def log(x):
    """Natural logarithm in float64, within 1 ulp; vectorisable.

    ``log(0) = -inf``, negative or NaN gives NaN, ``log(inf) = inf``, as in libm.
    """
    subnormal = x < 2.2250738585072014e-308
    xs = x * TWO54 if subnormal else x
    bits = _float64_bits_as_int64(xs)
    k = ((bits >> 52) & 0x7FF) - 1023 - (54 if subnormal else 0)
    m = _int64_bits_as_float64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)  # in [1, 2)
    big = m > SQRT2
    m = m * 0.5 if big else m
    k = k + 1 if big else k
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * fma(w, fma(w, _LG6, _LG4), _LG2)
    t2 = z * fma(w, fma(w, fma(w, _LG7, _LG5), _LG3), _LG1)
    r = t2 + t1
    hfsq = 0.5 * f * f
    dk = float(k)
    result = dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f)
    # the special cases, as selects so that the loop stays vectorisable
    result = -np.inf if x == 0.0 else result
    result = np.nan if x < 0.0 else result
    result = x if (x == np.inf or x != x) else result
    return result


SMALL_EXP_DOMAIN = 2.0**-7
"""``exp_small(u)`` is accurate to within 1 ulp for ``|u| <= SMALL_EXP_DOMAIN``."""
SMALL_EXP_GUARD = 2.0**-8
"""Callers use ``exp_small`` only where a bound proves ``|u| <= SMALL_EXP_GUARD``,
half the domain, so that rounding in the bound can never matter."""


@njit(inline="always", **NJIT_OPTIONS)
def exp_small(u):
    """``e**u`` for ``|u| <= 2**-7``: the same algorithm as ``exp`` with no reduction.

    ``exp`` reduces its argument to ``|r| <= ln2 / 2`` and needs degree 13
    there; on ``|u| <= 2**-7`` the degree-6 Taylor polynomial already has a
    truncation error ``|u|**7 / 7!`` below 4e-19, three hundred times under
    half an ulp of the result. Outside that domain use ``exp``.
    """
    return _horner(_EXP_SMALL_TAYLOR, u)


_EXPM1_SMALL_SERIES = tuple(1.0 / math.factorial(n) for n in range(7, 0, -1))
"""``1/7!, ..., 1/2!, 1``: ``expm1_small``'s coefficients after dividing by u, highest first."""

LOG1P_SMALL_DOMAIN = 2.0**-6 * (1.0 + 2.0**-6)
"""``log1p_small(d)`` is within 1 ulp of ``log1p(d)`` for ``|d| <= LOG1P_SMALL_DOMAIN``."""

_LOG1P_SERIES = tuple((-1.0) ** (n + 1) / n for n in range(10, 0, -1))
"""``-1/10, 1/9, ..., -1/2, 1``: ``log1p_small``'s coefficients after dividing by d, highest first."""


@njit(inline="always", **NJIT_OPTIONS)
def log1p_small(d):
    """``log(1 + d)`` for ``|d| <= 2**-6 (1 + 2**-6)``: its Taylor series, no division.

    The series ``d - d**2/2 + d**3/3 - ...`` cut after the ``d**10`` term has a
    remainder below ``|d|**11 / 11 / (1 - |d|)``, under ``2**-63 |d|`` on
    that domain: far below half an ulp of the result (about ``|d|``). Horner
    with fused multiply-adds; callers use it only where a bound proves the
    domain, else ``log``.
    """
    return _horner(_LOG1P_SERIES, d) * d


@njit(inline="always", **NJIT_OPTIONS)
def expm1_small(u):
    """``e**u - 1`` for ``|u| <= 2**-7``, without the cancellation of ``exp(u) - 1``.

    ``u * (1 + u/2 + u**2/6 + ... + u**6/7!)``: the Taylor series of expm1 cut
    after its ``u**7`` term, whose remainder ``|u|**8 / 8!`` is below ``2**-64 |u|``
    on that domain, far under half an ulp of the result (about ``|u|``).
    """
    return _horner(_EXPM1_SMALL_SERIES, u) * u


EXPM1_DIRECT = 0.5
"""Beyond this ``|u|``, ``exp(u) - 1`` loses nothing worth a correction (at most 2 ulps)."""

_EXPM1_SERIES = tuple(1.0 / math.factorial(n) for n in range(15, 0, -1))
"""``1/15!, ..., 1/2!, 1/1!``: expm1's Taylor coefficients after dividing by u, highest first."""


@njit(inline="always", **NJIT_OPTIONS)
def expm1(u):
    """``e**u - 1`` for any float64 ``u``, within a few ulps; vectorisable.

    For ``|u| <= EXPM1_DIRECT`` its Taylor series cut after ``u**15``, whose
    remainder is below ``|u| 0.5**15 / 16! < 2**-59 |u|`` (Horner with fused
    multiply-adds, no cancellation: every term has the sign pattern of
    ``u``'s powers); beyond, ``exp(u) - 1`` directly, where
    ``|e**u - 1| >= 0.39`` keeps the subtraction's cancellation below 2 ulps.
    Both are computed and the right one selected, so the loop stays
    branch-free.
    """
    return exp(u) - 1.0 if abs(u) > EXPM1_DIRECT else _horner(_EXPM1_SERIES, u) * u


@intrinsic
def add_rows4(typingctx, dst, i, src, k):
    """``dst[i, :4] += src[k, :4]`` as one 4-wide vector add.

    ``dst`` and ``src`` are C-ordered 2-D float64 arrays of 4 columns. LLVM
    does not vectorise four scalar adds through two computed row addresses
    (it cannot rule out that the rows overlap), so the vector load, add and
    store are written out here; each lane is the same IEEE addition.
    """
    if not all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" and a.dtype == types.float64
               for a in (dst, src)) or not all(isinstance(n, types.Integer) for n in (i, k)):
        return None

    def codegen(context, builder, signature, args):
        vector = ir.VectorType(ir.DoubleType(), 4)

        def row(array_type, array, index):
            data = context.make_array(array_type)(context, builder, array).data
            offset = builder.mul(builder.sext(index, ir.IntType(64)) if index.type.width < 64 else index,
                                 ir.Constant(ir.IntType(64), 4))
            return builder.bitcast(builder.gep(data, [offset]), vector.as_pointer())

        target = row(signature.args[0], args[0], args[1])
        source = row(signature.args[2], args[2], args[3])
        builder.store(builder.fadd(builder.load(target, align=8), builder.load(source, align=8)), target, align=8)
        return context.get_dummy_value()

    return types.void(dst, i, src, k), codegen
