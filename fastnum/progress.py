"""What a user sees while fastnum works: the training progress and the compile notice.

One code path for the terminal, the CLI and Jupyter: ``tqdm.auto`` draws a
widget in a notebook and a text bar in a terminal.
"""

import sys
import threading
import time
from contextlib import contextmanager, nullcontext

COMPILE_NOTICE_AFTER_S = 1.0
"""Loading cached machine code takes well under this; compiling takes far longer."""

_NOTICES_ACTIVE = [0]  # inside an outer notice (a warm-up) the per-method ones stay quiet


def interactive_session():
    """True in Jupyter/IPython and in a terminal; False when output goes to a file or pipe."""
    try:
        from IPython import get_ipython

        if get_ipython() is not None:
            return True
    except ImportError:
        pass
    return sys.stderr.isatty()


@contextmanager
def compile_notice(write=None, what="fastnum's kernels"):
    """Say that numba is compiling when the enclosed first calls take long.

    Loading kernels from numba's on-disk cache is quick; when the block is
    still running after ``COMPILE_NOTICE_AFTER_S`` it is compiling, and the
    user is told so, and that it happens once per machine. Yields a dict whose
    ``"seconds"`` is filled in with the block's duration.
    """
    write = print if write is None else write
    said = threading.Event()

    def announce():
        said.set()
        write(f"compiling {what} for this CPU (once per machine; later runs load them from the cache) ...")

    timer = threading.Timer(COMPILE_NOTICE_AFTER_S, announce)
    timer.daemon = True
    result = {"seconds": None}
    start = time.perf_counter()
    timer.start()
    _NOTICES_ACTIVE[0] += 1
    try:
        yield result
    finally:
        _NOTICES_ACTIVE[0] -= 1
        timer.cancel()
        result["seconds"] = time.perf_counter() - start
    if said.is_set():
        write(f"compiled in {result['seconds']:.1f} s")


_FIRST_CALLS_SEEN = set()


def first_call_notice(key):
    """``compile_notice`` around the first call of ``key`` in this process; nothing afterwards.

    The facades wrap their kernel calls in it, so that a notebook's first
    ``numerical_gradient`` says it is compiling instead of freezing silently.
    """
    if key in _FIRST_CALLS_SEEN or _NOTICES_ACTIVE[0]:
        _FIRST_CALLS_SEEN.add(key)
        return nullcontext({"seconds": None})
    _FIRST_CALLS_SEEN.add(key)
    return compile_notice(print, what=f"the kernels of {key}")


LONG_CALL_S = 5.0
"""A call expected to take longer than this shows a progress bar (in a terminal or notebook)."""


@contextmanager
def entries_progress(total, expected_seconds, what):
    """A progress bar over a numerical gradient's ``total`` entries when the call is expected to take
    longer than ``LONG_CALL_S`` in an interactive session; yields the callback to give it the entries
    done (or None)."""
    if expected_seconds < LONG_CALL_S or not interactive_session():
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="entry", unit_scale=True, desc=what, dynamic_ncols=True, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


class TrainingProgress:
    """A progress bar over the steps and one line per evaluation.

    Parameters
    ----------
    total : int
        Steps of the whole run.
    initial : int, default 0
        Steps already done (when resuming).
    bar : bool, default True
        Draw the bar (steps per second, time left, latest batch loss).
    lines : bool, default True
        Print a line per evaluation (step, epoch, batch loss, accuracies).
    desc : str, optional
        Text in front of the bar.
    file : file-like, optional
        Where a text bar goes (default standard error).
    """

    def __init__(self, total, initial=0, bar=True, lines=True, desc=None, file=None):
        self.lines = lines
        self.postfix = ""
        self._bar = None
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, desc=desc, file=file)

    def write(self, text):
        """Print a line without breaking the bar."""
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

    def step(self, state):
        if self._bar is not None:
            # tqdm redraws at most every 0.1 s, so setting the text every step is cheap
            self.postfix = f"loss {state.history.train_loss_list[-1]:.4f}"
            self._bar.set_postfix_str(self.postfix, refresh=False)
            self._bar.update(1)

    def evaluation(self, state):
        if self.lines:
            h = state.history
            self.write(f"step {state.step:6d}  epoch {state.epoch:6.2f}  loss {h.train_loss_list[-1]:.4f}  "
                       f"train acc {h.train_acc_list[-1]:.4f}  test acc {h.test_acc_list[-1]:.4f}")

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
