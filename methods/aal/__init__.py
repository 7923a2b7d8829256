"""Adversarial Attribute Learning ("Adversarial Attribute Learning by Exploiting
Negative Correlated Attributes") and its baselines: single-task (`stl`) and
multi-task (`mtl`) learning, the pair search's two kinds of stage-1 run.
"""

from . import kernel, mtl, stl  # noqa: F401  (importing registers the methods)
