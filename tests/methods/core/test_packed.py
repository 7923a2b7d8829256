"""A pack trains each run exactly as the run trains alone (float64, to 1e-6)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from methods import get_method
from methods.core import DivergedError, MetricsCollector, RunContext
from methods.core import packed as packed_module
from methods.core import trainer as trainer_module
from methods.core.packed import pack_key, train_pack
from methods.data import Dataset, load_dataset

Runs = list[tuple[str, dict[str, Any]]]
RUNS: Runs = [
    ("stl", {"task": "red"}),
    ("stl", {"task": "large"}),
    ("mtl", {"tasks": ["red", "large"]}),
    # the adversarial runs of a λ sweep: gradient reversal of each one's own λ
    ("aal", {"main": ["red"], "adversaries": ["large"], "lam": 0.1}),
    ("aal", {"main": ["red"], "adversaries": ["large", "left"], "lam": 1.0}),
]


@pytest.fixture
def float64() -> Iterator[None]:
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def _data(size: int) -> Dataset:
    return load_dataset("shapes", {"n": 96, "image_size": size, "seed": 3, "correlation": 0.5})


def _configs(backbone: str, runs: Runs, **settings: Any) -> list[Any]:
    base = {"backbone": backbone, "epochs": 2, "batch_size": 16, "lr": 3e-3, "lr_milestones": [1]}
    return [get_method(m).make_config({**base, **settings, **v}) for m, v in runs]


def _apart(
    runs: Runs, configs: list[Any], data: Dataset
) -> list[tuple[Any, list[dict[str, float]]]]:
    out = []
    for (method, _), config in zip(runs, configs, strict=True):
        history = MetricsCollector()
        try:
            result: Any = get_method(method).train(
                config, data, RunContext(seed=5, report=history, num_threads=1)
            )
        except DivergedError as exc:
            result = exc
        out.append((result, history.history))
    return out


def _packed(configs: list[Any], data: Dataset) -> list[tuple[Any, list[dict[str, float]]]]:
    histories = [MetricsCollector() for _ in configs]
    ctxs = [RunContext(seed=5, report=h, num_threads=1) for h in histories]
    results = train_pack(configs, data, ctxs)
    return [(r, h.history) for r, h in zip(results, histories, strict=True)]


def _assert_same(a: dict[str, float], b: dict[str, float]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert b[key] == pytest.approx(a[key], abs=1e-6), key


@pytest.mark.parametrize(
    ("backbone", "runs", "settings"),
    [
        ("small_cnn", RUNS, {}),
        ("small_cnn", RUNS, {"optimizer": "sgd", "feature_dim": 8, "loss_reduction": "sum"}),
        # batch norm in every block, inputs upsampled to 32; one run of each kind
        ("resnet18", [RUNS[1], RUNS[2], RUNS[4]], {"epochs": 1}),
    ],
)
def test_a_pack_gives_every_run_its_own_metrics_each_epoch(
    float64: None, backbone: str, runs: Runs, settings: dict[str, Any]
) -> None:
    data = _data(16)
    configs = _configs(backbone, runs, **settings)
    apart, packed = _apart(runs, configs, data), _packed(configs, data)
    for (alone, alone_epochs), (in_pack, pack_epochs) in zip(apart, packed, strict=True):
        _assert_same(alone, in_pack)
        assert len(alone_epochs) == len(pack_epochs) == configs[0].epochs
        for e1, e2 in zip(alone_epochs, pack_epochs, strict=True):
            _assert_same(e1, e2)
    # the runs differ from each other: equality above is not one run copied
    losses = [r["train/loss"] for r, _ in packed]
    assert len({round(v, 6) for v in losses}) == len(losses)
    assert "val/adv_acc/left" in packed[-1][0] and "train/adv_loss" in packed[-1][0]


def test_a_run_that_diverges_fails_alone_and_its_pack_mates_finish(
    float64: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second run's F starts with an infinite weight: alone it fails with
    DivergedError; in the pack it fails with the same error and the others
    finish with their own numbers."""
    real = trainer_module.build_backbone
    poison: list[bool] = []

    def build(*args: Any, **kwargs: Any) -> Any:
        backbone = real(*args, **kwargs)
        if poison.pop(0):
            with torch.no_grad():
                next(backbone.parameters()).view(-1)[0] = float("inf")
        return backbone

    monkeypatch.setattr(trainer_module, "build_backbone", build)
    monkeypatch.setattr(packed_module, "build_backbone", build)
    data, configs = _data(16), _configs("small_cnn", RUNS)
    poison[:] = [False, True, False, False, False]
    apart = _apart(RUNS, configs, data)
    poison[:] = [False, True, False, False, False]
    packed = _packed(configs, data)
    assert isinstance(apart[1][0], DivergedError)
    assert isinstance(packed[1][0], DivergedError)
    assert str(packed[1][0]) == str(apart[1][0])
    assert packed[1][1] == apart[1][1] == []  # not one epoch reported
    for k in (0, 2, 3, 4):
        _assert_same(apart[k][0], packed[k][0])


