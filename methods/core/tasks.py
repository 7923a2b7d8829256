"""Label columns as prediction tasks: which loss a column takes, its masked loss
on a batch and its predictions.

A class-label column with 2 classes is one logit trained with binary
cross-entropy; more classes (or `softmax=True`) a K-way softmax. A label of −1
(NaN in a float column) is missing and takes no part in a loss or a score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data import Domain
from .errors import ConfigError, DataError


@dataclass(frozen=True)
class TaskSpec:
    """A class-label column to predict: 2 classes → one logit and BCE, else softmax CE
    (`softmax=True`: a K-way softmax even for 2 classes, for soft-label targets)."""

    name: str
    column: int
    num_classes: int
    softmax: bool = False

    @property
    def out_features(self) -> int:
        return self.num_classes if self.softmax or self.num_classes > 2 else 1


def task_specs(domain: Domain, names: Sequence[str], *, need_val: bool = True) -> list[TaskSpec]:
    """The class-label columns `names` of `domain`, each with labelled training samples
    (and validation samples, unless `need_val=False`: an auxiliary set's label)."""
    splits = ("train", "val") if need_val else ("train",)
    specs = []
    for name in names:
        col = domain.column_index(name)
        specs.append(TaskSpec(name, col, domain.num_classes(name)))
        for split in splits:
            if not (domain.labels[domain.indices(split), col] >= 0).any():
                raise DataError(
                    f"attribute '{name}' has no labelled {split} sample in domain '{domain.name}'"
                )
        train = domain.labels[domain.indices("train"), col]
        classes = np.unique(train[np.isfinite(train) & (train >= 0)])
        if len(classes) < 2:
            # a classifier fed one class learns a constant; its accuracy says nothing
            found = f"one class ({classes[0]:g})" if classes.size else "no class label"
            raise DataError(
                f"attribute '{name}' has {found} among its labelled train samples in domain"
                f" '{domain.name}'; a task needs at least two"
            )
    return specs


def check_distinct(names: Sequence[str], key: str) -> None:
    if not names:
        raise ConfigError(f"{key} is empty; name at least one attribute")
    seen = set()
    for n in names:
        if n in seen:
            raise ConfigError(f"{key} names '{n}' twice")
        seen.add(n)


def task_loss(
    logits: torch.Tensor, y: torch.Tensor, spec: TaskSpec, reduction: str = "mean"
) -> torch.Tensor:
    """Loss over the labelled samples of a batch, their mean or (`reduction="sum"`)
    their sum; 0, still on the graph, if none is labelled."""
    mask = y >= 0  # −1 (and NaN) mark a missing label
    if not bool(mask.any()):
        return logits.sum() * 0.0
    if spec.out_features == 1:
        target = y[mask].to(logits.dtype)  # labels are float32; logits may be float64
        return F.binary_cross_entropy_with_logits(logits[mask, 0], target, reduction=reduction)
    return F.cross_entropy(logits[mask], y[mask].long(), reduction=reduction)


def predictions(logits: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    if spec.out_features == 1:
        return (logits[:, 0] > 0).float()
    return logits.argmax(1).float()
