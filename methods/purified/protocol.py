"""The Purified Learning paper's training protocol, shared by PL and its baselines.

"Learning Purified Feature Representations from Task-irrelevant Labels",
Experimental Setup: SGD, learning rate 0.001, momentum 0.9, StepLR (step 7,
γ 0.1), no augmentation, the feature extractor's penultimate layer set to 128
dimensions, batch 32 for FER and 128 for digits, results after 50 epochs. The
paper gives no weight decay; 0 here. Alg. 1 sums Goal 1's cross-entropy over
the batch, and so does every method under this protocol (`loss_reduction`),
so Goal 1 and the baselines' supervised terms weigh what the paper's do.
`PLProtocol` carries these defaults for
every method of the family (goal1, tl, amtl, dann, purified, tl_purified), so
their comparison is like for like; `auxsearch grid` applies the same settings
to every method it runs (search_spaces/protocols/grid.yaml; a test keeps the
two equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..core import MethodConfig, RunTasks, task_specs
from ..core.config import meta
from ..core.errors import ConfigError
from ..core.examples import grid_example
from ..core.roles import GridRoles
from ..data import Dataset, Domain

if TYPE_CHECKING:
    from typing import Self


@dataclass(frozen=True)
class PLProtocol(MethodConfig):
    """Training settings of the Purified Learning paper (digit recognition)."""

    feature_dim: int = field(default=128, metadata=meta("width of f_e's output (PL: 128)", min=0))
    epochs: int = field(default=50, metadata=meta("training epochs (PL: 50)", min=1))
    batch_size: int = field(
        default=128, metadata=meta("minibatch size m (PL: 128 digits, 32 FER)", min=2)
    )
    optimizer: Literal["adam", "sgd"] = field(
        default="sgd", metadata=meta("optimiser of f_e and f_c (PL: SGD)")
    )
    lr: float = field(
        default=1e-3, metadata=meta("learning rate α_2 (PL: 0.001)", min=0.0, min_exclusive=True)
    )
    momentum: float = field(default=0.9, metadata=meta("SGD momentum (PL: 0.9)", min=0.0, max=1.0))
    weight_decay: float = field(default=0.0, metadata=meta("weight decay (PL: none)", min=0.0))
    lr_step_size: int = field(default=7, metadata=meta("StepLR step size (PL: 7)", min=0))
    lr_gamma: float = field(default=0.1, metadata=meta("StepLR γ (PL: 0.1)", min=0.0, max=1.0))
    loss_reduction: Literal["mean", "sum"] = field(
        default="sum",
        metadata=meta("cross-entropy over a batch: the sum, as Alg. 1 writes Goal 1 (or mean)"),
    )
    select: Literal["best_val", "last"] = field(
        default="last", metadata=meta("PL reports the last epoch")
    )

    @classmethod
    def tiny_example(cls) -> tuple[Self, Dataset]:
        """The method on the tiny digit domains, through its `for_grid` hook."""
        return grid_example(cls)


def require(config: Any, *keys: str) -> None:
    """Each of `keys` must be set (the roles a method of the family cannot run without)."""
    for key in keys:
        if not getattr(config, key):
            raise ConfigError(f"method needs {key}=<...> ({', '.join(keys)} must all be set)")


@dataclass(frozen=True)
class IrrelevantSetConfig(PLProtocol):
    """A target task plus a task-irrelevant set and its label (tl, purified)."""

    task: str = field(default="", metadata=meta("the target label (S_tgt)"))
    irrelevant_domain: str = field(default="", metadata=meta("the task-irrelevant set S_src"))
    irrelevant_label: str = field(
        default="", metadata=meta("its task-irrelevant label (PL: hair/background colour)")
    )

    def check(self) -> None:
        require(self, "task", "irrelevant_domain", "irrelevant_label")

    def check_data(self, data: Dataset) -> None:
        self.irrelevant_set(data)

    def irrelevant_set(self, data: Dataset) -> Domain:
        """Check the target task and the irrelevant label; return the irrelevant domain."""
        task_specs(self.check_training(data), [self.task], need_val=self.needs_val)
        irrelevant = data.domain(self.irrelevant_domain)
        task_specs(irrelevant, [self.irrelevant_label], need_val=False)
        return irrelevant

    def run_tasks(self) -> RunTasks:
        return RunTasks((self.task,), (self.irrelevant_label,))

    @staticmethod
    def for_grid(roles: GridRoles, train: str, tests: Sequence[str]) -> dict[str, Any]:
        return {
            "domain": train,
            "test_domains": list(tests),
            "task": roles.task,
            "irrelevant_domain": roles.irrelevant_domain,
            "irrelevant_label": roles.irrelevant_label,
        }
