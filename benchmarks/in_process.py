"""A search's cells trained one after another in this process, torch on every
core, no Ray: the baseline the benchmarks measure against (pairs_overhead.py's
floor, precision.py's two matrices). Imported by the benchmarks beside it."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from methods import MetricsCollector, RunContext, get_method
from methods.data import Dataset
from orchestrator.cells import Cell


def train_cells(
    cells: Sequence[Cell], dataset: Dataset, **settings: Any
) -> tuple[list[dict[str, float]], float]:
    """Each cell's final metrics, trained with `settings` over its own (e.g.
    memory_format, precision), and the wall time of them all."""
    finals = []
    start = time.perf_counter()
    for c in cells:
        spec = get_method(c.method)
        ctx = RunContext(seed=c.seed, report=MetricsCollector(), num_threads=os.cpu_count() or 1)
        finals.append(spec.train(spec.make_config({**c.params, **settings}), dataset, ctx))
    return finals, time.perf_counter() - start
