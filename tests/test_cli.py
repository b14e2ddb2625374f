"""``fastnum train``: outputs, bad options, signals, checkpoints, resume, and what the user sees.

In-process through ``main`` where that suffices; in a child process where the
user would meet it (signals from outside, files damaged between runs).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastnum
import fastnum.cli
import fastnum.runs
import fastnum.train
from fastnum import TwoLayerNet, load_mnist, mnist
from fastnum.cli import main
from fastnum.runs import load_checkpoint, load_network
from fastnum.train import fit

ROOT = Path(__file__).resolve().parent.parent


def _train(*args):
    return main(["train", "--no-progress", "--no-verify-data", *map(str, args)])


def _child(args, cwd=ROOT, env=None, **kwargs):
    """``python -m fastnum train ...`` in a child process, unbuffered (``env``: variables to add)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "fastnum", "train", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, **kwargs)


def test_train_command_writes_every_output(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _train("--iters", 25, "--batch-size", 10, "--hidden", 5, "--data-dir", data_dir, "--eval-every", 10,
                  "--seed", 3) == 0
    (out,) = (tmp_path / "runs").iterdir()
    for name in fastnum.runs.OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    printed = capsys.readouterr().out
    assert "step      0" in printed and "step     20" in printed and "test acc" in printed
    assert f"MNIST from {data_dir.resolve()} (unverified" in printed
    history = json.loads((out / "history.json").read_text())
    assert history["eval_steps"] == [0, 10, 20, 24]
    csv_lines = (out / "history.csv").read_text().splitlines()
    assert csv_lines[0] == "step,epoch,train_loss,step_seconds,train_acc,test_acc,eval_seconds"
    assert len(csv_lines) == 26
    assert float(csv_lines[11].split(",")[2]) == history["train_loss_list"][10]
    run = json.loads((out / "run.json").read_text())
    assert run["command"][1:] == ["train", "--no-progress", "--no-verify-data", "--iters", "25", "--batch-size",
                                  "10", "--hidden", "5", "--data-dir", str(data_dir), "--eval-every", "10",
                                  "--seed", "3"]
    assert run["config"]["iters"] == 25 and run["config"]["gradient"] == "numerical"
    assert run["data"] == {"dataset": "mnist", "folders": [str(data_dir.resolve())], "verified": False}
    assert {"numpy", "numba", "python", "cpu_count"} <= set(run["sessions"][0]["versions"])
    assert run["status"] == "finished" and run["final_test_acc"] == history["test_acc_list"][-1]
    network = load_network(out / "params.npz")
    (_, _), (xt, tt) = load_mnist(data_dir=data_dir, verify=False)
    assert network.accuracy(xt, tt) == run["final_test_acc"]
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seed_follows_the_books_script(data_dir, tmp_path):
    """``fastnum train --seed 5`` == the book's script after np.random.seed(5)."""
    assert _train("--iters", 12, "--batch-size", 10, "--hidden", 4, "--gradient", "backprop", "--seed", 5,
                  "--data-dir", data_dir, "--out", tmp_path / "cli") == 0
    (x, t), (xt, tt) = load_mnist(data_dir=data_dir, verify=False)
    np.random.seed(5)
    network = TwoLayerNet(784, 4, 10)
    fit(network, x, t, xt, tt, iters=12, batch_size=10, gradient="backprop", progress=False)
    saved = np.load(tmp_path / "cli" / "params.npz")
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(saved[key], network.params[key])


def test_epochs_option_and_explicit_out(data_dir, tmp_path):
    out = tmp_path / "my-run"
    assert _train("--epochs", 2, "--batch-size", 50, "--hidden", 3, "--gradient", "backprop",
                  "--data-dir", data_dir, "--out", out) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history["train_loss_list"]) == 8  # 2 epochs of 200 / 50
    assert history["eval_steps"] == [0, 4, 7]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "-1"], "must be at least 1"),
        (["--iters", "0"], "must be at least 1"),
        (["--epochs", "2", "--iters", "5"], "not allowed with argument"),
        (["--lr", "-0.1"], "positive finite"),
        (["--lr", "nan"], "positive finite"),
        (["--gradient", "adam"], "invalid choice"),
        (["--batch-size", "201"], "fastnum train: error: --batch-size 201 is larger than the 200 training images"),
        (["--data-dir", "/no/such/folder"], "is not a folder"),
        (["--threads", "999"], "at most"),
        (["--resume", "/no/such/run"], "is not a folder"),
        (["--checkpoint-every", "0"], "positive finite"),
    ],
)
def test_bad_options_are_rejected_before_any_work(args, message, data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if "--data-dir" not in args:
        args = [*args, "--data-dir", str(data_dir)]
    with pytest.raises(SystemExit) as info:
        _train(*args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_out_must_be_new_or_empty_and_creatable(data_dir, tmp_path, capsys):
    someone = tmp_path / "someone"
    someone.mkdir()
    files = {"run.json": b"{}", "history.json": b"[]", "params.npz": b"mine"}
    for name, content in files.items():
        (someone / name).write_bytes(content)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out, message in [(someone, "is not empty (it holds history.json, params.npz, run.json)"),
                         (a_file, "is a file, not a folder"),
                         (a_file / "run", "cannot be created: " + str(a_file) + " is a file")]:
        with pytest.raises(SystemExit):
            _train("--iters", 2, "--batch-size", 10, "--data-dir", data_dir, "--out", out)
        err = capsys.readouterr().err
        assert f"fastnum train: error: --out {out} " + message in err
    assert {p.name: p.read_bytes() for p in someone.iterdir()} == files  # nothing overwritten
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _train("--iters", 2, "--batch-size", 10, "--hidden", 2, "--gradient", "backprop",
                  "--data-dir", data_dir, "--out", empty) == 0


def _train_without_data(tmp_path, monkeypatch):
    """``fastnum train`` pointed at an empty folder, with no cache or data folder to fall back on."""
    monkeypatch.setenv(mnist.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(mnist.DATA_DIR_ENV, raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit):
        _train("--data-dir", empty, "--out", tmp_path / "run")


def test_missing_data_names_the_cli_options(tmp_path, monkeypatch, capsys):
    _train_without_data(tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert "fastnum train: error: cannot load MNIST" in err
    assert "--data-dir" in err and "FASTNUM_DATA_DIR" in err and "data_dir=" not in err
    assert not (tmp_path / "run").exists()


def test_compiling_started_before_the_data_stops_when_loading_fails(tmp_path, monkeypatch, capsys):
    """With the kernels not in numba's cache, the CLI starts a child process compiling them (shared with
    this one as a queue) before it loads the data; when the loading fails, that child is stopped."""
    import fastnum._compile

    children = []

    class Child:
        def __init__(self, command, **kwargs):
            self.command, self.killed = command, False
            children.append(self)

        def poll(self):
            return -9 if self.killed else None

        def kill(self):
            self.killed = True

        def wait(self):
            return self.poll()

    monkeypatch.setattr(fastnum._compile, "kernel_ready", lambda kernel, signature: False)
    monkeypatch.setattr(fastnum._compile.subprocess, "Popen", Child)
    _train_without_data(tmp_path, monkeypatch)
    assert "cannot load MNIST" in capsys.readouterr().err
    assert len(children) == 1 and children[0].killed
    assert children[0].command[2:3] == ["fastnum._compile"] and "--shared" in children[0].command
    request = fastnum._compile.CompileRequest.from_json(children[0].command[3])
    assert request.spec == {"network": "TwoLayerNet", "hidden": [50], "activation": "sigmoid"}
    assert (request.n_in, request.n_out, request.x_dtype) == (784, 10, "float32")
    assert request.methods == ("numerical_gradient", "loss", "accuracy")


def test_wrong_data_set_is_refused_in_one_line(data_dir, tmp_path):
    """The user's MNIST files, asked for as Fashion-MNIST: refused, saying what they are."""
    script = (
        "import hashlib, sys\n"
        "from pathlib import Path\n"
        "from fastnum import datasets\n"
        "from fastnum.cli import main\n"
        "folder = Path(sys.argv[1])\n"
        "sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob('*.gz')}\n"
        "# these small files play MNIST's published ones\n"
        "datasets.DATASETS['mnist'] = datasets.DatasetSource(mirrors=(), sha256=sums)\n"
        "sys.exit(main(['train', '--dataset', sys.argv[2], '--data-dir', str(folder), '--iters', '1',\n"
        "               '--batch-size', '10', '--hidden', '2', '--gradient', 'backprop', '--no-progress',\n"
        "               '--out', sys.argv[3]]))\n"
    )
    run = subprocess.run([sys.executable, "-c", script, data_dir, "fashion-mnist", tmp_path / "f"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("fastnum train: error: cannot load Fashion-MNIST: ")
    assert "is MNIST's training images, not Fashion-MNIST's training images" in last
    assert "--data-dir" in last and "Traceback" not in run.stderr
    assert not (tmp_path / "f").exists()
    run = subprocess.run([sys.executable, "-c", script, data_dir, "mnist", tmp_path / "m"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "m" / "run.json").read_text())["data"]["verified"] is True


def _signal_at(monkeypatch, step, signum=signal.SIGINT):
    """Send this process a real signal right after the given step."""
    real_fit = fastnum.train.fit

    def fit_with_signal(*args, on_step=None, **kwargs):
        def step_hook(state):
            on_step(state)
            if state.step == step:
                os.kill(os.getpid(), signum)

        return real_fit(*args, on_step=step_hook, **kwargs)

    monkeypatch.setattr(fastnum.train, "fit", fit_with_signal)


def _same_params(a, b):
    whole, split = np.load(a / "params.npz"), np.load(b / "params.npz")
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(whole[key], split[key])


def test_ctrl_c_checkpoints_and_resume_matches_an_uninterrupted_run(data_dir, tmp_path, monkeypatch, capsys):
    common = ["--iters", 30, "--batch-size", 10, "--hidden", 4, "--data-dir", data_dir, "--eval-every", 7,
              "--seed", 11]
    assert _train(*common, "--out", tmp_path / "whole") == 0

    with monkeypatch.context() as patch:
        _signal_at(patch, 12)
        assert _train(*common, "--out", tmp_path / "split") == 130
    assert "--resume" in capsys.readouterr().out
    checkpoint = load_checkpoint(tmp_path / "split")
    assert checkpoint.next_step == 13 and len(checkpoint.history(tmp_path / "split").train_loss_list) == 13
    assert not (tmp_path / "split" / "params.npz").exists()
    assert json.loads((tmp_path / "split" / "run.json").read_text())["status"] == "interrupted"

    assert _train("--resume", tmp_path / "split") == 0
    _same_params(tmp_path / "whole", tmp_path / "split")
    h_whole = json.loads((tmp_path / "whole" / "history.json").read_text())
    h_split = json.loads((tmp_path / "split" / "history.json").read_text())
    assert h_whole["train_loss_list"] == h_split["train_loss_list"]
    assert h_whole["test_acc_list"] == h_split["test_acc_list"]
    csv_whole = [line.split(",")[2] for line in (tmp_path / "whole" / "history.csv").read_text().splitlines()]
    csv_split = [line.split(",")[2] for line in (tmp_path / "split" / "history.csv").read_text().splitlines()]
    assert csv_whole == csv_split


def test_resume_refuses_changed_settings_and_existing_runs_need_resume(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train("--iters", 3, "--batch-size", 10, "--hidden", 3, "--data-dir", data_dir, "--out", out) == 0
    with pytest.raises(SystemExit):
        _train("--resume", out, "--lr", "0.5")
    assert "only --threads" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _train("--iters", 3, "--data-dir", data_dir, "--out", out)
    assert f"--resume {out}" in capsys.readouterr().err


def test_sigterm_saves_like_ctrl_c_and_resume_is_bit_identical(data_dir, tmp_path):
    """A scheduler's SIGTERM mid-run: step finished, files written, exit 143; resume ends as an uninterrupted run."""
    common = ["--no-progress", "--no-verify-data", "--iters", 400, "--batch-size", 10, "--hidden", 3,
              "--eval-every", 20, "--gradient", "backprop", "--seed", 2, "--data-dir", data_dir]
    whole = _child([*common, "--out", tmp_path / "whole"])
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    child = _child([*common, "--out", tmp_path / "split"])
    for line in child.stdout:
        if line.startswith("step     40"):
            break
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    assert "Traceback" not in err and "--resume" in out
    split = tmp_path / "split"
    for name in ("checkpoint.npz", "run.json", "history.json", "history.csv", "accuracy.png", "loss.png"):
        assert (split / name).is_file(), name
    run = json.loads((split / "run.json").read_text())
    assert run["status"] == "interrupted" and run["sessions"][0]["signal"] == "SIGTERM"
    first_command = run["command"]

    resumed = _child(["--no-progress", "--resume", split])
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    _same_params(tmp_path / "whole", split)
    run = json.loads((split / "run.json").read_text())
    assert run["command"] == first_command  # the original command survives the resume
    assert [s["command"][-2:] for s in run["sessions"]] == [first_command[-2:], ["--resume", str(split)]]
    assert run["status"] == "finished"


def test_damaged_checkpoint_is_one_line(data_dir, tmp_path):
    out = tmp_path / "run"
    assert _train("--iters", 3, "--batch-size", 10, "--hidden", 2, "--gradient", "backprop",
                  "--data-dir", data_dir, "--out", out) == 0
    good = (out / "checkpoint.npz").read_bytes()
    for damaged in (good[: len(good) // 2], b"garbage", b""):
        (out / "checkpoint.npz").write_bytes(damaged)
        run = subprocess.run([sys.executable, "-m", "fastnum", "train", "--resume", str(out)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 2
        assert "Traceback" not in run.stderr
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith(f"fastnum train: error: --resume {out}: ") and "checkpoint" in last


def test_truncated_decoded_cache_is_rebuilt_from_the_cli(data_dir, tmp_path):
    env = dict(os.environ)
    args = [sys.executable, "-m", "fastnum", "train", "--no-progress", "--no-verify-data", "--iters", "2",
            "--batch-size", "10", "--hidden", "2", "--gradient", "backprop", "--data-dir", str(data_dir)]
    first = subprocess.run([*args, "--out", tmp_path / "a"], cwd=ROOT, capture_output=True, text=True, env=env,
                           timeout=300)
    assert first.returncode == 0, first.stderr
    (cached,) = (tmp_path / "cache" / "decoded").glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:1000])
    second = subprocess.run([*args, "--out", tmp_path / "b"], cwd=ROOT, capture_output=True, text=True, env=env,
                            timeout=300)
    assert second.returncode == 0, second.stderr
    assert cached.stat().st_size > 1000  # decoded again and overwritten
    _same_params(tmp_path / "a", tmp_path / "b")


def test_checkpoints_by_time_and_of_bounded_size(data_dir, tmp_path, monkeypatch):
    sizes = {}
    real_save = fastnum.runs.save_checkpoint

    def recording_save(folder, params, next_step, *rest):
        real_save(folder, params, next_step, *rest)
        sizes[next_step] = (Path(folder) / "checkpoint.npz").stat().st_size

    monkeypatch.setattr(fastnum.runs, "save_checkpoint", recording_save)
    assert _train("--iters", 150, "--batch-size", 10, "--hidden", 2, "--gradient", "backprop", "--eval-every",
                  1000, "--checkpoint-every", "0.000001", "--data-dir", data_dir, "--out", tmp_path / "run") == 0
    # evaluations only after steps 0 and 149, yet a checkpoint after every step (by time)
    assert set(range(1, 151)) <= set(sizes)
    assert max(sizes.values()) - min(sizes.values()) < 64  # the history is not in it


def test_interrupt_before_training_or_while_writing_is_one_quiet_line(data_dir, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(fastnum.train, "warm_up", interrupted)
        assert _train("--iters", 5, "--batch-size", 10, "--data-dir", data_dir, "--out", tmp_path / "a") == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fastnum train: interrupted while compiling the kernels; nothing was written"]
    assert not (tmp_path / "a").exists()

    with monkeypatch.context() as patch:
        patch.setattr(fastnum.runs, "save_plots", interrupted)
        assert _train("--iters", 5, "--batch-size", 10, "--hidden", 2, "--data-dir", data_dir,
                      "--out", tmp_path / "b") == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fastnum train: interrupted while writing the run's files; ")
    assert f"fastnum train --resume {tmp_path / 'b'}" in err[0]
    assert load_checkpoint(tmp_path / "b").next_step == 5


def test_python_dash_m_and_a_real_ctrl_c(data_dir, tmp_path):
    """End to end in a child process: progress lines, SIGINT, checkpoint, clean exit."""
    child = _child(["--no-progress", "--no-verify-data", "--iters", "100000", "--batch-size", "10", "--hidden",
                    "3", "--eval-every", "20", "--gradient", "backprop", "--data-dir", data_dir,
                    "--out", tmp_path / "run"])
    for line in child.stdout:
        if line.startswith("step     20"):
            break
    time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert "--resume" in out
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.next_step > 20 and checkpoint.config["iters"] == 100000


def test_outputs_get_ordinary_permissions(tmp_path):
    from fastnum._atomic import atomic_write

    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f.bin", lambda handle: handle.write(b"x"))
    finally:
        os.umask(umask)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


MULTI_LAYER_OPTIONS = ["--hidden", 6, 5, "--batchnorm", "--dropout", 0.3, "--weight-decay", 0.01, "--weight-init",
                       "xavier", "--activation", "sigmoid"]


def test_multi_layer_run_and_resume_match_an_uninterrupted_run(data_dir, tmp_path, monkeypatch, capsys):
    """Batch norm's running statistics and dropout's draws from np.random survive a checkpoint."""
    common = ["--iters", 16, "--batch-size", 10, "--data-dir", data_dir, "--eval-every", 5, "--seed", 2,
              *MULTI_LAYER_OPTIONS]
    assert _train(*common, "--out", tmp_path / "whole") == 0
    printed = capsys.readouterr().out
    assert "MultiLayerNetExtend 784-6-5-10 sigmoid (init xavier, weight decay 0.01, batch norm, dropout 0.3)" \
        in printed
    with monkeypatch.context() as patch:
        _signal_at(patch, 7)
        assert _train(*common, "--out", tmp_path / "split") == 130
    assert _train("--resume", tmp_path / "split") == 0
    whole, split = load_network(tmp_path / "whole" / "params.npz"), load_network(tmp_path / "split" / "params.npz")
    assert type(whole).__name__ == "MultiLayerNetExtend" and whole.use_batchnorm and whole.use_dropout
    assert list(whole.params) == ["W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1", "gamma2", "beta2"]
    for name in whole.params:
        np.testing.assert_array_equal(whole.params[name], split.params[name])
    for k in range(2):
        np.testing.assert_array_equal(whole.running_mean[k], split.running_mean[k])
        np.testing.assert_array_equal(whole.running_var[k], split.running_var[k])
    h_whole = json.loads((tmp_path / "whole" / "history.json").read_text())
    h_split = json.loads((tmp_path / "split" / "history.json").read_text())
    assert h_whole["train_loss_list"] == h_split["train_loss_list"]
    assert h_whole["test_acc_list"] == h_split["test_acc_list"]


def test_several_hidden_sizes_train_the_books_multi_layer_net(data_dir, tmp_path):
    """--hidden 6 5 alone: the book's MultiLayerNet defaults (ReLU, He), its weights for the seed."""
    from references import multi_layer as ref

    assert _train("--iters", 1, "--batch-size", 10, "--hidden", 6, 5, "--data-dir", data_dir, "--gradient",
                  "backprop", "--seed", 4, "--lr", 1e-300, "--out", tmp_path / "run") == 0
    network = load_network(tmp_path / "run" / "params.npz")
    assert network.activation == "relu" and network.weight_init_std == "relu" and not network.use_batchnorm
    np.random.seed(4)
    expected = ref.initial_params(784, [6, 5], 10)
    for name in expected:
        np.testing.assert_allclose(network.params[name], expected[name], rtol=1e-12, atol=1e-290)


@pytest.mark.parametrize("options, message", [
    (["--hidden", 6, 5, "--gradient", "numerical-full"], "numerical-full exists for the two-layer net only"),
    (["--dropout", 1.0], "below 1"),
    (["--weight-decay", -0.1], ">= 0"),
    (["--weight-init", "kaiming"], "relu, he, sigmoid, xavier"),
])
def test_bad_multi_layer_options(data_dir, tmp_path, capsys, options, message):
    with pytest.raises(SystemExit):
        _train("--iters", 2, "--data-dir", data_dir, "--out", tmp_path / "run", *options)
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_convnet_run_and_resume_match_an_uninterrupted_run(data_dir, tmp_path, monkeypatch, capsys):
    """``--network convnet``: the book's SimpleConvNet trained with its numerical gradient, resumable."""
    common = ["--network", "convnet", "--hidden", 8, "--iters", 6, "--batch-size", 5, "--data-dir", data_dir,
              "--eval-every", 3, "--seed", 1]
    assert _train(*common, "--out", tmp_path / "whole") == 0
    assert "SimpleConvNet (conv 30 5x5, pool 2x2, hidden 8)" in capsys.readouterr().out
    with monkeypatch.context() as patch:
        _signal_at(patch, 2)
        assert _train(*common, "--out", tmp_path / "split") == 130
    assert _train("--resume", tmp_path / "split") == 0
    whole, split = load_network(tmp_path / "whole" / "params.npz"), load_network(tmp_path / "split" / "params.npz")
    assert type(whole).__name__ == "SimpleConvNet" and whole.params["W1"].shape == (30, 1, 5, 5)
    for name in whole.params:
        np.testing.assert_array_equal(whole.params[name], split.params[name])
    np.random.seed(1)
    initial = fastnum.SimpleConvNet(hidden_size=8)
    assert not np.array_equal(initial.params["W2"], whole.params["W2"])  # it trained


@pytest.mark.parametrize("options", [["--hidden", 8, 4], ["--batchnorm"], ["--activation", "sigmoid"],
                                     ["--gradient", "numerical-full"]])
def test_convnet_refuses_options_it_has_not(data_dir, tmp_path, capsys, options):
    with pytest.raises(SystemExit):
        _train("--network", "convnet", "--iters", 2, "--data-dir", data_dir, "--out", tmp_path / "run", *options)
    assert "convnet" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# -- one error boundary: every user error one line, exit 2; a bug one line and a traceback file ------


@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5"])
def test_seeds_outside_numpys_range_are_one_line(seed, data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        _train("--iters", 2, "--seed", seed, "--data-dir", data_dir, "--out", tmp_path / "run")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "fastnum train: error: argument --seed: " in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def _no_work(monkeypatch):
    """Make loading the data or compiling fail the test: an error must come before either."""
    import fastnum._compile
    import fastnum.mnist

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the options were refused")

    monkeypatch.setattr(fastnum.mnist, "read_dataset", forbidden)
    monkeypatch.setattr(fastnum._compile, "start_compiling", forbidden)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")
def test_an_out_folder_that_cannot_be_created_is_refused_before_any_work(data_dir, monkeypatch, capsys):
    _no_work(monkeypatch)
    with pytest.raises(SystemExit) as info:
        _train("--iters", 2, "--data-dir", data_dir, "--out", "/proc/fastnum-run")
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fastnum train: error: --out /proc/fastnum-run cannot be created: ")


def test_a_network_too_large_for_the_memory_is_refused_before_any_work(data_dir, tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch)
    with pytest.raises(SystemExit) as info:
        _train("--hidden", 100000000, "--data-dir", data_dir, "--out", tmp_path / "run")
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("fastnum train: error: --hidden 100000000 with --batch-size 100 needs about ")
    assert "GiB" in err and "available" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("edit, message", [
    (lambda config, params: config.update(batch_size=0), "config batch_size must be at least 1"),
    (lambda config, params: params["W1"].__setitem__((0, 0), np.nan), "W1 contains NaN or inf"),
    (lambda config, params: config.update(hidden=[3]), "W1 has shape"),
])
def test_an_edited_checkpoint_is_one_line_on_resume(edit, message, data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train("--iters", 3, "--batch-size", 10, "--hidden", 2, "--gradient", "backprop",
                  "--data-dir", data_dir, "--out", out) == 0
    checkpoint = load_checkpoint(out)
    config, params = checkpoint.config, checkpoint.params
    edit(config, params)
    fastnum.runs.save_checkpoint(out, params, 3, checkpoint.rng_state, config, checkpoint.log_position)
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SystemExit) as info:
        _train("--resume", out)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fastnum train: error: --resume {out}: ") and message in err[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files  # nothing changed


def test_divergence_stops_the_run_cleanly_with_its_files(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = _train("--iters", 50, "--batch-size", 10, "--hidden", 3, "--gradient", "backprop", "--lr", "1e308",
                  "--data-dir", data_dir, "--eval-every", 5, "--out", out)
    assert code == fastnum.cli.DIVERGED_EXIT
    err = capsys.readouterr().err.strip().splitlines()
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "diverged" and run["diverged_at_step"] == run["steps_done"] < 50
    assert f"at step {run['diverged_at_step']}" in err[-1] and "smaller" in err[-1] and "--lr" in err[-1]
    for name in ("history.json", "history.csv", "accuracy.png", "loss.png", "checkpoint.npz"):
        assert (out / name).is_file(), name
    assert not (out / "params.npz").exists()
    checkpoint = load_checkpoint(out)  # the last checkpoint holds finite parameters
    assert checkpoint.next_step <= run["diverged_at_step"]


def test_a_bug_is_one_line_with_its_traceback_in_the_run_folder(data_dir, tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("a deliberate\nbug")

    monkeypatch.setattr(fastnum.runs, "save_plots", broken)
    out = tmp_path / "run"
    code = _train("--iters", 3, "--batch-size", 10, "--hidden", 2, "--gradient", "backprop", "--data-dir",
                  data_dir, "--out", out)
    assert code == fastnum.cli.BUG_EXIT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fastnum train: internal error while writing the run's files ")
    assert "a deliberate bug" in err[0] and str(out / "traceback.txt") in err[0]
    assert "RuntimeError: a deliberate" in (out / "traceback.txt").read_text()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def test_a_signal_cannot_be_swallowed_by_except_exception():
    assert not issubclass(fastnum.cli.Aborted, Exception)


# -- run folders belong to one process at a time ------------------------------------------------


def test_a_folder_in_use_is_refused_and_a_dead_holder_does_not_block(data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert _train("--iters", 3, "--batch-size", 10, "--hidden", 2, "--gradient", "backprop", "--data-dir",
                  data_dir, "--out", out) == 0
    empty = tmp_path / "empty"
    held = [fastnum.runs.RunFolder.claim(out, new=False), fastnum.runs.RunFolder.claim(empty, new=True)]
    try:
        _no_work(monkeypatch)
        for args in (["--resume", out], ["--iters", 2, "--data-dir", data_dir, "--out", empty]):
            with pytest.raises(SystemExit) as info:
                _train(*args)
            assert info.value.code == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "is in use by another fastnum train" in err[0]
    finally:
        for folder in held:
            folder.release()
    assert not empty.exists()  # the holder created it and wrote nothing: it is gone again
    # a holder killed with SIGKILL: the operating system released its lock
    script = ("import os, signal, sys\nfrom fastnum.runs import RunFolder\n"
              "RunFolder.claim(sys.argv[1], new=False)\nprint('held', flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    killed = subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert killed.stdout.strip() == "held" and killed.returncode == -signal.SIGKILL
    fastnum.runs.RunFolder.claim(out, new=False).release()


def test_two_runs_started_together_on_one_folder(data_dir, tmp_path):
    """Two ``fastnum train --out D`` at once: one runs, the other is refused (not 600 rows for 300 steps)."""
    out = tmp_path / "run"
    args = ["--no-progress", "--no-verify-data", "--iters", 300, "--batch-size", 10, "--hidden", 2, "--gradient",
            "backprop", "--eval-every", 100, "--data-dir", data_dir, "--out", out]
    children = [_child(args) for _ in range(2)]
    results = [(child.wait(timeout=300), child.stderr.read()) for child in children]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "in use by another fastnum train" in refused or "is not empty" in refused
    assert len((out / "history.csv").read_text().splitlines()) == 301


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads the processes' environments in /proc")
def test_sigterm_while_the_kernels_compile_is_one_line_and_leaves_nothing(data_dir, tmp_path):
    """An empty numba cache: SIGTERM during the first compile ends at once, exit 143, no traceback,
    no run folder, no compile child left running."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "empty-cache")}
    out = tmp_path / "run"
    child = _child(["--no-progress", "--no-verify-data", "--iters", 5, "--batch-size", 10, "--hidden", 3,
                    "--data-dir", data_dir, "--out", out], env=env)
    for line in child.stdout:
        if line.startswith("compiling"):
            break
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    assert err.strip().splitlines() == ["fastnum train: interrupted while compiling the kernels; nothing was written"]
    assert not out.exists()
    # the compile child was stopped too: no process of this test's cache is left compiling
    leftover = [p for p in Path("/proc").glob("[0-9]*") if _environ_mentions(p, str(tmp_path / "empty-cache"))]
    assert leftover == []


def _environ_mentions(proc, text):
    try:
        return text.encode() in (proc / "environ").read_bytes()
    except OSError:
        return False


def _run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fastnum", "train", "--no-progress", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, **(env or {})))


def test_user_errors_from_a_real_command_line_are_one_line_before_any_work(tmp_path):
    """In child processes, as a user meets them. The data folder is empty: an error about the data
    would mean the data was read before the option was checked."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    cases = [
        (["--seed", "-1"], "argument --seed: must be a whole number from 0 to 4294967295"),
        (["--seed", "4294967296"], "argument --seed: must be a whole number from 0 to 4294967295"),
        (["--hidden", "100000000"], "--hidden 100000000 with --batch-size 100 needs about"),
        (["--lr", "inf"], "argument --lr: must be a positive finite number"),
    ]
    if Path("/proc").is_dir():
        cases.append((["--out", "/proc/fastnum-run"], "--out /proc/fastnum-run cannot be created"))
    for args, message in cases:
        if "--out" not in args:
            args = [*args, "--out", tmp_path / "run"]
        done = _run_cli("--data-dir", empty, *args)
        lines = [line for line in done.stderr.strip().splitlines() if not line.startswith(("usage:", "  "))]
        assert done.returncode == 2, (args, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("fastnum train: error: ") and message in lines[0], lines
        assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()


def test_an_edited_checkpoint_and_a_divergence_from_a_real_command_line(data_dir, tmp_path):
    out = tmp_path / "run"
    common = ["--no-verify-data", "--batch-size", 10, "--hidden", 2, "--gradient", "backprop", "--data-dir",
              data_dir]
    assert _run_cli(*common, "--iters", 3, "--out", out).returncode == 0
    checkpoint = load_checkpoint(out)
    checkpoint.config["batch_size"] = 0
    fastnum.runs.save_checkpoint(out, checkpoint.params, 3, checkpoint.rng_state, checkpoint.config,
                                 checkpoint.log_position)
    done = _run_cli("--resume", out)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"fastnum train: error: --resume {out}: {out / 'checkpoint.npz'}: config batch_size must be at least 1 "
        "(a whole number), got 0"]
    diverging = _run_cli(*common, "--iters", 40, "--lr", "1e308", "--out", tmp_path / "diverged")
    assert diverging.returncode == fastnum.cli.DIVERGED_EXIT and "Traceback" not in diverging.stderr
    assert "stopped being finite at step" in diverging.stderr.strip().splitlines()[-1]
    assert json.loads((tmp_path / "diverged" / "run.json").read_text())["status"] == "diverged"
