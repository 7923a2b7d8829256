"""Backbones: feature extractors F of every kernel, chosen by name in a config.

`build_backbone(name, input_shape, feature_dim)` returns a module mapping a
batch of inputs to (N, out_dim) features, fitted to any input:

- `small_cnn`: three conv-BN-ReLU-pool blocks, for small images on a CPU;
- `mlp`: two hidden layers, for feature vectors (images are flattened);
- `shallow_mlp`: one hidden ReLU layer of `feature_dim` units (32 when 0; the
  SOSELETO toy's 2-2-2 network is `feature_dim=2`);
- torchvision's resnet18, resnet34, vgg11, vgg19, alexnet, densenet121,
  mobilenet_v2, shufflenet_v2_x1_0, efficientnet_b0, built with `weights=None`
  (nothing is downloaded). `weights=FILE` loads a torchvision state dict the
  user has on disk (e.g. torch.hub's resnet18-f37072fd.pth, the ImageNet
  weights the AAL paper starts from, §4.1). The first convolution is rebuilt
  when the input's channel count differs from 3 (pretrained filters summed over
  RGB and spread over the new channels, so a grey image replicated to RGB gives
  the same response), the classifier is dropped, and inputs smaller than the
  network's minimum are upsampled (bilinear) inside the module, so 8×8 digits
  reach AlexNet as 64×64.

`feature_dim > 0` adds a linear projection to that width (Purified Learning's
128-d features); 0 keeps the backbone's own width.
"""

from __future__ import annotations

import contextlib
import functools
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

IMAGE_ONLY = (
    "small_cnn",
    "resnet18",
    "resnet34",
    "vgg11",
    "vgg19",
    "alexnet",
    "densenet121",
    "mobilenet_v2",
    "shufflenet_v2_x1_0",
    "efficientnet_b0",
)
BACKBONES = (*IMAGE_ONLY, "mlp", "shallow_mlp")

# Smallest spatial input each torchvision trunk accepts without collapsing to 0×0.
_MIN_SIZE = {
    "resnet18": 32,
    "resnet34": 32,
    "vgg11": 32,
    "vgg19": 32,
    "alexnet": 64,
    "densenet121": 32,
    "mobilenet_v2": 32,
    "shufflenet_v2_x1_0": 32,
    "efficientnet_b0": 32,
}


class Backbone(nn.Module):
    """A trunk plus optional resize and projection; `out_dim` is its feature width."""

    def __init__(self, trunk: nn.Module, out_dim: int, min_size: int = 0, feature_dim: int = 0):
        super().__init__()
        self.trunk = trunk
        self.min_size = min_size
        self.channels_last = False  # set by `use_memory_format`
        self.autocast: torch.dtype | None = None  # set by `use_precision`
        self.proj: nn.Module = nn.Linear(out_dim, feature_dim) if feature_dim > 0 else nn.Identity()
        self.out_dim = feature_dim if feature_dim > 0 else out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = upsample_to(x, self.min_size)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_to(self.autocast, x):
            out: torch.Tensor = self.proj(torch.flatten(self.trunk(x), 1))
        return out if self.autocast is None else out.to(x.dtype)

    def use_memory_format(self, memory_format: str, device: torch.device | str) -> Backbone:
        """Lay the weights and each input batch out as `memory_format` ("auto":
        channels_last on a CPU for a convolutional trunk, where oneDNN's convolutions
        take 0.72-0.96x the step time of NCHW (small_cnn) on this workplace's CPUs,
        benchmarks/cpu_step.py; contiguous otherwise). A layout, not a model: the same weights
        and the same arithmetic up to float rounding."""
        convolutional = any(isinstance(m, nn.Conv2d) for m in self.trunk.modules())
        if memory_format == "auto":
            memory_format = (
                "channels_last"
                if convolutional and torch.device(device).type == "cpu"
                else "contiguous"
            )
        self.channels_last = memory_format == "channels_last" and convolutional
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        return self.to(memory_format=layout)

    def use_precision(self, precision: str) -> Backbone:
        """Run forward (and so backward) under `precision` (see `autocast_dtype`)."""
        self.autocast = autocast_dtype(precision)
        return self


