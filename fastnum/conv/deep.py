"""``DeepConvNet``: the book's chapter-8 network, with the numerical gradient its class lacks.

conv - relu - conv - relu - pool - conv - relu - conv - relu - pool -
conv - relu - conv - relu - pool - affine - relu - dropout - affine - dropout
- softmax with loss, described as a ``fastnum.layers.LayerStack``: predict,
loss and backprop are the book's passes in numpy, and ``numerical_gradient``
is the exact central difference of every one of its parameters
(``fastnum.layers.numerical``: each perturbation's move carried up through
the layers above while they provably stay linear, ``fastnum.layers.moves``).
"""

import numpy as np

from .._concurrency import ThreadSafeNetwork, serialised
from .._config import H
from .._first_run import NUMPY_FLOPS_PER_SECOND
from .._param_files import load_param_pickle, save_param_pickle
from .._validate import UNLABELLED, _real_array, as_flag, as_images, as_labels, as_named_params
from ..layers import (
    Affine,
    Convolution,
    Dropout,
    ForwardPass,
    LayerStack,
    Pooling,
    Relu,
    SoftmaxWithLoss,
)
from ..layers.numerical import estimated_flops
from ..layers.numerical import numerical_gradient as layer_stack_gradient
from ..progress import entries_progress

DEFAULT_CONV_PARAMS = (
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
)
"""The book's six ``conv_param_*`` defaults."""

DROPOUT_RATIO = 0.5
POOLED_FEATURES = 64 * 4 * 4
"""What the book sizes ``W7`` for (and its He scale): the pooled features of 28x28 images."""


def _positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _conv_param(param, name):
    if not isinstance(param, dict):
        raise ValueError(f"{name} must be a dict with filter_num, filter_size, pad, stride, got {param!r}")
    missing = [k for k in ("filter_num", "filter_size", "pad", "stride") if k not in param]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(missing)} (it needs filter_num, filter_size, pad, stride)")
    return {"filter_num": _positive_int(param["filter_num"], f"{name}['filter_num']"),
            "filter_size": _positive_int(param["filter_size"], f"{name}['filter_size']"),
            "pad": _positive_int(param["pad"], f"{name}['pad']", minimum=0),
            "stride": _positive_int(param["stride"], f"{name}['stride']")}


