"""One SOSELETO iteration (Alg. 1 of "SOSELETO: A Unified Approach to Transfer
Learning and Training with Noisy Labels", eq. 3–5 and appendix A), fused.

With a source batch b of L samples, per-sample losses ℓ_j, a target batch with
loss L_t, and λ_p the current learning rate:

    θ  ← θ − λ_p Q α_b,   φˢ ← φˢ − λ_p R α_b                        (eq. 3)
    α_b ← CLIP[lo, hi](α_b + λ_α λ_p Qᵀ ∂L_t/∂θ(θ_m))                 (eq. 5)
    φᵗ ← φᵗ − λ_p ∂L_t/∂φᵗ

where column j of Q (R) is (1/n) ∂ℓ_j/∂θ (∂ℓ_j/∂φˢ). The paper takes n = nˢ,
the size of the whole source set; over a minibatch that shrinks every step by
L/nˢ (45K CIFAR images: a θ step 1/180 of plain SGD's at the same λ_p), and
the paper's λ_p = 1e-2 / 1e-4 only make sense as minibatch learning rates, so
n = L (`norm="batch"`: Qα is the gradient of the α-weighted mean loss, a
plain SGD step when α = 1); `norm="dataset"` keeps the paper's letter.
`norm="sample"` keeps n = L for θ but moves α by each sample's own gradient
product, ∂ℓ_j/∂θ · v without the 1/n: the authors' toy code, whose α learning
rate (20) is set on that scale.

Qᵀv is never formed column by column. (Qᵀv)_j = (1/n) ∂ℓ_j/∂θ · v is the
directional derivative of ℓ_j along v, so one forward pass in forward-mode AD
(`torch.autograd.forward_ad`, the parameters made dual with tangent v) gives
every per-sample loss together with its directional derivative, and a single
backward pass of Σ_j α_j ℓ_j / n through that same forward gives Qα and Rα.
With batch norm in train mode, ℓ_j depends on the whole batch; the directional
derivative is then that of ℓ_j as the batch computes it, exactly what one
backward pass per sample through the batched forward gives
(`directional_by_loop`, the reference the tests and the benchmark compare to).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as fwad
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def per_sample_losses(
    backbone: nn.Module, head: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of every sample (softmax over the head's outputs)."""
    return F.cross_entropy(head(backbone(x)), y.long(), reduction="none")


