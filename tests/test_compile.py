"""Compiling: a cold cache compiles a run's kernels in two processes, a kernel compiles under its own
lock, numba's cache tells what is ready, and a small first call takes the numpy path while the
kernels compile in the background (``fastnum._compile``, ``fastnum._first_run``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(script, cache, **env):
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(cache), **env)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


TWO_PROCESSES = """
import json, numpy as np
from fastnum import TwoLayerNet, _compile
np.random.seed(0)
net = TwoLayerNet(20, 3, 4)
used_child = _compile.compile_in_parallel(net, "backprop", np.float64)
x = np.random.rand(5, 20); t = np.arange(5) % 4
net.gradient(x, t); net.loss(x, t); net.accuracy(x, t)
request = _compile.CompileRequest.of(net, _compile.RUN_METHODS["backprop"], np.float64)
calls = request.calls()
print(json.dumps({"used_child": used_child, "kernels": [k.__name__ for k, _ in calls],
                  "loaded": [bool(k.stats.cache_hits) and not k.stats.cache_misses for k, _ in calls]}))
"""


def test_cold_cache_compiles_in_two_processes_then_everything_loads(tmp_path):
    first = _run(TWO_PROCESSES, tmp_path / "cache")
    assert first["kernels"] == ["sample_pass_worker", "backprop_worker"]
    # this process compiled the first, the child the second, which this process then loaded
    assert first["used_child"] and first["loaded"] == [False, True]
    second = _run(TWO_PROCESSES, tmp_path / "cache")
    assert not second["used_child"] and second["loaded"] == [True, True]  # warm: no child, all loaded


READY = """
import json, numpy as np
from fastnum import TwoLayerNet, _compile
net = TwoLayerNet(8, 3, 2)
calls = net.kernel_calls("loss", np.zeros((2, 8)), np.zeros(2, dtype=np.int64))
before = _compile.kernels_ready(calls)
_compile.compile_calls(calls)
print(json.dumps({"before": before, "after": _compile.kernels_ready(calls),
                  "compiled": [bool(k.stats.cache_misses) for k, _ in calls]}))
"""


def test_readiness_is_what_numbas_cache_holds_for_this_machine(tmp_path):
    cold = _run(READY, tmp_path / "cache")
    assert cold == {"before": False, "after": True, "compiled": [True]}
    warm = _run(READY, tmp_path / "cache")
    assert warm == {"before": True, "after": True, "compiled": [False]}  # loaded, not compiled


TAKE_TURNS = """
import json, sys, time, numpy as np, filelock
from fastnum import TwoLayerNet, _compile
net = TwoLayerNet(8, 3, 2)
(kernel, args), = net.kernel_calls("loss", np.zeros((2, 8)), np.zeros(2, dtype=np.int64))
signature = _compile.signature_of(args)
if sys.argv[1] == "holder":
    lock = filelock.FileLock(_compile._lock_path(kernel, signature))
    lock.acquire()
    print("holding", flush=True)
    kernel.compile(signature)  # compiles and writes the cache while holding the lock
    time.sleep(1.0)
    lock.release()
    print(json.dumps({"compiled": bool(kernel.stats.cache_misses)}))
else:
    started = time.perf_counter()
    _compile.compile_kernel(kernel, signature)
    print(json.dumps({"waited": time.perf_counter() - started, "compiled": bool(kernel.stats.cache_misses),
                      "loaded": bool(kernel.stats.cache_hits)}))
