"""Where one training step spends its time: each kernel of the incremental
numerical gradient, and the rest of the book's step, timed separately.

    python -m bench.profile_step [--data-dir DIR] [--repeats 30] [--threads N]
"""

import argparse
import time

import numba
import numpy as np

from bench.data import load_batches
from fastnum import TwoLayerNet
from fastnum._config import H
from fastnum._workers import new_counters, run_parallel
from fastnum.kernels.perturbed_losses import Gradients
from fastnum.two_layer import _numgrad_incremental as inc
from fastnum.two_layer._forward import GRADIENT_CACHES


def median_ms(func, repeats):
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def profile(network, x, t, repeats):
    """Median milliseconds of each stage of ``numerical_gradient`` and of a training step."""
    params = network._params()
    W1, b1, W2, b2 = params
    x64, labels, _ = network._inputs(x, t)
    relu = network._relu
    ws = network._driver(x64.shape[0]).incremental()
    fw, dv = ws.forward, ws.distinct
    grads = Gradients(W1=np.empty_like(W1), b1=np.empty_like(b1), W2=np.empty_like(W2), b2=np.empty_like(b2))
    def run(worker, *args):
        return lambda: run_parallel(worker, (new_counters(), *args))

    prepare = lambda: network._forward(x64, params, GRADIENT_CACHES, labels)  # noqa: E731
    prepare()
    stages = {
        "checks and float64 copy of the batch": lambda: network._inputs(x, t),
        "forward pass alone (sample_pass_worker, FORWARD)": lambda: network._forward(x64, params),
        "distinct pixel values alone (distinct_pixel_values_worker)": run(inc.distinct_pixel_values_worker, x64, H,
                                                                          dv),
        "forward, distinct values and caches (gradient_caches_worker)": prepare,
        "W1, b1 alone (hidden_layer_worker)": run(inc.hidden_layer_worker, labels, W2, relu, H, fw, dv, ws.scratch,
                                                  grads),
        "W2, b2 alone (output_layer_worker)": run(inc.output_layer_worker, labels, H, fw, ws.scratch.output, grads),
        "all perturbed losses (perturb_worker)": run(inc.perturb_worker, labels, W2, relu, H, fw, dv, ws.scratch,
                                                     grads, None),
    }
    results = {name: median_ms(func, repeats) for name, func in stages.items()}
    results["numerical_gradient, whole call"] = median_ms(lambda: network.numerical_gradient(x, t), repeats)
    results["loss after the update"] = median_ms(lambda: network.loss(x, t), repeats)
    grad = network.numerical_gradient(x, t)
    saved = {k: v.copy() for k, v in network.params.items()}

    def update():
        for key in grad:
            network.params[key] -= 0.1 * grad[key]

    results["params -= lr * grad"] = median_ms(update, repeats)
    network.params = saved
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    parser.add_argument("--params", help="params.npz of a trained run (default: the book's initial weights)")
    args = parser.parse_args(argv)
    numba.set_num_threads(args.threads)
    batches, source = load_batches(args.data_dir, n_batches=1, batch_size=100, seed=0)
    x, t = batches[0]
    np.random.seed(0)
    network = TwoLayerNet(784, 50, 10)
    if args.params:
        from fastnum.runs import load_network

        network = load_network(args.params)
    results = profile(network, x, t, args.repeats)
    print(f"one step, 784-50-10, batch 100, {source}, {args.threads} numba threads (median ms of {args.repeats})")
    for name, ms in results.items():
        print(f"  {ms:8.3f}  {name}")


if __name__ == "__main__":
    main()
