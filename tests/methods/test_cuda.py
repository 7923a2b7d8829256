"""Every registered method on a CUDA device (skipped where there is none)."""

from __future__ import annotations

import math

import pytest
import torch

from methods import MetricsCollector, RunContext, get_method, list_methods
from methods.data import Dataset
from tests.conftest import tiny_config_values

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("name", list_methods())
@pytest.mark.parametrize("backbone", ["small_cnn", "resnet18"])
def test_trains_on_cuda(name: str, backbone: str, tiny_digits: Dataset) -> None:
    spec = get_method(name)
    config = spec.make_config(tiny_config_values(name, backbone=backbone))
    final = spec.train(config, tiny_digits, RunContext(device="cuda", report=MetricsCollector()))
    assert final and all(math.isfinite(v) for v in final.values())
    assert 0.0 <= final["test@plain/acc/digit"] <= 1.0


@pytest.mark.parametrize("backbone", ["small_cnn", "resnet18"])
def test_a_pack_on_cuda_gives_each_run_its_own_numbers(backbone: str) -> None:
    """Packed on the GPU as apart on the GPU, in float64 (cuDNN's grouped and plain
    convolutions round differently; float64 keeps that below 1e-6)."""
    from methods.core.packed import train_pack
    from methods.data import load_dataset

    data = load_dataset("shapes", {"n": 96, "image_size": 16, "seed": 3})
    base = {"backbone": backbone, "epochs": 1, "batch_size": 16, "lr": 3e-3}
    runs = [("stl", {"task": "red"}), ("mtl", {"tasks": ["red", "large"]})]
    configs = [get_method(m).make_config({**base, **v}) for m, v in runs]
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        apart = [
            get_method(m).train(c, data, RunContext(device="cuda", seed=1))
            for (m, _), c in zip(runs, configs, strict=True)
        ]
        packed = train_pack(configs, data, [RunContext(device="cuda", seed=1) for _ in runs])
    finally:
        torch.set_default_dtype(before)
    for alone, together in zip(apart, packed, strict=True):
        assert isinstance(together, dict) and together.keys() == alone.keys()
        for key, value in alone.items():
            assert together[key] == pytest.approx(value, abs=1e-6), key


def test_bf16_runs_the_convolutions_in_bf16_on_cuda() -> None:
    from methods.core.backbones import build_backbone

    net = build_backbone("small_cnn", (3, 32, 32)).cuda().use_precision("bf16")
    seen: set[torch.dtype] = set()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
    out = net(torch.randn(4, 3, 32, 32, device="cuda"))
    assert seen == {torch.bfloat16} and out.dtype == torch.float32
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in net.parameters())
