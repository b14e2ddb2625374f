"""``TwoLayerNet``: the book's chapter-4 network with compiled kernels behind it."""

import numpy as np

from .._concurrency import ThreadSafeNetwork, serialised
from .._config import H
from .._first_run import NUMPY_FLOPS_PER_SECOND, numpy_path
from .._validate import PARAM_NAMES, UNLABELLED, as_batch, as_labels, as_params
from ..kernels.activations import ACTIVATIONS
from ..kernels.perturbed_losses import Gradients
from ..layers import Affine, ForwardPass, LayerStack, Relu, Sigmoid, SoftmaxWithLoss
from ..layers.numerical import estimated_flops
from ..layers.numerical import numerical_gradient as layer_stack_gradient
from ..progress import first_call_notice
from ._driver import TwoLayerDriver
from ._forward import FORWARD, LOSSES, PROBABILITIES, predicted_labels

GRADIENT_METHODS = ("incremental", "full")


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
        self._drivers = {}

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
        n_params = (n_in + 1) * n_hidden + (n_hidden + 1) * n_out
        return 8 * 4 * n_params + TwoLayerDriver.buffer_bytes(batch_size, n_in, n_hidden)

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
        x, labels, _ = self._inputs(x, UNLABELLED if labels is None else labels)
        driver = self._driver(x.shape[0])
        grads = [np.empty_like(p) for p in params]
        if method == "numerical_gradient":
            return driver.incremental_calls(x, labels, params, Gradients(*grads))
        if method == "numerical_gradient_full":
            return [driver.full_call(x, labels, params, grads)]
        if method == "gradient":
            return driver.backprop_calls(x, labels, params, grads)
        if method in ("loss", "predict", "accuracy"):
            return [driver.pass_call(LOSSES, x, labels, params)]
        raise ValueError(f"TwoLayerNet has no method {method!r} with kernels")

    @property
    def stack(self):
        """The network as the book's layers (``fastnum.layers``): affine, activation, affine, softmax
        with loss. The numpy path of a first call (``fastnum._first_run``)."""
        activation = Relu() if self._relu else Sigmoid()
        return LayerStack((Affine("W1", "b1"), activation, Affine("W2", "b2")), SoftmaxWithLoss(),
                          (self.input_size,))

    def numpy_seconds(self, method, n_samples, x=None):
        """About how long ``method``'s numpy path takes on ``n_samples`` samples (``fastnum._first_run``;
        ``x``, when given: its distinct pixel values count)."""
        shapes = {key: np.empty(shape) for key, shape in self.param_shapes().items()}
        if method.startswith("numerical_gradient"):
            return estimated_flops(self.stack, shapes, n_samples, x) / NUMPY_FLOPS_PER_SECOND["numerical_gradient"]
        flops = 4.0 * n_samples * (self.input_size + self.output_size + 1) * self.hidden_size
        return flops / NUMPY_FLOPS_PER_SECOND["forward"]

    def _numpy_scores(self, x, params):
        """The scores (logits) of ``x`` by the book's layers in numpy."""
        return self.stack.forward(dict(zip(PARAM_NAMES, params)), x, ForwardPass(train=False))[0]

    # -- helpers -------------------------------------------------------------

    @property
    def _relu(self):
        return self.activation == "relu"

    def _driver(self, n_samples):
        """The driver (``_driver.TwoLayerDriver``: buffers and kernel calls) of batches of ``n_samples``."""
        # keyed by what the driver was built for too: an ``activation`` set after construction is honoured
        key = (n_samples, self.input_size, self.hidden_size, self.output_size, self._relu)
        driver = self._drivers.get(key)
        if driver is None:
            if len(self._drivers) >= 4:  # e.g. train batch, last partial batch, probes
                self._drivers.clear()
            driver = self._drivers[key] = TwoLayerDriver(*key)
        return driver

    def _params(self):
        return as_params(self.params, self.input_size, self.hidden_size, self.output_size)

    def _inputs(self, x, t=UNLABELLED):
        # float32 images (load_mnist's) stay float32: every kernel widens each pixel to float64 as it
        # reads it, exactly, so the results are those of a float64 copy, without making one per call
        x, single = as_batch(x, self.input_size, keep_float32=True)
        labels = None if t is UNLABELLED else as_labels(t, x.shape[0], self.output_size, single)
        return x, labels, single

    def _forward(self, x, params, mode=FORWARD, labels=None):
        """One pass of ``mode`` on the driver of ``x``'s batch size; returns that driver (its ``forward``
        and ``out`` hold the results)."""
        return self._driver(x.shape[0]).run_pass(mode, x, params, labels)

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
            driver = self._driver(x.shape[0])
            if method == "full":
                return self._as_grads(*driver.run_full(x, labels, params))
            return self._as_grads(*driver.run_incremental(x, labels, params))

    @serialised
    def gradient(self, x, t):
        """Gradient of the loss by backpropagation (the book's ``gradient``)."""
        params = self._params()
        x, labels, _ = self._inputs(x, t)
        if numpy_path(self, "gradient", x, labels):
            return self.stack.gradient(dict(zip(PARAM_NAMES, params)), x, labels, ForwardPass(train=False))
        with first_call_notice("TwoLayerNet.gradient"):
            grads = self._driver(x.shape[0]).run_backprop(x, labels, params)
        return self._as_grads(*grads)