def test_runs_share_a_pack_only_with_the_same_settings_and_seed() -> None:
    stl, mtl, aal = get_method("stl"), get_method("mtl"), get_method("aal")
    base = {"backbone": "small_cnn", "lr": 1e-3}
    red = stl.make_config({**base, "task": "red"})
    pair = mtl.make_config({**base, "tasks": ["red", "large"]})
    assert pack_key(red, 0) is not None
    assert pack_key(red, 0) == pack_key(pair, 0)
    assert pack_key(red, 0) != pack_key(red, 1)
    assert pack_key(red, 0) != pack_key(stl.make_config({**base, "task": "red", "lr": 2e-3}), 0)
    assert pack_key(stl.make_config({"backbone": "mlp", "task": "red"}), 0) is None
    assert pack_key(stl.make_config({**base, "task": "red", "pca_components": 2}), 0) is None
    adversarial = {**base, **aal.config_cls.for_tasks(["red"], ["large"])}
    assert pack_key(aal.make_config({**adversarial, "lam": 0.5}), 0) == pack_key(red, 0)
    # the alternating ablations and the shuffled-label control have their own update
    gan = aal.make_config({**adversarial, "adversary_loss": "gan"})
    assert pack_key(gan, 0) is None
    assert pack_key(aal.make_config({**adversarial, "permute_adversaries": True}), 0) is None
    with pytest.raises(Exception, match="cannot train as one pack"):
        train_pack([red, gan], _data(16), [RunContext(seed=0), RunContext(seed=0)])


def test_a_pack_that_runs_out_of_memory_trains_in_halves_with_the_same_numbers(
    float64: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device that holds at most two runs at once: the pack of five is split
    (2 + 3, then 1 + 2) and every run ends with the numbers it gets apart."""
    real = packed_module.train_pack
    attempts: list[int] = []

    def small_device(configs: Any, data: Any, ctxs: Any) -> Any:
        attempts.append(len(configs))
        if len(configs) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(configs, data, ctxs)

    monkeypatch.setattr(packed_module, "train_pack", small_device)
    data, configs = _data(16), _configs("small_cnn", RUNS)
    ctxs = [RunContext(seed=5, num_threads=1) for _ in configs]
    results = packed_module.train_pack_within_memory(configs, data, ctxs)
    assert attempts == [5, 2, 3, 1, 2]
    for (alone, _), together in zip(_apart(RUNS, configs, data), results, strict=True):
        _assert_same(alone, together)

    def no_room(configs: Any, data: Any, ctxs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(packed_module, "train_pack", no_room)
    with pytest.raises(torch.OutOfMemoryError):  # one run alone that does not fit: its error
        packed_module.train_pack_within_memory(configs[:1], data, ctxs[:1])


def test_a_pack_trains_in_the_precision_its_runs_ask_for() -> None:
    """precision=bf16 reaches the fused F: the pack's numbers move off fp32's, and
    each run stays within bf16's rounding of the same run trained alone in bf16."""
    data = _data(16)
    runs = RUNS[:3]
    fp32 = _packed(_configs("small_cnn", runs), data)
    bf16_configs = _configs("small_cnn", runs, precision="bf16")
    bf16 = _packed(bf16_configs, data)
    alone = _apart(runs, bf16_configs, data)
    for (p32, _), (p16, _), (a16, _) in zip(fp32, bf16, alone, strict=True):
        assert p16 != p32
        losses = [k for k in p16 if "/loss" in k]
        for k in losses:
            assert p16[k] == pytest.approx(a16[k], rel=0.1, abs=0.02), k
