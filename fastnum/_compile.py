"""Compiling fastnum's kernels: what a call needs, whether numba's cache holds it, and compiling it
where it costs the user least.

A network's method runs a few compiled workers (``network.kernel_calls(method,
x, labels)`` lists them with their arguments). numba compiles a worker for
the types of its arguments the first time it runs on a machine and keeps the
machine code in its on-disk cache; every later process loads it in a
fraction of a second. This module

* tells whether a call's kernels are ready (compiled in this process, or in
  numba's cache for this machine: ``kernels_ready``);
* compiles a kernel under a lock file of its own (``compile_kernel``), so that
  two processes never compile the same kernel into one cache at once: the
  second waits, then loads what the first wrote;
* splits what a training run needs between this process and a child
  (``start_compiling``: the CLI starts the child before it loads the data),
  so both cores compile;
* compiles in a detached background process (``compile_in_background``)
  while a small first call takes the numpy path (``fastnum._first_run``);
* is ``python -m fastnum._compile``, the child of the two above and the
  worker of ``fastnum.precompile`` (``--serve``).

Kernels compile by the types of the arguments the facade gives them, on a
two-sample probe batch of a network holding zeros, so the machine code is
the one the real calls use.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

import numba
import numpy as np

RUN_METHODS = {
    "numerical": ("numerical_gradient", "loss", "accuracy"),
    "numerical-full": ("numerical_gradient_full", "loss", "accuracy"),
    "backprop": ("gradient", "loss", "accuracy"),
}
"""The methods a training run of each gradient kind calls, whose kernels ``fit`` compiles first."""

LOCK_TIMEOUT_S = 900
"""How long a process waits for another one compiling the same kernel."""

_READY = set()
"""(kernel, signature) pairs known compiled in this process or cached on disk."""


def signature_of(args):
    """numba's types of a call's arguments: what a kernel compiles for."""
    return tuple(numba.typeof(arg) for arg in args)


def kernel_ready(kernel, signature):
    """Whether ``kernel`` is compiled for ``signature`` in this process, or numba's cache holds it for
    this machine (the index key numba itself looks up: signature, CPU and code hashes)."""
    if (kernel, signature) in _READY:
        return True
    if signature in kernel.overloads:
        _READY.add((kernel, signature))
        return True
    try:
        cache = kernel._cache
        key = cache._index_key(signature, kernel.targetctx.codegen())
        cached = key in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 - another numba's internals: count it as not cached
        cached = False
    if cached:
        _READY.add((kernel, signature))
    return cached


def kernels_loaded(calls):
    """Whether every kernel of ``calls`` is compiled or loaded in this process for its arguments."""
    return all(signature_of(args) in kernel.overloads for kernel, args in calls)


def kernels_ready(calls):
    """Whether every (kernel, arguments) pair of ``calls`` is ready (``kernel_ready``)."""
    return all(kernel_ready(kernel, signature_of(args)) for kernel, args in calls)


def _lock_path(kernel, signature):
    """A lock file beside the kernel's cache entry, one per kernel and signature."""
    try:
        folder = kernel._cache.cache_path
    except AttributeError:
        folder = None
    if not folder or not os.access(folder, os.W_OK):
        import tempfile

        folder = tempfile.gettempdir()
    digest = hashlib.sha256(f"{kernel.py_func.__module__}.{kernel.__name__}{signature}".encode()).hexdigest()[:16]
    return os.path.join(folder, f"fastnum-compile-{kernel.__name__}-{digest}.lock")


def _make_cache_folder(kernel):
    """The folder of the kernel's cache entries (and lock files), when it has one and it can be made."""
    folder = getattr(getattr(kernel, "_cache", None), "cache_path", None)
    if folder:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            pass


def _discard_unreadable_index(kernel):
    """Remove ``kernel``'s cache index when it cannot be read; returns whether it did.

    numba unpickles an index before it checks whether the index is stale
    (its source stamp), and it reads the index both to load a kernel and to
    save one. An index written by an earlier fastnum whose argument types
    name a class since moved or renamed (a NamedTuple of a kernel's
    arguments), in a file of the same name (the kernel's name and first
    line), fails with ``AttributeError`` instead of counting as stale: the
    first call after an upgrade would crash. A stale index is what numba
    overwrites anyway, so removing an unreadable one loses nothing.
    """
    try:
        cache_file = kernel._cache._cache_file
        index_path = cache_file._index_path
    except AttributeError:  # no cache (NUMBA_DISABLE_JIT), or another numba's internals
        return False
    try:
        cache_file._load_index()
        return False
    except Exception:  # noqa: BLE001 - whatever it names is gone: the index can only be stale
        try:
            os.remove(index_path)
        except OSError:
            return False
        return True


