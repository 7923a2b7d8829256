"""MTL-SA's network above the shared layers θs (§5.2): two fully connected layers
per task with a cross-stitch unit between the first ones, the two-backbone
layout of its single-task baseline, and the cross-entropy against label
vectors that soft, pseudo and interpolated labels all use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core import Backbone


class TaskLayers(nn.Module):
    """θa, θb: two FC layers per task, a cross-stitch unit between the first ones.

    With `split` (STL), task A reads the first half of the features and task B the
    second: two backbones side by side, no sharing.
    """

    def __init__(
        self, width: int, hidden: int, classes: tuple[int, int], stitch: bool, split: bool = False
    ):
        super().__init__()
        self.split = split
        inputs = width // 2 if split else width
        self.fc_a, self.fc_b = nn.Linear(inputs, hidden), nn.Linear(inputs, hidden)
        self.out_a, self.out_b = nn.Linear(hidden, classes[0]), nn.Linear(hidden, classes[1])
        # cross-stitch (Misra et al. 2016), initialised near the identity
        self.stitch = nn.Parameter(torch.tensor([[0.9, 0.1], [0.1, 0.9]])) if stitch else None

    def features(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each task branch without its last layer (the feature space of wᵈ and wᵍ)."""
        ha, hb = h.chunk(2, dim=1) if self.split else (h, h)
        a, b = F.relu(self.fc_a(ha)), F.relu(self.fc_b(hb))
        if self.stitch is not None:
            s = self.stitch
            a, b = s[0, 0] * a + s[0, 1] * b, s[1, 0] * a + s[1, 1] * b
        return a, b

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.features(h)
        return self.out_a(a), self.out_b(b)


class TaskOutput(nn.Module):
    """One task's logits, as an evaluation head over the shared features."""

    def __init__(self, layers: TaskLayers, index: int):
        super().__init__()
        self.layers, self.index = layers, index

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)[self.index]


class SideBySide(nn.Module):
    """Two backbones, their features concatenated (STL through one interface)."""

    def __init__(self, a: Backbone, b: Backbone):
        super().__init__()
        self.a, self.b = a, b
        self.out_dim = a.out_dim + b.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=1)


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy against label vectors (soft, pseudo or interpolated), the mean
    over the batch or (`reduction="sum"`) its sum."""
    per_sample = -(targets * F.log_softmax(logits, dim=1)).sum(1)
    return per_sample.sum() if reduction == "sum" else per_sample.mean()
