"""auxsearch training kernels: plain PyTorch, no Ray, Optuna or Arrow.

Shared infrastructure lives in `methods.core` (the method contract, registry,
configs, backbones, the training loop); each paper's kernel sits with its own
baselines in one subpackage. Every method is a typed config (the paper's
defaults) and `train(config, data, ctx) -> dict[str, float]`, registered by name:

    from methods import get_method, RunContext
    spec = get_method("aal")
    config = spec.make_config({"main": ["red"], "adversaries": ["large"], "lam": 0.3})
    metrics = spec.train(config, dataset, RunContext(seed=0))

A new method is one module (a `MethodConfig` subclass and a registered
`train`), one import line below, and one `search_spaces/<name>.yaml`; the
shared suite in `methods.testing` then tests it with no other edit.
"""

from __future__ import annotations

from . import aal, mtl_sa, noisy_fer, purified, soseleto  # noqa: F401  (registers the kernels)
from .core import (
    ArtifactCollector,
    ConfigError,
    DataError,
    DivergedError,
    MethodConfig,
    MethodSpec,
    Metric,
    MetricsCollector,
    RunContext,
    RunTasks,
    UserInputError,
    get_method,
    list_methods,
    register_method,
)

__all__ = [
    "ArtifactCollector",
    "ConfigError",
    "DataError",
    "DivergedError",
    "MethodConfig",
    "MethodSpec",
    "Metric",
    "MetricsCollector",
    "RunContext",
    "RunTasks",
    "UserInputError",
    "get_method",
    "list_methods",
    "register_method",
]
