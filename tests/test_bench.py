"""Smoke test of the benchmark script (never a timing test: only that it runs and reports)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
        assert report["results"][name]["max_abs_diff"] <= 1e-10, name
    # backprop is not the central difference: the bench must see the difference
    assert report["results"]["fastnum_backprop"]["max_abs_diff"] > 1e-10
    assert report["results"]["book"]["max_abs_diff"] is None  # the reference, not compared with itself
    assert report["machine"]["cores"] >= 1 and report["machine"]["numba"]
    table = (tmp_path / "benchmark.md").read_text()
    assert "| reference |" in table
    assert str(ROOT.parent) not in table and str(ROOT.parent) not in (tmp_path / "benchmark.json").read_text()
    assert "sampled parameters, extrapolated to 39,760" in table
    assert "BLAS (best of 1, 2)" in table
    assert (tmp_path / "benchmark.png").read_bytes()[:4] == b"\x89PNG"


def test_the_reference_comparison_catches_a_wrong_contender():
    from bench.run import compare_to_reference, sample_entries

    entries = sample_entries(5)
    book = [0.1, -0.2, 0.3, 0.0, 1e-3]
    results = {"book": {"values": book}, "right": {"values": [v + 1e-13 for v in book]},
               "wrong": {"values": [*book[:4], 2e-3]}}
    compare_to_reference(results, entries, full_reference=False)
    assert results["book"]["max_abs_diff"] is None
    assert results["right"]["max_abs_diff"] <= 1e-12
    assert abs(results["wrong"]["max_abs_diff"] - 1e-3) < 1e-12
    results["short"] = {"values": book[:3]}
    with pytest.raises(ValueError, match="3 values for 5"):
        compare_to_reference(results, entries, full_reference=False)


def test_report_paths_are_never_absolute():
    from bench.data import display_path

    assert display_path(ROOT / "bench") == "bench"
    assert display_path(ROOT.parent / "shared" / "data") == "../shared/data"
    assert not display_path("/").startswith("/")