Precision = Literal["fp32", "bf16"]  # TrainConfig.precision's type: one list of the values
PRECISIONS: tuple[str, ...] = get_args(Precision)


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a `precision` setting: None for fp32; bfloat16 for
    "bf16", where torch.autocast runs the convolutions and matmuls of F in bf16
    (oneDNN's AMX / AVX512-BF16 kernels on a CPU: 0.73x the time of the demo's
    6-epoch training here, benchmarks/cpu_step.py) and keeps weights, and so the
    optimiser, in fp32. F's output is cast back to the input's dtype, so heads
    and losses never see bf16. Not fp16: it needs loss scaling, bf16 does not."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision} is not one of {', '.join(PRECISIONS)}")
    return torch.bfloat16 if precision == "bf16" else None


def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AMX or AVX512-BF16), without which
    bf16 autocast is emulated and slower than fp32 (the benchmarks print it)."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def check_precision(precision: str, device: torch.device | str) -> None:
    """Refuse bf16 on a GPU without bfloat16 arithmetic (before Ampere), where
    torch.autocast would fail mid-training; a CPU always runs it (slowly without
    AMX or AVX512-BF16)."""
    device = torch.device(device)
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"precision=bf16 needs a GPU with bfloat16 arithmetic (Ampere or newer);"
            f" {device} has none: use precision=fp32"
        )


