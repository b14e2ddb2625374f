"""``SimpleConvNet``: the book's chapter-7 network with a compiled exact numerical gradient.

The facade validates, draws the book's initial weights, runs predict, loss
and backprop in numpy (``_passes.py``) and the numerical gradient in the
compiled kernels (``_numgrad.py``), and reads and writes the book's pickles.
"""

import numpy as np

from .._concurrency import ThreadSafeNetwork, serialised
from .._config import H
from .._first_run import NUMPY_FLOPS_PER_SECOND, numpy_path
from .._param_files import load_param_pickle, save_param_pickle
from .._validate import UNLABELLED, _real_array, as_images, as_labels, as_named_params
from .._workers import launch
from ..layers import Affine, Convolution, ForwardPass, LayerStack, Pooling, Relu, SoftmaxWithLoss
from ..layers.numerical import estimated_flops
from ..layers.numerical import numerical_gradient as layer_stack_gradient
from ..multi_layer._buffers import pack_layers, unpack_hidden_weights
from ..multi_layer._passes import cross_entropy
from ..progress import first_call_notice
from ._numgrad import ConvNetGradient
from ._passes import backward, conv_shape, forward

PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")


def _positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class SimpleConvNet(ThreadSafeNetwork):
    """The book's ``SimpleConvNet`` (``ch07/simple_convnet.py``).

    conv - relu - pool (2x2, stride 2) - affine - relu - affine - softmax with loss.

    Parameters
    ----------
    input_dim : (channels, height, width), default (1, 28, 28)
    conv_param : dict, default {'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1}
    hidden_size : int, default 100
    output_size : int, default 10
    weight_init_std : float, default 0.01
        ``W1``, ``W2``, ``W3`` are ``weight_init_std * np.random.randn(...)``
        in that order and the biases zero, as the book: a seed gives the book's weights.

    Attributes
    ----------
    params : dict
        ``W1`` (filters, channels, size, size), ``b1``, ``W2`` (pooled features,
        hidden), ``b2``, ``W3`` (hidden, output), ``b3``; float64, yours to update
        or replace.

    Notes
    -----
    The book sizes ``W2`` as ``int(filters * (conv_out / 2)**2)`` from the
    input's height; sizes for which that is not the number of pooled features
    (an odd convolution output, non-square images, strides that do not divide
    evenly) make the book's network fail at its first forward pass, and are
    refused here when the network is built. The methods hold the network's
    lock: Python threads sharing one network take turns.
    """

    GRADIENTS = ("numerical", "backprop")
    """The gradient kinds ``fit`` and ``fastnum train`` can ask of it."""
    COMPILE_SECONDS = {"numerical_gradient": 14.0}
    """About what compiling the numerical gradient's kernels costs on a 2-core machine (measured)."""
    COMPILE_SPECS = ({"network": "SimpleConvNet", "hidden": [100], "activation": "relu",
                      "conv_param": {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}},)
    """Specs whose kernels are every kernel of the class."""
    READS_FLOAT32 = False
    """Its numpy passes and kernels take float64 images: ``fit`` converts each batch once."""

    def __init__(self, input_dim=(1, 28, 28), conv_param=None, hidden_size=100, output_size=10,
                 weight_init_std=0.01):
        if conv_param is None:
            conv_param = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
        if not hasattr(input_dim, "__len__") or len(input_dim) != 3:
            raise ValueError(f"input_dim must be (channels, height, width), got {input_dim!r}")
        input_dim = tuple(_positive_int(d, "every entry of input_dim") for d in input_dim)
        missing = [k for k in ("filter_num", "filter_size", "pad", "stride") if k not in conv_param]
        if missing:
            raise ValueError(f"conv_param lacks {', '.join(missing)} (it needs filter_num, filter_size, pad, stride)")
        filter_num = _positive_int(conv_param["filter_num"], "conv_param['filter_num']")
        filter_size = _positive_int(conv_param["filter_size"], "conv_param['filter_size']")
        pad = _positive_int(conv_param["pad"], "conv_param['pad']", minimum=0)
        stride = _positive_int(conv_param["stride"], "conv_param['stride']")
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        self.output_size = _positive_int(output_size, "output_size")
        if isinstance(weight_init_std, bool) or not isinstance(weight_init_std, (int, float, np.integer, np.floating)) \
                or not np.isfinite(weight_init_std):
            raise ValueError(f"weight_init_std must be a finite number, got {weight_init_std!r}")
        shape = conv_shape(input_dim, filter_num, filter_size, pad, stride)
        if shape.conv_h < 2 or shape.conv_w < 2:
            raise ValueError(f"a {filter_size}x{filter_size} filter with pad {pad} and stride {stride} leaves a "
                             f"{shape.conv_h}x{shape.conv_w} feature map of a {input_dim[1]}x{input_dim[2]} image: "
                             "too small for the 2x2 pooling")
        conv_output_size = (input_dim[1] - filter_size + 2 * pad) / stride + 1  # the book's formula
        book_pooled = int(filter_num * (conv_output_size / 2) * (conv_output_size / 2))
        if book_pooled != shape.pooled_size:
            raise ValueError(
                f"the book sizes W2 for {book_pooled} pooled features but its layers produce "
                f"{shape.pooled_size} ({filter_num} maps of {shape.pool_h}x{shape.pool_w}) for input_dim "
                f"{input_dim} and conv_param {conv_param}: the book's SimpleConvNet fails on these sizes "
                "(it needs square images whose convolution output is even)")
        self.input_dim = input_dim
        self.activation = "relu"  # what runs' files record of every network
        self.conv_param = {"filter_num": filter_num, "filter_size": filter_size, "pad": pad, "stride": stride}
        self._shape = shape
        self.params = {}
        self.params["W1"] = weight_init_std * np.random.randn(filter_num, input_dim[0], filter_size, filter_size)
        self.params["b1"] = np.zeros(filter_num)
        self.params["W2"] = weight_init_std * np.random.randn(shape.pooled_size, self.hidden_size)
        self.params["b2"] = np.zeros(self.hidden_size)
        self.params["W3"] = weight_init_std * np.random.randn(self.hidden_size, self.output_size)
        self.params["b3"] = np.zeros(self.output_size)
        self._drivers = {}

    # -- the network protocol (fastnum.registry) ---------------------------------

    def spec(self):
        """The network's description in run files: its convolution, hidden size and input shape."""
        return {"network": "SimpleConvNet", "hidden": [self.hidden_size], "activation": "relu",
                "conv_param": dict(self.conv_param), "input_dim": list(self.input_dim)}

    @classmethod
    def from_spec(cls, spec, n_in, n_out):
        """A new network for ``spec``; without ``input_dim``, one channel of square ``n_in``-pixel images."""
        hidden = spec["hidden"]
        if not isinstance(hidden, list) or len(hidden) != 1:
            raise ValueError(f"hidden must be a list of one size for SimpleConvNet, got {hidden!r}")
        if "input_dim" in spec:
            input_dim = tuple(spec["input_dim"])
        else:
            side = int(round(np.sqrt(n_in)))
            input_dim = (1, side, side)
        conv_param = spec["conv_param"]
        if not isinstance(conv_param, dict):
            raise ValueError(f"conv_param must be a dict, got {conv_param!r}")
        return cls(input_dim, dict(conv_param), hidden[0], n_out)

    @classmethod
    def sizes_from_params(cls, spec, params):
        """(pixels per image, output_size) of the network that ``params`` belong to."""
        channels, height, width = spec.get("input_dim", (np.shape(params["W1"])[1], 28, 28))
        return int(channels) * int(height) * int(width), int(np.shape(params["W3"])[-1])

    @classmethod
    def memory_bytes(cls, spec, n_in, n_out, batch_size):
        """About the memory training needs: parameters, gradients, the convolution's caches and the
        dense layers' per-sample buffers."""
        conv = spec["conv_param"]
        channels, height, width = spec.get("input_dim", (1, int(round(np.sqrt(n_in))), int(round(np.sqrt(n_in)))))
        shape = conv_shape((channels, height, width), conv["filter_num"], conv["filter_size"], conv["pad"],
                           conv["stride"])
        hidden = spec["hidden"][0]
        pooled = shape.pooled_size
        n_params = (shape.filters * (channels * shape.filter_size ** 2 + 1) + (pooled + 1) * hidden
                    + (hidden + 1) * n_out)
        conv_cache = batch_size * (channels * (height + 2 * shape.pad) * (width + 2 * shape.pad)
                                   + 2 * shape.filters * shape.conv_h * shape.conv_w)
        dense = batch_size * 12 * pooled + hidden * 11 * pooled
        return 8 * (4 * n_params + conv_cache + dense)

    def param_shapes(self):
        """Every parameter's shape, in the book's order."""
        s = self._shape
        return {"W1": (s.filters, s.channels, s.filter_size, s.filter_size), "b1": (s.filters,),
                "W2": (s.pooled_size, self.hidden_size), "b2": (self.hidden_size,),
                "W3": (self.hidden_size, self.output_size), "b3": (self.output_size,)}

    def state_arrays(self):
        """Arrays besides ``params`` a run keeps: none for this network."""
        return {}

    def set_state_arrays(self, arrays):
        if arrays:
            raise ValueError(f"SimpleConvNet has no state arrays, got {', '.join(arrays)}")

    @property
    def sample_shape(self):
        """One image as the network takes it: (channels, height, width)."""
        return tuple(self.input_dim)

    def summary(self):
        """The network in a few words: ``SimpleConvNet (conv 30 5x5, pool 2x2, hidden 100)``."""
        c = self.conv_param
        return (f"SimpleConvNet (conv {c['filter_num']} {c['filter_size']}x{c['filter_size']}, pool 2x2, "
                f"hidden {self.hidden_size})")

    def _gradient_calls(self, params, x, labels):
        """(driver, the numerical gradient's (kernel, arguments) pairs) for a batch like ``x``."""
        driver = self._drivers.get(x.shape[0])
        if driver is None:
            self._drivers.clear()
            driver = self._drivers[x.shape[0]] = ConvNetGradient(self._shape, self.hidden_size, self.output_size,
                                                                 x.shape[0])
        dense = pack_layers([params["W2"], params["W3"]], [params["b2"], params["b3"]])
        return driver, driver.calls(x, labels, params["W1"], params["b1"], dense, H)

    def kernel_calls(self, method, x, labels):
        """The (kernel, arguments) pairs ``method`` runs on ``x``: the numerical gradient's (the other
        methods are numpy)."""
        if method != "numerical_gradient":
            return []
        x, labels = self._inputs(x, UNLABELLED if labels is None else labels)
        return self._gradient_calls(self._params(), x, labels)[1]

    @property
    def stack(self):
        """The network as the book's layers (``fastnum.layers``)."""
        c = self.conv_param
        return LayerStack((Convolution("W1", "b1", c["stride"], c["pad"]), Relu(), Pooling(2, 2, 2), Affine("W2", "b2"),
                           Relu(), Affine("W3", "b3")), SoftmaxWithLoss(), tuple(self.input_dim))

    def numpy_seconds(self, method, n_samples, x=None):
        """About how long the numpy path of ``method`` takes on ``n_samples`` samples (``x``, when given: its
        distinct pixel values count)."""
        shapes = {key: np.empty(shape) for key, shape in self.param_shapes().items()}
        return estimated_flops(self.stack, shapes, n_samples, x) / NUMPY_FLOPS_PER_SECOND["numerical_gradient"]

    def check_batch(self, x, t):
        """Raise the error a method would raise for this batch (shape, dtype, labels); compute nothing."""
        self._inputs(x, t)

    # -- helpers -------------------------------------------------------------

    def _params(self):
        s = self._shape
        expected = {"W1": (s.filters, s.channels, s.filter_size, s.filter_size), "b1": (s.filters,),
                    "W2": (s.pooled_size, self.hidden_size), "b2": (self.hidden_size,),
                    "W3": (self.hidden_size, self.output_size), "b3": (self.output_size,)}
        return as_named_params(self.params, expected)

    def _inputs(self, x, t=UNLABELLED):
        x = as_images(x, self.input_dim)
        labels = None if t is UNLABELLED else as_labels(t, x.shape[0], self.output_size)
        return x, labels

    # -- the book's API ------------------------------------------------------

    @serialised
    def predict(self, x):
        """Scores (the last affine layer's output), (N, output_size)."""
        params = self._params()
        x, _ = self._inputs(x)
        return forward(self._shape, params, x)[0]

    @serialised
    def loss(self, x, t):
        """The book's loss: softmax cross-entropy with the 1e-7 in the log."""
        params = self._params()
        x, labels = self._inputs(x, t)
        return float(cross_entropy(forward(self._shape, params, x)[0], labels))

    @serialised
    def accuracy(self, x, t, batch_size=100):
        """Fraction of samples whose highest score is the label, in batches of ``batch_size``.

        As the book: samples past the last whole batch are not evaluated but
        count in the denominator.
        """
        batch_size = _positive_int(batch_size, "batch_size")
        params = self._params()
        x = _real_array(x, "x")
        self._inputs(x[:1] if x.ndim else x)  # the checks, without a float64 copy of a whole data set
        labels = as_labels(t, x.shape[0], self.output_size)
        correct = 0
        for i in range(x.shape[0] // batch_size):
            chunk = slice(i * batch_size, (i + 1) * batch_size)
            images, _ = self._inputs(x[chunk])
            correct += np.sum(np.argmax(forward(self._shape, params, images)[0], axis=1) == labels[chunk])
        return correct / x.shape[0]

    @serialised
    def gradient(self, x, t):
        """Gradient of the loss by backpropagation (the book's ``gradient``)."""
        params = self._params()
        x, labels = self._inputs(x, t)
        scores, trace = forward(self._shape, params, x)
        return backward(self._shape, params, scores, labels, trace)

    @serialised
    def numerical_gradient(self, x, t):
        """Central-difference gradient (h = 1e-4) of the book's loss, every parameter.

        Every entry is ``(L(p + h) - L(p - h)) / (2h)``, each perturbed loss
        evaluated at the perturbed parameters, compiled and parallel
        (``fastnum/conv/_numgrad.py``); ``params`` are left bitwise unchanged.

        Returns
        -------
        dict
            ``W1``, ``b1``, ``W2``, ``b2``, ``W3``, ``b3``, shaped like ``params``.
        """
        params = self._params()
        x, labels = self._inputs(x, t)
        if numpy_path(self, "numerical_gradient", x, labels):
            return layer_stack_gradient(self.stack, params, x, labels, ForwardPass(train=False), H)
        driver, calls = self._gradient_calls(params, x, labels)
        with first_call_notice("SimpleConvNet.numerical_gradient"):
            for call in calls:
                launch(*call)
        grads = driver.dense.grads
        (W2,) = unpack_hidden_weights(grads.W_T, grads.W_T_off, driver.dense.sizes)
        return {"W1": driver.grads.W1.copy(), "b1": driver.grads.b1.copy(), "W2": W2, "b2": grads.b.copy(),
                "W3": driver.dense.top_grads.W2.copy(), "b3": driver.dense.top_grads.b2.copy()}

    # -- the book's parameter files ----------------------------------------------

    @serialised
    def save_params(self, file_name="params.pkl"):
        """Write ``params`` as the book does: a pickled dict of numpy arrays."""
        save_param_pickle(self.params, file_name)

    @serialised
    def load_params(self, file_name="params.pkl"):
        """Read a parameter file written by ``save_params`` or by the book's ``save_params``.

        Only a dict of numpy arrays of real numbers with exactly this
        network's keys and shapes, and no NaN or inf, is accepted: a pickle
        naming anything else is refused without running it, and ``params``
        are left unchanged (``ValueError`` naming the file and the key) when
        the file does not fit.
        """
        self.params = load_param_pickle(self, file_name)
