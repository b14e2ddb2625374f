"""What a training run leaves in its folder, and reading it back.

* ``history.csv``: one row per step (batch loss, step time, and the
  accuracies on evaluation rows), appended as the run goes, never rewritten.
* ``checkpoint.npz``: parameters, next step, the state of numpy's random
  generator, the configuration, and how many rows (bytes) of ``history.csv``
  belong to it. Its size does not grow with the run: the history is in the
  CSV, which a resume cuts back to the checkpoint's length. Written
  atomically (a temporary file renamed over the old one), so a crash or a
  signal never leaves half a checkpoint.
* ``history.json``: the whole history, written when the run ends or stops.
* ``params.npz``: the final parameters, the network's description and state
  (``load_network`` turns them back into the network).
* ``accuracy.png`` and ``loss.png`` (``fastnum.plots``).
* ``run.json``: the command, configuration, versions and timings of every
  session of the run (the first command first).

Everything is stored without pickles (``np.load(..., allow_pickle=False)``).
"""

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._atomic import NPZ_READ_ERRORS, atomic_write
from .registry import with_params
from .train import History

CHECKPOINT = "checkpoint.npz"
PARAMS = "params.npz"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
RUN_JSON = "run.json"
PLOTS = ("accuracy.png", "loss.png")
LOCK = ".fastnum.lock"
"""The run folder's lock file: a run folder belongs to one process at a time."""
TRACEBACK = "traceback.txt"
"""Where a run that failed on a bug leaves its traceback."""
OUTPUTS = (CHECKPOINT, PARAMS, HISTORY_CSV, HISTORY_JSON, RUN_JSON, *PLOTS)
"""Every file a finished run writes into its folder (besides ``LOCK``)."""

CSV_COLUMNS = ("step", "epoch", "train_loss", "step_seconds", "train_acc", "test_acc", "eval_seconds")



class RunFileError(ValueError):
    """A run folder's file is missing, truncated, not fastnum's, or holds values a run cannot use."""


class RunFolderInUse(RuntimeError):
    """Another process holds the run folder's lock."""