def directional_losses(
    backbone: nn.Module,
    head: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    backbone_tangent: Mapping[str, torch.Tensor],
    head_tangent: Mapping[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-sample losses, still on the autograd graph; their derivatives along the
    tangent, detached): ℓ_j and ∂ℓ_j/∂θ · v (+ ∂ℓ_j/∂φ · w when `head_tangent`)."""
    with fwad.dual_level():
        dual = {
            name: fwad.make_dual(p, backbone_tangent[name])
            for name, p in backbone.named_parameters()
        }
        features = functional_call(backbone, dual, (x,))
        if head_tangent is not None:
            head_dual = {
                name: fwad.make_dual(p, head_tangent[name]) for name, p in head.named_parameters()
            }
            logits = functional_call(head, head_dual, (features,))
        else:
            logits = head(features)
        losses = F.cross_entropy(logits, y.long(), reduction="none")
        primal, tangent = fwad.unpack_dual(losses)
    if tangent is None:  # no parameter reached the loss along the tangent
        tangent = torch.zeros_like(primal)
    return primal, tangent.detach()


def directional_by_loop(
    backbone: nn.Module,
    head: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    backbone_tangent: Mapping[str, torch.Tensor],
    head_tangent: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The same derivatives with one backward pass per sample (the authors' toy code):
    the slow reference the fast path is tested and benchmarked against."""
    named = list(backbone.named_parameters())
    tangents = [backbone_tangent[n] for n, _ in named]
    params = [p for _, p in named]
    if head_tangent is not None:
        head_named = list(head.named_parameters())
        params += [p for _, p in head_named]
        tangents += [head_tangent[n] for n, _ in head_named]
    losses = per_sample_losses(backbone, head, x, y)
    out = []
    for j in range(len(losses)):
        grads = torch.autograd.grad(losses[j], params, retain_graph=True, allow_unused=True)
        out.append(
            sum((g * t).sum() for g, t in zip(grads, tangents, strict=True) if g is not None)
        )
    return torch.stack([torch.as_tensor(v, dtype=losses.dtype) for v in out])


@dataclass(frozen=True)
class AlphaRule:
    """How α moves: λ_α, the clip range, the normaliser n of Q, and which α (the
    current or the updated one) weights the θ step."""

    alpha_lr: float = 1.0
    low: float = 0.0
    high: float = 1.1
    norm: str = "batch"  # "batch": n = L; "dataset": n = nˢ; "sample": α's step 1, θ's L
    source_size: int = 1
    updated_alpha_in_step: bool = False
    head_in_alpha: bool = False

    def n(self, batch: int) -> float:
        """The normaliser of the θ step's weighted loss."""
        return float(self.source_size if self.norm == "dataset" else batch)

    def alpha_n(self, batch: int) -> float:
        """The normaliser of α's step: `norm="sample"` moves α by each sample's own
        gradient product (the authors' toy code), the others as Q's columns."""
        return 1.0 if self.norm == "sample" else self.n(batch)


@dataclass
class StepResult:
    alpha: torch.Tensor  # the batch's α after the update (eq. 5)
    source_loss: torch.Tensor  # the α-weighted source loss the θ step descended
    target_loss: torch.Tensor


def soseleto_step(
    backbone: nn.Module,
    source_head: nn.Module,
    target_head: nn.Module,
    opt: torch.optim.Optimizer,
    source: tuple[torch.Tensor, torch.Tensor],
    target: tuple[torch.Tensor, torch.Tensor],
    alpha: torch.Tensor,
    rule: AlphaRule,
) -> StepResult:
    """One iteration of Alg. 1 on a source batch (inputs, labels) whose current
    weights are `alpha` and a target batch. `source_head is target_head` in the
    noisy-label setting (one classifier). λ_p is the optimiser's current lr."""
    lr = float(opt.param_groups[0]["lr"])
    xs, ys = source
    xt, yt = target
    shared = source_head is target_head
    backbone_params = dict(backbone.named_parameters())
    head_params = dict(target_head.named_parameters())
    # ∂L_t/∂θ and ∂L_t/∂φᵗ at θ_m, before anything moves
    target_loss = F.cross_entropy(target_head(backbone(xt)), yt.long())
    grads = torch.autograd.grad(target_loss, [*backbone_params.values(), *head_params.values()])
    g_theta = dict(zip(backbone_params, grads[: len(backbone_params)], strict=True))
    g_head = dict(zip(head_params, grads[len(backbone_params) :], strict=True))
    # In the noisy setting φˢ = φᵗ, so the lookahead moves the classifier by Rα too;
    # `head_in_alpha` adds Rᵀ ∂L_t/∂φ to α's gradient (Alg. 1 uses Qᵀ ∂L_t/∂θ only).
    losses, along = directional_losses(
        backbone,
        source_head,
        xs,
        ys,
        g_theta,
        g_head if shared and rule.head_in_alpha else None,
    )
    n = rule.n(len(losses))
    with torch.no_grad():
        step = rule.alpha_lr * lr * along / rule.alpha_n(len(losses))
        new_alpha = (alpha + step).clamp_(rule.low, rule.high)
    weights = new_alpha if rule.updated_alpha_in_step else alpha
    source_loss = (weights.detach() * losses).sum() / n
    opt.zero_grad(set_to_none=True)
    source_loss.backward()
    # φᵗ's own descent step; in the noisy setting it adds to the source's Rα
    for name, p in head_params.items():
        p.grad = g_head[name] if p.grad is None else p.grad + g_head[name]
    opt.step()
    return StepResult(new_alpha, source_loss.detach(), target_loss.detach())
