"""`TrainConfig`: the optimisation settings every supervised kernel shares, with
the AAL paper's §4.1 defaults (a method's config overrides the ones its paper
sets differently), and the checks every training needs of its data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..data import Dataset, Domain
from .backbones import BACKBONES, Precision, check_backbone
from .config import meta
from .errors import DataError


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
    memory_format: Literal["auto", "channels_last", "contiguous"] = field(
        default="auto",
        metadata=meta(
            "memory layout of a convolutional F's weights and inputs; auto: channels_last on"
            " a CPU (0.72-0.96x the small_cnn step time measured here), contiguous on a GPU;"
            " the same numbers per seed either way, up to float rounding"
        ),
    )
    precision: Precision = field(
        default="fp32",
        metadata=meta(
            "arithmetic of F's forward and backward: fp32, or bf16 autocast (F's"
            " matmuls and convolutions in bfloat16, weights, heads, losses and optimiser"
            " in fp32); bf16 is faster on CPUs with AMX or AVX512-BF16 and on recent"
            " GPUs, and changes the numbers beyond float rounding"
        ),
    )
    loss_reduction: Literal["mean", "sum"] = field(
        default="mean",
        metadata=meta(
            "a task loss over a batch's labelled samples: their mean, or their sum (the PL"
            " paper's Alg. 1 writes Goal 1 as a sum)"
        ),
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

    @property
    def needs_val(self) -> bool:
        """Whether selection reads the validation split (`select="best_val"`); with
        `select="last"` a domain without one trains and is tested all the same."""
        return self.select == "best_val"

    def check_training(self, data: Dataset) -> Domain:
        """Checks every supervised kernel needs; returns the domain trained on."""
        domain = data.domain(self.domain)
        check_backbone(self.backbone, domain.input_shape, self.weights)
        for split in ("train", "val") if self.needs_val else ("train",):
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
