"""What every network's forward pass shares: the hidden activations, the list of an input row's
nonzero entries, and the affine map of a row over that list (zero inputs add nothing to a
product, and are skipped)."""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .._config import compiled_helper
from .vecmath import emit_exp

ACTIVATIONS = ("sigmoid", "relu")
"""Hidden-layer activations by name; the kernels take ``relu`` as a bool (False: sigmoid)."""


@intrinsic
def hidden_activation(typingctx, a, relu):
    """sigmoid(a) = 1 / (1 + exp(-a)), or ``a if a > 0 else 0`` when ``relu`` (a bool).

    Written as LLVM instructions at each call site (``vecmath.emit_exp`` for
    the exponential), a branch on ``relu``: no numba typing of a function
    body per call site.
    """
    if a != types.float64 or relu != types.boolean:
        return None

    def codegen(context, builder, signature, args):
        value, is_relu = args
        double = ir.DoubleType()
        zero, one = ir.Constant(double, 0.0), ir.Constant(double, 1.0)
        with builder.if_else(is_relu) as (then, otherwise):
            with then:
                rectified = builder.select(builder.fcmp_ordered(">", value, zero), value, zero)
                relu_block = builder.block
            with otherwise:
                sigmoid = builder.fdiv(one, builder.fadd(one, emit_exp(builder, builder.fneg(value))))
                sigmoid_block = builder.block
        result = builder.phi(double)
        result.add_incoming(rectified, relu_block)
        result.add_incoming(sigmoid, sigmoid_block)
        return result

    return types.float64(types.float64, types.boolean), codegen


@compiled_helper
def nonzero_pixels(x_row, nonzero_idx):
    """Indices of the nonzero entries of ``x_row`` into ``nonzero_idx``; returns their count.

    Branch-free (every index is written, the count advances only past
    nonzeros): MNIST's zero and nonzero pixels alternate unpredictably, and a
    branch per pixel costs more in mispredictions than the products skipped.
    (A function of its own, not ``inline="always"``: inlined, numba typed its
    count as the literal 0 at the call site and compiled every caller's
    callee a second time for that type.)
    """
    count = 0
    for i in range(x_row.shape[0]):
        nonzero_idx[count] = i
        count += x_row[i] != 0.0
    return count


@compiled_helper
def affine_row_sparse(in_row, nonzero_idx, n_nonzero, W, bias_row, out):
    """``out = in_row @ W + bias_row`` over the listed nonzero inputs, in input order."""
    n_out = out.shape[0]
    for j in range(n_out):
        out[j] = 0.0
    p = 0
    # four inputs per pass over the row: each out[j] still adds its products in input order
    # (the same sum, bit for bit), but is loaded and stored a quarter as often
    while p + 4 <= n_nonzero:
        i0 = nonzero_idx[p]
        i1 = nonzero_idx[p + 1]
        i2 = nonzero_idx[p + 2]
        i3 = nonzero_idx[p + 3]
        x0 = in_row[i0]
        x1 = in_row[i1]
        x2 = in_row[i2]
        x3 = in_row[i3]
        w0 = W[i0]
        w1 = W[i1]
        w2 = W[i2]
        w3 = W[i3]
        for j in range(n_out):
            acc = out[j]
            acc += x0 * w0[j]
            acc += x1 * w1[j]
            acc += x2 * w2[j]
            acc += x3 * w3[j]
            out[j] = acc
        p += 4
    while p < n_nonzero:
        i = nonzero_idx[p]
        xv = in_row[i]
        for j in range(n_out):
            out[j] += xv * W[i, j]
        p += 1
    for j in range(n_out):
        out[j] += bias_row[j]
