"""``fastnum train``: the book's chapter-4 training run from the command line.

    fastnum train                      # 16 epochs, numerical gradient, as the book
    fastnum train --gradient backprop  # the same batches with backprop
    fastnum train --resume runs/2026-11-28_0512   # continue an interrupted run
"""

import argparse
import json
import math
import os
import platform
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from .mnist import DATA_DIR_ENV, DATASETS

DEFAULTS = dict(epochs=16, batch_size=100, lr=0.1, hidden=50, gradient="numerical",
                activation="sigmoid", seed=0, dataset="mnist", eval_every=None)
RESUMABLE_KEYS = ("iters", "batch_size", "lr", "hidden", "gradient", "activation", "seed",
                  "dataset", "eval_every")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
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

    parser = argparse.ArgumentParser(prog="fastnum", description="fastnum: the book's numerical-gradient training, fast.")
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
    train.add_argument("--hidden", type=_positive_int, help="hidden units (default 50)")
    train.add_argument("--gradient", choices=tuple(GRADIENTS),
                       help="numerical (exact, incremental; default), numerical-full (the book's way), backprop")
    train.add_argument("--activation", choices=("sigmoid", "relu"), help="hidden activation (default sigmoid)")
    train.add_argument("--eval-every", type=_positive_int, metavar="N",
                       help="evaluate train/test accuracy every N steps (default: once per epoch, as the book)")
    train.add_argument("--seed", type=int, help="seed of numpy's RNG: initial weights and batches (default 0)")
    train.add_argument("--threads", type=_positive_int, help="numba threads (default: all cores)")
    train.add_argument("--data-dir", type=_readable_dir, help=f"folder with the IDX files (else ${DATA_DIR_ENV}, else the cache)")
    train.add_argument("--dataset", choices=tuple(DATASETS), help="mnist (default) or fashion-mnist")
    train.add_argument("--out", type=Path, help="output folder (default: a new one under runs/)")
    train.add_argument("--resume", type=_readable_dir, metavar="DIR", help="continue the run whose checkpoint is in DIR")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (one line per evaluation only)")
    return parser


def _versions():
    import numba

    from . import __version__

    info = {"fastnum": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "numba_threads": numba.get_num_threads(), "processor": _cpu_model()}
    return info


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class _Interrupts:
    """First Ctrl-C: finish the current step, save a checkpoint, stop. Second: abort."""

    def __init__(self, write):
        self.requested = False
        self._write = write
        self._previous = None

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True
        self._write("Ctrl-C: finishing this step and saving a checkpoint (press again to abort without saving)")

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)
        return False


def _new_run_folder():
    base = Path("runs") / datetime.now().strftime("%Y-%m-%d_%H%M%S")
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def _config_from(args, parser):
    if args.resume is not None:
        from .runs import load_checkpoint

        try:
            params, next_step, rng, history, config = load_checkpoint(args.resume)
        except (FileNotFoundError, ValueError) as error:
            parser.error(str(error))
        given = {k: getattr(args, k) for k in RESUMABLE_KEYS if getattr(args, k, None) is not None}
        changed = any(config.get(k) != v for k, v in given.items())
        other_out = args.out is not None and Path(args.out) != Path(args.resume)
        if changed or args.epochs is not None or args.iters is not None or other_out:
            parser.error(
                "--resume continues a run with its own settings; only --threads, --data-dir and "
                f"--no-progress may be given with it (the run's settings: {json.dumps(config)})"
            )
        return config, (params, next_step, rng, history), Path(args.resume)
    config = {k: DEFAULTS.get(k) if getattr(args, k) is None else getattr(args, k) for k in ("epochs", *RESUMABLE_KEYS)}
    out = args.out if args.out is not None else _new_run_folder()
    if (Path(out) / "checkpoint.npz").exists():
        parser.error(f"{out} already holds a run; use --resume {out} to continue it, or another --out")
    return config, None, Path(out)


