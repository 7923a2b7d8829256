"""`Trainer`: one seeded training of a shared backbone with heads — the epoch
loop every supervised kernel runs, so the numbers of different methods are
comparable.

A kernel supplies its own `train_epoch()` (the paper's update; `loop.py`'s
`gradient_pass` when it is plain gradient descent on a loss) and the heads to
evaluate; `Trainer.run` does the rest the same way for every method:

- every epoch: the named loss parts of the epoch, then accuracy and loss of each
  evaluated task on val and test of its domain, and on the test split of every
  `test_domains` entry (`test@<domain>/acc/<task>`: a cross-dataset test),
  reported through `ctx.report`;
- selection (`selection.py`): `select="best_val"` keeps each group's best
  validation epoch, `select="last"` the last one (the Purified Learning
  paper's protocol: "results after 50 epochs");
- a non-finite loss raises `DivergedError` at once: no NaN reaches a result.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..data import Dataset
from .backbones import Backbone, build_backbone, check_precision
from .context import RunContext
from .errors import DataError, ensure_finite
from .evaluation import EvalHead, principal_components, score_heads
from .optim import build_optimizer, build_scheduler
from .selection import Curves, Selection, add_means
from .tasks import TaskSpec
from .train_config import TrainConfig
from .views import DomainView

Groups = Sequence[tuple[Sequence[str], Sequence[str]]]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """One seeded training of a shared backbone with heads, on one domain (plus any
    other domains a method draws batches from or is tested on)."""

    def __init__(self, config: TrainConfig, data: Dataset, ctx: RunContext):
        self.config = config
        self.ctx = ctx
        self.data = data
        self.domain = config.check_training(data)
        if ctx.num_threads > 0:
            torch.set_num_threads(ctx.num_threads)
        seed_everything(ctx.seed)
        self.device = torch.device(ctx.device)
        self.rng = np.random.default_rng(ctx.seed)
        self.view = DomainView(self.domain, self.device)
        self._views = {self.domain.name: self.view}
        self.backbone: Backbone = self.new_backbone()

    def new_backbone(self) -> Backbone:
        """A feature extractor F as the config describes it, on the device and in the
        configured memory layout and precision (every kernel builds its F's here)."""
        c = self.config
        backbone = build_backbone(c.backbone, self.domain.input_shape, c.feature_dim, c.weights)
        backbone = backbone.to(self.device).use_memory_format(c.memory_format, self.device)
        check_precision(c.precision, self.device)
        return backbone.use_precision(c.precision)

    def view_of(self, name: str) -> DomainView:
        """Another domain, encoded with the statistics of the one trained on."""
        if name not in self._views:
            domain = self.data.domain(name)
            if domain.input_shape != self.domain.input_shape:
                raise DataError(
                    f"domain '{name}' has inputs of shape {domain.input_shape}, but the"
                    f" training domain '{self.domain.name}' has {self.domain.input_shape}"
                )
            self._views[name] = DomainView(domain, self.device, like=self.view.encoder)
        return self._views[name]

    def head(self, spec: TaskSpec) -> nn.Linear:
        return nn.Linear(self.backbone.out_dim, spec.out_features).to(self.device)

    def optimizer(self, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
        """The configured optimiser (Adam, or SGD with momentum) over `params`."""
        return build_optimizer(self.config, params)

    def scheduler(self, opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """The configured learning-rate schedule of `opt`."""
        return build_scheduler(self.config, opt)

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled training batches of the domain trained on."""
        return self.view.epoch(self.config.batch_size, self.rng)

    def evaluate(self, heads: Sequence[EvalHead], split: str) -> dict[str, float]:
        """Accuracy and mean loss of every head on `split` of its own domain; a head of
        another domain reports under `<split>@<domain>/...`."""
        out: dict[str, float] = {}
        by_view: dict[str, list[EvalHead]] = {}
        for h in heads:
            by_view.setdefault((h.view or self.view).name, []).append(h)
        for name, group in by_view.items():
            view = self._views[name]
            key = split if view is self.view else f"{split}@{name}"
            out.update(score_heads(self.backbone, view, view.rows[split], key, group))
        return out

    def evaluate_other_domains(self, heads: Sequence[EvalHead]) -> dict[str, float]:
        """Main tasks of the trained domain, on the test split of each test domain."""
        out: dict[str, float] = {}
        mains = [h for h in heads if not h.prefix and (h.view is None or h.view is self.view)]
        for name in self.config.test_domains:
            view = self.view_of(name)
            moved = [
                EvalHead(
                    TaskSpec(
                        h.spec.name, view.domain.column_index(h.spec.name), h.spec.num_classes
                    ),
                    h.module,
                )
                for h in mains
            ]
            out.update(score_heads(self.backbone, view, view.rows["test"], f"test@{name}", moved))
        return out

    def principal_components(self) -> dict[str, float]:
        """Explained-variance ratio of the top `pca_components` principal components of
        the final model's test features, per test domain (the PL paper's Figure 2)."""
        views = [("test", self.view)]
        views += [(f"test@{d}", self.view_of(d)) for d in self.config.test_domains]
        return principal_components(self.backbone, views, self.config.pca_components)

    def run(
        self,
        train_epoch: Callable[[], dict[str, float]],
        heads: Sequence[EvalHead],
        groups: Groups,
        schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler],
        extra_metrics: Callable[[], dict[str, float]] | None = None,
    ) -> dict[str, float]:
        """Train for `config.epochs` epochs and return the selected metrics.

        `extra_metrics`, if given, is called after each epoch's evaluation for
        metrics a kernel computes itself (e.g. accuracy of several heads' averaged
        prediction, CCC of continuous labels); keys of the form
        `<split>/<metric>/<task>` take part in selection like the heads' own.

        `groups`: (tasks selected together on mean val accuracy, tasks whose
        metrics are carried along from the selected epoch). Besides the per-task
        metrics, `val/mean_acc` and `test/mean_acc` (and `test@<d>/mean_acc`)
        average the selected tasks: one objective for any method. Metrics the method
        declares `curve=True` are also returned for every epoch (`Curves`).
        """
        # Where each main task is scored on its own domain: "val"/"test", or
        # "val@<d>"/"test@<d>" for a task that lives on another domain (MTL-SA's task B).
        own = {
            h.spec.name: ("" if h.view is None or h.view is self.view else f"@{h.view.name}")
            for h in heads
            if not h.prefix
        }
        selections = [Selection(list(t), list(c), own) for t, c in groups]
        selected = [t for sel in selections for t in sel.tasks]
        curves = Curves.of(self.config)
        last: dict[str, float] = {}
        for epoch in range(1, self.config.epochs + 1):
            for m in (self.backbone, *(h.module for h in heads)):
                m.train()
            parts = train_epoch()
            for name, value in parts.items():
                ensure_finite(value, f"training {name} in epoch {epoch}")
            for sched in schedulers:
                sched.step()
            metrics = {f"train/{k}": v for k, v in parts.items()}
            metrics.update(self.evaluate(heads, "val"))
            metrics.update(self.evaluate(heads, "test"))
            metrics.update(self.evaluate_other_domains(heads))
            if extra_metrics is not None:
                metrics.update(extra_metrics())
            add_means(metrics, selected, own, self.config.test_domains)
            self.ctx.report(metrics, epoch)
            curves.update(metrics, epoch)
            for sel in selections:
                sel.update(metrics, epoch, last_only=self.config.select == "last")
            last = metrics
        final = {k: v for k, v in last.items() if k.startswith("train/")}
        for sel in selections:
            final.update(sel.metrics)
        add_means(final, selected, own, self.config.test_domains)
        final.update(curves.values)
        final.update(self.principal_components())
        return final
