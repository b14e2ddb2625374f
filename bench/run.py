"""The side-by-side benchmark: fastnum against plain numpy, on one batch.

    python -m bench                  # the full benchmark (a few minutes)
    python -m bench --quick          # a smoke test (a minute or two)
    python -m bench --full-reference # time the book's loop over all 39,760 parameters
    python -m bench --update-readme  # also rewrite the README's performance table
    python -m bench --training       # the 16-epoch runs side by side (bench/training.py)
    python -m bench --networks       # the other networks' numerical gradients (bench/networks.py)

Every contender computes the gradient of one training step (784-50-10, batch
100, the book's initial weights for np.random.seed(0)) on the same MNIST
batch, each in a process of its own. Plain-numpy contenders run with 1 and
with 2 BLAS threads and keep the faster; fastnum runs with the numba threads
asked for. Writes ``bench/results/benchmark.{md,json,png}``.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.contenders import CONTENDERS, N_PARAMS, PARAM_SHAPES
from bench.data import display_path, mnist_dir, report_command
from bench.report import write_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def sample_entries(n, seed=1, shapes=PARAM_SHAPES):
    """``n`` distinct parameter entries drawn uniformly over all parameters."""
    names = list(shapes)
    sizes = [int(np.prod(shapes[k])) for k in names]
    flat = np.random.default_rng(seed).choice(sum(sizes), size=min(n, sum(sizes)), replace=False)
    offsets = np.cumsum([0] + sizes)
    entries = []
    for f in np.sort(flat):
        k = int(np.searchsorted(offsets, f, side="right") - 1)
        entries.append((names[k], [int(i) for i in np.unravel_index(f - offsets[k], shapes[names[k]])]))
    return entries


def run_worker(spec, env_extra=None):
    """Run ``bench.worker`` on ``spec`` in a fresh process; its JSON result."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
        path = handle.name
    env = dict(os.environ, **(env_extra or {}))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    try:
        done = subprocess.run([sys.executable, "-m", "bench.worker", path], capture_output=True, text=True,
                              env=env, cwd=ROOT)
    finally:
        os.unlink(path)
    if done.returncode != 0:
        raise RuntimeError(f"worker for {spec['contender']} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_to_reference(results, entries, full_reference):
    """Set every contender's ``max_abs_diff`` against the book's loop, row (1), on the sampled entries.

    The book's row is the reference itself and gets None ("reference" in
    the table), not a difference from itself.
    """
    reference = np.array(results["book"]["values"])
    if full_reference:  # the book's loop ran over every entry: keep the sampled ones
        index = {(n, tuple(i)) for n, i in entries}
        reference = reference[[k for k, (n, i) in enumerate(sample_entries(N_PARAMS)) if (n, tuple(i)) in index]]
    for name, r in results.items():
        if name == "book":
            r["max_abs_diff"] = None
            continue
        if "max_abs_diff_own_reference" in r:  # other inputs: checked against the book's loop on them
            r["max_abs_diff"] = r["max_abs_diff_own_reference"]
            continue
        values = np.array(r["values"])
        if values.shape != reference.shape:
            raise ValueError(f"{name} returned {values.shape[0]} values for {reference.shape[0]} sampled entries")
        r["max_abs_diff"] = float(np.abs(values - reference).max()) if values.size else None
    return results


def summarise(result):
    times = np.array(result["step_seconds"])
    result["median_s"] = float(np.median(times))
    result["min_s"] = float(times.min())
    result["max_s"] = float(times.max())
    return result


def machine_facts():
    import numba
    from threadpoolctl import threadpool_info

    from fastnum._machine import cpu_model, vector_width

    cpu = cpu_model()
    try:
        import scipy

        scipy_version = scipy.__version__
    except ImportError:
        scipy_version = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu, "cores": os.cpu_count(), "vector_width": vector_width(),
        "numba_cpu_name": os.environ.get("NUMBA_CPU_NAME") or "host", "python": platform.python_version(),
        "platform": platform.platform(), "numpy": np.__version__, "numba": numba.__version__,
        "scipy": scipy_version,
        "blas": [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                 for i in threadpool_info() if i.get("user_api") == "blas"],
    }


VARIANTS = {
    "fastnum_incremental_busy_1": ("fastnum_incremental", {"busy": True, "numba_threads": 1},
                                   "(4b) method='incremental', one core busy, 1 thread"),
    "fastnum_incremental_busy": ("fastnum_incremental", {"busy": True},
                                 "(4c) method='incremental', one core busy, default threads"),
    "fastnum_incremental_dense_levels": ("fastnum_incremental", {"inputs": "dense-levels"},
                                         "(4d) method='incremental', dense inputs: levels k/255, no zero pixel"),
    "fastnum_incremental_dense_uniform": ("fastnum_incremental", {"inputs": "dense-uniform"},
                                          "(4e) method='incremental', dense inputs: continuous uniform"),
}
"""Rows that time a contender under other conditions: name -> (contender, spec changes, label).
Dense rows are checked against the book's loop on their own inputs (200 sampled entries)."""


