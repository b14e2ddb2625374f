"""``fastnum train``: the book's chapter-4 training run from the command line; ``fastnum compile``.

    fastnum train                      # 16 epochs, numerical gradient, as the book
    fastnum train --gradient backprop  # the same batches with backprop
    fastnum train --resume runs/2026-11-28_0512   # continue an interrupted run
    fastnum compile                    # every kernel, now (``fastnum.precompile``)

The command checks every option before any work, claims its run folder (a
new one is created and locked; a resumed one locked: one process per
folder), checks what the network will need in memory, loads and identifies
the data, builds the network exactly as the book's ``train_neuralnet.py``
after ``np.random.seed(seed)``, compiles the kernels (saying so), and runs
``fastnum.train.fit`` with checkpoints by evaluation and by time. SIGINT
(Ctrl-C) and SIGTERM end the current step, save and exit 130 / 143.

Errors meet one boundary (``main``): whatever a user can cause (an option,
a file, the data, a folder in use, too little memory) is one line
``fastnum train: error: ...`` naming the option or file, exit status 2; a run
whose loss or parameters stop being finite ends cleanly, its files written,
with the step named (exit status 3); anything else is a bug: one line
saying so, the traceback in the run folder (or a temporary file) and
``run.json`` marked failed, exit status 1.
"""

import argparse
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from ._machine import available_memory_bytes, cpu_model
from .architectures import spec_from_config
from .datasets import DATASETS, DISPLAY_NAMES, N_CLASSES
from .mnist import DATA_DIR_ENV, IMAGE_SIDE
from .registry import CLI_NAMES, KINDS
from .run_config import option_type

DEFAULTS = dict(epochs=16, batch_size=100, lr=0.1, hidden=None, gradient="numerical",
                activation=None, seed=0, dataset="mnist", eval_every=None, weight_init=None, weight_decay=None,
                batchnorm=None, dropout=None, network=None)
RESUMABLE_KEYS = ("iters", "batch_size", "lr", "hidden", "gradient", "activation", "seed",
                  "dataset", "eval_every", "weight_init", "weight_decay", "batchnorm", "dropout", "network")
CHECKPOINT_EVERY_S = 60.0
"""Default seconds between checkpoints (besides one at every evaluation)."""
CLI_HINTS = {"data_dir": "give --data-dir FOLDER", "data_dir_short": "--data-dir",
             "verify": "add --no-verify-data"}
"""How the loader's messages name the options, on the command line."""


def _stop_signals():
    """The signals that stop a run, with their exit statuses (SIGTERM where the platform has it)."""
    codes = {signal.SIGINT: 130}
    if hasattr(signal, "SIGTERM"):
        codes[signal.SIGTERM] = 143
    return codes


EXIT_CODES = _stop_signals()
USER_ERROR_EXIT = 2
"""An option, file, folder or the machine's memory does not allow the run (one line)."""
DIVERGED_EXIT = 3
"""The loss or a parameter stopped being finite; the run's files are written."""
BUG_EXIT = 1
"""Anything else: a bug in fastnum, reported with its traceback in a file."""


class UserError(Exception):
    """Something the user can change (an option, a file, a folder): one line, exit status 2."""


