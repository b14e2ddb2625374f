"""Compiled building blocks shared by every network's kernels.

``vecmath.py`` (exp, log and the short series, vectorisable, 1 ulp),
``activations.py`` (sigmoid/ReLU, nonzero entries of a row),
``distinct_values.py`` (a row's distinct nonzero values) and
``perturbed_losses.py`` (one sample's perturbed losses from a cached forward pass).
"""
