"""The numerical gradients of the book's networks: fastnum against the book's loop, warm and on a
first run.

    python -m bench --networks [--update-readme]
    python -m bench --networks --only deep_convnet [--update-readme]   # rerun rows, merged into the stored run

NETWORKS lists the rows; each names its case in ``references.table`` (the one table the tests read
too): how the fastnum network is built at the book's sizes and the plain-numpy reference it is
compared with. For each row:

* fastnum's ``numerical_gradient`` with its kernels loaded (median of repeats, all threads);
* the book's loop: the reference's central difference (``references.layers``, whole-batch numpy as
  the book's layers) on sampled entries, extrapolated to every parameter, numpy at its faster BLAS
  thread count (1 or 2); and the largest difference between the two on those entries;
* the first call of a fresh process: with an empty ``NUMBA_CACHE_DIR`` as a new machine gets it (the
  default first-run policy: numpy while compiling would cost more, kernels compiled in the
  background), and again once the cache is filled; and the compile time alone (compiling first).

Reporting is apart from running: ``python -m bench.networks [JSON] [--update-readme]`` writes the
tables again from a stored run.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent

NETWORKS = {
    "two_layer_sigmoid": ("TwoLayerNet(784, 50, 10) (ch04), sigmoid", "two_layer_sigmoid", 100),
    "mln_relu_100x3": ("MultiLayerNet(784, [100, 100, 100], 10), ReLU, He", "multi_layer_relu", 100),
    "mlne_batchnorm_100x2": ("MultiLayerNetExtend(784, [100, 100], 10, use_batchnorm=True, weight decay 0.05)",
                             "multi_layer_batchnorm", 100),
    "simple_convnet": ("SimpleConvNet() (30 filters 5x5, hidden 100)", "simple_convnet", 10),
    "simple_convnet_toy": ("SimpleConvNet, ch07/gradient_check.py's toy (1x10x10, 10 filters 3x3, hidden 10)",
                           "simple_convnet_toy", 1),
    "deep_convnet": ("DeepConvNet() (ch08: six 3x3 convolutions, hidden 50, dropout)", "deep_convnet", 10),
}
"""Row name -> (label, case in ``references.table.NETWORKS``, batch size of real MNIST images)."""

REPEATS = {"deep_convnet": 1}
"""Rows timed fewer times than the others (a call takes minutes)."""


def sampled_entries(params, names, n, seed=1):
    """``n`` entries drawn uniformly over all parameters (a list of (name, index))."""
    sizes = [params[name].size for name in names]
    flat = np.random.default_rng(seed).choice(sum(sizes), size=min(n, sum(sizes)), replace=False)
    offsets = np.cumsum([0] + sizes)
    entries = []
    for f in np.sort(flat):
        k = int(np.searchsorted(offsets, f, side="right") - 1)
        entries.append((names[k], tuple(int(i) for i in np.unravel_index(f - offsets[k], params[names[k]].shape))))
    return entries


def build(name, x, t):
    """The row's fastnum network (the book's weights for seed 0) and its batch of real images."""
    from references.table import NETWORKS as CASES

    label, case_name, batch_size = NETWORKS[name]
    case = CASES[case_name]
    network, toy_x, toy_t = case.build("bench", np.random.default_rng(0))
    if name == "simple_convnet_toy":  # ch07/gradient_check.py: one random 10x10 image
        return case, network, toy_x, toy_t
    shape = (-1,) + tuple(network.sample_shape)
    return case, network, x[:batch_size].reshape(shape), t[:batch_size]


FIRST_CALL = """
import json, sys, time
started = time.perf_counter()
import numpy as np
from bench.networks import build
data = np.load(sys.argv[2])
case, net, x, t = build(sys.argv[1], data["x"], data["t"])
ready = time.perf_counter()
np.random.seed(0); net.numerical_gradient(x, t); first = time.perf_counter() - ready
started_second = time.perf_counter()
np.random.seed(0); net.numerical_gradient(x, t); second = time.perf_counter() - started_second
print(json.dumps({"import_s": ready - started, "first_s": first, "second_s": second}))
"""


def _background_compiles_running():
    try:
        done = subprocess.run(["pgrep", "-f", "fastnum._compile"], capture_output=True, text=True)
    except FileNotFoundError:
        return False
    return bool(done.stdout.strip())


def first_calls(name, data_file, repeats_of_cold=1):
    """A fresh process's first call with an empty cache (default policy), then with the cache it left
    filled, then compiling first (``FASTNUM_FIRST_RUN=compile``) with another empty cache."""

    def run(cache, **env):
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FASTNUM_")}  # the defaults
        environment.update(NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT), **env)
        done = subprocess.run([sys.executable, "-c", FIRST_CALL, name, data_file], capture_output=True, text=True,
                              env=environment, cwd=ROOT, check=True)
        while _background_compiles_running():  # the kernels a numpy-path first call compiles for next time
            time.sleep(0.5)
        return json.loads(done.stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory() as cache:
        cold = run(cache)
        warm = run(cache)
    with tempfile.TemporaryDirectory() as cache:
        compiling = run(cache, FASTNUM_FIRST_RUN="compile")
    return {"cold_first_s": cold["first_s"], "warm_first_s": warm["first_s"], "import_s": warm["import_s"],
            "compile_s": max(0.0, compiling["first_s"] - compiling["second_s"])}


def time_network(name, x, t, n_sampled, repeats, log):
    from fastnum._first_run import compile_now

    label, _, _ = NETWORKS[name]
    case, net, x, t = build(name, x, t)
    names = list(net.params)
    compiled = bool(type(net).COMPILE_SPECS)
    with compile_now():  # the kernels, loaded: the steady state (first calls are timed apart)
        if compiled:
            np.random.seed(0)
            net.numerical_gradient(x, t)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            np.random.seed(0)
            grads = net.numerical_gradient(x, t)  # the masks of seed 0, for the check below
            times.append(time.perf_counter() - started)
    fastnum_s = float(np.median(times))
    entries = sampled_entries(net.params, names, n_sampled)
    n_params = sum(net.params[k].size for k in names)
    book_s = {}
    for blas in (1, 2):
        with threadpool_limits(blas):
            started = time.perf_counter()
            values = case.reference(net, x, t, entries, seed=0)
            book_s[blas] = (time.perf_counter() - started) / len(entries) * n_params
    got = np.array([grads[k][i] for k, i in entries])
    row = {
        "label": label, "batch_size": int(x.shape[0]), "n_params": int(n_params), "n_sampled": len(entries),
        "fastnum_s": fastnum_s, "fastnum_times": times, "book_s": min(book_s.values()),
        "book_blas_threads": min(book_s, key=book_s.get), "speedup": min(book_s.values()) / fastnum_s,
        "max_abs_diff": float(np.abs(got - values).max()), "compiled": compiled,
    }
    log(f"  {label}: fastnum {fastnum_s:.3g} s, book's loop {row['book_s']:.4g} s -> {row['speedup']:.0f}x "
        f"(max |diff| {row['max_abs_diff']:.1e})")
    return row


def networks_markdown(report):
    from bench.report import _codegen_note, fmt_seconds

    machine = report["machine"]
    lines = [
        f"Numerical gradient of one batch, every parameter: fastnum against the book's loop "
        f"({report['source']}; {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('vector_width', '?')}{_codegen_note(machine)}, {report['threads']} threads; "
        f"`{report['command']}`). First calls in fresh processes: with an empty numba cache (a new machine, "
        "the default first-run policy) and with the cache filled; compile: the kernels alone.",
        "",
        "| network | batch | parameters | book's loop (extrapolated) | fastnum | speed-up | max abs diff "
        "(sampled) | first call, empty cache | first call, cache filled | compile (once) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["networks"].values():
        first = [fmt_seconds(row[k]) if row.get(k) is not None else "-"
                 for k in ("cold_first_s", "warm_first_s", "compile_s")]
        lines.append(
            f"| {row['label']} | {row['batch_size']} | {row['n_params']:,} | {fmt_seconds(row['book_s'])} | "
            f"{fmt_seconds(row['fastnum_s'])} | {row['speedup']:,.0f}x | {row['max_abs_diff']:.1e} | "
            f"{' | '.join(first)} |"
        )
    by_command = {}  # rows rerun by one command, listed together
    for row in report["networks"].values():
        if row.get("command"):
            by_command.setdefault(row["command"], []).append(row["label"].split(" (")[0])
    if by_command:
        lines += ["", "Rows measured again since: " + "; ".join(
            f"{', '.join(f'“{label}”' for label in labels)}: `{command}`"  # quoted: labels hold commas
            for command, labels in by_command.items()) + "."]
    plain = [row["label"].split(" (")[0] for row in report["networks"].values() if row.get("compiled") is False]
    if plain:
        lines += ["", f"{', '.join(plain)}: no compiled kernels (its gradient runs in numpy over fastnum's "
                      "layers), so its first call on a new machine is any call."]
    return "\n".join(lines) + "\n"


def run_networks(args, data, machine, log, only=None):
    import fastnum

    if data is None:
        raise SystemExit("--networks needs the MNIST files (--data-dir or FASTNUM_DATA_DIR)")
    (x_train, t_train), _ = fastnum.load_mnist(normalize=True, data_dir=data)
    x = x_train[:1000].astype(np.float64)
    t = t_train[:1000]
    n_sampled, repeats = (100, 2) if args.quick else (600, 5)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        data_file = os.path.join(folder, "batch.npz")
        np.savez(data_file, x=x, t=t)
        for name in NETWORKS if only is None else only:
            rows[name] = time_network(name, x, t, n_sampled, REPEATS.get(name, repeats), log)
            if rows[name]["compiled"]:  # a network without kernels: its first call is any call
                rows[name].update(first_calls(name, data_file))
                log(f"    first call: empty cache {rows[name]['cold_first_s']:.2f} s, cache filled "
                    f"{rows[name]['warm_first_s']:.2f} s; compile {rows[name]['compile_s']:.1f} s")
    return {"networks": rows, "machine": machine, "threads": args.threads}


def merge_rerun_rows(stored_file, rerun):
    """The stored report with the rows of ``rerun`` replaced (in the stored order), each rerun row
    keeping the command that measured it; refused when the stored report is from another CPU."""
    if not stored_file.exists():
        raise SystemExit(f"--only merges rows into {stored_file}, which does not exist: run --networks first")
    stored = json.loads(stored_file.read_text())
    if stored["machine"].get("cpu") != rerun["machine"].get("cpu") or stored["threads"] != rerun["threads"]:
        raise SystemExit(f"--only: {stored_file} was measured on {stored['machine'].get('cpu')!r} with "
                         f"{stored['threads']} threads, this is {rerun['machine'].get('cpu')!r} with "
                         f"{rerun['threads']} threads: rerun every row instead")
    for name, row in rerun["networks"].items():
        stored["networks"][name] = dict(row, command=rerun["command"])
    return stored


def write_networks_report(report, out, readme=False):
    """``networks.{md,json}`` in ``out``, and the README section when ``readme``."""
    from bench.report import write_tables

    write_tables(report, out, "networks", networks_markdown(report),
                 ("<!-- networks:start -->", "<!-- networks:end -->") if readme else None)


if __name__ == "__main__":  # the tables again from a stored run: python -m bench.networks [JSON] [--update-readme]
    given = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    stored = Path(given[0]) if given else ROOT / "bench" / "results" / "networks.json"
    write_networks_report(json.loads(stored.read_text()), stored.parent, readme="--update-readme" in sys.argv)