class RunFolder:
    """A run's folder, held by this process: created if new, locked, and given back on ``release``.

    The lock (``LOCK``, an advisory ``flock`` through ``filelock``) is taken
    before anything is read or written, so two ``fastnum train`` on one
    folder (new runs or resumes) never interleave: the second is refused at
    once. The operating system releases the lock when its process ends,
    however it ends, so a run killed with SIGKILL never blocks a later
    resume. A folder this process created is removed again on ``release``
    while it holds nothing but the lock file (a run refused or interrupted
    before it wrote anything leaves no trace; in a folder that was there,
    the lock file goes too).
    """

    def __init__(self, path, lock, created):
        self.path = Path(path)
        self._lock = lock
        self._created = created
        """The topmost folder this process created (None: it existed)."""

    @classmethod
    def claim(cls, path, new):
        """Create (when ``new`` and missing) and lock ``path``.

        Raises
        ------
        RunFolderInUse
            Another process holds the lock.
        OSError
            The folder cannot be created.
        """
        import filelock

        path = Path(path)
        created = None
        if new and not path.exists():
            created = path  # the topmost folder mkdir will create
            while not created.parent.exists():
                created = created.parent
            path.mkdir(parents=True)
        lock = filelock.FileLock(str(path / LOCK), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise RunFolderInUse(f"{path} is in use by another fastnum train (its lock {LOCK} is held): wait for "
                                 "it to finish, or stop it, first") from None
        return cls(path, lock, created)

    def holds_only_the_lock(self):
        return all(p.name == LOCK for p in self.path.iterdir())

    def release(self):
        """Give the lock back; remove the folder if this process created it and nothing was written."""
        from contextlib import suppress

        if self._lock is None:
            return
        self._lock.release()
        self._lock = None
        if not (self.path.is_dir() and self.holds_only_the_lock()):
            return
        with suppress(OSError):  # nothing was written: leave the folder as it was found
            (self.path / LOCK).unlink()
            folder = self.path
            while self._created is not None:
                folder.rmdir()
                if folder == self._created:
                    break
                folder = folder.parent


def run_files(folder):
    """The names of what ``folder`` holds, its lock file left out."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name != LOCK)


# -- history.csv -------------------------------------------------------------------


class HistoryLog:
    """Appends the rows of ``history.csv`` up to each checkpoint.

    A step's row is written once the step and its evaluation (if any) are
    done, i.e. when the next checkpoint is taken; ``position`` is what that
    checkpoint records.
    """

    def __init__(self, folder, history, rows=0, size=None):
        self.path = Path(folder) / HISTORY_CSV
        self.history = history
        self.rows = rows
        if size is None:
            with open(self.path, "w", newline="") as handle:
                handle.write(",".join(CSV_COLUMNS) + "\n")
        else:
            with open(self.path, "r+b") as handle:  # drop rows written after the checkpoint
                handle.truncate(size)

    @property
    def position(self):
        return {"rows": self.rows, "bytes": self.path.stat().st_size}

    def append_until(self, next_step):
        """Write the rows of steps ``rows .. next_step - 1``, flushed to disk."""
        h = self.history
        evals = {step: n for n, step in enumerate(h.eval_steps)}
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        for step in range(self.rows, next_step):
            n = evals.get(step)
            writer.writerow([
                step, f"{(step + 1) / h.iter_per_epoch:.4f}", repr(h.train_loss_list[step]),
                repr(h.step_times[step]),
                "" if n is None else repr(h.train_acc_list[n]),
                "" if n is None else repr(h.test_acc_list[n]),
                "" if n is None else repr(h.eval_times[n]),
            ])
        with open(self.path, "a", newline="") as handle:
            handle.write(text.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        self.rows = next_step


def read_history_csv(folder, rows, size, iter_per_epoch):
    """The History of the first ``rows`` rows (``size`` bytes) of ``history.csv``."""
    path = Path(folder) / HISTORY_CSV
    if not path.is_file() or path.stat().st_size < size:
        raise RunFileError(f"{path} is missing or shorter than its checkpoint says ({size} bytes)")
    with open(path, "rb") as handle:
        text = handle.read(size).decode()
    history = History(iter_per_epoch=iter_per_epoch)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        if tuple(header) != CSV_COLUMNS:
            raise RunFileError(f"{path} does not have fastnum's columns")
        for row in reader:
            step, _, loss, seconds, train_acc, test_acc, eval_seconds = row
            history.train_loss_list.append(float(loss))
            history.step_times.append(float(seconds))
            if train_acc:
                history.eval_steps.append(int(step))
                history.train_acc_list.append(float(train_acc))
                history.test_acc_list.append(float(test_acc))
                history.eval_times.append(float(eval_seconds))
    except (ValueError, StopIteration) as error:
        raise RunFileError(f"{path} is damaged: {error}") from None
    if len(history.train_loss_list) != rows:
        raise RunFileError(f"{path} has {len(history.train_loss_list)} rows where its checkpoint says {rows}")
    return history


# -- checkpoint.npz ------------------------------------------------------------------


@dataclass
class Checkpoint:
    """What ``checkpoint.npz`` holds."""

    params: dict
    next_step: int
    rng_state: tuple
    """``np.random.get_state()`` after the last step done."""
    config: dict
    log_position: dict
    """``{"rows": ..., "bytes": ...}`` of ``history.csv``."""
    state: dict = None
    """The network's arrays besides ``params`` (batch norm's running statistics)."""

    def history(self, folder):
        return read_history_csv(folder, self.log_position["rows"], self.log_position["bytes"],
                                self.config.get("iter_per_epoch", 1.0))


def save_checkpoint(folder, params, next_step, rng_state, config, log_position, state=None):
    """Write ``checkpoint.npz`` atomically: everything needed to continue the run bit for bit."""
    kind, keys, pos, has_gauss, cached_gaussian = rng_state
    arrays = {f"param_{name}": value for name, value in params.items()}
    arrays.update({f"state_{name}": value for name, value in (state or {}).items()})
    arrays.update(
        next_step=np.array(next_step),
        rng_keys=keys,
        rng_pos=np.array(pos),
        rng_has_gauss=np.array(has_gauss),
        rng_cached_gaussian=np.array(cached_gaussian),
        config=np.array(json.dumps(config)),
        log_position=np.array(json.dumps(log_position)),
    )
    atomic_write(Path(folder) / CHECKPOINT, lambda handle: np.savez(handle, **arrays))


def load_checkpoint(folder):
    """Read ``checkpoint.npz``, checking everything a resumed run will use.

    The configuration's every setting (``fastnum.run_config``), the
    parameters against the network the configuration describes (keys,
    shapes, dtypes, finiteness), batch norm's running statistics, the step,
    the generator's state and the history's position.

    Returns
    -------
    Checkpoint

    Raises
    ------
    FileNotFoundError
        There is no checkpoint in ``folder``.
    RunFileError
        It is truncated, damaged, not a fastnum checkpoint, or holds a value
        a run cannot use (one line naming the key).
    """
    from .architectures import spec_from_config
    from .run_config import check_config

    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            params = {key[len("param_"):]: data[key].copy() for key in data.files if key.startswith("param_")}
            state = {key[len("state_"):]: data[key].copy() for key in data.files if key.startswith("state_")}
            rng_state = ("MT19937", data["rng_keys"].copy(), int(data["rng_pos"]),
                         int(data["rng_has_gauss"]), float(data["rng_cached_gaussian"]))
            config = json.loads(str(data["config"]))
            log_position = json.loads(str(data["log_position"]))
            next_step = int(data["next_step"])
        np.random.RandomState().set_state(rng_state)  # a damaged state fails here, not mid-run
    except NPZ_READ_ERRORS as error:
        raise RunFileError(f"{path} is truncated, damaged or not a fastnum checkpoint ({error})") from None
    if not params:
        raise RunFileError(f"{path} holds no parameters: not a fastnum checkpoint")
    try:
        if isinstance(config, dict) and not isinstance(config.get("hidden"), list) and "hidden" in config:
            config["hidden"] = [config["hidden"]]  # written before --hidden took several sizes
        check_config(config, str(path))
        network = with_params(spec_from_config(config), params, state, str(path))
    except ValueError as error:
        raise RunFileError(str(error)) from None
    if not 0 <= next_step <= config["iters"]:
        raise RunFileError(f"{path}: next_step {next_step} is outside the run's 0..{config['iters']} steps")
    if not (isinstance(log_position, dict) and log_position.get("rows") == next_step
            and isinstance(log_position.get("bytes"), int) and log_position["bytes"] >= 0):
        raise RunFileError(f"{path}: log_position {log_position!r} does not fit next_step {next_step}")
    return Checkpoint(network.params, next_step, rng_state, config, log_position, network.state_arrays())


# -- params.npz, history.json, plots, run.json ----------------------------------


def save_params(path, network):
    """Write the parameters, the network's description and its state (batch norm's running statistics)."""
    arrays = dict(network.params)
    arrays["activation"] = np.array(network.activation)
    arrays["network_spec"] = np.array(json.dumps(network.spec()))
    arrays.update({f"state_{name}": value for name, value in network.state_arrays().items()})
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_network(path):
    """The network saved by ``save_params`` (``params.npz``), checked before it is built.

    The description must name a fastnum network with usable settings, and
    the parameters must be exactly that network's (every key, no other;
    shapes; real dtypes; no NaN or inf), the state arrays too.

    Raises
    ------
    RunFileError
        One line naming the file and the key.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            if "network_spec" in data:
                spec = json.loads(str(data["network_spec"]))
            else:  # written before fastnum had other networks
                activation = str(data["activation"]) if "activation" in data else "sigmoid"
                spec = {"network": "TwoLayerNet", "hidden": [int(np.shape(data["W1"])[-1])] if "W1" in data else None,
                        "activation": activation}
            names = [n for n in data.files if n not in ("activation", "network_spec") and not n.startswith("state_")]
            params = {name: data[name].copy() for name in names}
            state = {n[len("state_"):]: data[n].copy() for n in data.files if n.startswith("state_")}
    except NPZ_READ_ERRORS as error:
        raise RunFileError(f"{path} is not a readable fastnum params file ({error})") from None
    try:
        return with_params(spec, params, state, str(path))
    except ValueError as error:
        raise RunFileError(str(error)) from None


def save_history_json(folder, history):
    """``history.json``: the whole history as lists."""
    data = json.dumps(history.to_dict(), indent=1).encode()
    atomic_write(Path(folder) / HISTORY_JSON, lambda handle: handle.write(data))


def save_plots(folder, history, title=""):
    """``accuracy.png`` and ``loss.png``, drawn by the functions behind ``History.plot``."""
    from .plots import accuracy_figure, loss_figure

    for name, make in zip(PLOTS, (accuracy_figure, loss_figure)):
        fig = make(history, title)
        atomic_write(Path(folder) / name, lambda handle, fig=fig: fig.savefig(handle, format="png", dpi=110))


def read_run_json(folder):
    """The run's ``run.json``, or None when there is none or it cannot be read."""
    path = Path(folder) / RUN_JSON
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_run_json(folder, info):
    data = json.dumps(info, indent=1).encode()
    atomic_write(Path(folder) / RUN_JSON, lambda handle: handle.write(data))