"""


def test_a_second_process_waits_for_the_kernel_another_compiles_then_loads_it(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    holder = subprocess.Popen([sys.executable, "-c", TAKE_TURNS, "holder"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    waiter = subprocess.run([sys.executable, "-c", TAKE_TURNS, "waiter"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    out, err = holder.communicate(timeout=600)
    assert holder.returncode == 0 and waiter.returncode == 0, err + waiter.stderr
    assert json.loads(out.strip().splitlines()[-1]) == {"compiled": True}
    result = json.loads(waiter.stdout.strip().splitlines()[-1])
    assert result["loaded"] and not result["compiled"]  # it did not compile the kernel a second time


FIRST_CALLS = """
import json, numpy as np, numba
import fastnum, fastnum.ch05
from fastnum import _compile
rng = np.random.default_rng(0)
np.random.seed(0)
nets = {
    "TwoLayerNet": (fastnum.TwoLayerNet(30, 5, 4), rng.random((3, 30))),
    "ch05.TwoLayerNet": (fastnum.ch05.TwoLayerNet(30, 5, 4), rng.random((3, 30))),
    "MultiLayerNetExtend": (fastnum.MultiLayerNetExtend(30, [6, 5], 4, use_batchnorm=True, use_dropout=True),
                            rng.random((4, 30))),
    "SimpleConvNet": (fastnum.SimpleConvNet((1, 8, 8), {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1},
                                            5, 4), rng.random((2, 1, 8, 8))),
}
out = {}
for name, (net, x) in nets.items():
    t = np.arange(x.shape[0]) % 4
    np.random.seed(1)
    grads = net.numerical_gradient(x, t)
    kernels = [k for k, _ in net.kernel_calls("numerical_gradient", x, t)]
    out[name] = {"compiled_here": any(k.overloads for k in kernels), "grads": {k: v.tolist() for k, v in grads.items()}}
    if hasattr(net, "gradient") and name.endswith("TwoLayerNet"):
        out[name]["predict"] = net.predict(x).tolist()
        out[name]["loss"] = net.loss(x, t)
print(json.dumps(out))
"""


def test_small_first_calls_take_the_numpy_path_and_agree_with_the_kernels(tmp_path):
    """An empty cache, FASTNUM_FIRST_RUN=auto: the book's toy-sized calls compute in numpy, compile
    nothing; the same calls on compiled kernels (FASTNUM_FIRST_RUN=compile) agree to 1e-10."""
    numpy_run = _run(FIRST_CALLS, tmp_path / "cache", FASTNUM_FIRST_RUN="auto", FASTNUM_BACKGROUND_COMPILE="0")
    # the suite's own cache: these kernels are compiled for the other tests anyway
    suite_cache = os.environ.get("NUMBA_CACHE_DIR") or tmp_path / "suite-cache"
    kernel_run = _run(FIRST_CALLS, suite_cache, FASTNUM_FIRST_RUN="compile")
    for name in numpy_run:
        assert not numpy_run[name]["compiled_here"], name
        assert kernel_run[name]["compiled_here"], name
        for key, value in numpy_run[name]["grads"].items():
            np.testing.assert_allclose(value, kernel_run[name]["grads"][key], rtol=0, atol=1e-10, err_msg=name + key)
        if "loss" in numpy_run[name]:
            np.testing.assert_allclose(numpy_run[name]["predict"], kernel_run[name]["predict"], rtol=0, atol=1e-13)
            assert abs(numpy_run[name]["loss"] - kernel_run[name]["loss"]) < 1e-13


BACKGROUND = """
import json, sys, time, numpy as np
import fastnum
from fastnum import _compile
net = fastnum.TwoLayerNet(12, 3, 4)
x = np.random.rand(2, 12); t = np.arange(2) % 4
net.loss(x, t)
(kernel, args), = net.kernel_calls("loss", x, t)
compiled_here = bool(kernel.overloads)
children = [c for c in _compile._BACKGROUND.values() if c is not None]
for child in children:
    child.wait(timeout=600)
loaded_after = None
if len(sys.argv) > 1:  # a loop of small calls: numpy until it has cost what loading costs, then loaded
    for _ in range(int(sys.argv[1])):
        net.loss(x, t)
    loaded_after = bool(kernel.overloads)
print(json.dumps({"children": len(children), "compiled_here": compiled_here,
                  "ready_after": _compile.kernels_ready([(kernel, args)]), "loaded_after": loaded_after}))
