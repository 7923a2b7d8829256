"""Every registered method on a CUDA device (skipped where there is none)."""

from __future__ import annotations

import math

import pytest
import torch

from methods import MetricsCollector, RunContext, get_method, list_methods
from methods.data import Dataset
from tests.conftest import TINY_TRAIN

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("name", list_methods())
@pytest.mark.parametrize("backbone", ["small_cnn", "resnet18"])
def test_trains_on_cuda(name: str, backbone: str, tiny_shapes: Dataset) -> None:
    spec = get_method(name)
    tasks = spec.config_cls.example(tiny_shapes.domain().binary_attributes())
    config = spec.make_config({**TINY_TRAIN, "backbone": backbone, **tasks})
    final = spec.train(config, tiny_shapes, RunContext(device="cuda", report=MetricsCollector()))
    assert final and all(math.isfinite(v) for v in final.values())
