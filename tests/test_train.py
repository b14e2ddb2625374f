"""The training loop, the fastnum train command, its outputs, checkpoints and resume."""

import json

import numpy as np
import pytest

from fastnum import TwoLayerNet, load_mnist
from fastnum.train import History, fit


@pytest.fixture
def data(data_dir):
    return load_mnist(data_dir=data_dir, verify=False)


def _net(seed=0, hidden=6):
    np.random.seed(seed)
    return TwoLayerNet(784, hidden, 10)


def test_fit_bookkeeping_follows_the_book(data):
    (x, t), (xt, tt) = data
    net = _net()
    history = fit(net, x, t, xt, tt, iters=45, batch_size=10, gradient="backprop", rng=np.random.RandomState(1))
    assert history.steps_done == 45 and history.diverged_at is None
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
    history = fit(net, x, t, xt, tt, iters=1, batch_size=10, learning_rate=0.5, gradient="backprop", rng=rng)
    for key in before:
        np.testing.assert_array_equal(net.params[key], before[key] - 0.5 * grad[key])
    assert history.train_loss_list[0] == net.loss(x[mask], t[mask])


def test_numerical_and_backprop_runs_see_the_same_batches_and_stay_close(data):
    (x, t), (xt, tt) = data
    runs = {}
    for gradient in ("numerical", "backprop", "numerical-full"):
        net = _net(hidden=4)
        rng = np.random.RandomState(7)
        history = fit(net, x, t, xt, tt, iters=12 if gradient == "numerical-full" else 30, batch_size=8,
                      gradient=gradient, rng=rng)
        runs[gradient] = (history, rng.get_state()[1].copy(), net)
    (h_num, state_num, _), (h_bp, state_bp, _) = runs["numerical"], runs["backprop"]
    np.testing.assert_array_equal(state_num, state_bp)  # the same draws from the RNG
    drift = np.abs(np.array(h_num.train_loss_list) - np.array(h_bp.train_loss_list)).max()
    assert drift < 1e-5
    full = np.array(runs["numerical-full"][0].train_loss_list)
    np.testing.assert_allclose(full, h_num.train_loss_list[:12], rtol=0, atol=1e-9)


def test_fit_stops_cleanly_when_asked(data):
    (x, t), (xt, tt) = data
    calls = []
    history = fit(_net(), x, t, xt, tt, iters=50, batch_size=10, gradient="backprop",
                  should_stop=lambda: len(calls) >= 7, on_step=lambda s: calls.append(s.step))
    assert history.steps_done == 7 and len(history.train_loss_list) == 7


def test_fit_rejects_unknown_gradient(data):
    (x, t), (xt, tt) = data
    with pytest.raises(ValueError, match="gradient"):
        fit(_net(), x, t, xt, tt, iters=1, gradient="adam")


def test_history_round_trips():
    history = History(train_loss_list=[1.0], train_acc_list=[0.5], test_acc_list=[0.4], eval_steps=[0],
                      step_times=[0.1], eval_times=[0.2], iter_per_epoch=600.0)
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))) == history


def test_seeded_fit_is_the_books_run(data):
    """np.random.seed, then the network, then fit: the book's initial weights and batches."""
    (x, t), (xt, tt) = data
    np.random.seed(4)
    net = TwoLayerNet(784, 5, 10)
    np.random.seed(4)
    book_W1 = 0.01 * np.random.randn(784, 5)
    np.random.randn(5, 10)
    first_batch = np.random.choice(x.shape[0], 10)
    np.testing.assert_array_equal(net.params["W1"], book_W1)
    np.random.seed(4)
    net = TwoLayerNet(784, 5, 10)
    seen = []
    real = net.gradient
    net.gradient = lambda xb, tb: (seen.append(xb.copy()), real(xb, tb))[1]
    fit(net, x, t, xt, tt, iters=1, batch_size=10, gradient="backprop", progress=False)
    np.testing.assert_array_equal(seen[-1], x[first_batch])




@pytest.mark.parametrize("arguments, error, message", [
    ({"batch_size": 0}, ValueError, "batch_size must be at least 1"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be a whole number"),
    ({"eval_every": 0}, ValueError, "eval_every must be at least 1"),
    ({"learning_rate": float("nan")}, ValueError, "learning_rate must be a positive finite number"),
    ({"learning_rate": -0.1}, ValueError, "learning_rate must be a positive finite number"),
    ({"learning_rate": "0.1"}, TypeError, "learning_rate must be a number"),
    ({"iters": -1}, ValueError, "iters must be at least 0"),
    ({"start_step": 9}, ValueError, "start_step 9 is past iters 5"),
    ({"gradient": "numerical-full", "network": "multi"}, ValueError, "numerical-full"),
    ({"rng": 3}, TypeError, "rng must be a numpy RandomState"),
    ({"on_step": "print"}, TypeError, "on_step must be callable"),
    ({"history": {}}, TypeError, "history must be a fastnum.train.History"),
    ({"t_train": "short"}, ValueError, "x_train has 200 samples but t_train has 199 labels"),
    ({"x_test": "empty"}, ValueError, "x_test is empty"),
    ({"x_train": "wide"}, ValueError, "the train set: x has 785 features per sample"),
    ({"x_train": "nan"}, ValueError, "the train set: x contains NaN or inf"),
    ({"t_test": "out of range"}, ValueError, "the test set: label 10 in t is outside"),
])
def test_fit_checks_every_argument_before_the_first_step(data, arguments, error, message):
    from fastnum import MultiLayerNet

    (x, t), (xt, tt) = data
    net = MultiLayerNet(784, [5], 10) if arguments.pop("network", None) == "multi" else _net()
    before = {k: v.copy() for k, v in net.params.items()}
    kwargs = dict(iters=5, batch_size=10, gradient="backprop", progress=False)
    edits = {"short": lambda a: a[:-1], "empty": lambda a: a[:0], "wide": lambda a: np.hstack([a, a[:, :1]]),
             "nan": lambda a: np.where(np.arange(a.shape[1]) == 3, np.nan, a),
             "out of range": lambda a: np.where(np.arange(a.shape[0]) == 2, 10, a)}
    arrays = {"x_train": x, "t_train": t, "x_test": xt, "t_test": tt}
    for name, value in arguments.items():
        if name in arrays:
            arrays[name] = edits[value](arrays[name])
        else:
            kwargs[name] = value
    with pytest.raises(error, match=message):
        fit(net, arrays["x_train"], arrays["t_train"], arrays["x_test"], arrays["t_test"], **kwargs)
    for key in before:
        np.testing.assert_array_equal(net.params[key], before[key])


def test_fit_stops_where_the_loss_stops_being_finite(data):
    (x, t), (xt, tt) = data
    net = _net()
    evaluations = []
    history = fit(net, x, t, xt, tt, iters=30, batch_size=10, learning_rate=1e308, gradient="backprop",
                  progress=False, on_eval=lambda state: evaluations.append(state.step))
    assert history.diverged_at is not None and history.steps_done == history.diverged_at < 30
    assert len(history.train_loss_list) == history.steps_done
    assert all(np.isfinite(history.train_loss_list))
    params_finite = all(np.isfinite(net.params[k]).all() for k in net.params)  # left as the step made them
    assert not params_finite or not np.isfinite(net.loss(x[:10], t[:10]))


def test_fit_returns_the_history_with_the_steps_done(data):
    (x, t), (xt, tt) = data
    history = fit(_net(), x, t, xt, tt, iters=3, batch_size=10, gradient="backprop", progress=False)
    assert isinstance(history, History) and history.steps_done == 3 and history.diverged_at is None
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))) == history
