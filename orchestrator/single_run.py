"""`auxsearch run`: one training of any registered method, in this process.

    from orchestrator.single_run import run_one
    result = run_one("stl", dataset, {"task": "even", "backbone": "small_cnn"}, out="runs/one")

With `out`, the run is written there: `history.parquet` (metrics per epoch),
`final.json` and the method's artifacts (`<name>.parquet`, and `<name>.png`
where the method declares a plot). A directory that already holds a run is
refused, so that run is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from methods import MetricsCollector, RunContext, get_method
from methods.data import Dataset

from .artifacts import artifact_writer
from .errors import OutputError, UserInputError
from .storage import OutputDir
from .tables import columns_table, write_parquet

HISTORY_FILE = "history.parquet"
FINAL_FILE = "final.json"
EpochEcho = Callable[[dict[str, float], int], None]


@dataclass
class RunResult:
    """The selected metrics of a run, its per-epoch history, and where it was written."""

    final: dict[str, float]
    history: list[dict[str, float]]
    out: OutputDir | None = None


def check_device(device: str) -> None:
    """`cpu`, or a CUDA device this machine has."""
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise UserInputError(
            f"--device {device} is not a torch device; use cpu or cuda[:N]"
        ) from None
    if parsed.type == "cpu":
        return
    if parsed.type != "cuda":
        raise UserInputError(f"--device {device}: only cpu and cuda[:N] are supported")
    count = torch.cuda.device_count()
    if count == 0 or (parsed.index is not None and parsed.index >= count):
        raise UserInputError(
            f"--device {device}: this machine has {count} CUDA GPU(s); use --device cpu"
            + (f" or cuda:0..cuda:{count - 1}" if count else "")
        )


def run_output(location: str) -> OutputDir:
    """The --out of a run: writable, and not holding an earlier run."""
    out = OutputDir(location)
    for name in (HISTORY_FILE, FINAL_FILE):
        if out.exists(name):
            raise OutputError(
                f"--out {location} already holds a run ({name}); choose a new directory"
                " so that run is kept"
            )
    out.ensure_writable()
    return out


def run_one(
    method: str,
    dataset: Dataset,
    overrides: Mapping[str, Any],
    *,
    seed: int = 0,
    device: str = "cpu",
    threads: int = 0,
    out: str | None = None,
    on_epoch: EpochEcho | None = None,
) -> RunResult:
    """Validate everything (config, data, device, --out), then train once."""
    check_device(device)
    spec = get_method(method)
    config = spec.make_config(overrides)
    config.check_data(dataset)
    where = run_output(out) if out else None
    history = MetricsCollector()

    def report(metrics: dict[str, float], epoch: int) -> None:
        history(metrics, epoch)
        if on_epoch is not None:
            on_epoch(metrics, epoch)

    ctx = RunContext(device=device, seed=seed, report=report, num_threads=threads)
    if where is not None:
        ctx.artifact = artifact_writer(where, lambda name: name, spec.config_cls.plots)
    final = spec.train(config, dataset, ctx)
    if where is not None:
        keys = sorted({k for row in history.history for k in row})
        columns = {k: np.array([row.get(k, np.nan) for row in history.history]) for k in keys}
        # the epoch is a count in every file auxsearch writes (results.parquet: int64)
        columns["epoch"] = np.array([int(row["epoch"]) for row in history.history], dtype=np.int64)
        write_parquet(where, HISTORY_FILE, columns_table(columns))
        text = json.dumps(final, indent=2, sort_keys=True) + "\n"
        where.write_bytes(FINAL_FILE, text.encode())
    return RunResult(final, history.history, where)