def _readable_dir(text):
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text} is not readable")
    return path


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors reported like every other user error of the command."""

    def error(self, message):
        self.print_usage(sys.stderr)
        raise UserError(message)


def build_parser():
    from .train import GRADIENTS

    parser = _Parser(prog="fastnum", description="fastnum: the book's numerical-gradient training, fast.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser(
        "train",
        help="run the book's chapter-4 training (train_neuralnet.py)",
        description="Train the book's TwoLayerNet on MNIST with mini-batch SGD. Defaults are the book's: "
        "hidden 50, batch 100, learning rate 0.1, 16 epochs (9,600 steps), numerical gradient.",
    )
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=option_type("epochs"), help="epochs to train (default 16)")
    length.add_argument("--iters", type=option_type("iters"), help="steps to train, instead of --epochs")
    train.add_argument("--batch-size", type=option_type("batch_size"), help="mini-batch size (default 100)")
    train.add_argument("--lr", type=option_type("lr"), help="learning rate (default 0.1)")
    train.add_argument("--hidden", type=option_type("hidden"), nargs="+", metavar="N",
                       help="hidden units (default 50; 100 for the convnet); several sizes (--hidden 100 100) "
                       "train the book's MultiLayerNet")
    train.add_argument("--gradient", choices=tuple(GRADIENTS),
                       help="numerical (exact, incremental; default), numerical-full (the book's way; two-layer "
                       "net only), backprop")
    train.add_argument("--activation", choices=("sigmoid", "relu"),
                       help="hidden activation (default: sigmoid for the two-layer net, relu for the multi-layer "
                       "nets, as the book)")
    train.add_argument("--network", choices=tuple(CLI_NAMES),
                       help="two-layer (chapter 4's TwoLayerNet), multi-layer (MultiLayerNetExtend) or convnet "
                       "(chapter 7's SimpleConvNet: conv 30 5x5, pool, --hidden units); default: two-layer, or "
                       "multi-layer when the options ask for it")
    train.add_argument("--weight-init", type=option_type("weight_init"), metavar="INIT",
                       help="multi-layer nets' initial weights: relu/he, sigmoid/xavier, or a standard deviation "
                       "(default relu); makes the network a MultiLayerNetExtend")
    train.add_argument("--weight-decay", type=option_type("weight_decay"), metavar="LAMBDA",
                       help="weight decay: 0.5 LAMBDA sum(W**2) joins the loss (MultiLayerNetExtend)")
    train.add_argument("--batchnorm", action="store_true", default=None,
                       help="batch normalisation after every hidden affine layer (MultiLayerNetExtend)")
    train.add_argument("--dropout", type=option_type("dropout"), metavar="RATIO",
                       help="dropout after every hidden activation, dropping RATIO (MultiLayerNetExtend)")
    train.add_argument("--eval-every", type=option_type("eval_every"), metavar="N",
                       help="evaluate train/test accuracy every N steps (default: once per epoch, as the book)")
    train.add_argument("--seed", type=option_type("seed"),
                       help="np.random.seed before the network is built: the book's initial weights and "
                       "batches for that seed (default 0; 0 to 4294967295)")
    train.add_argument("--threads", type=option_type("threads"), help="numba threads (default: all cores)")
    train.add_argument("--data-dir", type=_readable_dir,
                       help=f"folder with the IDX files (else ${DATA_DIR_ENV}, else the cache)")
    train.add_argument("--dataset", choices=tuple(DATASETS), help="mnist (default) or fashion-mnist")
    train.add_argument("--no-verify-data", action="store_true",
                       help="accept data files that match no published copy (your own data); files identified "
                       "as another data set are refused either way")
    train.add_argument("--out", type=Path, help="output folder, new or empty (default: a new one under runs/)")
    train.add_argument("--resume", type=_readable_dir, metavar="DIR",
                       help="continue the run whose checkpoint is in DIR")
    train.add_argument("--checkpoint-every", type=option_type("checkpoint_every"), metavar="SECONDS",
                       help="also checkpoint when this long has passed since the last one "
                       f"(default {CHECKPOINT_EVERY_S:g})")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (one line per evaluation only)")
    parser.train_parser = train
    compile_ = commands.add_parser(
        "compile",
        help="compile fastnum's kernels now, once per machine (a notebook's first cell, a Docker image)",
        description="Compile the kernels numba's cache lacks, in parallel processes, with a progress bar: "
        "every kernel of every network, or those of the --network kinds (and of one --gradient). Later "
        "runs on this machine load them from the cache in a fraction of a second.",
    )
    compile_.add_argument("--network", choices=tuple(CLI_NAMES), action="append",
                          help="only this network's kernels (repeat for several; default: every network)")
    compile_.add_argument("--gradient", choices=tuple(GRADIENTS),
                          help="only the kernels a `fastnum train --gradient` run calls")
    compile_.add_argument("--jobs", type=option_type("threads"), help="compile processes (default: all cores)")
    compile_.add_argument("--no-progress", action="store_true", help="no progress bar")
    compile_.add_argument("--table", action="store_true", help="end with a table of every kernel's compile time")
    return parser


def compile_command(args):
    """``fastnum compile``: every kernel the options name, compiled where the cache lacks it."""
    from .precompiling import precompile, requests_for

    try:
        requests_for(args.network, args.gradient)
    except ValueError as error:
        raise UserError(f"--gradient {args.gradient}: {error}") from None
    report = precompile(networks=args.network, gradient=args.gradient, jobs=args.jobs,
                        progress=not args.no_progress)
    if args.table and report.kernels:
        print(report.table())
    print(report.summary())
    return 0


def _versions():
    import numba

    from . import __version__

    return {"fastnum": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "numba_threads": numba.get_num_threads(), "processor": cpu_model()}


def _gib(n_bytes):
    return f"{n_bytes / 2**30:,.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:,.0f} MiB"


# -- what happens on Ctrl-C and SIGTERM ------------------------------------------------


class Aborted(BaseException):
    """A signal asked to stop at a point where no step can be finished first.

    A ``BaseException``, as ``KeyboardInterrupt``: no ``except Exception``
    on the way (numba's compiler has some) can swallow it.
    """

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _abort(signum, frame):
    raise Aborted(signum)


class _StopAfterStep:
    """During training: the first SIGINT/SIGTERM finishes the step, saves and stops; a second aborts."""

    def __init__(self, write):
        self.signum = None
        self._write = write
        self._previous = {}

    def __enter__(self):
        for signum in EXIT_CODES:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise Aborted(signum)
        self.signum = signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self._write(f"{name}: finishing this step and saving a checkpoint (again to abort without saving)")

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        return False


class _ExitAtOnce:
    """While the kernels compile: a signal stops the compile children, gives the folder back and
    ends the process at once (``os._exit``), with the one line.

    numba's compiler is no place for an exception to unwind through (it
    catches and rewraps some), and there is nothing to save yet. numba
    writes each cache file to a temporary name and renames it, so no
    half-written cache entry is left either.
    """

    def __init__(self, state):
        self.state = state
        self._previous = {}

    def __enter__(self):
        for signum in EXIT_CODES:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        state = self.state
        if state.compiling is not None:
            state.compiling.cancel()
        if state.folder is not None:
            state.folder.release()
        print(f"fastnum train: interrupted {state.phase}; {state.saved}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(EXIT_CODES[signum])

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        return False


@dataclass
class _Progress:
    """Where the command stands: for the line printed when it is aborted, and for cleaning up."""

    phase: str = "before training started"
    saved: str = "nothing was written"
    folder: object = None
    """The ``runs.RunFolder`` once claimed."""
    compiling: object = None
    """The ``_compile.CompileJob`` while a child compiles."""


# -- the steps of the command ----------------------------------------------------------------


@dataclass
class _Plan:
    config: dict
    out: Path
    checkpoint: object = None
    previous_info: dict = field(default_factory=dict)


def _check_out_folder(out):
    """A new or empty folder that can be created: checked before any work."""
    from .runs import run_files

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    if out.is_dir():
        held = run_files(out)
        if held:
            shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
            hint = f"--resume {out} to continue that run, or " if "checkpoint.npz" in held else ""
            raise UserError(f"--out {out} is not empty (it holds {shown}); use {hint}a new or empty folder")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"--out {out} cannot be created: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"--out {out} cannot be created: {ancestor} is not writable")


def _new_run_folder():
    base = Path("runs") / datetime.now().strftime("%Y-%m-%d_%H%M%S")
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def _plan(args):
    """The configuration and folder of the run, from the options or the checkpoint (read later)."""
    if args.resume is None:
        config = {k: DEFAULTS.get(k) if getattr(args, k) is None else getattr(args, k)
                  for k in ("epochs", *RESUMABLE_KEYS)}
        config["verify_data"] = not args.no_verify_data
        if config["hidden"] is None:
            config["hidden"] = [100] if config["network"] == "convnet" else [50]
        if config["network"] == "convnet":
            extra = [name for name in ("activation", "weight_init", "weight_decay", "batchnorm", "dropout")
                     if config[name] is not None]
            if len(config["hidden"]) != 1 or extra:
                raise UserError("--network convnet is the book's SimpleConvNet: one --hidden size and none of "
                                "--activation, --weight-init, --weight-decay, --batchnorm, --dropout")
        spec = spec_from_config(config)
        config["activation"] = spec["activation"]
        kind = KINDS[spec["network"]]
        if config["gradient"] not in kind.cls.GRADIENTS:
            raise UserError(f"--gradient {config['gradient']}: {kind.name} (--network {kind.cli_name}) has "
                            f"{', '.join(kind.cls.GRADIENTS)}; numerical-full exists for the two-layer net only "
                            "(one --hidden size and none of --weight-init, --weight-decay, --batchnorm, --dropout, "
                            "--network)")
        out = Path(args.out) if args.out is not None else _new_run_folder()
        _check_out_folder(out)
        return _Plan(config, out)
    given = {k: getattr(args, k) for k in RESUMABLE_KEYS if getattr(args, k, None) is not None}
    other_out = args.out is not None and Path(args.out) != Path(args.resume)
    if given or args.epochs is not None or args.iters is not None or other_out:
        raise UserError("--resume continues a run with its own settings; only --threads, --data-dir, "
                        "--no-verify-data, --checkpoint-every and --no-progress may be given with it")
    return _Plan(None, Path(args.resume))


def _read_checkpoint(plan, args):
    """The resumed run's checkpoint and configuration (read once its folder is locked)."""
    from .runs import RunFileError, load_checkpoint, read_run_json

    try:
        checkpoint = load_checkpoint(args.resume)
    except (FileNotFoundError, RunFileError) as error:
        raise UserError(f"--resume {args.resume}: {error}") from None
    plan.config = checkpoint.config
    plan.checkpoint = checkpoint
    plan.previous_info = read_run_json(args.resume) or {}


