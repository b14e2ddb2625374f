"""Small IDX files written by the tests themselves (never the network, never real MNIST)."""

import gzip
from pathlib import Path

import numpy as np

from fastnum.mnist import FILE_NAMES


def idx_images_bytes(images):
    n, rows, cols = images.shape
    header = (2051).to_bytes(4, "big") + n.to_bytes(4, "big") + rows.to_bytes(4, "big") + cols.to_bytes(4, "big")
    return header + images.astype(np.uint8).tobytes()


def idx_labels_bytes(labels):
    return (2049).to_bytes(4, "big") + len(labels).to_bytes(4, "big") + np.asarray(labels, np.uint8).tobytes()


def make_digits(rng, n):
    """Learnable fake digits: class k lights up a class-specific block of pixels."""
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 5)
        images[i, 4 + 10 * r: 12 + 10 * r, 2 + 5 * c: 6 + 5 * c] = rng.integers(100, 256, (8, 4))
        noise = rng.random((28, 28)) < 0.05
        images[i][noise] = rng.integers(1, 256, noise.sum())
    return images, labels


def write_dataset(folder, rng, n_train=300, n_test=100, compress=True):
    """Write the four IDX files into ``folder``; returns the arrays written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_t = make_digits(rng, n_train)
    test_x, test_t = make_digits(rng, n_test)
    contents = {
        "train_img": idx_images_bytes(train_x),
        "train_label": idx_labels_bytes(train_t),
        "test_img": idx_images_bytes(test_x),
        "test_label": idx_labels_bytes(test_t),
    }
    for key, data in contents.items():
        name = FILE_NAMES[key]
        if compress:
            (folder / name).write_bytes(gzip.compress(data))
        else:
            (folder / name[: -len(".gz")]).write_bytes(data)
    return (train_x, train_t), (test_x, test_t)
