"""Packed training: several runs of the same training settings and seed trained as
one horizontally fused network (HFTA, Wang et al., MLSys 2021), each with the
results it gets when trained alone.

The pair search is the case this exists for: the M single-task and M(M−1)/2
pair runs of one seed (`stl`, `mtl`), and its adversarial runs over λ (`aal`
with gradient reversal), share the backbone's shape, every training setting and
the seed — so the same batches in the same order — and differ only in their
heads, how their losses combine and λ (each method's `pack_plan()`). On a GPU
such small trainings are bound by kernel launches; one fused network launches
each layer once for the whole pack (`fused.py`).

Why the results are each run's own:

- each member is built as its own run builds it — seed everything, then F,
  then its heads in task order — so it starts from the same weights, and the
  batches come from the same seeded generator;
- the fused layers compute each member's channels from its own weights only
  (grouped convolutions, per-channel batch norm), so features, batch-norm
  statistics and gradients are the member's;
- the loss minimised is the sum of the members' losses, each combined as its
  method combines it (`PackPlan`: task losses summed, or AAL's group means with
  the adversaries behind a gradient reversal of the member's own λ): a member's
  parameters get the gradient of its own loss alone (they appear in no other
  term);
- one optimiser over every member's parameters updates each member as its own
  would, because Adam and SGD (momentum, weight decay) act elementwise; the
  configs refuse anything global (there is no gradient clipping to make
  per-member); the learning-rate schedule is shared, as the settings are;
- evaluation, epoch selection and reports per member are `Trainer.run`'s.

A member whose loss turns non-finite fails alone, at the end of that epoch, with
the error its own run raises; its loss leaves the sum and its pack-mates train
on (its NaN stays in its own channels). Only runs with the same `pack_key` may
share a pack; the result per member is a float up to rounding away from its
own run (`tests/methods/core/test_packed.py` checks float64 runs to 1e-6).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import nn

from ..data import Dataset
from .backbones import build_backbone, check_precision
from .context import RunContext
from .contract import MethodConfig, PackPlan
from .errors import ConfigError, DataError, DivergedError, ensure_finite
from .evaluation import EVAL_BATCH, EvalHead, HeadScores, eval_mode
from .fused import FusedBackbone, can_fuse, fuse_backbones
from .layers import grad_reverse
from .optim import build_optimizer, build_scheduler
from .selection import Curves, Selection, add_means
from .tasks import TaskSpec, task_loss, task_specs
from .train_config import TrainConfig
from .trainer import seed_everything
from .views import DomainView, minibatches


def pack_key(config: MethodConfig, seed: int) -> str | None:
    """What runs must share to train in one pack: every training setting and the
    seed. None: this run trains alone (a method with its own update, a backbone
    that does not fuse, or a setting the pack does not do: test domains, PCA)."""
    if config.pack_plan() is None or not can_fuse(config.backbone):
        return None
    if config.test_domains or config.pca_components:
        return None
    shared = {f.name: getattr(config, f.name) for f in fields(TrainConfig)}
    return json.dumps({**shared, "seed": seed}, sort_keys=True, default=list)


@dataclass
class _Member:
    """One run of the pack: its heads, how its losses combine, selection and fate."""

    index: int
    plan: PackPlan
    ctx: RunContext
    specs: list[TaskSpec]  # the main tasks'
    heads: list[nn.Linear]
    adv_specs: list[TaskSpec]
    adv_heads: list[nn.Linear]
    curves: Curves
    selections: list[Selection] = field(default_factory=list)
    last: dict[str, float] = field(default_factory=dict)
    error: DivergedError | None = None

    def loss(self, h: torch.Tensor, y: torch.Tensor, reduction: str) -> tuple[torch.Tensor, ...]:
        """(what this run's backward pass minimises, the parts it reports): the task
        losses summed (`train_heads`), or AAL's L_a + L_b with L_b behind the
        reversal (eq. 6/10), reported as [L_a − λ·L_b, L_a, L_b] like `aal`."""
        main = torch.stack(
            [
                task_loss(m(h), y[:, s.column], s, reduction)
                for m, s in zip(self.heads, self.specs, strict=True)
            ]
        )
        if not self.adv_heads:
            return main.sum(), main
        reversed_h = grad_reverse(h, self.plan.reversal)
        adv = torch.stack(
            [
                task_loss(m(reversed_h), y[:, s.column], s, reduction)
                for m, s in zip(self.adv_heads, self.adv_specs, strict=True)
            ]
        ).mean()
        main_mean = main.mean()
        parts = torch.stack([main_mean - self.plan.reversal * adv, main_mean, adv]).detach()
        return main_mean + adv, parts

    def epoch_parts(self, sums: torch.Tensor, steps: int) -> dict[str, float]:
        means = (sums / steps).tolist()
        if self.adv_heads:
            return dict(zip(("loss", "main_loss", "adv_loss"), means, strict=True))
        parts = {"loss": sum(means)}
        if len(self.specs) > 1:
            parts.update({f"loss/{s.name}": v for s, v in zip(self.specs, means, strict=True)})
        return parts

    def eval_heads(self) -> list[EvalHead]:
        return [EvalHead(s, h) for s, h in zip(self.specs, self.heads, strict=True)] + [
            EvalHead(s, h, "adv_") for s, h in zip(self.adv_specs, self.adv_heads, strict=True)
        ]


def train_pack(
    configs: Sequence[MethodConfig], data: Dataset, ctxs: Sequence[RunContext]
) -> list[dict[str, float] | DivergedError]:
    """Train `configs[k]` with `ctxs[k]` for every k as one fused network; return
    each run's final metrics (what its own `train` returns) or the `DivergedError`
    that ended it. Every config must have the same `pack_key` (same seed in each
    ctx); each ctx's `report` hears its own run's metrics every epoch."""
    if not configs or len(configs) != len(ctxs):
        raise ValueError("train_pack needs one context per config, and at least one config")
    keys = {pack_key(c, x.seed) for c, x in zip(configs, ctxs, strict=True)}
    if None in keys or len(keys) != 1:
        raise ConfigError(
            "these runs cannot train as one pack: they need the same training settings and"
            " seed, a backbone that fuses and methods that declare a pack_plan()"
        )
    if len({(x.device, x.num_threads) for x in ctxs}) != 1:
        raise ConfigError("the runs of a pack must share a device and thread count")
    config, ctx0 = configs[0], ctxs[0]
    domain = config.check_training(data)
    if ctx0.num_threads > 0:
        torch.set_num_threads(ctx0.num_threads)
    device = torch.device(ctx0.device)
    view = DomainView(domain, device)  # one copy of the data for the whole pack

    backbones, members = [], []
    for k, (c, ctx) in enumerate(zip(configs, ctxs, strict=True)):
        # as `Trainer` and the kernels build a run: seed, F, the main heads in order,
        # then the adversaries'
        seed_everything(ctx.seed)
        backbones.append(build_backbone(c.backbone, domain.input_shape, c.feature_dim, c.weights))
        plan = c.pack_plan()
        assert plan is not None  # pack_key said so
        specs = task_specs(domain, plan.main, need_val=c.needs_val)
        adv_specs = task_specs(domain, plan.adversaries, need_val=False)
        width = backbones[-1].out_dim
        heads = [nn.Linear(width, s.out_features).to(device) for s in specs]
        adv_heads = [nn.Linear(width, s.out_features).to(device) for s in adv_specs]
        members.append(_Member(k, plan, ctx, specs, heads, adv_specs, adv_heads, Curves.of(c)))
    fused = fuse_backbones(backbones).to(device).use_memory_format(config.memory_format, device)
    check_precision(config.precision, device)
    fused.use_precision(config.precision)
    rng = np.random.default_rng(ctx0.seed)  # the batch order every member's run draws
    heads = [h for m in members for h in (*m.heads, *m.adv_heads)]
    params = [*fused.parameters(), *(p for h in heads for p in h.parameters())]
    opt = build_optimizer(config, params)
    sched = build_scheduler(config, opt)
    for m in members:
        main, adversaries = list(m.plan.main), list(m.plan.adversaries)
        # AAL selects its main group together and carries the adversaries' metrics
        # from that epoch; supervised heads are each selected at their own best
        m.selections = (
            [Selection(main, adversaries, {})]
            if adversaries
            else [Selection([t], [], {}) for t in main]
        )

    for epoch in range(1, config.epochs + 1):
        alive = [m for m in members if m.error is None]
        if not alive:
            break
        for module in (fused, *(h for m in alive for h in (*m.heads, *m.adv_heads))):
            module.train()
        parts = _train_epoch(fused, alive, view, config, rng, opt)
        sched.step()
        scores = {split: _evaluate(fused, alive, view, split) for split in ("val", "test")}
        for m in alive:
            try:
                for name, value in parts[m.index].items():
                    ensure_finite(value, f"training {name} in epoch {epoch}")
                metrics = {f"train/{k}": v for k, v in parts[m.index].items()}
                for split in ("val", "test"):
                    metrics.update(scores[split][m.index].metrics(split))
            except DivergedError as exc:
                m.error = exc
                continue
            add_means(metrics, m.plan.main, {}, ())
            m.ctx.report(metrics, epoch)
            m.curves.update(metrics, epoch)
            for sel in m.selections:
                sel.update(metrics, epoch, last_only=config.select == "last")
            m.last = metrics

    out: list[dict[str, float] | DivergedError] = []
    for m in members:
        if m.error is not None:
            out.append(m.error)
            continue
        final = {k: v for k, v in m.last.items() if k.startswith("train/")}
        for sel in m.selections:
            final.update(sel.metrics)
        add_means(final, m.plan.main, {}, ())
        final.update(m.curves.values)
        out.append(final)
    return out


def train_pack_within_memory(
    configs: Sequence[MethodConfig], data: Dataset, ctxs: Sequence[RunContext]
) -> list[dict[str, float] | DivergedError]:
    """`train_pack`, with a pack that runs out of device memory split in two halves,
    each trained again from the start (seeded as before, so with the numbers it
    would have had), down to single runs. A pack as large as the GPU holds is
    found this way, not guessed: `--pack auto` asks for large packs on a GPU.
    (A run's `report` may hear the first epochs of the attempt that ran out.)"""
    try:
        return train_pack(configs, data, ctxs)
    except torch.OutOfMemoryError:
        if len(configs) == 1:
            raise
    # retried outside the handler, so the failed attempt's tensors are freed first
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    half = len(configs) // 2
    return train_pack_within_memory(configs[:half], data, ctxs[:half]) + (
        train_pack_within_memory(configs[half:], data, ctxs[half:])
    )


def _train_epoch(
    fused: FusedBackbone,
    alive: Sequence[_Member],
    view: DomainView,
    config: TrainConfig,
    rng: np.random.Generator,
    opt: torch.optim.Optimizer,
) -> dict[int, dict[str, float]]:
    """One pass over the training split: the loss parts of every live member, each
    summed over the steps (on the device: one synchronisation per epoch)."""
    sums: list[torch.Tensor | None] = [None] * len(alive)
    steps = 0
    for x, y in view.epoch(config.batch_size, rng):
        features = fused(x)  # (B, members, F): column k is member k's F(x)
        losses = [m.loss(features[:, m.index], y, config.loss_reduction) for m in alive]
        opt.zero_grad(set_to_none=True)
        torch.stack([minimised for minimised, _ in losses]).sum().backward()
        opt.step()
        for i, (_, parts) in enumerate(losses):
            previous = sums[i]
            sums[i] = parts.detach() if previous is None else previous + parts.detach()
        steps += 1
    if steps == 0:
        raise DataError(
            f"domain '{view.name}' has fewer than 2 training rows; a batch needs at least 2"
        )
    out = {}
    for m, total in zip(alive, sums, strict=True):
        assert total is not None
        out[m.index] = m.epoch_parts(total, steps)
    return out


@torch.no_grad()
def _evaluate(
    fused: FusedBackbone, alive: Sequence[_Member], view: DomainView, split: str
) -> dict[int, HeadScores]:
    """Every live member's heads on `split`, from one fused forward per batch."""
    scores = {m.index: HeadScores(m.eval_heads()) for m in alive}
    rows = view.rows[split]
    if len(rows) == 0:
        return scores
    with eval_mode(fused, *(h for m in alive for h in (*m.heads, *m.adv_heads))):
        for batch in minibatches(rows, EVAL_BATCH, None):
            x, y = view.batch(batch)
            features = fused(x)
            for m in alive:
                scores[m.index].add(features[:, m.index], y)
    return scores
