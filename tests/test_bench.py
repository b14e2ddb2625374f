"""Smoke test of the benchmark script (never a timing test: only that it runs and reports)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    stored = (tmp_path / "benchmark.json").read_text()
    assert str(ROOT) not in table and str(ROOT) not in stored  # no path of this checkout
    assert "MNIST (/" not in table and "MNIST (/" not in stored  # the data folder is shown relative
    assert "sampled parameters, extrapolated to 39,760" in table
    assert "BLAS (best of 1, 2)" in table
    assert (tmp_path / "benchmark.png").read_bytes()[:4] == b"\x89PNG"


def test_a_smoke_run_never_writes_the_committed_results():
    from bench.run import RESULTS, build_parser, report_folder

    assert report_folder(build_parser().parse_args([])) == RESULTS
    quick = report_folder(build_parser().parse_args(["--quick"]))
    assert quick != RESULTS and quick.is_dir() and not any(quick.iterdir())
    quick.rmdir()
    assert report_folder(build_parser().parse_args(["--quick", "--out", "x"])) == Path("x")
    with pytest.raises(SystemExit, match="smoke run"):
        report_folder(build_parser().parse_args(["--quick", "--update-readme"]))


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


def test_recorded_commands_and_stored_results_carry_no_absolute_path():
    """The command a report records shows its path arguments as ``display_path`` does, and no committed
    result file holds an absolute path of the machine that made it."""
    import re

    from bench.data import report_command

    data = str(ROOT.parent / "shared" / "data" / "mnist")
    command = report_command(["--training", "--data-dir", data, f"--out={ROOT / 'bench' / 'results'}", "--quick"])
    assert command == "python -m bench --training --data-dir ../shared/data/mnist --out=bench/results --quick"
    for path in (ROOT / "bench" / "results").rglob("*"):
        if path.suffix in (".json", ".md"):
            text = path.read_text()
            assert str(ROOT.parent) not in text, path
            assert not re.search(r'[\s"(]/(work|home|root|tmp|Users)/', text), path


def test_numpy_training_reference_follows_the_same_batches_as_fit(rng):
    """The benchmark's plain-numpy reference run draws the book's batches, as fastnum's fit does."""
    import numpy as np

    from bench.numpy_training import BookTwoLayerNet, train
    from fastnum import TwoLayerNet
    from fastnum.train import fit
    from tests.idx_files import make_digits

    images, labels = make_digits(rng, 300)
    x = images.reshape(300, 784).astype(np.float32) / np.float32(255.0)
    x_test, t_test = x[:60], labels[:60]
    train_acc, test_acc, _ = train(x, labels, x_test, t_test, iters=40, batch_size=20, hidden=8, seed=3)
    np.random.seed(3)
    network = TwoLayerNet(784, 8, 10)
    history = fit(network, x, labels, x_test, t_test, iters=40, batch_size=20, gradient="backprop",
                     progress=False, warm=False)
    assert abs(history.train_acc_list[-1] - train_acc) < 1e-9 and abs(history.test_acc_list[-1] - test_acc) < 1e-9
    np.random.seed(3)
    book = BookTwoLayerNet(784, 8, 10)
    grads = book.gradient(x[:20], labels[:20])
    np.random.seed(3)
    ours = TwoLayerNet(784, 8, 10).gradient(x[:20], labels[:20])
    for key in grads:
        np.testing.assert_allclose(grads[key], ours[key], rtol=0, atol=1e-12)


def test_training_table_reports_the_ratio_to_the_reference():
    from bench.training import training_markdown

    def run(seconds):
        return {"wall_seconds": seconds, "wall_seconds_all": [seconds], "final_train_acc": 0.9, "final_test_acc": 0.9}

    report = {"epochs": 16, "repeats": 1, "reference": "numpy_backprop_2",
              "results": {"fastnum_numerical": run(30.0), "fastnum_backprop": run(15.0),
                          "numpy_backprop_1": run(21.0), "numpy_backprop_2": run(20.0)},
              "ratio_numerical_to_numpy_backprop": 1.5,
              "first_run": dict(run(40.0), compile_seconds=9.0), "ratio_first_compile_to_numpy_backprop": 0.45}
    table = training_markdown(report, {"cpu": "cpu", "cores": 2, "vector_width": "AVX2"})
    assert "| 1.50x |" in table and "(reference)" in table and "**1.50x**" in table
    # the first run's whole wall time against the reference, and its compiling apart
    assert "one run): 40.0 s, **2.00x** the reference run's wall time; its compiling (9.0 s) alone is 0.45x" in table


def test_profile_step_times_every_stage(rng):
    """``python -m bench.profile_step``: every stage runs (a smoke test, nothing timed is checked)."""
    from bench.profile_step import profile
    from fastnum import TwoLayerNet
    from references.naive import mnist_like_batch

    x, t = mnist_like_batch(rng, 20)
    np.random.seed(0)
    results = profile(TwoLayerNet(784, 50, 10), x, t, repeats=1)
    assert "all perturbed losses (perturb_worker)" in results and all(ms > 0 for ms in results.values())


def test_rows_measured_again_merge_into_the_stored_run_of_the_same_machine(tmp_path):
    from bench.networks import merge_rerun_rows, networks_markdown

    machine = {"cpu": "AMD EPYC", "cores": 2, "vector_width": "AVX2"}
    row = {"label": "DeepConvNet() (ch08)", "batch_size": 10, "n_params": 5, "book_s": 10.0, "fastnum_s": 1.0,
           "speedup": 10.0, "max_abs_diff": 1e-12, "compiled": False}
    stored = {"networks": {"a": dict(row, label="A (x)"), "deep_convnet": dict(row, fastnum_s=5.0, speedup=2.0)},
              "machine": machine, "threads": 2, "source": "real MNIST (data)", "command": "python -m bench --networks"}
    (tmp_path / "networks.json").write_text(json.dumps(stored))
    rerun = {"networks": {"deep_convnet": row}, "machine": machine, "threads": 2,
             "command": "python -m bench --networks --only deep_convnet"}
    merged = merge_rerun_rows(tmp_path / "networks.json", rerun)
    assert list(merged["networks"]) == ["a", "deep_convnet"] and merged["networks"]["a"] == stored["networks"]["a"]
    assert merged["networks"]["deep_convnet"]["fastnum_s"] == 1.0
    assert merged["command"] == "python -m bench --networks"
    assert "Rows measured again since: “DeepConvNet()”: `python -m bench --networks --only deep_convnet`" in \
        networks_markdown(merged)
    with pytest.raises(SystemExit, match="rerun every row"):
        merge_rerun_rows(tmp_path / "networks.json", dict(rerun, machine=dict(machine, cpu="Intel")))
    with pytest.raises(SystemExit, match="does not exist"):
        merge_rerun_rows(tmp_path / "missing.json", rerun)
