"""Networks called from several Python threads at once.

A network reuses its buffers from call to call (the kernels write into
preallocated arrays), so two threads inside one network's methods at once
would overwrite each other's intermediate results and get wrong numbers
without a word. Every public method of a network therefore holds that
network's lock (``serialised``): calls on one network run one after the
other, each giving exactly the serial result; calls on different networks
still run side by side. An uncontended lock costs well under a microsecond,
against milliseconds for the cheapest gradient, which is why a lock was
chosen over buffers allocated per call (those would cost an allocation of
every buffer per call, and the memory of one set per thread).

numba's workqueue threading layer, which numba falls back to where neither
TBB nor OpenMP loads (Apple Silicon Macs, some emulated Linux machines),
aborts the whole process when two threads launch parallel kernels at once
("Concurrent access has been detected"). Where it runs, or before numba has
picked its layer, every call into fastnum's kernels is serialised
process-wide as well (``kernel_launches``).
"""

import functools
import threading
from contextlib import nullcontext

_PROCESS_WIDE = threading.RLock()
"""Held around every network method while numba's layer is workqueue or not yet chosen."""

_UNSAFE_LAYERS = ("workqueue",)


def _layer_is_thread_safe():
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # numba picks its layer at the first parallel launch, which may be this one
        return False
    return layer not in _UNSAFE_LAYERS


def kernel_launches():
    """A context holding the process-wide lock where numba's threading layer needs it, else nothing."""
    return nullcontext() if _layer_is_thread_safe() else _PROCESS_WIDE


def serialised(method):
    """Run ``method`` holding the network's lock (and the process-wide one where the layer needs it).

    The process-wide lock is taken first, so that two threads never hold
    the two locks in opposite orders.
    """

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with kernel_launches(), self._lock:
            return method(self, *args, **kwargs)

    return locked


class ThreadSafeNetwork:
    """Base of every network facade: a lock of its own, and copies (``copy.deepcopy``, pickle)
    that get a new lock and leave the reusable buffers behind.

    ``_lock`` is made in ``__new__``, so subclasses' constructors need not
    call anything, and unpickling (which calls ``__new__`` too) gets one.
    """

    _BUFFER_ATTRIBUTES = ("_workspaces", "_drivers")
    """Caches of buffers, rebuilt on first use: not copied."""

    def __new__(cls, *args, **kwargs):
        network = super().__new__(cls)
        network._lock = threading.RLock()
        return network

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_lock", None)
        for name in self._BUFFER_ATTRIBUTES:
            if name in state:
                state[name] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.RLock()
