"""`jdm`: noisy multi-task joint distribution matching ("Facial Emotion Recognition
with Noisy Multi-task Annotations", §4, eq. 6–10, Alg. 1, app. A–B).

Images come with T noisy label sets (classes or continuous values). An encoder
G_Y (the backbone, one head per label set, and μ, log σ² of a latent y⁰ drawn
by reparameterisation) and a decoder G_X (`jdm_nets.Decoder`: ỹ⁰ ~ N(0, I) and
the noisy labels → an image) are matched by a discriminator D
(`nets.Discriminator`) on the joint distribution of (image, y⁰, labels):

    D:       max  E[g(D(x, G_Y(x)))] + E[h(D(G_X(ỹ), ỹ))]            (eq. 9)
    G_Y, G_X: min  f(G_Y(x), ỹ) + λ·(E[ĥ(−D(x, G_Y(x)))] + E[ĥ(D(G_X(ỹ), ỹ))])

with g(z) = min(0, z − 1), h(z) = min(0, −z − 1), ĥ(z) = −z (eq. 10), each
summed over the joint score and the marginal scores D returns; f is eq. 10's
task loss (`label_sets.eq10_loss`: cross-entropy per discrete set, γ·(1 − CCC)
per continuous one). As in the paper (and its code, NOTES.md) the encoder pair
is the "real" side of the hinge: D learns to score it ≥ 1 and the decoder's
≤ −1, and the generators' adversarial term is mean S_enc − mean S_dec.

How much λ weighs depends on how many scores that term sums: the joint score
and one marginal score per stream (image, y⁰, each label set), 3 + T for T
label sets. The paper's CIFAR setup has T = 3 class sets, 6 scores; our
`noisy_sets` comparison adds the ink value, T = 4, 7 scores, so the same λ
weighs its adversarial term 7/6 as heavily (and `joint_score=false` /
`marginal_scores=false` drop 1 and 2 + T of them).

Per iteration (Alg. 1, app. A): one joint step of G_Y and G_X, then `d_steps`
(2) steps of D on the same batch, scored against the generators' outputs
after their step (Alg. 1 line 6; recomputed without a gradient, leaving batch
norm's statistics as one pass over the batch left them). Adam, lr 1e-4, β = (0.9, 0.999); γ = 1;
λ = 0.4 (§5.1). G_Y and G_X take the configured optimiser (`optimizer`,
`momentum`, `weight_decay`: Adam by default, as in app. A); D keeps app. A's
Adam at `lr`, whatever G's optimiser. The adversarial terms and D start after `warmup_epochs`.
What D sees, following the authors' code (NOTES.md): the encoder side gets the
raw class logits (`encoder_labels="softmax"`: probabilities) and raw values;
the decoder side one-hot classes and values clipped to [−1, 1]; images in
[−1, 1] on both sides.

Ablations (§5.3): `joint_score=false`, `marginal_scores=false` build D without
those scores; `decoder=false` drops G_X, and the decoder side becomes the real
image with its noisy labels and a fresh ỹ⁰ (what is left to match without a
generator; the paper does not say). After training, `samples` keeps G_X's
images for every class of the first discrete set (the paper's Fig. 4; a PNG
grid under --out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core import PlotFn, Trainer, eval_mode, kept_buffers
from ..core.config import meta
from ..core.context import RunContext
from ..core.errors import ConfigError
from ..core.registry import register_method
from ..data import Dataset
from .label_sets import (
    Heads,
    LabelSet,
    LabelSetsConfig,
    eq10_loss,
    label_sets,
    recording,
    run_scored,
)
from .nets import Decoder, Discriminator
from .plots import samples_png

SAMPLES_PER_CLASS = 8


@dataclass(frozen=True)
class JDMConfig(LabelSetsConfig):
    """Joint distribution matching of (image, labels) between G_Y and G_X."""

    plots: ClassVar[dict[str, PlotFn]] = {"samples": samples_png}

    lam: float = field(default=0.4, metadata=meta("λ of eq. 9 (§5.1: 0.4; swept 0.2–1.0)", min=0.0))
    warmup_epochs: int = field(
        default=0, metadata=meta("epochs of f alone before the adversarial terms", min=0)
    )
    latent_dim: int = field(default=16, metadata=meta("size of y⁰ (not given)", min=1))
    d_steps: int = field(default=2, metadata=meta("D steps per G step (app. A: 2)", min=1))
    joint_score: bool = field(default=True, metadata=meta("D's joint score (ablation: off)"))
    marginal_scores: bool = field(
        default=True, metadata=meta("D's marginal scores (ablation: off)")
    )
    decoder: bool = field(default=True, metadata=meta("G_X (ablation: off)"))
    encoder_labels: Literal["logits", "softmax"] = field(
        default="logits", metadata=meta("what D sees of G_Y's classes (authors' code: logits)")
    )

    def check(self) -> None:
        super().check()
        if not (self.joint_score or self.marginal_scores):
            raise ConfigError(
                "joint_score and marginal_scores are both off; D needs at least one score"
            )


# ---------------------------------------------------------------- eq. 10's hinge terms


def g_hinge(z: torch.Tensor) -> torch.Tensor:
    return torch.clamp(z - 1.0, max=0.0)


def h_hinge(z: torch.Tensor) -> torch.Tensor:
    return torch.clamp(-z - 1.0, max=0.0)


def h_hat(z: torch.Tensor) -> torch.Tensor:
    return -z


def discriminator_loss(
    encoder_scores: dict[str, torch.Tensor], decoder_scores: dict[str, torch.Tensor]
) -> torch.Tensor:
    """−(E g(S_enc) + E h(S_dec)) summed over scores: what D's step minimises."""
    return -torch.stack(
        [
            g_hinge(encoder_scores[k]).mean() + h_hinge(decoder_scores[k]).mean()
            for k in encoder_scores
        ]
    ).sum()


def generator_adversarial(
    encoder_scores: dict[str, torch.Tensor], decoder_scores: dict[str, torch.Tensor]
) -> torch.Tensor:
    """E ĥ(−S_enc) + E ĥ(S_dec) summed over scores (= mean S_enc − mean S_dec)."""
    return torch.stack(
        [h_hat(-encoder_scores[k]).mean() + h_hat(decoder_scores[k]).mean() for k in encoder_scores]
    ).sum()


# ---------------------------------------------------------------- the model


class Encoder(nn.Module):
    """G_Y's heads on the backbone's features: one per label set, and μ, log σ² of y⁰."""

    def __init__(self, in_features: int, sets: list[LabelSet], latent_dim: int):
        super().__init__()
        self.heads = Heads(in_features, sets)
        self.mu = nn.Linear(in_features, latent_dim)
        self.log_var = nn.Linear(in_features, latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        mu, log_var = self.mu(h), self.log_var(h).clamp(-10.0, 10.0)
        y0 = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        return self.heads(h), y0


def decoder_labels(y: torch.Tensor, sets: list[LabelSet]) -> list[torch.Tensor]:
    """The noisy labels as D and G_X take them: one-hot classes (zeros where missing)
    and values clipped to [−1, 1] (0 where missing)."""
    out = []
    for s in sets:
        v = y[:, s.column]
        if s.continuous:
            out.append(torch.nan_to_num(v, nan=0.0).clamp(-1.0, 1.0)[:, None])
        else:
            known = v >= 0
            onehot = F.one_hot(v.clamp(min=0).long(), s.classes).float()
            out.append(onehot * known[:, None].float())
    return out


@register_method("jdm", config=JDMConfig)
def train(config: JDMConfig, data: Dataset, ctx: RunContext) -> dict[str, float]:
    ctx, history = recording(ctx)
    trainer = Trainer(config, data, ctx)
    view = trainer.view
    shape = view.domain.input_shape
    sets = label_sets(config, view.domain)
    widths = [s.out_features for s in sets]
    encoder = Encoder(trainer.backbone.out_dim, sets, config.latent_dim).to(trainer.device)
    decoder = (
        Decoder(shape, config.latent_dim + sum(widths)).to(trainer.device)
        if config.decoder
        else None
    )
    disc = Discriminator(
        shape, config.latent_dim, widths, config.joint_score, config.marginal_scores
    ).to(trainer.device)
    g_params = [*trainer.backbone.parameters(), *encoder.parameters()]
    if decoder is not None:
        g_params += list(decoder.parameters())
    opt_g = trainer.optimizer(g_params)  # Adam's default β = (0.9, 0.999) are app. A's
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr, betas=(0.9, 0.999))
    mean, std = view.encoder.mean, view.encoder.std
    epoch = 0

    def as_d_image(x: torch.Tensor) -> torch.Tensor:
        """Encoder inputs (standardised) back to [−1, 1], the scale G_X's tanh gives."""
        if not view.domain.is_image:
            return x
        return (x * std + mean) * 2.0 - 1.0

    def encoder_view(outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        if config.encoder_labels == "logits":
            return outputs
        return [o if s.continuous else F.softmax(o, 1) for o, s in zip(outputs, sets, strict=True)]

    def train_epoch() -> dict[str, float]:
        nonlocal epoch
        epoch += 1
        adversarial = epoch > config.warmup_epochs
        for m in (trainer.backbone, encoder, disc, *([decoder] if decoder else [])):
            m.train()
        sums = {"loss": 0.0, "loss/f": 0.0, "loss/g_adv": 0.0, "loss/d": 0.0}
        g_steps = d_steps = 0
        for x, y in trainer.batches():
            outputs, y0 = encoder(trainer.backbone(x))
            f = eq10_loss(outputs, y, sets, config.gamma)
            loss_g = f
            if adversarial:
                real = as_d_image(x)
                noise = torch.randn(len(x), config.latent_dim, device=trainer.device)
                given = decoder_labels(y, sets)
                fake = decoder(torch.cat([noise, *given], 1)) if decoder is not None else real
                disc.requires_grad_(False)
                adv = generator_adversarial(
                    disc(real, y0, encoder_view(outputs)), disc(fake, noise, given)
                )
                disc.requires_grad_(True)
                loss_g = f + config.lam * adv
                sums["loss/g_adv"] += float(adv.detach())
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            g_steps += 1
            sums["loss"] += float(loss_g.detach())
            sums["loss/f"] += float(f.detach())
            if adversarial:
                # Alg. 1 line 6: D plays against the generators as they are *after*
                # their step; a second look at the batch, not a second batch
                g_modules = (trainer.backbone, encoder, *([decoder] if decoder else []))
                with torch.no_grad(), kept_buffers(*g_modules):
                    outputs, y0 = encoder(trainer.backbone(x))
                    if decoder is not None:
                        fake = decoder(torch.cat([noise, *given], 1))
                enc_labels = encoder_view(outputs)
                for _ in range(config.d_steps):
                    loss_d = discriminator_loss(
                        disc(real, y0, enc_labels), disc(fake, noise, given)
                    )
                    opt_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                    opt_d.step()
                    d_steps += 1
                    sums["loss/d"] += float(loss_d.detach())
        parts = {k: v / max(g_steps, 1) for k, v in sums.items() if k != "loss/d"}
        parts["loss/d"] = sums["loss/d"] / max(d_steps, 1)
        parts["g_steps"] = float(g_steps)
        parts["d_steps"] = float(d_steps)
        return parts

    final = run_scored(
        trainer,
        history,
        sets,
        [trainer.backbone, encoder],
        lambda x: encoder.heads(trainer.backbone(x)),
        train_epoch,
        [trainer.scheduler(opt_g)],
    )
    if decoder is not None and view.domain.is_image:
        ctx.artifact("samples", class_samples(decoder, sets, config.latent_dim, shape, ctx.seed))
    return final


@torch.no_grad()
def class_samples(
    decoder: Decoder,
    sets: list[LabelSet],
    latent_dim: int,
    shape: tuple[int, ...],
    seed: int,
) -> dict[str, np.ndarray]:
    """G_X's images for every class of the first discrete set (every set standing for
    the same clean label gets that class; continuous sets 0), pixels in [0, 1]."""
    device = next(decoder.parameters()).device
    first = next(s for s in sets if not s.continuous)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    rows: dict[str, list] = {"label": [], "sample": [], "pixels": []}
    with eval_mode(decoder):
        for c in range(first.classes):
            noise = torch.randn(SAMPLES_PER_CLASS, latent_dim, generator=gen).to(device)
            given = []
            for s in sets:
                if s.continuous:
                    given.append(torch.zeros(SAMPLES_PER_CLASS, 1, device=device))
                else:
                    k = c if s.clean == first.clean and c < s.classes else 0
                    given.append(
                        F.one_hot(torch.full((SAMPLES_PER_CLASS,), k), s.classes).float().to(device)
                    )
            images = (decoder(torch.cat([noise, *given], 1)) + 1.0) / 2.0
            for i, img in enumerate(images.cpu().numpy()):
                rows["label"].append(c)
                rows["sample"].append(i)
                rows["pixels"].append(img.astype(np.float32).ravel())
    channels, height, width = shape
    n = len(rows["label"])
    pixels = np.empty(n, dtype=object)
    pixels[:] = rows["pixels"]
    return {
        "label": np.array(rows["label"], dtype=np.int64),
        "sample": np.array(rows["sample"], dtype=np.int64),
        "channels": np.full(n, channels, dtype=np.int64),
        "height": np.full(n, height, dtype=np.int64),
        "width": np.full(n, width, dtype=np.int64),
        "pixels": pixels,
    }
