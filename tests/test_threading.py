"""numba's threading layer: TBB where pip's wheel is installed, loaded by fastnum."""

import os
import subprocess
import sys
from importlib import metadata

from fastnum import _threading


def _tbb_wheel_installed():
    try:
        metadata.distribution("tbb")
    except metadata.PackageNotFoundError:
        return False
    return sys.platform.startswith("linux")


def _layer_in_fresh_process(extra_env=None):
    code = ("import numpy as np, numba, fastnum\n"
            "fastnum.TwoLayerNet(6, 3, 2).predict(np.ones((2, 6), dtype=np.float32))  # a parallel kernel\n"
            "print(numba.threading_layer())")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env.update(extra_env or {})
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def test_numba_runs_on_tbb_when_the_wheel_is_installed():
    layer = _layer_in_fresh_process()
    if _tbb_wheel_installed():  # what pyproject.toml installs on Linux x86-64
        assert layer == "tbb"
        assert _threading.LOADED_TBB is not None and _threading.LOADED_TBB.endswith(_threading.TBB_LIBRARY)
    else:  # elsewhere numba picks its layer as before, OpenMP's threads waiting passively
        assert layer in ("omp", "workqueue")


def test_a_layer_the_user_chose_is_kept():
    assert _layer_in_fresh_process({"NUMBA_THREADING_LAYER": "workqueue"}) == "workqueue"


def test_a_tbb_already_loaded_is_left_alone():
    # with the wheel, importing fastnum loaded it: a second call finds it loaded and does nothing
    # (without the wheel there is nothing to load either)
    assert _threading.load_pip_tbb() is None