"""


def test_a_numpy_path_call_compiles_its_kernels_in_the_background_for_the_next_run(tmp_path, monkeypatch):
    from fastnum import _first_run

    env = dict(FASTNUM_FIRST_RUN="auto", FASTNUM_BACKGROUND_COMPILE="1")
    first = _run(BACKGROUND, tmp_path / "cache", **env)
    assert first == {"children": 1, "compiled_here": False, "ready_after": True, "loaded_after": None}
    # the next run finds them cached; a tiny call still costs less in numpy than loading machine code,
    # until the numpy calls have added up to what loading costs
    seconds = _tiny_loss_seconds() + _first_run.NUMPY_CALL_SECONDS
    calls = int(_first_run.LOAD_SECONDS / seconds) + 2
    second = subprocess.run([sys.executable, "-c", BACKGROUND, str(calls)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), **env))
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout.strip().splitlines()[-1])
    assert result == {"children": 0, "compiled_here": False, "ready_after": True, "loaded_after": True}


def _tiny_loss_seconds():
    import fastnum

    return fastnum.TwoLayerNet(12, 3, 4).numpy_seconds("loss", 2)


def test_big_calls_compile_instead(monkeypatch):
    """The numpy path is for calls cheaper than compiling: a call estimated to take longer compiles."""
    import fastnum
    from fastnum import _first_run

    monkeypatch.setenv(_first_run.POLICY_ENV, "auto")
    net = fastnum.TwoLayerNet(784, 50, 10)
    small, big = net.numpy_seconds("numerical_gradient", 100), net.numpy_seconds("numerical_gradient", 5000)
    assert small < net.COMPILE_SECONDS["numerical_gradient"] < big
    with _first_run.compile_now():
        assert _first_run.policy() == "compile"
    assert _first_run.policy() == "auto"


def test_the_estimate_follows_the_path_the_call_takes():
    """Moves carry one channel per entry up to the layer that mixes them, about one pass above each
    entry; the general path (a sigmoid above) runs the layers above twice over every unit: the estimate
    says so, and a full-size SimpleConvNet gradient of ten images is cheaper in numpy than compiling."""
    import fastnum

    np.random.seed(0)
    relu = fastnum.MultiLayerNet(784, [100, 100], 10, activation="relu")
    sigmoid = fastnum.MultiLayerNet(784, [100, 100], 10, activation="sigmoid")
    assert relu.numpy_seconds("numerical_gradient", 100) < sigmoid.numpy_seconds("numerical_gradient", 100) / 5
    conv = fastnum.SimpleConvNet()
    assert conv.numpy_seconds("numerical_gradient", 10) < conv.COMPILE_SECONDS["numerical_gradient"]
    assert conv.numpy_seconds("numerical_gradient", 1000) > conv.COMPILE_SECONDS["numerical_gradient"]


@pytest.mark.parametrize("value, expected", [("compile", "compile"), ("COMPILE", "compile"), ("auto", "auto"),
                                             ("anything", "auto")])
def test_the_policy_comes_from_the_environment(monkeypatch, value, expected):
    from fastnum import _first_run

    monkeypatch.setenv(_first_run.POLICY_ENV, value)
    assert _first_run.policy() == expected


def test_the_background_child_is_started_once_per_request(monkeypatch):
    import fastnum
    from fastnum import _compile

    started = []
    monkeypatch.setattr(_compile, "kernel_ready", lambda kernel, signature: False)
    monkeypatch.setattr(_compile.subprocess, "Popen", lambda *a, **k: started.append(a[0]) or object())
    monkeypatch.setattr(_compile, "_BACKGROUND", {})
    request = _compile.CompileRequest.of(fastnum.TwoLayerNet(6, 2, 3), ("loss",), np.float64)
    _compile.compile_in_background(request)
    _compile.compile_in_background(request)
    assert len(started) == 1 and "--background" in started[0]
    assert _compile.CompileRequest.from_json(started[0][3]) == request


class _FakeChild:
    """A background child whose end the test decides."""

    def __init__(self):
        self.running = True

    def poll(self):
        return None if self.running else 0


def test_one_background_compile_at_a_time_and_numpy_meanwhile(monkeypatch):
    """A second request waits for the running child; numpy goes on past the compile cost while one
    runs (compiling beside it would be no sooner), with a BLAS thread left to it, given back after."""
    import fastnum
    from fastnum import _compile, _first_run

    children = []

    def popen(*args, **kwargs):
        children.append(_FakeChild())
        return children[-1]

    limits = []

    class FakeLimit:
        def __init__(self, **kwargs):
            limits.append(kwargs)

        def restore_original_limits(self):
            limits.append("restored")

    class FakeController:
        def limit(self, **kwargs):
            return FakeLimit(**kwargs)

    import threadpoolctl

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", FakeController)
    monkeypatch.setattr(_compile, "kernel_ready", lambda kernel, signature: False)
    monkeypatch.setattr(_compile, "kernels_ready", lambda calls: False)
    monkeypatch.setattr(_compile.subprocess, "Popen", popen)
    monkeypatch.setattr(_compile, "_BACKGROUND", {})
    monkeypatch.setattr(_first_run, "_BLAS_LIMIT", [])
    monkeypatch.setattr(_first_run, "_READY_METHODS", set())
    monkeypatch.setattr(_first_run, "_NUMPY_SECONDS", {})
    monkeypatch.setattr(_first_run, "_NOT_READY_SINCE", {})
    monkeypatch.setattr(_first_run.os, "cpu_count", lambda: 2)
    monkeypatch.setenv(_first_run.POLICY_ENV, "auto")
    monkeypatch.setenv(_first_run.BACKGROUND_ENV, "1")
    compiled = []
    monkeypatch.setattr(_first_run, "_compile_for_call", lambda *args: compiled.append(args[1]))

    net = fastnum.TwoLayerNet(12, 3, 4)
    x, t = np.random.default_rng(0).random((2, 12)), np.arange(2) % 4
    assert _first_run.numpy_path(net, "loss", x, t)
    assert len(children) == 1 and limits == [{"limits": 1, "user_api": "blas"}]
    assert _first_run.numpy_path(net, "gradient", x, t)  # another request: no second child yet
    assert len(children) == 1
    key = next(iter(_first_run._NUMPY_SECONDS))
    _first_run._NUMPY_SECONDS[key] = 1e9  # far past what compiling costs
    monkeypatch.setattr(_first_run, "RECHECK_S", 0.0)
    assert _first_run.numpy_path(net, "loss", x, t) and not compiled  # the child still runs: numpy
    children[0].running = False
    assert _first_run.numpy_path(net, "gradient", x, t)  # the first ended: BLAS restored, the next child
    assert limits[1] == "restored" and len(children) == 2 and limits[2] == {"limits": 1, "user_api": "blas"}
    children[1].running = False
    assert not _first_run.numpy_path(net, "loss", x, t)  # no child runs and numpy has cost enough: compile
    assert compiled == ["loss"] and limits[-1] == "restored"


# -- fastnum compile / fastnum.precompile -------------------------------------------------


def _grid_specs():
    """Specs beyond COMPILE_SPECS: other sizes, layer counts, activations, dropout, weight decay."""
    from fastnum.architectures import spec_from_options

    specs = [spec_from_options([7], activation="relu"), spec_from_options([50])]
    for hidden in ([5], [6, 4, 3]):
        for batchnorm in (False, True):
            specs.append(spec_from_options(hidden, activation="sigmoid", batchnorm=batchnorm, dropout=0.3,
                                           weight_decay=0.1, network="multi-layer"))
    specs.append({"network": "SimpleConvNet", "hidden": [7], "activation": "relu", "input_dim": [2, 10, 10],
                  "conv_param": {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1}})
    return specs


def test_every_kernel_is_what_compile_specs_list():
    """fastnum compile compiles by COMPILE_SPECS: any other network's kernels must be among them."""
    from fastnum._compile import CompileRequest, signature_of
    from fastnum.precompiling import calls_of, requests_for
    from fastnum.registry import build

    listed = {(kernel, signature_of(args)) for kernel, args, _ in calls_of(requests_for())}
    assert len(listed) >= 10
    for spec in _grid_specs():
        np.random.seed(0)
        network = build(spec, 100 if spec["network"] != "SimpleConvNet" else 200, 3)
        cls = type(network)
        for dtype in ("float32", "float64"):
            request = CompileRequest.of(network, tuple(cls.COMPILE_SECONDS), dtype)
            for kernel, args in request.calls():
                assert (kernel, signature_of(args)) in listed, (spec, dtype, kernel.__name__)


