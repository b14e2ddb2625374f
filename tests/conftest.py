import os

import numba
import numpy as np
import pytest

# The suite tests the compiled kernels: every call compiles (or loads) them, also on a cold cache, and
# no background compile competes with the tests. tests/test_compile.py sets these itself where it
# tests the numpy path of a first call and the background compile. (Set in os.environ, so that the
# tests' child processes inherit them.)
os.environ.setdefault("FASTNUM_FIRST_RUN", "compile")
os.environ.setdefault("FASTNUM_BACKGROUND_COMPILE", "0")


@pytest.fixture
def rng():
    return np.random.default_rng(20261128)


@pytest.fixture
def numba_threads():
    """Set numba's thread count inside a test and restore it afterwards."""
    original = numba.get_num_threads()
    yield numba.set_num_threads
    numba.set_num_threads(original)


@pytest.fixture
def assert_thread_invariant(numba_threads):
    """``check(compute)``: ``compute()``'s dict of arrays is bitwise the same with 1 and 2 numba threads."""

    def check(compute):
        numba_threads(1)
        one = compute()
        numba_threads(2)
        two = compute()
        assert list(one) == list(two)
        for name in one:
            assert np.array_equal(one[name], two[name]), name

    return check


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests never download: every registered mirror points at a closed port on loopback."""
    from fastnum import mnist

    for name, source in list(mnist.DATASETS.items()):
        monkeypatch.setitem(mnist.DATASETS, name, mnist.DatasetSource(mirrors=("http://127.0.0.1:9/",),
                                                                      sha256=source.sha256))


@pytest.fixture
def data_dir(tmp_path, rng, monkeypatch):
    """Small IDX files of 200 training and 50 test images, and a cache folder of the test's own."""
    from fastnum import mnist
    from tests.idx_files import write_dataset

    monkeypatch.setenv(mnist.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(mnist.DATA_DIR_ENV, raising=False)
    folder = tmp_path / "data"
    write_dataset(folder, rng, n_train=200, n_test=50)
    return folder
