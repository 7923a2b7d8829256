"""Noisy multi-task joint distribution matching ("Facial Emotion Recognition with
Noisy Multi-task Annotations", `jdm`) and the baselines of its Table 1: the
clean labels, the majority vote, all sets, symmetric cross-entropy and
Co-teaching, on the shared label-set scaffolding of `label_sets.py`.
"""

from . import baselines, jdm  # noqa: F401  (importing registers the methods)
