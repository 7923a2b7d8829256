"""`mtl_sa`: multi-task learning with disjoint datasets and selective augmentation
(MTL-SA, "Beyond Without Forgetting: Multi-task Learning for Classification with
Disjoint Datasets"; §3.2, §4, supplementary G–I, Algorithm 1).

Dataset A is labelled only for task A, dataset B only for task B. A shared
backbone θs feeds two task branches θa, θb of two fully connected layers each,
with a cross-stitch unit between their first layers (§5.2). After `init_epochs`
of joint training (All-in-one, the Algorithm 1 input) the epochs alternate:
one on A, one on B. Before an epoch on B, from the current model, for every
training sample of B (and symmetrically for A):

- soft label ỹᵃ: task A's probabilities tempered with temperature T
  (each entry to the power 1/T, renormalised per row; §4.2, T = 2: with
  T > 1 a flattening towards uniform, as in distillation, not a sharpening);
- pseudo label ȳᵃ: one-hot of the argmax;
- wᶜ = max of task A's probabilities (§4.1.1, defined before T is introduced,
  so on the untempered probabilities);
- wᵈ: local density inside the sample's pseudo class in task-A feature space
  (the task-A branch without its last layer; supplementary G): squared
  distances D, cutoff d_c = the entry at position ⌈κ·n_c²⌉ of the n_c² sorted
  entries (diagonal zeros included), ρ_i = #{j : D_ij < d_c} (the sample
  itself included, as the paper's sum is over all j; the authors' code drops
  it), wᵈ = ρ_i / max ρ in the class; κ = 0.6;
- wᵍ: Gaussian mixtures (scikit-learn, diagonal covariances) with Cᵇ components
  on B's task-A features and Cᵃ on A's; d_kj = ‖μᵇ_k − μᵃ_j‖²; the EMD between
  {(μᵇ_k, 1)} and {(μᵃ_j, πᵃ_j)} solved with POT (`ot.emd`), d_k = Σh·d / Σh
  (supplementary eq. 7); d̂_i = Σ_k γ_ik d_k with γ the responsibilities;
  wᵍ = exp(−λ d̂_i), λ = 0.1 (§4.1.2);
- w = wᶜ·wᵈ·wᵍ / max over B, and the target ŷᵃ = w·ȳᵃ + (1 − w)·ỹᵃ (eq. 6);

then the epoch minimises CE(ŷᵃ, pᵃ) + CE(yᵇ, pᵇ) over B (supplementary eq. 9;
eq. 8 on A). Adam, lr 1e-4, batch 32 (§5.2).

Note on the EMD: from a single source cluster of mass 1 to a target mixture of
total mass 1 the transport plan is forced, h_kj = πᵃ_j, so d_k is exactly the
π-weighted mean of d_kj (a test checks it against `ot.emd2`). The paper's
"only wᵍ (MMD)" ablation therefore cannot be that mean; we read it as the MMD
(linear kernel) between cluster k and the whole of domain A,
‖μᵇ_k − Σ_j πᵃ_j μᵃ_j‖², which is what "MMD instead of EMD" says. Even so the
two coincide after normalisation: the EMD d_k equals that MMD plus
Σ_j πᵃ_j ‖μᵃ_j − μ̄ᵃ‖², the same for every k, so d̂_i shifts by a constant and
w / max w is unchanged (tested; measured identical). The paper's Table 2
differs, which fits NOTES.md: the authors' code computes the domain weight
differently from the paper.

`mode` selects the paper's baselines and special cases (Tables 1–2): "sa" (the
method), "wf" (MTL-wF: soft labels only, T = 1), "zero" (w = 0: distillation
with T), "one" (w = 1: pseudo labels everywhere), "half" (w = 0.5), "only_c",
"only_d", "only_g" (EMD), "only_g_mmd", "all_in_one" (both datasets in every
epoch, no soft labels) and "stl" (one network per task: two backbones).
The paper does not give the length of the joint initialisation, the epoch
count, the mixture sizes or the width of the task layers; the defaults here
are ours. The last weights of each dataset are kept as the artifact
`sample_weights` (wᶜ, wᵈ, wᵍ, w, pseudo label per training sample).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..core import (
    BACKBONES,
    ConfigError,
    DomainView,
    EvalHead,
    Goal,
    GridRoles,
    MethodConfig,
    RunContext,
    RunTasks,
    TaskSpec,
    Trainer,
    eval_mode,
    meta,
    minibatches,
    register_method,
    task_loss,
    task_specs,
)
from ..core.domain_norm import on_domain, per_domain_norm, recompute_statistics
from ..core.examples import grid_example
from ..data import Dataset
from .network import SideBySide, TaskLayers, TaskOutput, soft_cross_entropy
from .weights import SampleWeights, combine, domain_weights, local_density, temper

if TYPE_CHECKING:
    from typing import Self

Mode = Literal[
    "sa",
    "wf",
    "zero",
    "one",
    "half",
    "only_c",
    "only_d",
    "only_g",
    "only_g_mmd",
    "all_in_one",
    "stl",
]


@dataclass(frozen=True)
class MTLSAConfig(MethodConfig):
    """MTL-SA: alternating epochs over two disjoint datasets, selective label augmentation."""

    backbone: str = field(
        default="vgg11",
        metadata=meta("shared layers θs (§5.2: VGG's convolutional layers)", choices=BACKBONES),
    )
    epochs: int = field(
        default=40,
        metadata=meta("epochs in all, joint ones included (not given; curves flat by 40)", min=1),
    )
    batch_size: int = field(default=32, metadata=meta("minibatch size (§5.2: 32)", min=2))
    weight_decay: float = field(
        default=0.0, metadata=meta("Adam weight decay (not given)", min=0.0)
    )
    lr_milestones: tuple[int, ...] = field(default=(), metadata=meta("no lr schedule in §5.2"))
    task_a: str = field(default="", metadata=meta("task A, labelled on the domain trained on"))
    domain_b: str = field(default="", metadata=meta("dataset B"))
    task_b: str = field(default="", metadata=meta("task B, labelled on dataset B only"))
    mode: Mode = field(default="sa", metadata=meta("the method, or a baseline / special case"))
    init_epochs: int = field(
        default=2, metadata=meta("joint (All-in-one) epochs before alternating", min=0)
    )
    temperature: float = field(
        default=2.0, metadata=meta("T of the soft labels (§4.2: 2)", min=0.0, min_exclusive=True)
    )
    kappa: float = field(
        default=0.6, metadata=meta("κ of the density cutoff (suppl. G: 0.6)", min=0.0, max=1.0)
    )
    lam: float = field(default=0.1, metadata=meta("λ of wᵍ = exp(−λ d̂) (§4.1.2: 0.1)", min=0.0))
    clusters_a: int = field(default=5, metadata=meta("Cᵃ, mixture size on A", min=1))
    clusters_b: int = field(default=5, metadata=meta("Cᵇ, mixture size on B", min=1))
    hidden: int = field(default=256, metadata=meta("width of each task's first FC layer", min=1))
    cross_stitch: bool = field(default=True, metadata=meta("cross-stitch unit (§5.2)"))
    domain_norm: bool = field(
        default=True,
        metadata=meta(
            "batch-norm statistics per dataset, recomputed under the current weights after"
            " every epoch, so each is evaluated and pseudo-labelled with its own (ours: the"
            " paper's VGG has no batch norm); false shares one set between A and B"
        ),
    )

    def check(self) -> None:
        for key in ("task_a", "domain_b", "task_b"):
            if not getattr(self, key):
                raise ConfigError(f"method 'mtl_sa' needs {key}=<...>")
        if self.init_epochs > self.epochs:
            raise ConfigError(f"init_epochs={self.init_epochs} exceeds epochs={self.epochs}")

    def check_data(self, data: Dataset) -> None:
        domain = self.check_training(data)
        other = data.domain(self.domain_b)
        if other.name == domain.name:
            raise ConfigError("dataset B (domain_b) must differ from the domain trained on")
        if other.input_shape != domain.input_shape:
            raise ConfigError(
                f"datasets A and B have inputs of shapes {domain.input_shape} and"
                f" {other.input_shape}; they must match"
            )
        task_specs(domain, [self.task_a], need_val=self.needs_val)
        task_specs(other, [self.task_b], need_val=self.needs_val)

    def run_tasks(self) -> RunTasks:
        return RunTasks((self.task_a, self.task_b))

    def objectives(self) -> dict[str, Goal]:
        """Task B is scored on dataset B's own splits (`val@<domain_b>/...`)."""
        out: dict[str, Goal] = {"val/mean_acc": "max"}
        for task, split in ((self.task_a, "val"), (self.task_b, f"val@{self.domain_b}")):
            out.update({f"{split}/{m.name}/{task}": m.goal for m in self.metrics})
        return out

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        """Task A on the tiny target digits, task B = the irrelevant set's background."""
        return grid_example(cls, init_epochs=1)

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        """Task A on the train domain, task B = the auxiliary set's label on its own set."""
        return {
            "domain": train,
            "test_domains": list(tests),
            "task_a": roles.task,
            "domain_b": roles.irrelevant_domain,
            "task_b": roles.irrelevant_label,
        }


