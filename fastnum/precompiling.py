"""Paying the whole compile up front: ``fastnum compile`` and ``fastnum.precompile``.

    fastnum compile                          # every kernel of every network
    fastnum compile --network two-layer --gradient numerical   # what `fastnum train` needs

    import fastnum
    fastnum.precompile()                     # a notebook's first cell
    fastnum.precompile(net)                  # the kernels of one network

numba compiles a kernel once per machine and keeps it in its on-disk cache
(``NUMBA_CACHE_DIR``); afterwards every process loads it in a fraction of a
second. ``precompile`` compiles what the cache lacks in several processes at
once (one kernel at a time each, the next one handed to whichever process is
free), each kernel under its own lock file (``fastnum._compile``): two
processes never write one cache entry, and a second ``fastnum compile`` waits
for the first and loads what it wrote.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ._compile import RUN_METHODS, CompileRequest, kernel_ready, signature_of


@dataclass(frozen=True)
class KernelRecord:
    """One kernel of a ``precompile``: what it is, whether it was compiled or was cached, how long."""

    label: str
    status: str
    """``"compiled"``, or ``"cached"`` (numba's cache held it already)."""
    seconds: float
    """Seconds its process spent compiling it (0 for a cached one)."""


@dataclass
class CompileReport:
    """What ``precompile`` did: each kernel, the processes it used and the wall-clock seconds."""

    kernels: list = field(default_factory=list)
    processes: int = 0
    seconds: float = 0.0

    @property
    def compiled(self):
        return [k for k in self.kernels if k.status == "compiled"]

    def summary(self):
        """One line: how many kernels, compiled or cached, in how long."""
        n, done = len(self.kernels), len(self.compiled)
        if not n:
            return "no compiled kernels to prepare (these networks' methods run numpy): nothing to do"
        if not done:
            return f"all {n} kernels were compiled already (numba's cache holds them): nothing to do"
        return (f"{n} kernels ready in {self.seconds:.1f} s: {done} compiled with {self.processes} "
                f"process{'es' if self.processes > 1 else ''}, {n - done} already cached")

    def table(self):
        """A line per kernel: its label, status and compile seconds, slowest first."""
        rows = sorted(self.kernels, key=lambda k: -k.seconds)
        width = max((len(k.label) for k in rows), default=10)
        return "\n".join(f"{k.label:{width}s}  {k.status:8s}  {k.seconds:6.1f} s" for k in rows)


def requests_for(networks=None, gradient=None):
    """The ``CompileRequest``s of every kernel of the named network kinds (default all).

    Parameters
    ----------
    networks : iterable of str, optional
        Kind names or ``fastnum train --network`` names (``"two-layer"``,
        ``"TwoLayerNet"``, ...); default every kind in ``fastnum.registry``.
    gradient : {"numerical", "numerical-full", "backprop"}, optional
        Only the kernels a ``fastnum train`` run of this gradient calls.
    """
    from .registry import CLI_NAMES, KINDS, kind_named

    if gradient is not None and gradient not in RUN_METHODS:
        raise ValueError(f"unknown gradient {gradient!r}: fastnum has {', '.join(RUN_METHODS)}")
    named = networks is not None
    names = list(KINDS) if not named else [CLI_NAMES.get(name, name) for name in networks]
    requests = []
    for name in names:
        cls = kind_named(name).cls
        if gradient is not None and gradient not in cls.GRADIENTS:
            if named:
                raise ValueError(f"{name} has no {gradient} gradient (it has {', '.join(cls.GRADIENTS)})")
            continue
        methods = tuple(cls.COMPILE_SECONDS)
        dtypes = ("float32", "float64") if cls.READS_FLOAT32 else ("float64",)
        if gradient is not None:  # what fastnum train calls, on float32 images where the network reads them
            methods = tuple(m for m in RUN_METHODS[gradient] if m in methods)
            dtypes = dtypes[:1]
        requests += [CompileRequest(dict(spec), 784, 10, methods, dtype)
                     for spec in cls.COMPILE_SPECS for dtype in dtypes if methods]
    return requests


def calls_of(requests):
    """Every distinct (kernel, arguments, label) of ``requests``, in order, and the thread pool's
    spin kernel: the same list in every process, so that an index names one kernel everywhere."""
    calls, seen = [], set()
    for request in requests:
        for kernel, args in request.calls():
            key = (kernel, signature_of(args))
            if key not in seen:
                seen.add(key)
                module = kernel.py_func.__module__.removeprefix("fastnum.")
                label = f"{module}.{kernel.__name__} ({request.spec['network']}, {_dtype_note(args)})"
                calls.append((kernel, args, label))
    if calls:  # every parallel call starts the pool, whose idle helpers spin in a kernel of their own
        from ._workers import _spin

        calls.append((_spin, (np.zeros(1, dtype=np.int64), 0, 1), "_workers._spin (the thread pool's idle wait)"))
    return calls


def _dtype_note(args):
    floats32 = any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in args)
    return "float32 images" if floats32 else "float64"


