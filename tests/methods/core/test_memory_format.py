"""`memory_format`: channels_last on a CPU for convolutional backbones is a layout,
not a model: the same weights give the same features, and training reports the
same numbers up to float rounding."""

from __future__ import annotations

import pytest
import torch

from methods import MetricsCollector, RunContext, get_method
from methods.core.backbones import build_backbone


def _conv_weights(net: torch.nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("small_cnn", "auto", True),
        ("small_cnn", "channels_last", True),
        ("small_cnn", "contiguous", False),
        ("resnet18", "auto", True),
        ("mlp", "channels_last", False),  # no convolution: nothing to lay out
    ],
)
def test_auto_lays_out_convolutions_channels_last_on_a_cpu(
    name: str, fmt: str, expected: bool
) -> None:
    net = build_backbone(name, (3, 32, 32)).use_memory_format(fmt, "cpu")
    assert net.channels_last is expected
    for w in _conv_weights(net):
        assert w.is_contiguous(memory_format=torch.channels_last) is expected or w.shape[-1] == 1


def test_auto_keeps_the_default_layout_off_the_cpu() -> None:
    net = build_backbone("small_cnn", (3, 32, 32)).use_memory_format("auto", "cuda")
    assert not net.channels_last  # decided without a GPU: nothing is moved


def test_the_same_weights_give_the_same_features_in_either_layout() -> None:
    torch.manual_seed(0)
    plain = build_backbone("small_cnn", (3, 32, 32)).use_memory_format("contiguous", "cpu")
    fast = build_backbone("small_cnn", (3, 32, 32))
    fast.load_state_dict(plain.state_dict())
    fast.use_memory_format("channels_last", "cpu")
    x = torch.randn(8, 3, 32, 32)
    plain.eval(), fast.eval()
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)


def test_a_training_reports_the_same_numbers_in_either_layout(tiny_shapes) -> None:
    spec = get_method("stl")
    base = {"task": "red", "backbone": "small_cnn", "epochs": 2, "batch_size": 32}
    finals = {}
    for fmt in ("contiguous", "channels_last"):
        config = spec.make_config({**base, "memory_format": fmt})
        finals[fmt] = spec.train(config, tiny_shapes, RunContext(seed=0, report=MetricsCollector()))
    a, b = finals["contiguous"], finals["channels_last"]
    assert a.keys() == b.keys()
    for k in a:  # losses to rounding; accuracies identical on this tiny run
        assert b[k] == pytest.approx(a[k], rel=1e-3, abs=1e-4), k
