"""``MultiLayerNet`` and ``MultiLayerNetExtend``: the book's fully connected networks, with a
compiled exact numerical gradient behind them.

The facades validate, draw what the book draws from ``np.random`` and
dispatch: ``predict``/``loss``/``gradient`` to the numpy passes
(``_passes.py``), ``numerical_gradient`` to the per-sample kernels
(``_numgrad_per_sample.py``) or, with batch norm, to the batch kernels
(``_numgrad_batchnorm.py``).
"""

import numpy as np

from .._concurrency import ThreadSafeNetwork, serialised
from .._config import BN_MOMENTUM, H
from .._first_run import NUMPY_FLOPS_PER_SECOND, numpy_path
from .._validate import UNLABELLED, _real_array, as_batch, as_flag, as_labels, as_named_params
from .._workers import launch
from ..kernels.distinct_values import padded_width
from ..layers import Affine, BatchNormalization, Dropout, ForwardPass, LayerStack, Relu, Sigmoid, SoftmaxWithLoss
from ..layers.numerical import estimated_flops
from ..layers.numerical import numerical_gradient as layer_stack_gradient
from ..progress import first_call_notice
from ._buffers import pack_layers, unpack_hidden_weights
from ._numgrad_batchnorm import BatchNormGradient
from ._numgrad_per_sample import PerSampleGradient
from ._passes import Architecture, backward, cross_entropy, draw_dropout_masks, forward, weight_decay

