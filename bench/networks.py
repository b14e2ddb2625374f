"""The numerical gradients of the book's other networks: fastnum against the book's loop.

    python -m bench --networks [--update-readme]

NETWORKS maps each network to how it is built (fastnum and the plain-numpy
reference of ``references/``, with the same parameters) and the batch it is
timed on. For each: fastnum's ``numerical_gradient`` (median of repeats, all
numba threads, kernels cached), the book's loop (``references``' central
difference on sampled entries, extrapolated to every parameter; numpy at its
faster BLAS thread count, 1 or 2), the largest difference between the two on
the sampled entries, and the compile time of the network's kernels, measured
apart in a fresh process with an empty numba cache.
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


def _mlp(hidden, batchnorm):
    def build(x, t):
        import fastnum
        from references import multi_layer as ref

        np.random.seed(0)
        net = fastnum.MultiLayerNetExtend(784, hidden, 10, use_batchnorm=batchnorm)
        config = ref.NetConfig(len(hidden), use_batchnorm=batchnorm)

        def book(params, x, t, entries):
            return ref.numerical_gradient_entries(params, x, t, config, entries)

        return net, ref.param_names(config), book, x, t

    return build


def _convnet(toy):
    def build(x, t):
        import fastnum
        from references import conv as ref

        np.random.seed(0)
        if toy:  # ch07/gradient_check.py: one random 10x10 image, a (1, 1) label
            net = fastnum.SimpleConvNet(input_dim=(1, 10, 10), hidden_size=10, output_size=10, weight_init_std=0.01,
                                        conv_param={"filter_num": 10, "filter_size": 3, "pad": 0, "stride": 1})
            x, t = np.random.rand(100).reshape((1, 1, 10, 10)), np.array([1]).reshape((1, 1))
        else:
            net = fastnum.SimpleConvNet()
            x = x.reshape(-1, 1, 28, 28)
        return net, list(net.params), ref.numerical_gradient_entries, x, t

    return build


NETWORKS = {
    "mln_relu_100x3": ("MultiLayerNet(784, [100, 100, 100], 10), ReLU, He", _mlp([100, 100, 100], False), 100),
    "mlne_batchnorm_100x2": ("MultiLayerNetExtend(784, [100, 100], 10, use_batchnorm=True)",
                             _mlp([100, 100], True), 100),
    "simple_convnet": ("SimpleConvNet() (30 filters 5x5, hidden 100), real MNIST images", _convnet(False), 10),
    "simple_convnet_toy": ("SimpleConvNet, ch07/gradient_check.py's toy (1x10x10, 10 filters 3x3, hidden 10)",
                           _convnet(True), 1),
}
"""name -> (label, build(x, t) -> (fastnum network, parameter names, book's loop, x, t), batch size).

The book's loops are ``references/``' central differences: whole-batch
numpy products as the book's layers (for the convnet 4.6 ms a loss of 10
images here, the book's own ``SimpleConvNet.loss`` 4.6 ms too)."""


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


COMPILE_SCRIPT = """
import time, numpy as np
from bench.networks import NETWORKS
rng = np.random.default_rng(0)
net, names, _, x, t = NETWORKS[{name!r}][1](rng.random((4, 784)), np.arange(4) % 10)
started = time.perf_counter(); net.numerical_gradient(x, t); first = time.perf_counter() - started
started = time.perf_counter(); net.numerical_gradient(x, t); second = time.perf_counter() - started
print(first - second)
"""


def compile_seconds(name):
    """Seconds the first ``numerical_gradient`` of a fresh process spends compiling (empty numba cache)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT.format(name=name)], capture_output=True,
                              text=True, env=env, cwd=ROOT, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def time_network(name, x, t, n_sampled, repeats, log):
    label, build, batch_size = NETWORKS[name]
    net, names, book, x, t = build(x[:batch_size], t[:batch_size])
    net.numerical_gradient(x, t)  # load the kernels
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        grads = net.numerical_gradient(x, t)
        times.append(time.perf_counter() - started)
    fastnum_s = float(np.median(times))
    entries = sampled_entries(net.params, names, n_sampled)
    n_params = sum(net.params[k].size for k in names)
    book_s = {}
    for blas in (1, 2):
        with threadpool_limits(blas):
            started = time.perf_counter()
            values = book(net.params, x, t, entries)
            book_s[blas] = (time.perf_counter() - started) / len(entries) * n_params
    got = np.array([grads[k][i] for k, i in entries])
    row = {
        "label": label, "batch_size": int(x.shape[0]), "n_params": int(n_params), "n_sampled": len(entries),
        "fastnum_s": fastnum_s, "fastnum_times": times, "book_s": min(book_s.values()),
        "book_blas_threads": min(book_s, key=book_s.get), "speedup": min(book_s.values()) / fastnum_s,
        "max_abs_diff": float(np.abs(got - values).max()),
    }
    log(f"  {label}: fastnum {fastnum_s:.3g} s, book's loop {row['book_s']:.4g} s -> {row['speedup']:.0f}x "
        f"(max |diff| {row['max_abs_diff']:.1e})")
    return row


def networks_markdown(report):
    from bench.report import _codegen_note, fmt_seconds

    machine = report["machine"]
    lines = [
        f"Numerical gradient of one batch, every parameter: fastnum against the book's loop "
        f"({report['source']}; {machine.get('cpu', '?')}, {machine.get('vector_width', '?')}"
        f"{_codegen_note(machine)}, {report['threads']} numba threads; `{report['command']}`).",
        "",
        "| network | batch | parameters | book's loop (extrapolated) | fastnum | speed-up | max abs diff "
        "(sampled) | compile (once) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["networks"].values():
        lines.append(
            f"| {row['label']} | {row['batch_size']} | {row['n_params']:,} | {fmt_seconds(row['book_s'])} | "
            f"{fmt_seconds(row['fastnum_s'])} | {row['speedup']:,.0f}x | {row['max_abs_diff']:.1e} | "
            f"{row['compile_s']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def run_networks(args, data, machine, log):
    import fastnum

    if data is None:
        raise SystemExit("--networks needs the MNIST files (--data-dir or FASTNUM_DATA_DIR)")
    (x_train, t_train), _ = fastnum.load_mnist(normalize=True, data_dir=data)
    x = x_train[:1000].astype(np.float64)
    t = t_train[:1000]
    n_sampled, repeats = (100, 2) if args.quick else (600, 5)
    rows = {}
    for name in NETWORKS:
        rows[name] = time_network(name, x, t, n_sampled, repeats, log)
        rows[name]["compile_s"] = compile_seconds(name)
        log(f"    compile: {rows[name]['compile_s']:.1f} s")
    return {"networks": rows, "machine": machine, "threads": args.threads}


def write_networks_report(report, out, readme=False):
    """``networks.{md,json}`` in ``out``, and the README section when ``readme``."""
    from bench.report import write_tables

    write_tables(report, out, "networks", networks_markdown(report),
                 ("<!-- networks:start -->", "<!-- networks:end -->") if readme else None)


if __name__ == "__main__":  # the tables again from a stored run: python -m bench.networks [JSON] [--update-readme]
    given = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    stored = Path(given[0]) if given else ROOT / "bench" / "results" / "networks.json"
    write_networks_report(json.loads(stored.read_text()), stored.parent, readme="--update-readme" in sys.argv)
