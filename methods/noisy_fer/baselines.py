"""The noisy multi-task FER paper's baselines (§5.1, Table 1), each a registered
method on the label-set scaffolding of `label_sets.py`:

- `noisy_clean`: the backbone trained on the clean labels (each task's `clean`
  column): the upper reference;
- `noisy_majority`: trained on the majority vote of the discrete label sets
  that stand for the same clean label (ties: the class voted by the earliest
  set among the tied ones) and the mean of the continuous ones;
- `noisy_all`: trained on every noisy set, one head each, losses summed (eq. 10's
  f alone: `jdm` without its adversarial terms);
- `sce`: symmetric cross-entropy (Wang et al. 2019): α·CE(q, p) + β·RCE,
  RCE = −Σ_k p_k log q_k with log 0 clipped to A = −4; α = 0.1, β = 1 (their
  CIFAR-10 setting);
- `coteaching`: Co-teaching (Han et al. 2018): two networks; on each batch each
  keeps the (1 − R(t)) share of samples with its smallest loss, and its peer is
  updated on them; R(t) = τ·min((t/T_k)^c, 1) per epoch t, τ the forget rate
  (set it to the noise rate), T_k = 10, c = 1. Network 1 is scored.

§5.1 trains these two "combining losses of all label sets": every class set in
`tasks` gets a head and the losses are summed (Co-teaching ranks samples by the
summed loss); `tasks=[one set]` is the single-set variant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core import Trainer, gradient_pass, parse_config
from ..core.config import meta
from ..core.context import RunContext
from ..core.errors import ConfigError, DataError
from ..core.examples import tiny_dataset
from ..core.registry import register_method
from ..data import Dataset
from .label_sets import (
    EpochHistory,
    Heads,
    LabelSet,
    LabelSetsConfig,
    eq10_loss,
    label_sets,
    recording,
    run_scored,
)

if TYPE_CHECKING:
    from typing import Self

TrainLabels = Literal["noisy", "clean", "majority"]


def training_labels(
    sets: list[LabelSet], domain_labels: np.ndarray, names: tuple[str, ...], which: TrainLabels
) -> np.ndarray:
    """(N, len(sets)) labels each head trains on."""
    out = np.stack([domain_labels[:, s.column] for s in sets], axis=1).astype(np.float32)
    if which == "clean":
        for k, s in enumerate(sets):
            out[:, k] = domain_labels[:, names.index(s.clean)]
    elif which == "majority":
        for clean in dict.fromkeys(s.clean for s in sets):
            members = [k for k, s in enumerate(sets) if s.clean == clean]
            if sets[members[0]].continuous:
                with np.errstate(invalid="ignore"):
                    values = np.nanmean(out[:, members], axis=1)
            else:
                values = majority_vote(out[:, members].astype(np.int64))
            for k in members:
                out[:, k] = values
    return out


def majority_vote(votes: np.ndarray) -> np.ndarray:
    """Per row, the most frequent label ≥ 0 (−1 if none); ties go to the class whose
    first vote comes earliest."""
    result = np.full(len(votes), -1, dtype=np.int64)
    for i, row in enumerate(votes):
        valid = row[row >= 0]
        if len(valid) == 0:
            continue
        classes, counts = np.unique(valid, return_counts=True)
        tied = classes[counts == counts.max()]
        result[i] = next(v for v in valid if v in tied)
    return result


# What one batch costs: (outputs of every head, the batch's rows, its label table)
# → the loss, or None when the batch holds nothing to learn from.
BatchLoss = Callable[[list[torch.Tensor], np.ndarray, torch.Tensor], torch.Tensor | None]


def _fit_heads(
    trainer: Trainer,
    history: EpochHistory,
    sets: list[LabelSet],
    batch_loss: BatchLoss,
) -> dict[str, float]:
    """The backbone and one head per set, trained by one optimiser on `batch_loss`
    and scored as every label-set method is (`run_scored`)."""
    heads = Heads(trainer.backbone.out_dim, sets).to(trainer.device)
    opt = trainer.optimizer([*trainer.backbone.parameters(), *heads.parameters()])

    def loss(batch: tuple[np.ndarray, torch.Tensor, torch.Tensor]) -> torch.Tensor | None:
        rows, x, y = batch
        value = batch_loss(heads(trainer.backbone(x)), rows, y)
        return None if value is None else value[None]

    def train_epoch() -> dict[str, float]:
        trainer.backbone.train()
        heads.train()
        total, steps = gradient_pass(
            trainer.view.epoch_rows(trainer.config.batch_size, trainer.rng), loss, opt
        )
        return {"loss": float(total) / steps if total is not None else 0.0}

    return run_scored(
        trainer,
        history,
        sets,
        [trainer.backbone, heads],
        lambda x: heads(trainer.backbone(x)),
        train_epoch,
        [trainer.scheduler(opt)],
    )


def _train(
    config: LabelSetsConfig,
    data: Dataset,
    ctx: RunContext,
    which: TrainLabels,
) -> dict[str, float]:
    ctx, history = recording(ctx)
    trainer = Trainer(config, data, ctx)
    domain = trainer.view.domain
    sets = label_sets(config, domain)
    labels = torch.tensor(
        training_labels(sets, domain.labels, domain.label_names, which), device=trainer.device
    )
    # column k of `labels` is what head k trains on
    by_position = [
        LabelSet(s.name, k, s.clean, s.continuous, s.classes) for k, s in enumerate(sets)
    ]

    def batch_loss(outputs: list[torch.Tensor], rows: np.ndarray, _: torch.Tensor) -> torch.Tensor:
        y = labels[torch.from_numpy(rows).to(trainer.device)]
        return eq10_loss(outputs, y, by_position, config.gamma)

    return _fit_heads(trainer, history, sets, batch_loss)


@dataclass(frozen=True)
class CleanLabelsConfig(LabelSetsConfig):
    """Training on the clean columns: they must be labelled on training rows."""

    def check_data(self, data: Dataset) -> None:
        super().check_data(data)
        domain = data.domain(self.domain)
        train = domain.indices("train")
        for task in self.discrete:
            clean = self.clean_of(task)
            if not (domain.column(clean)[train] >= 0).any():
                raise DataError(
                    f"noisy_clean trains on the clean labels, but '{clean}' has no labelled"
                    f" training row in domain '{domain.name}'"
                )


@register_method("noisy_clean", config=CleanLabelsConfig)
def train_clean(config: CleanLabelsConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return _train(config, data, ctx, "clean")


@register_method("noisy_majority", config=LabelSetsConfig)
def train_majority(config: LabelSetsConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return _train(config, data, ctx, "majority")


@register_method("noisy_all", config=LabelSetsConfig)
def train_all(config: LabelSetsConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return _train(config, data, ctx, "noisy")


# ---------------------------------------------------------------- SCE and Co-teaching


@dataclass(frozen=True)
class ClassSetsConfig(LabelSetsConfig):
    """A classification loss for noisy class label sets: every set given in `tasks`,
    one head each, losses summed — §5.1 trains the single-set baselines "combining
    losses of all label sets" — or a single set (`tasks=[digit_n1]`)."""

    def check(self) -> None:
        super().check()
        if self.continuous:
            raise ConfigError(
                f"continuous={list(self.continuous)}: this method takes class label sets"
                " only; leave the continuous ones out of tasks"
            )

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        """The three noisy copies of the digit class, combined."""
        values = {
            "tasks": ["digit_n1", "digit_n2", "digit_n3"],
            "clean": ["digit", "digit", "digit"],
            "backbone": "small_cnn",
            "epochs": 2,
            "batch_size": 64,
        }
        return parse_config(cls, values), tiny_dataset("noisy_sets", n=300)


