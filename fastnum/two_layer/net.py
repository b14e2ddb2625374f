"""``TwoLayerNet``: the book's chapter-4 network with compiled kernels behind it."""

import numpy as np

from .._concurrency import ThreadSafeNetwork, serialised
from .._config import H
from .._first_run import NUMPY_FLOPS_PER_SECOND, numpy_path
from .._validate import PARAM_NAMES, as_batch, as_labels, as_params
from .._workers import launch, new_counters
from ..kernels.activations import ACTIVATIONS
from ..kernels.distinct_values import DistinctValues, hash_table_size, padded_width
from ..kernels.perturbed_losses import N_SCRATCH_ROWS, ForwardCache, Gradients
from ..layers import Affine, ForwardPass, LayerStack, Relu, Sigmoid, SoftmaxWithLoss
from ..layers.numerical import estimated_flops
from ..layers.numerical import numerical_gradient as layer_stack_gradient
from ..progress import first_call_notice
from ._backprop import Deltas, backprop_worker
from ._forward import (
    FORWARD,
    GRADIENT_CACHES,
    LOSSES,
    PROBABILITIES,
    Activations,
    TwoLayerParams,
    predicted_labels,
    sample_pass_call,
)
from ._numgrad_full import PixelLists, full_worker, parameter_groups
from ._numgrad_incremental import (
    UNITS_PER_BLOCK,
    IncrementalScratch,
    all_steps_small,
    n_unit_blocks,
    perturb_worker,
)

GRADIENT_METHODS = ("incremental", "full")


class _Workspace:
    """Buffers for one batch size, allocated once and reused by every call.

    The forward buffers are made at once; those of the incremental gradient
    and of backprop only when first needed, so that ``predict`` on a whole
    data set allocates no more than its activations.
    """

    def __init__(self, n_samples, n_in, n_hidden, n_out):
        self.sizes = (n_samples, n_in, n_hidden, n_out)
        self.a1 = np.empty((n_samples, n_hidden))
        self.z1 = np.empty((n_samples, n_hidden))
        self.a2 = np.empty((n_samples, n_out))
        self.out = np.empty((n_samples, n_out))
        """Per-sample losses (column 0) or probabilities."""
        self.forward = Activations(self.a1, self.z1, self.a2)
        self._incremental = None
        self._backprop = None

    def incremental(self):
        if self._incremental is None:
            self._incremental = _IncrementalBuffers(self)
        return self._incremental

    def backprop(self):
        if self._backprop is None:
            n_samples, _, n_hidden, n_out = self.sizes
            self._backprop = Deltas(dy=np.empty((n_samples, n_out)), dz1=np.empty((n_samples, n_hidden)))
        return self._backprop


class _IncrementalBuffers:
    """What the incremental numerical gradient needs besides the forward pass."""

    def __init__(self, workspace):
        n_samples, n_in, n_hidden, n_out = workspace.sizes
        width = padded_width(n_in)
        self.forward = ForwardCache(
            a1=workspace.a1, z1=workspace.z1, a2=workspace.a2,
            one_minus_z1=np.empty((n_samples, n_hidden)), exps=np.empty((n_samples, n_out)),
            row_max=np.empty(n_samples), target_exp=np.empty(n_samples),
            logits_T=np.empty((n_out, n_samples)), max_without_T=np.empty((n_out, n_samples)),
            sum_without_T=np.empty((n_out, n_samples)), exps_T=np.empty((n_out, n_samples)),
            z1_T=np.empty((n_hidden + 1, n_samples)),
        )
        # distinct pixel values per sample (+1 for the bias "pixel"), padded
        self.distinct = DistinctValues(
            values=np.empty((n_samples, width)), n_values=np.empty(n_samples, dtype=np.int64),
            nonzero_idx=np.empty((n_samples, n_in), dtype=np.int64), n_nonzero=np.empty(n_samples, dtype=np.int64),
            codes=np.empty((n_samples, n_in), dtype=np.int64), one_code=np.empty(n_samples, dtype=np.int64),
            expm1_minus_step=np.empty((n_samples, width)), expm1_plus_step=np.empty((n_samples, width)),
            max_abs_value=np.empty(n_samples),
            tables=np.full((n_samples, hash_table_size(n_in)), -1, dtype=np.int64),
            used_slots=np.empty((n_samples, width), dtype=np.int64),
        )
        n_blocks = n_unit_blocks(n_hidden)
        self.scratch = IncrementalScratch(
            hidden=np.empty((n_hidden, N_SCRATCH_ROWS, width)),
            block_losses=np.empty((n_blocks, width, UNITS_PER_BLOCK)),
            block_grads=np.empty((n_blocks, n_in + 1, UNITS_PER_BLOCK)),
            output=np.empty((n_hidden + 1, n_samples)),
        )


