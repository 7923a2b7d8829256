"""Epoch selection: which epoch's metrics a run reports.

Each selection group (one task, or AAL's main group) keeps the epoch with the
best mean validation accuracy (ties: lower validation loss, then the earlier
epoch) — or the last epoch with `select="last"` — and carries the val/test
metrics of its tasks (and of tasks carried along with it) from that epoch.
Test numbers are never chosen on test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Selection:
    """One group: `tasks` selected together, `carried` reported from their epoch.

    `own` maps a task to where its metrics live: "" (the domain trained on) or
    "@<domain>" (a task scored on another domain, e.g. MTL-SA's task B).
    """

    tasks: list[str]
    carried: list[str]
    own: dict[str, str]
    best: tuple[float, float, int] | None = None  # (val acc, −val loss, −epoch)
    metrics: dict[str, float] = field(default_factory=dict)

    def update(self, metrics: dict[str, float], epoch: int, last_only: bool) -> None:
        """Keep this epoch's metrics if it is the best so far (or, `last_only`, always)."""
        if not last_only:
            accs = [metrics[f"val{self.own.get(t, '')}/acc/{t}"] for t in self.tasks]
            losses = [metrics[f"val{self.own.get(t, '')}/loss/{t}"] for t in self.tasks]
            key = (float(np.mean(accs)), -float(np.mean(losses)), -epoch)
            if self.best is not None and key <= self.best:
                return
            self.best = key
        wanted = {*self.tasks, *self.carried}
        keep = {}
        for k, v in metrics.items():
            split, _, task = [*k.split("/", 2), "", ""][:3]
            if split.startswith(("val", "test")) and task in wanted:
                keep[k] = v
        keep.update({f"epoch/{t}": float(epoch) for t in wanted})
        self.metrics = keep


def add_means(
    metrics: dict[str, float],
    tasks: Sequence[str],
    own: dict[str, str],
    test_domains: Sequence[str],
) -> None:
    """`val/mean_acc`, `test/mean_acc`: each selected task on its own domain;
    `test@<d>/mean_acc`: the selected tasks on a test domain."""
    for split in ("val", "test"):
        keys = [f"{split}{own.get(t, '')}/acc/{t}" for t in tasks]
        if keys and all(k in metrics for k in keys):
            metrics[f"{split}/mean_acc"] = float(np.mean([metrics[k] for k in keys]))
    for domain in test_domains:
        found = [metrics[k] for t in tasks if (k := f"test@{domain}/acc/{t}") in metrics]
        if found:
            metrics[f"test@{domain}/mean_acc"] = float(np.mean(found))


CURVE_PREFIX = "curve/"


@dataclass
class Curves:
    """Every epoch's value of the metrics a method declares `curve=True`, kept for
    the final metrics as `curve/<epoch>/<split>/<name>/<task>` (the selected
    epoch alone does not show whether an adversary was pushed to chance or
    through it to the other side)."""

    names: frozenset[str]
    values: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, config: object) -> Curves:
        declared = getattr(type(config), "metrics", ())
        return cls(frozenset(m.name for m in declared if getattr(m, "curve", False)))

    def update(self, metrics: dict[str, float], epoch: int) -> None:
        if not self.names:
            return
        for key, value in metrics.items():
            parts = key.split("/")
            if len(parts) == 3 and parts[0].startswith(("val", "test")) and parts[1] in self.names:
                self.values[f"{CURVE_PREFIX}{epoch}/{key}"] = value
