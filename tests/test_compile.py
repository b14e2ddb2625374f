"""A cold numba cache: the kernels of a run compile in two processes, and the run then loads them all."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import numpy as np
from fastnum import TwoLayerNet
from fastnum import _compile
np.random.seed(0)
net = TwoLayerNet(20, 3, 4)
used_child = _compile.compile_in_parallel(net, "backprop", np.float64)
x = np.random.rand(5, 20)
t = np.arange(5) % 4
net.gradient(x, t); net.loss(x, t); net.accuracy(x, t)
mine, theirs = _compile.SPLITS["backprop"]
calls = _compile._calls(net, np.float64, mine + theirs)
def loaded(names):
    return all(not calls[name][0].stats.cache_misses and calls[name][0].stats.cache_hits for name in names)
print(used_child, loaded(theirs), loaded(mine + theirs))
"""


def test_cold_cache_compiles_in_two_processes_then_everything_loads(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    first = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr
    # a child compiled its half, which this process then loaded from the cache
    assert first.stdout.split() == ["True", "True", "False"]
    second = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["False", "True", "True"]  # warm: no child, everything loaded