class DeepConvNet(ThreadSafeNetwork):
    """The book's ``DeepConvNet`` (``ch08/deep_convnet.py``): six 3x3 convolutions, three poolings, two
    affine layers with dropout, over 99% on MNIST.

    Parameters
    ----------
    input_dim : (channels, height, width), default (1, 28, 28)
    conv_param_1, ..., conv_param_6 : dict
        ``filter_num``, ``filter_size``, ``pad``, ``stride`` of each convolution
        (the book's defaults: 16, 16, 32, 32, 64, 64 filters of 3x3, pad 1,
        except pad 2 for the fourth).
    hidden_size : int, default 50
    output_size : int, default 10

    Attributes
    ----------
    params : dict
        ``W1`` .. ``W6`` (filters, channels, size, size), ``b1`` .. ``b6``, ``W7``
        (1024, hidden), ``b7``, ``W8`` (hidden, output), ``b8``: float64, drawn
        from ``np.random`` as the book (He's ``sqrt(2 / fan_in)`` with the
        book's fan-ins), so a seed gives the book's weights. Yours to update
        or replace.

    Notes
    -----
    As the book's, ``loss`` runs in training mode (dropout on), ``predict``
    and ``accuracy`` in evaluation mode by default. ``numerical_gradient``
    draws the dropout masks once per call (consuming ``np.random`` as one
    training pass, and so ``gradient``, does) and uses them for every
    perturbation: with the same ``np.random`` state both gradients see the
    same masks. The book's ``W7`` is sized for 64 x 4 x 4 pooled features;
    sizes for which the layers produce another number (any input but 28x28
    with the default convolutions) make the book's network fail at its first
    pass, and are refused when the network is built. The methods hold the
    network's lock: Python threads sharing one network take turns.
    """

    GRADIENTS = ("numerical", "backprop")
    READS_FLOAT32 = False
    COMPILE_SECONDS = {}
    """Methods with compiled kernels: none (its passes and numerical gradient are numpy)."""
    COMPILE_SPECS = ()
    KIND = "DeepConvNet"

    def __init__(self, input_dim=(1, 28, 28), conv_param_1=None, conv_param_2=None, conv_param_3=None,
                 conv_param_4=None, conv_param_5=None, conv_param_6=None, hidden_size=50, output_size=10):
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        conv_params = [_conv_param(DEFAULT_CONV_PARAMS[k] if p is None else p, f"conv_param_{k + 1}")
                       for k, p in enumerate(given)]
        if not hasattr(input_dim, "__len__") or len(input_dim) != 3:
            raise ValueError(f"input_dim must be (channels, height, width), got {input_dim!r}")
        self.input_dim = tuple(_positive_int(d, "every entry of input_dim") for d in input_dim)
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        self.output_size = _positive_int(output_size, "output_size")
        self.conv_params = conv_params
        self.activation = "relu"
        self._check_sizes()
        # the book's weight scales: He's sqrt(2 / fan_in) with its fixed fan-ins
        pre_node_nums = np.array([1 * 3 * 3, 16 * 3 * 3, 16 * 3 * 3, 32 * 3 * 3, 32 * 3 * 3, 64 * 3 * 3,
                                  64 * 4 * 4, self.hidden_size])
        scales = np.sqrt(2.0 / pre_node_nums)
        self.params = {}
        channels = self.input_dim[0]
        for idx, param in enumerate(conv_params):
            self.params[f"W{idx + 1}"] = scales[idx] * np.random.randn(param["filter_num"], channels,
                                                                       param["filter_size"], param["filter_size"])
            self.params[f"b{idx + 1}"] = np.zeros(param["filter_num"])
            channels = param["filter_num"]
        self.params["W7"] = scales[6] * np.random.randn(POOLED_FEATURES, self.hidden_size)
        self.params["b7"] = np.zeros(self.hidden_size)
        self.params["W8"] = scales[7] * np.random.randn(self.hidden_size, self.output_size)
        self.params["b8"] = np.zeros(self.output_size)

    # -- the layers ----------------------------------------------------------

    @property
    def stack(self):
        """The network as a ``LayerStack``: the book's layer list."""
        layers = []
        for idx, param in enumerate(self.conv_params):
            layers += [Convolution(f"W{idx + 1}", f"b{idx + 1}", param["stride"], param["pad"]), Relu()]
            if idx % 2 == 1:
                layers.append(Pooling(2, 2, 2))
        layers += [Affine("W7", "b7"), Relu(), Dropout(DROPOUT_RATIO), Affine("W8", "b8"), Dropout(DROPOUT_RATIO)]
        return LayerStack(tuple(layers), SoftmaxWithLoss(), self.input_dim)

    def _check_sizes(self):
        shape = self.input_dim
        for idx, param in enumerate(self.conv_params):
            c, height, width = shape
            size, pad, stride = param["filter_size"], param["pad"], param["stride"]
            out_h, out_w = 1 + (height + 2 * pad - size) // stride, 1 + (width + 2 * pad - size) // stride
            if out_h < 1 or out_w < 1:
                raise ValueError(f"conv_param_{idx + 1} leaves no output of a {height}x{width} map")
            shape = (param["filter_num"], out_h, out_w)
            if idx % 2 == 1:
                if out_h < 2 or out_w < 2:
                    raise ValueError(f"the pooling after convolution {idx + 1} gets a {out_h}x{out_w} map: too small")
                shape = (shape[0], out_h // 2, out_w // 2)
        pooled = int(np.prod(shape))
        if pooled != POOLED_FEATURES:
            raise ValueError(f"the book's DeepConvNet sizes W7 for {POOLED_FEATURES} pooled features (64 maps of 4x4), "
                             f"but input_dim {self.input_dim} with these convolutions gives {pooled} "
                             f"({shape[0]} maps of {shape[1]}x{shape[2]}): the book's network fails on these sizes")

    # -- the network protocol (fastnum.registry) ---------------------------------

    def spec(self):
        """The network's description in run files: its constructor arguments."""
        return {"network": "DeepConvNet", "hidden": [self.hidden_size], "activation": "relu",
                "input_dim": list(self.input_dim), "conv_params": [dict(p) for p in self.conv_params]}

    @classmethod
    def from_spec(cls, spec, n_in, n_out):
        hidden = spec["hidden"]
        if not isinstance(hidden, list) or len(hidden) != 1:
            raise ValueError(f"hidden must be a list of one size for DeepConvNet, got {hidden!r}")
        if "input_dim" in spec:
            input_dim = tuple(spec["input_dim"])
        else:
            side = int(round(np.sqrt(n_in)))
            input_dim = (1, side, side)
        conv = spec.get("conv_params", DEFAULT_CONV_PARAMS)
        if not isinstance(conv, (list, tuple)) or len(conv) != 6:
            raise ValueError(f"conv_params must be a list of six dicts, got {conv!r}")
        return cls(input_dim, *[dict(p) if isinstance(p, dict) else p for p in conv], hidden_size=hidden[0],
                   output_size=n_out)

    @classmethod
    def sizes_from_params(cls, spec, params):
        channels, height, width = spec.get("input_dim", (np.shape(params["W1"])[1], 28, 28))
        return int(channels) * int(height) * int(width), int(np.shape(params["W8"])[-1])

    @classmethod
    def memory_bytes(cls, spec, n_in, n_out, batch_size):
        """About the memory training needs: parameters and gradients, a batch's activations and
        im2col matrices (kept for backprop), and the numerical gradient's perturbed networks
        (``layers.numerical.MEMORY_BUDGET``)."""
        from ..layers.numerical import MEMORY_BUDGET

        network = cls.from_spec_unchecked(spec, n_in, n_out)
        params = {key: np.empty(shape) for key, shape in network.param_shapes().items()}
        stack = network.stack
        shape, per_sample = tuple(network.input_dim), 0
        for layer in stack.layers:
            per_sample += layer.working_size(shape, params)
            shape = layer.output_shape(shape, params)
        n_params = sum(int(np.prod(s)) for s in network.param_shapes().values())
        return 8 * (4 * n_params + batch_size * per_sample) + MEMORY_BUDGET

    @classmethod
    def from_spec_unchecked(cls, spec, n_in, n_out):
        """``from_spec`` without drawing from ``np.random`` (the weights are whatever it leaves)."""
        saved = np.random.get_state()
        try:
            return cls.from_spec(spec, n_in, n_out)
        finally:
            np.random.set_state(saved)

    def param_shapes(self):
        shapes = {}
        channels = self.input_dim[0]
        for idx, param in enumerate(self.conv_params):
            shapes[f"W{idx + 1}"] = (param["filter_num"], channels, param["filter_size"], param["filter_size"])
            shapes[f"b{idx + 1}"] = (param["filter_num"],)
            channels = param["filter_num"]
        shapes.update({"W7": (POOLED_FEATURES, self.hidden_size), "b7": (self.hidden_size,),
                       "W8": (self.hidden_size, self.output_size), "b8": (self.output_size,)})
        return shapes

    def state_arrays(self):
        return {}

    def set_state_arrays(self, arrays):
        if arrays:
            raise ValueError(f"DeepConvNet has no state arrays, got {', '.join(arrays)}")

    @property
    def sample_shape(self):
        return tuple(self.input_dim)

    def summary(self):
        filters = "-".join(str(p["filter_num"]) for p in self.conv_params)
        return f"DeepConvNet (conv {filters} 3x3, pool 2x2 three times, hidden {self.hidden_size}, dropout 0.5)"

    def check_batch(self, x, t):
        self._inputs(x, t)

    # -- helpers -------------------------------------------------------------

    def _params(self):
        return as_named_params(self.params, self.param_shapes())

    def _inputs(self, x, t=UNLABELLED):
        x = as_images(x, self.input_dim)
        labels = None if t is UNLABELLED else as_labels(t, x.shape[0], self.output_size)
        return x, labels

    # -- the book's API ------------------------------------------------------

    @serialised
    def predict(self, x, train_flg=False):
        """Scores (the last layer's output), (N, output_size); with ``train_flg`` dropout drops, drawing
        its masks from ``np.random`` as the book's layers."""
        train = as_flag(train_flg, "train_flg")  # before dropout draws from np.random
        params = self._params()
        x, _ = self._inputs(x)
        return self.stack.forward(params, x, ForwardPass(train=train))[0]

    @serialised
    def loss(self, x, t):
        """The book's loss, in training mode as the book's (dropout draws its masks): softmax
        cross-entropy with the 1e-7 in the log."""
        params = self._params()
        x, labels = self._inputs(x, t)
        return self.stack.loss(params, x, labels, ForwardPass(train=True))

    @serialised
    def accuracy(self, x, t, batch_size=100):
        """Fraction of samples whose highest score (evaluation mode) is the label, in batches of
        ``batch_size``; as the book, samples past the last whole batch count in the denominator only."""
        batch_size = _positive_int(batch_size, "batch_size")
        params = self._params()
        x = _real_array(x, "x")
        self._inputs(x[:1] if x.ndim else x)  # the checks, without a float64 copy of a whole data set
        labels = as_labels(t, x.shape[0], self.output_size)
        stack = self.stack
        correct = 0
        for i in range(x.shape[0] // batch_size):
            chunk = slice(i * batch_size, (i + 1) * batch_size)
            images, _ = self._inputs(x[chunk])
            scores = stack.forward(params, images, ForwardPass(train=False))[0]
            correct += int(np.sum(np.argmax(scores, axis=1) == labels[chunk]))
        return correct / x.shape[0]

    @serialised
    def gradient(self, x, t):
        """Gradient of the loss by backpropagation (the book's ``gradient``; dropout draws its masks)."""
        params = self._params()
        x, labels = self._inputs(x, t)
        return self.stack.gradient(params, x, labels, ForwardPass(train=True))

    @serialised
    def numerical_gradient(self, x, t):
        """Central-difference gradient (h = 1e-4) of the book's loss, every parameter.

        Every entry is ``(L(p + h) - L(p - h)) / (2h)`` of the training-mode
        loss, each perturbed loss evaluated at the perturbed parameters
        (``fastnum.layers.numerical``); the dropout masks are drawn once, as
        one training pass draws them. ``params`` are left bitwise unchanged.

        Returns
        -------
        dict
            ``W1`` .. ``b8``, shaped like ``params``.
        """
        params = self._params()
        x, labels = self._inputs(x, t)
        stack = self.stack
        seconds = estimated_flops(stack, params, x.shape[0], x) / NUMPY_FLOPS_PER_SECOND["numerical_gradient"]
        with entries_progress(sum(p.size for p in params.values()), seconds, "DeepConvNet.numerical_gradient") as bar:
            return layer_stack_gradient(stack, params, x, labels, ForwardPass(train=True), H, on_entries=bar)

    # -- the book's parameter files ----------------------------------------------

    @serialised
    def save_params(self, file_name="params.pkl"):
        """Write ``params`` as the book does: a pickled dict of numpy arrays."""
        save_param_pickle(self.params, file_name)

    @serialised
    def load_params(self, file_name="params.pkl"):
        """Read a parameter file written by ``save_params`` or by the book (``ch08/deep_convnet_params.pkl``).

        Only numpy arrays of real numbers with this network's keys and
        shapes, and no NaN or inf, are accepted (a file may hold some of
        them, as the book's ``load_params`` allows); a pickle naming anything
        else is refused without running it, and ``params`` are left unchanged
        (``ValueError`` naming the file and the key) when the file does not fit.
        """
        self.params = load_param_pickle(self, file_name)