def _set_threads(threads):
    if threads is None:
        return
    import numba

    if threads > numba.config.NUMBA_NUM_THREADS:
        raise UserError(f"--threads {threads}: this machine allows at most {numba.config.NUMBA_NUM_THREADS}")
    numba.set_num_threads(threads)


def _check_memory(config):
    """Refuse, before anything is allocated, a network that would not fit in this machine's memory."""
    spec = spec_from_config(config)
    n_in = IMAGE_SIDE * IMAGE_SIDE  # every data set fastnum loads has 28x28 images
    needed = KINDS[spec["network"]].cls.memory_bytes(spec, n_in, N_CLASSES, config["batch_size"])
    available = available_memory_bytes()
    if available is not None and needed > available:
        sizes = " ".join(str(n) for n in config["hidden"])
        raise UserError(f"--hidden {sizes} with --batch-size {config['batch_size']} needs about {_gib(needed)} "
                        f"(parameters, gradients and the gradient's buffers), and this machine has "
                        f"{_gib(available)} available: use fewer hidden units or a smaller batch")


def _load_data(args, config, write):
    from .mnist import read_dataset

    data_dir = args.data_dir if args.data_dir is not None else config.get("data_dir")
    try:
        data = read_dataset(data_dir, config["dataset"], progress=not args.no_progress,
                            verify=config.get("verify_data", True) and not args.no_verify_data, hints=CLI_HINTS)
    except (FileNotFoundError, ValueError) as error:
        raise UserError(f"cannot load {DISPLAY_NAMES[config['dataset']]}: {error}") from None
    folders = [str(Path(f).resolve()) for f in data.folders]
    note = "" if data.verified else " (unverified: --no-verify-data)"
    write(f"{DISPLAY_NAMES[config['dataset']]} from {', '.join(folders)}{note}")
    return data, {"dataset": config["dataset"], "folders": folders, "verified": data.verified}


