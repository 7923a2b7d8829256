"""The run context a kernel receives: where to run, which seed, where to report.

Inside a Ray Tune trial `report` forwards to `ray.tune.report`; outside (tests,
`auxsearch run`, the benchmark floor) a `MetricsCollector` keeps the history.
Kernels never import Ray: they only call `ctx.report(metrics, epoch)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ReportFn = Callable[[dict[str, float], int], None]


@dataclass
class MetricsCollector:
    """A report callback that keeps every epoch's metrics in memory."""

    history: list[dict[str, float]] = field(default_factory=list)

    def __call__(self, metrics: dict[str, float], epoch: int) -> None:
        self.history.append({**metrics, "epoch": float(epoch)})


@dataclass
class RunContext:
    """Device, seed, per-epoch report callback and checkpoint directory of one run.

    Attributes:
        device: a torch device string ("cpu", "cuda", "cuda:1"); never hard-coded in kernels.
        seed: seeds torch and numpy before the model is built; same seed, same result on CPU.
        report: called once per epoch with that epoch's metrics.
        checkpoint_dir: where a kernel may keep state it needs to resume; None for none.
        num_threads: torch intra-op threads for CPU runs (0 leaves torch's default).
    """

    device: str = "cpu"
    seed: int = 0
    report: ReportFn = field(default_factory=MetricsCollector)
    checkpoint_dir: Path | None = None
    num_threads: int = 0
