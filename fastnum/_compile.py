"""Compiling what a training run needs, in two processes at once, the first time on a machine.

numba compiles one kernel at a time, and most of that time is numba's own
work (with LLVM's optimisation off it takes 80% as long), so a cold start
of ``fastnum train`` spends 15 s or more compiling on one core while the
other idles. When the kernels a run needs are not in numba's on-disk cache,
``compile_in_parallel`` hands about half of them to a child process
(``python -m fastnum._compile``) and compiles the rest itself; both write
numba's cache, so the calls that follow load everything from it. When the
cache is warm it does nothing: loading takes a fraction of a second, less
than starting a process.

Kernels are compiled by the types of the arguments the facade passes them
(``TwoLayerNet._*_call(s)``), on a two-sample batch, so the machine code is
the one the real calls use.
"""

import argparse
import os
import subprocess
import sys

import numba
import numpy as np

from .registry import kind_of, with_params

SPLITS = {
    "numerical": (("prepare", "forward", "accuracy"), ("perturb", "loss")),
    "numerical-full": (("full",), ("forward", "loss", "accuracy")),
    "backprop": (("forward", "loss", "accuracy"), ("backprop",)),
}
"""Per gradient kind: (the kernels this process compiles, those the child compiles),
balanced by their measured compile times. ("accuracy" is the softmax over a chunk's logits; the
chunk's forward pass is "forward", the kernel of the loss after each step.)"""


def _calls(network, x_dtype, names):
    """The kernels ``names`` of a training run, with arguments of the types the facade gives them
    (built only for the names asked for: each builds its buffers). ``x_dtype``: the images' dtype,
    which every kernel reading images keeps (float32 for load_mnist's)."""
    x = np.zeros((2, network.input_size), dtype=x_dtype)
    labels = np.zeros(2, dtype=np.int64)
    params = network._params()
    builders = {
        "forward": lambda: network._loss_calls(x, labels, params)[0],
        "loss": lambda: network._loss_calls(x, labels, params)[1],
        "accuracy": lambda: network._softmax_call(np.zeros((2, network.output_size))),
        "prepare": lambda: network._incremental_calls(x, labels, params, network._incremental_grads(params))[0],
        "perturb": lambda: network._incremental_calls(x, labels, params, network._incremental_grads(params))[1],
        "full": lambda: network._full_call(x, labels, params, [np.empty_like(p) for p in params]),
        "backprop": lambda: network._backprop_calls(x, labels, params, [np.empty_like(p) for p in params])[1],
    }
    return {name: builders[name]() for name in names}


def _compile(calls, names):
    for name in names:
        kernel, args = calls[name]
        kernel.compile(tuple(numba.typeof(arg) for arg in args))


def _is_cached(kernel):
    """Whether numba's cache holds machine code for ``kernel`` (its index file exists)."""
    try:
        return os.path.exists(kernel._cache._cache_file._index_path)
    except AttributeError:  # another numba's internals: assume cached, compile in this process
        return True


def _two_layer_network(sizes, activation):
    """A ``TwoLayerNet`` of these sizes holding zeros (the kernels compile by types, not values)."""
    n_in, n_hidden, n_out = sizes
    shapes = {"W1": (n_in, n_hidden), "b1": (n_hidden,), "W2": (n_hidden, n_out), "b2": (n_out,)}
    spec = {"network": "TwoLayerNet", "hidden": [n_hidden], "activation": activation}
    return with_params(spec, {name: np.zeros(shape) for name, shape in shapes.items()})


class CompileJob:
    """The child's share of a run's kernels compiling in another process; ``finish`` does the rest."""

    def __init__(self, gradient, child):
        self.gradient = gradient
        self.child = child

    def finish(self, network, x_dtype):
        """Compile this process's share (by the types ``network``'s calls use), then wait for the child."""
        try:
            mine = SPLITS[self.gradient][0]
            _compile(_calls(network, x_dtype, mine), mine)
            self.child.wait()
        finally:
            self.cancel()

    def cancel(self):
        """Stop the child if it still runs (an interrupted or failed start: do not leave it compiling)."""
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()


def start_compiling(gradient, sizes, activation, x_dtype):
    """Start the child's share of the kernels a two-layer run of ``gradient`` needs, if any is not cached.

    Returns a ``CompileJob``, or None when numba's cache holds every kernel
    (loading them takes a fraction of a second, less than starting a
    process). The CLI calls it before loading the data, so that the child's
    start and its share overlap the loading.
    """
    mine, theirs = SPLITS[gradient]
    calls = _calls(_two_layer_network(sizes, activation), x_dtype, mine + theirs)
    if all(_is_cached(calls[name][0]) for name in mine + theirs):
        return None
    child = subprocess.Popen(
        [sys.executable, "-m", "fastnum._compile", gradient, *(str(n) for n in sizes), activation,
         np.dtype(x_dtype).name],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return CompileJob(gradient, child)


def compile_in_parallel(network, gradient, x_dtype):
    """Compile the kernels a run of ``gradient`` needs, half in a child process, when not cached.

    Returns whether a child process was used. Any failure of the child only
    means this process compiles those kernels itself on first call.
    """
    if kind_of(network).name != "TwoLayerNet":  # the other networks' kernels compile on first call
        return False
    job = start_compiling(gradient, (network.input_size, network.hidden_size, network.output_size),
                          network.activation, x_dtype)
    if job is None:
        return False
    job.finish(network, x_dtype)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description="compile the child's share of a run's kernels (internal)")
    parser.add_argument("gradient", choices=tuple(SPLITS))
    parser.add_argument("sizes", nargs=3, type=int)
    parser.add_argument("activation")
    parser.add_argument("x_dtype")
    args = parser.parse_args(argv)
    network = _two_layer_network(args.sizes, args.activation)
    theirs = SPLITS[args.gradient][1]
    _compile(_calls(network, np.dtype(args.x_dtype), theirs), theirs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
