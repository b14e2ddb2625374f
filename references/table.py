"""One table pairing each of fastnum's networks with its plain-numpy reference (numbagg's
``COMPARISONS``): ``tests/test_references.py`` holds every entry to 1e-10 of it, and the benchmark's
networks table (``bench/networks.py``) times it as the book's loop.

Each case builds a fastnum network at a size (``"test"``: small enough for the book's loop over every
entry; ``"bench"``: the sizes the book uses) with a batch, and describes the same network as
``references.layers`` layers, the mode its numerical gradient's loss runs in, and its weight decay.
The reference is the book's central difference over those layers, with the dropout masks a training
pass draws from ``np.random`` after the seed the fastnum call was given.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from references import layers as ref
from references.naive import central_differences


@dataclass(frozen=True)
class NetworkCase:
    """A fastnum network and its reference."""

    label: str
    build: Callable
    """``build(size, rng)`` -> (network, x, t); draws the network's weights after ``np.random.seed(0)``."""
    layers: Callable
    """``layers(network)`` -> the ``references.layers`` description."""
    train: bool = False
    """Whether the numerical gradient's loss runs in training mode (batch statistics, dropout)."""
    decay: Callable = None
    """``decay(network)`` -> ((key, lambda), ...) of the loss's weight decay."""
    specialised: Callable = None
    """``specialised(network, x, labels, masks)`` -> the loss as a function of ``params``: the network's
    own plain-numpy statement (``references.naive``, ``multi_layer``, ``conv``), the book's loop at the
    book's cost, which the benchmark times; the tests check it equals the layers' loss."""

    def labels(self, t):
        labels = np.asarray(t)
        return np.argmax(labels, axis=1) if labels.ndim == 2 and labels.shape[1] > 1 else labels.reshape(-1)

    def masks(self, network, x, seed):
        """The dropout masks (layer index -> mask) a training pass draws after ``np.random.seed(seed)``."""
        masks = {}
        if self.train:
            np.random.seed(seed)
            ref.forward(self.layers(network), network.params, x, True, masks)
        return masks

    def layers_loss(self, network, x, labels, masks):
        """The loss over ``references.layers`` as a function of ``params``."""
        layers = self.layers(network)
        decay = () if self.decay is None else self.decay(network)
        return lambda params: ref.loss(layers, params, x, labels, train=self.train, masks=masks,
                                       weight_decay=decay)

    def reference(self, network, x, t, entries, seed):
        """The book's loop on ``entries`` ((key, index) pairs), with the masks ``np.random.seed(seed)``
        gives a training pass (``np.random`` is left reseeded): over the specialised statement where
        the case has one, else over the layers."""
        labels = self.labels(t)
        masks = self.masks(network, x, seed)
        loss_of = (self.specialised or self.layers_loss)(network, x, labels, masks)
        return central_differences(network.params, entries, loss_of)


def _images(rng, n, shape, zero_fraction=0.5):
    x = rng.random((n,) + tuple(shape))
    x[rng.random(x.shape) < zero_fraction] = 0.0
    return x


def _two_layer(chapter, activation):
    def build(size, rng):
        import fastnum
        import fastnum.ch05

        np.random.seed(0)
        n_in, n_hidden, n = (12, 5, 4) if size == "test" else (784, 50, 100)
        if chapter == 5:
            net = fastnum.ch05.TwoLayerNet(n_in, n_hidden, 10, weight_init_std=0.5 if size == "test" else 0.01)
        else:
            net = fastnum.TwoLayerNet(n_in, n_hidden, 10, weight_init_std=0.5 if size == "test" else 0.01,
                                      activation=activation)
        return net, _images(rng, n, (n_in,)), rng.integers(0, 10, n)

    def layers(net):
        return [("affine", "W1", "b1"), (activation,), ("affine", "W2", "b2")]

    def specialised(net, x, labels, masks):
        from references import naive

        return lambda params: naive.loss(params, x, labels, activation)

    return {"build": build, "layers": layers, "specialised": specialised}


