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
("Concurrent access has been detected"). fastnum's kernels run on fastnum's
own threads (``fastnum._workers``), never on numba's threading layer, so two
threads on two networks run side by side on every platform (a test forces
the workqueue layer to check it).
"""

import functools
import threading


def serialised(method):
    """Run ``method`` holding the network's lock."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class ThreadSafeNetwork:
    """Base of every network facade: a lock of its own, and copies (``copy.deepcopy``, pickle)
    that get a new lock and leave the reusable buffers behind.

    ``_lock`` is made in ``__new__``, so subclasses' constructors need not
    call anything, and unpickling (which calls ``__new__`` too) gets one.
    """

    _BUFFER_ATTRIBUTES = ("_drivers",)
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
