"""Fused multiply-adds across ``LANES`` side-by-side networks, as one vector operation.

A buffer row of ``LANES`` float64s holds one quantity (a hidden unit's
pre-activation, say) of ``LANES`` networks that are evaluated together.
numba leaves LLVM's SLP vectoriser off, and LLVM unrolls a loop of a constant
eight iterations before its loop vectoriser sees it, so an eight-lane loop
written in Python ends up as eight scalar instructions. ``fma_lanes`` writes
the vector operation out instead: ``<LANES x double>`` loads, broadcasts,
``llvm.fma`` and a store, which LLVM lowers to two AVX2 or one AVX-512
instruction each. Each lane is the same IEEE fused multiply-add that
``vecmath.fma`` computes on scalars.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LANES = 8
"""Networks evaluated side by side (the width of every lane row)."""

_VECTOR = ir.VectorType(ir.DoubleType(), LANES)


def _is_lane_row(t):
    return isinstance(t, types.Array) and t.ndim == 1 and t.layout == "C" and t.dtype == types.float64


def _lane_row_pointer(context, builder, array_type, array):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(data, _VECTOR.as_pointer())


@intrinsic
def max_lanes(typingctx, dst, src):
    """``dst[:LANES] = src if src > dst else dst`` lane by lane (NaN in ``src`` is passed over,
    as in a scalar running maximum written with ``>``)."""
    if not (_is_lane_row(dst) and _is_lane_row(src)):
        return None

    def codegen(context, builder, signature, args):
        target = _lane_row_pointer(context, builder, signature.args[0], args[0])
        current = builder.load(target, align=8)
        candidate = builder.load(_lane_row_pointer(context, builder, signature.args[1], args[1]), align=8)
        builder.store(builder.select(builder.fcmp_ordered(">", candidate, current), candidate, current), target,
                      align=8)
        return context.get_dummy_value()

    return types.void(dst, src), codegen


@intrinsic
def fma_lanes(typingctx, dst, a, b):
    """``dst[:LANES] = a * b + dst[:LANES]`` lane by lane, one rounding each.

    ``dst`` is a C-ordered float64 row of at least ``LANES`` entries; ``a``
    and ``b`` are each such a row or a float64 scalar (used in every lane).
    Bounds are the caller's: rows must hold ``LANES`` entries.
    """
    if not _is_lane_row(dst) or not all(_is_lane_row(t) or t == types.float64 for t in (a, b)):
        return None

    def codegen(context, builder, signature, args):
        def operand(value_type, value):
            if isinstance(value_type, types.Array):
                return builder.load(_lane_row_pointer(context, builder, value_type, value), align=8)
            lanes = builder.insert_element(ir.Constant(_VECTOR, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(lanes, lanes, ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))

        target = _lane_row_pointer(context, builder, signature.args[0], args[0])
        fma = builder.module.declare_intrinsic(f"llvm.fma.v{LANES}f64", fnty=ir.FunctionType(_VECTOR, [_VECTOR] * 3))
        total = builder.call(fma, [operand(signature.args[1], args[1]), operand(signature.args[2], args[2]),
                                   builder.load(target, align=8)])
        builder.store(total, target, align=8)
        return context.get_dummy_value()

    return types.void(dst, a, b), codegen
