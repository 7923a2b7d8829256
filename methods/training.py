"""Scaffolding shared by the supervised kernels: seeding, input encoding, masked
per-task losses, optimisers, the epoch loop, evaluation on several domains and
epoch selection.

A kernel supplies its own `train_epoch()` (the paper's update) and the heads to
evaluate; `Trainer.run` does the rest the same way for every method, so the
numbers of different methods are comparable:

- every epoch: the named loss parts of the epoch, then accuracy and loss of each
  evaluated task on val and test of its domain, and on the test split of every
  `test_domains` entry (`test@<domain>/acc/<task>`: a cross-dataset test),
  reported through `ctx.report`;
- selection (`select="best_val"`): each selection group (one task, or AAL's
  main group) keeps the epoch with the best mean val accuracy (ties: lower val
  loss, then earlier); test numbers are those of that epoch, never chosen on
  test. `select="last"` reports the last epoch (the Purified Learning paper's
  protocol: "results after 50 epochs");
- a non-finite loss raises `DivergedError` at once: no NaN reaches a result.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import BACKBONES, Backbone, build_backbone, check_backbone
from .config import meta
from .context import RunContext
from .data import Dataset, Domain
from .errors import ConfigError, DataError, DivergedError


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings every supervised kernel shares (AAL paper §4.1 defaults)."""

    backbone: str = field(
        default="resnet18",
        metadata=meta("feature extractor F (§4.1: ResNet18)", choices=BACKBONES),
    )
    feature_dim: int = field(default=0, metadata=meta("projection width of F; 0 = native", min=0))
    weights: str = field(
        default="",
        metadata=meta(
            "a torchvision state dict file for F (§4.1: ImageNet-pretrained ResNet18, e.g."
            " resnet18-f37072fd.pth); '' = random init. Nothing is downloaded"
        ),
    )
    epochs: int = field(default=6, metadata=meta("training epochs (§4.1: 6)", min=1))
    batch_size: int = field(
        default=64, metadata=meta("minibatch size (not stated in the paper)", min=2)
    )
    optimizer: Literal["adam", "sgd"] = field(
        default="adam", metadata=meta("optimiser of F and the heads (§4.1: Adam)")
    )
    lr: float = field(
        default=1e-4, metadata=meta("learning rate (§4.1: 1e-4)", min=0.0, min_exclusive=True)
    )
    momentum: float = field(default=0.9, metadata=meta("SGD momentum", min=0.0, max=1.0))
    weight_decay: float = field(default=5e-4, metadata=meta("weight decay (§4.1)", min=0.0))
    lr_milestones: tuple[int, ...] = field(
        default=(4,), metadata=meta("epochs after which lr is multiplied by lr_gamma", min=1)
    )
    lr_step_size: int = field(
        default=0,
        metadata=meta(
            "when > 0, multiply lr by lr_gamma every this many epochs (StepLR)"
            " instead of at lr_milestones",
            min=0,
        ),
    )
    lr_gamma: float = field(
        default=0.1, metadata=meta("lr factor at each milestone (§4.1: ÷10)", min=0.0, max=1.0)
    )
    select: Literal["best_val", "last"] = field(
        default="best_val", metadata=meta("report the best-validation epoch or the last one")
    )
    domain: str = field(default="", metadata=meta("dataset domain to train on; '' = the only one"))
    test_domains: tuple[str, ...] = field(
        default=(), metadata=meta("other domains whose test split is evaluated too")
    )
    pca_components: int = field(
        default=0,
        metadata=meta(
            "report the explained-variance ratio of this many principal components"
            " of the final model's test features (0: off)",
            min=0,
        ),
    )

    def check_training(self, data: Dataset) -> Domain:
        """Checks every supervised kernel needs; returns the domain trained on."""
        domain = data.domain(self.domain)
        check_backbone(self.backbone, domain.input_shape, self.weights)
        for split in ("train", "val"):
            if len(domain.indices(split)) == 0:
                raise DataError(f"domain '{domain.name}' has no '{split}' samples")
        for name in self.test_domains:
            other = data.domain(name)
            if other.input_shape != domain.input_shape:
                raise DataError(
                    f"test domain '{name}' has inputs of shape {other.input_shape}, but the"
                    f" training domain '{domain.name}' has {domain.input_shape}"
                )
            if len(other.indices("test")) == 0:
                raise DataError(f"test domain '{name}' has no 'test' samples")
        return domain


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
    return specs


