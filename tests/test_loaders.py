"""Every loader checks at load time what the network needs, names the file and the key, and leaves
the network (and the user's files) unchanged: ``runs.load_network``, ``runs.load_checkpoint``,
``SimpleConvNet.load_params``."""

import json
import pickle

import numpy as np
import pytest

import fastnum
from fastnum import registry
from fastnum.runs import RunFileError, load_checkpoint, load_network, save_checkpoint, save_params


def _networks():
    np.random.seed(0)
    two = fastnum.TwoLayerNet(12, 4, 3)
    bn = fastnum.MultiLayerNetExtend(12, [5, 4], 3, use_batchnorm=True)
    bn.numerical_gradient(np.random.rand(4, 12), np.arange(4) % 3)  # running statistics now exist
    conv = fastnum.SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1}, 4, 3)
    return {"two-layer": two, "batch norm": bn, "convnet": conv}


def _npz_contents(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name].copy() for name in data.files}


EDITS = {
    "a wrong shape": (lambda a: a.update(W2=a["W2"][:-1]), "W2 has shape"),
    "a NaN": (lambda a: a["b1"].__setitem__(0, np.nan), "b1 contains NaN or inf"),
    "a missing key": (lambda a: a.pop("W2"), "lacks? W2"),
    "an extra key": (lambda a: a.update(W9=np.zeros(3)), "W9, which this network does not have"),
    "a complex dtype": (lambda a: a.update(b1=a["b1"].astype(complex)), "b1 has dtype complex128"),
    "an unknown network": (lambda a: a.update(network_spec=np.array('{"network": "ResNet", "hidden": [4]}')),
                           "unknown network 'ResNet'"),
    "a bad hidden size": (lambda a: a.update(network_spec=np.array(json.dumps(
        {**json.loads(str(a["network_spec"])), "hidden": [0]}))), "is not one fastnum can build"),
}


@pytest.mark.parametrize("name", _networks())
@pytest.mark.parametrize("edit", EDITS)
def test_load_network_refuses_an_edited_params_file(name, edit, tmp_path):
    network = _networks()[name]
    path = tmp_path / "params.npz"
    save_params(path, network)
    assert load_network(path).params.keys() == network.params.keys()  # the unedited file loads
    arrays = _npz_contents(path)
    change, message = EDITS[edit]
    change(arrays)
    np.savez(path, **arrays)
    with pytest.raises(RunFileError, match=message) as info:
        load_network(path)
    assert str(path) in str(info.value)


def test_load_network_checks_batch_norms_running_statistics(tmp_path):
    network = _networks()["batch norm"]
    path = tmp_path / "params.npz"
    save_params(path, network)
    for change, message in [(lambda a: a.update(state_running_var1=-a["state_running_var1"] - 1), "negative"),
                            (lambda a: a.update(state_running_mean2=np.zeros(7)), "running_mean2 must be"),
                            (lambda a: a.pop("state_running_var2"), "come together")]:
        arrays = _npz_contents(path)
        change(arrays)
        np.savez(tmp_path / "edited.npz", **arrays)
        with pytest.raises(RunFileError, match=message):
            load_network(tmp_path / "edited.npz")


def _checkpoint(tmp_path, network, config_edit=None, params_edit=None, next_step=3):
    config = {"iters": 10, "batch_size": 4, "lr": 0.1, "hidden": [4], "gradient": "numerical",
              "activation": "sigmoid", "seed": 0, "dataset": "mnist", "eval_every": None, "weight_init": None,
              "weight_decay": None, "batchnorm": None, "dropout": None, "network": None, "verify_data": True,
              "iter_per_epoch": 50.0}
    params = {k: v.copy() for k, v in network.params.items()}
    if config_edit:
        config_edit(config)
    if params_edit:
        params_edit(params)
    save_checkpoint(tmp_path, params, next_step, np.random.get_state(), config,
                    {"rows": next_step, "bytes": 100})
    return tmp_path