def test_one_compiled_last_layer_kernel_serves_the_multi_layer_families():
    """The last layer's rows are one kernel with one signature for MultiLayerNet, batch norm and
    SimpleConvNet's dense layers: whichever compiles it first, the others load it."""
    import fastnum
    from fastnum._compile import signature_of
    from fastnum.multi_layer._numgrad_per_sample import output_rows_worker

    np.random.seed(0)
    networks = [fastnum.MultiLayerNet(12, [4, 3], 2), fastnum.MultiLayerNetExtend(12, [5], 2, use_batchnorm=True),
                fastnum.SimpleConvNet((1, 8, 8), {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1}, 4, 2)]
    signatures = set()
    for network in networks:
        x = np.zeros((2,) + tuple(network.sample_shape))
        rows = [args for kernel, args in network.kernel_calls("numerical_gradient", x, np.zeros(2, dtype=np.int64))
                if kernel is output_rows_worker]
        assert len(rows) == 1, type(network).__name__
        signatures.add(signature_of(rows[0]))
    assert len(signatures) == 1


def test_requests_follow_the_gradient_and_refuse_one_a_network_lacks():
    from fastnum.precompiling import requests_for

    train = requests_for(["two-layer"], "numerical")
    assert [(r.methods, r.x_dtype) for r in train] == [(("numerical_gradient", "loss", "accuracy"), "float32")]
    assert requests_for(["deep-convnet"]) == []
    assert {r.spec["network"] for r in requests_for(gradient="numerical-full")} == {"TwoLayerNet"}
    with pytest.raises(ValueError, match="SimpleConvNet has no numerical-full gradient"):
        requests_for(["convnet"], "numerical-full")


