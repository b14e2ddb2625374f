"""The benchmark's report: markdown table, JSON, figure and the README section.

Apart from running (``bench/run.py``): ``python -m bench.report
bench/results/benchmark.json`` writes the table and figure again from a
stored run, without timing anything (``bench/results/training.json``: the
training table; ``--update-readme``: its README section too).
"""

import json
import sys
from pathlib import Path

import numpy as np

from bench.contenders import N_PARAMS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
TRAINING_START = "<!-- training:start -->"
TRAINING_END = "<!-- training:end -->"


def fmt_seconds(s):
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} µs"


def fmt_ratio(ratio):
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def _codegen_note(facts):
    name = facts.get("numba_cpu_name", "host")
    return "" if name == "host" else f" (numba code generated for {name})"


def _layer_note(report):
    """" on fastnum's own threads" (or the numba threading layer an older run recorded), or nothing."""
    layers = {r.get("threading_layer") for r in report.get("results", {}).values()} - {None}
    if not layers:
        return ""
    if layers == {"fastnum's own"}:
        return " on fastnum's own threads (fastnum/_workers.py)"
    return f" on {', '.join(sorted(layers))} threads (numba's threading layer)"


def markdown(report):
    facts = report["machine"]
    lines = [
        f"One gradient of one training step: 784-50-10, batch {report['batch_size']}, "
        f"{report['source']}; the book's initial weights (seed 0).",
        f"Measured {facts['date'][:10]} on {facts['cpu']}, {facts['cores']} cores, "
        f"{facts.get('vector_width', 'vector width not recorded')}"
        f"{_codegen_note(facts)}"
        f"; numpy {facts['numpy']}, "
        f"numba {facts['numba']}, BLAS {(facts['blas'] or [{}])[0].get('internal_api')} "
        f"{(facts['blas'] or [{}])[0].get('version')}; fastnum with {report['threads']} numba threads"
        f"{_layer_note(report)}.",
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
            timed = N_PARAMS if name == "book" and report["full_reference"] else report["n_sampled"]
            note = f" (timed on {timed:,} " \
                   f"sampled parameters, extrapolated to {N_PARAMS:,})"
        threads = (f"{r['numba_threads']} numba" if r["runtime"] == "numba"
                   else f"{r['blas_threads']} BLAS (best of 1, 2)")
        compile_s = fmt_seconds(r["compile_seconds"]) if "compile_seconds" in r else "-"
        diff = r.get("max_abs_diff")
        diff_text = "reference" if name == "book" else ("-" if diff is None else f"{diff:.1e}")
        lines.append(
            f"| {r['label']}{note} | {fmt_seconds(r['median_s'])} "
            f"| {fmt_seconds(r['min_s'])}-{fmt_seconds(r['max_s'])} "
            f"| {fmt_ratio(reference / r['median_s'])} | {compile_s} | {diff_text} | {threads} |"
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


def update_readme(table, start=README_START, end=README_END):
    text = README.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} ... {end} section to update")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{table}{end}{tail}")


def write_tables(report, out, stem, table, readme_section=None):
    """``{stem}.md`` (the table) and ``{stem}.json`` (the report) in ``out``, the table printed, and
    the README section between the markers ``readme_section`` (start, end) replaced when given."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(table)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    print()
    print(table)
    if readme_section is not None:
        update_readme(table, *readme_section)
        print(f"README.md {stem} table updated")
    return out


def write_training_report(report, out, readme=False):
    """``training.{md,json}`` in ``out``, and the README section when ``readme``."""
    from bench.training import training_markdown

    write_tables(report, out, "training", training_markdown(report, report["machine"]),
                 (TRAINING_START, TRAINING_END) if readme else None)


def write_report(report, out, readme=False):
    """``benchmark.{md,json,png}`` in ``out``, and the README section when ``readme``."""
    out = write_tables(report, out, "benchmark", markdown(report), (README_START, README_END) if readme else None)
    plot(report, out / "benchmark.png")
    print(f"written to {out}/benchmark.{{md,json,png}}")


if __name__ == "__main__":
    # the tables again from a stored run, without running anything: benchmark.json or training.json
    stored = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results" / "benchmark.json"
    write = write_training_report if stored.stem == "training" else write_report
    write(json.loads(stored.read_text()), stored.parent, readme="--update-readme" in sys.argv)
