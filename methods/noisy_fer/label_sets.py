"""Training on several noisy label sets of the same images, and scoring against the
clean labels: what the noisy multi-task FER paper's method (`jdm`) and its
baselines share ("Facial Emotion Recognition with Noisy Multi-task
Annotations", §3, eq. 10, §5.1).

A config names the noisy label sets trained on (`tasks`), which of them are
continuous, and for each the clean column it stands for (`clean`; three noisy
copies of `digit` all stand for `digit`). The model has one head per task on a
shared backbone: class logits for a discrete set, one value for a continuous
one. The task loss is eq. 10's f: cross-entropy for each discrete set plus
γ·(1 − CCC) for each continuous one.

Scoring, every epoch, per clean label c:

- test: the heads standing for c are averaged (class probabilities, or
  values) and scored against the clean column: `test/acc/c`, `test/loss/c`
  (the averaged prediction's cross-entropy) for classes, `test/ccc/c`,
  `test/mse/c` for values; the same on the test split of each `test_domains`;
- val: the paper's protocol has no clean validation labels, so each head is
  scored against its own noisy validation labels and the heads are averaged:
  `val/acc/c` is a noisy-validation accuracy.

`select="last"` (the default: the paper reports the end of training) reports
the last epoch; the epoch with the best noisy-validation accuracy is reported
beside it as `test/best_noisy_val_acc/<c>` etc. (and is what
`select="best_val"` picks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core import (
    BACKBONES,
    ConfigError,
    DataError,
    DomainView,
    GridRoles,
    MethodConfig,
    Metric,
    RunContext,
    RunTasks,
    Trainer,
    check_distinct,
    eval_mode,
    meta,
    minibatches,
    parse_config,
)
from ..core.examples import tiny_dataset
from ..data import Dataset, Domain

if TYPE_CHECKING:
    from typing import Self

# A small valid config on the built-in `noisy_sets`: three noisy copies of the
# digit class and one noisy continuous label.
NOISY_SETS: dict[str, Any] = {
    "tasks": ["digit_n1", "digit_n2", "digit_n3", "ink_n"],
    "continuous": ["ink_n"],
    "clean": ["digit", "digit", "digit", "ink"],
}


@dataclass(frozen=True)
class LabelSetsConfig(MethodConfig):
    """Noisy label sets trained on, the clean labels they stand for, eq. 10's f."""

    # classes (the main tasks) are scored by accuracy, continuous labels (the
    # auxiliary ones) by CCC and squared error
    metrics: ClassVar[tuple[Metric, ...]] = (
        *MethodConfig.metrics,
        Metric("ccc", "max", of="aux"),
        Metric("mse", "min", of="aux"),
    )

    backbone: str = field(
        default="vgg11", metadata=meta("encoder backbone (§5: a VGGNet)", choices=BACKBONES)
    )
    epochs: int = field(default=30, metadata=meta("training epochs (not given)", min=1))
    batch_size: int = field(
        default=128, metadata=meta("minibatch size (the authors' code: 128)", min=2)
    )
    lr: float = field(
        default=1e-4,
        metadata=meta("learning rate (app. A: Adam at 1e-4)", min=0.0, min_exclusive=True),
    )
    weight_decay: float = field(default=0.0, metadata=meta("weight decay (none)", min=0.0))
    lr_milestones: tuple[int, ...] = field(default=(), metadata=meta("no lr schedule"))
    select: Literal["best_val", "last"] = field(
        default="last",
        metadata=meta("report the last epoch (the paper) or the best noisy-validation one"),
    )
    tasks: tuple[str, ...] = field(
        default=(), metadata=meta("the noisy label sets trained on (label columns)")
    )
    continuous: tuple[str, ...] = field(
        default=(), metadata=meta("which of tasks hold continuous values")
    )
    clean: tuple[str, ...] = field(
        default=(),
        metadata=meta("the clean column each task stands for, in order (empty: each its own)"),
    )
    gamma: float = field(
        default=1.0, metadata=meta("γ of eq. 10, weight of 1 − CCC (app. A: 1)", min=0.0)
    )

    def check(self) -> None:
        check_distinct(self.tasks, "tasks")
        if self.loss_reduction != "mean":
            raise ConfigError(
                "eq. 10's f is a batch mean (its 1 − CCC term has no sum);"
                f" loss_reduction={self.loss_reduction} is not supported, use mean"
            )
        for name in self.continuous:
            if name not in self.tasks:
                raise ConfigError(f"continuous names '{name}', which is not one of tasks")
        if self.clean and len(self.clean) != len(self.tasks):
            raise ConfigError(
                f"clean has {len(self.clean)} names for {len(self.tasks)} tasks; give one per"
                " task, in order"
            )
        if not self.discrete:
            raise ConfigError("tasks needs at least one discrete (class) label set")

    @property
    def discrete(self) -> tuple[str, ...]:
        return tuple(t for t in self.tasks if t not in self.continuous)

    def clean_of(self, task: str) -> str:
        return self.clean[self.tasks.index(task)] if self.clean else task

    def check_data(self, data: Dataset) -> None:
        domain = self.check_training(data)
        for task in self.tasks:
            clean = self.clean_of(task)
            if task in self.continuous:
                for name in (task, clean):
                    values = domain.column(name)[domain.indices("train")]
                    if not np.isfinite(values).any():
                        raise DataError(
                            f"continuous label '{name}' has no value in the training split of"
                            f" domain '{domain.name}'"
                        )
            else:
                domain.num_classes(task)
                domain.num_classes(clean)
                if not (domain.column(task)[domain.indices("train")] >= 0).any():
                    raise DataError(f"label set '{task}' has no labelled training row")
        clean_names = {self.clean_of(t) for t in self.tasks}
        for name in self.test_domains:
            other = data.domain(name)
            for c in clean_names:
                other.column_index(c)

    def run_tasks(self) -> RunTasks:
        """Main: the clean classes the sets stand for; auxiliary: the clean values."""
        return RunTasks(
            tuple(dict.fromkeys(self.clean_of(t) for t in self.discrete)),
            tuple(dict.fromkeys(self.clean_of(t) for t in self.continuous)),
        )

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        """Three noisy copies of the digit class and a noisy ink value, small CNN."""
        values = {**NOISY_SETS, "backbone": "small_cnn", "epochs": 2, "batch_size": 64}
        return parse_config(cls, values), tiny_dataset("noisy_sets", n=300)

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        """The grid's task as the only (discrete) label set."""
        return {"domain": train, "test_domains": list(tests), "tasks": [roles.task]}


