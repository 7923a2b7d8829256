"""The run context a kernel receives: where to run, which seed, where to report.

Inside a Ray Tune trial `report` forwards to `ray.tune.report`; outside (tests,
`auxsearch run`, the benchmark floor) a `MetricsCollector` keeps the history.
Kernels never import Ray: they only call `ctx.report(metrics, epoch)` (and
`ctx.artifact(name, columns)` for tables worth keeping beyond the metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ReportFn = Callable[[dict[str, float], int], None]
# A named table of equal-length columns a kernel wants kept (e.g. per-sample weights).
ArtifactFn = Callable[[str, dict[str, np.ndarray]], None]


@dataclass
class MetricsCollector:
    """A report callback that keeps every epoch's metrics in memory."""

    history: list[dict[str, float]] = field(default_factory=list)

    def __call__(self, metrics: dict[str, float], epoch: int) -> None:
        self.history.append({**metrics, "epoch": float(epoch)})


@dataclass
class ArtifactCollector:
    """An artifact callback that keeps the tables in memory (the last one per name)."""

    tables: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def __call__(self, name: str, columns: dict[str, np.ndarray]) -> None:
        self.tables[name] = columns


@dataclass
class RunContext:
    """Device, seed, per-epoch report callback and file directory of one run.

    Attributes:
        device: a torch device string ("cpu", "cuda", "cuda:1"); never hard-coded in kernels.
        seed: seeds torch and numpy before the model is built; same seed, same result on CPU.
        report: called once per epoch with that epoch's metrics.
        files_dir: where a kernel may write files of its own beside the metrics and
            artifacts (SOSELETO keeps α and the model there after every epoch, for
            inspection); a trial's directory inside a search, None outside. Nothing
            resumes from it: a trial that fails starts again from scratch.
        num_threads: torch intra-op threads for CPU runs (0 leaves torch's default).
        artifact: keeps a named table of columns (inside a Ray trial: a Parquet file
            under --out/artifacts/<cell>/).
    """

    device: str = "cpu"
    seed: int = 0
    report: ReportFn = field(default_factory=MetricsCollector)
    files_dir: Path | None = None
    num_threads: int = 0
    artifact: ArtifactFn = field(default_factory=ArtifactCollector)
