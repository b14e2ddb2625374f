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

Every function here is a numba ``intrinsic`` that writes its instructions
(LLVM IR) straight into the caller, one call site at a time: the same
floating-point operations in the same order as the Python-level formulas in
the docstrings, so the same bits, but without numba typing and inlining a
function body at every call site (an ``inline="always"`` njit ``exp`` cost
about 0.15 s of compiling per call site, this about what libm's ``math.exp``
costs, and the loops it sits in run no slower).
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

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

SQRT2 = 1.4142135623730951
TWO54 = 18014398509481984.0  # 2**54, lifts subnormals into the normal range
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
"""fdlibm's minimax coefficients of ``log(1 + f)`` in ``s**2``."""

SMALL_EXP_DOMAIN = 2.0**-7
"""``exp_small(u)`` is accurate to within 1 ulp for ``|u| <= SMALL_EXP_DOMAIN``."""
SMALL_EXP_GUARD = 2.0**-8
"""Callers use ``exp_small`` only where a bound proves ``|u| <= SMALL_EXP_GUARD``,
half the domain, so that rounding in the bound can never matter."""

_EXPM1_SMALL_SERIES = tuple(1.0 / math.factorial(n) for n in range(7, 0, -1))
"""``1/7!, ..., 1/2!, 1``: ``expm1_small``'s coefficients after dividing by u, highest first."""

LOG1P_SMALL_DOMAIN = 2.0**-6 * (1.0 + 2.0**-6)
"""``log1p_small(d)`` is within 1 ulp of ``log1p(d)`` for ``|d| <= LOG1P_SMALL_DOMAIN``."""

_LOG1P_SERIES = tuple((-1.0) ** (n + 1) / n for n in range(10, 0, -1))
"""``-1/10, 1/9, ..., -1/2, 1``: ``log1p_small``'s coefficients after dividing by d, highest first."""

LOG1P_SHORT_DOMAIN = 2.0**-12 * (1.0 + 2.0**-12)
"""``log1p_short(d)`` is within 1 ulp of ``log1p(d)`` for ``|d| <= LOG1P_SHORT_DOMAIN``."""

_LOG1P_SHORT_SERIES = _LOG1P_SERIES[-5:]
"""``1/5, -1/4, 1/3, -1/2, 1``: ``log1p_short``'s coefficients after dividing by d, highest first."""

EXPM1_DIRECT = 0.5
"""Beyond this ``|u|``, ``exp(u) - 1`` loses nothing worth a correction (at most 2 ulps)."""

_EXPM1_SERIES = tuple(1.0 / math.factorial(n) for n in range(15, 0, -1))
"""``1/15!, ..., 1/2!, 1/1!``: expm1's Taylor coefficients after dividing by u, highest first."""


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


_DOUBLE = ir.DoubleType()
_INT64 = ir.IntType(64)


def _constant(value):
    return ir.Constant(_DOUBLE, value)


def _llvm_function(builder, name, return_type, argument_types):
    """The module's declaration of the LLVM intrinsic ``name`` (declared once per module)."""
    function = builder.module.globals.get(name)
    if function is None:
        function = ir.Function(builder.module, ir.FunctionType(return_type, argument_types), name)
    return function


def _emit_horner(builder, coefficients, u):
    """The polynomial with ``coefficients`` (highest degree first) at ``u``, by fused multiply-adds:
    ``p = c0; p = fma(p, u, c_i)`` for each further coefficient."""
    p = _constant(coefficients[0])
    for coefficient in coefficients[1:]:
        p = builder.fma(p, u, _constant(coefficient))
    return p


def _emit_pow2(builder, k):
    """``2.0**k`` for an int64 k in the normal exponent range [-1022, 1023], from the exponent bits."""
    return builder.bitcast(builder.shl(builder.add(k, ir.Constant(_INT64, 1023)), ir.Constant(_INT64, 52)), _DOUBLE)


def _emit_select_max(builder, a, b):
    """numba's ``max(a, b)`` of two floats: ``a if a > b else b``."""
    return builder.select(builder.fcmp_ordered(">", a, b), a, b)


def _emit_select_min(builder, a, b):
    """numba's ``min(a, b)`` of two floats: ``a if a < b else b``."""
    return builder.select(builder.fcmp_ordered("<", a, b), a, b)