class TwoLayerNet(ThreadSafeNetwork):
    """The book's two-layer network: affine, sigmoid (or ReLU), affine, softmax.

    Drop-in for ``ch04/two_layer_net.py`` of "Deep Learning from Scratch":
    same constructor, same ``params`` dict, same methods and results, with the
    forward pass, the numerical gradient and backprop in compiled kernels.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Layer sizes (784, 50, 10 for MNIST in the book).
    weight_init_std : float, default 0.01
        Standard deviation of the initial weights. ``W1`` then ``W2`` are drawn
        with ``weight_init_std * np.random.randn(...)`` and the biases are
        zero, exactly as the book, so ``np.random.seed(s)`` gives the book's
        initial weights.
    activation : {"sigmoid", "relu"}, default "sigmoid"
        Hidden-layer activation; "relu" is chapter 5's network.

    Attributes
    ----------
    params : dict of str to numpy.ndarray
        ``W1`` (input, hidden), ``b1`` (hidden,), ``W2`` (hidden, output),
        ``b2`` (output,), float64. They stay yours: update them in place or
        replace them, every call reads them afresh and none writes to them.

    Notes
    -----
    ``t`` may be one-hot rows (B, output_size) or class indices (B,) in every
    method. ``x`` may be any real dtype and memory order; it is used as float64.
    A network reuses its buffers across calls; its methods hold the
    network's lock, so Python threads sharing one network take turns (each
    gets the serial result) while the kernels themselves use all cores.
    """

    GRADIENTS = ("numerical", "numerical-full", "backprop")
    """The gradient kinds ``fit`` and ``fastnum train`` can ask of it."""
    READS_FLOAT32 = True
    """float32 images go to the kernels as they are (each pixel widened exactly as it is read)."""
    COMPILE_SECONDS = {"numerical_gradient": 6.5, "numerical_gradient_full": 6.0, "gradient": 5.0, "loss": 4.0,
                       "predict": 4.0, "accuracy": 4.0}
    """About what compiling each method's kernels costs on a 2-core machine (measured): a first call
    whose numpy evaluation is estimated to take less takes the numpy path (``fastnum._first_run``).
    Its keys are the methods with kernels (``fastnum compile`` compiles them all)."""
    COMPILE_SPECS = ({"network": "TwoLayerNet", "hidden": [50], "activation": "sigmoid"},)
    """Specs whose kernels are every kernel of the class: kernels compile by their arguments' types,
    which neither the sizes nor the activation change (``tests/test_compile.py`` checks this)."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, activation="sigmoid"):
        sizes = {"input_size": input_size, "hidden_size": hidden_size, "output_size": output_size}
        for name, size in sizes.items():
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"{name} must be a positive integer, got {size!r}")
        if isinstance(weight_init_std, bool) or not isinstance(weight_init_std, (int, float, np.integer, np.floating)) \
                or not np.isfinite(weight_init_std):
            raise ValueError(f"weight_init_std must be a finite number, got {weight_init_std!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.output_size = int(output_size)
        self.activation = activation
        self.params = {}
        self.params["W1"] = weight_init_std * np.random.randn(input_size, hidden_size)
        self.params["b1"] = np.zeros(hidden_size)
        self.params["W2"] = weight_init_std * np.random.randn(hidden_size, output_size)
        self.params["b2"] = np.zeros(output_size)
        self._workspaces = {}

    # -- the network protocol (fastnum.registry) ---------------------------------

    def spec(self):
        """The network's description in run files: ``{"network": "TwoLayerNet", "hidden": [H], "activation": ...}``."""
        return {"network": "TwoLayerNet", "hidden": [self.hidden_size], "activation": self.activation}

    @classmethod
    def from_spec(cls, spec, n_in, n_out):
        """A new network for ``spec`` (initial weights drawn from ``np.random`` as the book)."""
        hidden = spec["hidden"]
        if not isinstance(hidden, list) or len(hidden) != 1:
            raise ValueError(f"hidden must be a list of one size for TwoLayerNet, got {hidden!r}")
        return cls(n_in, hidden[0], n_out, activation=spec.get("activation", "sigmoid"))

    @classmethod
    def sizes_from_params(cls, spec, params):
        """(input_size, output_size) of the network that ``params`` belong to."""
        return int(np.shape(params["W1"])[0]), int(np.shape(params["W2"])[-1])

    @classmethod
    def memory_bytes(cls, spec, n_in, n_out, batch_size):
        """About the memory training needs: parameters, gradients, the update's temporaries and the
        incremental gradient's buffers (its scratch rows are the widest: nine per hidden unit)."""
        n_hidden = spec["hidden"][0]
        width = padded_width(n_in)
        n_params = (n_in + 1) * n_hidden + (n_hidden + 1) * n_out
        scratch = n_hidden * (N_SCRATCH_ROWS * width + (n_in + 1)) + batch_size * (6 * n_hidden + 3 * n_in)
        return 8 * (4 * n_params + scratch)

    def param_shapes(self):
        """Every parameter's shape, in the book's order."""
        return {"W1": (self.input_size, self.hidden_size), "b1": (self.hidden_size,),
                "W2": (self.hidden_size, self.output_size), "b2": (self.output_size,)}

    def state_arrays(self):
        """Arrays besides ``params`` a run keeps: none for this network."""
        return {}

    def set_state_arrays(self, arrays):
        if arrays:
            raise ValueError(f"TwoLayerNet has no state arrays, got {', '.join(arrays)}")

    @property
    def sample_shape(self):
        """One image as the network takes it."""
        return (self.input_size,)

    def summary(self):
        """The network in a few words: ``TwoLayerNet 784-50-10 sigmoid``."""
        return f"TwoLayerNet {self.input_size}-{self.hidden_size}-{self.output_size} {self.activation}"

    def check_batch(self, x, t):
        """Raise the error a method would raise for this batch (shape, dtype, labels); compute nothing."""
        self._inputs(x, t)

    def kernel_calls(self, method, x, labels):
        """The (kernel, arguments) pairs ``method`` runs on the batch ``x`` (checked, as the methods
        take it): what ``fastnum._compile`` compiles and checks in numba's cache."""
        params = self._params()
        x, labels, _ = self._inputs(x, labels)
        if method == "numerical_gradient":
            return self._incremental_calls(x, labels, params, self._incremental_grads(params))
        grads = [np.empty_like(p) for p in params]
        if method == "numerical_gradient_full":
            return [self._full_call(x, labels, params, grads)]
        if method == "gradient":
            return self._backprop_calls(x, labels, params, grads)
        if method in ("loss", "predict", "accuracy"):
            return [self._pass_call(LOSSES, x, labels, params)]
        raise ValueError(f"TwoLayerNet has no method {method!r} with kernels")

    @property
    def stack(self):
        """The network as the book's layers (``fastnum.layers``): affine, activation, affine, softmax
        with loss. The numpy path of a first call (``fastnum._first_run``)."""
        activation = Relu() if self._relu else Sigmoid()
        return LayerStack((Affine("W1", "b1"), activation, Affine("W2", "b2")), SoftmaxWithLoss(),
                          (self.input_size,))

    def numpy_seconds(self, method, n_samples):
        """About how long ``method``'s numpy path takes on ``n_samples`` samples (``fastnum._first_run``)."""
        shapes = {key: np.empty(shape) for key, shape in self.param_shapes().items()}
        if method.startswith("numerical_gradient"):
            return estimated_flops(self.stack, shapes, n_samples) / NUMPY_FLOPS_PER_SECOND["numerical_gradient"]
        flops = 4.0 * n_samples * (self.input_size + self.output_size + 1) * self.hidden_size
        return flops / NUMPY_FLOPS_PER_SECOND["forward"]

    def _numpy_scores(self, x, params):
        """The scores (logits) of ``x`` by the book's layers in numpy."""
        return self.stack.forward(dict(zip(PARAM_NAMES, params)), x, ForwardPass(train=False))[0]

    # -- helpers -------------------------------------------------------------

    @property
    def _relu(self):
        return self.activation == "relu"

    def _workspace(self, n_samples):
        workspace = self._workspaces.get(n_samples)
        if workspace is None:
            if len(self._workspaces) >= 4:  # e.g. train batch, last partial batch, probes
                self._workspaces.clear()
            workspace = _Workspace(n_samples, self.input_size, self.hidden_size, self.output_size)
            self._workspaces[n_samples] = workspace
        return workspace

    def _params(self):
        return as_params(self.params, self.input_size, self.hidden_size, self.output_size)

    def _inputs(self, x, t=None):
        # float32 images (load_mnist's) stay float32: every kernel widens each pixel to float64 as it
        # reads it, exactly, so the results are those of a float64 copy, without making one per call
        x, single = as_batch(x, self.input_size, keep_float32=True)
        labels = None if t is None else as_labels(t, x.shape[0], self.output_size, single)
        return x, labels, single

    # -- the kernel calls of each method, built in one place -----------------
    # Each returns (kernel, arguments) pairs; the methods run them with ``launch`` (workers on every
    # thread, the rest directly), and ``fastnum._compile`` compiles them by their types, two
    # processes at once.

    def _pass_call(self, mode, x, labels, params):
        """One pass over ``x`` (``_forward.sample_pass_call``: its worker by mode), into the workspace."""
        ws = self._workspace(x.shape[0])
        if mode == GRADIENT_CACHES:
            buffers = ws.incremental()
            return sample_pass_call(mode, x, labels, params, self._relu, buffers.forward, buffers.distinct)
        return sample_pass_call(mode, x, labels, params, self._relu, ws.forward, out=ws.out)

    def _incremental_calls(self, x, labels, params, grads):
        W1, b1, W2, b2 = params
        ws = self._workspace(x.shape[0]).incremental()
        return [
            self._pass_call(GRADIENT_CACHES, x, labels, params),
            (perturb_worker, (new_counters(), labels, W2, self._relu, H, ws.forward, ws.distinct, ws.scratch, grads,
                              None)),
        ]

    def _incremental_grads(self, params):
        W1, b1, W2, b2 = params
        return Gradients(W1=np.empty_like(W1), b1=np.empty_like(b1), W2=np.empty_like(W2), b2=np.empty_like(b2))

    def _full_call(self, x, labels, params, grads):
        groups = parameter_groups(self.input_size, self.hidden_size, self.output_size)
        pixels = PixelLists(nonzero_idx=np.empty(x.shape, dtype=np.int64),
                            n_nonzero=np.empty(x.shape[0], dtype=np.int64),
                            pixel_position=np.empty(x.shape, dtype=np.int64))
        return full_worker, (new_counters(), x, labels, TwoLayerParams(*params), self._relu, H, groups, pixels,
                             Gradients(*grads))

    def _backprop_calls(self, x, labels, params, grads):
        ws = self._workspace(x.shape[0])
        return [self._pass_call(FORWARD, x, None, params),
                (backprop_worker, (new_counters(), x, labels, params[2], self._relu, ws.forward, ws.backprop(),
                                   Gradients(*grads)))]

    def _forward(self, x, params, mode=FORWARD, labels=None):
        launch(*self._pass_call(mode, x, labels, params))
        return self._workspace(x.shape[0])

    def _as_grads(self, W1, b1, W2, b2):
        return dict(zip(PARAM_NAMES, (W1, b1, W2, b2)))

    # -- the book's API ------------------------------------------------------

    @serialised
    def predict(self, x):
        """Softmax probabilities of the classes, (B, output_size); (output_size,) for 1-D ``x``."""
        params = self._params()
        x, _, single = self._inputs(x)
        if numpy_path(self, "predict", x, None):
            y = SoftmaxWithLoss.softmax(self._numpy_scores(x, params))
        else:
            with first_call_notice("TwoLayerNet.predict"):
                y = self._forward(x, params, PROBABILITIES).out.copy()
        return y[0] if single else y

    @serialised
    def loss(self, x, t):
        """The book's loss: ``cross_entropy_error(predict(x), t)`` (with the 1e-7 inside the log)."""
        params = self._params()
        x, labels, _ = self._inputs(x, t)
        if numpy_path(self, "loss", x, labels):
            return self.stack.loss(dict(zip(PARAM_NAMES, params)), x, labels, ForwardPass(train=False))
        with first_call_notice("TwoLayerNet.loss"):
            losses = self._forward(x, params, LOSSES, labels).out[:, 0]
            # numpy's (pairwise) sum, as the book's cross_entropy_error sums its logs
            return float(np.sum(losses) / x.shape[0])

    @serialised
    def accuracy(self, x, t):
        """Fraction of samples whose most probable class is the label."""
        params = self._params()
        x, labels, _ = self._inputs(x, t)
        if numpy_path(self, "accuracy", x, labels):
            predicted = np.argmax(SoftmaxWithLoss.softmax(self._numpy_scores(x, params)), axis=1)
        else:
            with first_call_notice("TwoLayerNet.accuracy"):
                predicted = predicted_labels(x, *params, self._relu)
        return np.sum(predicted == labels) / float(x.shape[0])

    @serialised
    def numerical_gradient(self, x, t, method="incremental"):
        """Central-difference gradient of the loss, h = 1e-4, for every parameter.

        Every entry is ``(L(p + h) - L(p - h)) / (2h)`` of the book's loss,
        evaluated in float64.

        Parameters
        ----------
        x : array_like, (B, input_size)
        t : array_like, (B, output_size) one-hot or (B,) class indices
        method : {"incremental", "full"}
            "full" re-evaluates the whole forward pass for every perturbation
            (the book's algorithm, compiled and parallel); "incremental"
            evaluates the same perturbed losses from the cached forward pass,
            recomputing only what one perturbation changes.

        Returns
        -------
        dict
            ``W1``, ``b1``, ``W2``, ``b2``: arrays shaped like ``params``.
        """
        if method not in GRADIENT_METHODS:
            raise ValueError(f"method must be one of {GRADIENT_METHODS}, got {method!r}")
        params = self._params()
        x, labels, _ = self._inputs(x, t)
        if numpy_path(self, "numerical_gradient_full" if method == "full" else "numerical_gradient", x, labels):
            return layer_stack_gradient(self.stack, dict(zip(PARAM_NAMES, params)), x, labels,
                                        ForwardPass(train=False), H)
        with first_call_notice(f"TwoLayerNet.numerical_gradient(method={method!r})"):
            if method == "full":
                return self._numerical_gradient_full(x, labels, params)
            return self._numerical_gradient_incremental(x, labels, params)

    def _numerical_gradient_full(self, x, labels, params):
        grads = [np.empty_like(p) for p in params]
        launch(*self._full_call(x, labels, params, grads))
        return self._as_grads(*grads)

    def _numerical_gradient_incremental(self, x, labels, params):
        grads = self._incremental_grads(params)
        prepare, (perturb, perturb_args) = self._incremental_calls(x, labels, params, grads)
        launch(*prepare)
        ws = self._workspace(x.shape[0]).incremental()
        if all_steps_small(self._relu, H, ws.distinct.max_abs_value, params[2], ws.forward.z1):
            launch(perturb, perturb_args)
        else:  # some step too large for the short series: the worker with the general paths
            with first_call_notice("TwoLayerNet.numerical_gradient (large perturbation steps)"):
                launch(perturb, perturb_args[:-1] + (True,))
        return self._as_grads(grads.W1, grads.b1, grads.W2, grads.b2)

    @serialised
    def gradient(self, x, t):
        """Gradient of the loss by backpropagation (the book's ``gradient``)."""
        params = self._params()
        x, labels, _ = self._inputs(x, t)
        if numpy_path(self, "gradient", x, labels):
            return self.stack.gradient(dict(zip(PARAM_NAMES, params)), x, labels, ForwardPass(train=False))
        with first_call_notice("TwoLayerNet.gradient"):
            grads = [np.empty_like(p) for p in params]
            for call in self._backprop_calls(x, labels, params, grads):
                launch(*call)
        return self._as_grads(*grads)

