"""``fastnum train``: the book's chapter-4 training run from the command line.

    fastnum train                      # 16 epochs, numerical gradient, as the book
    fastnum train --gradient backprop  # the same batches with backprop
    fastnum train --resume runs/2026-11-28_0512   # continue an interrupted run

The command checks every option before any work, loads and identifies the
data, builds the network exactly as the book's ``train_neuralnet.py`` after
``np.random.seed(seed)``, compiles the kernels (saying so), and runs
``fastnum.train.fit`` with checkpoints by evaluation and by time. SIGINT
(Ctrl-C) and SIGTERM end the current step, save and exit 130 / 143.
"""

import argparse
import json
import math
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from .architectures import CONVNET, NETWORK_CHOICES, TWO_LAYER, spec_from_options
from .datasets import DATASETS, DISPLAY_NAMES, N_CLASSES
from .mnist import DATA_DIR_ENV

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
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _float_option(text, accept, requirement):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and accept(value)):
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
    return value


def _positive_float(text):
    return _float_option(text, lambda v: v > 0, "a positive finite number")


def _non_negative_float(text):
    return _float_option(text, lambda v: v >= 0, "a finite number >= 0")


def _dropout_ratio(text):
    return _float_option(text, lambda v: 0 <= v < 1, "at least 0 and below 1 (the fraction dropped)")


def _weight_init(text):
    if text.lower() in ("relu", "he", "sigmoid", "xavier"):
        return text.lower()
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected relu, he, sigmoid, xavier or a standard deviation, "
                                         f"got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"a standard deviation must be a positive finite number, got {text}")
    return value


def _readable_dir(text):
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text} is not readable")
    return path


def build_parser():
    from .train import GRADIENTS

    parser = argparse.ArgumentParser(prog="fastnum",
                                     description="fastnum: the book's numerical-gradient training, fast.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train",
        help="run the book's chapter-4 training (train_neuralnet.py)",
        description="Train the book's TwoLayerNet on MNIST with mini-batch SGD. Defaults are the book's: "
        "hidden 50, batch 100, learning rate 0.1, 16 epochs (9,600 steps), numerical gradient.",
    )
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive_int, help="epochs to train (default 16)")
    length.add_argument("--iters", type=_positive_int, help="steps to train, instead of --epochs")
    train.add_argument("--batch-size", type=_positive_int, help="mini-batch size (default 100)")
    train.add_argument("--lr", type=_positive_float, help="learning rate (default 0.1)")
    train.add_argument("--hidden", type=_positive_int, nargs="+", metavar="N",
                       help="hidden units (default 50; 100 for the convnet); several sizes (--hidden 100 100) "
                       "train the book's MultiLayerNet")
    train.add_argument("--gradient", choices=tuple(GRADIENTS),
                       help="numerical (exact, incremental; default), numerical-full (the book's way; two-layer "
                       "net only), backprop")
    train.add_argument("--activation", choices=("sigmoid", "relu"),
                       help="hidden activation (default: sigmoid for the two-layer net, relu for the multi-layer "
                       "nets, as the book)")
    train.add_argument("--network", choices=tuple(NETWORK_CHOICES),
                       help="two-layer (chapter 4's TwoLayerNet), multi-layer (MultiLayerNetExtend) or convnet "
                       "(chapter 7's SimpleConvNet: conv 30 5x5, pool, --hidden units); default: two-layer, or "
                       "multi-layer when the options ask for it")
    train.add_argument("--weight-init", type=_weight_init, metavar="INIT",
                       help="multi-layer nets' initial weights: relu/he, sigmoid/xavier, or a standard deviation "
                       "(default relu); makes the network a MultiLayerNetExtend")
    train.add_argument("--weight-decay", type=_non_negative_float, metavar="LAMBDA",
                       help="weight decay: 0.5 LAMBDA sum(W**2) joins the loss (MultiLayerNetExtend)")
    train.add_argument("--batchnorm", action="store_true", default=None,
                       help="batch normalisation after every hidden affine layer (MultiLayerNetExtend)")
    train.add_argument("--dropout", type=_dropout_ratio, metavar="RATIO",
                       help="dropout after every hidden activation, dropping RATIO (MultiLayerNetExtend)")
    train.add_argument("--eval-every", type=_positive_int, metavar="N",
                       help="evaluate train/test accuracy every N steps (default: once per epoch, as the book)")
    train.add_argument("--seed", type=int,
                       help="np.random.seed before the network is built: the book's initial weights and "
                       "batches for that seed (default 0)")
    train.add_argument("--threads", type=_positive_int, help="numba threads (default: all cores)")
    train.add_argument("--data-dir", type=_readable_dir,
                       help=f"folder with the IDX files (else ${DATA_DIR_ENV}, else the cache)")
    train.add_argument("--dataset", choices=tuple(DATASETS), help="mnist (default) or fashion-mnist")
    train.add_argument("--no-verify-data", action="store_true",
                       help="accept data files that match no published copy (your own data); files identified "
                       "as another data set are refused either way")
    train.add_argument("--out", type=Path, help="output folder, new or empty (default: a new one under runs/)")
    train.add_argument("--resume", type=_readable_dir, metavar="DIR",
                       help="continue the run whose checkpoint is in DIR")
    train.add_argument("--checkpoint-every", type=_positive_float, metavar="SECONDS",
                       help="also checkpoint when this long has passed since the last one "
                       f"(default {CHECKPOINT_EVERY_S:g})")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (one line per evaluation only)")
    parser.train_parser = train
    return parser


