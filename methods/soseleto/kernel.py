"""`soseleto`: source sample weighting by bilevel optimisation ("SOSELETO: A
Unified Approach to Transfer Learning and Training with Noisy Labels", §3,
Alg. 1, eq. 3–5, appendix A).

Shared features θ, a source classifier φˢ and a target classifier φᵗ. Every
source sample j has a weight α_j, one tensor over the source set kept across
epochs (and kept in the run's files). Each iteration draws a source batch and a
target batch; the source takes a step on its α-weighted loss (θ, φˢ), α moves
along the target's gradient projected on each sample's gradient (clipped to
[alpha_min, alpha_max]), and φᵗ takes a plain step on the target loss. The
target never moves θ directly. The fused step is in `soseleto_step.py`.

`setting`: "noisy" (a large noisy source and a small clean target with the same
classes: one classifier, φˢ = φᵗ; §4.2) or "transfer" (label sets may differ:
two classifiers; §4.3). An epoch is one pass over the source set; every mode
takes the same number of steps per epoch, so the baselines get the same budget.

`mode`:
- "soseleto": the method;
- "frozen": the same training with α frozen at `alpha_init` (λ_α = 0): the
  control that isolates the source weighting — what SOSELETO gains over it is
  the weights' doing, the rest is the clean target's step on the classifier;
- "two_stage": §4.3's two-stage SOSELETO: `pretrain_epochs` of the transfer
  method, then the unlabelled target training rows (label −1) are labelled by
  its target classifier and become the source of a second, noisy-label run
  (one classifier, α afresh) of `epochs` epochs, continuing from the stage-1
  weights;
- "target_only": the backbone and φᵗ on the target alone;
- "fine_tune": `pretrain_epochs` on the source (θ, φˢ), then θ and a target
  classifier (φˢ itself in the noisy setting) trained on the target;
- "source_only" (noisy setting): plain training on the noisy labels.

Defaults. Training is the paper's: SGD without decay (§4), α initialised to 1
and clipped to [0, 1.1] (§4 "in practice"), λ_p = 1e-2 with source batch 32
and target batch 10 (§4.3; §4.2's CIFAR setting is λ_p = 1e-4, 256 / 32). How α
moves is the authors' code's (NOTES.md), because at the paper's literal values
the weights do not select: each sample's own gradient product moves α
(`alpha_norm=sample`, no 1/n), through the shared classifier too
(`head_in_alpha`), at λ_α = 20, and the θ step uses the updated α
(`alpha_first`). Measured at 40% label noise (docs/results.md): with λ_α = 1
and the 1/L normaliser α moves by a few hundredths and SOSELETO equals its own
frozen-α control; the defaults push the noisy samples' α towards 0. The
paper's letter is `alpha_lr=1 alpha_norm=dataset head_in_alpha=false
alpha_first=false` (Alg. 1 divides Q by nˢ, the whole source set, which makes
both steps L/nˢ of a minibatch step — the reason `batch` and `sample` exist;
see `step.py`). The synthetic problem of §4.1 is
search_spaces/comparisons/soseleto_toy.yaml: the toy settings, with the whole
50-point target as the target batch.

With `clean_label` (a column holding the true labels of the source rows) every
epoch reports the mean α of the clean and of the noisy samples and the share
correctly accounted for at `alpha_threshold` (§4.1); the final α is kept as the
artifact `alpha` (row, α, given label, true label, noisy) and Figure 2 as
`alpha_curve` (effective noise against the fraction kept by α).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
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
    EvalHead,
    GridRoles,
    MethodConfig,
    PlotFn,
    RunContext,
    RunTasks,
    TaskSpec,
    Trainer,
    eval_mode,
    gradient_pass,
    meta,
    minibatches,
    parse_config,
    register_method,
    task_specs,
)
from ..core.examples import tiny_dataset
from ..data import Dataset, Domain
from .alpha_stats import accounted, group_means, noise_curve
from .plots import noise_curve_png
from .step import AlphaRule, soseleto_step

if TYPE_CHECKING:
    from typing import Self

Setting = Literal["noisy", "transfer"]
Mode = Literal["soseleto", "frozen", "two_stage", "target_only", "fine_tune", "source_only"]


@dataclass(frozen=True)
class SoseletoConfig(MethodConfig):
    """SOSELETO: the target chooses source samples through their weights α."""

    plots: ClassVar[dict[str, PlotFn]] = {"alpha_curve": noise_curve_png}

    backbone: str = field(
        default="small_cnn",
        metadata=meta("shared layers θ (§4: CIFAR-quick / LeNet)", choices=BACKBONES),
    )
    epochs: int = field(default=30, metadata=meta("passes over the source set (§4.1: 100)", min=1))
    batch_size: int = field(
        default=32, metadata=meta("source batch size L (§4.3: 32; §4.2: 256)", min=2)
    )
    target_batch_size: int = field(
        default=10, metadata=meta("target batch size (§4.3: 10; §4.2: 32)", min=2)
    )
    optimizer: Literal["adam", "sgd"] = field(default="sgd", metadata=meta("optimiser (§4: SGD)"))
    lr: float = field(
        default=1e-2,
        metadata=meta("λ_p (§4.3: 1e-2; §4.2: 1e-4)", min=0.0, min_exclusive=True),
    )
    momentum: float = field(
        default=0.0, metadata=meta("SGD momentum (not given; toy code: 0.5)", min=0.0, max=1.0)
    )
    weight_decay: float = field(default=0.0, metadata=meta("weight decay (none)", min=0.0))
    lr_milestones: tuple[int, ...] = field(
        default=(), metadata=meta("no learning-rate decay (§4)", min=1)
    )
    domain: str = field(default="target", metadata=meta("the target set's domain"))
    task: str = field(default="", metadata=meta("the target's class label"))
    source_domain: str = field(
        default="source",
        metadata=meta(
            "the source set's domain; all its labelled rows are weighted (its train split"
            " only if it is also a test domain)"
        ),
    )
    source_label: str = field(
        default="", metadata=meta("the source's class label ('' = the task's name)")
    )
    clean_label: str = field(
        default="",
        metadata=meta(
            "column with the true labels of the source rows (two_stage: of the target's"
            " unlabelled rows), for α diagnostics; '' = unknown"
        ),
    )
    setting: Setting = field(
        default="noisy",
        metadata=meta("noisy: one classifier (§4.2); transfer: two (§4.3)"),
    )
    mode: Mode = field(default="soseleto", metadata=meta("the method, or a baseline"))
    alpha_lr: float = field(
        default=20.0,
        metadata=meta("λ_α (the authors' code: 20, with alpha_norm=sample; §4: 1)", min=0.0),
    )
    alpha_init: float = field(default=1.0, metadata=meta("initial α (§4: 1; §4.1: 0.5)"))
    alpha_min: float = field(default=0.0, metadata=meta("lower clip of α (§4: 0)"))
    alpha_max: float = field(default=1.1, metadata=meta("upper clip of α (§4: 1.1)"))
    alpha_norm: Literal["sample", "batch", "dataset"] = field(
        default="sample",
        metadata=meta(
            "n in q_j = (1/n) ∂ℓ_j/∂θ: for α's step 1 (sample, the authors' code) or the"
            " batch size; nˢ for both steps as Alg. 1 writes (dataset)"
        ),
    )
    alpha_first: bool = field(
        default=True,
        metadata=meta("weight the θ step with the updated α (authors' code), not α_m (eq. 3)"),
    )
    head_in_alpha: bool = field(
        default=True,
        metadata=meta(
            "noisy setting: α's gradient also through the shared classifier (Rᵀ∂L_t/∂φ; the"
            " authors' code's full per-sample gradient), not θ's alone (Alg. 1)"
        ),
    )
    alpha_threshold: float = field(
        default=0.1, metadata=meta("α below which a sample counts as dropped (§4.1: 0.1)")
    )
    pretrain_epochs: int = field(
        default=10,
        metadata=meta("fine_tune: source epochs first; two_stage: stage-1 epochs", min=0),
    )

    def check(self) -> None:
        for key in ("task", "source_domain"):
            if not getattr(self, key):
                raise ConfigError(f"method 'soseleto' needs {key}=<...>")
        if self.loss_reduction != "mean":
            raise ConfigError(
                "method 'soseleto' weighs the source losses by α over the batch's mean"
                f" (eq. 3); loss_reduction={self.loss_reduction} is not supported, use mean"
            )
        if self.source_domain == self.domain:
            raise ConfigError(
                f"source_domain='{self.source_domain}' is the target domain; the source set"
                " must be another domain"
            )
        if not self.alpha_min < self.alpha_max:
            raise ConfigError(
                f"alpha_min={self.alpha_min} must be below alpha_max={self.alpha_max}"
            )
        if not self.alpha_min <= self.alpha_init <= self.alpha_max:
            raise ConfigError(
                f"alpha_init={self.alpha_init} must lie in the clip range"
                f" [{self.alpha_min}, {self.alpha_max}]"
            )
        if self.mode == "source_only" and self.setting != "noisy":
            raise ConfigError(
                "mode=source_only trains the target's classifier on source labels, so it"
                " needs setting=noisy (the same classes)"
            )
        if self.mode == "two_stage" and self.setting != "transfer":
            raise ConfigError("mode=two_stage starts with transfer SOSELETO; use setting=transfer")
        if self.mode in ("fine_tune", "two_stage") and self.pretrain_epochs < 1:
            raise ConfigError(f"mode={self.mode} needs pretrain_epochs >= 1")

    def check_data(self, data: Dataset) -> None:
        target = self.check_training(data)
        source = data.domain(self.source_domain)
        if source.input_shape != target.input_shape:
            raise DataError(
                f"source domain '{source.name}' has inputs of shape {source.input_shape},"
                f" the target '{target.name}' {target.input_shape}; they must match"
            )
        task_specs(target, [self.task], need_val=self.needs_val)
        task_specs(source, [self.source_label or self.task], need_val=False)
        if len(_labelled(target, self.task)) < 2:
            raise DataError(
                f"target domain '{target.name}' needs at least 2 labelled training rows of"
                f" '{self.task}'"
            )
        if self.clean_label:
            holder = target if self.mode == "two_stage" else source
            holder.column_index(self.clean_label)
        if self.mode == "two_stage" and len(_unlabelled(target, self.task)) < 2:
            raise DataError(
                f"mode=two_stage relabels the target's unlabelled training rows, but domain"
                f" '{target.name}' has fewer than 2 training rows with '{self.task}' = -1"
            )

    def run_tasks(self) -> RunTasks:
        return RunTasks((self.task,), (self.source_label or self.task,))

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        """§4.1's toy: a noisy 2-D source weighted for a small clean target."""
        data = tiny_dataset("noisy_plane", n_source=120, n_noisy=40, n_target=20)
        values = {
            "backbone": "shallow_mlp",
            "feature_dim": 2,
            "task": "label",
            "clean_label": "true_label",
            "epochs": 2,
            "alpha_init": 0.5,
            "alpha_max": 1.0,
        }
        return parse_config(cls, values), data

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        """Target = the train domain's task; source = the task-relevant set (transfer)."""
        return {
            "domain": train,
            "test_domains": list(tests),
            "task": roles.task,
            "source_domain": roles.relevant_domain,
            "source_label": roles.relevant_label,
            "setting": "transfer",
        }


