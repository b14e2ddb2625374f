"""The 16-epoch training runs side by side: fastnum's numerical gradient against plain-numpy backprop.

    python -m bench --training [--epochs 16] [--training-repeats 3]

Each run is a fresh process timed from start to exit (start-up, loading the
data, compiled kernels from numba's cache, every evaluation), in turn, never
two at once:

* ``fastnum train`` (the numerical gradient, the default),
* ``fastnum train --gradient backprop``,
* the book's ``train_neuralnet.py`` with ``network.gradient`` in plain numpy
  (``bench/numpy_training.py``: the reference), at 1 and at 2 BLAS threads;
  the faster is kept.

All draw the same batches (``np.random.seed(0)``, then the book's network,
then ``np.random.choice``) and evaluate once per epoch and after the last
step. Medians of the repeats; the ratio is fastnum's numerical run over the
reference. The kernels are compiled (cached) before the first timed run.

First of all, a user's first run: ``fastnum train`` with an empty numba
cache (a temporary ``NUMBA_CACHE_DIR``), timed the same way; its
``run.json`` says how long compiling took (what the user waits for before
the first step, the data's loading overlapped).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _timed(command, env=None):
    """(wall seconds, stdout) of ``command`` run from the project root."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def _fastnum_run(data_dir, epochs, gradient, env):
    length = ["--epochs", str(int(epochs))] if epochs >= 1 else ["--iters", "5"]
    with tempfile.TemporaryDirectory() as out:
        seconds, _ = _timed([sys.executable, "-m", "fastnum", "train", "--no-progress", "--data-dir", data_dir,
                             *length, "--gradient", gradient, "--out", str(Path(out) / "run")], env)
        info = json.loads((Path(out) / "run" / "run.json").read_text())
    return {"wall_seconds": seconds, "final_train_acc": info["final_train_acc"],
            "final_test_acc": info["final_test_acc"], "median_step_seconds": info["median_step_seconds"],
            "total_step_seconds": info["total_step_seconds"], "total_eval_seconds": info["total_eval_seconds"],
            "compile_seconds": info["sessions"][0]["compile_seconds"]}


def _numpy_run(data_dir, epochs, blas_threads, env):
    seconds, stdout = _timed([sys.executable, "-m", "bench.numpy_training", "--data-dir", data_dir,
                              "--epochs", str(epochs), "--blas-threads", str(blas_threads)], env)
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wall_seconds"] = seconds
    return result


def _median_of(runs):
    best = dict(runs[int(np.argsort([r["wall_seconds"] for r in runs])[len(runs) // 2])])
    best["wall_seconds_all"] = [r["wall_seconds"] for r in runs]
    return best


def compare_training(data_dir, epochs=16, repeats=3, log=print, env=None):
    """The side-by-side runs; returns the report dict (see the module docstring)."""
    env = dict(os.environ if env is None else env)
    data_dir = str(data_dir)
    log("training runs: a first run with an empty numba cache")
    with tempfile.TemporaryDirectory() as cache:
        first_run = _fastnum_run(data_dir, epochs, "numerical", dict(env, NUMBA_CACHE_DIR=cache))
    log(f"  {first_run['wall_seconds']:.1f} s, compiling {first_run['compile_seconds']:.1f} s")
    log("training runs: compiling (or loading) the kernels once before timing")
    _fastnum_run(data_dir, 0.01, "numerical", env)
    _fastnum_run(data_dir, 0.01, "backprop", env)
    runs = {"fastnum_numerical": [], "fastnum_backprop": [], "numpy_backprop_1": [], "numpy_backprop_2": []}
    for repeat in range(repeats):  # interleaved, so that a slow spell of the machine hits every contender
        runs["fastnum_numerical"].append(_fastnum_run(data_dir, epochs, "numerical", env))
        runs["fastnum_backprop"].append(_fastnum_run(data_dir, epochs, "backprop", env))
        runs["numpy_backprop_1"].append(_numpy_run(data_dir, epochs, 1, env))
        runs["numpy_backprop_2"].append(_numpy_run(data_dir, epochs, 2, env))
        times = ", ".join(f"{k} {v[-1]['wall_seconds']:.1f} s" for k, v in runs.items())
        log(f"  repeat {repeat + 1}: {times}")
    results = {name: _median_of(values) for name, values in runs.items()}
    numpy_name = min(("numpy_backprop_1", "numpy_backprop_2"), key=lambda n: results[n]["wall_seconds"])
    reference = results[numpy_name]["wall_seconds"]
    return {
        "epochs": epochs, "repeats": repeats, "reference": numpy_name, "results": results,
        "ratio_numerical_to_numpy_backprop": results["fastnum_numerical"]["wall_seconds"] / reference,
        "ratio_fastnum_backprop_to_numpy_backprop": results["fastnum_backprop"]["wall_seconds"] / reference,
        "first_run": first_run,
        "ratio_first_compile_to_numpy_backprop": first_run["compile_seconds"] / reference,
        "ratio_first_run_to_numpy_backprop": first_run["wall_seconds"] / reference,
    }


def training_markdown(report, facts):
    r = report["results"]
    ref = report["reference"]
    rows = [
        ("`fastnum train` (numerical gradient)", "fastnum_numerical"),
        ("`fastnum train --gradient backprop`", "fastnum_backprop"),
        ("book's loop with backprop, plain numpy, 1 BLAS thread", "numpy_backprop_1"),
        ("book's loop with backprop, plain numpy, 2 BLAS threads", "numpy_backprop_2"),
    ]
    lines = [
        f"{report['epochs']:g} epochs of the book's training (784-50-10, batch 100, lr 0.1, seed 0), each run a "
        f"fresh process timed start to exit, median of {report['repeats']}; "
        f"{facts['cpu']}, {facts['cores']} cores, {facts['vector_width']}"
        f"{'' if facts.get('numba_cpu_name', 'host') == 'host' else ', numba code for ' + facts['numba_cpu_name']}.",
        "",
        "| run | wall time (median) | all runs | vs reference | final train acc | final test acc |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for label, name in rows:
        res = r[name]
        mark = " (reference)" if name == ref else ""
        lines.append(
            f"| {label}{mark} | {res['wall_seconds']:.1f} s | "
            f"{', '.join(f'{s:.1f}' for s in res['wall_seconds_all'])} | "
            f"{res['wall_seconds'] / r[ref]['wall_seconds']:.2f}x | {res['final_train_acc']:.4f} | "
            f"{res['final_test_acc']:.4f} |"
        )
    first = report["first_run"]
    reference = r[ref]["wall_seconds"]  # (older reports stored only the compile's ratio: both from the runs)
    lines += ["", f"Numerical-gradient training over plain-numpy backprop training: "
              f"**{report['ratio_numerical_to_numpy_backprop']:.2f}x** the wall time.",
              "", f"A first run on a fresh machine (empty numba cache, one run): {first['wall_seconds']:.1f} s, "
              f"**{first['wall_seconds'] / reference:.2f}x** the reference run's wall time; its compiling "
              f"({first['compile_seconds']:.1f} s) alone is {first['compile_seconds'] / reference:.2f}x."]
    return "\n".join(lines) + "\n"