def emit_exp(builder, x):
    """The instructions of ``exp(x)`` (see ``exp``)::

        xc = min(max(x, EXP_ARG_MIN), EXP_ARG_MAX)
        kf = floor(xc * LOG2E + 0.5)
        r = (xc - kf * LN2_HI) - kf * LN2_LO
        p = horner(_EXP_TAYLOR, r)
        k = int(kf); k_half = k >> 1
        result = p * 2**k_half * 2**(k - k_half)
        return result if x == x else x
    """
    xc = _emit_select_min(builder, _emit_select_max(builder, x, _constant(EXP_ARG_MIN)), _constant(EXP_ARG_MAX))
    floor = _llvm_function(builder, "llvm.floor.f64", _DOUBLE, [_DOUBLE])
    kf = builder.call(floor, [builder.fadd(builder.fmul(xc, _constant(LOG2E)), _constant(0.5))])
    r = builder.fsub(builder.fsub(xc, builder.fmul(kf, _constant(LN2_HI))), builder.fmul(kf, _constant(LN2_LO)))
    p = _emit_horner(builder, _EXP_TAYLOR, r)
    k = builder.fptosi(kf, _INT64)
    k_half = builder.ashr(k, ir.Constant(_INT64, 1))
    result = builder.fmul(builder.fmul(p, _emit_pow2(builder, k_half)), _emit_pow2(builder, builder.sub(k, k_half)))
    return builder.select(builder.fcmp_ordered("==", x, x), result, x)


def emit_log(builder, x):
    """The instructions of ``log(x)`` (see ``log``)."""
    subnormal = builder.fcmp_ordered("<", x, _constant(2.2250738585072014e-308))
    xs = builder.select(subnormal, builder.fmul(x, _constant(TWO54)), x)
    bits = builder.bitcast(xs, _INT64)
    exponent = builder.and_(builder.ashr(bits, ir.Constant(_INT64, 52)), ir.Constant(_INT64, 0x7FF))
    k = builder.sub(builder.sub(exponent, ir.Constant(_INT64, 1023)),
                    builder.select(subnormal, ir.Constant(_INT64, 54), ir.Constant(_INT64, 0)))
    mantissa = builder.or_(builder.and_(bits, ir.Constant(_INT64, 0x000FFFFFFFFFFFFF)),
                           ir.Constant(_INT64, 0x3FF0000000000000))
    m = builder.bitcast(mantissa, _DOUBLE)  # in [1, 2)
    big = builder.fcmp_ordered(">", m, _constant(SQRT2))
    m = builder.select(big, builder.fmul(m, _constant(0.5)), m)
    k = builder.select(big, builder.add(k, ir.Constant(_INT64, 1)), k)
    f = builder.fsub(m, _constant(1.0))
    s = builder.fdiv(f, builder.fadd(_constant(2.0), f))
    z = builder.fmul(s, s)
    w = builder.fmul(z, z)
    t1 = builder.fmul(w, builder.fma(w, builder.fma(w, _constant(_LG6), _constant(_LG4)), _constant(_LG2)))
    t2 = builder.fmul(z, builder.fma(w, builder.fma(w, builder.fma(w, _constant(_LG7), _constant(_LG5)),
                                                    _constant(_LG3)), _constant(_LG1)))
    r = builder.fadd(t2, t1)
    hfsq = builder.fmul(builder.fmul(_constant(0.5), f), f)
    dk = builder.sitofp(k, _DOUBLE)
    inner = builder.fsub(builder.fsub(hfsq, builder.fadd(builder.fmul(s, builder.fadd(hfsq, r)),
                                                         builder.fmul(dk, _constant(LN2_LO)))), f)
    result = builder.fsub(builder.fmul(dk, _constant(LN2_HI)), inner)
    # the special cases, as selects so that the loop stays vectorisable
    result = builder.select(builder.fcmp_ordered("==", x, _constant(0.0)), _constant(-np.inf), result)
    result = builder.select(builder.fcmp_ordered("<", x, _constant(0.0)), _constant(np.nan), result)
    special = builder.or_(builder.fcmp_ordered("==", x, _constant(np.inf)), builder.fcmp_unordered("uno", x, x))
    return builder.select(special, x, result)


def emit_expm1(builder, u):
    """The instructions of ``expm1(u)``: both ways computed, the right one selected (see ``expm1``)."""
    direct = builder.fsub(emit_exp(builder, u), _constant(1.0))
    series = builder.fmul(_emit_horner(builder, _EXPM1_SERIES, u), u)
    fabs = _llvm_function(builder, "llvm.fabs.f64", _DOUBLE, [_DOUBLE])
    far = builder.fcmp_ordered(">", builder.call(fabs, [u]), _constant(EXPM1_DIRECT))
    return builder.select(far, direct, series)


