"""Horizontal fusion (HFTA): N backbones fused into one module compute what the N
backbones compute apart: features, gradients, optimizer steps, batch-norm
statistics, in train and eval mode. Every check runs the separate backbones as
the reference, in float64 so that 1e-10 is float rounding and nothing else."""

from __future__ import annotations

import pytest
import torch

from methods.core.backbones import BACKBONES, Backbone, build_backbone
from methods.core.fused import FusedBackbone, can_fuse, fuse_backbones


def _members(name: str, shape: tuple[int, ...], n: int, feature_dim: int = 0) -> list[Backbone]:
    nets = []
    for k in range(n):
        torch.manual_seed(k)  # different weights per member: a mix-up of members shows
        nets.append(build_backbone(name, shape, feature_dim=feature_dim).double())
    return nets


def _targets(n: int, batch: int, width: int) -> torch.Tensor:
    return torch.randn(batch, n, width, generator=torch.Generator().manual_seed(99)).double()


def _member_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((features - target) ** 2).mean() + features.abs().sum() * 1e-3


def _assert_same_state(fused: FusedBackbone, members: list[Backbone], atol: float) -> None:
    for k, member in enumerate(members):
        expected = member.state_dict()
        got = fused.member_state_dict(k)
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(got[key], value, rtol=0, atol=atol, msg=f"{k} {key}")


@pytest.mark.parametrize(
    ("name", "shape", "n", "batch", "feature_dim"),
    [
        ("small_cnn", (3, 16, 16), 3, 6, 0),
        ("small_cnn", (3, 16, 16), 3, 6, 8),
        ("resnet18", (3, 32, 32), 2, 4, 0),
        ("resnet18", (3, 32, 32), 2, 4, 8),
    ],
)
def test_fused_training_is_the_members_training_apart(
    name: str, shape: tuple[int, ...], n: int, batch: int, feature_dim: int
) -> None:
    members = _members(name, shape, n, feature_dim)
    fused = fuse_backbones(members)
    assert (fused.n, fused.out_dim) == (n, members[0].out_dim)
    _assert_same_state(fused, members, atol=0)  # the copy in is exact

    fused_opt = torch.optim.Adam(fused.parameters(), lr=1e-3)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in members]
    gen = torch.Generator().manual_seed(1)
    target = _targets(n, batch, fused.out_dim)
    for step in range(3):
        # Equal weights leave only float rounding (1e-10). Once Adam has stepped,
        # the weights differ by more: its step g/(sqrt(v)+eps) is ill-conditioned
        # for gradients near eps, as some are here (resnet's last blocks see 1x1
        # maps of 4 samples), and turns 1e-16 gradient rounding into ~1e-10.
        atol = 1e-10 if step == 0 else 1e-8
        x = torch.randn(batch, *shape, generator=gen).double()
        out = fused(x)
        assert out.shape == (batch, n, fused.out_dim)
        apart = [m(x) for m in members]
        for k in range(n):
            torch.testing.assert_close(out[:, k], apart[k], rtol=0, atol=atol)

        fused_opt.zero_grad()
        fused_loss = sum(_member_loss(out[:, k], target[:, k]) for k in range(n))
        assert isinstance(fused_loss, torch.Tensor)
        fused_loss.backward()
        for k, (member, opt) in enumerate(zip(members, opts)):
            opt.zero_grad()
            _member_loss(apart[k], target[:, k]).backward()
            grads = fused.member_grads(k)
            params = dict(member.named_parameters())
            assert grads.keys() == params.keys()
            for key, p in params.items():
                assert p.grad is not None
                torch.testing.assert_close(grads[key], p.grad, rtol=0, atol=atol, msg=key)
            opt.step()
        fused_opt.step()

    # weights after Adam, batch-norm running statistics after 3 batches
    _assert_same_state(fused, members, atol=1e-8)
    assert any(key.endswith("running_mean") for key in fused.state_dict())

    x = torch.randn(batch, *shape, generator=gen).double()
    with torch.no_grad():
        out = fused.eval()(x)
        apart = [m.eval()(x) for m in members]
        for k in range(n):
            torch.testing.assert_close(out[:, k], apart[k], rtol=0, atol=1e-8)
        # eval mode with equal weights and the trained running statistics: rounding only
        refused = fuse_backbones(members)
        assert not refused.training
        out = refused(x)
        for k in range(n):
            torch.testing.assert_close(out[:, k], apart[k], rtol=0, atol=1e-10)

        # member_state_dict restores a member in a fresh Backbone
        restored = build_backbone(name, shape, feature_dim=feature_dim).double().eval()
        restored.load_state_dict(fused.member_state_dict(n - 1))
        torch.testing.assert_close(restored(x), fused(x)[:, n - 1], rtol=0, atol=1e-10)


