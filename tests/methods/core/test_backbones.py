from __future__ import annotations

from pathlib import Path

import pytest
import torch

from methods.core.backbones import BACKBONES, IMAGE_ONLY, build_backbone, check_backbone
from methods.core.errors import ConfigError


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


def _saved_resnet18(path: Path) -> dict[str, torch.Tensor]:
    import torchvision.models as tvm

    torch.manual_seed(3)
    state = tvm.resnet18(weights=None).state_dict()
    torch.save(state, path)
    return state


def test_weights_from_a_local_state_dict(tmp_path: Path) -> None:
    """The AAL paper starts from ImageNet weights (§4.1): a state dict on disk loads
    into the trunk as saved; nothing is downloaded."""
    state = _saved_resnet18(tmp_path / "resnet18.pth")
    net = build_backbone("resnet18", (3, 32, 32), weights=str(tmp_path / "resnet18.pth"))
    trunk = net.trunk.state_dict()
    for key in ("conv1.weight", "layer1.0.conv1.weight", "layer4.1.bn2.running_var"):
        assert torch.equal(trunk[key], state[key]), key
    assert not any(k.startswith("fc.") for k in trunk if k != "fc")


def test_pretrained_filters_carry_over_to_grey_images(tmp_path: Path) -> None:
    """A grey input on the 1-channel network answers as its RGB copy does on the original."""
    _saved_resnet18(tmp_path / "resnet18.pth")
    grey = build_backbone("resnet18", (1, 32, 32), weights=str(tmp_path / "resnet18.pth")).eval()
    rgb = build_backbone("resnet18", (3, 32, 32), weights=str(tmp_path / "resnet18.pth")).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)


def test_weights_mistakes_are_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a file"):
        build_backbone("resnet18", (3, 32, 32), weights=str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError, match="needs a torchvision backbone"):
        build_backbone("small_cnn", (3, 32, 32), weights=str(tmp_path / "missing.pth"))
    _saved_resnet18(tmp_path / "resnet18.pth")
    with pytest.raises(ConfigError, match="is not a state dict of torchvision's resnet34"):
        build_backbone("resnet34", (3, 32, 32), weights=str(tmp_path / "resnet18.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="is not a state dict"):
        build_backbone("resnet18", (3, 32, 32), weights=str(tmp_path / "junk.pth"))
    # refused when a config is checked, before anything trains
    with pytest.raises(ConfigError, match="is not a state dict"):
        check_backbone("resnet18", (3, 32, 32), weights=str(tmp_path / "junk.pth"))
