"""SOSELETO ("SOSELETO: A Unified Approach to Transfer Learning and Training with
Noisy Labels"): source samples weighted by a bilevel optimisation; its
baselines and the two-stage variant are modes of the one kernel.
"""

from . import kernel  # noqa: F401  (importing registers the method)