def _versions():
    import numba

    from . import __version__

    return {"fastnum": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "numba_threads": numba.get_num_threads(), "processor": _cpu_model()}


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# -- what happens on Ctrl-C and SIGTERM ------------------------------------------------


class Aborted(Exception):
    """A signal asked to stop at a point where no step can be finished first."""

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


@dataclass
class _Progress:
    """Where the command stands, for the one line printed when it is aborted."""

    phase: str = "before training started"
    saved: str = "nothing was written"


# -- the steps of the command ----------------------------------------------------------------


@dataclass
class _Plan:
    config: dict
    out: Path
    checkpoint: object = None
    previous_info: dict = field(default_factory=dict)


def _check_out_folder(out, fail):
    """A new or empty folder that can be created: checked before any work."""
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file, not a folder")
    if out.is_dir():
        held = sorted(p.name for p in out.iterdir())
        if held:
            shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
            hint = f"--resume {out} to continue that run, or " if "checkpoint.npz" in held else ""
            fail(f"--out {out} is not empty (it holds {shown}); use {hint}a new or empty folder")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        fail(f"--out {out} cannot be created: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        fail(f"--out {out} cannot be created: {ancestor} is not writable")


def _new_run_folder():
    base = Path("runs") / datetime.now().strftime("%Y-%m-%d_%H%M%S")
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def _plan(args, fail):
    """The configuration and folder of the run, from the options or the checkpoint."""
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
                fail("--network convnet is the book's SimpleConvNet: one --hidden size and none of "
                     "--activation, --weight-init, --weight-decay, --batchnorm, --dropout")
        spec = _spec(config)
        config["activation"] = spec["activation"]
        if config["gradient"] == "numerical-full" and spec["network"] != TWO_LAYER:
            fail("--gradient numerical-full exists for the two-layer net only (one --hidden size and none of "
                 "--weight-init, --weight-decay, --batchnorm, --dropout, --network); use --gradient numerical")
        out = Path(args.out) if args.out is not None else _new_run_folder()
        _check_out_folder(out, fail)
        return _Plan(config, out)

    from .runs import RunFileError, load_checkpoint, read_run_json

    try:
        checkpoint = load_checkpoint(args.resume)
    except (FileNotFoundError, RunFileError) as error:
        fail(f"--resume {args.resume}: {error}")
    config = checkpoint.config
    if not isinstance(config.get("hidden"), list):  # checkpoints written before --hidden took several sizes
        config["hidden"] = [config["hidden"]]
    given = {k: getattr(args, k) for k in RESUMABLE_KEYS if getattr(args, k, None) is not None}
    changed = any(config.get(k) != v for k, v in given.items())
    other_out = args.out is not None and Path(args.out) != Path(args.resume)
    if changed or args.epochs is not None or args.iters is not None or other_out:
        fail("--resume continues a run with its own settings; only --threads, --data-dir, --no-verify-data, "
             f"--checkpoint-every and --no-progress may be given with it (the run's settings: {json.dumps(config)})")
    return _Plan(config, Path(args.resume), checkpoint, read_run_json(args.resume) or {})


def _set_threads(threads, fail):
    if threads is None:
        return
    import numba

    if threads > numba.config.NUMBA_NUM_THREADS:
        fail(f"--threads {threads}: this machine allows at most {numba.config.NUMBA_NUM_THREADS}")
    numba.set_num_threads(threads)


def _load_data(args, config, fail, write):
    from .mnist import read_dataset

    data_dir = args.data_dir if args.data_dir is not None else config.get("data_dir")
    try:
        data = read_dataset(data_dir, config["dataset"], progress=not args.no_progress,
                            verify=config.get("verify_data", True) and not args.no_verify_data, hints=CLI_HINTS)
    except (FileNotFoundError, ValueError) as error:
        fail(f"cannot load {DISPLAY_NAMES[config['dataset']]}: {error}")
    folders = [str(Path(f).resolve()) for f in data.folders]
    note = "" if data.verified else " (unverified: --no-verify-data)"
    write(f"{DISPLAY_NAMES[config['dataset']]} from {', '.join(folders)}{note}")
    return data, {"dataset": config["dataset"], "folders": folders, "verified": data.verified}


def _spec(config):
    """The network the run's settings describe (``fastnum.architectures``)."""
    return spec_from_options(config["hidden"], config.get("activation"), config.get("weight_init"),
                             config.get("weight_decay"), config.get("batchnorm"), config.get("dropout"),
                             config.get("network"))


def _network(config, checkpoint, n_in):
    """The book's network after ``np.random.seed(seed)``, or the checkpoint's."""
    from .architectures import build, with_params

    if checkpoint is None:
        np.random.seed(config["seed"])  # as the book's script: seed, build the network, draw batches
        return build(_spec(config), n_in, N_CLASSES)
    np.random.set_state(checkpoint.rng_state)  # the resumed run draws its batches on from here
    return with_params(_spec(config), checkpoint.params, checkpoint.state)


def _session(command, start_step):
    return {"command": command, "started": datetime.now().isoformat(timespec="seconds"),
            "from_step": start_step, "versions": _versions()}


def _summary(history, done, iters):
    steps = np.array(history.step_times)
    return {
        "status": "finished" if done == iters else "interrupted",
        "steps_done": done,
        "median_step_seconds": float(np.median(steps)) if steps.size else None,
        "total_step_seconds": float(steps.sum()),
        "total_eval_seconds": float(np.sum(history.eval_times)),
        "final_train_acc": history.train_acc_list[-1] if history.train_acc_list else None,
        "final_test_acc": history.test_acc_list[-1] if history.test_acc_list else None,
    }


def _hidden_text(config):
    hidden = config["hidden"]
    return "-".join(str(h) for h in hidden) if isinstance(hidden, list) else str(hidden)


def _title(config, done, iters):
    title = (f"{DISPLAY_NAMES[config['dataset']]}, {config['gradient']} gradient, hidden {_hidden_text(config)}, "
             f"batch {config['batch_size']}, lr {config['lr']}, seed {config['seed']}")
    return title + (f"\nINTERRUPTED after {done} of {iters} steps" if done < iters else f", {done} steps")


def _network_text(network):
    """The network in a few words: ``TwoLayerNet 784-50-10 sigmoid`` or with the multi-layer options."""
    from .architectures import describe

    spec = describe(network)
    if spec["network"] == CONVNET:
        conv = spec["conv_param"]
        return (f"SimpleConvNet (conv {conv['filter_num']} {conv['filter_size']}x{conv['filter_size']}, pool 2x2, "
                f"hidden {spec['hidden'][0]})")
    sizes = "-".join(str(n) for n in [network.params["W1"].shape[0], *spec["hidden"], N_CLASSES])
    text = f"{spec['network']} {sizes} {spec['activation']}"
    if spec["network"] != TWO_LAYER:
        extras = [f"init {spec['weight_init_std']}"]
        if spec["weight_decay_lambda"]:
            extras.append(f"weight decay {spec['weight_decay_lambda']:g}")
        if spec["use_batchnorm"]:
            extras.append("batch norm")
        if spec["use_dropout"]:
            extras.append(f"dropout {spec['dropout_ration']:g}")
        text += " (" + ", ".join(extras) + ")"
    return text


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
        from .architectures import state_arrays
        from .runs import save_checkpoint

        self.log.append_until(next_step)
        save_checkpoint(self.out, self.network.params, next_step, np.random.get_state(), self.config,
                        self.log.position, state_arrays(self.network))
        self.last_checkpoint = time.perf_counter()
        progress.saved = (f"the checkpoint after step {next_step - 1} in {self.out} is intact: "
                          f"fastnum train --resume {self.out}")


def _prepare(args, fail, command, progress):
    """Options, data, network and compiled kernels; then the run folder and its first records."""
    plan = _plan(args, fail)
    _set_threads(args.threads, fail)
    compiling = _start_compiling(plan.config)
    try:
        run, data = _prepare_with(args, fail, command, progress, plan, compiling)
    except BaseException:
        if compiling is not None:
            compiling.cancel()
        raise
    return run, data


def _start_compiling(config):
    """A two-layer run's kernels start compiling in a second process now (when numba's cache lacks
    them), so that its start and its share overlap the data's loading; None otherwise."""
    from ._compile import start_compiling
    from .mnist import IMAGE_SIDE

    spec = _spec(config)
    if spec["network"] != TWO_LAYER:
        return None
    # every data set fastnum loads has 28x28 images, as float32 after normalising; the kernels
    # compile by types, so a different size would still use them (a different type compiles later)
    sizes = (IMAGE_SIDE * IMAGE_SIDE, spec["hidden"][0], N_CLASSES)
    return start_compiling(config["gradient"], sizes, spec["activation"], np.float32)


def _prepare_with(args, fail, command, progress, plan, compiling):
    from .mnist import format_split
    from .runs import HistoryLog, RunFileError, write_run_json
    from .train import History, iterations_per_epoch, warm_up

    config, out = plan.config, plan.out
    progress.phase = "while loading the data"
    data, data_info = _load_data(args, config, fail, print)
    x_train, t_train = format_split(data.arrays["train_img"], data.arrays["train_label"])
    x_test, t_test = format_split(data.arrays["test_img"], data.arrays["test_label"])
    if config["batch_size"] > x_train.shape[0]:
        fail(f"--batch-size {config['batch_size']} is larger than the {x_train.shape[0]} training images")
    config["iter_per_epoch"] = iterations_per_epoch(x_train.shape[0], config["batch_size"])
    if config.get("iters") is None:
        config["iters"] = int(round(config.pop("epochs") * config["iter_per_epoch"]))
    config.pop("epochs", None)
    if args.data_dir is not None:
        config["data_dir"] = str(Path(args.data_dir).resolve())

    network = _network(config, plan.checkpoint, x_train.shape[1])
    if config.get("network") == "convnet":  # images as (N, 1, 28, 28): views, no copy
        side = int(round(np.sqrt(x_train.shape[1])))
        x_train, x_test = (x.reshape(-1, 1, side, side) for x in (x_train, x_test))
    progress.phase = "while compiling the kernels"
    compile_seconds = warm_up(network, config["gradient"], x_train, t_train, print, compiling)

    start_step = 0 if plan.checkpoint is None else plan.checkpoint.next_step
    session = dict(_session(command, start_step), compile_seconds=compile_seconds)
    info = plan.previous_info or {"command": command, "cwd": os.getcwd(), "config": config, "data": data_info,
                                  "started": session["started"], "sessions": []}
    info.setdefault("sessions", []).append(session)
    info["status"] = "running"
    out.mkdir(parents=True, exist_ok=True)
    if plan.checkpoint is None:
        history = History(iter_per_epoch=config["iter_per_epoch"])
        log = HistoryLog(out, history)
    else:
        try:
            history = plan.checkpoint.history(out)
        except RunFileError as error:
            fail(f"--resume {out}: {error}")
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
                 f"{config['batch_size']}, lr {config['lr']}, {_network_text(run.network)}, seed {config['seed']} "
                 f"-> {run.out}")
    progress.phase = "during training"
    try:
        with _StopAfterStep(report.write) as stop:
            _, done = fit(
                run.network, *data, iters=config["iters"], batch_size=config["batch_size"],
                learning_rate=config["lr"], gradient=config["gradient"], eval_every=config["eval_every"],
                history=run.history, start_step=run.start_step, progress=report, warm=False, on_step=on_step,
                on_eval=lambda state: run.save_checkpoint(state.step + 1, progress),
                should_stop=lambda: stop.signum is not None,
            )
    finally:
        report.close()
    return done, stop.signum


