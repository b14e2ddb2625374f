"""Smoke test of the benchmark script (never a timing test: only that it runs and reports)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_runs_and_writes_its_report(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "benchmark.json").read_text())
    expected = {"book", "numpy_incremental", "fastnum_full", "fastnum_incremental", "numpy_backprop",
                "fastnum_backprop"}
    assert expected <= set(report["results"])
    for name in ("numpy_incremental", "fastnum_full", "fastnum_incremental"):
        assert report["results"][name]["max_abs_diff"] <= 1e-9, name
    assert report["results"]["book"]["max_abs_diff"] == 0.0
    assert report["machine"]["cores"] >= 1 and report["machine"]["numba"]
    table = (tmp_path / "benchmark.md").read_text()
    assert "sampled parameters, extrapolated to 39,760" in table
    assert "BLAS (best of 1, 2)" in table
    assert (tmp_path / "benchmark.png").read_bytes()[:4] == b"\x89PNG"