ACTIVATIONS = ("relu", "sigmoid")
INIT_NAMES = {"relu": "he", "he": "he", "sigmoid": "xavier", "xavier": "xavier"}


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _finite_number(value, name, minimum=None, below=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    if below is not None and value >= below:
        raise ValueError(f"{name} must be below {below}, got {value!r}")
    return float(value)


class MultiLayerNetExtend(ThreadSafeNetwork):
    """The book's ``MultiLayerNetExtend`` (``common/multi_layer_net_extend.py``).

    Affine, [batch norm], activation, [dropout] per hidden layer, then affine
    and softmax with cross-entropy; weight decay in the loss.

    Parameters
    ----------
    input_size, output_size : int
    hidden_size_list : list of int
        Units of each hidden layer (e.g. ``[100, 100, 100]``).
    activation : {"relu", "sigmoid"}, default "relu"
    weight_init_std : float or {"relu", "he", "sigmoid", "xavier"}, default "relu"
        Standard deviation of the initial weights; "relu"/"he" is He's
        ``sqrt(2 / fan_in)``, "sigmoid"/"xavier" Xavier's ``sqrt(1 / fan_in)``
        (either case). The weights are drawn with ``np.random.randn`` layer
        by layer, as the book, so a seed gives the book's weights.
    weight_decay_lambda : float, default 0
        ``0.5 * lambda * sum(W**2)`` over every weight matrix joins the loss.
    use_dropout : bool, default False
    dropout_ration : float, default 0.5
        The fraction dropped (the book's spelling).
    use_batchnorm : bool, default False

    Attributes
    ----------
    params : dict
        ``W1..``, ``b1..`` and with batch norm ``gamma1..``, ``beta1..`` (the
        book's keys and shapes), float64; yours to update or replace.
    running_mean, running_var : list of numpy.ndarray or None
        Batch norm's running statistics per hidden layer (None until the
        first training-mode pass, as in the book; evaluation mode then uses zeros).

    Notes
    -----
    ``numerical_gradient`` differs from the book's in two documented ways,
    both deliberate:

    * Dropout: the book's draws new masks for each of its 2n loss
      evaluations, so its "gradient" mixes different networks. fastnum draws
      the masks once per call, consuming ``np.random`` exactly as one
      training forward pass (and so ``gradient``) does, and uses them for
      every perturbation: with the same ``np.random`` state before each
      call, ``numerical_gradient`` and ``gradient`` see the same masks.
    * Side effects: the book's 2n training-mode evaluations update the batch
      norm running statistics 2n times. fastnum leaves ``params`` bitwise
      unchanged and updates the running statistics once, as one training
      forward pass would.

    The methods hold the network's lock: Python threads sharing one network
    take turns, each getting the serial result.
    """

    GRADIENTS = ("numerical", "backprop")
    """The gradient kinds ``fit`` and ``fastnum train`` can ask of it."""
    COMPILE_SECONDS = {"numerical_gradient": 12.5}
    """About what compiling the numerical gradient's kernels costs on a 2-core machine (measured)."""
    COMPILE_SPECS = tuple(
        {"network": "MultiLayerNetExtend", "hidden": [100, 100], "activation": "relu", "weight_init_std": "relu",
         "weight_decay_lambda": 0.0, "use_dropout": False, "dropout_ration": 0.5, "use_batchnorm": batchnorm}
        for batchnorm in (False, True))
    """Specs whose kernels are every kernel of the class: with and without batch normalisation (the
    layer count, sizes, activation, dropout and weight decay do not change the kernels' types)."""
    READS_FLOAT32 = False
    """Its numpy passes and kernels take float64 images: ``fit`` converts each batch once."""
    SPEC_KEYS = ("hidden", "activation", "weight_init_std", "weight_decay_lambda", "use_dropout", "dropout_ration",
                 "use_batchnorm")

    def __init__(self, input_size, hidden_size_list, output_size, activation="relu", weight_init_std="relu",
                 weight_decay_lambda=0, use_dropout=False, dropout_ration=0.5, use_batchnorm=False):
        self._configure(input_size, hidden_size_list, output_size, activation, weight_init_std,
                        weight_decay_lambda, use_dropout, dropout_ration, use_batchnorm)

    def _configure(self, input_size, hidden_size_list, output_size, activation, weight_init_std,
                   weight_decay_lambda, use_dropout, dropout_ration, use_batchnorm):
        self.input_size = _positive_int(input_size, "input_size")
        self.output_size = _positive_int(output_size, "output_size")
        if isinstance(hidden_size_list, (int, np.integer)) or not hasattr(hidden_size_list, "__len__"):
            raise ValueError(f"hidden_size_list must be a list of layer sizes, e.g. [100, 100], "
                             f"got {hidden_size_list!r}")
        if len(hidden_size_list) == 0:
            raise ValueError("hidden_size_list is empty: fastnum's networks need at least one hidden layer")
        self.hidden_size_list = [_positive_int(s, "every size in hidden_size_list") for s in hidden_size_list]
        self.hidden_layer_num = len(self.hidden_size_list)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        init_name = INIT_NAMES.get(str(weight_init_std).lower())
        if init_name is None:
            _finite_number(weight_init_std, "weight_init_std (a number, or 'relu', 'he', 'sigmoid', 'xavier')")
        self.weight_init_std = weight_init_std
        self.weight_decay_lambda = _finite_number(weight_decay_lambda, "weight_decay_lambda", minimum=0)
        self.use_dropout = as_flag(use_dropout, "use_dropout")
        self.dropout_ration = _finite_number(dropout_ration, "dropout_ration", minimum=0, below=1)
        self.use_batchnorm = as_flag(use_batchnorm, "use_batchnorm")
        self.params = {}
        sizes = [self.input_size] + self.hidden_size_list + [self.output_size]
        for idx in range(1, len(sizes)):
            scale = weight_init_std
            if init_name == "he":
                scale = np.sqrt(2.0 / sizes[idx - 1])
            elif init_name == "xavier":
                scale = np.sqrt(1.0 / sizes[idx - 1])
            self.params[f"W{idx}"] = scale * np.random.randn(sizes[idx - 1], sizes[idx])
            self.params[f"b{idx}"] = np.zeros(sizes[idx])
        if self.use_batchnorm:
            for idx in range(1, self.hidden_layer_num + 1):
                self.params[f"gamma{idx}"] = np.ones(sizes[idx])
                self.params[f"beta{idx}"] = np.zeros(sizes[idx])
        self.running_mean = [None] * self.hidden_layer_num
        self.running_var = [None] * self.hidden_layer_num
        self._drivers = {}

    # -- the network protocol (fastnum.registry) ---------------------------------

    def spec(self):
        """The network's description in run files: the book's constructor arguments."""
        return {
            "network": "MultiLayerNetExtend", "hidden": list(self.hidden_size_list), "activation": self.activation,
            "weight_init_std": self.weight_init_std, "weight_decay_lambda": self.weight_decay_lambda,
            "use_dropout": self.use_dropout, "dropout_ration": self.dropout_ration,
            "use_batchnorm": self.use_batchnorm,
        }

    @classmethod
    def from_spec(cls, spec, n_in, n_out):
        """A new ``MultiLayerNetExtend`` for ``spec`` (initial weights drawn from ``np.random`` as the book)."""
        missing = [key for key in cls.SPEC_KEYS if key not in spec]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        for flag in ("use_dropout", "use_batchnorm"):
            if not isinstance(spec[flag], bool):
                raise ValueError(f"{flag} must be true or false, got {spec[flag]!r}")
        return MultiLayerNetExtend(
            n_in, spec["hidden"], n_out, activation=spec["activation"], weight_init_std=spec["weight_init_std"],
            weight_decay_lambda=spec["weight_decay_lambda"], use_dropout=spec["use_dropout"],
            dropout_ration=spec["dropout_ration"], use_batchnorm=spec["use_batchnorm"],
        )

    @classmethod
    def sizes_from_params(cls, spec, params):
        """(input_size, output_size) of the network that ``params`` belong to."""
        return int(np.shape(params["W1"])[0]), int(np.shape(params[f"W{len(spec['hidden']) + 1}"])[-1])

    @classmethod
    def memory_bytes(cls, spec, n_in, n_out, batch_size):
        """About the memory training needs: parameters, gradients and the numerical gradient's buffers
        (per layer and sample: activations, distinct values, sensitivities; per unit: scratch rows)."""
        sizes = [n_in, *spec["hidden"], n_out]
        n_layers = len(sizes) - 2
        widest, widest_in = max(sizes[1:-1]), max(sizes[:-2])
        width = padded_width(widest_in)
        n_params = sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(sizes) - 1))
        per_sample = n_layers * (5 * widest + 7 * width + 3 * widest_in + max(n_layers - 1, 0) * widest * n_out)
        per_unit = n_layers * widest * (9 * width + 2 * max(widest, n_out))
        return 8 * (4 * n_params + batch_size * per_sample + per_unit)

    def param_shapes(self):
        """Every parameter's shape, in the book's order of ``params``."""
        sizes = self._sizes
        shapes = {}
        for idx in range(1, len(sizes)):
            shapes[f"W{idx}"] = (sizes[idx - 1], sizes[idx])
            shapes[f"b{idx}"] = (sizes[idx],)
        if self.use_batchnorm:
            for idx in range(1, len(sizes) - 1):
                shapes[f"gamma{idx}"] = (sizes[idx],)
                shapes[f"beta{idx}"] = (sizes[idx],)
        return shapes

    def state_arrays(self):
        """Batch norm's running statistics (``running_mean{k}``, ``running_var{k}``), once there are any."""
        arrays = {}
        for k, (mean, var) in enumerate(zip(self.running_mean, self.running_var)):
            if mean is not None:
                arrays[f"running_mean{k + 1}"] = mean
                arrays[f"running_var{k + 1}"] = var
        return arrays

    def set_state_arrays(self, arrays):
        """Put ``state_arrays``' arrays back, checked (every name known, shapes, finite; variances >= 0)."""
        expected = {}
        for k, size in enumerate(self.hidden_size_list):
            expected[f"running_mean{k + 1}"] = expected[f"running_var{k + 1}"] = (size,)
        unknown = [name for name in arrays if name not in expected]
        if unknown:
            raise ValueError(f"{', '.join(unknown)} is not a running statistic of this network")
        checked = {}
        for name, value in arrays.items():
            value = np.asarray(value)
            if value.dtype == object or not np.issubdtype(value.dtype, np.number) or value.shape != expected[name]:
                raise ValueError(f"{name} must be {expected[name]} real numbers, got {value.dtype} {value.shape}")
            value = value.astype(np.float64)
            if not np.isfinite(value).all() or (name.startswith("running_var") and (value < 0).any()):
                raise ValueError(f"{name} holds NaN, inf{' or a negative variance' if 'var' in name else ''}")
            checked[name] = value
        for k in range(self.hidden_layer_num):
            mean, var = checked.get(f"running_mean{k + 1}"), checked.get(f"running_var{k + 1}")
            if (mean is None) != (var is None):
                raise ValueError(f"running_mean{k + 1} and running_var{k + 1} come together")
            if mean is not None:
                self.running_mean[k], self.running_var[k] = mean, var

    @property
    def sample_shape(self):
        """One image as the network takes it (flat; (1, 28, 28) images are flattened as the book's Affine)."""
        return (self.input_size,)

    def summary(self):
        """The network in a few words: ``MultiLayerNetExtend 784-100-100-10 relu (init relu, batch norm)``."""
        sizes = "-".join(str(n) for n in self._sizes)
        extras = [f"init {self.weight_init_std}"]
        if self.weight_decay_lambda:
            extras.append(f"weight decay {self.weight_decay_lambda:g}")
        if self.use_batchnorm:
            extras.append("batch norm")
        if self.use_dropout:
            extras.append(f"dropout {self.dropout_ration:g}")
        return f"MultiLayerNetExtend {sizes} {self.activation} ({', '.join(extras)})"

    def check_batch(self, x, t):
        """Raise the error a method would raise for this batch (shape, dtype, labels); compute nothing."""
        self._inputs(x, t)

    # -- helpers -------------------------------------------------------------

    @property
    def _sizes(self):
        return [self.input_size] + self.hidden_size_list + [self.output_size]

    @property
    def _arch(self):
        return Architecture(
            n_hidden_layers=self.hidden_layer_num, relu=self.activation == "relu", use_batchnorm=self.use_batchnorm,
            dropout_ratio=self.dropout_ration if self.use_dropout else None,
            weight_decay_lambda=self.weight_decay_lambda,
        )

    def _params(self):
        """(W, b, gamma, beta) lists, checked: every key, shape, real and finite; float64 C-ordered."""
        sizes = self._sizes
        expected = {}
        for idx in range(1, len(sizes)):
            expected[f"W{idx}"] = (sizes[idx - 1], sizes[idx])
            expected[f"b{idx}"] = (sizes[idx],)
            if self.use_batchnorm and idx < len(sizes) - 1:
                expected[f"gamma{idx}"] = (sizes[idx],)
                expected[f"beta{idx}"] = (sizes[idx],)
        arrays = as_named_params(self.params, expected)
        n = len(sizes) - 1
        W = [arrays[f"W{i}"] for i in range(1, n + 1)]
        b = [arrays[f"b{i}"] for i in range(1, n + 1)]
        gamma = [arrays[f"gamma{i}"] for i in range(1, n)] if self.use_batchnorm else []
        beta = [arrays[f"beta{i}"] for i in range(1, n)] if self.use_batchnorm else []
        return W, b, gamma, beta

    def _inputs(self, x, t=UNLABELLED):
        x = _real_array(x, "x")
        if x.ndim > 2:  # the book's Affine flattens each sample (e.g. (B, 1, 28, 28) images)
            x = x.reshape(x.shape[0], -1)
        x, single = as_batch(x, self.input_size)
        labels = None if t is UNLABELLED else as_labels(t, x.shape[0], self.output_size, single)
        return x, labels, single

    def _running(self):
        return [(np.zeros(n) if m is None else m, np.zeros(n) if v is None else v)
                for n, m, v in zip(self.hidden_size_list, self.running_mean, self.running_var)]

    def _update_running(self, stats):
        """The book's ``running = 0.9 running + 0.1 batch`` after one training pass."""
        running = self._running()
        for k, (mean, var) in enumerate(stats):
            old_mean, old_var = running[k]
            self.running_mean[k] = BN_MOMENTUM * old_mean + (1 - BN_MOMENTUM) * mean
            self.running_var[k] = BN_MOMENTUM * old_var + (1 - BN_MOMENTUM) * var

    def _forward(self, x, train_flg, masks=None):
        W, b, gamma, beta = self._params()
        arch = self._arch
        if train_flg and masks is None:
            masks = draw_dropout_masks(arch, x.shape[0], self.hidden_size_list)
        logits, trace, stats = forward(arch, W, b, gamma, beta, x, train_flg, masks, self._running())
        if train_flg:
            self._update_running(stats)
        return logits, trace, masks, W, gamma

    def _driver(self, n_samples):
        key = (n_samples, self.use_batchnorm)
        driver = self._drivers.get(key)
        if driver is None:
            if len(self._drivers) >= 4:
                self._drivers.clear()
            engine = BatchNormGradient if self.use_batchnorm else PerSampleGradient
            driver = self._drivers[key] = engine(self._sizes, n_samples)
        return driver

    # -- the book's API ------------------------------------------------------

    @serialised
    def predict(self, x, train_flg=False):
        """Scores (the last affine layer's output), (B, output_size).

        With ``train_flg`` batch norm uses the batch's statistics (and updates
        the running ones) and dropout draws masks, as the book's layers do.
        """
        train_flg = as_flag(train_flg, "train_flg")  # before the batch statistics or masks change
        x, _, single = self._inputs(x)
        logits = self._forward(x, train_flg)[0]
        return logits[0] if single else logits

    @serialised
    def loss(self, x, t, train_flg=False):
        """The book's loss: softmax cross-entropy (1e-7 in the log) plus the weight decay term."""
        train_flg = as_flag(train_flg, "train_flg")
        x, labels, _ = self._inputs(x, t)
        logits, _, _, W, _ = self._forward(x, train_flg)
        return float(cross_entropy(logits, labels) + weight_decay(self._arch, W))

    @serialised
    def accuracy(self, x, t):
        """Fraction of samples whose highest score (evaluation mode) is the label."""
        x, labels, _ = self._inputs(x, t)
        predicted = np.argmax(self._forward(x, False)[0], axis=1)
        return np.sum(predicted == labels) / float(x.shape[0])

    @serialised
    def gradient(self, x, t):
        """Gradient of the training-mode loss by backpropagation (the book's ``gradient``)."""
        x, labels, _ = self._inputs(x, t)
        logits, trace, masks, W, gamma = self._forward(x, True)
        dW, db, dgamma, dbeta = backward(self._arch, W, gamma, logits, labels, trace, masks)
        return self._as_grads(dW, db, dgamma, dbeta)

    def _gradient_calls(self, driver, x, labels):
        """The numerical gradient's (kernel, arguments) pairs, on the driver's buffers."""
        W, b, gamma, beta = self._params()
        arch = self._arch
        layers = pack_layers(W, b)
        if self.use_batchnorm:
            return driver.calls(x, labels, layers, np.concatenate(gamma), np.concatenate(beta), arch.relu, H,
                                arch.weight_decay_lambda)
        return driver.calls(x, labels, layers, arch.relu, H, arch.weight_decay_lambda)

    def kernel_calls(self, method, x, labels):
        """The (kernel, arguments) pairs ``method`` runs on ``x``: the numerical gradient's (the other
        methods are numpy)."""
        if method != "numerical_gradient":
            return []
        x, labels, _ = self._inputs(x, UNLABELLED if labels is None else labels)
        return self._gradient_calls(self._driver(x.shape[0]), x, labels)

    @property
    def stack(self):
        """The network as the book's layers (``fastnum.layers``): per hidden layer affine, [batch norm,]
        activation, [dropout]; then affine and softmax with loss; weight decay on every affine weight."""
        layers = []
        for k in range(1, self.hidden_layer_num + 1):
            layers.append(Affine(f"W{k}", f"b{k}"))
            if self.use_batchnorm:
                layers.append(BatchNormalization(f"gamma{k}", f"beta{k}"))
            layers.append(Relu() if self.activation == "relu" else Sigmoid())
            if self.use_dropout:
                layers.append(Dropout(self.dropout_ration))
        top = self.hidden_layer_num + 1
        layers.append(Affine(f"W{top}", f"b{top}"))
        decay = tuple((f"W{k}", self.weight_decay_lambda) for k in range(1, top + 1)) if self.weight_decay_lambda \
            else ()
        return LayerStack(tuple(layers), SoftmaxWithLoss(), (self.input_size,), decay)

    def numpy_seconds(self, method, n_samples, x=None):
        """About how long the numpy path of ``method`` takes on ``n_samples`` samples (``x``, when given: its
        distinct pixel values count)."""
        shapes = {key: np.empty(shape) for key, shape in self.param_shapes().items()}
        return estimated_flops(self.stack, shapes, n_samples, x) / NUMPY_FLOPS_PER_SECOND["numerical_gradient"]

    def _numerical_gradient_numpy(self, x, labels):
        """The numerical gradient by the book's layers in numpy (``fastnum.layers.numerical``): the
        dropout masks drawn as one training pass draws them, the running statistics moved once."""
        W, b, gamma, beta = self._params()
        params = {f"W{k + 1}": w for k, w in enumerate(W)}
        params.update({f"b{k + 1}": v for k, v in enumerate(b)})
        params.update({f"gamma{k + 1}": v for k, v in enumerate(gamma)})
        params.update({f"beta{k + 1}": v for k, v in enumerate(beta)})
        stack = self.stack
        pass_ = ForwardPass(train=True)
        grads = layer_stack_gradient(stack, params, x, labels, pass_, H)
        if self.use_batchnorm:
            self._update_running([pass_.stats[i] for i, layer in enumerate(stack.layers)
                                  if isinstance(layer, BatchNormalization)])
        return grads

    def _as_grads(self, dW, db, dgamma, dbeta):
        grads = {}
        for idx in range(1, self.hidden_layer_num + 2):
            grads[f"W{idx}"] = dW[idx - 1]
            grads[f"b{idx}"] = db[idx - 1]
            if self.use_batchnorm and idx <= self.hidden_layer_num:
                grads[f"gamma{idx}"] = dgamma[idx - 1]
                grads[f"beta{idx}"] = dbeta[idx - 1]
        return grads

    @serialised
    def numerical_gradient(self, x, t):
        """Central-difference gradient (h = 1e-4) of the training-mode loss, every parameter.

        Every entry is ``(L(p + h) - L(p - h)) / (2h)`` of the book's loss
        (weight decay included), each perturbed loss evaluated at the
        perturbed parameters, compiled and parallel. ``params`` are left
        bitwise unchanged; the batch norm running statistics move as after
        one training forward pass; dropout masks are drawn once (see the
        class notes).

        Returns
        -------
        dict
            Keys in the book's order (``W1``, ``b1``, [``gamma1``, ``beta1``,] ``W2``, ...).
        """
        x, labels, _ = self._inputs(x, t)
        if numpy_path(self, "numerical_gradient", x, labels):
            return self._numerical_gradient_numpy(x, labels)
        masks = draw_dropout_masks(self._arch, x.shape[0], self.hidden_size_list)
        driver = self._driver(x.shape[0])
        n_hidden = self.hidden_layer_num
        with first_call_notice(f"{type(self).__name__}.numerical_gradient"):
            calls = self._gradient_calls(driver, x, labels)
            if self.use_batchnorm:
                for k, n in enumerate(self.hidden_size_list):
                    driver.keepT[k, :n] = 1.0 if masks is None else masks[k].T
            else:
                for k, n in enumerate(self.hidden_size_list):
                    driver.keep[k, :, :n] = 1.0 if masks is None else masks[k]
            for call in calls:
                launch(*call)
        grads = driver.grads
        dW = unpack_hidden_weights(grads.W_T, grads.W_T_off, driver.sizes) + [driver.top_grads.W2.copy()]
        bounds = np.cumsum([0] + self.hidden_size_list)
        db = [grads.b[bounds[k]:bounds[k + 1]].copy() for k in range(n_hidden)] + [driver.top_grads.b2.copy()]
        dgamma = dbeta = None
        if self.use_batchnorm:
            dgamma = [grads.gamma[bounds[k]:bounds[k + 1]].copy() for k in range(n_hidden)]
            dbeta = [grads.beta[bounds[k]:bounds[k + 1]].copy() for k in range(n_hidden)]
            self._update_running([driver.batch_statistics(k) for k in range(n_hidden)])
        return self._as_grads(dW, db, dgamma, dbeta)


class MultiLayerNet(MultiLayerNetExtend):
    """The book's ``MultiLayerNet`` (``common/multi_layer_net.py``): affine and activation per hidden
    layer, then affine and softmax with cross-entropy; weight decay in the loss.

    Parameters are those of ``MultiLayerNetExtend`` without dropout and batch
    norm; so are ``params``, the initialisation and the methods, except that
    ``predict`` and ``loss`` take no ``train_flg`` (nothing differs between
    training and evaluation here).
    """

    def __init__(self, input_size, hidden_size_list, output_size, activation="relu", weight_init_std="relu",
                 weight_decay_lambda=0):
        self._configure(input_size, hidden_size_list, output_size, activation, weight_init_std,
                        weight_decay_lambda, False, 0.5, False)

    @serialised
    def predict(self, x):
        """Scores (the last affine layer's output), (B, output_size)."""
        return super().predict(x)

    @serialised
    def loss(self, x, t):
        """The book's loss: softmax cross-entropy (1e-7 in the log) plus the weight decay term."""
        return super().loss(x, t)