@dataclass(frozen=True)
class SCEConfig(ClassSetsConfig):
    """Symmetric cross-entropy: α·CE + β·RCE."""

    sce_alpha: float = field(default=0.1, metadata=meta("α (SCE, CIFAR-10: 0.1)", min=0.0))
    sce_beta: float = field(default=1.0, metadata=meta("β (SCE, CIFAR-10: 1.0)", min=0.0))
    log_clip: float = field(
        default=-4.0, metadata=meta("A: log 0 in the reverse term (SCE: −4)", max=0.0)
    )


def symmetric_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, alpha: float, beta: float, log_clip: float
) -> torch.Tensor:
    """α·CE(q, p) + β·RCE(q, p), q the one-hot labels, p the predictions; RCE's
    log q_k is 0 for the label and `log_clip` elsewhere."""
    ce = F.cross_entropy(logits, target)
    probs = F.softmax(logits, dim=1).clamp_min(1e-7)
    onehot = F.one_hot(target, logits.shape[1]).float()
    log_q = torch.where(onehot > 0, torch.zeros_like(onehot), torch.full_like(onehot, log_clip))
    rce = -(probs * log_q).sum(1).mean()
    return alpha * ce + beta * rce


@register_method("sce", config=SCEConfig)
def train_sce(config: SCEConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    ctx, history = recording(ctx)
    trainer = Trainer(config, data, ctx)
    sets = label_sets(config, trainer.view.domain)

    def batch_loss(
        outputs: list[torch.Tensor], _: np.ndarray, y: torch.Tensor
    ) -> torch.Tensor | None:
        terms = []
        for out, s in zip(outputs, sets, strict=True):
            t = y[:, s.column]
            mask = t >= 0
            if int(mask.sum()) == 0:
                continue
            terms.append(
                symmetric_cross_entropy(
                    out[mask], t[mask].long(), config.sce_alpha, config.sce_beta, config.log_clip
                )
            )
        return torch.stack(terms).sum() if terms else None

    return _fit_heads(trainer, history, sets, batch_loss)


@dataclass(frozen=True)
class CoteachingConfig(ClassSetsConfig):
    """Co-teaching: two networks teach each other with their small-loss samples."""

    forget_rate: float = field(
        default=0.2,
        metadata=meta("τ, the share finally dropped (set to the noise rate)", min=0.0, max=0.99),
    )
    num_gradual: int = field(default=10, metadata=meta("T_k: epochs to reach τ (10)", min=1))
    exponent: float = field(default=1.0, metadata=meta("c of the schedule (1)", min=0.0))


def forget_schedule(epoch: int, config: CoteachingConfig) -> float:
    """R(t) for epoch t = 1, 2, …: τ·min(((t − 1)/T_k)^c, 1) (0 in the first epoch)."""
    return config.forget_rate * min(((epoch - 1) / config.num_gradual) ** config.exponent, 1.0)


def small_loss_rows(losses: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the `keep` smallest losses."""
    return torch.argsort(losses.detach())[:keep]


def per_sample_loss(outputs: torch.Tensor | list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """Each sample's cross-entropy summed over the label sets (a missing label, −1,
    adds nothing): `outputs` one logits tensor per set, `y` one label column per set
    (a single tensor and a label vector for one set)."""
    sets = outputs if isinstance(outputs, list) else [outputs]
    labels = y if y.ndim == 2 else y[:, None]
    total = torch.zeros(len(labels), device=labels.device)
    for k, logits in enumerate(sets):
        t = labels[:, k]
        ce = F.cross_entropy(logits, t.clamp(min=0).long(), reduction="none")
        total = total + torch.where(t >= 0, ce, torch.zeros_like(ce))
    return total


def coteaching_step(
    nets: tuple[nn.Module, nn.Module],
    opts: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    x: torch.Tensor,
    y: torch.Tensor,
    forget: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One exchange: each network picks its small-loss samples (by the loss summed
    over the label sets), the peer learns from them. Returns the rows each network
    chose (net 1's, net 2's) and the mean loss each network was updated on."""
    losses = [per_sample_loss(net(x), y) for net in nets]
    keep = max(1, round((1.0 - forget) * len(y)))
    chosen = [small_loss_rows(loss, keep) for loss in losses]
    updates = []
    for k, (opt, loss) in enumerate(zip(opts, losses, strict=True)):
        update = loss[chosen[1 - k]].mean()
        opt.zero_grad(set_to_none=True)
        update.backward()
        opt.step()
        updates.append(update.detach())
    return chosen[0], chosen[1], torch.stack(updates)


@register_method("coteaching", config=CoteachingConfig)
def train_coteaching(config: CoteachingConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    ctx, history = recording(ctx)
    trainer = Trainer(config, data, ctx)
    sets = label_sets(config, trainer.view.domain)
    columns = [s.column for s in sets]
    heads = Heads(trainer.backbone.out_dim, sets).to(trainer.device)
    peer_backbone = trainer.new_backbone()
    peer_heads = Heads(peer_backbone.out_dim, sets).to(trainer.device)
    net1 = _Net(trainer.backbone, heads)
    net2 = _Net(peer_backbone, peer_heads)
    opts = (trainer.optimizer(list(net1.parameters())), trainer.optimizer(list(net2.parameters())))
    epoch = 0

    def train_epoch() -> dict[str, float]:
        nonlocal epoch
        epoch += 1
        forget = forget_schedule(epoch, config)
        net1.train()
        net2.train()
        total, n = torch.zeros(2, device=trainer.device), 0
        for x, y in trainer.batches():
            t = y[:, columns]
            mask = (t >= 0).any(1)
            if int(mask.sum()) < 2:
                continue
            *_, losses = coteaching_step((net1, net2), opts, x[mask], t[mask], forget)
            total += losses
            n += 1
        net_losses = (total / max(n, 1)).tolist()
        return {
            "loss": float(np.mean(net_losses)),
            "loss/net1": net_losses[0],
            "loss/net2": net_losses[1],
            "forget_rate": forget,
        }

    return run_scored(
        trainer,
        history,
        sets,
        [net1, net2],
        net1,
        train_epoch,
        [trainer.scheduler(opts[0]), trainer.scheduler(opts[1])],
    )


class _Net(nn.Module):
    """A backbone and its heads: one logits tensor per label set."""

    def __init__(self, backbone: nn.Module, heads: Heads):
        super().__init__()
        self.backbone = backbone
        self.heads = heads

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.heads(self.backbone(x))