def train_command(args, parser, command):
    from tqdm import tqdm

    config, resumed, out = _config_from(args, parser)
    data_dir = args.data_dir if args.data_dir is not None else config.get("data_dir")
    if data_dir is not None:
        config["data_dir"] = str(Path(data_dir).resolve())
    if args.threads is not None:
        import numba

        if args.threads > numba.config.NUMBA_NUM_THREADS:
            parser.error(f"--threads {args.threads}: this machine allows at most {numba.config.NUMBA_NUM_THREADS}")
        numba.set_num_threads(args.threads)

    from . import load_mnist
    from ._atomic import atomic_write
    from .runs import plot_history, save_checkpoint, save_history, save_params
    from .train import fit, iterations_per_epoch
    from .two_layer_net import TwoLayerNet

    wall_start = time.perf_counter()
    try:
        (x_train, t_train), (x_test, t_test) = load_mnist(
            normalize=True, one_hot_label=False, data_dir=data_dir, dataset=config["dataset"],
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError) as error:
        parser.error(f"cannot load {config['dataset']}: {error}")
    train_size = x_train.shape[0]
    if config["batch_size"] > train_size:
        parser.error(f"--batch-size {config['batch_size']} is larger than the {train_size} training images")
    iter_per_epoch = iterations_per_epoch(train_size, config["batch_size"])
    if config["iters"] is None:
        config["iters"] = int(round(config["epochs"] * iter_per_epoch))
    config.pop("epochs", None)
    iters = config["iters"]

    if resumed is None:
        np.random.seed(config["seed"])
        network = TwoLayerNet(x_train.shape[1], config["hidden"], 10, activation=config["activation"])
        rng, history, start_step = np.random.mtrand._rand, None, 0
    else:
        params, start_step, rng, history = resumed
        network = TwoLayerNet(x_train.shape[1], config["hidden"], 10, activation=config["activation"])
        network.params = params
    out.mkdir(parents=True, exist_ok=True)

    # compile (or load the cached machine code) before the clock of the first step starts
    compile_start = time.perf_counter()
    from .train import GRADIENTS

    probe = TwoLayerNet(x_train.shape[1], config["hidden"], 10, activation=config["activation"])
    probe.params = {k: v.copy() for k, v in network.params.items()}
    GRADIENTS[config["gradient"]](probe, x_train[:2], t_train[:2])
    probe.loss(x_train[:2], t_train[:2])
    probe.accuracy(x_train[:2], t_train[:2])
    compile_seconds = time.perf_counter() - compile_start

    info = {"command": command, "cwd": os.getcwd(), "config": config,
            "versions": _versions(), "started": datetime.now().isoformat(timespec="seconds"),
            "resumed_from_step": start_step or None, "compile_seconds": compile_seconds}
    run_json = out / "run.json"
    if resumed is not None and run_json.exists():
        info = {**json.loads(run_json.read_text()), "resumed": info}

    bar = tqdm(total=iters, initial=start_step, unit="step", disable=args.no_progress, dynamic_ncols=True,
               desc=f"{config['gradient']} {config['dataset']}")
    write = bar.write if not args.no_progress else print

    def on_step(state):
        bar.update(1)
        if state.step % 50 == 0:
            bar.set_postfix(loss=f"{state.history.train_loss_list[-1]:.4f}", refresh=False)

    def on_eval(state):
        h = state.history
        write(f"step {state.step:6d}  epoch {state.epoch:6.2f}  loss {h.train_loss_list[-1]:.4f}  "
              f"train acc {h.train_acc_list[-1]:.4f}  test acc {h.test_acc_list[-1]:.4f}")
        save_checkpoint(out, network, state.step + 1, state.rng, h, config)
        save_history(out, h, iter_per_epoch)

    write(f"fastnum train: {config['gradient']} gradient, {iters} steps of batch {config['batch_size']}, "
          f"lr {config['lr']}, hidden {config['hidden']}, seed {config['seed']} -> {out}")
    with _Interrupts(write) as interrupts:
        history, done = fit(
            network, x_train, t_train, x_test, t_test, iters=iters, batch_size=config["batch_size"],
            learning_rate=config["lr"], gradient=config["gradient"], eval_every=config["eval_every"], rng=rng,
            history=history, start_step=start_step, on_step=on_step, on_eval=on_eval,
            should_stop=lambda: interrupts.requested,
        )
    bar.close()
    save_checkpoint(out, network, done, rng, history, config)
    save_history(out, history, iter_per_epoch)
    title = f"{config['dataset']}, {config['gradient']} gradient, {done} steps"
    plot_history(out, history, iter_per_epoch, title=title)
    wall = time.perf_counter() - wall_start
    steps = np.array(history.step_times)
    info.update({
        "status": "finished" if done == iters else "interrupted",
        "steps_done": done,
        "wall_seconds_this_session": wall,
        "median_step_seconds": float(np.median(steps)) if steps.size else None,
        "total_step_seconds": float(steps.sum()),
        "total_eval_seconds": float(np.sum(history.eval_times)),
        "final_train_acc": history.train_acc_list[-1] if history.train_acc_list else None,
        "final_test_acc": history.test_acc_list[-1] if history.test_acc_list else None,
    })
    atomic_write(run_json, lambda handle: handle.write(json.dumps(info, indent=1).encode()))
    if done < iters:
        print(f"stopped after step {done - 1}; checkpoint saved. Continue with: fastnum train --resume {out}")
        return 130
    save_params(out / "params.npz", network)
    print(f"done in {wall:.1f} s (compile {compile_seconds:.1f} s, median step {info['median_step_seconds'] * 1e3:.2f} ms): "
          f"train acc {info['final_train_acc']:.4f}, test acc {info['final_test_acc']:.4f}. Results in {out}")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        return train_command(args, parser, ["fastnum", *argv])
    return 2  # pragma: no cover - argparse requires a command


def console_main():
    """Entry point of the ``fastnum`` console script."""
    sys.exit(main())
