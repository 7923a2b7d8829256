"""MTL-SA ("Beyond Without Forgetting: Multi-task Learning for Classification
with Disjoint Datasets"): two tasks on two disjoint datasets, alternating
epochs, selective augmentation by per-sample weights; the paper's baselines
and special cases are modes of the one kernel.
"""

from . import kernel  # noqa: F401  (importing registers the method)
