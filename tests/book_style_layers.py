"""Layer classes shaped as the book's ``common/layers.py`` (names, attributes, ``forward``), written
for the tests from ``references.layers``: what a reader's own network built from the book's layers
looks like to ``fastnum.numerical_gradient_of``. Not the book's code: each forward pass is the
reference's definition of the layer."""

from collections import OrderedDict

import numpy as np

from references import layers as ref


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        return x.reshape(x.shape[0], -1) @ self.W + self.b


class Relu:
    def forward(self, x):
        return np.where(x > 0, x, 0.0)


class Sigmoid:
    def forward(self, x):
        return 1.0 / (1.0 + np.exp(-x))


class Dropout:
    def __init__(self, dropout_ratio=0.5):
        self.dropout_ratio = dropout_ratio

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)


class BatchNormalization:
    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        self.gamma, self.beta, self.momentum = gamma, beta, momentum
        self.running_mean, self.running_var = running_mean, running_var

    def forward(self, x, train_flg=True):
        flat = x.reshape(x.shape[0], -1)
        if self.running_mean is None:
            self.running_mean = np.zeros(flat.shape[1])
            self.running_var = np.zeros(flat.shape[1])
        if train_flg:
            mean = flat.mean(axis=0)
            var = ((flat - mean) ** 2).mean(axis=0)
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mean
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var
        else:
            mean, var = self.running_mean, self.running_var
        out = self.gamma * ((flat - mean) / np.sqrt(var + ref.BN_EPS)) + self.beta
        return out.reshape(x.shape)


class Convolution:
    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad

    def forward(self, x):
        return ref.conv(x, self.W, self.b, self.stride, self.pad)


class Pooling:
    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad

    def forward(self, x):
        return ref.pool(x, self.pool_h, self.pool_w, self.stride)


class SoftmaxWithLoss:
    def forward(self, x, t):
        labels = np.argmax(t, axis=1) if t.ndim == 2 else t
        return ref.softmax_cross_entropy(x, labels)


class Network:
    """A network as the book's classes hold one: ``params``, ``layers`` (an OrderedDict), ``lastLayer``,
    ``predict(x, train_flg)`` and ``loss(x, t)`` (in training mode when ``train_loss``), weight decay
    over the affine weights."""

    def __init__(self, description, params, train_loss=False, weight_decay_lambda=0.0, running=None):
        self.params = params
        self.train_loss = train_loss
        self.weight_decay_lambda = weight_decay_lambda
        self.layers = OrderedDict()
        running = running or {}
        for index, layer in enumerate(description):
            kind = layer[0]
            name = f"{kind}{index}"
            if kind == "affine":
                self.layers[name] = Affine(params[layer[1]], params[layer[2]])
            elif kind == "relu":
                self.layers[name] = Relu()
            elif kind == "sigmoid":
                self.layers[name] = Sigmoid()
            elif kind == "batchnorm":
                mean, var = running.get(index, (None, None))
                self.layers[name] = BatchNormalization(params[layer[1]], params[layer[2]], running_mean=mean,
                                                       running_var=var)
            elif kind == "dropout":
                self.layers[name] = Dropout(layer[1])
            elif kind == "conv":
                self.layers[name] = Convolution(params[layer[1]], params[layer[2]], layer[3], layer[4])
            elif kind == "pool":
                self.layers[name] = Pooling(layer[1], layer[2], layer[3])
        self.lastLayer = SoftmaxWithLoss()

    def predict(self, x, train_flg=False):
        for layer in self.layers.values():
            if isinstance(layer, (Dropout, BatchNormalization)):
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def loss(self, x, t):
        decay = sum(0.5 * self.weight_decay_lambda * np.sum(layer.W ** 2) for layer in self.layers.values()
                    if isinstance(layer, Affine))
        return self.lastLayer.forward(self.predict(x, self.train_loss), t) + decay
