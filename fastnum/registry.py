"""The network kinds fastnum knows, one entry each: read by the CLI, ``fit``, the run files, the
benchmark and the tests, instead of asking each network what it is.

A run describes its network by a small JSON-able dict, its *spec*:
``{"network": "TwoLayerNet", "hidden": [50], "activation": "sigmoid"}``, or
``{"network": "MultiLayerNetExtend", "hidden": [100, 100], ...}`` with the
book's constructor arguments. ``spec["network"]`` names an entry of
``KINDS``; the entry knows the class, and every class follows one protocol:

* ``network.spec()``: its spec; ``cls.from_spec(spec, n_in, n_out)``: a new
  network for a spec, drawing its initial weights from ``np.random`` as the
  book (a bad value raises ``ValueError`` naming the key);
* ``network.param_shapes()``: the shape of every parameter, in the book's
  order; ``network.state_arrays()`` / ``set_state_arrays(arrays)``: arrays
  besides ``params`` that a run must keep (batch norm's running statistics);
* ``cls.GRADIENTS``: the gradient kinds it has; ``cls.READS_FLOAT32``: whether
  it takes float32 images as they are (else ``fit`` converts each batch once);
  ``network.sample_shape``: one image's shape as it takes it;
* ``cls.memory_bytes(spec, n_in, n_out, batch_size)``: about what training it
  needs (parameters, gradients, buffers), checked before anything is allocated;
* ``network.summary()``: the network in a few words;
* ``cls.COMPILE_SECONDS``: the methods with compiled kernels and about what
  compiling them costs; ``cls.COMPILE_SPECS``: specs whose kernels are all of
  the class's kernels (``fastnum compile`` compiles them);
  ``network.kernel_calls(method, x, labels)``: the kernels a call runs.

Adding a network is one class following the protocol and one entry here.
"""

import importlib
import json
import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NetworkKind:
    """One kind of network: its names and where its class lives (imported on first use)."""

    name: str
    """What specs, checkpoints and ``params.npz`` call it."""
    cli_name: str
    """``fastnum train --network`` NAME."""
    import_path: str
    """``module:Class``."""

    @property
    def cls(self):
        module, name = self.import_path.split(":")
        return getattr(importlib.import_module(module), name)


KINDS = {kind.name: kind for kind in (
    NetworkKind("TwoLayerNet", "two-layer", "fastnum.two_layer:TwoLayerNet"),
    NetworkKind("MultiLayerNetExtend", "multi-layer", "fastnum.multi_layer:MultiLayerNetExtend"),
    NetworkKind("SimpleConvNet", "convnet", "fastnum.conv:SimpleConvNet"),
    NetworkKind("DeepConvNet", "deep-convnet", "fastnum.conv:DeepConvNet"),
)}
"""Every network kind, by ``spec["network"]``."""

CLI_NAMES = {kind.cli_name: kind.name for kind in KINDS.values()}
"""``--network`` choices -> kind names."""


def kind_of(network):
    """The entry of ``network``'s class (or of the registered class it derives from)."""
    for cls in type(network).__mro__:
        for kind in KINDS.values():
            if kind.cls is cls:
                return kind
    raise TypeError(f"{type(network).__name__} is not one of fastnum's networks ({', '.join(KINDS)})")


def kind_named(name):
    """The entry called ``name``; ``ValueError`` naming the known ones otherwise."""
    if name not in KINDS:
        raise ValueError(f"unknown network {name!r}: fastnum has {', '.join(KINDS)}")
    return KINDS[name]


def check_spec(spec):
    """``spec`` as a dict with a known ``network``; ``ValueError`` otherwise."""
    if not isinstance(spec, dict):
        raise ValueError(f"a network description must be a dict, got {type(spec).__name__}")
    return kind_named(spec.get("network"))


def build(spec, n_in, n_out):
    """A new network for ``spec``, drawing its initial weights from ``np.random`` as the book."""
    return check_spec(spec).cls.from_spec(spec, n_in, n_out)


def sizes_of(spec, params):
    """(n_in, n_out) of the network ``params`` belong to, read from the parameters' shapes."""
    cls = check_spec(spec).cls
    return cls.sizes_from_params(spec, params)


def with_params(spec, params, state=None, source="the parameters"):
    """A network for ``spec`` holding ``params`` (and ``state``), without drawing from ``np.random``.

    Everything is checked first: the spec's values, every parameter's key,
    type, shape and finiteness, and the state arrays'. A misfit raises
    ``ValueError`` naming ``source`` and the key.
    """
    if not isinstance(params, dict):
        raise ValueError(f"{source} must be a dict of arrays, got {type(params).__name__}")
    shown = json.dumps(spec, default=str) if isinstance(spec, dict) else repr(spec)
    try:
        kind = check_spec(spec)
        n_in, n_out = kind.cls.sizes_from_params(spec, params)
    except KeyError as error:
        name = _reason(error)
        where = "the parameters" if re.fullmatch(r"(W|b|gamma|beta)\d+", str(name)) else "the network description"
        raise ValueError(f"{source}: {where} lack {name}") from None
    except (TypeError, ValueError, IndexError) as error:
        raise ValueError(f"{source}: the network description {shown} is not one fastnum can build "
                         f"({_reason(error)})") from None
    saved = np.random.get_state()
    try:
        network = kind.cls.from_spec(spec, n_in, n_out)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ValueError(f"{source}: the network description {shown} is not one fastnum can build "
                         f"({_reason(error)})") from None
    finally:
        np.random.set_state(saved)
    network.params = checked_params(network, params, source)
    try:
        network.set_state_arrays(state or {})
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    return network


def checked_params(network, params, source="the parameters", partial=False):
    """``params`` as float64 C-ordered arrays, checked against ``network.param_shapes()``.

    Every key the network needs must be there (some of them when
    ``partial``), no other, each a numpy array of real numbers (not a list,
    not complex, not object) of the right shape with no NaN or inf;
    ``ValueError`` naming ``source`` and the key.
    """
    if not isinstance(params, dict):
        raise ValueError(f"{source} must be a dict of arrays, got {type(params).__name__}")
    expected = network.param_shapes()
    missing = [name for name in expected if name not in params]
    if partial:
        expected = {name: shape for name, shape in expected.items() if name in params}
    elif missing:
        raise ValueError(f"{source} lacks {', '.join(missing)} (this network needs {', '.join(expected)})")
    extra = [str(name) for name in params if name not in expected]
    if extra:
        raise ValueError(f"{source} has {', '.join(extra)}, which this network does not have "
                         f"(it has {', '.join(expected)})")
    checked = {}
    for name, shape in expected.items():
        value = params[name]
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{source}: {name} is a {type(value).__name__}, not a numpy array")
        if value.dtype == object or not (np.issubdtype(value.dtype, np.floating)
                                         or np.issubdtype(value.dtype, np.integer)):
            raise ValueError(f"{source}: {name} has dtype {value.dtype}, not real numbers")
        if value.shape != tuple(shape):
            raise ValueError(f"{source}: {name} has shape {value.shape}, this network needs {tuple(shape)}")
        value = np.ascontiguousarray(value, dtype=np.float64)
        if not np.isfinite(value).all():
            raise ValueError(f"{source}: {name} contains NaN or inf")
        checked[name] = value
    return checked


def _reason(error):
    return error.args[0] if isinstance(error, KeyError) and error.args else str(error)
