"""The function every Ray Tune trial runs: one cell, one kernel call.

The dataset arrives as an object-store reference resolved once per trial (a
zero-copy read of the arrays the driver put there once per search), never
re-read or regenerated. Each epoch's metrics go to `ray.tune.report`; the last
report carries the kernel's final (selected) metrics with `FINAL_KEY` set, so
the driver can tell a finished run from a stopped one.

Fault injection, for tests of retries and failure records: the environment
variable AUXSEARCH_INJECT_FAULT="<cell-id glob>=raise|nan[;...]" makes matching
cells raise, or train on labels corrupted to +inf, so the loss becomes
non-finite and the kernel's own divergence check stops the run. Ray passes the
driver's environment to local workers.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

from methods import RunContext, get_method
from methods.data import Dataset, Domain

from .cells import FINAL_KEY, SEED_PREFIX, WALL_KEY

FAULT_ENV = "AUXSEARCH_INJECT_FAULT"


def run_cell(
    config: dict[str, Any], dataset: Dataset, device: str, threads: int, artifacts: str
) -> None:
    """Train one cell; with `seeds` > 1, each seed in turn, as one continuous trial.

    One Tune report per epoch, so training_iteration counts epochs across the
    seeds (what ASHA compares). The last epoch's report is held back and sent
    as the final one instead: the mean over seeds of every selected metric, each
    seed's own under `seed=<s>/<metric>`, and `FINAL_KEY`. A trial therefore
    reports exactly seeds × epochs times and a scheduler sees it finish.
    """
    cell = json.loads(config["cell"])
    fault = _injected_fault(cell["id"])
    if fault == "raise":
        raise RuntimeError(f"injected fault in cell {cell['id']}")
    if fault == "nan":
        dataset = _poisoned(dataset)
    spec = get_method(cell["method"])
    kernel_config = spec.make_config(cell["params"])
    last_epoch = int(getattr(kernel_config, "epochs", 0))
    seeds = [int(cell["seed"]) + k for k in range(int(cell.get("seeds", 1)))]
    start = time.perf_counter()
    finals: dict[int, dict[str, float]] = {}
    for seed in seeds:
        holds_last = seed == seeds[-1]

        def report(
            metrics: dict[str, float], epoch: int, seed: int = seed, holds_last: bool = holds_last
        ) -> None:
            if not (holds_last and epoch == last_epoch):
                tune.report({**metrics, "epoch": epoch, "seed": seed})

        trial_dir = Path(tune.get_context().get_trial_dir())
        ctx = RunContext(
            device=_device(device),
            seed=seed,
            report=report,
            checkpoint_dir=trial_dir,
            num_threads=threads,
            artifact=_parquet_writer(artifacts, cell["id"], seed),
        )
        finals[seed] = spec.train(kernel_config, dataset, ctx)
    tune.report(
        {
            **_merge_seeds(finals),
            "epoch": last_epoch,
            "seed": seeds[-1],
            FINAL_KEY: 1,
            WALL_KEY: time.perf_counter() - start,
        }
    )


def _parquet_writer(root: str, cell_id: str, seed: int) -> Any:
    """`ctx.artifact` in a trial: `artifacts/<cell id>/<name>.seed<S>.parquet` under the
    search's --out, written atomically (a trial's own directory is only a local
    staging area that Ray does not always copy to --out)."""
    from .artifacts import artifact_writer
    from .storage import OutputDir

    folder = re.sub(r"[^A-Za-z0-9._=+-]", "_", cell_id)
    return artifact_writer(OutputDir(root), lambda name: f"artifacts/{folder}/{name}.seed{seed}")


def _merge_seeds(finals: dict[int, dict[str, float]]) -> dict[str, float]:
    if len(finals) == 1:
        return next(iter(finals.values()))
    shared = set.intersection(*(set(m) for m in finals.values()))
    merged = {k: float(np.mean([m[k] for m in finals.values()])) for k in sorted(shared)}
    for seed, metrics in finals.items():
        merged.update({f"{SEED_PREFIX}{seed}/{k}": v for k, v in metrics.items()})
    return merged


def _device(requested: str) -> str:
    if requested == "cuda":
        import torch

        # Ray sets CUDA_VISIBLE_DEVICES to the trial's share; index 0 is ours.
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _injected_fault(cell_id: str) -> str | None:
    for rule in filter(None, os.environ.get(FAULT_ENV, "").split(";")):
        pattern, _, kind = rule.partition("=")
        if fnmatch.fnmatch(cell_id, pattern):
            return kind
    return None


def _poisoned(dataset: Dataset) -> Dataset:
    domains = {}
    for name, d in dataset.domains.items():
        labels = d.labels.copy()
        labels[d.split == "train"] = np.inf
        domains[name] = Domain(name, d.inputs, labels, d.label_names, d.split)
    return replace(dataset, domains=domains)