def _fastnum(cache, *args):
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "fastnum", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=900)


def test_fastnum_compile_compiles_in_processes_then_finds_everything_cached(tmp_path):
    cache = tmp_path / "cache"
    first = _fastnum(cache, "compile", "--network", "two-layer", "--gradient", "backprop", "--jobs", "2", "--table")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert lines[0].startswith("compiling 3 kernels for this CPU with 2 processes")  # and the pool's spin
    assert lines[-1].startswith("3 kernels ready in ") and "3 compiled with 2 processes, 0 already cached" in lines[-1]
    assert any(line.startswith("two_layer._backprop.backprop_worker (TwoLayerNet, float32 images)") and
               "compiled" in line for line in lines)
    assert any(line.startswith("  two_layer._backprop.backprop_worker") for line in lines)  # said when done
    assert any(line.startswith("_workers._spin") for line in lines)
    assert "compiling: 100%" in first.stderr and "3/3" in first.stderr  # the bar
    again = _fastnum(cache, "compile", "--network", "two-layer", "--gradient", "backprop", "--no-progress")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "all 3 kernels were compiled already (numba's cache holds them): nothing to do"
    assert not list(cache.rglob("*.tmp*"))  # nothing half-written


@pytest.mark.parametrize("args, message", [
    (["--jobs", "0"], "argument --jobs: must be at least 1"),
    (["--network", "convnet", "--gradient", "numerical-full"],
     "--gradient numerical-full: SimpleConvNet has no numerical-full gradient"),
    (["--network", "resnet"], "argument --network: invalid choice: 'resnet'"),
])
def test_fastnum_compile_user_errors_are_one_line(tmp_path, args, message):
    done = _fastnum(tmp_path / "cache", "compile", *args)
    assert done.returncode == 2
    error = [line for line in done.stderr.splitlines() if not line.startswith(("usage", " "))]
    assert len(error) == 1 and error[0].startswith("fastnum compile: error: ") and message in error[0], done.stderr
    assert not list((tmp_path / "cache").rglob("*.nbi"))  # refused before anything compiled