def _finish(run, done, signum, wall_start, progress):
    """Checkpoint, history, plots, params (when finished) and run.json; the exit status."""
    from .runs import save_history_json, save_params, save_plots, write_run_json

    progress.phase = "while writing the run's files"
    signal.signal(signal.SIGINT, _abort)  # Ctrl-C now: stop writing, one line, the checkpoint stays
    iters = run.config["iters"]
    run.save_checkpoint(done, progress)
    save_history_json(run.out, run.history)
    save_plots(run.out, run.history, _title(run.config, done, iters))
    run.session.update(wall_seconds=time.perf_counter() - wall_start, to_step=done,
                       signal=None if signum is None else signal.Signals(signum).name)
    run.info.update(_summary(run.history, done, iters))
    if done == iters:
        save_params(run.out / "params.npz", run.network)
    write_run_json(run.out, run.info)
    if done < iters:
        print(f"stopped after step {done - 1}; checkpoint saved. Continue with: fastnum train --resume {run.out}")
        return EXIT_CODES.get(signum, 130)
    info = run.info
    print(f"done in {run.session['wall_seconds']:.1f} s (compile {run.session['compile_seconds']:.1f} s, median "
          f"step {info['median_step_seconds'] * 1e3:.2f} ms): train acc {info['final_train_acc']:.4f}, "
          f"test acc {info['final_test_acc']:.4f}. Results in {run.out}")
    return 0


def train_command(args, parser, command, progress):
    """``fastnum train``: prepare, train, write; returns the exit status."""
    wall_start = time.perf_counter()
    run, data = _prepare(args, parser.train_parser.error, command, progress)
    done, signum = _train(run, data, not args.no_progress, progress)
    return _finish(run, done, signum, wall_start, progress)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    progress = _Progress()
    previous = {signum: signal.getsignal(signum) for signum in EXIT_CODES}
    signal.signal(signal.SIGTERM, _abort)
    try:
        return train_command(args, parser, ["fastnum", *argv], progress)
    except (KeyboardInterrupt, Aborted) as error:
        signum = error.signum if isinstance(error, Aborted) else signal.SIGINT
        print(f"fastnum train: interrupted {progress.phase}; {progress.saved}", file=sys.stderr)
        return EXIT_CODES[signum]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def console_main():
    """Entry point of the ``fastnum`` console script."""
    sys.exit(main())