@pytest.mark.parametrize(("name", "n", "bad"), [("small_cnn", 3, 1), ("resnet18", 2, 0)])
def test_a_diverged_member_leaves_the_others_untouched(name: str, n: int, bad: int) -> None:
    members = _members(name, (3, 32, 32), n)
    with torch.no_grad():
        for p in members[bad].parameters():
            p.fill_(float("nan"))
    fused = fuse_backbones(members)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2)).double()
    out = fused(x)
    assert torch.isnan(out[:, bad]).all()
    healthy = [k for k in range(n) if k != bad]
    for k in healthy:
        assert torch.isfinite(out[:, k]).all()
        torch.testing.assert_close(out[:, k], members[k](x), rtol=0, atol=1e-10)
    # even with the NaN member's loss in the sum, the others' gradients stay finite
    out.sum().backward()
    for k in healthy:
        for key, grad in fused.member_grads(k).items():
            assert torch.isfinite(grad).all(), key
    assert not all(torch.isfinite(g).all() for g in fused.member_grads(bad).values())


@pytest.mark.parametrize(("name", "n"), [("small_cnn", 3), ("resnet18", 2)])
def test_channels_last_is_a_layout_not_a_model(name: str, n: int) -> None:
    members = _members(name, (3, 32, 32), n)
    plain = fuse_backbones(members).use_memory_format("contiguous", "cpu")
    fast = fuse_backbones(members).use_memory_format("channels_last", "cpu")
    assert fast.channels_last and not plain.channels_last
    assert fuse_backbones(members).use_memory_format("auto", "cpu").channels_last
    assert not fuse_backbones(members).use_memory_format("auto", "cuda").channels_last
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)).double()
    torch.testing.assert_close(fast(x), plain(x), rtol=0, atol=1e-10)
    # the member slices read back in the contiguous layout the members use
    for k, member in enumerate(members):
        member.load_state_dict(fast.member_state_dict(k))


def test_small_inputs_are_upsampled_as_apart() -> None:
    members = _members("resnet18", (3, 16, 16), 2)
    fused = fuse_backbones(members)
    x = torch.randn(4, 3, 16, 12, generator=torch.Generator().manual_seed(4)).double()
    out = fused(x)
    for k, member in enumerate(members):
        torch.testing.assert_close(out[:, k], member(x), rtol=0, atol=1e-10)


def test_only_the_supported_backbones_fuse() -> None:
    assert [b for b in BACKBONES if can_fuse(b)] == ["small_cnn", "resnet18", "resnet34"]
    for name, shape in [("mlp", (3, 8, 8)), ("shallow_mlp", (4,)), ("vgg11", (3, 32, 32))]:
        net = build_backbone(name, shape)
        with pytest.raises(ValueError, match="only small_cnn, resnet18, resnet34 fuse"):
            fuse_backbones([net, net])
    with pytest.raises(ValueError, match="at least one"):
        fuse_backbones([])


@pytest.mark.parametrize(
    ("a", "b", "where"),
    [
        (("small_cnn", (3, 16, 16), 0), ("resnet18", (3, 16, 16), 0), "trunk"),
        (("small_cnn", (3, 16, 16), 0), ("small_cnn", (1, 16, 16), 0), "trunk.0: Conv2d"),
        (("small_cnn", (3, 16, 16), 8), ("small_cnn", (3, 16, 16), 0), "proj"),
        (("resnet18", (3, 32, 32), 0), ("resnet34", (3, 32, 32), 0), r"trunk\.layer1\.2"),
    ],
)
def test_members_of_different_architectures_are_refused(
    a: tuple[str, tuple[int, ...], int], b: tuple[str, tuple[int, ...], int], where: str
) -> None:
    first = build_backbone(a[0], a[1], feature_dim=a[2])
    second = build_backbone(b[0], b[1], feature_dim=b[2])
    with pytest.raises(ValueError, match=rf"member 1 with member 0.*{where}.*one architecture"):
        fuse_backbones([first, second])


def test_members_of_different_dtypes_are_refused() -> None:
    first = build_backbone("small_cnn", (3, 16, 16))
    with pytest.raises(ValueError, match="torch.float64"):
        fuse_backbones([first, build_backbone("small_cnn", (3, 16, 16)).double()])
