"""auxsearch training kernels: plain PyTorch, no Ray, Optuna or Arrow.

Each method is one module with a typed config (the paper's defaults) and
`train(config, data, ctx) -> dict[str, float]`, registered by name:

    from methods import get_method, RunContext
    spec = get_method("aal")
    config = spec.make_config({"main": ["red"], "adversaries": ["large"], "lam": 0.3})
    metrics = spec.train(config, dataset, RunContext(seed=0))
"""

from __future__ import annotations

from . import (  # noqa: F401  (importing registers the kernels)
    aal,
    amtl,
    dann,
    goal1,
    jdm,
    mtl,
    mtl_sa,
    noisy_baselines,
    purified,
    soseleto,
    stl,
    tl,
    tl_purified,
)
from .context import ArtifactCollector, MetricsCollector, RunContext
from .errors import ConfigError, DataError, DivergedError, UserInputError
from .registry import MethodSpec, get_method, list_methods, register_method

__all__ = [
    "ArtifactCollector",
    "ConfigError",
    "DataError",
    "DivergedError",
    "MethodSpec",
    "MetricsCollector",
    "RunContext",
    "UserInputError",
    "get_method",
    "list_methods",
    "register_method",
]