def _network(config, checkpoint, n_in):
    """The book's network after ``np.random.seed(seed)``, or the checkpoint's."""
    from .registry import build, with_params

    if checkpoint is None:
        np.random.seed(config["seed"])  # as the book's script: seed, build the network, draw batches
        return build(spec_from_config(config), n_in, N_CLASSES)
    np.random.set_state(checkpoint.rng_state)  # the resumed run draws its batches on from here
    return with_params(spec_from_config(config), checkpoint.params, checkpoint.state)


def _session(command, start_step):
    return {"command": command, "started": datetime.now().isoformat(timespec="seconds"),
            "from_step": start_step, "versions": _versions()}


def _summary(history, done, iters):
    steps = np.array(history.step_times)
    status = "finished" if done == iters else "interrupted"
    if history.diverged_at is not None:
        status = "diverged"
    summary = {
        "status": status,
        "steps_done": done,
        "median_step_seconds": float(np.median(steps)) if steps.size else None,
        "total_step_seconds": float(steps.sum()),
        "total_eval_seconds": float(np.sum(history.eval_times)),
        "final_train_acc": history.train_acc_list[-1] if history.train_acc_list else None,
        "final_test_acc": history.test_acc_list[-1] if history.test_acc_list else None,
    }
    if history.diverged_at is not None:
        summary["diverged_at_step"] = history.diverged_at
    return summary


