"""numba's parallel kernels on Intel TBB's threads, where pip installed TBB.

numba runs ``prange`` loops on one of three threading layers and takes the
first that loads, in the order tbb, omp, workqueue. fastnum's gradient is two
parallel regions of about 0.3 and 0.8 ms, so what a layer's threads do
between regions decides the two-thread speed:

* OpenMP (GNU libgomp) threads either spin (``OMP_WAIT_POLICY=active``: on a
  machine where another process keeps a core busy they steal its time slices
  and every region waits for them) or sleep (passive: each region then waits
  for its second thread to wake, 85 to 300 us on a virtual machine).
* TBB's workers spin a little while yielding the core, then sleep: on this
  machine a gradient took 1.32 ms against 1.50 ms with passive OpenMP
  threads, and with one core busy 1.93 ms, as fast as one thread (README,
  "Where the speed comes from").

pip's ``tbb`` wheel puts ``libtbb.so.12`` in ``<prefix>/lib``, where the
dynamic loader does not look, so numba cannot load its TBB layer and falls
back to OpenMP (numba/numba#7148, #9740). ``load_pip_tbb`` loads that
library into the process when fastnum is imported (by its path, ``RTLD_GLOBAL``); numba's TBB
layer, which needs ``libtbb.so.12``, then finds it already loaded. Nothing
else changes: a threading layer chosen with ``NUMBA_THREADING_LAYER`` is still
used, a TBB already loaded by another package is left alone, and without the
wheel (other platforms) numba picks its layer as before, with OpenMP's
threads set to wait passively (``fastnum/__init__.py``).
"""

import ctypes
import os
import sys
from importlib import metadata

TBB_LIBRARY = "libtbb.so.12"
"""The soname numba's TBB layer links against."""


def load_pip_tbb():
    """Load the pip wheel's ``libtbb.so.12`` so that numba can use its TBB threading layer.

    Returns
    -------
    str or None
        The library's path when this call loaded it; None when there was
        nothing to do (not Linux, no ``tbb`` wheel, a TBB already loaded) or
        it could not be loaded (numba then picks another layer).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        ctypes.CDLL(TBB_LIBRARY, mode=os.RTLD_NOLOAD)
        return None  # another package loaded a TBB already: two runtimes in one process would clash
    except OSError:
        pass
    try:
        files = metadata.files("tbb") or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == TBB_LIBRARY:
            path = str(file.locate().resolve())
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                return None
            return path
    return None


LOADED_TBB = load_pip_tbb()
"""Where this process loaded pip's TBB from (None: it did not; see ``load_pip_tbb``)."""