class _Worker:
    """A ``python -m fastnum._compile --serve`` process: it compiles the kernel index it is sent and
    answers ``done INDEX SECONDS``."""

    def __init__(self, requests):
        from ._compile import serve_command

        self.log = tempfile.TemporaryFile("w+")
        env = dict(os.environ, FASTNUM_FIRST_RUN="compile")
        self.process = subprocess.Popen(serve_command(requests), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, env=env, text=True, bufsize=1)

    def compile(self, index):
        self.process.stdin.write(f"{index}\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline().split()
        if len(reply) != 3 or reply[0] != "done" or int(reply[1]) != index:
            raise RuntimeError(f"a compile process ended while compiling kernel {index}: {self._log_tail()}")
        return float(reply[2])

    def _log_tail(self):
        self.process.poll()
        self.log.seek(0)
        lines = [line for line in self.log.read().splitlines() if line.strip()]
        return " | ".join(lines[-3:]) or f"exit status {self.process.returncode}"

    def close(self, at_once=False):
        """End the process: after its current kernel, or ``at_once`` (an interrupted compile: numba
        writes each cache file under a temporary name and renames it, so nothing half-written stays)."""
        try:
            if self.process.poll() is None and not at_once:
                self.process.stdin.close()
                self.process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.log.close()


def precompile(network=None, networks=None, gradient=None, jobs=None, progress=True, write=print):
    """Compile every kernel numba's cache lacks, in parallel processes, with a progress bar.

    Parameters
    ----------
    network : fastnum network, optional
        Compile this network's kernels (every method that has kernels, for
        its own spec and for float32 and float64 images where it reads both).
    networks : iterable of str, optional
        Else the kernels of these kinds (``"two-layer"``, ``"multi-layer"``,
        ``"convnet"``, ``"deep-convnet"`` or the class names); default all.
    gradient : {"numerical", "numerical-full", "backprop"}, optional
        Only the kernels a training run of this gradient calls.
    jobs : int, optional
        Compile processes (default: the machine's cores).
    progress : bool, default True
        Draw a progress bar and say which kernel finished.
    write : callable, default print
        Where the lines go.

    Returns
    -------
    CompileReport
        Every kernel with its status and seconds; ``summary()`` in one line.
    """
    start = time.perf_counter()
    if network is not None:
        from .registry import kind_of

        cls = kind_of(network).cls
        dtypes = ("float32", "float64") if cls.READS_FLOAT32 else ("float64",)
        requests = [CompileRequest.of(network, tuple(cls.COMPILE_SECONDS), dtype) for dtype in dtypes]
        requests = [r for r in requests if r.methods]
    else:
        requests = requests_for(networks, gradient)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1):
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    calls = calls_of(requests)
    report = CompileReport()
    pending = []
    for index, (kernel, args, label) in enumerate(calls):
        if kernel_ready(kernel, signature_of(args)):
            report.kernels.append(KernelRecord(label, "cached", 0.0))
        else:
            pending.append(index)
    if pending:
        report.processes = min(jobs or os.cpu_count() or 1, len(pending))
        _compile_in_workers(requests, calls, pending, report, progress, write)
    report.seconds = time.perf_counter() - start
    return report


def _compile_in_workers(requests, calls, pending, report, progress, write):
    """Hand the ``pending`` kernels, one at a time, to ``report.processes`` worker processes."""
    queue = list(reversed(pending))
    lock = threading.Lock()
    errors = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pending), unit="kernel", desc="compiling", dynamic_ncols=True, file=sys.stderr)
        say = bar.write
    else:
        def say(text):
            return None
    write(f"compiling {len(pending)} kernels for this CPU with {report.processes} processes (once per machine; "
          "later runs load them from numba's cache) ...")
    workers = []

    def serve(worker):
        while True:
            with lock:
                if not queue or errors:
                    return
                index = queue.pop()
            try:
                seconds = worker.compile(index)
            except Exception as error:  # noqa: BLE001 - the parent reports it, the other workers stop
                with lock:
                    errors.append(error)
                return
            with lock:
                label = calls[index][2]
                report.kernels.append(KernelRecord(label, "compiled", seconds))
                if bar is not None:
                    say(f"  {label}: {seconds:.1f} s")
                    bar.update(1)

    finished = False
    try:
        workers = [_Worker(requests) for _ in range(report.processes)]
        threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # Ctrl-C reaches the main thread between waits
        finished = True
    finally:
        with lock:
            queue.clear()
        for worker in workers:
            worker.close(at_once=not finished or bool(errors))
        if bar is not None:
            bar.close()
    if errors:
        raise errors[0]
