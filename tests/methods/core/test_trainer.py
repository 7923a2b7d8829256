"""The shared training scaffolding: optimisers, schedules, selection, cross-domain
tests and the PCA of test features."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from methods import MetricsCollector, RunContext, get_method
from methods.core import TrainConfig, Trainer
from methods.data import Dataset
from tests.conftest import tiny_config_values


def _trainer(data: Dataset, **values: object) -> Trainer:
    config = TrainConfig(backbone="small_cnn", domain="target", **values)  # type: ignore[arg-type]
    return Trainer(config, data, RunContext(seed=0))


def _lrs(trainer: Trainer, epochs: int) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = trainer.optimizer([param])
    sched = trainer.scheduler(opt)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_step_lr_and_milestones(tiny_digits: Dataset) -> None:
    step = _lrs(_trainer(tiny_digits, lr=1.0, lr_step_size=7, lr_gamma=0.1), 15)
    assert step[:7] == [1.0] * 7 and step[7:14] == pytest.approx([0.1] * 7)
    assert step[14] == pytest.approx(0.01)
    milestones = _lrs(_trainer(tiny_digits, lr=1.0, lr_milestones=(4,)), 6)  # AAL §4.1
    assert milestones == pytest.approx([1.0] * 4 + [0.1] * 2)


def test_optimizer_choice(tiny_digits: Dataset) -> None:
    param = [torch.nn.Parameter(torch.zeros(1))]
    sgd = _trainer(tiny_digits, optimizer="sgd", momentum=0.5).optimizer(param)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.5
    assert isinstance(_trainer(tiny_digits).optimizer(param), torch.optim.Adam)


def test_other_domains_are_encoded_with_the_training_statistics(tiny_digits: Dataset) -> None:
    trainer = _trainer(tiny_digits)
    plain = trainer.view_of("plain")
    assert plain.encoder.mean is trainer.view.encoder.mean
    raw = torch.tensor(tiny_digits.domain("plain").inputs[:4]).permute(0, 3, 1, 2) / 255.0
    expected = (raw - trainer.view.encoder.mean) / trainer.view.encoder.std
    assert torch.allclose(plain.encoder(np.arange(4)), expected)


def _run(data: Dataset, method: str, **extra: object) -> tuple[dict, list]:
    spec = get_method(method)
    config = spec.make_config(tiny_config_values(method, epochs=3, **extra))
    history = MetricsCollector()
    return spec.train(config, data, RunContext(seed=0, report=history)), history.history


def test_last_epoch_or_best_validation(tiny_digits: Dataset) -> None:
    last, history = _run(tiny_digits, "stl", select="last", test_domains=["plain", "coloured"])
    assert last["epoch/digit"] == 3
    assert last["test@coloured/acc/digit"] == history[-1]["test@coloured/acc/digit"]
    best, history = _run(tiny_digits, "stl", select="best_val")
    assert best["val/acc/digit"] == max(h["val/acc/digit"] for h in history)


def test_principal_components(tiny_digits: Dataset) -> None:
    final, _ = _run(tiny_digits, "goal1", pca_components=5)
    for key in ("test", "test@plain"):
        ratios = [final[f"{key}/pca_ratio_{k}"] for k in range(1, 6)]
        assert all(a >= b for a, b in itertools.pairwise(ratios))  # PCs in order of variance
        assert 0 < sum(ratios) <= 1 + 1e-9
    assert "test/pca_ratio_6" not in final


def test_mtl_draws_the_irrelevant_task_from_its_own_domain(tiny_digits: Dataset) -> None:
    final, history = _run(tiny_digits, "mtl")
    assert {"train/loss/digit", "train/loss/bg"} <= set(history[0])
    # scored on the irrelevant set's own val split, and labelled so
    assert "val@irrelevant/acc/bg" in final and "val/acc/bg" not in final
    assert final["val/mean_acc"] == final["val/acc/digit"]  # the auxiliary task is not in it


def test_a_task_without_validation_labels_is_refused() -> None:
    from methods.core import task_specs
    from methods.core.errors import DataError
    from methods.data import Domain

    labels = np.array([[0], [1], [-1], [-1]], dtype=np.float32)
    split = np.array(["train", "train", "val", "val"])
    domain = Domain("d", np.zeros((4, 3), np.float32), labels, ("y",), split)
    with pytest.raises(DataError, match="'y' has no labelled val sample in domain 'd'"):
        task_specs(domain, ["y"])
    assert task_specs(domain, ["y"], need_val=False)[0].num_classes == 2
