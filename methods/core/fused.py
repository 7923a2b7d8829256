"""Horizontal fusion of N same-shaped backbones into one wider module (HFTA).

Packed trials train, for one seed, the M single-task and M(M-1)/2 pair-task
models side by side: they share the backbone's shape and every input batch, so
their N backbones can run as one network, as in HFTA (Wang et al., "Horizontally
Fused Training Array: An Effective Hardware Utilization Squeezer for Training
Novel Deep Learning Models", MLSys 2021). One fused forward on a batch gives
(B, N, out_dim): exactly, up to float rounding, what the N backbones give apart.

How each layer fuses:

- a Conv2d becomes one Conv2d with N× the output channels and N× the groups,
  its weight the members' weights concatenated along dim 0, so output channels
  [k·C, (k+1)·C) are member k's. The stem (the first convolution) reads the
  shared input itself: one ungrouped convolution with N·C output channels is
  the N members' stems, with no N-fold copy of the batch;
- a BatchNorm2d becomes BatchNorm2d(N·C): batch norm is per channel, so this is
  per-member batch norm in train and eval mode, running statistics included;
- ReLU, max pooling, average pooling and the residual add of resnet's
  BasicBlock act channel by channel and are left as they are;
- the projection Linear(F, D) becomes N matrix products of (B, F) by (F, D).

Every fused tensor is the members' tensors concatenated along dim 0, so member
k's slice of each parameter is one contiguous block, and an elementwise
optimizer (SGD, Adam) over the fused parameters updates each member exactly as
its own optimizer would. `member_state_dict(k)` and `member_grads(k)` give that
slice under the original Backbone's key names.

What fuses: `small_cnn`, `resnet18` and `resnet34` (`can_fuse`), each recognised
layer by layer before it is fused. Other trunks are refused, not fused
generically: densenet's concatenations and shufflenet's channel shuffle and
split put channels out of member-major order (a later grouped convolution would
then read other members' channels), and efficientnet's stochastic depth draws
random numbers per model; vgg, alexnet and mobilenet_v2 hold only per-channel
layers and could be added after the same checks as here.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from .backbones import Backbone, autocast_dtype, autocast_to, upsample_to

FUSABLE = ("small_cnn", "resnet18", "resnet34")

# small_cnn's layers in order (backbones._small_cnn); anything else is another trunk
_SMALL_CNN = (
    *(nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d) * 2,
    nn.Conv2d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.AdaptiveAvgPool2d,
)
_RESNET_DEPTHS: dict[tuple[int, ...], str] = {(2, 2, 2, 2): "resnet18", (3, 4, 6, 3): "resnet34"}


def can_fuse(name: str) -> bool:
    """Whether the backbone called `name` (as in a config) fuses horizontally."""
    return name in FUSABLE


class _MemberLinear(nn.Module):
    """N Linear(F, D) layers side by side on (B, N, F) features.

    The weight is stored (N·D, F), the members' weights concatenated along dim 0
    like every other fused tensor, and viewed (N, D, F) for a batched product."""

    def __init__(self, linears: Sequence[nn.Linear]):
        super().__init__()
        self.n = len(linears)
        self.in_features = linears[0].in_features
        self.out_features = linears[0].out_features
        self.weight = nn.Parameter(torch.cat([lin.weight.detach() for lin in linears]))
        self.bias: nn.Parameter | None = None
        biases = [lin.bias for lin in linears]
        if all(b is not None for b in biases):
            self.bias = nn.Parameter(torch.cat([b.detach() for b in biases if b is not None]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.view(self.n, self.out_features, self.in_features)
        y = torch.einsum("bnf,ndf->bnd", x, w)
        if self.bias is not None:
            y = y + self.bias.view(self.n, self.out_features)
        return y


class FusedBackbone(nn.Module):
    """N backbones of one architecture as one module: (B, C, H, W) -> (B, N, out_dim).

    Built by `fuse_backbones`. Its state dict has the members' key names with
    every tensor N times as long along dim 0 (`num_batches_tracked`, a count
    every member shares, is kept once)."""

    def __init__(self, trunk: nn.Module, proj: nn.Module, n: int, out_dim: int, min_size: int):
        super().__init__()
        self.trunk = trunk
        self.proj = proj
        self.n = n
        self.out_dim = out_dim
        self.min_size = min_size
        self.channels_last = False  # set by `use_memory_format`
        self.autocast: torch.dtype | None = None  # set by `use_precision`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = upsample_to(x, self.min_size)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # channels are member-major all the way through the trunk: member k owns
        # the k-th block of the flattened features
        with autocast_to(self.autocast, x):
            features = torch.flatten(self.trunk(x), 1).unflatten(1, (self.n, -1))
            out: torch.Tensor = self.proj(features)
        return out if self.autocast is None else out.to(x.dtype)

    def use_memory_format(self, memory_format: str, device: torch.device | str) -> FusedBackbone:
        """As `Backbone.use_memory_format` ("auto": channels_last on a CPU, every
        fusable trunk being convolutional): a layout, not a model."""
        if memory_format == "auto":
            memory_format = "channels_last" if torch.device(device).type == "cpu" else "contiguous"
        self.channels_last = memory_format == "channels_last"
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        return self.to(memory_format=layout)

    def use_precision(self, precision: str) -> FusedBackbone:
        """As `Backbone.use_precision`: every member's forward under `precision`."""
        self.autocast = autocast_dtype(precision)
        return self

    def member_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights and buffers (copies), keyed as the original Backbone's
        state dict: `backbone.load_state_dict(fused.member_state_dict(k))`
        restores it."""
        self._check_member(k)
        return {
            name: self._member_slice(t, k).clone(memory_format=torch.contiguous_format)
            for name, t in self.state_dict().items()
        }

    def member_grads(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's slice of each parameter's `.grad` (views), keyed as its
        Backbone's parameters; parameters without a gradient are left out."""
        self._check_member(k)
        return {
            name: self._member_slice(p.grad, k)
            for name, p in self.named_parameters()
            if p.grad is not None
        }

    def _member_slice(self, t: torch.Tensor, k: int) -> torch.Tensor:
        if t.dim() == 0:  # num_batches_tracked: one count, the same for every member
            return t
        return t.unflatten(0, (self.n, -1))[k]

    def _check_member(self, k: int) -> None:
        if not 0 <= k < self.n:
            raise IndexError(f"member {k} out of range: this fused backbone has {self.n}")