def test_precompile_of_one_network_and_its_arguments(monkeypatch):
    import fastnum
    from fastnum import precompiling as module

    seen = {}

    def fake_workers(requests, calls, pending, report, progress, write):
        seen.update(requests=requests, pending=pending, processes=report.processes)

    monkeypatch.setattr(module, "_compile_in_workers", fake_workers)
    monkeypatch.setattr(module, "kernel_ready", lambda kernel, signature: False)
    network = fastnum.MultiLayerNetExtend(12, [4, 3], 2, use_batchnorm=True)
    report = fastnum.precompile(network, jobs=3)
    assert [r.spec for r in seen["requests"]] == [network.spec()]
    # batch norm's forward and hidden-unit workers, the last layer's rows, and the pool's spin
    assert seen["pending"] == [0, 1, 2, 3] and seen["processes"] == 3
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        fastnum.precompile(network, jobs=0)
    assert report.processes == seen["processes"]


def test_two_processes_share_the_kernels_as_a_queue():
    """``compile_unclaimed`` skips a kernel whose lock another process holds (it is compiling it) instead of
    waiting, and compiles one nobody holds: a CompileJob's two processes each take the next free kernel."""
    import filelock
    from numba import njit

    from fastnum import _config
    from fastnum._compile import _lock_path, compile_unclaimed, signature_of

    @njit(**dict(_config.NJIT_OPTIONS, cache=False))
    def doubled(x):
        return 2.0 * x

    call = (doubled, (1.5,))
    signature = signature_of(call[1])
    with filelock.FileLock(_lock_path(doubled, signature), timeout=0):  # "the other process" holds it
        assert compile_unclaimed([call]) == [call]
        assert signature not in doubled.overloads
    assert compile_unclaimed([call]) == []
    assert signature in doubled.overloads and doubled(1.5) == 3.0


UNREADABLE_INDEX = """
import os, pickle, numpy as np
from fastnum import _compile, _workers
from fastnum.conv import _numgrad

class Moved:  # a class an earlier version's index named, since moved or renamed
    pass

Moved.__module__, Moved.__qualname__ = "fastnum._workers", "Moved"
_workers.Moved = Moved
spoiled = (_workers._spin, _numgrad._conv_of_sample)  # a worker and a helper
for dispatcher in spoiled:
    cache_file = dispatcher._cache._cache_file
    os.makedirs(os.path.dirname(cache_file._index_path), exist_ok=True)
    with open(cache_file._index_path, "wb") as f:  # numba's layout: its version, then (stamp, overloads)
        pickle.dump(cache_file._version, f)
        f.write(pickle.dumps(((0.0, 0), {"key": Moved})))
del _workers.Moved
for dispatcher in spoiled:
    try:
        dispatcher._cache._cache_file._load_index()
    except AttributeError:
        pass
    else:
        raise SystemExit("the spoiled index loaded")
signature = _compile.signature_of((np.zeros(1, dtype=np.int64), 0, 1))
_compile.compile_kernel(_workers._spin, signature)
assert signature in _workers._spin.overloads
for dispatcher in spoiled:
    dispatcher._cache._cache_file._load_index()  # readable again: the worker's rewritten, the helper's gone
print("compiled past", len(spoiled), "unreadable indexes")
"""


def test_an_index_an_earlier_version_left_unreadable_is_removed_not_fatal(tmp_path):
    """numba unpickles a kernel's cache index before it checks the index's stamp, so an index written by
    an earlier fastnum that names a class since moved (a NamedTuple of a kernel's arguments) raised
    ``AttributeError`` on the first call after an upgrade. Every unreadable index of fastnum's compiled
    functions, a helper's included, is removed before the first compile (it could only be stale)."""
    done = subprocess.run([sys.executable, "-c", UNREADABLE_INDEX], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path)), cwd=ROOT)
    assert done.returncode == 0 and "compiled past 2 unreadable indexes" in done.stdout, done.stderr
