"""A training run's settings, checked by one table: ``fastnum train``'s options as they are parsed,
and a checkpoint's ``config`` when it is loaded.

Each setting has a parser (the option's text to a value) and a check (what
values a run can use, in words for the message). The CLI's option types are
made from it, and ``check_config`` holds a stored configuration to the same
rules, so an edited checkpoint (``batch_size`` 0, a NaN learning rate) is
refused at load time with the key named, not a step later with a traceback.
"""

import math
from dataclasses import dataclass
from typing import Callable

SEED_RANGE = (0, 2**32 - 1)
"""What ``np.random.seed`` takes."""

WEIGHT_INIT_NAMES = ("relu", "he", "sigmoid", "xavier")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_int(text):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None


def _parse_float(text):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


def _parse_weight_init(text):
    if text.lower() in WEIGHT_INIT_NAMES:
        return text.lower()
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected relu, he, sigmoid, xavier or a standard deviation, got {text!r}") from None


def _weight_init_ok(value):
    return value in WEIGHT_INIT_NAMES or (_is_number(value) and value > 0)


@dataclass(frozen=True)
class Setting:
    """One setting: how its option's text is read, and which values a run accepts."""

    parse: Callable[[str], object]
    accepts: Callable[[object], bool]
    requirement: str
    """What ``accepts`` asks, in words ("a whole number >= 1")."""
    optional: bool = False
    """None is a value (the default chosen later)."""


def _choices(*names):
    return Setting(str, lambda v: v in names, "one of " + ", ".join(names))


def _settings():
    from .datasets import DATASETS
    from .registry import CLI_NAMES
    from .train import GRADIENTS

    positive_int = Setting(_parse_int, lambda v: _is_int(v) and v >= 1, "at least 1 (a whole number)")
    return {
        "epochs": positive_int,
        "iters": positive_int,
        "batch_size": positive_int,
        "lr": Setting(_parse_float, lambda v: _is_number(v) and v > 0, "a positive finite number"),
        "hidden": Setting(_parse_int, lambda v: isinstance(v, list) and len(v) > 0
                          and all(_is_int(n) and n >= 1 for n in v), "at least 1 (whole numbers)"),
        "gradient": _choices(*GRADIENTS),
        "activation": Setting(str, lambda v: v in ("sigmoid", "relu"), "sigmoid or relu", optional=True),
        "seed": Setting(_parse_int, lambda v: _is_int(v) and SEED_RANGE[0] <= v <= SEED_RANGE[1],
                        f"a whole number from {SEED_RANGE[0]} to {SEED_RANGE[1]} (what np.random.seed takes)"),
        "dataset": _choices(*DATASETS),
        "eval_every": Setting(_parse_int, positive_int.accepts, positive_int.requirement, optional=True),
        "weight_init": Setting(_parse_weight_init, _weight_init_ok,
                               "relu, he, sigmoid, xavier or a positive finite standard deviation", optional=True),
        "weight_decay": Setting(_parse_float, lambda v: _is_number(v) and v >= 0, "a finite number >= 0",
                                optional=True),
        "batchnorm": Setting(bool, lambda v: isinstance(v, bool), "true or false", optional=True),
        "dropout": Setting(_parse_float, lambda v: _is_number(v) and 0 <= v < 1,
                           "at least 0 and below 1 (the fraction dropped)", optional=True),
        "network": Setting(str, lambda v: v in CLI_NAMES, "one of " + ", ".join(CLI_NAMES), optional=True),
        "verify_data": Setting(bool, lambda v: isinstance(v, bool), "true or false"),
        "iter_per_epoch": Setting(_parse_float, lambda v: _is_number(v) and v >= 1, "a finite number >= 1"),
        "data_dir": Setting(str, lambda v: isinstance(v, str), "a folder's path", optional=True),
        "checkpoint_every": Setting(_parse_float, lambda v: _is_number(v) and v > 0, "a positive finite number"),
        "threads": positive_int,
    }


_SETTINGS = []


def settings():
    """name -> ``Setting`` (built on first use: it reads the gradient kinds, data sets and networks)."""
    if not _SETTINGS:
        _SETTINGS.append(_settings())
    return _SETTINGS[0]


STORED_KEYS = ("iters", "batch_size", "lr", "hidden", "gradient", "activation", "seed", "dataset", "eval_every",
               "weight_init", "weight_decay", "batchnorm", "dropout", "network", "verify_data", "iter_per_epoch")
"""What a checkpoint's ``config`` holds (``data_dir`` too when the run was given one)."""


def check_value(name, value):
    """The reason ``value`` is not a usable ``name``, or None when it is."""
    setting = settings()[name]
    if value is None and setting.optional:
        return None
    if setting.accepts(value):
        return None
    return f"must be {setting.requirement}, got {value!r}"


def option_type(name):
    """An argparse ``type`` for option ``name``: parsed and checked by the table."""
    import argparse

    setting = settings()[name]

    def parse(text):
        try:
            value = setting.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        reason = check_value(name, [value] if name == "hidden" else value)
        if reason is not None:
            raise argparse.ArgumentTypeError(reason.replace("[", "").replace("]", "") if name == "hidden"
                                             else reason)
        return value

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def check_config(config, source):
    """A stored run configuration, every key checked; ``ValueError`` naming ``source`` and the key."""
    if not isinstance(config, dict):
        raise ValueError(f"{source}: its config is a {type(config).__name__}, not a dict of settings")
    missing = [key for key in STORED_KEYS if key not in config and not settings()[key].optional]
    if missing:
        raise ValueError(f"{source}: its config lacks {', '.join(missing)}")
    for key, value in config.items():
        if key not in settings():
            raise ValueError(f"{source}: its config has {key!r}, which is no setting of a fastnum run")
        reason = check_value(key, value)
        if reason is not None:
            raise ValueError(f"{source}: config {key} {reason}")
    return config

