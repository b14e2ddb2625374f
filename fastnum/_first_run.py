"""A call on a machine whose numba cache lacks the kernels it needs: compile now, or numpy meanwhile.

numba compiles a kernel the first time it runs on a machine, and keeps the
machine code in its on-disk cache; compiling takes seconds (a new Colab
session, a CI run, the first run after an upgrade), loading it a fraction of
one. For a call so small that plain numpy computes it sooner than numba
compiles its kernels (the book's gradient checks: one to three images), the
facade takes the numpy path (``fastnum.layers``: the same numbers within
rounding, held to the same tests) and starts compiling the kernels in a
background process for the next call and the next run
(``fastnum._compile.compile_in_background``). The choice is made from what
is cached and what the call would cost, never from the answer.

``FASTNUM_FIRST_RUN=compile`` (or ``compile_now()``, which ``fit`` and
``fastnum compile`` use) always compiles instead; ``FASTNUM_BACKGROUND_COMPILE=0``
takes the numpy path without starting a background compile.
"""

import os
import threading
import time
from contextlib import contextmanager

POLICY_ENV = "FASTNUM_FIRST_RUN"
"""``auto`` (default): numpy for small calls while the kernels are not cached; ``compile``: compile first."""
BACKGROUND_ENV = "FASTNUM_BACKGROUND_COMPILE"
"""``0`` keeps the numpy path from starting a background compile."""

NUMPY_FLOPS_PER_SECOND = {"numerical_gradient": 1e9, "forward": 1e10}
"""What the numpy paths are assumed to do: a numerical gradient's many small products, a forward
pass's few large ones (BLAS). Estimates of the time a numpy path takes, not of its answer."""

_STATE = threading.local()


def policy():
    """``auto`` or ``compile`` (from ``FASTNUM_FIRST_RUN``; anything else counts as ``auto``)."""
    if getattr(_STATE, "forced", 0):
        return "compile"
    return "compile" if os.environ.get(POLICY_ENV, "auto").strip().lower() == "compile" else "auto"


@contextmanager
def compile_now():
    """Within this block every call compiles (or loads) its kernels instead of taking the numpy path."""
    _STATE.forced = getattr(_STATE, "forced", 0) + 1
    try:
        yield
    finally:
        _STATE.forced -= 1


def background_allowed():
    return os.environ.get(BACKGROUND_ENV, "1").strip() != "0"


_READY_METHODS = set()
"""(network class, spec, method, x dtype, sample shape) whose kernels this process knows ready."""
_NOT_READY_SINCE = {}
"""The same keys -> when their kernels were last found not ready (a background compile may end soon)."""
RECHECK_S = 0.5
"""How often a numpy-path call looks again whether its kernels are ready."""
_NUMPY_SECONDS = {}
"""The same keys -> the estimated seconds their numpy path has taken in this process: once the next call
would pass what compiling (or loading) costs, the kernels are compiled (or loaded) instead."""
LOAD_SECONDS = 0.5
"""About what loading cached machine code costs a process that has loaded none (numba's start-up)."""
NUMPY_CALL_SECONDS = 1e-4
"""What any numpy-path call costs besides its arithmetic (numpy's and Python's overheads)."""


_BLAS_LIMIT = []
"""The BLAS thread limit held while a background compile runs (``_leave_a_core``), at most one."""


def _leave_a_core():
    """While a background compile runs, numpy's BLAS gets one thread fewer than the machine's cores:
    OpenBLAS's threads spin while they wait, and with the compiling child on one of two cores a
    numpy-path step took 10 ms instead of 4 (2 BLAS threads against 1, measured)."""
    cores = os.cpu_count() or 1
    if _BLAS_LIMIT or cores < 2:
        return
    try:
        from threadpoolctl import ThreadpoolController

        _BLAS_LIMIT.append(ThreadpoolController().limit(limits=cores - 1, user_api="blas"))
    except Exception:  # a BLAS threadpoolctl cannot steer only costs speed
        pass


def _restore_blas_threads():
    """Give BLAS its threads back once no background compile runs."""
    from ._compile import background_running

    if _BLAS_LIMIT and not background_running():
        _BLAS_LIMIT.pop().restore_original_limits()


def numpy_path(network, method, x, labels):
    """Whether ``network.method`` on ``x`` takes the numpy path; when it does not, its kernels are
    compiled (or loaded) here first, under their lock files (``_compile.compile_calls``).

    The numpy path is taken when the policy allows it and either the call's
    kernels (``network.kernel_calls``) are not in numba's cache and the numpy
    path's time (``network.numpy_seconds(method, n, x)``, added up over this
    process's numpy calls of the method) stays below what compiling them
    costs (``network.COMPILE_SECONDS[method]``): then the kernels compile in a
    background process for the next call (``compile_in_background``); or they
    are cached but not loaded here and numpy costs less than loading them
    (``LOAD_SECONDS``). Past those costs the next call compiles or loads,
    unless a background compile this process started is still running
    (one runs at a time): compiling in the foreground beside it would not
    finish sooner, so numpy goes on until it ends. A loop of small calls pays at
    most about twice the cheaper of the two.
    """
    if _BLAS_LIMIT:
        _restore_blas_threads()
    # every call of a training loop comes through here: the key is repr of the spec (the same spec gives
    # the same text in one process), and the imports wait until the kernels are not known ready
    key = (type(network), repr(network.spec()), method, x.dtype.str, x.shape[1:])
    if key in _READY_METHODS:
        return False
    from ._compile import CompileRequest, background_running, compile_in_background, kernels_loaded, kernels_ready
    seconds = network.numpy_seconds(method, x.shape[0], x) + NUMPY_CALL_SECONDS
    spent = _NUMPY_SECONDS.get(key, 0.0)  # what the numpy path has cost so far: rent, then buy
    allowed = policy() != "compile"
    # while a background compile of this process runs, compiling in the foreground beside it would
    # bring the kernels no sooner (the two would share the cores): numpy goes on meanwhile
    renting = allowed and (spent + seconds < network.COMPILE_SECONDS.get(method, 0.0) or background_running())
    now = time.monotonic()
    if renting and now - _NOT_READY_SINCE.get(key, -RECHECK_S) < RECHECK_S:
        _NUMPY_SECONDS[key] = spent + seconds
        return True  # found not ready a moment ago: numpy again, without reading the cache's index
    calls = network.kernel_calls(method, x[:2], None if labels is None else labels[:2])  # the types
    if kernels_ready(calls):
        if allowed and not kernels_loaded(calls) and spent + seconds < LOAD_SECONDS:
            _NUMPY_SECONDS[key] = spent + seconds
            return True  # cached, but loading machine code into this process costs more than numpy
    elif renting:
        _NOT_READY_SINCE[key] = now
        _NUMPY_SECONDS[key] = spent + seconds
        if background_allowed() and compile_in_background(CompileRequest.of(network, (method,), x.dtype)):
            _leave_a_core()
        return True
    _compile_for_call(network, method, x, calls)
    _READY_METHODS.add(key)
    return False


def _compile_for_call(network, method, x, calls):
    """Compile (or load) a call's kernels before it runs, saying so when that takes long; with a second
    core, every other kernel still to compile in a child process (``_compile.start_compiling``)."""
    from ._compile import CompileRequest, compile_calls, start_compiling
    from .progress import first_call_notice

    with first_call_notice(f"{type(network).__name__}.{method}"):
        if (os.cpu_count() or 1) >= 2:
            job = start_compiling(CompileRequest.of(network, (method,), x.dtype))  # None when all are cached
            if job is not None:
                job.finish()
        compile_calls(calls)