def _multi_layer(hidden, batchnorm=False, dropout=None, decay=0.0, activation="relu"):
    def build(size, rng):
        import fastnum

        np.random.seed(0)
        sizes, n_in, n = (hidden, 784, 100) if size == "bench" else ([6, 5, 4][:len(hidden)], 10, 5)
        net = fastnum.MultiLayerNetExtend(n_in, sizes, 4 if size == "test" else 10, activation=activation,
                                          weight_decay_lambda=decay, use_dropout=dropout is not None,
                                          dropout_ration=dropout or 0.5, use_batchnorm=batchnorm)
        return net, _images(rng, n, (n_in,)), rng.integers(0, net.output_size, n)

    def layers(net):
        description = []
        for k in range(1, net.hidden_layer_num + 1):
            description.append(("affine", f"W{k}", f"b{k}"))
            if net.use_batchnorm:
                description.append(("batchnorm", f"gamma{k}", f"beta{k}"))
            description.append((net.activation,))
            if net.use_dropout:
                description.append(("dropout", net.dropout_ration))
        top = net.hidden_layer_num + 1
        return description + [("affine", f"W{top}", f"b{top}")]

    def weight_decay(net):
        lam = net.weight_decay_lambda
        return tuple((f"W{k}", lam) for k in range(1, net.hidden_layer_num + 2)) if lam else ()

    def specialised(net, x, labels, masks):
        from references import multi_layer

        config = multi_layer.NetConfig(net.hidden_layer_num, net.activation, net.weight_decay_lambda,
                                       net.use_batchnorm, net.dropout_ration if net.use_dropout else None)
        listed = [masks[k] for k in sorted(masks)] or None  # one per hidden layer, in order
        return lambda params: multi_layer.loss(params, x, labels, config, True, listed)

    # the book's MultiLayerNetExtend.numerical_gradient takes the loss with train_flg=True
    return {"build": build, "layers": layers, "train": True, "decay": weight_decay, "specialised": specialised}


def _simple_convnet(toy):
    def build(size, rng):
        import fastnum

        np.random.seed(0)
        if toy or size == "test":  # ch07/gradient_check.py's toy network (smaller for the book's loop in tests)
            filters, hidden = (10, 10) if size == "bench" else (3, 4)
            net = fastnum.SimpleConvNet(input_dim=(1, 10, 10), hidden_size=hidden, output_size=10,
                                        weight_init_std=0.01 if size == "bench" else 0.3,
                                        conv_param={"filter_num": filters, "filter_size": 3, "pad": 0, "stride": 1})
            n = 1 if size == "bench" else 2
            return net, rng.random((n, 1, 10, 10)), rng.integers(0, 10, n)
        net = fastnum.SimpleConvNet()
        return net, _images(rng, 10, (1, 28, 28), 0.8), rng.integers(0, 10, 10)

    def layers(net):
        c = net.conv_param
        return [("conv", "W1", "b1", c["stride"], c["pad"]), ("relu",), ("pool", 2, 2, 2), ("affine", "W2", "b2"),
                ("relu",), ("affine", "W3", "b3")]

    def specialised(net, x, labels, masks):
        from references import conv

        c = net.conv_param
        return lambda params: conv.loss(params, x, labels, c["stride"], c["pad"])

    return {"build": build, "layers": layers, "specialised": specialised}


DEEP_CONVNET_NARROW = [{"filter_num": n, "filter_size": 3, "pad": p, "stride": 1}
                       for n, p in ((2, 1), (2, 1), (2, 1), (2, 2), (2, 1), (64, 1))]
"""DeepConvNet's convolutions with two filters where the book has 16 or 32 (the last keeps 64: W7 is
sized for 64 x 4 x 4 pooled features): the book's loop over its entries takes seconds, not hours."""


def _deep_convnet(size, rng):
    import fastnum

    np.random.seed(0)
    if size == "test":
        net = fastnum.DeepConvNet((1, 28, 28), *DEEP_CONVNET_NARROW, hidden_size=6)
        n = 2
    else:
        net, n = fastnum.DeepConvNet(), 10
    return net, _images(rng, n, (1, 28, 28), 0.8), rng.integers(0, 10, n)


def _deep_convnet_layers(net):
    return ref.deep_convnet_layers(net.conv_params)


NETWORKS = {
    "two_layer_sigmoid": NetworkCase("TwoLayerNet (ch04), sigmoid", **_two_layer(4, "sigmoid")),
    "two_layer_ch05": NetworkCase("ch05 TwoLayerNet (ReLU)", **_two_layer(5, "relu")),
    "multi_layer_relu": NetworkCase("MultiLayerNet, ReLU, 3 hidden layers", **_multi_layer([100, 100, 100])),
    "multi_layer_extend": NetworkCase("MultiLayerNetExtend, sigmoid, dropout 0.3, weight decay 0.1",
                                      **_multi_layer([100, 100], dropout=0.3, decay=0.1, activation="sigmoid")),
    "multi_layer_batchnorm": NetworkCase("MultiLayerNetExtend, batch norm, weight decay 0.05",
                                         **_multi_layer([100, 100], batchnorm=True, decay=0.05)),
    "simple_convnet": NetworkCase("SimpleConvNet (ch07)", **_simple_convnet(False)),
    "simple_convnet_toy": NetworkCase("SimpleConvNet, ch07/gradient_check.py's toy", **_simple_convnet(True)),
    "deep_convnet": NetworkCase("DeepConvNet (ch08)", _deep_convnet, _deep_convnet_layers, train=True),
}
"""Every fastnum network, by name: the table the tests and the benchmark read."""

