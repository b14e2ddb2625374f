"""Tasks handed out one at a time to whichever thread is free, and the waits between phases.

fastnum's kernels are serial, ``nogil`` functions ("workers") that several
threads run at once (``fastnum._workers.run_parallel``): each thread loops,
taking the next task number from a shared counter with an atomic
fetch-and-add, so a thread that starts late (a helper thread wakes tens of
microseconds after the call starts; on a busy machine it may wait for a
core) or is slow just takes fewer tasks::

    task = take(counters, TASKS)
    while task < n_tasks:
        ...                       # the task writes only its own outputs
        finish(counters, DONE)
        task = take(counters, TASKS)
    wait_for(counters, DONE, n_tasks)   # every task finished, by whichever thread

``counters`` is one int64 array per call, all zeros at the start: one slot
per phase for the next task, one for the tasks finished, and ``ABORT``. A
phase that reads what an earlier phase wrote starts after ``wait_for`` on the
earlier phase's finished count: ``finish`` is a release and ``wait_for`` an
acquire, so every write of a finished task is visible to every thread that
passed the wait. Every task computes the same numbers whichever thread runs
it, so results do not depend on the number of threads or on the schedule. A
thread that finds no task left never waits for a task no thread has taken,
so a helper that never starts holds nothing up, and one thread alone runs
every task in turn.

``wait_for`` spins (with the processor's pause hint): the waits are for
tasks already running, microseconds. It also returns when ``ABORT`` is set,
which ``run_parallel`` does when a thread failed, so that no thread spins
forever on a task that will never finish.
"""

from llvmlite import binding, ir
from numba import types
from numba.extending import intrinsic

ABORT = 0
"""Slot of ``counters`` that ``run_parallel`` sets when a thread failed: waits end at once."""

_TRIPLE = binding.get_process_triple()


def _counter_pointer(context, builder, signature, args):
    array = context.make_array(signature.args[0])(context, builder, args[0])
    index = args[1]
    if index.type.width < 64:
        index = builder.sext(index, ir.IntType(64))
    return builder.gep(array.data, [index])


def _is_counters(counters, index):
    return (isinstance(counters, types.Array) and counters.ndim == 1 and counters.dtype == types.int64
            and isinstance(index, types.Integer))


@intrinsic
def take(typingctx, counters, index):
    """Atomically ``counters[index] += 1``; returns the value before (the task this thread takes)."""
    if not _is_counters(counters, index):
        return None

    def codegen(context, builder, signature, args):
        pointer = _counter_pointer(context, builder, signature, args)
        return builder.atomic_rmw("add", pointer, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counters, index), codegen


@intrinsic
def finish(typingctx, counters, index):
    """Atomically ``counters[index] += 1`` after a task's writes (release: they are visible to any
    thread whose ``wait_for`` sees the new count); returns the value before."""
    if not _is_counters(counters, index):
        return None

    def codegen(context, builder, signature, args):
        pointer = _counter_pointer(context, builder, signature, args)
        return builder.atomic_rmw("add", pointer, ir.Constant(ir.IntType(64), 1), "acq_rel")

    return types.int64(counters, index), codegen


def _emit_pause(builder):
    """The processor's spin-loop hint: ``pause`` on x86, ``yield`` on Arm, nothing elsewhere."""
    if _TRIPLE.startswith(("x86_64", "i386", "i686")):
        hint = builder.module.globals.get("llvm.x86.sse2.pause")
        if hint is None:
            hint = ir.Function(builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
        builder.call(hint, [])
    elif _TRIPLE.startswith(("aarch64", "arm64")):
        hint = builder.module.globals.get("llvm.aarch64.hint")
        if hint is None:
            hint = ir.Function(builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(32)]), "llvm.aarch64.hint")
        builder.call(hint, [ir.Constant(ir.IntType(32), 1)])  # YIELD


@intrinsic
def wait_for(typingctx, counters, index, count):
    """Spin until ``counters[index] >= count`` (read with acquire ordering), or ``counters[ABORT]``
    is set; the processor's spin-loop hint between reads."""
    if not (_is_counters(counters, index) and isinstance(count, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        int64 = ir.IntType(64)
        pointer = _counter_pointer(context, builder, signature, args)
        abort = builder.gep(context.make_array(signature.args[0])(context, builder, args[0]).data,
                            [ir.Constant(int64, ABORT)])
        target = args[2] if args[2].type.width == 64 else builder.sext(args[2], int64)
        loop = builder.append_basic_block("wait_for.loop")
        done = builder.append_basic_block("wait_for.done")
        builder.branch(loop)
        builder.position_at_end(loop)
        below = builder.icmp_signed("<", builder.load_atomic(pointer, "acquire", 8), target)
        running = builder.icmp_signed("==", builder.load_atomic(abort, "acquire", 8), ir.Constant(int64, 0))
        keep_waiting = builder.and_(below, running)
        with builder.if_then(keep_waiting):
            _emit_pause(builder)
        builder.cbranch(keep_waiting, loop, done)
        builder.position_at_end(done)
        return context.get_dummy_value()

    return types.void(counters, index, count), codegen


@intrinsic
def next_task(typingctx, counter):
    """Atomically ``counter[0] += 1``; returns the value before (``take(counter, 0)``)."""
    if not (isinstance(counter, types.Array) and counter.ndim == 1 and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.atomic_rmw("add", data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen


@intrinsic
def spin_while_equal(typingctx, bell, seen, rounds):
    """Spin until ``bell[0] != seen`` (read with acquire ordering) or ``rounds`` reads have passed;
    returns the last value read. The processor's spin-loop hint between reads."""
    if not (isinstance(bell, types.Array) and bell.ndim == 1 and bell.dtype == types.int64
            and isinstance(seen, types.Integer) and isinstance(rounds, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        int64 = ir.IntType(64)
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        seen_value = args[1] if args[1].type.width == 64 else builder.sext(args[1], int64)
        limit = args[2] if args[2].type.width == 64 else builder.sext(args[2], int64)
        entry = builder.basic_block
        loop = builder.append_basic_block("spin.loop")
        done = builder.append_basic_block("spin.done")
        builder.branch(loop)
        builder.position_at_end(loop)
        count = builder.phi(int64)
        count.add_incoming(ir.Constant(int64, 0), entry)
        value = builder.load_atomic(data, "acquire", 8)
        keep = builder.and_(builder.icmp_signed("==", value, seen_value), builder.icmp_signed("<", count, limit))
        with builder.if_then(keep):
            _emit_pause(builder)
        count.add_incoming(builder.add(count, ir.Constant(int64, 1)), builder.basic_block)
        builder.cbranch(keep, loop, done)
        builder.position_at_end(done)
        return value

    return types.int64(bell, seen, rounds), codegen
