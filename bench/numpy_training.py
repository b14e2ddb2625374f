"""The reference training run: the book's ``ch04/train_neuralnet.py`` with backprop, in plain numpy.

    python -m bench.numpy_training [--epochs 16] [--data-dir DIR] [--blas-threads N]

What a reader runs with the book's own code and ``network.gradient``: the
book's ``TwoLayerNet`` (``np.dot``, sigmoid, softmax with the row maximum
subtracted, ``cross_entropy_error`` with its 1e-7), built after
``np.random.seed(seed)``, batches drawn with ``np.random.choice``, the
accuracy of the whole training and test sets once per epoch and after the
last step. Written here from the book's formulas (never imported from the
book), so the benchmark can time it next to ``fastnum train`` on the same
batches. Prints one JSON line.
"""

import argparse
import json
import sys
import time

import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


class BookTwoLayerNet:
    """The book's chapter-4 network in plain numpy (labels as class indices)."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
        self.params = {
            "W1": weight_init_std * np.random.randn(input_size, hidden_size),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * np.random.randn(hidden_size, output_size),
            "b2": np.zeros(output_size),
        }

    def predict(self, x):
        p = self.params
        z1 = sigmoid(np.dot(x, p["W1"]) + p["b1"])
        return softmax(np.dot(z1, p["W2"]) + p["b2"])

    def loss(self, x, t):
        return cross_entropy_error(self.predict(x), t)

    def accuracy(self, x, t):
        return np.sum(np.argmax(self.predict(x), axis=1) == t) / float(x.shape[0])

    def gradient(self, x, t):
        p = self.params
        batch_num = x.shape[0]
        a1 = np.dot(x, p["W1"]) + p["b1"]
        z1 = sigmoid(a1)
        y = softmax(np.dot(z1, p["W2"]) + p["b2"])
        dy = y.copy()
        dy[np.arange(batch_num), t] -= 1
        dy /= batch_num
        dz1 = np.dot(dy, p["W2"].T)
        da1 = (1.0 - z1) * z1 * dz1
        return {"W1": np.dot(x.T, da1), "b1": np.sum(da1, axis=0), "W2": np.dot(z1.T, dy), "b2": np.sum(dy, axis=0)}


def train(x_train, t_train, x_test, t_test, iters, batch_size=100, learning_rate=0.1, hidden=50, seed=0):
    """The book's loop; returns (final train acc, final test acc, seconds of the loop)."""
    np.random.seed(seed)
    network = BookTwoLayerNet(x_train.shape[1], hidden, 10)
    train_size = x_train.shape[0]
    iter_per_epoch = max(train_size / batch_size, 1)
    train_acc = test_acc = None
    start = time.perf_counter()
    for i in range(iters):
        batch_mask = np.random.choice(train_size, batch_size)
        x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
        grad = network.gradient(x_batch, t_batch)
        for key in ("W1", "b1", "W2", "b2"):
            network.params[key] -= learning_rate * grad[key]
        network.loss(x_batch, t_batch)
        if i % iter_per_epoch == 0 or i == iters - 1:
            train_acc = network.accuracy(x_train, t_train)
            test_acc = network.accuracy(x_test, t_test)
    return train_acc, test_acc, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=16)
    parser.add_argument("--data-dir")
    parser.add_argument("--blas-threads", type=int, default=None)
    args = parser.parse_args(argv)
    wall_start = time.perf_counter()
    from threadpoolctl import threadpool_limits

    from fastnum import load_mnist

    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        (x_train, t_train), (x_test, t_test) = load_mnist(data_dir=args.data_dir, download=False)
        iters = int(round(args.epochs * max(x_train.shape[0] / 100, 1)))
        train_acc, test_acc, loop_seconds = train(x_train, t_train, x_test, t_test, iters)
    print(json.dumps({"iters": iters, "final_train_acc": float(train_acc), "final_test_acc": float(test_acc),
                      "loop_seconds": loop_seconds, "wall_seconds": time.perf_counter() - wall_start,
                      "blas_threads": args.blas_threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
