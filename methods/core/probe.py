"""A linear probe: how much of a label frozen features still carry.

An adversary head that is trained alongside moving features is a lagging
measure of what they encode: under gradient reversal the features can flip the
sign of the label's direction faster than the head follows, so the head scores
near 0% on a label the features encode perfectly (docs/methods.md, AAL). A
probe fitted afresh on the frozen features answers the question the adversary
only approximates — is the label linearly readable? — the standard test of
what a representation "removed" (Alain & Bengio 2016, "Understanding
intermediate layers using linear classifier probes"; Elazar & Goldberg 2018,
"Adversarial Removal of Demographic Attributes from Text Data", §5).

The probe is a logistic regression (one logit for 2 classes, softmax for more)
on standardised training features, fitted to convergence by L-BFGS from zero
(deterministic: no seed), with a small L2 penalty so separable features stay
finite; it is scored on the val and test rows, as any head is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .domain_norm import on_domain
from .evaluation import EVAL_BATCH, eval_mode
from .tasks import TaskSpec, predictions, task_loss
from .views import DomainView, minibatches

PROBE_L2 = 1e-3
PROBE_ITERATIONS = 200


@torch.no_grad()
def _features(backbone: torch.nn.Module, view: DomainView, rows: np.ndarray) -> torch.Tensor:
    """The backbone's features of `rows`, in eval mode, in float64."""
    with eval_mode(backbone), on_domain(backbone, view.name):
        return torch.cat(
            [backbone(view.encoder(b)).double() for b in minibatches(rows, EVAL_BATCH, None)]
        )


def fit_probe(features: torch.Tensor, target: torch.Tensor, spec: TaskSpec) -> torch.nn.Linear:
    """Logistic regression of `target` (labels of `spec`, −1 missing) on `features`."""
    mask = target >= 0
    x, y = features[mask], target[mask]
    probe = torch.nn.Linear(x.shape[1], spec.out_features, dtype=x.dtype, device=x.device)
    torch.nn.init.zeros_(probe.weight)
    torch.nn.init.zeros_(probe.bias)
    opt = torch.optim.LBFGS(
        probe.parameters(), max_iter=PROBE_ITERATIONS, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = task_loss(probe(x), y, spec) + 0.5 * PROBE_L2 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return probe


def probe_accuracies(
    backbone: torch.nn.Module,
    view: DomainView,
    specs: Sequence[TaskSpec],
    key: str = "",
    train_labels: torch.Tensor | None = None,
) -> dict[str, float]:
    """`<split><key>/probe_acc/<task>` on val and test for every spec: a probe fitted
    on the view's training rows. `key` is "" for the domain trained on, "@<d>" for
    another; `train_labels` replaces the view's label table for fitting (a run
    that shuffled its own training labels still probes for the true ones)."""
    labels = view.labels if train_labels is None else train_labels
    rows = {s: r for s, r in view.rows.items() if len(r)}
    if len(rows.get("train", ())) < 2:
        return {}
    feats = {s: _features(backbone, view, r) for s, r in rows.items()}
    index = {s: torch.from_numpy(r).to(view.labels.device) for s, r in rows.items()}
    mean, std = feats["train"].mean(0), feats["train"].std(0).clamp_min(1e-6)
    out: dict[str, float] = {}
    for spec in specs:
        target = labels[index["train"], spec.column].double()
        classes = torch.unique(target[target >= 0])
        if len(classes) < 2:  # nothing to separate: a probe says nothing
            continue
        probe = fit_probe((feats["train"] - mean) / std, target, spec)
        for split in ("val", "test"):
            if split not in feats:
                continue
            y = view.labels[index[split], spec.column].double()
            mask = y >= 0
            if not bool(mask.any()):
                continue
            with torch.no_grad():
                pred = predictions(probe((feats[split] - mean) / std), spec)
            acc = float((pred[mask] == y[mask]).double().mean())
            out[f"{split}{key}/probe_acc/{spec.name}"] = acc
    return out