def _hidden_text(config):
    hidden = config["hidden"]
    return "-".join(str(h) for h in hidden) if isinstance(hidden, list) else str(hidden)


def _title(config, done, iters, diverged_at=None):
    title = (f"{DISPLAY_NAMES[config['dataset']]}, {config['gradient']} gradient, hidden {_hidden_text(config)}, "
             f"batch {config['batch_size']}, lr {config['lr']}, seed {config['seed']}")
    if diverged_at is not None:
        return title + f"\nDIVERGED at step {diverged_at}"
    return title + (f"\nINTERRUPTED after {done} of {iters} steps" if done < iters else f", {done} steps")


@dataclass
class _Run:
    """A run in progress: its folder, settings, network and records."""

    out: Path
    config: dict
    network: object
    log: object
    """The run's ``HistoryLog``; its ``history`` is the run's history."""
    info: dict
    session: dict
    start_step: int
    checkpoint_every: float
    last_checkpoint: float = 0.0

    @property
    def history(self):
        return self.log.history

    def save_checkpoint(self, next_step, progress):
        from .runs import save_checkpoint

        self.log.append_until(next_step)
        save_checkpoint(self.out, self.network.params, next_step, np.random.get_state(), self.config,
                        self.log.position, self.network.state_arrays())
        self.last_checkpoint = time.perf_counter()
        progress.saved = (f"the checkpoint after step {next_step - 1} in {self.out} is intact: "
                          f"fastnum train --resume {self.out}")


def _start_compiling(config):
    """The run's kernels start compiling now (the ones numba's cache lacks), every other one in a
    second process, so that its start and its share overlap the data's loading; None when nothing
    needs compiling."""
    from ._compile import RUN_METHODS, CompileRequest, start_compiling
    from .registry import build

    spec = spec_from_config(config)
    saved = np.random.get_state()
    try:
        probe = build(spec, IMAGE_SIDE * IMAGE_SIDE, N_CLASSES)  # every data set fastnum loads: 28x28 images
    finally:
        np.random.set_state(saved)
    # float32 images (normalised) for a network that reads them as they are, else float64 batches
    x_dtype = np.float32 if probe.READS_FLOAT32 else np.float64
    return start_compiling(CompileRequest.of(probe, RUN_METHODS[config["gradient"]], x_dtype))