def autocast_to(dtype: torch.dtype | None, x: torch.Tensor) -> contextlib.AbstractContextManager:
    """torch.autocast to `dtype` on x's device; nothing at all for None, so an
    autocast a caller has entered around the model stays in force."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(x.device.type, dtype=dtype)


def upsample_to(x: torch.Tensor, min_size: int) -> torch.Tensor:
    """Images smaller than `min_size` on their short side, upsampled (bilinear) to
    it; anything else as it is."""
    if min_size and x.dim() == 4 and min(x.shape[-2:]) < min_size:
        h, w = x.shape[-2:]
        scale = min_size / min(h, w)
        x = F.interpolate(
            x, size=(round(h * scale), round(w * scale)), mode="bilinear", align_corners=False
        )
    return x


def check_backbone(name: str, input_shape: tuple[int, ...], weights: str = "") -> None:
    """Reject an unknown backbone, an image backbone on feature vectors, or weights
    that are not a file (or not for a torchvision backbone)."""
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone '{name}'; available: {', '.join(BACKBONES)}")
    if name in IMAGE_ONLY and len(input_shape) != 3:
        raise ConfigError(
            f"backbone '{name}' needs image inputs (N, C, H, W) but the data holds feature"
            f" vectors of shape {input_shape}; use backbone=mlp"
        )
    if weights and name not in _MIN_SIZE:
        raise ConfigError(
            f"weights={weights} needs a torchvision backbone ({', '.join(_MIN_SIZE)}), not {name}"
        )
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"weights={weights} is not a file; give a torchvision state dict on this"
                " machine (e.g. ~/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth)"
            )
        st = path.stat()
        _check_weights(name, weights, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _check_weights(name: str, weights: str, size: int, mtime_ns: int) -> None:
    """Load `weights` into `name` once per process and file version, so a file that
    does not fit is refused when the config is checked (before a search starts),
    not in every trial."""
    _torchvision(name, weights)


def build_backbone(
    name: str, input_shape: tuple[int, ...], feature_dim: int = 0, weights: str = ""
) -> Backbone:
    check_backbone(name, input_shape, weights)
    if name == "mlp":
        return Backbone(_mlp(_flat_width(input_shape)), 256, feature_dim=feature_dim)
    if name == "shallow_mlp":
        hidden = feature_dim or 32
        # the hidden layer is the feature width: no extra projection
        return Backbone(
            nn.Sequential(nn.Flatten(), nn.Linear(_flat_width(input_shape), hidden), nn.ReLU()),
            hidden,
        )
    channels = input_shape[0]
    if name == "small_cnn":
        return Backbone(_small_cnn(channels), 64, feature_dim=feature_dim)
    trunk, out_dim = _TORCHVISION[name](_torchvision(name, weights), channels)
    return Backbone(trunk, out_dim, _MIN_SIZE[name], feature_dim)


def _flat_width(input_shape: tuple[int, ...]) -> int:
    width = 1
    for d in input_shape:
        width *= d
    return width


def _small_cnn(channels: int) -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(channels, 16),
        nn.MaxPool2d(2, ceil_mode=True),
        *block(16, 32),
        nn.MaxPool2d(2, ceil_mode=True),
        *block(32, 64),
        nn.AdaptiveAvgPool2d(1),
    )


def _mlp(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(width, 256),
        nn.ReLU(inplace=True),
        nn.Linear(256, 256),
        nn.ReLU(inplace=True),
    )


def _conv_like(conv: Any, channels: int) -> nn.Conv2d:
    """`conv`, reading `channels` input channels: itself when it already does;
    otherwise a new convolution whose filters are `conv`'s summed over its input
    channels and divided among the new ones (pretrained filters stay meaningful)."""
    if conv.in_channels == channels:
        return conv
    new = nn.Conv2d(
        channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        summed = conv.weight.sum(dim=1, keepdim=True)
        new.weight.copy_(summed.repeat(1, channels, 1, 1) / channels)
        if conv.bias is not None and new.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _torchvision(name: str, weights: str = "") -> Any:
    """A torchvision model, with random weights or those of `weights` (a state dict
    file on disk: nothing is downloaded)."""
    import torchvision.models as tvm

    net = getattr(tvm, name)(weights=None)
    if weights:
        path = Path(weights).expanduser()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except (RuntimeError, OSError, KeyError, TypeError, pickle.UnpicklingError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(
                f"weights={weights} is not a state dict of torchvision's {name} ({first})"
            ) from None
    return net


def _resnet(net: Any, channels: int) -> tuple[nn.Module, int]:
    net.conv1 = _conv_like(net.conv1, channels)
    out = int(net.fc.in_features)
    net.fc = nn.Identity()
    return net, out


def _vgg(net: Any, channels: int) -> tuple[nn.Module, int]:
    net.features[0] = _conv_like(net.features[0], channels)
    return nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1)), 512


def _alexnet(net: Any, channels: int) -> tuple[nn.Module, int]:
    net.features[0] = _conv_like(net.features[0], channels)
    return nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1)), 256


def _densenet121(net: Any, channels: int) -> tuple[nn.Module, int]:
    net.features.conv0 = _conv_like(net.features.conv0, channels)
    return nn.Sequential(net.features, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)), 1024


def _first_block_conv(out_dim: int) -> Callable[[Any, int], tuple[nn.Module, int]]:
    """mobilenet_v2 / efficientnet_b0: the stem conv is features[0][0]."""

    def make(net: Any, channels: int) -> tuple[nn.Module, int]:
        net.features[0][0] = _conv_like(net.features[0][0], channels)
        return nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1)), out_dim

    return make


def _shufflenet(net: Any, channels: int) -> tuple[nn.Module, int]:
    net.conv1[0] = _conv_like(net.conv1[0], channels)
    out = int(net.fc.in_features)
    net.fc = nn.Identity()
    return net, out


# each adapts a torchvision model (built by `_torchvision`) to `channels` inputs and
# returns its feature trunk and width
_TORCHVISION: dict[str, Callable[[Any, int], tuple[nn.Module, int]]] = {
    "resnet18": _resnet,
    "resnet34": _resnet,
    "vgg11": _vgg,
    "vgg19": _vgg,
    "alexnet": _alexnet,
    "densenet121": _densenet121,
    "mobilenet_v2": _first_block_conv(1280),
    "shufflenet_v2_x1_0": _shufflenet,
    "efficientnet_b0": _first_block_conv(1280),
}
