"""The book's layers (``common/layers.py``) as fastnum describes a network: one module per kind.

Every network of the book is a list of these layers ending in
``SoftmaxWithLoss``: ``TwoLayerNet``, ``MultiLayerNet(Extend)``,
``SimpleConvNet``, ``DeepConvNet``, and whatever a reader builds from the
book's layer classes (``fastnum.numerical_gradient_of`` reads such a network
into this form). A layer here holds no arrays: it names the entries of
``params`` it reads (``param_keys``) and computes, on arrays with a leading
*perturbation* axis (``(P, N, *sample_shape)``; P = 1 for an ordinary pass),

* ``forward(x, params, pass_)``: the book's forward pass, ``pass_`` (a
  ``ForwardPass``) saying training or evaluation mode and holding the dropout
  masks and batch norm's running statistics;
* ``backward(dout, params, cache)``: the book's backward pass (P = 1);
* ``perturbed(x, out, params, role, entries, h)``: the layer's output with
  each listed parameter entry moved by ``+h`` and by ``-h`` (the first step of
  the numerical gradient: ``fastnum.layers.numerical``);
* for the piecewise-linear kinds, their part of the moves
  (``fastnum.layers.moves``): ``first_move`` (what an entry of its own
  parameters moves), ``move_context`` (what its proof needs of the cached
  pass), ``propagate`` (a move of its input carried to its output, with the
  proof that it stays linear) and ``rounding_bound``;
* for unit moves (``fastnum.layers.unit_moves``): ``Affine.unit_scales``
  (each entry's step of its unit, in units of h), ``unit_step`` of the
  activations (a unit's move evaluated exactly) and ``move_radius`` of every
  kind with ``propagate`` (how far a move may be scaled and stay linear;
  None for the linear kinds).

``LAYER_KINDS`` lists them by the book's class name.
"""

from .activations import Relu, Sigmoid
from .affine import Affine
from .batchnorm import BatchNormalization
from .convolution import Convolution
from .dropout import Dropout
from .pooling import Pooling
from .softmax_loss import SoftmaxWithLoss
from .stack import ForwardPass, LayerStack

LAYER_KINDS = {cls.__name__: cls for cls in (Affine, Relu, Sigmoid, BatchNormalization, Dropout, Convolution, Pooling,
                                             SoftmaxWithLoss)}
"""Every layer kind, by the name of the book's class in ``common/layers.py``."""

__all__ = ["Affine", "Relu", "Sigmoid", "BatchNormalization", "Dropout", "Convolution", "Pooling", "SoftmaxWithLoss",
           "LayerStack", "ForwardPass", "LAYER_KINDS"]
