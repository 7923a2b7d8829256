"""`aal`: Adversarial Attribute Learning (AAL, "Adversarial Attribute Learning by
Exploiting Negative Correlated Attributes").

A shared backbone F feeds the main heads C_a and adversary heads C_b. The
adversaries are attributes that showed negative transfer onto the main ones in
the pair search; F is trained to be *invariant* to them.

`adversary_loss` chooses how the min–max game of eq. 3 (eq. 9 for groups) is
optimised:

- "reversal" (the paper's method, §3.2): one backward pass of L_a + L_b with a
  gradient reversal layer between F and C_b, so F and C_a minimise
  L_a − λ·L_b (eq. 6; eq. 10 with group means 1/A, 1/B) while C_b minimises
  L_b (eq. 5; eq. 11).
- "gan" (ablation, Table 1): alternating steps, C_b on L_b with F frozen (eq. 5),
  then F and C_a on L_a + λ·L(C_b(h), 1 − y_b) with C_b frozen — the adversary
  is fooled towards the flipped label (eq. 4). Binary adversaries only.
- "wgan" (ablation, Table 1): C_b is a weight-clipped critic (WGAN) scoring
  features; it maximises W = E[C_b(h) | y_b = 1] − E[C_b(h) | y_b = 0] and F, C_a
  minimise L_a + λ·W. The paper gives no equation for this ablation; this is
  the WGAN form of eq. 3 with the attribute classes as the two distributions.
  `critic_clip` is WGAN's c (0.01 in Arjovsky et al.). Binary adversaries only.
- "confusion" (not in the paper): alternating steps, C_b on L_b with F frozen
  (eq. 5), then F and C_a on L_a + λ·L_conf with C_b frozen, where L_conf is the
  cross-entropy of C_b's prediction against the uniform distribution,
  −(1/K) Σ_k log p_k (K = 2 for a binary b: −½ log σ(z) − ½ log σ(−z)). This is
  the domain-confusion loss of Tzeng et al. 2015 ("Simultaneous Deep Transfer
  Across Domains and Tasks", eq. 3) as Alvi et al. 2018 ("Turning a Blind Eye",
  eq. 3–4) use it to remove a bias. Reversal's F maximises L_b, which an
  adversary that is confidently *wrong* satisfies as well as one that cannot
  tell: the features can invert b rather than drop it. L_conf is least only
  when C_b cannot tell (p uniform); an inverted b scores as badly as a kept
  one. Any number of classes.

Groups (appendix A.2): `main` and `adversaries` may each name several
attributes; losses are averaged within each group (eq. 10–11). "Multiple
adversarial training" (§4.2.1) is `adversaries` = all negative partners.
`adversary_domain` lets the adversaries learn labels of another dataset: each
step then scores them on a batch drawn from it (the Purified Learning paper's
adversarial multi-task baseline, `amtl`). `permute_adversaries` is a null
control of ours: the same training with the partner's training labels shuffled
among the rows, so whatever "gain" it shows comes from the selection of λ and
epoch, not from unlearning the partner (`auxsearch pairs --null-control`).

Defaults (§4.1): Adam, lr 1e-4, weight decay 5e-4, 6 epochs, lr ÷10 after
epoch 4, λ tuned over {0.01, 0.1, 0.3, 0.5, 1.0} (the default 0.1 is a value of
that sweep; `auxsearch pairs` sweeps all of them). The main group is selected
at its best validation epoch; adversary accuracies are reported from that epoch
(`val/adv_acc/<b>`), and for every epoch (`curve/<e>/val/adv_acc/<b>`): far from
chance in either direction, the features still carry b. `probe=True` (ours)
also fits a fresh linear probe for each adversary on the frozen features every
epoch (`<split>/probe_acc/<b>`, `core/probe.py`): the adversary head lags
features that move, a probe does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core import (
    ConfigError,
    DomainView,
    EvalHead,
    Goal,
    GridRoles,
    MethodConfig,
    Metric,
    PackPlan,
    RunContext,
    RunTasks,
    TaskSpec,
    Trainer,
    check_distinct,
    meta,
    parse_config,
    register_method,
    task_loss,
    task_specs,
)
from ..core.examples import TINY_TRAIN, tiny_dataset
from ..core.layers import grad_reverse
from ..core.probe import probe_accuracies
from ..data import Dataset

if TYPE_CHECKING:
    from typing import Self


@dataclass(frozen=True)
class AALConfig(MethodConfig):
    """AAL: main attributes learned adversarially against their negative partners."""

    # `<split>/adv_acc/<b>`: how much of adversary b the features still carry
    metrics: ClassVar[tuple[Metric, ...]] = (
        *MethodConfig.metrics,
        Metric("adv_acc", "max", of="aux", partner=True, curve=True),
        Metric("adv_loss", "min", of="aux", partner=True),
        # a fresh linear probe's accuracy on b (`probe=True`): what the features carry
        Metric("probe_acc", "min", of="aux", partner=True, curve=True),
    )

    main: tuple[str, ...] = field(default=(), metadata=meta("group a: attributes to improve"))
    adversaries: tuple[str, ...] = field(
        default=(), metadata=meta("group b: negative-transfer partners the features unlearn")
    )
    lam: float = field(default=0.1, metadata=meta("λ of eq. 4/6/10 (swept in §4.1)", min=0.0))
    adversary_loss: Literal["reversal", "gan", "wgan", "confusion"] = field(
        default="reversal",
        metadata=meta("how the min–max of eq. 3 is optimised (confusion: ours, Tzeng et al. 2015)"),
    )
    critic_clip: float = field(
        default=0.01,
        metadata=meta("WGAN critic weight clip c (wgan only)", min=0.0, min_exclusive=True),
    )
    adversary_domain: str = field(
        default="",
        metadata=meta("domain whose labels the adversaries learn ('' = the domain trained on)"),
    )
    probe: bool = field(
        default=False,
        metadata=meta(
            "fit a fresh linear probe per adversary on the frozen features every epoch"
            " (ours): <split>/probe_acc/<b>, how linearly readable b still is"
        ),
    )
    permute_adversaries: bool = field(
        default=False,
        metadata=meta(
            "null control (not in the paper): the adversaries' training labels shuffled among"
            " the training rows, so they say nothing about the images; the rest unchanged"
        ),
    )

    def check(self) -> None:
        check_distinct(self.main, "main")
        check_distinct(self.adversaries, "adversaries")
        both = sorted(set(self.main) & set(self.adversaries))
        if both:
            raise ConfigError(f"attribute '{both[0]}' is in both main and adversaries")

    def run_tasks(self) -> RunTasks:
        return RunTasks(self.main, self.adversaries)

    def objectives(self) -> dict[str, Goal]:
        """The adversaries are scored on their own domain's validation split
        (`val@<adversary_domain>/adv_acc/<b>`); a WGAN critic's score is not a
        classifier's, so it has no adversary metric."""
        out: dict[str, Goal] = {}
        split = f"val@{self.adversary_domain}" if self.adversary_domain else "val"
        for key, goal in super().objectives().items():
            if "/probe_acc/" in key:
                if self.probe:
                    out[key.replace("val/", f"{split}/", 1)] = goal
            elif "/adv_" not in key:
                out[key] = goal
            elif self.adversary_loss != "wgan":
                out[key.replace("val/", f"{split}/", 1)] = goal
        return out

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        """The target task, adversarial to the irrelevant label of the irrelevant set."""
        return {
            "domain": train,
            "test_domains": list(tests),
            "main": [roles.task],
            "adversaries": [roles.irrelevant_label],
            "adversary_domain": roles.irrelevant_domain,
        }

    @staticmethod
    def for_tasks(main: Sequence[str], aux: Sequence[str]) -> dict[str, Any]:
        """`main` learned adversarially against the partners `aux`."""
        return {"main": list(main), "adversaries": list(aux)}

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        """Two of the generated shapes' attributes, one the adversary of the other."""
        data = tiny_dataset("shapes", n=120, image_size=16, seed=0, correlation=0.5)
        return parse_config(cls, {**TINY_TRAIN, "main": ["left"], "adversaries": ["red"]}), data

    def check_data(self, data: Dataset) -> None:
        domain = self.check_training(data)
        task_specs(domain, self.main, need_val=self.needs_val)
        adversary_domain = data.domain(self.adversary_domain) if self.adversary_domain else domain
        for spec in task_specs(adversary_domain, self.adversaries, need_val=False):
            if self.adversary_loss in ("gan", "wgan") and spec.num_classes != 2:
                raise ConfigError(
                    f"adversary_loss={self.adversary_loss} needs binary adversaries, but"
                    f" '{spec.name}' has {spec.num_classes} classes; use adversary_loss="
                    "reversal or confusion"
                )

    def pack_plan(self) -> PackPlan | None:
        """The paper's gradient reversal on the domain trained on packs (a pair
        search's λ values and attributes of one seed); the alternating objectives,
        another domain's adversaries, the shuffled-label control and probes train
        alone."""
        if (
            self.adversary_loss != "reversal"
            or self.adversary_domain
            or self.permute_adversaries
            or self.probe
        ):
            return None
        return PackPlan(self.main, self.adversaries, self.lam)