def _prepare(args, command, progress, plan):
    """Memory, data, network and compiled kernels; then the run's first records. The folder is held."""
    from .mnist import format_split
    from .runs import HistoryLog, RunFileError, write_run_json
    from .train import History, iterations_per_epoch, warm_up

    out = plan.out
    if plan.checkpoint is None and plan.config is None:
        _read_checkpoint(plan, args)
    config = plan.config
    _check_memory(config)
    progress.compiling = _start_compiling(config)
    progress.phase = "while loading the data"
    data, data_info = _load_data(args, config, print)
    x_train, t_train = format_split(data.arrays["train_img"], data.arrays["train_label"])
    x_test, t_test = format_split(data.arrays["test_img"], data.arrays["test_label"])
    if config["batch_size"] > x_train.shape[0]:
        raise UserError(f"--batch-size {config['batch_size']} is larger than the {x_train.shape[0]} "
                        "training images")
    config["iter_per_epoch"] = iterations_per_epoch(x_train.shape[0], config["batch_size"])
    if config.get("iters") is None:
        config["iters"] = int(round(config.pop("epochs") * config["iter_per_epoch"]))
    config.pop("epochs", None)
    if args.data_dir is not None:
        config["data_dir"] = str(Path(args.data_dir).resolve())

    network = _network(config, plan.checkpoint, x_train.shape[1])
    shape = network.sample_shape  # e.g. (1, 28, 28) for the convnet: views, no copy
    x_train, x_test = (x.reshape(-1, *shape) for x in (x_train, x_test))
    history = None
    if plan.checkpoint is not None:
        try:
            history = plan.checkpoint.history(out)
        except RunFileError as error:
            raise UserError(f"--resume {out}: {error}") from None
    progress.phase = "while compiling the kernels"
    with _ExitAtOnce(progress):
        compile_seconds = warm_up(network, config["gradient"], x_train, t_train, print, progress.compiling)
    progress.compiling = None

    start_step = 0 if plan.checkpoint is None else plan.checkpoint.next_step
    session = dict(_session(command, start_step), compile_seconds=compile_seconds)
    info = plan.previous_info or {"command": command, "cwd": os.getcwd(), "config": config, "data": data_info,
                                  "started": session["started"], "sessions": []}
    info.setdefault("sessions", []).append(session)
    info["status"] = "running"
    if history is None:
        log = HistoryLog(out, History(iter_per_epoch=config["iter_per_epoch"]))
    else:
        position = plan.checkpoint.log_position
        log = HistoryLog(out, history, rows=position["rows"], size=position["bytes"])
    write_run_json(out, info)
    run = _Run(out, config, network, log, info, session, start_step,
               args.checkpoint_every or CHECKPOINT_EVERY_S, time.perf_counter())
    return run, (x_train, t_train, x_test, t_test)


def _train(run, data, show_bar, progress):
    """``fit`` with checkpoints at every evaluation and by time; SIGINT/SIGTERM stop it after a step."""
    from .progress import TrainingProgress
    from .train import fit

    config = run.config

    def on_step(state):
        if time.perf_counter() - run.last_checkpoint >= run.checkpoint_every:
            run.save_checkpoint(state.step + 1, progress)

    report = TrainingProgress(config["iters"], run.start_step, bar=show_bar, lines=True, desc=config["gradient"])
    report.write(f"fastnum train: {config['gradient']} gradient, {config['iters']} steps of batch "
                 f"{config['batch_size']}, lr {config['lr']}, {run.network.summary()}, seed {config['seed']} "
                 f"-> {run.out}")
    progress.phase = "during training"
    try:
        with _StopAfterStep(report.write) as stop:
            fit(run.network, *data, iters=config["iters"], batch_size=config["batch_size"],
                learning_rate=config["lr"], gradient=config["gradient"], eval_every=config["eval_every"],
                history=run.history, start_step=run.start_step, progress=report, warm=False, on_step=on_step,
                on_eval=lambda state: run.save_checkpoint(state.step + 1, progress),
                should_stop=lambda: stop.signum is not None)
    finally:
        report.close()
    return stop.signum


def _finish(run, signum, wall_start, progress):
    """Checkpoint, history, plots, params (when finished) and run.json; the exit status."""
    from .runs import save_history_json, save_params, save_plots, write_run_json

    progress.phase = "while writing the run's files"
    signal.signal(signal.SIGINT, _abort)  # Ctrl-C now: stop writing, one line, the checkpoint stays
    history = run.history
    iters, done = run.config["iters"], history.steps_done
    if history.diverged_at is None:
        run.save_checkpoint(done, progress)
    else:  # the network holds the non-finite parameters: the last checkpoint stays as it is
        run.log.append_until(done)
    save_history_json(run.out, history)
    save_plots(run.out, history, _title(run.config, done, iters, history.diverged_at))
    run.session.update(wall_seconds=time.perf_counter() - wall_start, to_step=done,
                       signal=None if signum is None else signal.Signals(signum).name)
    run.info.update(_summary(history, done, iters))
    if done == iters and history.diverged_at is None:
        save_params(run.out / "params.npz", run.network)
    write_run_json(run.out, run.info)
    if history.diverged_at is not None:
        print(f"fastnum train: the loss or a parameter stopped being finite at step {history.diverged_at} "
              f"(--lr {run.config['lr']} is too large for this network: try a smaller one); the history and plots "
              f"are in {run.out}, and its last checkpoint is of the steps before", file=sys.stderr)
        return DIVERGED_EXIT
    if done < iters:
        print(f"stopped after step {done - 1}; checkpoint saved. Continue with: fastnum train --resume {run.out}")
        return EXIT_CODES.get(signum, 130)
    info = run.info
    print(f"done in {run.session['wall_seconds']:.1f} s (compile {run.session['compile_seconds']:.1f} s, median "
          f"step {info['median_step_seconds'] * 1e3:.2f} ms): train acc {info['final_train_acc']:.4f}, "
          f"test acc {info['final_test_acc']:.4f}. Results in {run.out}")
    return 0


