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
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

from methods import RunContext, get_method
from methods.data import Dataset, Domain

FINAL_KEY = "auxsearch_final"
WALL_KEY = "auxsearch_wall_s"
FAULT_ENV = "AUXSEARCH_INJECT_FAULT"


def run_cell(config: dict[str, Any], dataset: Dataset, device: str, threads: int) -> None:
    cell = json.loads(config["cell"])
    fault = _injected_fault(cell["id"])
    if fault == "raise":
        raise RuntimeError(f"injected fault in cell {cell['id']}")
    if fault == "nan":
        dataset = _poisoned(dataset)
    spec = get_method(cell["method"])
    kernel_config = spec.make_config(cell["params"])

    def report(metrics: dict[str, float], epoch: int) -> None:
        tune.report({**metrics, "epoch": epoch})

    ctx = RunContext(
        device=_device(device),
        seed=int(cell["seed"]),
        report=report,
        checkpoint_dir=Path(tune.get_context().get_trial_dir()),
        num_threads=threads,
    )
    start = time.perf_counter()
    final = spec.train(kernel_config, dataset, ctx)
    tune.report({**final, FINAL_KEY: 1, WALL_KEY: time.perf_counter() - start})


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