def _group_loss(
    heads: Sequence[nn.Module],
    specs: Sequence[TaskSpec],
    h: torch.Tensor,
    y: torch.Tensor,
    flip: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """Mean over a group of the per-attribute losses (the 1/A, 1/B of eq. 10–11), each
    reduced over the batch by `reduction`."""
    losses = []
    for head, s in zip(heads, specs, strict=True):
        target = y[:, s.column]
        if flip:  # eq. 4: the adversary is pushed towards 1 − y_b (missing stays missing)
            target = torch.where(target >= 0, 1.0 - target, target)
        losses.append(task_loss(head(h), target, s, reduction))
    return torch.stack(losses).mean()


def confusion_loss(logits: torch.Tensor, spec: TaskSpec, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of a head's prediction against the uniform distribution over
    its K classes, −(1/K) Σ_k log p_k per sample (Tzeng et al. 2015, eq. 3): least,
    log K, where the head cannot tell the classes apart, and the same for a
    confident prediction whichever class it names. Label-free: every row counts."""
    if spec.out_features == 1:  # one logit z: K = 2, p = (σ(z), σ(−z))
        z = logits[:, 0]
        per_row = -0.5 * (F.logsigmoid(z) + F.logsigmoid(-z))
    else:
        per_row = -F.log_softmax(logits, dim=1).mean(1)
    return per_row.sum() if reduction == "sum" else per_row.mean()


def _confusion(
    heads: Sequence[nn.Module], specs: Sequence[TaskSpec], h: torch.Tensor, reduction: str
) -> torch.Tensor:
    """L_conf averaged over the adversary group (as eq. 10–11 average L_b)."""
    return torch.stack(
        [confusion_loss(head(h), s, reduction) for head, s in zip(heads, specs, strict=True)]
    ).mean()


def _wasserstein(
    critics: Sequence[nn.Module], specs: Sequence[TaskSpec], h: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Mean over adversaries of E[C_b(h) | y_b=1] − E[C_b(h) | y_b=0] (0 if a class is absent)."""
    gaps = []
    for critic, s in zip(critics, specs, strict=True):
        score = critic(h)[:, 0]
        target = y[:, s.column]
        pos, neg = target == 1, target == 0
        if bool(pos.any()) and bool(neg.any()):
            gaps.append(score[pos].mean() - score[neg].mean())
        else:
            gaps.append(score.sum() * 0.0)
    return torch.stack(gaps).mean()


@dataclass
class AdversarialNet:
    """F with the main heads C_a and the adversary heads C_b of one AAL run."""

    backbone: nn.Module
    main_heads: list[nn.Module]
    main_specs: list[TaskSpec]
    adv_heads: list[nn.Module]
    adv_specs: list[TaskSpec]
    reduction: str = "mean"  # of each task loss over the batch (`loss_reduction`)

    def f_params(self) -> list[nn.Parameter]:
        """θ_F and θ_{C_a}: the players minimising eq. 4/6/10."""
        return [*self.backbone.parameters(), *(p for m in self.main_heads for p in m.parameters())]

    def b_params(self) -> list[nn.Parameter]:
        """θ_{C_b}: the adversaries (eq. 5/11)."""
        return [p for m in self.adv_heads for p in m.parameters()]


Step = Callable[..., torch.Tensor]


def make_step(
    net: AdversarialNet,
    mode: str,
    lam: float,
    optimizers: Sequence[torch.optim.Optimizer],
    critic_clip: float = 0.01,
) -> Step:
    """One AAL update; returns [objective of F, L_a, adversary loss], detached and
    on the device (summed over an epoch without a sync per step).

    `step(x, y)` scores the adversaries on the same batch; `step(x, y, xa, ya)`
    on a batch of another domain (the adversaries' labels live there).
    `optimizers`: one over all parameters for "reversal"; (F and C_a, C_b) for
    "gan", "wgan" and "confusion".
    """
    if mode == "reversal":
        (opt,) = optimizers

        def reversal(
            x: torch.Tensor,
            y: torch.Tensor,
            xa: torch.Tensor | None = None,
            ya: torch.Tensor | None = None,
        ) -> torch.Tensor:
            h = net.backbone(x)
            ha, yb = (h, y) if xa is None or ya is None else (net.backbone(xa), ya)
            main = _group_loss(net.main_heads, net.main_specs, h, y, reduction=net.reduction)
            adv = _group_loss(
                net.adv_heads, net.adv_specs, grad_reverse(ha, lam), yb, reduction=net.reduction
            )
            opt.zero_grad(set_to_none=True)
            (main + adv).backward()  # F, C_a see ∇(L_a − λ L_b); C_b sees ∇L_b
            opt.step()
            main, adv = main.detach(), adv.detach()
            return torch.stack([main - lam * adv, main, adv])

        return reversal

    opt_f, opt_b = optimizers
    wgan = mode == "wgan"
    b_params = net.b_params()

    def alternating(
        x: torch.Tensor,
        y: torch.Tensor,
        xa: torch.Tensor | None = None,
        ya: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = net.backbone(x)
        ha, yb = (h, y) if xa is None or ya is None else (net.backbone(xa), ya)
        # Adversary step on frozen features: eq. 5, or the critic's ascent on W.
        if wgan:
            adv = -_wasserstein(net.adv_heads, net.adv_specs, ha.detach(), yb)
        else:
            adv = _group_loss(
                net.adv_heads, net.adv_specs, ha.detach(), yb, reduction=net.reduction
            )
        opt_b.zero_grad(set_to_none=True)
        adv.backward()
        opt_b.step()
        if wgan:
            with torch.no_grad():
                for p in b_params:
                    p.clamp_(-critic_clip, critic_clip)
        # Feature step against the updated, frozen adversary: eq. 4, minimising W,
        # or confusing C_b (L_conf)
        main = _group_loss(net.main_heads, net.main_specs, h, y, reduction=net.reduction)
        if wgan:
            fool = _wasserstein(net.adv_heads, net.adv_specs, ha, yb)
        elif mode == "confusion":
            fool = _confusion(net.adv_heads, net.adv_specs, ha, net.reduction)
        else:
            fool = _group_loss(
                net.adv_heads, net.adv_specs, ha, yb, flip=True, reduction=net.reduction
            )
        opt_f.zero_grad(set_to_none=True)
        (main + lam * fool).backward()
        opt_f.step()
        main, fool, adv = main.detach(), fool.detach(), adv.detach()
        return torch.stack([main + lam * fool, main, -adv if wgan else adv])

    return alternating


def permute_labels(view: DomainView, columns: Sequence[int], seed: int) -> None:
    """Shuffle `columns` of the view's label table among its training rows, in place
    (the view holds its own copy of the labels). The generator is the run's seed's
    own, not the trainer's, so batches come in the same order as without the shuffle:
    only what the labels say about the images changes."""
    rows = view.rows["train"]
    order = np.random.default_rng([seed, 0x9E11]).permutation(len(rows))
    index = torch.from_numpy(rows).to(view.device)
    shuffled = torch.from_numpy(rows[order]).to(view.device)
    for column in columns:
        view.labels[index, column] = view.labels[shuffled, column].clone()


@register_method("aal", config=AALConfig)
def train(config: AALConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    trainer = Trainer(config, data, ctx)
    adv_view = trainer.view_of(config.adversary_domain) if config.adversary_domain else trainer.view
    main_specs = task_specs(trainer.domain, config.main, need_val=config.needs_val)
    adv_specs = task_specs(adv_view.domain, config.adversaries, need_val=False)
    # the probe asks what the features carry of the true b, even in the null control
    true_labels = adv_view.labels.clone() if config.probe else None
    if config.permute_adversaries:
        permute_labels(adv_view, [s.column for s in adv_specs], ctx.seed)
    net = AdversarialNet(
        trainer.backbone,
        [trainer.head(s) for s in main_specs],
        main_specs,
        [trainer.head(s) for s in adv_specs],
        adv_specs,
        config.loss_reduction,
    )
    if config.adversary_loss == "reversal":
        optimizers = [trainer.optimizer([*net.f_params(), *net.b_params()])]
    else:
        optimizers = [trainer.optimizer(net.f_params()), trainer.optimizer(net.b_params())]
    step = make_step(net, config.adversary_loss, config.lam, optimizers, config.critic_clip)
    other = (
        adv_view.forever(config.batch_size, trainer.rng) if adv_view is not trainer.view else None
    )

    def train_epoch() -> dict[str, float]:
        sums = torch.zeros(3, device=trainer.device)
        batches = 0
        for x, y in trainer.batches():
            sums += step(x, y) if other is None else step(x, y, *next(other))
            batches += 1
        loss, main, adv = (sums / batches).tolist()
        return {"loss": loss, "main_loss": main, "adv_loss": adv}

    heads = [EvalHead(s, m) for s, m in zip(main_specs, net.main_heads, strict=True)]
    if config.adversary_loss != "wgan":  # a critic's score is not a classifier's
        heads += [
            EvalHead(s, m, "adv_", view=adv_view)
            for s, m in zip(adv_specs, net.adv_heads, strict=True)
        ]

    def probes() -> dict[str, float]:
        key = "" if adv_view is trainer.view else f"@{adv_view.name}"
        return probe_accuracies(trainer.backbone, adv_view, adv_specs, key, true_labels)

    return trainer.run(
        train_epoch,
        heads,
        groups=[(list(config.main), list(config.adversaries))],
        schedulers=[trainer.scheduler(o) for o in optimizers],
        extra_metrics=probes if config.probe else None,
    )