_INDEXES_CHECKED = []
"""Holds True once this process has looked for unreadable indexes (``discard_unreadable_indexes``)."""


def discard_unreadable_indexes():
    """Once per process, before its first compile or load: remove every unreadable cache index of
    fastnum's compiled functions, workers and helpers alike (``_discard_unreadable_index``); a helper's
    index is read whenever a worker that calls it compiles. Returns how many it removed."""
    if _INDEXES_CHECKED:
        return 0
    _INDEXES_CHECKED.append(True)
    from numba.core.dispatcher import Dispatcher

    seen, removed = set(), 0
    for name, module in list(sys.modules.items()):
        if name != "fastnum" and not name.startswith("fastnum."):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and id(value) not in seen:
                seen.add(id(value))
                removed += _discard_unreadable_index(value)
    return removed


def compile_kernel(kernel, signature, timeout=LOCK_TIMEOUT_S):
    """Compile (or load) ``kernel`` for ``signature``, holding its lock file: a process that finds
    another compiling it waits (up to ``timeout`` seconds; then ``filelock.Timeout``), then loads the
    cache entry that one wrote. Indexes numba cannot read are removed first (``discard_unreadable_indexes``)."""
    if signature in kernel.overloads:
        return
    import filelock

    discard_unreadable_indexes()
    _make_cache_folder(kernel)
    with filelock.FileLock(_lock_path(kernel, signature), timeout=timeout):
        kernel.compile(signature)
    _READY.add((kernel, signature))


def compile_calls(calls, on_compiled=None):
    """Compile every kernel of ``calls`` that is not compiled in this process (each once)."""
    seen = set()
    for kernel, args in calls:
        signature = signature_of(args)
        if (kernel, signature) in seen:
            continue
        seen.add((kernel, signature))
        compile_kernel(kernel, signature)
        if on_compiled is not None:
            on_compiled(kernel, signature)


@dataclass(frozen=True)
class CompileRequest:
    """What a child process needs to rebuild a call's kernels: a network (its spec and sizes), the
    methods and the images' dtype."""

    spec: dict
    n_in: int
    n_out: int
    methods: tuple
    x_dtype: str

    def to_json(self):
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        return cls(data["spec"], data["n_in"], data["n_out"], tuple(data["methods"]), data["x_dtype"])

    @classmethod
    def of(cls, network, methods, x_dtype):
        from .registry import kind_of

        kind_of(network)  # a fastnum network
        n_in = int(np.prod(network.sample_shape))
        return cls(network.spec(), n_in, int(network.output_size), tuple(methods), np.dtype(x_dtype).name)

    def probe_network(self):
        """A network of the request's spec and sizes holding zeros (kernels compile by types)."""
        from .registry import build

        saved = np.random.get_state()
        try:
            network = build(self.spec, self.n_in, self.n_out)
        finally:
            np.random.set_state(saved)
        network.params = {key: np.zeros(shape) for key, shape in network.param_shapes().items()}
        return network

    def calls(self):
        """The (kernel, arguments) pairs of every method, deduplicated, in order."""
        network = self.probe_network()
        x = np.zeros((2,) + tuple(network.sample_shape), dtype=self.x_dtype)
        labels = np.zeros(2, dtype=np.int64)
        calls, seen = [], set()
        for method in self.methods:
            for kernel, args in network.kernel_calls(method, x, labels):
                key = (kernel, signature_of(args))
                if key not in seen:
                    seen.add(key)
                    calls.append((kernel, args))
        return calls


def compile_unclaimed(calls):
    """Compile, in order, each kernel of ``calls`` that no other process is compiling (its lock file
    taken without waiting), skipping the others: two processes running this over one list share it as a
    queue, each taking the next kernel nobody has taken. Returns the calls skipped."""
    import filelock

    skipped = []
    for kernel, args in calls:
        try:
            compile_kernel(kernel, signature_of(args), timeout=0)  # or load: the other may have just finished it
        except filelock.Timeout:
            skipped.append((kernel, args))
    return skipped


def _child_command(request, indices, background=False, shared=False):
    command = [sys.executable, "-m", "fastnum._compile", request.to_json(), ",".join(map(str, indices))]
    return command + (["--background"] if background else []) + (["--shared"] if shared else [])