@register_method("mtl_sa", config=MTLSAConfig)
def train(config: MTLSAConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    trainer = Trainer(config, data, ctx)
    view_a, view_b = trainer.view, trainer.view_of(config.domain_b)
    (spec_a,) = task_specs(view_a.domain, [config.task_a], need_val=config.needs_val)
    (spec_b,) = task_specs(view_b.domain, [config.task_b], need_val=config.needs_val)
    spec_a = TaskSpec(spec_a.name, spec_a.column, spec_a.num_classes, softmax=True)
    spec_b = TaskSpec(spec_b.name, spec_b.column, spec_b.num_classes, softmax=True)
    stl = config.mode == "stl"
    if stl:
        second = trainer.new_backbone()
        trainer.backbone = SideBySide(trainer.backbone, second)  # type: ignore[assignment]
    if config.domain_norm:
        per_domain_norm(trainer.backbone, [view_a.name, view_b.name])
    backbone = trainer.backbone
    layers = TaskLayers(
        trainer.backbone.out_dim,
        config.hidden,
        (spec_a.num_classes, spec_b.num_classes),
        stitch=config.cross_stitch and not stl,
        split=stl,
    ).to(trainer.device)
    opt = trainer.optimizer([*trainer.backbone.parameters(), *layers.parameters()])
    joint_only = config.mode in ("all_in_one", "stl")
    temperature = 1.0 if config.mode == "wf" else config.temperature
    stream_b = view_b.forever(config.batch_size, trainer.rng)
    latest: dict[str, SampleWeights] = {}
    epoch = 0

    def joint_epoch() -> dict[str, float]:
        sums = torch.zeros(2, device=trainer.device)
        n = 0
        for xa, ya in trainer.batches():
            xb, yb = next(stream_b)
            with on_domain(backbone, view_a.name):
                la, _ = layers(backbone(xa))
            with on_domain(backbone, view_b.name):
                _, lb = layers(backbone(xb))
            loss_a = task_loss(la, ya[:, spec_a.column], spec_a, config.loss_reduction)
            loss_b = task_loss(lb, yb[:, spec_b.column], spec_b, config.loss_reduction)
            opt.zero_grad(set_to_none=True)
            (loss_a + loss_b).backward()
            opt.step()
            sums += torch.stack([loss_a.detach(), loss_b.detach()])
            n += 1
        la_mean, lb_mean = (sums / n).tolist()
        return {
            "loss": la_mean + lb_mean,
            f"loss/{spec_a.name}": la_mean,
            f"loss/{spec_b.name}": lb_mean,
        }

    def weights_for(view: DomainView, own: DomainView, other: int) -> SampleWeights:
        """Before an epoch on `view`: the unlabelled task `other` (0 = A, 1 = B) of its
        training samples, scored against `own`, the dataset labelled for that task."""
        feats, probs = _features_and_probs(trainer, layers, view, other)
        own_feats, _ = _features_and_probs(trainer, layers, own, other)
        pseudo = probs.argmax(1)
        log_wc = np.log(probs.max(1))
        log_wd = np.log(np.maximum(local_density(feats, pseudo, config.kappa), 1e-12))
        how = "mmd" if config.mode == "only_g_mmd" else "emd"
        sizes = (
            (config.clusters_b, config.clusters_a)
            if other == 0
            else (config.clusters_a, config.clusters_b)
        )
        log_wg = domain_weights(feats, own_feats, sizes[0], sizes[1], config.lam, ctx.seed, how)
        w = combine(config.mode, log_wc, log_wd, log_wg)
        return SampleWeights(
            (spec_a, spec_b)[other].name,
            view.rows["train"],
            temper(probs, temperature),
            pseudo,
            np.exp(log_wc),
            np.exp(log_wd),
            np.exp(log_wg - log_wg.max()),
            w,
        )

    def alternating_epoch(on_b: bool) -> dict[str, float]:
        view, own, other = (view_b, view_a, 0) if on_b else (view_a, view_b, 1)
        weights = weights_for(view, own, other)
        latest[view.name] = weights
        targets = torch.zeros(len(view.domain), weights.soft.shape[1], device=trainer.device)
        targets[torch.from_numpy(weights.rows).to(trainer.device)] = torch.tensor(
            weights.targets, dtype=torch.float32, device=trainer.device
        )
        spec = spec_b if on_b else spec_a
        sums = torch.zeros(2, device=trainer.device)
        n = 0
        for rows, x, y in view.epoch_rows(config.batch_size, trainer.rng):
            with on_domain(backbone, view.name):
                logits = layers(backbone(x))
            hard = task_loss(logits[1 - other], y[:, spec.column], spec, config.loss_reduction)
            soft = soft_cross_entropy(
                logits[other],
                targets[torch.from_numpy(rows).to(trainer.device)],
                config.loss_reduction,
            )
            opt.zero_grad(set_to_none=True)
            (hard + soft).backward()
            opt.step()
            sums += torch.stack([hard.detach(), soft.detach()])
            n += 1
        hard_mean, soft_mean = (sums / n).tolist()
        names = (spec_b.name, spec_a.name) if on_b else (spec_a.name, spec_b.name)
        return {
            "loss": hard_mean + soft_mean,
            f"loss/{names[0]}": hard_mean,
            f"loss/{names[1]}": soft_mean,
            "mean_w": float(weights.w.mean()),
        }

    def train_epoch() -> dict[str, float]:
        nonlocal epoch
        epoch += 1
        if joint_only or epoch <= config.init_epochs:
            parts = joint_epoch()
        else:  # Algorithm 1: alternate, starting on A after the joint initialisation
            parts = alternating_epoch(on_b=(epoch - config.init_epochs) % 2 == 0)
        if config.domain_norm:  # each dataset's statistics under the weights it ends with
            for view in (view_a, view_b):
                rows = minibatches(view.rows["train"], 512, None)
                recompute_statistics(backbone, view.name, (view.encoder(r) for r in rows))
        return parts

    heads = [
        EvalHead(spec_a, TaskOutput(layers, 0)),
        EvalHead(spec_b, TaskOutput(layers, 1), view=view_b),
    ]
    final = trainer.run(
        train_epoch,
        heads,
        groups=[([spec_a.name], []), ([spec_b.name], [])],
        schedulers=[trainer.scheduler(opt)],
    )
    if latest:
        ctx.artifact("sample_weights", _weights_table(latest))
    return final


@torch.no_grad()
def _features_and_probs(
    trainer: Trainer, layers: TaskLayers, view: DomainView, task: int
) -> tuple[np.ndarray, np.ndarray]:
    """Task `task`'s branch features (without its last layer) and probabilities on the
    training samples of `view`, from the current model in eval mode."""
    feats, probs = [], []
    with eval_mode(trainer.backbone, layers), on_domain(trainer.backbone, view.name):
        for rows in minibatches(view.rows["train"], 512, None):
            h = trainer.backbone(view.encoder(rows))
            branch = layers.features(h)[task]
            logits = (layers.out_a if task == 0 else layers.out_b)(branch)
            feats.append(branch.double().cpu().numpy())
            probs.append(F.softmax(logits.double(), dim=1).cpu().numpy())
    return np.concatenate(feats), np.concatenate(probs)


def _weights_table(latest: dict[str, SampleWeights]) -> dict[str, np.ndarray]:
    """The last weights of each dataset as one table (row = the sample's row in its domain)."""
    columns: dict[str, list[np.ndarray]] = {}
    for domain, w in latest.items():
        n = len(w.rows)
        part = {
            "domain": np.full(n, domain),
            "task": np.full(n, w.task),
            "row": w.rows,
            "wc": w.wc,
            "wd": w.wd,
            "wg": w.wg,
            "w": w.w,
            "pseudo": w.pseudo,
        }
        for key, value in part.items():
            columns.setdefault(key, []).append(value)
    return {key: np.concatenate(values) for key, values in columns.items()}
