"""The chapter-4 network's driver: the buffers of one batch size and the kernel calls of each method.

``TwoLayerNet`` validates its inputs and hands them here; the driver builds
each method's (kernel, arguments) pairs on its buffers (what ``launch`` runs
and ``fastnum._compile`` compiles by their types) and runs them in order,
as the multi-layer and convnet drivers do for theirs.
"""

import numpy as np

from .._config import H
from .._workers import launch, new_counters
from ..kernels.distinct_values import distinct_values_buffers, padded_width
from ..kernels.perturbed_losses import N_SCRATCH_ROWS, Gradients, forward_cache_buffers
from ..progress import first_call_notice
from ._backprop import Deltas, backprop_worker
from ._forward import FORWARD, GRADIENT_CACHES, Activations, TwoLayerParams, sample_pass_call
from ._numgrad_full import PixelLists, full_worker, parameter_groups
from ._numgrad_incremental import UNITS_PER_BLOCK, IncrementalScratch, all_steps_small, n_unit_blocks, perturb_worker


class TwoLayerDriver:
    """Buffers for one batch size, allocated once and reused by every call, and the calls of each method.

    The forward buffers are made at once; those of the incremental gradient
    and of backprop only when first needed, so that ``predict`` on a whole
    data set allocates no more than its activations. ``relu`` picks the
    hidden activation (else sigmoid); ``params`` are (W1, b1, W2, b2).
    """

    def __init__(self, n_samples, n_in, n_hidden, n_out, relu):
        self.sizes = (n_samples, n_in, n_hidden, n_out)
        self.relu = bool(relu)
        self.a1 = np.empty((n_samples, n_hidden))
        self.z1 = np.empty((n_samples, n_hidden))
        self.a2 = np.empty((n_samples, n_out))
        self.out = np.empty((n_samples, n_out))
        """Per-sample losses (column 0) or probabilities."""
        self.forward = Activations(self.a1, self.z1, self.a2)
        self._incremental = None
        self._backprop = None

    @staticmethod
    def buffer_bytes(n_samples, n_in, n_hidden):
        """About the bytes of the incremental gradient's buffers (its scratch rows are the widest:
        ``N_SCRATCH_ROWS`` per hidden unit) and the batch's activations and caches."""
        scratch = n_hidden * (N_SCRATCH_ROWS * padded_width(n_in) + (n_in + 1)) + n_samples * (6 * n_hidden + 3 * n_in)
        return 8 * scratch

    def incremental(self):
        """The incremental gradient's buffers (``_IncrementalBuffers``), made on first use."""
        if self._incremental is None:
            self._incremental = _IncrementalBuffers(self)
        return self._incremental

    def backprop(self):
        """Backprop's ``Deltas``, made on first use."""
        if self._backprop is None:
            n_samples, _, n_hidden, n_out = self.sizes
            self._backprop = Deltas(dy=np.empty((n_samples, n_out)), dz1=np.empty((n_samples, n_hidden)))
        return self._backprop

    # -- the kernel calls of each method, built in one place ------------------

    def pass_call(self, mode, x, labels, params):
        """One pass over ``x`` (``_forward.sample_pass_call``: its worker by mode), into the buffers."""
        if mode == GRADIENT_CACHES:
            buffers = self.incremental()
            return sample_pass_call(mode, x, labels, params, self.relu, buffers.forward, buffers.distinct)
        return sample_pass_call(mode, x, labels, params, self.relu, self.forward, out=self.out)

    def incremental_calls(self, x, labels, params, grads):
        """The incremental gradient's calls: the caches, then the perturbations (``perturb_worker``
        without its general paths; ``run_incremental`` adds them when a step needs them)."""
        buffers = self.incremental()
        return [
            self.pass_call(GRADIENT_CACHES, x, labels, params),
            (perturb_worker, (new_counters(), labels, params[2], self.relu, H, buffers.forward, buffers.distinct,
                              buffers.scratch, grads, None)),
        ]

    def full_call(self, x, labels, params, grads):
        """``method="full"``'s one call: every perturbed loss from a whole forward pass."""
        n_in, n_hidden, n_out = self.sizes[1:]
        groups = parameter_groups(n_in, n_hidden, n_out)
        pixels = PixelLists(nonzero_idx=np.empty(x.shape, dtype=np.int64),
                            n_nonzero=np.empty(x.shape[0], dtype=np.int64),
                            pixel_position=np.empty(x.shape, dtype=np.int64))
        return full_worker, (new_counters(), x, labels, TwoLayerParams(*params), self.relu, H, groups, pixels,
                             Gradients(*grads))

    def backprop_calls(self, x, labels, params, grads):
        """Backprop's calls: the forward pass, then the deltas and gradients."""
        return [self.pass_call(FORWARD, x, None, params),
                (backprop_worker, (new_counters(), x, labels, params[2], self.relu, self.forward, self.backprop(),
                                   Gradients(*grads)))]

    # -- running them ---------------------------------------------------------

    def run_pass(self, mode, x, params, labels=None):
        """One pass of ``mode``; returns the driver, whose ``forward`` and ``out`` hold its results."""
        launch(*self.pass_call(mode, x, labels, params))
        return self

    def run_incremental(self, x, labels, params):
        """The incremental numerical gradient (a ``Gradients``): the caches, then the perturbations,
        with the general paths compiled in only when some step is too large for the short series."""
        W1, b1, W2, b2 = params
        grads = Gradients(W1=np.empty_like(W1), b1=np.empty_like(b1), W2=np.empty_like(W2), b2=np.empty_like(b2))
        prepare, (perturb, perturb_args) = self.incremental_calls(x, labels, params, grads)
        launch(*prepare)
        buffers = self.incremental()
        if all_steps_small(self.relu, H, buffers.distinct.max_abs_value, W2, buffers.forward.z1):
            launch(perturb, perturb_args)
        else:  # some step too large for the short series: the worker with the general paths
            with first_call_notice("TwoLayerNet.numerical_gradient (large perturbation steps)"):
                launch(perturb, perturb_args[:-1] + (True,))
        return grads

    def run_full(self, x, labels, params):
        """``method="full"``'s gradient, as arrays shaped like ``params``."""
        grads = [np.empty_like(p) for p in params]
        launch(*self.full_call(x, labels, params, grads))
        return grads

    def run_backprop(self, x, labels, params):
        """Backprop's gradient, as arrays shaped like ``params``."""
        grads = [np.empty_like(p) for p in params]
        for call in self.backprop_calls(x, labels, params, grads):
            launch(*call)
        return grads


class _IncrementalBuffers:
    """What the incremental numerical gradient needs besides the forward pass."""

    def __init__(self, driver):
        n_samples, n_in, n_hidden, n_out = driver.sizes
        width = padded_width(n_in)
        self.forward = forward_cache_buffers(n_samples, n_hidden, n_out, (driver.a1, driver.z1, driver.a2))
        # distinct pixel values per sample (+1 for the bias "pixel"), padded
        self.distinct = distinct_values_buffers((n_samples,), n_in)
        n_blocks = n_unit_blocks(n_hidden)
        self.scratch = IncrementalScratch(
            hidden=np.empty((n_hidden, N_SCRATCH_ROWS, width)),
            block_losses=np.empty((n_blocks, width, UNITS_PER_BLOCK)),
            block_grads=np.empty((n_blocks, n_in + 1, UNITS_PER_BLOCK)),
            output=np.empty((n_hidden + 1, n_samples)),
        )
