"""The training loop, the fastnum train command, its outputs, checkpoints and resume."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastnum.train
from fastnum import TwoLayerNet, load_mnist, mnist
from fastnum.cli import main
from fastnum.runs import load_checkpoint, load_network
from fastnum.train import History, fit
from tests.idx_files import write_dataset


@pytest.fixture
def data_dir(tmp_path, rng, monkeypatch):
    monkeypatch.setenv(mnist.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(mnist.DATA_DIR_ENV, raising=False)
    folder = tmp_path / "data"
    write_dataset(folder, rng, n_train=200, n_test=50)
    return folder


@pytest.fixture
def data(data_dir):
    return load_mnist(data_dir=data_dir)


def _net(seed=0, hidden=6):
    np.random.seed(seed)
    return TwoLayerNet(784, hidden, 10)


def test_fit_bookkeeping_follows_the_book(data):
    (x, t), (xt, tt) = data
    net = _net()
    history, done = fit(net, x, t, xt, tt, iters=45, batch_size=10, gradient="backprop",
                        rng=np.random.RandomState(1))
    assert done == 45
    assert len(history.train_loss_list) == len(history.step_times) == 45
    # iter_per_epoch = 200 / 10 = 20: evaluations after steps 0, 20, 40, plus the final one
    assert history.eval_steps == [0, 20, 40, 44]
    assert len(history.train_acc_list) == len(history.test_acc_list) == len(history.eval_times) == 4
    assert history.test_acc_list[-1] == net.accuracy(xt, tt)
    assert all(0 <= a <= 1 for a in history.train_acc_list)


def test_fit_updates_as_the_book(data):
    (x, t), (xt, tt) = data
    net = _net()
    before = {k: v.copy() for k, v in net.params.items()}
    rng = np.random.RandomState(3)
    mask = np.random.RandomState(3).choice(x.shape[0], 10)
    grad = _net().gradient(x[mask], t[mask])
    history, _ = fit(net, x, t, xt, tt, iters=1, batch_size=10, learning_rate=0.5, gradient="backprop", rng=rng)
    for key in before:
        np.testing.assert_array_equal(net.params[key], before[key] - 0.5 * grad[key])
    assert history.train_loss_list[0] == net.loss(x[mask], t[mask])


def test_numerical_and_backprop_runs_see_the_same_batches_and_stay_close(data):
    (x, t), (xt, tt) = data
    runs = {}
    for gradient in ("numerical", "backprop", "numerical-full"):
        net = _net(hidden=4)
        rng = np.random.RandomState(7)
        history, _ = fit(net, x, t, xt, tt, iters=12 if gradient == "numerical-full" else 30,
                         batch_size=8, gradient=gradient, rng=rng)
        runs[gradient] = (history, rng.get_state()[1].copy(), net)
    (h_num, state_num, net_num), (h_bp, state_bp, _) = runs["numerical"], runs["backprop"]
    np.testing.assert_array_equal(state_num, state_bp)  # the same draws from the RNG
    drift = np.abs(np.array(h_num.train_loss_list) - np.array(h_bp.train_loss_list)).max()
    assert drift < 1e-5
    full = np.array(runs["numerical-full"][0].train_loss_list)
    np.testing.assert_allclose(full, h_num.train_loss_list[:12], rtol=0, atol=1e-9)


def test_fit_stops_cleanly_when_asked(data):
    (x, t), (xt, tt) = data
    calls = []
    history, done = fit(_net(), x, t, xt, tt, iters=50, batch_size=10, gradient="backprop",
                        should_stop=lambda: len(calls) >= 7, on_step=lambda s: calls.append(s.step))
    assert done == 7 and len(history.train_loss_list) == 7


def test_fit_rejects_unknown_gradient(data):
    (x, t), (xt, tt) = data
    with pytest.raises(ValueError, match="gradient"):
        fit(_net(), x, t, xt, tt, iters=1, gradient="adam")


def test_history_round_trips():
    history = History(train_loss_list=[1.0], train_acc_list=[0.5], test_acc_list=[0.4], eval_steps=[0],
                      step_times=[0.1], eval_times=[0.2])
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))) == history


# -- the command ----------------------------------------------------------------

def _train(*args):
    return main(["train", "--no-progress", *map(str, args)])


def test_train_command_writes_every_output(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _train("--iters", 25, "--batch-size", 10, "--hidden", 5, "--data-dir", data_dir, "--eval-every", 10,
                  "--seed", 3) == 0
    (out,) = (tmp_path / "runs").iterdir()
    for name in ("history.json", "history.csv", "accuracy.png", "loss.png", "params.npz", "run.json",
                 "checkpoint.npz"):
        assert (out / name).stat().st_size > 0, name
    printed = capsys.readouterr().out
    assert "step      0" in printed and "step     20" in printed and "test acc" in printed
    history = json.loads((out / "history.json").read_text())
    assert history["eval_steps"] == [0, 10, 20, 24]
    csv_lines = (out / "history.csv").read_text().splitlines()
    assert csv_lines[0] == "step,epoch,train_loss,step_seconds,train_acc,test_acc" and len(csv_lines) == 26
    run = json.loads((out / "run.json").read_text())
    assert run["command"][1:] == ["train", "--no-progress", "--iters", "25", "--batch-size", "10", "--hidden", "5",
                                  "--data-dir", str(data_dir), "--eval-every", "10", "--seed", "3"]
    assert run["config"]["iters"] == 25 and run["config"]["gradient"] == "numerical"
    assert {"numpy", "numba", "python", "cpu_count"} <= set(run["versions"])
    assert run["final_test_acc"] == history["test_acc_list"][-1]
    network = load_network(out / "params.npz")
    (_, _), (xt, tt) = load_mnist(data_dir=data_dir)
    assert network.accuracy(xt, tt) == run["final_test_acc"]
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
        (["--batch-size", "201"], "larger than the 200 training images"),
        (["--data-dir", "/no/such/folder"], "is not a folder"),
        (["--threads", "999"], "at most"),
        (["--resume", "/no/such/run"], "is not a folder"),
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


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(mnist.CACHE_DIR_ENV, str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setitem(mnist.DATASETS, "mnist", mnist.DatasetSource(mirrors=("http://127.0.0.1:9/",),
                                                                      sha256=mnist.DATASETS["mnist"].sha256))
    with pytest.raises(SystemExit):
        _train("--data-dir", empty, "--out", tmp_path / "run")
    assert "FASTNUM_DATA_DIR" in capsys.readouterr().err


def _interrupt_at(monkeypatch, step):
    """Send this process a real SIGINT right after the given step."""
    real_fit = fastnum.train.fit

    def fit_with_interrupt(*args, on_step=None, **kwargs):
        def step_hook(state):
            on_step(state)
            if state.step == step:
                os.kill(os.getpid(), signal.SIGINT)

        return real_fit(*args, on_step=step_hook, **kwargs)

    monkeypatch.setattr(fastnum.train, "fit", fit_with_interrupt)


def test_ctrl_c_checkpoints_and_resume_matches_an_uninterrupted_run(data_dir, tmp_path, monkeypatch, capsys):
    common = ["--iters", 30, "--batch-size", 10, "--hidden", 4, "--data-dir", data_dir, "--eval-every", 7,
              "--seed", 11]
    assert _train(*common, "--out", tmp_path / "whole") == 0

    with monkeypatch.context() as patch:
        _interrupt_at(patch, 12)
        assert _train(*common, "--out", tmp_path / "split") == 130
    assert "--resume" in capsys.readouterr().out
    _, next_step, _, history, _ = load_checkpoint(tmp_path / "split")
    assert next_step == 13 and len(history.train_loss_list) == 13
    assert not (tmp_path / "split" / "params.npz").exists()

    assert _train("--resume", tmp_path / "split") == 0
    whole = np.load(tmp_path / "whole" / "params.npz")
    split = np.load(tmp_path / "split" / "params.npz")
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(whole[key], split[key])
    h_whole = json.loads((tmp_path / "whole" / "history.json").read_text())
    h_split = json.loads((tmp_path / "split" / "history.json").read_text())
    assert h_whole["train_loss_list"] == h_split["train_loss_list"]
    assert h_whole["test_acc_list"] == h_split["test_acc_list"]


def test_resume_refuses_changed_settings_and_existing_runs_need_resume(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train("--iters", 3, "--batch-size", 10, "--hidden", 3, "--data-dir", data_dir, "--out", out) == 0
    with pytest.raises(SystemExit):
        _train("--resume", out, "--lr", "0.5")
    assert "only --threads" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _train("--iters", 3, "--data-dir", data_dir, "--out", out)
    assert "--resume" in capsys.readouterr().err


def test_python_dash_m_and_a_real_ctrl_c(data_dir, tmp_path):
    """End to end in a child process: progress lines, SIGINT, checkpoint, clean exit."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    child = subprocess.Popen(
        [sys.executable, "-m", "fastnum", "train", "--no-progress", "--iters", "100000", "--batch-size", "10",
         "--hidden", "3", "--eval-every", "20", "--gradient", "backprop", "--data-dir", str(data_dir),
         "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).parent.parent,
    )
    for line in child.stdout:
        if line.startswith("step     20"):
            break
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert "--resume" in out
    _, next_step, _, _, config = load_checkpoint(tmp_path / "run")
    assert next_step > 20 and config["iters"] == 100000


def test_outputs_get_ordinary_permissions(tmp_path):
    from fastnum._atomic import atomic_write

    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f.bin", lambda handle: handle.write(b"x"))
    finally:
        os.umask(umask)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
