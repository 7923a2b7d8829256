"""Shared infrastructure of the kernels: the method contract and registry,
configs, the run context, backbones, the training loop and its evaluation.

Kernels build on these; nothing here knows a particular method.
"""

from .backbones import BACKBONES, Backbone, build_backbone
from .config import config_keys, config_to_dict, meta, parse_config
from .context import ArtifactCollector, MetricsCollector, RunContext
from .contract import (
    Goal,
    HookNotSupported,
    MethodConfig,
    MethodContractError,
    Metric,
    PackPlan,
    PlotFn,
    RunTasks,
)
from .errors import ConfigError, DataError, DivergedError, UserInputError, ensure_finite
from .evaluation import EvalHead, eval_mode, kept_buffers
from .loop import gradient_pass
from .registry import MethodSpec, get_method, list_methods, register_method, unregister_method
from .roles import GridRoles
from .supervised import train_heads
from .tasks import TaskSpec, check_distinct, predictions, task_loss, task_specs
from .train_config import TrainConfig
from .trainer import Trainer, seed_everything
from .views import DomainView, InputEncoder, minibatches

__all__ = [
    "BACKBONES",
    "ArtifactCollector",
    "Backbone",
    "ConfigError",
    "DataError",
    "DivergedError",
    "DomainView",
    "EvalHead",
    "Goal",
    "GridRoles",
    "HookNotSupported",
    "InputEncoder",
    "MethodConfig",
    "MethodContractError",
    "MethodSpec",
    "Metric",
    "MetricsCollector",
    "PackPlan",
    "PlotFn",
    "RunContext",
    "RunTasks",
    "TaskSpec",
    "TrainConfig",
    "Trainer",
    "UserInputError",
    "build_backbone",
    "check_distinct",
    "config_keys",
    "config_to_dict",
    "ensure_finite",
    "eval_mode",
    "get_method",
    "gradient_pass",
    "kept_buffers",
    "list_methods",
    "meta",
    "minibatches",
    "parse_config",
    "predictions",
    "register_method",
    "seed_everything",
    "task_loss",
    "task_specs",
    "train_heads",
    "unregister_method",
]
