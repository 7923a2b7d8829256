from __future__ import annotations

import pytest
import torch

from methods.backbones import BACKBONES, IMAGE_ONLY, build_backbone
from methods.errors import ConfigError


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 20, 28)])
def test_every_backbone_fits_any_image(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = build_backbone(name, shape).eval()
    with torch.no_grad():
        out = net(torch.randn(2, *shape))
    assert out.shape == (2, net.out_dim)
    assert torch.isfinite(out).all()


def test_projection_width_and_vectors() -> None:
    net = build_backbone("mlp", (7,), feature_dim=128)
    assert net(torch.randn(3, 7)).shape == (3, 128)
    assert build_backbone("small_cnn", (3, 16, 16), feature_dim=128).out_dim == 128


def test_shallow_mlp_is_one_hidden_layer_of_feature_dim_units() -> None:
    net = build_backbone("shallow_mlp", (2,), feature_dim=2)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 2)]  # the toy's 2-2(-2)
    assert net.out_dim == 2
    assert (net(torch.randn(5, 2)) >= 0).all()  # ReLU features
    assert build_backbone("shallow_mlp", (1, 4, 4)).out_dim == 32


@pytest.mark.parametrize("name", IMAGE_ONLY)
def test_image_backbones_refuse_vectors(name: str) -> None:
    with pytest.raises(ConfigError, match="needs image inputs.*use backbone=mlp"):
        build_backbone(name, (10,))


def test_unknown_backbone_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'resnet50'; available: small_cnn"):
        build_backbone("resnet50", (3, 32, 32))
