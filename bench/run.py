"""The side-by-side benchmark: fastnum against plain numpy, on one batch.

    python -m bench                  # the full benchmark (a few minutes)
    python -m bench --quick          # a smoke test, under 2 minutes
    python -m bench --full-reference # time the book's loop over all 39,760 parameters
    python -m bench --update-readme  # also rewrite the README's performance table

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

from bench.contenders import CONTENDERS, PARAM_SHAPES
from bench.data import mnist_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
README = ROOT / "README.md"
N_PARAMS = sum(int(np.prod(s)) for s in PARAM_SHAPES.values())
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


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


def summarise(result):
    times = np.array(result["step_seconds"])
    result["median_s"] = float(np.median(times))
    result["min_s"] = float(times.min())
    result["max_s"] = float(times.max())
    return result


def machine_facts():
    import numba
    from threadpoolctl import threadpool_info

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or cpu
    try:
        import scipy

        scipy_version = scipy.__version__
    except ImportError:
        scipy_version = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "numpy": np.__version__, "numba": numba.__version__,
        "scipy": scipy_version,
        "blas": [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
                 for i in threadpool_info() if i.get("user_api") == "blas"],
    }


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


def fmt_seconds(s):
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} µs"


def fmt_ratio(ratio):
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def markdown(report):
    facts = report["machine"]
    lines = [
        f"One gradient of one training step: 784-50-10, batch {report['batch_size']}, "
        f"{report['source']}; the book's initial weights (seed 0).",
        f"Measured {facts['date'][:10]} on {facts['cpu']}, {facts['cores']} cores; numpy {facts['numpy']}, "
        f"numba {facts['numba']}, BLAS {(facts['blas'] or [{}])[0].get('internal_api')} "
        f"{(facts['blas'] or [{}])[0].get('version')}; fastnum with {report['threads']} numba threads.",
        f"Command: `{report['command']}`",
        "",
        "| method | time per step (median) | spread (min-max) | speed-up vs (1) | first call, cold cache | "
        "max abs diff vs (1) | threads |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    reference = report["results"]["book"]["median_s"]
    for name, r in report["results"].items():
        note = ""
        if r["kind"] == "sampled":
            note = f" (timed on {report['n_sampled'] if name != 'book' or not report['full_reference'] else N_PARAMS:,} " \
                   f"sampled parameters, extrapolated to {N_PARAMS:,})"
        threads = (f"{r['numba_threads']} numba" if r["runtime"] == "numba"
                   else f"{r['blas_threads']} BLAS (best of 1, 2)")
        compile_s = fmt_seconds(r["compile_seconds"]) if "compile_seconds" in r else "-"
        diff = r.get("max_abs_diff")
        lines.append(
            f"| {r['label']}{note} | {fmt_seconds(r['median_s'])} | {fmt_seconds(r['min_s'])}-{fmt_seconds(r['max_s'])} "
            f"| {fmt_ratio(reference / r['median_s'])} | {compile_s} | {'-' if diff is None else f'{diff:.1e}'} | {threads} |"
        )
    lines += ["", "Thread scaling (numba threads, seconds per step):", ""]
    for name, by_threads in report["thread_scaling"].items():
        one, two = by_threads.get("1"), by_threads.get("2")
        lines.append(f"- {name}: 1 thread {fmt_seconds(one)}, 2 threads {fmt_seconds(two)} "
                     f"(speed-up {one / two:.2f}x)")
    lines += ["", "Growth of `method='incremental'` (seconds per step ~ size^exponent):", ""]
    for axis, data in report["scaling"].items():
        points = ", ".join(f"{v}: {fmt_seconds(s)}" for v, s in data["points"])
        exponent = "-" if data["exponent"] is None else f"{data['exponent']:.2f}"
        lines.append(f"- {axis}: {points}; fitted exponent {exponent}")
    return "\n".join(lines) + "\n"


def plot(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.4, 1]})
    names = list(report["results"])
    medians = [report["results"][n]["median_s"] for n in names]
    labels = [report["results"][n]["label"] for n in names]
    colors = ["#d62728" if report["results"][n]["runtime"] == "numpy" else "#1f77b4" for n in names]
    y = np.arange(len(names))[::-1]
    ax1.barh(y, medians, color=colors)
    ax1.set_yticks(y, labels, fontsize=8)
    ax1.set_xscale("log")
    ax1.set_xlabel("seconds per training step (log scale)")
    for yi, m in zip(y, medians):
        ax1.text(m, yi, " " + fmt_seconds(m), va="center", fontsize=8)
    ax1.set_title(f"gradient of one step, 784-50-10, batch {report['batch_size']}\n(red: plain numpy, blue: fastnum)",
                  fontsize=9)
    for axis, marker in (("hidden", "o"), ("batch_size", "s")):
        data = report["scaling"][axis]
        values = [p[0] for p in data["points"]]
        seconds = [p[1] for p in data["points"]]
        exponent = data["exponent"]
        ax2.loglog(values, seconds, marker=marker,
                   label=f"{axis} (exponent {exponent:.2f})" if exponent is not None else axis)
    ax2.set_xlabel("hidden size / batch size")
    ax2.set_ylabel("seconds per step, method='incremental'")
    ax2.set_title("scaling", fontsize=9)
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3, which="both")
    if "SYNTHETIC" in report["source"]:
        fig.suptitle("SYNTHETIC MNIST-shaped data", color="red")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_readme(table):
    text = README.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(f"README.md has no {README_START} ... {README_END} section to update")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    README.write_text(f"{head}{README_START}\n{table}{README_END}{tail}")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $FASTNUM_DATA_DIR or ../shared/data/mnist)")
    parser.add_argument("--quick", action="store_true", help="a smoke test: fewer samples and repeats (under 2 minutes)")
    parser.add_argument("--full-reference", action="store_true", help="time the book's loop over every parameter")
    parser.add_argument("--threads", type=int, default=None, help="numba threads for fastnum (default: all cores)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for benchmark.{md,json,png}")
    parser.add_argument("--update-readme", action="store_true", help="rewrite the README's performance table")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    import numba

    args.threads = args.threads or numba.config.NUMBA_NUM_THREADS
    if args.quick:
        args.n_sampled, args.repeats, args.sampled_repeats, args.full_repeats = 200, 3, 2, 1
        args.hidden_grid, args.batch_grid = [50, 100], [10, 100]
    else:
        args.n_sampled, args.repeats, args.sampled_repeats, args.full_repeats = 2000, 15, 3, 3
        args.hidden_grid, args.batch_grid = [50, 100, 200], [10, 100, 1000]
    data = mnist_dir(args.data_dir)
    base = {"data_dir": str(data) if data else None, "batch_size": 100, "hidden": 50, "seed": 0,
            "n_params": N_PARAMS, "entries": sample_entries(args.n_sampled)}
    log = lambda text: print(text, flush=True)  # noqa: E731
    started = time.perf_counter()
    log(f"fastnum benchmark: {'real MNIST in ' + str(data) if data else 'SYNTHETIC data (no MNIST found)'}")
    names = [n for n in CONTENDERS if n != "scipy_approx_fprime"]
    try:
        import scipy  # noqa: F401

        names.append("scipy_approx_fprime")
    except ImportError:
        log("  scipy is not installed: (6) approx_fprime skipped")
    results = {name: time_contender(name, base, args, log) for name in names}
    reference = np.array(results["book"]["values"])
    if args.full_reference:  # compare on the sampled entries only
        index = {(n, tuple(i)) for n, i in base["entries"]}
        full_entries = sample_entries(N_PARAMS)
        pick = [k for k, (n, i) in enumerate(full_entries) if (n, tuple(i)) in index]
        reference = reference[pick]
    for name, r in results.items():
        values = np.array(r["values"])
        if name == "book" and args.full_reference:
            values = values[pick]
        r["max_abs_diff"] = float(np.abs(values - reference).max()) if values.size else None
    report = {
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "source": results["book"]["source"], "batch_size": 100, "threads": args.threads,
        "n_sampled": len(base["entries"]), "full_reference": args.full_reference, "quick": args.quick,
        "machine": machine_facts(), "results": results,
        "thread_scaling": thread_scaling(base, args, log), "scaling": scaling(base, args, log),
    }
    report["benchmark_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    (args.out / "benchmark.md").write_text(table)
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=1))
    plot(report, args.out / "benchmark.png")
    print()
    print(table)
    print(f"written to {args.out}/benchmark.{{md,json,png}} in {report['benchmark_seconds']:.0f} s")
    if args.update_readme:
        update_readme(table)
        print("README.md performance table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