def train_command(args, command, progress):
    """``fastnum train``: plan, claim the folder, prepare, train, write; returns the exit status."""
    from .runs import RunFolder, RunFolderInUse

    wall_start = time.perf_counter()
    plan = _plan(args)
    _set_threads(args.threads)
    try:
        progress.folder = RunFolder.claim(plan.out, new=args.resume is None)
    except RunFolderInUse as error:
        raise UserError(f"--{'resume' if args.resume is not None else 'out'} {error}") from None
    except OSError as error:
        raise UserError(f"--out {plan.out} cannot be created: {error.strerror or error}") from None
    if args.resume is None:
        _check_out_folder(plan.out)  # again, now that the folder is this process's
    run, data = _prepare(args, command, progress, plan)
    signum = _train(run, data, not args.no_progress, progress)
    return _finish(run, signum, wall_start, progress)


def _report_bug(error, progress, name="fastnum train"):
    """One line for a bug; its traceback in the run folder (or a temporary file); run.json marked failed."""
    from .runs import TRACEBACK, read_run_json, write_run_json

    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    folder = progress.folder.path if progress.folder is not None else None
    where = None
    try:
        if folder is not None:
            where = folder / TRACEBACK
            where.write_text(text)
            info = read_run_json(folder)
            if info is not None:
                info.update(status="failed", error=f"{type(error).__name__}: {error}", traceback=TRACEBACK)
                write_run_json(folder, info)
    except OSError:
        where = None
    if where is None:
        prefix = name.replace(" ", "-") + "-"
        with tempfile.NamedTemporaryFile("w", prefix=prefix, suffix=".txt", delete=False) as handle:
            handle.write(text)
            where = Path(handle.name)
    said = " ".join(str(error).split()) or "no message"
    print(f"{name}: internal error {progress.phase} ({type(error).__name__}: {said}); this is a bug in "
          f"fastnum: please report it with the traceback in {where}", file=sys.stderr)


COMMANDS = ("train", "compile")
"""The subcommands: what an error line names (``fastnum train: error: ...``)."""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    name = f"fastnum {argv[0]}" if argv and argv[0] in COMMANDS else "fastnum"
    progress = _Progress()
    previous = {signum: signal.getsignal(signum) for signum in EXIT_CODES}
    for signum in EXIT_CODES:
        if signum != signal.SIGINT:
            signal.signal(signum, _abort)
    try:
        try:
            args = build_parser().parse_args(argv)
            if args.command == "compile":
                progress.phase = "while compiling the kernels"
                progress.saved = "every kernel compiled so far is in numba's cache"
                return compile_command(args)
            return train_command(args, ["fastnum", *argv], progress)
        except UserError as error:
            print(f"{name}: error: {error}", file=sys.stderr)
            raise SystemExit(USER_ERROR_EXIT) from None
        except MemoryError as error:
            print(f"{name}: error: not enough memory {progress.phase} ({error or 'MemoryError'}): use fewer "
                  "hidden units or a smaller --batch-size", file=sys.stderr)
            raise SystemExit(USER_ERROR_EXIT) from None
        except (KeyboardInterrupt, Aborted) as error:
            signum = error.signum if isinstance(error, Aborted) else signal.SIGINT
            print(f"{name}: interrupted {progress.phase}; {progress.saved}", file=sys.stderr)
            return EXIT_CODES[signum]
        except Exception as error:  # a bug: one line, the traceback in a file
            _report_bug(error, progress, name)
            return BUG_EXIT
    finally:
        if progress.compiling is not None:
            progress.compiling.cancel()
        if progress.folder is not None:
            progress.folder.release()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def console_main():
    """Entry point of the ``fastnum`` console script."""
    sys.exit(main())
