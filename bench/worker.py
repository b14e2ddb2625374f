"""Times one contender in a process of its own and prints the figures as JSON.

    python -m bench.worker SPEC.json

SPEC holds the contender's name, the data source, the batch size and seed,
the sampled entries, the repeats, and the BLAS or numba thread count. Each
contender gets a fresh process so that neither a spinning numba thread pool
nor another BLAS setting slows the one being timed.
"""

import json
import sys
import time

import numpy as np


def _entries(spec):
    return [(name, tuple(idx)) for name, idx in spec["entries"]]


def _values_at(grads, entries):
    return [float(grads[name][idx]) for name, idx in entries]


def run(spec):
    import numba
    from threadpoolctl import threadpool_info, threadpool_limits

    if spec.get("numba_threads"):
        numba.set_num_threads(spec["numba_threads"])
    blas_threads = spec.get("blas_threads")
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        from bench.contenders import CONTENDERS, initial_params
        from bench.data import load_batches

        label, kind, function, runtime = CONTENDERS[spec["contender"]]
        (batch,), source = load_batches(spec.get("data_dir"), 1, spec["batch_size"], spec["seed"],
                                        spec.get("inputs", "mnist"))
        x, t = batch
        params = initial_params(n_hidden=spec["hidden"])
        entries = _entries(spec)
        extra = {}
        if runtime == "numba":
            from bench.contenders import _net

            net = _net(params)
            start = time.perf_counter()
            grads = function(params, x, t, net=net)
            extra["first_call_seconds"] = time.perf_counter() - start
            extra["threading_layer"] = "fastnum's own"  # fastnum/_workers.py: not numba's layers
            call = lambda: function(params, x, t, net=net)  # noqa: E731
        elif kind == "sampled":
            call = lambda: function(params, x, t, entries)  # noqa: E731
            grads = None
        else:
            call = lambda: function(params, x, t)  # noqa: E731
            grads = call()
        times = []
        result = None
        for _ in range(spec["repeats"]):
            start = time.perf_counter()
            result = call()
            times.append(time.perf_counter() - start)
        if kind == "sampled":
            values = [float(v) for v in result]
            per_entry = np.array(times) / len(entries)
            step_times = (per_entry * spec["n_params"]).tolist()
        else:
            grads = result if grads is None else grads
            values = _values_at(grads, entries)
            step_times = times
        blas = [{k: info.get(k) for k in ("internal_api", "num_threads", "version", "architecture")}
                for info in threadpool_info() if info.get("user_api") == "blas"]
        if spec.get("reference_entries"):
            # on other inputs than the book's row (1) saw: check against the book's loop here
            from bench.contenders import book_loop

            check = [(name, tuple(idx)) for name, idx in spec["reference_entries"]]
            expected = np.array(book_loop(params, x, t, check))
            got = np.array(_values_at(grads if grads is not None else result, check))
            extra["max_abs_diff_own_reference"] = float(np.abs(got - expected).max())
    return {
        "contender": spec["contender"], "label": label, "kind": kind, "runtime": runtime,
        "blas_threads": blas_threads, "numba_threads": spec.get("numba_threads"), "source": source,
        "step_seconds": step_times, "values": values, "blas": blas, **extra,
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(json.dumps(run(json.load(handle))))