# ---------------------------------------------------------------- the heads and f


@dataclass(frozen=True)
class LabelSet:
    """One label set on the training domain: its column, its clean column, its width."""

    name: str
    column: int
    clean: str
    continuous: bool
    classes: int  # 0 for a continuous set

    @property
    def out_features(self) -> int:
        return 1 if self.continuous else self.classes


def label_sets(config: LabelSetsConfig, domain: Domain) -> list[LabelSet]:
    out = []
    for task in config.tasks:
        clean = config.clean_of(task)
        if task in config.continuous:
            out.append(LabelSet(task, domain.column_index(task), clean, True, 0))
        else:
            k = max(domain.num_classes(task), domain.num_classes(clean))
            out.append(LabelSet(task, domain.column_index(task), clean, False, k))
    return out


class Heads(nn.Module):
    """One linear head per label set on the backbone's features."""

    def __init__(self, in_features: int, sets: Sequence[LabelSet]):
        super().__init__()
        self.sets = list(sets)
        self.layers = nn.ModuleList(nn.Linear(in_features, s.out_features) for s in sets)

    def forward(self, h: torch.Tensor) -> list[torch.Tensor]:
        return [layer(h) for layer in self.layers]


def ccc(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lin's concordance correlation coefficient with population (1/n) moments:
    2·s_xy / (s_x² + s_y² + (x̄ − ȳ)²). Where the denominator is 0 (both constant
    and equal, e.g. a single matching pair) the two agree perfectly: 1. A single
    pair that differs gives 0, never NaN."""
    pred, target = pred.double(), target.double()
    mx, my = pred.mean(), target.mean()
    cov = ((pred - mx) * (target - my)).mean()
    denominator = pred.var(unbiased=False) + target.var(unbiased=False) + (mx - my) ** 2
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    value = torch.where(denominator > 0, 2.0 * cov / safe, torch.ones_like(denominator))
    return value.float()


def set_loss(output: torch.Tensor, y: torch.Tensor, s: LabelSet, gamma: float) -> torch.Tensor:
    """Eq. 10 for one label set on a batch: CE over labelled rows (−1 missing), or
    γ·(1 − CCC) over rows with a value (NaN missing); 0 on the graph if none."""
    if s.continuous:
        mask = torch.isfinite(y)
        if int(mask.sum()) < 2:
            return output.sum() * 0.0
        return gamma * (1.0 - ccc(output[mask, 0], y[mask]))
    mask = y >= 0
    if not bool(mask.any()):
        return output.sum() * 0.0
    return F.cross_entropy(output[mask], y[mask].long())


def eq10_loss(
    outputs: Sequence[torch.Tensor], y: torch.Tensor, sets: Sequence[LabelSet], gamma: float
) -> torch.Tensor:
    """f of eq. 10: the sum over label sets."""
    return torch.stack(
        [set_loss(o, y[:, s.column], s, gamma) for o, s in zip(outputs, sets, strict=True)]
    ).sum()


# ---------------------------------------------------------------- scoring


class CleanScorer:
    """Every epoch's scores of a model (a function from inputs to the heads' outputs)
    against clean test labels and noisy validation labels."""

    def __init__(
        self,
        trainer: Trainer,
        sets: Sequence[LabelSet],
        modules: Sequence[nn.Module],
        predict: Callable[[torch.Tensor], list[torch.Tensor]],
    ):
        self.trainer = trainer
        self.sets = list(sets)
        self.modules = list(modules)
        self.predict = predict
        self.clean_names = list(dict.fromkeys(s.clean for s in sets))

    def groups(self) -> list[tuple[list[str], list[str]]]:
        """Selection: the clean class labels together, the continuous ones carried."""
        discrete = [c for c in self.clean_names if not self._is_continuous(c)]
        continuous = [c for c in self.clean_names if self._is_continuous(c)]
        return [(discrete, continuous)]

    def _is_continuous(self, clean: str) -> bool:
        return any(s.continuous for s in self.sets if s.clean == clean)

    @torch.no_grad()
    def __call__(self) -> dict[str, float]:
        out: dict[str, float] = {}
        view = self.trainer.view
        with eval_mode(*self.modules):
            out.update(self._noisy(view, view.rows["val"], "val"))
            out.update(self._clean(view, view.rows["test"], "test"))
            for name in self.trainer.config.test_domains:
                other = self.trainer.view_of(name)
                out.update(self._clean(other, other.rows["test"], f"test@{name}"))
        return out

    def _outputs(
        self, view: DomainView, rows: np.ndarray
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        outs: list[list[torch.Tensor]] = [[] for _ in self.sets]
        labels = []
        for batch in minibatches(rows, 512, None):
            x, y = view.batch(batch)
            for k, o in enumerate(self.predict(x)):
                outs[k].append(o.float())
            labels.append(y)
        return [torch.cat(o) for o in outs], torch.cat(labels)

    def _clean(self, view: DomainView, rows: np.ndarray, key: str) -> dict[str, float]:
        if len(rows) == 0:
            return {}
        outputs, y = self._outputs(view, rows)
        out: dict[str, float] = {}
        for clean in self.clean_names:
            members = [k for k, s in enumerate(self.sets) if s.clean == clean]
            target = y[:, view.domain.column_index(clean)]
            if self._is_continuous(clean):
                pred = torch.stack([outputs[k][:, 0] for k in members]).mean(0)
                mask = torch.isfinite(target)
                if int(mask.sum()) == 0:
                    continue
                out[f"{key}/ccc/{clean}"] = float(ccc(pred[mask], target[mask]))
                out[f"{key}/mse/{clean}"] = float(((pred[mask] - target[mask]) ** 2).mean())
                continue
            k = max(outputs[m].shape[1] for m in members)
            probs = torch.stack([_padded_softmax(outputs[m], k) for m in members]).mean(0)
            mask = target >= 0
            if int(mask.sum()) == 0:
                continue
            t = target[mask].long()
            if int(t.max()) >= k:
                continue  # classes the heads do not have (another domain's labels)
            out[f"{key}/acc/{clean}"] = float((probs[mask].argmax(1) == t).float().mean())
            nll = -torch.log(probs[mask].gather(1, t[:, None]).clamp_min(1e-12))
            out[f"{key}/loss/{clean}"] = float(nll.mean())
        return out

    def _noisy(self, view: DomainView, rows: np.ndarray, key: str) -> dict[str, float]:
        if len(rows) == 0:
            return {}
        outputs, y = self._outputs(view, rows)
        per_clean: dict[str, dict[str, list[float]]] = {}
        for k, s in enumerate(self.sets):
            target = y[:, s.column]
            scores = per_clean.setdefault(s.clean, {})
            if s.continuous:
                mask = torch.isfinite(target)
                if int(mask.sum()) == 0:
                    continue
                pred = outputs[k][mask, 0]
                scores.setdefault("ccc", []).append(float(ccc(pred, target[mask])))
                scores.setdefault("mse", []).append(float(((pred - target[mask]) ** 2).mean()))
                continue
            mask = target >= 0
            if int(mask.sum()) == 0:
                continue
            logits, t = outputs[k][mask], target[mask].long()
            scores.setdefault("acc", []).append(float((logits.argmax(1) == t).float().mean()))
            scores.setdefault("loss", []).append(float(F.cross_entropy(logits, t)))
        return {
            f"{key}/{metric}/{clean}": float(np.mean(values))
            for clean, scores in per_clean.items()
            for metric, values in scores.items()
        }


def _padded_softmax(logits: torch.Tensor, k: int) -> torch.Tensor:
    probs = F.softmax(logits, dim=1)
    if probs.shape[1] < k:
        probs = F.pad(probs, (0, k - probs.shape[1]))
    return probs


# ---------------------------------------------------------------- one run


@dataclass
class EpochHistory:
    """Every epoch's reported metrics, kept to report the best noisy-validation epoch
    beside the selected one."""

    report: Callable[[dict[str, float], int], None]
    rows: list[dict[str, float]] = field(default_factory=list)

    def __call__(self, metrics: dict[str, float], epoch: int) -> None:
        self.rows.append({**metrics, "epoch": float(epoch)})
        self.report(metrics, epoch)


def recording(ctx: RunContext) -> tuple[RunContext, EpochHistory]:
    history = EpochHistory(ctx.report)
    return dataclasses.replace(ctx, report=history), history


def best_noisy_val(history: EpochHistory, tasks: Sequence[str]) -> dict[str, float]:
    """The metrics of the epoch with the best mean noisy-validation accuracy over
    `tasks` (ties: the earlier epoch), renamed `<split>/best_noisy_val_<metric>/<task>`
    (e.g. `test/best_noisy_val_acc/digit`), and that epoch as
    `train/best_noisy_val_epoch`."""
    best: tuple[float, float] | None = None
    chosen: dict[str, float] = {}
    for row in history.rows:
        accs = [row.get(f"val/acc/{t}") for t in tasks]
        if any(a is None for a in accs):
            continue
        rank = (float(np.mean(accs)), -row["epoch"])  # type: ignore[arg-type]
        if best is None or rank > best:
            best, chosen = rank, row
    if not chosen:
        return {}
    out: dict[str, float] = {}
    for key, value in chosen.items():
        parts = key.split("/", 2)
        if len(parts) == 3 and parts[0].startswith(("test", "val")):
            out[f"{parts[0]}/best_noisy_val_{parts[1]}/{parts[2]}"] = value
    out["train/best_noisy_val_epoch"] = chosen["epoch"]
    return out


def run_scored(
    trainer: Trainer,
    history: EpochHistory,
    sets: Sequence[LabelSet],
    modules: Sequence[nn.Module],
    predict: Callable[[torch.Tensor], list[torch.Tensor]],
    train_epoch: Callable[[], dict[str, float]],
    schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler],
) -> dict[str, float]:
    """`trainer.run` scored by a `CleanScorer`, with the best noisy-validation epoch's
    metrics added to the selected ones."""
    scorer = CleanScorer(trainer, sets, modules, predict)
    groups = scorer.groups()
    final = trainer.run(train_epoch, [], groups, schedulers, extra_metrics=scorer)
    final.update(best_noisy_val(history, groups[0][0]))
    return final
