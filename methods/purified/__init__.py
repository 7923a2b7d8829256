"""Purified Learning ("Learning Purified Feature Representations from
Task-irrelevant Labels") and the baselines of its tables, all under the paper's
training protocol (`protocol.PLProtocol`): Goal 1 alone (`goal1`), transfer
learning through the irrelevant label (`tl`), adversarial multi-task learning
(`amtl`), domain-adversarial training (`dann`), and pre-training on a relevant
set before Purified Learning (`tl_purified`). The multi-task baseline is `mtl`.
"""

from . import amtl, dann, goal1, kernel, tl, tl_purified  # noqa: F401  (registers them)