def check_distinct(names: Sequence[str], key: str) -> None:
    if not names:
        raise ConfigError(f"{key} is empty; name at least one attribute")
    seen = set()
    for n in names:
        if n in seen:
            raise ConfigError(f"{key} names '{n}' twice")
        seen.add(n)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class InputEncoder:
    """Turns rows of a domain into model-ready float tensors on the device.

    Images: uint8 (N, H, W, C) → float (N, C, H, W), standardised per channel;
    vectors: standardised per feature. The statistics come from (at most
    `STATS_ROWS` evenly spaced rows of) the train split of the domain trained
    on; other domains are encoded with those same statistics (`like=`), as a
    deployed model would see them. On a GPU, a domain of up to
    `DEVICE_CACHE_BYTES` is copied to the device once as uint8, so batches are
    gathered there instead of crossing the bus each step.
    """

    STATS_ROWS = 4096
    DEVICE_CACHE_BYTES = 1 << 30

    def __init__(self, domain: Domain, device: torch.device, like: InputEncoder | None = None):
        self.domain = domain
        self.device = device
        self.mean: torch.Tensor
        self.std: torch.Tensor
        if like is not None:
            self.mean, self.std = like.mean, like.std
        else:
            train_rows = domain.indices("train")
            step = max(1, len(train_rows) // self.STATS_ROWS)
            sample = domain.inputs[train_rows[::step]]
            if domain.is_image:
                pixels = sample.reshape(-1, sample.shape[-1]).astype(np.float64) / 255.0
                mean, std = pixels.mean(0), pixels.std(0)
                shape: tuple[int, ...] = (1, -1, 1, 1)
            else:
                mean, std = sample.mean(0, dtype=np.float64), sample.std(0, dtype=np.float64)
                shape = (1, -1)
            std = np.where(std < 1e-6, 1.0, std)
            self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
            self.std = torch.tensor(std, dtype=torch.float32, device=device).view(shape)
        self.cached: torch.Tensor | None = None
        if device.type != "cpu" and domain.inputs.nbytes <= self.DEVICE_CACHE_BYTES:
            self.cached = torch.tensor(domain.inputs, device=device)

    def __call__(self, rows: np.ndarray) -> torch.Tensor:
        if self.cached is not None:
            x = self.cached[torch.from_numpy(rows).to(self.device)]
        else:
            x = torch.from_numpy(self.domain.inputs[rows]).to(self.device)
        if self.domain.is_image:
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
        return (x - self.mean) / self.std


class DomainView:
    """One domain on the device: encoded inputs, the label table and split rows."""

    def __init__(self, domain: Domain, device: torch.device, like: InputEncoder | None = None):
        self.domain = domain
        self.name = domain.name
        self.device = device
        self.encoder = InputEncoder(domain, device, like)
        # A copy: arrays arriving through Ray's object store are read-only.
        self.labels = torch.tensor(domain.labels, device=device)
        self.rows = {s: domain.indices(s) for s in ("train", "val", "test")}

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, the whole label rows) of the given rows."""
        return self.encoder(rows), self.labels[torch.from_numpy(rows).to(self.device)]

    def epoch(
        self, batch_size: int, rng: np.random.Generator, split: str = "train"
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled pass over a split."""
        for rows in minibatches(self.rows[split], batch_size, rng):
            yield self.batch(rows)

    def epoch_rows(
        self, batch_size: int, rng: np.random.Generator
    ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
        """One shuffled pass over the train split, with each batch's row numbers."""
        for rows in minibatches(self.rows["train"], batch_size, rng):
            yield (rows, *self.batch(rows))

    def forever(
        self, batch_size: int, rng: np.random.Generator, rows: np.ndarray | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless shuffled batches of `rows` (default: the train split), pass after pass:
        a second dataset drawn alongside the one an epoch is counted on."""
        pool = self.rows["train"] if rows is None else rows
        if len(pool) < 2:
            raise DataError(f"domain '{self.name}' has fewer than 2 rows to draw batches from")
        while True:
            yield from (self.batch(r) for r in minibatches(pool, batch_size, rng))


def task_loss(logits: torch.Tensor, y: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """Mean loss over the labelled samples of a batch (0, still on the graph, if none)."""
    mask = y >= 0  # −1 (and NaN) mark a missing label
    if not bool(mask.any()):
        return logits.sum() * 0.0
    if spec.out_features == 1:
        return F.binary_cross_entropy_with_logits(logits[mask, 0], y[mask])
    return F.cross_entropy(logits[mask], y[mask].long())


def predictions(logits: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    if spec.out_features == 1:
        return (logits[:, 0] > 0).float()
    return logits.argmax(1).float()


def ensure_finite(value: float | torch.Tensor, what: str) -> None:
    v = float(value)
    if not math.isfinite(v):
        raise DivergedError(f"{what} became {v}; the run diverged (try a smaller lr)")


def minibatches(
    rows: np.ndarray, batch_size: int, rng: np.random.Generator | None
) -> Iterator[np.ndarray]:
    """Shuffled (rng given) or ordered batches; a trailing batch of one is dropped
    when shuffling, since batch norm cannot train on a single sample."""
    order = rows[rng.permutation(len(rows))] if rng is not None else rows
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        if rng is not None and len(batch) < 2:
            continue
        yield batch


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


@dataclass
class _Selection:
    tasks: list[str]
    carried: list[str]
    own: dict[str, str]  # task → "" or "@<domain>": where its val metrics live
    best: tuple[float, float, int] | None = None  # (val acc, −val loss, −epoch)
    metrics: dict[str, float] = field(default_factory=dict)


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
        self.backbone: Backbone = build_backbone(
            config.backbone, self.domain.input_shape, config.feature_dim, config.weights
        ).to(self.device)

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
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
            )
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)

    def scheduler(self, opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """StepLR every `lr_step_size` epochs, else MultiStepLR at `lr_milestones`."""
        c = self.config
        if c.lr_step_size > 0:
            return torch.optim.lr_scheduler.StepLR(opt, step_size=c.lr_step_size, gamma=c.lr_gamma)
        return torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=list(c.lr_milestones), gamma=c.lr_gamma
        )

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled training batches of the domain trained on."""
        return self.view.epoch(self.config.batch_size, self.rng)

    @torch.no_grad()
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
            out.update(self._score(view, view.rows[split], key, group))
        return out

    @torch.no_grad()
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
            out.update(self._score(view, view.rows["test"], f"test@{name}", moved))
        return out

    def _score(
        self, view: DomainView, rows: np.ndarray, key: str, heads: Sequence[EvalHead]
    ) -> dict[str, float]:
        if len(rows) == 0 or not heads:
            return {}
        modules = [self.backbone, *(h.module for h in heads)]
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        correct = np.zeros(len(heads))
        loss_sum = np.zeros(len(heads))
        count = np.zeros(len(heads))
        for batch in minibatches(rows, 512, None):
            x, y = view.batch(batch)
            h = self.backbone(x)
            for k, head in enumerate(heads):
                logits = head.module(h)
                target = y[:, head.spec.column]
                mask = target >= 0
                n = int(mask.sum())
                if n == 0:
                    continue
                loss_sum[k] += float(task_loss(logits, target, head.spec)) * n
                pred = predictions(logits, head.spec)
                correct[k] += float((pred[mask] == target[mask]).sum())
                count[k] += n
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)
        out = {}
        for k, head in enumerate(heads):
            if count[k] == 0:
                continue
            loss = loss_sum[k] / count[k]
            ensure_finite(loss, f"{key} loss of '{head.spec.name}'")
            out[f"{key}/{head.prefix}acc/{head.spec.name}"] = float(correct[k] / count[k])
            out[f"{key}/{head.prefix}loss/{head.spec.name}"] = float(loss)
        return out

    @torch.no_grad()
    def principal_components(self) -> dict[str, float]:
        """Explained-variance ratio of the top principal components of the test
        features, per test domain (the PL paper's Figure 2)."""
        k = self.config.pca_components
        out: dict[str, float] = {}
        if k <= 0:
            return out
        self.backbone.eval()
        for key, view in [
            ("test", self.view),
            *((f"test@{d}", self.view_of(d)) for d in self.config.test_domains),
        ]:
            rows = view.rows["test"]
            if len(rows) < 2:
                continue
            feats = torch.cat(
                [self.backbone(view.encoder(b)) for b in minibatches(rows, 512, None)]
            ).double()
            feats = feats - feats.mean(0)
            variances = torch.linalg.svdvals(feats) ** 2
            total = float(variances.sum())
            if total <= 0:
                continue
            for i, v in enumerate(variances[:k].tolist(), start=1):
                out[f"{key}/pca_ratio_{i}"] = v / total
        return out

    def run(
        self,
        train_epoch: Callable[[], dict[str, float]],
        heads: Sequence[EvalHead],
        groups: Sequence[tuple[Sequence[str], Sequence[str]]],
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
        average the selected tasks: one objective for any method.
        """
        # Where each main task is scored on its own domain: "val"/"test", or
        # "val@<d>"/"test@<d>" for a task that lives on another domain (MTL-SA's task B).
        own = {
            h.spec.name: ("" if h.view is None or h.view is self.view else f"@{h.view.name}")
            for h in heads
            if not h.prefix
        }
        selections = [_Selection(list(t), list(c), own) for t, c in groups]
        selected = [t for sel in selections for t in sel.tasks]
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
            _add_means(metrics, selected, own, self.config.test_domains)
            self.ctx.report(metrics, epoch)
            for sel in selections:
                _update(sel, metrics, epoch, last_only=self.config.select == "last")
            last = metrics
        final = {k: v for k, v in last.items() if k.startswith("train/")}
        for sel in selections:
            final.update(sel.metrics)
        _add_means(final, selected, own, self.config.test_domains)
        final.update(self.principal_components())
        return final


def _add_means(
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


def _update(sel: _Selection, metrics: dict[str, float], epoch: int, last_only: bool) -> None:
    if not last_only:
        accs = [metrics[f"val{sel.own.get(t, '')}/acc/{t}"] for t in sel.tasks]
        losses = [metrics[f"val{sel.own.get(t, '')}/loss/{t}"] for t in sel.tasks]
        key = (float(np.mean(accs)), -float(np.mean(losses)), -epoch)
        if sel.best is not None and key <= sel.best:
            return
        sel.best = key
    wanted = {*sel.tasks, *sel.carried}
    keep = {}
    for k, v in metrics.items():
        split, _, task = [*k.split("/", 2), "", ""][:3]
        if split.startswith(("val", "test")) and task in wanted:
            keep[k] = v
    keep.update({f"epoch/{t}": float(epoch) for t in wanted})
    sel.metrics = keep
