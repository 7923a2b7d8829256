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
