"""Networks shared between Python threads: every result equals the serial one, for every family,
and numba's workqueue threading layer (Apple Silicon's) survives two threads at once."""

import copy
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import fastnum

ROOT = Path(__file__).resolve().parent.parent


def _images(rng, n, shape):
    x = rng.random((n, *shape))
    x[x < 0.5] = 0.0
    return x


def _two_layer(rng):
    np.random.seed(1)
    net = fastnum.TwoLayerNet(30, 7, 4)
    net.params["W1"] *= 20
    return net, (30,), 4


def _multi_layer(rng):
    np.random.seed(2)
    return fastnum.MultiLayerNet(30, [8, 6], 4), (30,), 4


def _batch_norm(rng):
    np.random.seed(3)
    return fastnum.MultiLayerNetExtend(30, [8, 6], 4, use_batchnorm=True), (30,), 4


def _convnet(rng):
    np.random.seed(4)
    net = fastnum.SimpleConvNet((1, 8, 8), {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}, 5, 4)
    return net, (1, 8, 8), 4


FAMILIES = {"TwoLayerNet": _two_layer, "MultiLayerNet": _multi_layer, "MultiLayerNetExtend batch norm": _batch_norm,
            "SimpleConvNet": _convnet}


def _methods(net):
    """Every method whose result must not depend on other threads' calls (batch norm's running
    statistics move with training-mode calls, so evaluation-mode methods are left out there)."""
    calls = {"numerical_gradient": lambda x, t: net.numerical_gradient(x, t),
             "gradient": lambda x, t: net.gradient(x, t)}
    if not getattr(net, "use_batchnorm", False):
        calls.update(predict=lambda x, t: {"y": net.predict(x)}, loss=lambda x, t: {"l": np.array(net.loss(x, t))},
                     accuracy=lambda x, t: {"a": np.array(net.accuracy(x, t))})
    return calls


@pytest.mark.parametrize("family", FAMILIES)
def test_two_threads_on_one_network_get_the_serial_results(family, rng):
    net, shape, n_out = FAMILIES[family](rng)
    batches = [(_images(rng, 6, shape), rng.integers(0, n_out, 6)) for _ in range(4)]  # one size: shared buffers
    methods = _methods(net)
    serial = {(name, k): call(*batches[k]) for name, call in methods.items() for k in range(len(batches))}
    results, errors = {}, []

    def work(k):
        try:
            for repeat in range(3):
                for name, call in methods.items():
                    results[(name, k, repeat)] = call(*batches[k])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for (name, k, repeat), got in results.items():
        for key in got:
            assert np.array_equal(got[key], serial[(name, k)][key]), (name, k, repeat, key)


def test_copies_get_a_lock_of_their_own_and_no_buffers(rng):
    net, _, _ = _two_layer(rng)
    x, t = _images(rng, 4, (30,)), np.arange(4) % 4
    expected = net.numerical_gradient(x, t)
    for twin in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert twin._lock is not net._lock and twin._drivers == {}
        got = twin.numerical_gradient(x, t)
        for key in expected:
            assert np.array_equal(got[key], expected[key])


WORKQUEUE_SCRIPT = """
import threading, numpy as np, numba, fastnum
numba.set_num_threads(2)  # starts numba's threading layer: the forced workqueue
nets = []
for seed in (1, 2):
    np.random.seed(seed)
    nets.append(fastnum.MultiLayerNet(20, [6, 5], 3))
x = np.random.rand(6, 20); t = np.arange(6) % 3
serial = [net.numerical_gradient(x, t) for net in nets]
same = []
def work(k):
    for _ in range(15):
        got = nets[k].numerical_gradient(x, t)
        same.append(all(np.array_equal(got[key], serial[k][key]) for key in got))
threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
[thread.start() for thread in threads]; [thread.join() for thread in threads]
print(numba.threading_layer(), len(same), all(same))
"""


def test_two_threads_on_two_networks_survive_the_workqueue_layer():
    """numba's workqueue layer ends the process when two threads launch its parallel kernels at once
    ("Concurrent access"); fastnum's kernels run on fastnum's own threads, so it never sees them."""
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    done = subprocess.run([sys.executable, "-c", WORKQUEUE_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["workqueue", "30", "True"]