class _BusyCore:
    """Another CPU-bound process for as long as the block runs (a user's laptop is rarely idle)."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def time_variant(name, base, args, log):
    contender, changes, label = VARIANTS[name]
    spec = dict(base, contender=contender, repeats=args.repeats, numba_threads=args.threads, blas_threads=1)
    spec.update({k: v for k, v in changes.items() if k != "busy"})
    if "inputs" in changes:
        spec["reference_entries"] = sample_entries(200, seed=2)
    if changes.get("busy"):
        with _BusyCore():
            result = summarise(run_worker(spec))
    else:
        result = summarise(run_worker(spec))
    result.update(label=label, variant_of=contender)
    if changes.get("inputs"):
        result["source"] = spec["inputs"]
    log(f"  {label}: {result['median_s']:.4g} s/step")
    return result


def time_contender(name, base, args, log):
    """Figures of one contender: numpy ones at 1 and 2 BLAS threads (the faster kept)."""
    label, kind, _, runtime = CONTENDERS[name]
    spec = dict(base, contender=name, repeats=args.repeats)
    if kind == "sampled":
        spec["repeats"] = args.sampled_repeats
    if name == "book" and args.full_reference:
        spec["entries"] = sample_entries(N_PARAMS)
        spec["repeats"] = 1
    if runtime == "numba":
        spec["numba_threads"] = args.threads
        spec["blas_threads"] = 1
        if name == "fastnum_full":
            spec["repeats"] = args.full_repeats
        result = summarise(run_worker(spec))
        # the compile time users pay once: the same first call with an empty numba cache
        with tempfile.TemporaryDirectory() as cold:
            cold_spec = dict(spec, repeats=0)
            if name == "fastnum_full":
                cold_spec["batch_size"] = 2  # compiling does not depend on the batch
            result["compile_seconds"] = run_worker(cold_spec, {"NUMBA_CACHE_DIR": cold})["first_call_seconds"]
        log(f"  {label}: {result['median_s']:.4g} s/step ({args.threads} numba threads)")
        return result
    tried = []
    for blas_threads in (1, 2):
        result = summarise(run_worker(dict(spec, blas_threads=blas_threads)))
        tried.append(result)
        log(f"  {label}: {result['median_s']:.4g} s/step with {blas_threads} BLAS thread(s)")
    best = min(tried, key=lambda r: r["median_s"])
    best["blas_trials"] = {str(r["blas_threads"]): r["median_s"] for r in tried}
    return best


def scaling(base, args, log):
    """fastnum incremental: seconds per step against hidden size and batch size, with fitted exponents."""
    out = {}
    grids = {"hidden": args.hidden_grid, "batch_size": args.batch_grid}
    for axis, grid in grids.items():
        points = []
        for value in grid:
            spec = dict(base, contender="fastnum_incremental", repeats=args.repeats, numba_threads=args.threads,
                        blas_threads=1, entries=[], **{axis: value})
            seconds = summarise(run_worker(spec))["median_s"]
            points.append((value, seconds))
            log(f"  scaling {axis}={value}: {seconds * 1e3:.3f} ms/step")
        xs, ys = np.log([p[0] for p in points]), np.log([p[1] for p in points])
        exponent = float(np.polyfit(xs, ys, 1)[0]) if len(points) > 1 else None
        out[axis] = {"points": points, "exponent": exponent}
    return out


def thread_scaling(base, args, log):
    out = {}
    for name in ("fastnum_incremental", "fastnum_full"):
        if name == "fastnum_full" and args.quick:
            continue
        out[name] = {}
        for threads in (1, 2):
            spec = dict(base, contender=name, repeats=args.full_repeats if name == "fastnum_full" else args.repeats,
                        numba_threads=threads, blas_threads=1, entries=[])
            out[name][str(threads)] = summarise(run_worker(spec))["median_s"]
            log(f"  {name} with {threads} numba thread(s): {out[name][str(threads)]:.4g} s/step")
    return out


def run_training(args, data):
    from bench.report import write_training_report
    from bench.training import compare_training

    if data is None:
        raise SystemExit("--training needs the MNIST files (--data-dir or FASTNUM_DATA_DIR)")
    report = compare_training(data, args.epochs, args.training_repeats, log=lambda text: print(text, flush=True))
    report["machine"] = machine_facts()
    report["source"] = f"real MNIST ({display_path(data)})"
    report["command"] = report_command(sys.argv[1:])
    write_training_report(report, args.out, args.update_readme)
    return 0


def run_networks(args, data):
    from bench.networks import NETWORKS, merge_rerun_rows, write_networks_report
    from bench.networks import run_networks as run

    only = None
    if args.only:
        only = [name.strip() for name in args.only.split(",")]
        unknown = [name for name in only if name not in NETWORKS]
        if unknown:
            raise SystemExit(f"python -m bench --only: no row {', '.join(unknown)} (rows: {', '.join(NETWORKS)})")
    report = run(args, data, machine_facts(), log=lambda text: print(text, flush=True), only=only)
    report["source"] = f"real MNIST ({display_path(data)})"
    report["command"] = report_command(sys.argv[1:])
    if only is not None:
        report = merge_rerun_rows(args.out / "networks.json", report)
    write_networks_report(report, args.out, args.update_readme)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir",
                        help="folder with the MNIST IDX files (default: $FASTNUM_DATA_DIR or ../shared/data/mnist)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: fewer samples and repeats (a minute or two)")
    parser.add_argument("--full-reference", action="store_true", help="time the book's loop over every parameter")
    parser.add_argument("--threads", type=int, default=None, help="numba threads for fastnum (default: all cores)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the report (default bench/results/; with --quick a new temporary folder, "
                        "so that a smoke run never overwrites the committed results)")
    parser.add_argument("--update-readme", action="store_true", help="rewrite the README's performance table")
    parser.add_argument("--training", action="store_true",
                        help="instead: the 16-epoch runs, fastnum train against plain-numpy backprop training")
    parser.add_argument("--epochs", type=int, default=16, help="epochs of the --training runs (default 16)")
    parser.add_argument("--training-repeats", type=int, default=3, help="repeats of each --training run")
    parser.add_argument("--networks", action="store_true",
                        help="instead: the numerical gradients of the book's other networks (bench/networks.py)")
    parser.add_argument("--only", help="with --networks: rerun these rows (comma-separated names of "
                        "bench/networks.py's NETWORKS) and merge them into the stored networks.json, which must "
                        "come from the same machine")
    parser.add_argument("--cpu-name", help="numba code for this CPU model (haswell: AVX2 code on an AVX-512 "
                        "machine); its own numba cache")
    return parser


def report_folder(args):
    """Where the report goes: ``--out``, else ``bench/results/``; a ``--quick`` smoke run never writes
    the committed results (a new temporary folder, said on the first line) nor the README."""
    if args.quick and args.update_readme:
        raise SystemExit("python -m bench: --quick is a smoke run; it does not write the README (drop --update-readme)")
    if args.out is not None:
        return args.out
    if not args.quick:
        return RESULTS
    out = Path(tempfile.mkdtemp(prefix="fastnum-bench-quick-"))
    print(f"a smoke run: its report goes to {out} (--out to choose)", flush=True)
    return out


def main(argv=None):
    args = build_parser().parse_args(argv)
    import numba

    args.threads = args.threads or numba.config.NUMBA_NUM_THREADS
    args.out = report_folder(args)
    if args.quick:
        args.n_sampled, args.repeats, args.sampled_repeats, args.full_repeats = 200, 3, 2, 1
        args.hidden_grid, args.batch_grid = [50, 100], [10, 100]
    else:
        args.n_sampled, args.repeats, args.sampled_repeats, args.full_repeats = 2000, 15, 3, 3
        args.hidden_grid, args.batch_grid = [50, 100, 200], [10, 100, 1000]
    if args.cpu_name:
        os.environ["NUMBA_CPU_NAME"] = args.cpu_name
        os.environ["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"fastnum-bench-cache-{args.cpu_name}")
    data = mnist_dir(args.data_dir)
    if args.training:
        return run_training(args, data)
    if args.networks:
        return run_networks(args, data)
    base = {"data_dir": str(data) if data else None, "batch_size": 100, "hidden": 50, "seed": 0,
            "n_params": N_PARAMS, "entries": sample_entries(args.n_sampled)}
    log = lambda text: print(text, flush=True)  # noqa: E731
    started = time.perf_counter()
    log(f"fastnum benchmark: {'real MNIST in ' + display_path(data) if data else 'SYNTHETIC data (no MNIST found)'}")
    names = [n for n in CONTENDERS if n != "scipy_approx_fprime"]
    try:
        import scipy  # noqa: F401

        names.append("scipy_approx_fprime")
    except ImportError:
        log("  scipy is not installed: (6) approx_fprime skipped")
    results = {name: time_contender(name, base, args, log) for name in names}
    for name in VARIANTS:
        results[name] = time_variant(name, base, args, log)
    compare_to_reference(results, base["entries"], args.full_reference)
    report = {
        "command": report_command(sys.argv[1:] if argv is None else argv),
        "source": results["book"]["source"], "batch_size": 100, "threads": args.threads,
        "n_sampled": len(base["entries"]), "full_reference": args.full_reference, "quick": args.quick,
        "machine": machine_facts(), "results": results,
        "thread_scaling": thread_scaling(base, args, log), "scaling": scaling(base, args, log),
    }
    report["benchmark_seconds"] = time.perf_counter() - started
    write_report(report, args.out, args.update_readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