def _float64_intrinsic(emit, doc):
    """A numba intrinsic of one float64 argument whose instructions ``emit(builder, x)`` writes."""

    def typer(typingctx, x):
        if x != types.float64:
            return None

        def codegen(context, builder, signature, args):
            return emit(builder, args[0])

        return types.float64(types.float64), codegen

    typer.__doc__ = doc
    return intrinsic(typer)


exp = _float64_intrinsic(emit_exp, """``e**x`` in float64, within 1 ulp of the correctly rounded value; vectorisable.

    NaN propagates, ``-inf`` gives 0 and ``+inf`` gives inf, as in libm.
    The instructions: ``emit_exp``.
    """)


log = _float64_intrinsic(emit_log, """Natural logarithm in float64, within 1 ulp; vectorisable.

    fdlibm's ``e_log.c``: ``x = 2**k (1 + f)``, ``s = f / (2 + f)``, its
    polynomial in ``s**2``; ``log(0) = -inf``, negative or NaN gives NaN,
    ``log(inf) = inf``, as in libm. The instructions: ``emit_log``.
    """)

exp_small = _float64_intrinsic(lambda builder, u: _emit_horner(builder, _EXP_SMALL_TAYLOR, u),
                               """``e**u`` for ``|u| <= 2**-7``: the same algorithm as ``exp`` with no reduction.

    ``exp`` reduces its argument to ``|r| <= ln2 / 2`` and needs degree 13
    there; on ``|u| <= 2**-7`` the degree-6 Taylor polynomial already has a
    truncation error ``|u|**7 / 7!`` below 4e-19, three hundred times under
    half an ulp of the result. Outside that domain use ``exp``.
    """)

log1p_small = _float64_intrinsic(lambda builder, d: builder.fmul(_emit_horner(builder, _LOG1P_SERIES, d), d),
                                 """``log(1 + d)`` for ``|d| <= 2**-6 (1 + 2**-6)``: its Taylor series, no division.

    The series ``d - d**2/2 + d**3/3 - ...`` cut after the ``d**10`` term has a
    remainder below ``|d|**11 / 11 / (1 - |d|)``, under ``2**-63 |d|`` on
    that domain: far below half an ulp of the result (about ``|d|``). Horner
    with fused multiply-adds, times d; callers use it only where a bound
    proves the domain, else ``log``.
    """)

log1p_short = _float64_intrinsic(lambda builder, d: builder.fmul(_emit_horner(builder, _LOG1P_SHORT_SERIES, d), d),
                                 """``log(1 + d)`` for ``|d| <= 2**-12 (1 + 2**-12)``: the series cut after d**5.

    The remainder is below ``|d|**6 / 6 / (1 - |d|)``, under ``2**-62 |d|`` on
    that domain: far below half an ulp of the result. Half the fused
    multiply-adds of ``log1p_small``, for callers whose bound proves the
    smaller domain.
    """)

expm1_small = _float64_intrinsic(lambda builder, u: builder.fmul(_emit_horner(builder, _EXPM1_SMALL_SERIES, u), u),
                                 """``e**u - 1`` for ``|u| <= 2**-7``, without the cancellation of ``exp(u) - 1``.

    ``u * (1 + u/2 + u**2/6 + ... + u**6/7!)``: the Taylor series of expm1 cut
    after its ``u**7`` term, whose remainder ``|u|**8 / 8!`` is below ``2**-64 |u|``
    on that domain, far under half an ulp of the result (about ``|u|``).
    """)

expm1 = _float64_intrinsic(emit_expm1, """``e**u - 1`` for any float64 ``u``, within a few ulps; vectorisable.

    For ``|u| <= EXPM1_DIRECT`` its Taylor series cut after ``u**15``, whose
    remainder is below ``|u| 0.5**15 / 16! < 2**-59 |u|`` (Horner with fused
    multiply-adds, no cancellation: every term has the sign pattern of
    ``u``'s powers); beyond, ``exp(u) - 1`` directly, where
    ``|e**u - 1| >= 0.39`` keeps the subtraction's cancellation below 2 ulps.
    Both are computed and the right one selected, so the loop stays
    branch-free.
    """)
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