def fuse_backbones(backbones: Sequence[Backbone]) -> FusedBackbone:
    """One `FusedBackbone` holding copies of `backbones`' current weights and
    buffers (member k is `backbones[k]`), in the first one's train/eval mode and
    memory layout. Raises ValueError when they are not all one fusable
    architecture (see `can_fuse`) on one device and dtype."""
    members = list(backbones)
    if not members:
        raise ValueError("fuse_backbones needs at least one backbone")
    first = members[0]
    kind = _kind(first)
    if kind is None:
        raise ValueError(
            f"cannot fuse a backbone whose trunk is {_describe(first.trunk)}: only"
            f" {', '.join(FUSABLE)} fuse horizontally; train these members apart"
        )
    _check_same(members)

    n = len(members)
    trunk = _fuse_trunk([m.trunk for m in members], stem="0" if kind == "small_cnn" else "conv1")
    proj: nn.Module = nn.Identity()
    if isinstance(first.proj, nn.Linear):
        proj = _MemberLinear([m.proj for m in members if isinstance(m.proj, nn.Linear)])
    fused = FusedBackbone(trunk, proj, n, first.out_dim, first.min_size)
    fused.train(first.training)
    if first.channels_last:
        fused.use_memory_format("channels_last", "cpu")
    return fused


def _kind(backbone: Backbone) -> str | None:
    """Which fusable backbone this is, recognised by its layers; None for any other."""
    if not isinstance(backbone.proj, (nn.Linear, nn.Identity)):
        return None
    trunk = backbone.trunk
    if type(trunk) is nn.Sequential:
        plain_stem = isinstance(trunk[0], nn.Conv2d) and trunk[0].groups == 1
        return "small_cnn" if tuple(map(type, trunk)) == _SMALL_CNN and plain_stem else None
    from torchvision.models.resnet import BasicBlock, ResNet

    # exact types: a subclass may override forward with something that mixes channels
    if type(trunk) is not ResNet or not isinstance(trunk.fc, nn.Identity):
        return None
    allowed = (
        ResNet,
        BasicBlock,
        nn.Sequential,
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.ReLU,
        nn.MaxPool2d,
        nn.AdaptiveAvgPool2d,
        nn.Identity,
    )
    if any(type(m) not in allowed for m in trunk.modules()):
        return None
    if not isinstance(trunk.conv1, nn.Conv2d) or trunk.conv1.groups != 1:
        return None
    layers = [getattr(trunk, f"layer{i}") for i in range(1, 5)]
    return _RESNET_DEPTHS.get(tuple(len(layer) for layer in layers))


def _describe(trunk: nn.Module) -> str:
    if isinstance(trunk, nn.Sequential):
        return f"Sequential({', '.join(type(m).__name__ for m in trunk)})"
    return type(trunk).__name__


def _layout(backbone: Backbone) -> list[tuple[str, str]]:
    """Each module's name, type and hyperparameters (channels, kernel, stride,
    eps, momentum, ...): equal for two backbones of one architecture."""
    return [(name, f"{type(m).__name__}({m.extra_repr()})") for name, m in backbone.named_modules()]


