"""Scoring a model on held-out rows: accuracy and mean loss per head, the
principal components of its features, and `eval_mode`, the one way kernels put
modules in evaluation mode (and back). A model with per-domain batch-norm
statistics (`domain_norm.py`) is scored on each domain with that domain's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .domain_norm import on_domain
from .errors import ensure_finite
from .tasks import TaskSpec, predictions, task_loss
from .views import DomainView, minibatches

EVAL_BATCH = 512


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """`modules` in eval mode (batch norm on its running statistics, dropout off)
    inside the block; each is put back in the mode it had, even on an error."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


@contextmanager
def kept_buffers(*modules: nn.Module) -> Iterator[None]:
    """Forward passes inside the block leave the modules' buffers as they were (batch
    norm's running statistics, spectral norm's power-iteration vectors): for a
    second look at a batch in train mode that must not count as a second batch."""
    saved = [(b, b.detach().clone()) for m in modules for b in m.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


@dataclass
class EvalHead:
    """A head to evaluate each epoch: its task, module, metric prefix and domain.

    `view` is the domain whose val/test splits the head is scored on (None: the
    domain trained on). Only main heads (prefix "") of tasks trained on that
    domain are scored on the `test_domains` too.
    """

    spec: TaskSpec
    module: nn.Module
    prefix: str = ""  # "" for main metrics (acc, loss), "adv_" for adversaries
    view: DomainView | None = None


class HeadScores:
    """Accuracy and mean loss of heads, accumulated over batches of features."""

    def __init__(self, heads: Sequence[EvalHead]):
        self.heads = heads
        self.correct = np.zeros(len(heads))
        self.loss_sum = np.zeros(len(heads))
        self.count = np.zeros(len(heads))

    def add(self, features: torch.Tensor, y: torch.Tensor) -> None:
        """One batch: `features` of its inputs, `y` its whole label rows."""
        for k, head in enumerate(self.heads):
            logits = head.module(features)
            target = y[:, head.spec.column]
            mask = target >= 0
            n = int(mask.sum())
            if n == 0:
                continue
            self.loss_sum[k] += float(task_loss(logits, target, head.spec)) * n
            pred = predictions(logits, head.spec)
            self.correct[k] += float((pred[mask] == target[mask]).sum())
            self.count[k] += n

    def metrics(self, key: str) -> dict[str, float]:
        """`<key>/<prefix>acc/<task>` and `<key>/<prefix>loss/<task>` of every head
        that saw a labelled sample."""
        out = {}
        for k, head in enumerate(self.heads):
            if self.count[k] == 0:
                continue
            loss = self.loss_sum[k] / self.count[k]
            ensure_finite(loss, f"{key} loss of '{head.spec.name}'")
            out[f"{key}/{head.prefix}acc/{head.spec.name}"] = float(self.correct[k] / self.count[k])
            out[f"{key}/{head.prefix}loss/{head.spec.name}"] = float(loss)
        return out


@torch.no_grad()
def score_heads(
    backbone: nn.Module, view: DomainView, rows: np.ndarray, key: str, heads: Sequence[EvalHead]
) -> dict[str, float]:
    """`<key>/<prefix>acc/<task>` and `<key>/<prefix>loss/<task>` of every head on
    `rows` of `view` (labelled rows only), in eval mode."""
    if len(rows) == 0 or not heads:
        return {}
    scores = HeadScores(heads)
    with eval_mode(backbone, *(h.module for h in heads)), on_domain(backbone, view.name):
        for batch in minibatches(rows, EVAL_BATCH, None):
            x, y = view.batch(batch)
            scores.add(backbone(x), y)
    return scores.metrics(key)


@torch.no_grad()
def principal_components(
    backbone: nn.Module, views: Sequence[tuple[str, DomainView]], k: int
) -> dict[str, float]:
    """`<key>/pca_ratio_<i>`: the explained-variance ratio of the top `k` principal
    components of the test features of each (key, view) (the PL paper's Figure 2)."""
    out: dict[str, float] = {}
    if k <= 0:
        return out
    with eval_mode(backbone):
        for key, view in views:
            rows = view.rows["test"]
            if len(rows) < 2:
                continue
            with on_domain(backbone, view.name):
                feats = torch.cat(
                    [backbone(view.encoder(b)) for b in minibatches(rows, EVAL_BATCH, None)]
                ).double()
            feats = feats - feats.mean(0)
            variances = torch.linalg.svdvals(feats) ** 2
            total = float(variances.sum())
            if total <= 0:
                continue
            for i, v in enumerate(variances[:k].tolist(), start=1):
                out[f"{key}/pca_ratio_{i}"] = v / total
    return out
