"""`precision`: bf16 autocast of F. The convolutions and matmuls run in bfloat16,
the weights, heads, losses and optimiser stay fp32, a seed still fixes every
number, and fp32 (the default) leaves F exactly as it was."""

from __future__ import annotations

import math

import pytest
import torch

from methods import MetricsCollector, RunContext, get_method, list_methods
from methods.core.backbones import build_backbone, check_precision
from methods.core.errors import ConfigError
from methods.core.fused import fuse_backbones
from tests.conftest import tiny_config_values


def _conv_output_dtypes(net: torch.nn.Module, x: torch.Tensor) -> set[torch.dtype]:
    seen: set[torch.dtype] = set()
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
        for m in net.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    net(x)
    for h in hooks:
        h.remove()
    return seen


def _pair(precision: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    plain = build_backbone("small_cnn", (3, 32, 32))
    other = build_backbone("small_cnn", (3, 32, 32))
    other.load_state_dict(plain.state_dict())
    return plain.eval(), other.use_precision(precision).eval()


def test_bf16_runs_the_convolutions_in_bf16_and_hands_back_fp32_features() -> None:
    plain, fast = _pair("bf16")
    x = torch.randn(8, 3, 32, 32)
    assert _conv_output_dtypes(fast, x) == {torch.bfloat16}
    assert _conv_output_dtypes(plain, x) == {torch.float32}
    a, b = plain(x), fast(x)
    assert b.dtype == torch.float32
    # bf16 keeps 8 bits of mantissa: the features differ beyond fp32 rounding,
    # but only by a few percent
    assert (a - b).abs().max() > 1e-4
    torch.testing.assert_close(b, a, rtol=0.05, atol=0.05)


def test_bf16_keeps_weights_and_their_gradients_fp32() -> None:
    _, fast = _pair("bf16")
    fast.train()
    fast(torch.randn(8, 3, 32, 32)).square().mean().backward()
    for p in fast.parameters():
        assert p.dtype == torch.float32
        assert p.grad is not None and p.grad.dtype == torch.float32


def test_fp32_leaves_a_callers_own_autocast_in_force() -> None:
    plain, _ = _pair("fp32")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _conv_output_dtypes(plain, torch.randn(2, 3, 32, 32)) == {torch.bfloat16}


def test_fp32_keeps_a_float64_model_in_float64() -> None:
    net = build_backbone("mlp", (6,)).double().use_precision("fp32")
    assert net(torch.randn(4, 6, dtype=torch.float64)).dtype == torch.float64


def test_a_fused_pack_runs_in_bf16_too() -> None:
    torch.manual_seed(0)
    members = [build_backbone("small_cnn", (3, 32, 32)) for _ in range(2)]
    fused = fuse_backbones(members).use_precision("bf16").eval()
    x = torch.randn(4, 3, 32, 32)
    assert _conv_output_dtypes(fused, x) == {torch.bfloat16}
    out = fused(x)
    assert out.dtype == torch.float32 and out.shape == (4, 2, members[0].out_dim)


def test_an_unknown_precision_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match="fp16.*fp32.*bf16"):
        get_method("stl").make_config({"task": "red", "precision": "fp16"})
    with pytest.raises(ConfigError, match="fp16.*fp32, bf16"):
        build_backbone("small_cnn", (3, 32, 32)).use_precision("fp16")


def _train(data, precision: str, seed: int = 0) -> dict[str, float]:
    spec = get_method("mtl")
    config = spec.make_config(
        {
            "tasks": ["red", "large"],
            "backbone": "small_cnn",
            "epochs": 2,
            "batch_size": 32,
            "precision": precision,
        }
    )
    return spec.train(config, data, RunContext(seed=seed, report=MetricsCollector()))


def test_a_bf16_training_is_fixed_by_its_seed_and_close_to_fp32(tiny_shapes) -> None:
    first, again = _train(tiny_shapes, "bf16"), _train(tiny_shapes, "bf16")
    assert first == again  # deterministic per seed, every number
    fp32 = _train(tiny_shapes, "fp32")
    assert first.keys() == fp32.keys()
    losses = [k for k in fp32 if "/loss" in k]
    assert any(first[k] != fp32[k] for k in losses)  # bf16 did run
    for k in losses:
        assert first[k] == pytest.approx(fp32[k], rel=0.1, abs=0.02), k


@pytest.mark.parametrize("name", list_methods())
def test_every_method_trains_its_f_in_bf16(name: str, tiny_digits) -> None:
    """precision reaches every kernel's F (all build it through Trainer.new_backbone
    or a pack): the numbers move off fp32's and stay finite."""
    spec = get_method(name)
    finals = {}
    for precision in ("fp32", "bf16"):
        values = {**tiny_config_values(name, backbone="small_cnn"), "precision": precision}
        ctx = RunContext(seed=0, report=MetricsCollector())
        finals[precision] = spec.train(spec.make_config(values), tiny_digits, ctx)
    assert all(math.isfinite(v) for v in finals["bf16"].values())
    assert finals["bf16"] != finals["fp32"]


def test_bf16_on_a_gpu_without_bfloat16_is_refused_in_one_sentence(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ConfigError, match=r"precision=bf16 needs a GPU with bfloat16.*fp32$"):
        check_precision("bf16", "cuda")
    check_precision("fp32", "cuda")  # fp32 runs anywhere
    check_precision("bf16", "cpu")  # a CPU always can (slowly without bf16 instructions)
