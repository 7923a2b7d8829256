"""The function every Ray Tune trial runs: one cell, one kernel call — or a pack
of cells trained as one fused network (`methods.core.packed`).

The dataset arrives as an object-store reference resolved once per trial (a
zero-copy read of the arrays the driver put there once per search), never
re-read or regenerated. Each epoch's metrics go to `ray.tune.report`; the last
report carries the kernel's final (selected) metrics with `FINAL_KEY` set, so
the driver can tell a finished run from a stopped one.

`AUXSEARCH_TRIAL_HOOK=module:function` names a function every trial calls
before training, `hook(cell_id, dataset) -> dataset`: it may replace the data
or raise (the fault-injection tests make chosen cells crash or diverge this
way). Ray passes the driver's environment to local workers. In a pack the hook
sees every cell; a cell whose data it replaces trains alone in the same trial.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

from methods import RunContext, get_method
from methods.core import DivergedError
from methods.core.packed import train_pack_within_memory
from methods.data import Dataset

from .cells import FINAL_KEY, PACK_KEY, SEED_PREFIX, WALL_KEY

HOOK_ENV = "AUXSEARCH_TRIAL_HOOK"
TrialHook = Callable[[str, Dataset], Dataset]


def run_trial(
    config: dict[str, Any], dataset: Dataset, device: str, threads: int, artifacts: str
) -> None:
    """A trial's cell, or its pack of cells (`config["cell"]` holds a JSON list)."""
    unit = json.loads(config["cell"])
    if isinstance(unit, list):
        run_pack(unit, dataset, device, threads)
    else:
        run_cell(config, dataset, device, threads, artifacts)


def run_pack(cells: list[dict[str, Any]], dataset: Dataset, device: str, threads: int) -> None:
    """Train a pack of cells (same method family, settings and seed) as one fused
    network. One report per epoch (the epoch alone: a pack is never pruned), then
    the final one: each cell's final metrics, or the error that ended it, under
    `PACK_KEY`, and `FINAL_KEY`. A cell that diverges fails alone; its pack-mates
    finish."""
    start = time.perf_counter()
    hook = _trial_hook(os.environ.get(HOOK_ENV, ""))
    together: list[tuple[dict[str, Any], Dataset]] = []
    alone: list[tuple[dict[str, Any], Dataset]] = []
    for cell in cells:
        data = hook(cell["id"], dataset) if hook is not None else dataset
        (together if data is dataset else alone).append((cell, data))
    outcome: dict[str, dict[str, Any]] = {}
    epochs_reported = [0]

    def report(metrics: dict[str, float], epoch: int) -> None:
        # one Tune report per epoch of the pack, whichever of its cells gets there
        if epoch > epochs_reported[0]:
            epochs_reported[0] = epoch
            tune.report({"epoch": epoch})

    def context(cell: dict[str, Any]) -> RunContext:
        return RunContext(
            device=_device(device), seed=int(cell["seed"]), report=report, num_threads=threads
        )

    if together:
        configs = [get_method(c["method"]).make_config(c["params"]) for c, _ in together]
        ctxs = [context(c) for c, _ in together]
        results = train_pack_within_memory(configs, dataset, ctxs)
        for (cell, _), packed in zip(together, results, strict=True):
            outcome[cell["id"]] = _pack_entry(packed)
    for cell, data in alone:
        spec = get_method(cell["method"])
        try:
            result: dict[str, float] | DivergedError = spec.train(
                spec.make_config(cell["params"]), data, context(cell)
            )
        except DivergedError as exc:
            result = exc
        outcome[cell["id"]] = _pack_entry(result)
    tune.report(
        {
            PACK_KEY: json.dumps(outcome),
            "epoch": epochs_reported[0],
            FINAL_KEY: 1,
            WALL_KEY: time.perf_counter() - start,
        }
    )


def _pack_entry(result: dict[str, float] | DivergedError) -> dict[str, Any]:
    if isinstance(result, DivergedError):
        return {"error": f"DivergedError: {result}"}
    return {"metrics": result}


def run_cell(
    config: dict[str, Any], dataset: Dataset, device: str, threads: int, artifacts: str
) -> None:
    """Train one cell; with `seeds` > 1, each seed in turn, as one continuous trial.

    One Tune report per epoch, so training_iteration counts epochs across the
    seeds (what ASHA compares). The last seed's last report — the
    `reported_epochs()` the method declares — is held back and the final one
    sent in its place: the kernel's returned metrics (the mean over seeds of
    each, each seed's own under `seed=<s>/<metric>`) and `FINAL_KEY`. A trial
    therefore reports as often as its kernel does, and a scheduler that stops
    trials at their last epoch still sees this one finish.
    """
    cell = json.loads(config["cell"])
    hook = _trial_hook(os.environ.get(HOOK_ENV, ""))
    if hook is not None:
        dataset = hook(cell["id"], dataset)
    spec = get_method(cell["method"])
    kernel_config = spec.make_config(cell["params"])
    declared = kernel_config.reported_epochs()
    seeds = [int(cell["seed"]) + k for k in range(int(cell.get("seeds", 1)))]
    start = time.perf_counter()
    finals: dict[int, dict[str, float]] = {}
    held: list[dict[str, Any]] = []  # the report the final one replaces
    last_epoch = 0
    for seed in seeds:
        count = 0

        def report(metrics: dict[str, float], epoch: int, seed: int = seed) -> None:
            nonlocal count, last_epoch
            count += 1
            last_epoch = epoch
            row = {**metrics, "epoch": epoch, "seed": seed}
            if held:  # the kernel reported more often than it declared: send what was held
                tune.report(held.pop())
            if seed == seeds[-1] and count == declared:
                held.append(row)
            else:
                tune.report(row)

        ctx = RunContext(
            device=_device(device),
            seed=seed,
            report=report,
            files_dir=Path(tune.get_context().get_trial_dir()),
            num_threads=threads,
            artifact=_parquet_writer(artifacts, cell["id"], seed, spec.config_cls.plots),
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


@functools.cache
def _trial_hook(name: str) -> TrialHook | None:
    """The function `AUXSEARCH_TRIAL_HOOK` names (`package.module:function`), imported once."""
    if not name:
        return None
    module, _, function = name.partition(":")
    hook: TrialHook = getattr(importlib.import_module(module), function)
    return hook


def _parquet_writer(root: str, cell_id: str, seed: int, plots: Any) -> Any:
    """`ctx.artifact` in a trial: `artifacts/<cell id>/<name>.seed<S>.parquet` under the
    search's --out, written atomically (a trial's own directory is only a local
    staging area that Ray does not always copy to --out)."""
    from .artifacts import artifact_writer
    from .storage import OutputDir

    folder = re.sub(r"[^A-Za-z0-9._=+-]", "_", cell_id)
    stem = f"artifacts/{folder}/{{}}.seed{seed}"
    return artifact_writer(OutputDir(root), stem.format, plots)


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
