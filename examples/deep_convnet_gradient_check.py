"""Chapter 7's gradient check on chapter 8's DeepConvNet, with real MNIST images.

The book checks backprop against the numerical gradient on small networks
only (``ch05/gradient_check.py``, ``ch07/gradient_check.py``): its loop would
need about 10^6 forward passes of DeepConvNet per image.  This script does the
same check on the full DeepConvNet with fastnum::

    python examples/deep_convnet_gradient_check.py                 # 1 test image, freshly initialised weights
    python examples/deep_convnet_gradient_check.py --images 3
    python examples/deep_convnet_gradient_check.py --params ch08/deep_convnet_params.pkl   # the book's trained weights

and prints, like the book's script, the mean absolute difference between the
two gradients for every parameter, next to the mean size of the gradient.
Both gradients use the same dropout masks (``np.random`` is seeded the same
before each call).  A ReLU input within a step ``h`` of zero, or two pooled
values within ``h`` of each other, make single entries of a central
difference differ from the derivative (the numerical gradient is the exact
``(L(p+h) - L(p-h)) / 2h``, not an approximation of backprop), so the
trained network, whose activations sit nearer such kinks, shows larger
differences than a fresh one on some keys.

Each image costs about a minute on two cores (``--narrow`` runs a network
with two filters per convolution, in seconds, to try the script).
"""

import argparse
import sys
import time

import numpy as np

import fastnum
from fastnum import load_mnist

NARROW_CONVOLUTIONS = [{"filter_num": n, "filter_size": 3, "pad": p, "stride": 1}
                       for n, p in ((2, 1), (2, 1), (2, 1), (2, 2), (2, 1), (64, 1))]
"""Two filters where the book has 16 or 32; the last keeps 64 (W7 is sized for 64 x 4 x 4 features)."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1, help="test images in the batch (default 1)")
    parser.add_argument("--first", type=int, default=0, help="index of the first test image (default 0)")
    parser.add_argument("--params", help="a parameter file in the book's format (ch08/deep_convnet_params.pkl)")
    parser.add_argument("--seed", type=int, default=0, help="np.random seed of the weights and dropout masks")
    parser.add_argument("--data-dir", help="folder holding the MNIST IDX files")
    parser.add_argument("--no-verify-data", action="store_true", help="accept IDX files that are not MNIST's")
    parser.add_argument("--narrow", action="store_true", help="two filters per convolution: a quick try")
    args = parser.parse_args(argv)
    if args.images < 1 or args.first < 0:
        parser.error("--images must be at least 1 and --first at least 0")
    if args.narrow and args.params:
        parser.error("--params holds the book's DeepConvNet weights, which do not fit --narrow")
    return args


def gradient_check(network, x, t, seed):
    """Numerical and backprop gradients of one batch under the same dropout masks, and their timings."""
    np.random.seed(seed)
    start = time.perf_counter()
    numerical = network.numerical_gradient(x, t)
    numerical_seconds = time.perf_counter() - start
    np.random.seed(seed)
    start = time.perf_counter()
    backprop = network.gradient(x, t)
    backprop_seconds = time.perf_counter() - start
    return numerical, backprop, numerical_seconds, backprop_seconds


def main(argv=None):
    args = parse_args(argv)
    (_, _), (x_test, t_test) = load_mnist(normalize=True, flatten=False, one_hot_label=True,
                                          data_dir=args.data_dir, verify=not args.no_verify_data)
    if args.first + args.images > len(x_test):
        sys.exit(f"error: the test set has {len(x_test)} images, --first {args.first} --images {args.images} asks "
                 f"for more")
    x = x_test[args.first:args.first + args.images]
    t = t_test[args.first:args.first + args.images]

    np.random.seed(args.seed)
    if args.narrow:
        network = fastnum.DeepConvNet((1, 28, 28), *NARROW_CONVOLUTIONS)
    else:
        network = fastnum.DeepConvNet()
    if args.params:
        network.load_params(args.params)
    size = sum(p.size for p in network.params.values())
    print(f"DeepConvNet{' (narrow)' if args.narrow else ''}: {size:,} parameters, {len(x)} test image(s), "
          f"loss {network.loss(x, t):.6f}")

    numerical, backprop, numerical_seconds, backprop_seconds = gradient_check(network, x, t, args.seed)
    print(f"numerical gradient {numerical_seconds:.1f} s ({2 * size:,} perturbed losses), "
          f"backprop {backprop_seconds * 1e3:.0f} ms")
    print(f"{'key':>4} {'mean |numerical - backprop|':>28} {'mean |backprop|':>16} {'entries within 1e-6':>20}")
    for key in network.params:
        difference = np.abs(numerical[key] - backprop[key])
        print(f"{key:>4} {difference.mean():28.3e} {np.mean(np.abs(backprop[key])):16.3e} "
              f"{np.mean(difference <= 1e-6):20.1%}")
    if not args.params:
        print("(zero biases and MNIST's blank background put many convolution outputs exactly on a ReLU's kink,\n"
              " where the central difference is half the slope and backprop takes 0: the b keys show it)")
    return numerical, backprop


if __name__ == "__main__":
    main()