def _labelled(domain: Domain, column: str) -> np.ndarray:
    rows = domain.indices("train")
    return rows[domain.column(column)[rows] >= 0]


def _unlabelled(domain: Domain, column: str) -> np.ndarray:
    rows = domain.indices("train")
    return rows[~(domain.column(column)[rows] >= 0)]


@dataclass
class SourceSet:
    """The weighted source: its rows in a domain, the labels trained on, α per row."""

    view: DomainView
    rows: np.ndarray
    labels: torch.Tensor  # long, one per row
    alpha: torch.Tensor  # float, one per row
    truth: np.ndarray | None  # true labels where known

    @property
    def noisy(self) -> np.ndarray | None:
        if self.truth is None:
            return None
        return self.labels.cpu().numpy() != self.truth

    def batches(self, size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """Positions (into rows / labels / α) of one shuffled pass."""
        return minibatches(np.arange(len(self.rows)), size, rng)


# ---------------------------------------------------------------- the kernel


@register_method("soseleto", config=SoseletoConfig)
def train(config: SoseletoConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    return _Soseleto(config, data, ctx).run()


class _Soseleto:
    def __init__(self, config: SoseletoConfig, data: Dataset, ctx: RunContext):
        self.config = config
        self.ctx = ctx
        self.trainer = Trainer(config, data, ctx)
        self.device = self.trainer.device
        self.target_view = self.trainer.view
        self.source_view = self.trainer.view_of(config.source_domain)
        (target_spec,) = task_specs(
            self.target_view.domain, [config.task], need_val=config.needs_val
        )
        (source_spec,) = task_specs(
            self.source_view.domain, [config.source_label or config.task], need_val=False
        )
        if config.setting == "noisy":
            k = max(target_spec.num_classes, source_spec.num_classes)
            target_spec = TaskSpec(target_spec.name, target_spec.column, k, softmax=True)
            source_spec = TaskSpec(source_spec.name, source_spec.column, k, softmax=True)
        else:
            target_spec = TaskSpec(*_fields(target_spec), softmax=True)
            source_spec = TaskSpec(*_fields(source_spec), softmax=True)
        self.target_spec, self.source_spec = target_spec, source_spec
        self.target_head: nn.Module = self.trainer.head(target_spec)
        self.source_head: nn.Module = (
            self.target_head if config.setting == "noisy" else self.trainer.head(source_spec)
        )
        self.target_rows = _labelled(self.target_view.domain, config.task)
        self.target_stream = self.target_view.forever(
            config.target_batch_size, self.trainer.rng, rows=self.target_rows
        )
        self.source = self._source_set(
            self.source_view, self._source_rows(self.source_view.domain, source_spec.name), None
        )
        # every mode takes as many steps per epoch as one pass over the source
        self.steps = _batches_per_pass(len(self.source.rows), config.batch_size)
        self.stage = "main"

    # ---------------------------------------------------------- pieces

    def _source_set(
        self, view: DomainView, rows: np.ndarray, labels: np.ndarray | None
    ) -> SourceSet:
        domain = view.domain
        if labels is None:
            labels = domain.column(self.source_spec.name)[rows]
        truth = None
        # check_data made sure the column is where the diagnostics need it (two_stage:
        # the target); stage 1's source may lack it
        if self.config.clean_label and self.config.clean_label in domain.label_names:
            truth = domain.column(self.config.clean_label)[rows].astype(np.int64)
        return SourceSet(
            view,
            rows,
            torch.tensor(np.asarray(labels, dtype=np.int64), device=self.device),
            torch.full((len(rows),), self.config.alpha_init, device=self.device),
            truth,
        )

    def _source_rows(self, domain: Domain, column: str) -> np.ndarray:
        """Every labelled row of the source: it is a training set, whatever split an
        .npz assigned (the paper weights every source sample); only its train split
        when the source is also a test domain, so no tested row is trained on."""
        if domain.name in self.config.test_domains:
            return _labelled(domain, column)
        return np.flatnonzero(domain.column(column) >= 0)

    def _optimizer(self, heads: Sequence[nn.Module]) -> torch.optim.Optimizer:
        params = [*self.trainer.backbone.parameters()]
        seen: set[int] = set()
        for head in heads:
            if id(head) not in seen:
                seen.add(id(head))
                params += list(head.parameters())
        return self.trainer.optimizer(params)

    def _rule(self, source: SourceSet) -> AlphaRule:
        c = self.config
        return AlphaRule(
            alpha_lr=0.0 if c.mode == "frozen" else c.alpha_lr,
            low=c.alpha_min,
            high=c.alpha_max,
            norm=c.alpha_norm,
            source_size=len(source.rows),
            updated_alpha_in_step=c.alpha_first,
            head_in_alpha=c.head_in_alpha,
        )

    def _target_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = next(self.target_stream)
        return x, y[:, self.target_spec.column]

    # ---------------------------------------------------------- epochs

    def soseleto_epoch(
        self, source: SourceSet, source_head: nn.Module, opt: torch.optim.Optimizer
    ) -> dict[str, float]:
        """One pass over the source with Alg. 1's iteration."""
        rule = self._rule(source)
        sums = torch.zeros(2, device=self.device)
        n = 0
        for pos in source.batches(self.config.batch_size, self.trainer.rng):
            index = torch.from_numpy(pos).to(self.device)
            x = source.view.encoder(source.rows[pos])
            result = soseleto_step(
                self.trainer.backbone,
                source_head,
                self.target_head,
                opt,
                (x, source.labels[index]),
                self._target_batch(),
                source.alpha[index],
                rule,
            )
            source.alpha[index] = result.alpha
            sums += torch.stack([result.source_loss, result.target_loss])
            n += 1
        source_loss, target_loss = (sums / max(n, 1)).tolist()
        parts = {
            "loss": source_loss + target_loss,
            "loss/source": source_loss,
            "loss/target": target_loss,
            **self.alpha_metrics(source),
        }
        self.keep_state(source)
        return parts

    def plain_epoch(self, head: nn.Module, opt: torch.optim.Optimizer, on: str) -> dict[str, float]:
        """`self.steps` plain cross-entropy steps of θ and `head` on the source or target."""
        if on == "source":
            batches: Iterator[tuple[torch.Tensor, torch.Tensor]] = (
                (
                    self.source.view.encoder(self.source.rows[pos]),
                    self.source.labels[torch.from_numpy(pos).to(self.device)],
                )
                for pos in self.source.batches(self.config.batch_size, self.trainer.rng)
            )
        else:
            batches = (self._target_batch() for _ in range(self.steps))

        def loss(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            x, y = batch
            return F.cross_entropy(head(self.trainer.backbone(x)), y.long())[None]

        total, steps = gradient_pass(batches, loss, opt)
        mean = float(total) / steps if total is not None else 0.0
        return {"loss": mean, f"loss/{on}": mean}

    # ---------------------------------------------------------- diagnostics

    def alpha_values(self, source: SourceSet) -> np.ndarray:
        """α as float64 within the clip range (float32 storage holds 1.1 as 1.10000002)."""
        alpha = source.alpha.detach().cpu().numpy().astype(np.float64)
        return np.clip(alpha, self.config.alpha_min, self.config.alpha_max)

    def alpha_metrics(self, source: SourceSet) -> dict[str, float]:
        alpha = self.alpha_values(source)
        out = {
            "alpha_mean": float(alpha.mean()),
            "alpha_dropped": float((alpha < self.config.alpha_threshold).mean()),
        }
        noisy = source.noisy
        if noisy is not None:
            out.update(group_means(alpha, noisy))
            out["alpha_accounted"] = accounted(alpha, noisy, self.config.alpha_threshold)
        return out

    def keep_state(self, source: SourceSet) -> None:
        """α and the model after every epoch in `ctx.files_dir`, written atomically
        (for inspection: a trial that fails restarts from scratch)."""
        if self.ctx.files_dir is None:
            return
        path = self.ctx.files_dir / "soseleto.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "stage": self.stage,
            "domain": source.view.name,
            "rows": torch.from_numpy(source.rows),
            "alpha": source.alpha.detach().cpu(),
            "backbone": self.trainer.backbone.state_dict(),
            "target_head": self.target_head.state_dict(),
            "source_head": self.source_head.state_dict(),
        }
        partial = path.with_suffix(".pt.partial")
        torch.save(state, partial)
        os.replace(partial, path)

    def keep_artifacts(self, source: SourceSet) -> None:
        """The last epoch's α (not the epoch selected on val: α is the whole run's
        record of the source) and, with true labels, Figure 2's curve."""
        alpha = self.alpha_values(source)
        table: dict[str, np.ndarray] = {
            "domain": np.full(len(alpha), source.view.name),
            "row": source.rows.astype(np.int64),
            "alpha": alpha,
            "label": source.labels.cpu().numpy(),
        }
        noisy = source.noisy
        if noisy is not None and source.truth is not None:
            table["true_label"] = source.truth
            table["noisy"] = noisy
            self.ctx.artifact("alpha_curve", noise_curve(alpha, noisy))
        self.ctx.artifact("alpha", table)

    # ---------------------------------------------------------- modes

    def run(self) -> dict[str, float]:
        c = self.config
        heads = [EvalHead(self.target_spec, self.target_head)]
        groups: list[tuple[list[str], list[str]]] = [([self.target_spec.name], [])]
        if c.mode in ("soseleto", "frozen"):
            opt = self._optimizer([self.source_head, self.target_head])
            final = self.trainer.run(
                lambda: self.soseleto_epoch(self.source, self.source_head, opt),
                heads,
                groups,
                [self.trainer.scheduler(opt)],
            )
            self.keep_artifacts(self.source)
            return final
        if c.mode == "two_stage":
            return self.two_stage(heads, groups)
        if c.mode == "fine_tune":
            pre = self._optimizer([self.source_head])
            pre_sched = self.trainer.scheduler(pre)
            self.trainer.backbone.train()
            self.source_head.train()
            for _ in range(c.pretrain_epochs):
                self.plain_epoch(self.source_head, pre, "source")
                pre_sched.step()
        on = "source" if c.mode == "source_only" else "target"
        opt = self._optimizer([self.target_head])
        return self.trainer.run(
            lambda: self.plain_epoch(self.target_head, opt, on),
            heads,
            groups,
            [self.trainer.scheduler(opt)],
        )

    def two_stage(
        self, heads: list[EvalHead], groups: list[tuple[list[str], list[str]]]
    ) -> dict[str, float]:
        """Stage 1: transfer SOSELETO; stage 2: noisy-label SOSELETO on the target's
        unlabelled rows, labelled by stage 1's target classifier (§4.3)."""
        c = self.config
        self.stage = "transfer"
        opt = self._optimizer([self.source_head, self.target_head])
        sched = self.trainer.scheduler(opt)
        self.trainer.backbone.train()
        for module in (self.source_head, self.target_head):
            module.train()
        for _ in range(c.pretrain_epochs):
            self.soseleto_epoch(self.source, self.source_head, opt)
            sched.step()
        rows = _unlabelled(self.target_view.domain, c.task)
        pseudo = self.predict(self.target_view, rows)
        relabelled = self._source_set(self.target_view, rows, pseudo)
        self.stage = "relabelled"
        self.source_head = self.target_head  # noisy-label mode: one classifier
        self.steps = _batches_per_pass(len(rows), c.batch_size)
        pseudo_acc = (
            float(np.mean(pseudo == relabelled.truth)) if relabelled.truth is not None else None
        )
        opt = self._optimizer([self.target_head])

        def epoch() -> dict[str, float]:
            parts = self.soseleto_epoch(relabelled, self.target_head, opt)
            if pseudo_acc is not None:
                parts["pseudo_acc"] = pseudo_acc
            return parts

        final = self.trainer.run(epoch, heads, groups, [self.trainer.scheduler(opt)])
        self.keep_artifacts(relabelled)
        return final

    @torch.no_grad()
    def predict(self, view: DomainView, rows: np.ndarray) -> np.ndarray:
        with eval_mode(self.trainer.backbone, self.target_head):
            out = [
                self.target_head(self.trainer.backbone(view.encoder(b))).argmax(1).cpu().numpy()
                for b in minibatches(rows, 512, None)
            ]
        return np.concatenate(out).astype(np.int64)


def _batches_per_pass(n: int, batch_size: int) -> int:
    """Batches in one shuffled pass (`minibatches` drops a trailing batch of one)."""
    return max(1, n // batch_size + (1 if n % batch_size >= 2 else 0))


def _fields(spec: TaskSpec) -> tuple[str, int, int]:
    return spec.name, spec.column, spec.num_classes
