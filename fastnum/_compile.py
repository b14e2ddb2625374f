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

from .two_layer_net import TwoLayerNet

SPLITS = {
    "numerical": (("prepare", "accuracy"), ("perturb", "forward", "loss")),
    "numerical-full": (("full",), ("forward", "loss", "accuracy")),
    "backprop": (("forward", "loss", "accuracy"), ("backprop",)),
}
"""Per gradient kind: (the kernels this process compiles, those the child compiles),
balanced by their measured compile times."""


def _calls(network, x_dtype):
    """Every kernel a training run may call, with arguments of the types the facade uses."""
    x = np.zeros((2, network.input_size), dtype=np.float64)
    x_eval = np.zeros((2, network.input_size), dtype=x_dtype)
    labels = np.zeros(2, dtype=np.int64)
    params = network._params()
    (forward, forward_args), (loss, loss_args) = network._loss_calls(x, labels, params)
    grads = network._incremental_grads(x, params)
    (prepare, prepare_args), (perturb, perturb_args) = network._incremental_calls(x, labels, params, grads)
    backprop_calls = network._backprop_calls(x, labels, params, [np.empty_like(p) for p in params])
    return {
        "forward": (forward, forward_args),
        "loss": (loss, loss_args),
        "accuracy": network._accuracy_call(x_eval, params, np.empty(2, dtype=np.int64)),
        "prepare": (prepare, prepare_args),
        "perturb": (perturb, perturb_args),
        "full": network._full_call(x, labels, params, np.empty(sum(p.size for p in params))),
        "backprop": backprop_calls[1],
    }


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


def _network(sizes, activation):
    state = np.random.get_state()  # the constructor draws weights: leave the user's stream alone
    try:
        return TwoLayerNet(*sizes, activation=activation)
    finally:
        np.random.set_state(state)


def compile_in_parallel(network, gradient, x_dtype):
    """Compile the kernels a run of ``gradient`` needs, half in a child process, when not cached.

    Returns whether a child process was used. Any failure of the child only
    means this process compiles those kernels itself on first call.
    """
    calls = _calls(_network((network.input_size, network.hidden_size, network.output_size),
                            network.activation), x_dtype)
    mine, theirs = SPLITS[gradient]
    if all(_is_cached(calls[name][0]) for name in mine + theirs):
        return False
    child = subprocess.Popen(
        [sys.executable, "-m", "fastnum._compile", gradient, str(network.input_size), str(network.hidden_size),
         str(network.output_size), network.activation, np.dtype(x_dtype).name],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _compile(calls, mine)
        child.wait()
    finally:
        if child.poll() is None:  # interrupted: do not leave it compiling
            child.kill()
            child.wait()
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description="compile the child's share of a run's kernels (internal)")
    parser.add_argument("gradient", choices=tuple(SPLITS))
    parser.add_argument("sizes", nargs=3, type=int)
    parser.add_argument("activation")
    parser.add_argument("x_dtype")
    args = parser.parse_args(argv)
    calls = _calls(_network(args.sizes, args.activation), np.dtype(args.x_dtype))
    _compile(calls, SPLITS[args.gradient][1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