@pytest.mark.parametrize("config_edit, params_edit, next_step, message", [
    (lambda c: c.update(batch_size=0), None, 3, "config batch_size must be at least 1"),
    (lambda c: c.update(lr=float("nan")), None, 3, "config lr must be a positive finite number"),
    (lambda c: c.update(gradient="adam"), None, 3, "config gradient must be one of"),
    (lambda c: c.update(seed=-1), None, 3, "config seed must be a whole number from 0"),
    (lambda c: c.update(colour="blue"), None, 3, "'colour', which is no setting"),
    (lambda c: c.pop("iters"), None, 3, "lacks iters"),
    (lambda c: c.update(hidden=[5]), None, 3, "W1 has shape"),
    (None, lambda p: p["W2"].__setitem__((0, 0), np.inf), 3, "W2 contains NaN or inf"),
    (None, lambda p: p.pop("b2"), 3, "lacks b2"),
    (None, None, 11, "next_step 11 is outside the run's 0..10 steps"),
])
def test_load_checkpoint_refuses_values_a_run_cannot_use(tmp_path, config_edit, params_edit, next_step, message):
    np.random.seed(0)
    network = fastnum.TwoLayerNet(784, 4, 10)
    folder = _checkpoint(tmp_path, network, config_edit, params_edit, next_step)
    with pytest.raises(RunFileError, match=message) as info:
        load_checkpoint(folder)
    assert "checkpoint.npz" in str(info.value)


def test_an_unedited_checkpoint_loads(tmp_path):
    np.random.seed(0)
    network = fastnum.TwoLayerNet(784, 4, 10)
    checkpoint = load_checkpoint(_checkpoint(tmp_path, network))
    assert checkpoint.next_step == 3
    for key in network.params:
        np.testing.assert_array_equal(checkpoint.params[key], network.params[key])


@pytest.mark.parametrize("content, message", [
    ({"W1": [[0.0]]}, "W1 is a list, not a numpy array"),
    ({"W1": np.zeros((2, 1, 3, 3), dtype=complex)}, "W1 has dtype complex128"),
    ({"b1": np.array([np.nan, 0.0])}, "b1 contains NaN or inf"),
    ({"W7": np.zeros(3)}, "W7, which this network does not have"),
    ({"W3": np.zeros((4, 2))}, "W3 has shape"),
    ({}, "holds no parameters"),
    ([np.zeros(3)], "holds a list, not a dict"),
])
def test_load_params_refuses_what_does_not_fit_and_keeps_params(tmp_path, content, message):
    net = _networks()["convnet"]
    before = {k: v.copy() for k, v in net.params.items()}
    with open(tmp_path / "p.pkl", "wb") as handle:
        pickle.dump(content, handle)
    with pytest.raises(ValueError, match=message):
        net.load_params(tmp_path / "p.pkl")
    assert net.params.keys() == before.keys()
    for key in before:
        assert type(net.params[key]) is np.ndarray
        np.testing.assert_array_equal(net.params[key], before[key])


def test_load_params_takes_some_parameters_as_the_book_does(tmp_path):
    net = _networks()["convnet"]
    new_b3 = np.arange(3, dtype=np.float32)
    with open(tmp_path / "p.pkl", "wb") as handle:
        pickle.dump({"b3": new_b3}, handle)
    before = {k: v.copy() for k, v in net.params.items()}
    net.load_params(tmp_path / "p.pkl")
    assert net.params["b3"].dtype == np.float64 and np.array_equal(net.params["b3"], new_b3)
    for key in ("W1", "b1", "W2", "b2", "W3"):
        np.testing.assert_array_equal(net.params[key], before[key])


def test_every_registered_kind_follows_the_protocol():
    for kind in registry.KINDS.values():
        cls = kind.cls
        assert {"numerical", "backprop"} <= set(cls.GRADIENTS) and isinstance(cls.READS_FLOAT32, bool)
        for name in ("spec", "from_spec", "sizes_from_params", "memory_bytes", "param_shapes", "state_arrays",
                     "set_state_arrays", "summary", "check_batch"):
            assert callable(getattr(cls, name)), (kind.name, name)
    for network in _networks().values():
        spec = network.spec()
        kind = registry.kind_of(network)
        assert spec["network"] == kind.name and json.loads(json.dumps(spec)) == spec
        rebuilt = registry.with_params(spec, network.params, network.state_arrays())
        assert type(rebuilt) is type(network) and rebuilt.param_shapes() == network.param_shapes()
        assert list(rebuilt.params) == list(network.param_shapes())
