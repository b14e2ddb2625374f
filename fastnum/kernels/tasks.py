"""Tasks handed out one at a time to whichever thread is free (dynamic scheduling).

numba's ``prange`` gives each thread a fixed, contiguous share of the
iterations. When tasks differ in cost, or one thread starts late (a thread
that slept between parallel regions takes tens of microseconds to wake on a
virtual machine; on a busy machine it may wait for a core), the region waits
for the slowest share. Here each thread instead runs a worker loop that takes
the next task number from a shared counter with an atomic fetch-and-add, so a
late or slow thread just takes fewer tasks::

    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(numba.get_num_threads()):
        task = next_task(counter)
        while task < n_tasks:
            ...  # task writes only its own outputs
            task = next_task(counter)

Every task computes the same numbers whichever thread runs it, so results do
not depend on the number of threads or on the schedule. If the workers happen
to run one after another on one thread, the first takes every task and the
others find none: there is nothing to wait for, so nothing can deadlock.

numba does not see the atomic write: do not read the counter after the loop
in the same function (it may fold the read to the value stored before).
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def next_task(typingctx, counter):
    """Atomically ``counter[0] += 1``; returns the value before (the task this thread takes).

    ``counter`` is a 1-D int64 array; only its first element is used.
    """
    if not (isinstance(counter, types.Array) and counter.ndim == 1 and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.atomic_rmw("add", data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen
