"""The decoder G_X and the discriminator D of the noisy multi-task FER method
("Facial Emotion Recognition with Noisy Multi-task Annotations", §4, app. B,
Fig. 1–2 of the appendix).

- `Decoder` (G_X): [ỹ⁰ ~ N(0, I), the labels (one-hot classes, values)] →
  linear → transposed-convolution blocks with batch norm and ReLU, each
  doubling the size → a convolution to the image's channels → tanh (images in
  [−1, 1]); sizes that are not a power of two are resized at the end. For
  feature-vector data an MLP replaces the convolutions and the output is linear
  (the vectors are standardised, not bounded). Spectral normalisation on every
  linear and convolution layer.
- `Discriminator` (D): one stream per input: for the image, residual blocks of
  two [convolution, ReLU] and an average pooling (app. Fig. 2a) with one
  self-attention block (Fig. 2b, Zhang et al.'s SAGAN: 1×1 query, key and value
  convolutions, softmax over positions, a learnable γ from 0); for y⁰ and for
  each label set an MLP block, the sum of four parallel two-layer MLPs
  (Fig. 2c). Each stream's features give a marginal score by a linear map;
  their concatenation gives the joint score through an MLP. Spectral
  normalisation throughout (the authors' code). `joint=False` /
  `marginal=False` build D without those scores (the paper's ablations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _sn_linear(i: int, o: int) -> nn.Module:
    return spectral_norm(nn.Linear(i, o))


def _sn_conv(i: int, o: int, k: int = 3) -> nn.Module:
    return spectral_norm(nn.Conv2d(i, o, k, padding=k // 2))


class Decoder(nn.Module):
    """G_X: (ỹ⁰, labels) → an input-shaped sample."""

    def __init__(self, input_shape: tuple[int, ...], in_features: int, width: int = 64):
        super().__init__()
        self.input_shape = input_shape
        self.is_image = len(input_shape) == 3
        if not self.is_image:
            (d,) = input_shape
            self.net = nn.Sequential(
                _sn_linear(in_features, 128),
                nn.BatchNorm1d(128),
                nn.ReLU(),
                _sn_linear(128, 128),
                nn.BatchNorm1d(128),
                nn.ReLU(),
                _sn_linear(128, d),
            )
            return
        c, h, w = input_shape
        size = max(4, 2 ** math.ceil(math.log2(max(h, w))))
        self.start = 2 if size <= 8 else 4
        self.width = width
        self.fc = _sn_linear(in_features, width * self.start * self.start)
        blocks: list[nn.Module] = []
        channels = width
        for _ in range(int(math.log2(size // self.start))):
            out = max(16, channels // 2)
            blocks += [
                spectral_norm(nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1)),
                nn.BatchNorm2d(out),
                nn.ReLU(),
            ]
            channels = out
        self.up = nn.Sequential(*blocks)
        self.to_image = _sn_conv(channels, c)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.is_image:
            out: torch.Tensor = self.net(z)
            return out
        _c, h, w = self.input_shape
        x = F.relu(self.fc(z)).view(-1, self.width, self.start, self.start)
        x = torch.tanh(self.to_image(self.up(x)))
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        return x


class ResidualDown(nn.Module):
    """Two [convolution, ReLU] and an average pooling, with a 1×1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(_sn_conv(cin, cout), nn.ReLU(), _sn_conv(cout, cout), nn.ReLU())
        self.skip = _sn_conv(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x) + self.skip(x)
        if min(out.shape[-2:]) >= 2:
            out = F.avg_pool2d(out, 2)
        return out


class SelfAttention(nn.Module):
    """SAGAN self-attention: x + γ·(softmax(fᵀg) applied to h), γ learnt from 0."""

    def __init__(self, channels: int):
        super().__init__()
        inner = max(1, channels // 8)
        self.query = _sn_conv(channels, inner, 1)
        self.key = _sn_conv(channels, inner, 1)
        self.value = _sn_conv(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (n, c', hw)
        k = self.key(x).flatten(2)
        v = self.value(x).flatten(2)  # (n, c, hw)
        attention = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (n, hw, hw)
        out = (v @ attention.transpose(1, 2)).view(n, c, h, w)
        return x + self.gamma * out


class MLPBlock(nn.Module):
    """The sum of four parallel two-layer MLPs (app. Fig. 2c), then ReLU."""

    def __init__(self, in_features: int, width: int = 64, branches: int = 4):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(_sn_linear(in_features, width), nn.ReLU(), _sn_linear(width, width))
            for _ in range(branches)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.stack([b(x) for b in self.branches]).sum(0))


class ImageStream(nn.Module):
    def __init__(self, channels: int, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            ResidualDown(channels, width // 2),
            SelfAttention(width // 2),
            ResidualDown(width // 2, width),
            nn.ReLU(),
        )
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).sum(dim=(2, 3))  # global sum pooling (SAGAN)


class Discriminator(nn.Module):
    """D(x, y⁰, labels) → {score name: (N,) scores}: "joint" and the marginal
    scores "x", "y0" and one per label set ("set<k>"), as switched on."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        latent_dim: int,
        label_widths: Sequence[int],
        joint: bool = True,
        marginal: bool = True,
        width: int = 64,
    ):
        super().__init__()
        if not (joint or marginal):
            raise ValueError("D needs the joint score, the marginal scores or both")
        self.joint_on = joint
        self.marginal_on = marginal
        if len(input_shape) == 3:
            self.image: nn.Module = ImageStream(input_shape[0], width)
        else:
            self.image = MLPBlock(input_shape[0], width)
        self.latent = MLPBlock(latent_dim, width)
        self.sets = nn.ModuleList(MLPBlock(k, width) for k in label_widths)
        names = ["x", "y0", *(f"set{k}" for k in range(len(label_widths)))]
        self.names = names
        self.marginal = (
            nn.ModuleDict({n: _sn_linear(width, 1) for n in names}) if marginal else None
        )
        self.joint = (
            nn.Sequential(_sn_linear(width * len(names), 128), nn.ReLU(), _sn_linear(128, 1))
            if joint
            else None
        )

    def forward(
        self, x: torch.Tensor, y0: torch.Tensor, labels: Sequence[torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        features = [
            self.image(x),
            self.latent(y0),
            *(s(v) for s, v in zip(self.sets, labels, strict=True)),
        ]
        scores: dict[str, torch.Tensor] = {}
        if self.joint is not None:
            scores["joint"] = self.joint(torch.cat(features, dim=1))[:, 0]
        if self.marginal is not None:
            for name, f in zip(self.names, features, strict=True):
                scores[name] = self.marginal[name](f)[:, 0]
        return scores
