import numba
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261128)


@pytest.fixture
def numba_threads():
    """Set numba's thread count inside a test and restore it afterwards."""
    original = numba.get_num_threads()
    yield numba.set_num_threads
    numba.set_num_threads(original)