class CompileJob:
    """A run's kernels compiling here and in a child process, which share them as a queue
    (``compile_unclaimed``); ``finish`` does this process's part and loads the rest."""

    def __init__(self, request, pending, child):
        self.request = request
        self.pending = pending
        self.child = child

    def finish(self, network=None, x_dtype=None):
        """Compile what the child has not taken, wait for the child, then load what it compiled."""
        try:
            if compile_unclaimed(self.pending) and self.child is not None:
                self.child.wait()  # it is compiling what was skipped here
            compile_calls(self.pending)  # the child's kernels, from the cache (or compiled, had it failed)
        finally:
            self.cancel()

    def cancel(self):
        """Stop the child if it still runs (an interrupted or failed start: do not leave it compiling)."""
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait()


def start_compiling(request):
    """Start compiling what ``request``'s methods need that is not cached, in a child process and here
    when ``finish`` is called: both take the kernels in order, each the next one the other has not
    taken, so that a long kernel on one side leaves the others to the other side.

    Returns a ``CompileJob``, or None when everything is ready (loading takes
    a fraction of a second, less than starting a process). The CLI calls it
    before loading the data, so that the child's start and its first kernel
    overlap the loading.
    """
    calls = request.calls()
    pending = [i for i, (kernel, args) in enumerate(calls) if not kernel_ready(kernel, signature_of(args))]
    if not pending:
        return None
    child = None
    if len(pending) > 1:
        child = subprocess.Popen(_child_command(request, pending, shared=True), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    return CompileJob(request, [calls[i] for i in pending], child)


def compile_in_parallel(network, gradient, x_dtype):
    """Compile the kernels a training run of ``gradient`` needs, half in a child process, when not
    cached. Returns whether a child process was used."""
    job = start_compiling(CompileRequest.of(network, RUN_METHODS[gradient], x_dtype))
    if job is None:
        return False
    job.finish()
    return job.child is not None


_BACKGROUND = {}
"""Requests this process has started compiling in the background (one child each)."""


def compile_in_background(request):
    """Compile ``request``'s kernels in a detached process, once per process and request; returns the
    child, or None when one was started already, another is still running (a later call starts this
    one) or nothing is left to compile."""
    key = request.to_json()
    if key in _BACKGROUND or background_running():
        return None  # one at a time: two compiling children and the user's numpy would share two cores
    calls = request.calls()
    pending = [i for i, (kernel, args) in enumerate(calls) if not kernel_ready(kernel, signature_of(args))]
    if not pending:
        _BACKGROUND[key] = None
        return None
    env = dict(os.environ, FASTNUM_FIRST_RUN="compile")
    child = subprocess.Popen(_child_command(request, pending, background=True), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    _BACKGROUND[key] = child
    return child


def background_running():
    """Whether a background compile this process started has not ended yet (``compile_in_background``
    starts the next request's only then)."""
    return any(child is not None and child.poll() is None for child in _BACKGROUND.values())


def serve_command(requests):
    """The command of a process that compiles kernels of ``requests`` as it is told
    (``fastnum.precompile``): it reads a kernel's index (in ``precompiling.calls_of(requests)``) per
    line and answers ``done INDEX SECONDS`` once it is compiled."""
    listed = json.dumps([json.loads(request.to_json()) for request in requests])
    return [sys.executable, "-m", "fastnum._compile", "--serve", listed]


def _serve(requests_json):
    import time

    from .precompiling import calls_of

    requests = [CompileRequest.from_json(json.dumps(item)) for item in json.loads(requests_json)]
    calls = calls_of(requests)
    for line in sys.stdin:
        index = int(line)
        kernel, args, _ = calls[index]
        start = time.perf_counter()
        compile_kernel(kernel, signature_of(args))
        print(f"done {index} {time.perf_counter() - start:.3f}", flush=True)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="compile kernels of a request (fastnum's internal child)")
    parser.add_argument("request", help="CompileRequest as JSON (with --serve: a list of them)")
    parser.add_argument("indices", nargs="?", default="", help="which of the request's calls, comma-separated")
    parser.add_argument("--background", action="store_true", help="lower priority (a user's script runs)")
    parser.add_argument("--serve", action="store_true", help="compile the kernel indices read from stdin")
    parser.add_argument("--shared", action="store_true", help="skip the kernels another process is compiling")
    args = parser.parse_args(argv)
    if args.serve:
        return _serve(args.request)
    if args.background and hasattr(os, "nice"):
        os.nice(5)
    calls = CompileRequest.from_json(args.request).calls()
    chosen = [calls[int(i)] for i in args.indices.split(",") if i]
    if args.shared:  # a CompileJob's child: the kernels its parent has not taken
        compile_unclaimed(chosen)
    else:
        compile_calls(chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