def _difference(a: tuple[str, str], b: tuple[str, str]) -> str:
    if a[0] == b[0]:
        return f"{a[0] or 'the backbone'}: {a[1]} vs {b[1]}"
    return f"{a[0]}: {a[1]} vs {b[0]}: {b[1]}"


def _check_same(members: Sequence[Backbone]) -> None:
    first = members[0]
    reference = _layout(first)
    tensors = [*first.parameters(), *first.buffers()]
    for k, member in enumerate(members[1:], start=1):
        layout = _layout(member)
        if layout != reference or member.min_size != first.min_size:
            where = next(
                (_difference(a, b) for a, b in zip(reference, layout, strict=False) if a != b),
                f"min_size {first.min_size} vs {member.min_size}"
                if member.min_size != first.min_size
                else f"{len(reference)} vs {len(layout)} modules",
            )
            raise ValueError(
                f"cannot fuse member {k} with member 0: their architectures differ ({where});"
                " fused members must share one architecture"
            )
        for a, b in zip(tensors, [*member.parameters(), *member.buffers()], strict=True):
            if (a.device, a.dtype) != (b.device, b.dtype):
                raise ValueError(
                    f"cannot fuse member {k} with member 0: its tensors are {b.dtype} on"
                    f" {b.device}, member 0's {a.dtype} on {a.device}"
                )
        for (name, m0), (_, mk) in zip(first.named_modules(), member.named_modules(), strict=True):
            seen0, seen = (_batches_seen(m) for m in (m0, mk))
            if seen0 != seen:
                raise ValueError(
                    f"cannot fuse member {k} with member 0: {name} has seen {seen} batches,"
                    f" member 0's {seen0}; the fused batch norm keeps one count for all"
                )


def _batches_seen(module: nn.Module) -> int | None:
    """A batch norm's `num_batches_tracked` (None for other layers, or when untracked)."""
    count = getattr(module, "num_batches_tracked", None)
    return int(count) if isinstance(module, nn.BatchNorm2d) and count is not None else None


def _fuse_trunk(trunks: Sequence[nn.Module], stem: str) -> nn.Module:
    """A copy of trunks[0] whose convolutions and batch norms are the members'
    fused; every other layer acts per channel and is kept. `stem` names the
    convolution that reads the shared input."""
    fused = copy.deepcopy(trunks[0])
    members = [dict(t.named_modules()) for t in trunks]
    for parent_name, parent in list(fused.named_modules()):
        for child_name, child in list(parent.named_children()):
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            originals = [m[name] for m in members]
            if isinstance(child, nn.Conv2d):
                convs = [c for c in originals if isinstance(c, nn.Conv2d)]
                setattr(parent, child_name, _fuse_conv(convs, shared_input=name == stem))
            elif isinstance(child, nn.BatchNorm2d):
                bns = [b for b in originals if isinstance(b, nn.BatchNorm2d)]
                setattr(parent, child_name, _fuse_batch_norm(bns))
    return fused


def _fuse_conv(convs: Sequence[nn.Conv2d], shared_input: bool) -> nn.Conv2d:
    c = convs[0]
    n = len(convs)
    # a stem reads the one shared input, so it stays ungrouped (its groups are 1,
    # checked by `_kind`); deeper layers read N members' channels side by side
    if shared_input:
        in_channels, groups = c.in_channels, c.groups
    else:
        in_channels, groups = n * c.in_channels, n * c.groups
    fused = nn.utils.skip_init(
        nn.Conv2d,
        in_channels,
        n * c.out_channels,
        c.kernel_size,
        stride=c.stride,
        padding=c.padding,
        dilation=c.dilation,
        groups=groups,
        bias=c.bias is not None,
        padding_mode=c.padding_mode,
        device=c.weight.device,
        dtype=c.weight.dtype,
    )
    with torch.no_grad():
        fused.weight.copy_(torch.cat([m.weight for m in convs]))
        if fused.bias is not None:
            fused.bias.copy_(torch.cat([m.bias for m in convs if m.bias is not None]))
    return fused


def _fuse_batch_norm(bns: Sequence[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    b = bns[0]
    like = b.weight if b.weight is not None else b.running_mean
    fused = nn.BatchNorm2d(
        len(bns) * b.num_features,
        eps=b.eps,
        momentum=b.momentum,
        affine=b.affine,
        track_running_stats=b.track_running_stats,
        device=like.device if like is not None else None,
        dtype=like.dtype if like is not None else None,
    )
    with torch.no_grad():
        for attr in ("weight", "bias", "running_mean", "running_var"):
            target = getattr(fused, attr)
            if target is not None:
                target.copy_(torch.cat([getattr(m, attr) for m in bns]))
        if fused.num_batches_tracked is not None and b.num_batches_tracked is not None:
            fused.num_batches_tracked.copy_(b.num_batches_tracked)
    return fused
