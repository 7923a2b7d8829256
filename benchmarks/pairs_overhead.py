"""Where the time of a pair search goes: the demo's search timed three ways,
side by side in one run (run by `make bench`).

1. floor: a plain in-process loop over the same trainings, one after another,
   torch using every core, eager NCHW (`memory_format=contiguous`); no Ray.
2. the same loop in the channels_last layout, auxsearch's CPU default: what the
   layout alone is worth.
3. naive Ray Tune: one trial per training, no actor reuse, and each trial
   builds the dataset itself (what a first Ray Tune script usually does), NCHW.
4. auxsearch pairs: the real command with its defaults (dataset in the object
   store once, actors reused, channels_last on CPU, results recorded after
   every cell).
5. the in-process loop and `auxsearch pairs` again with `--set precision=bf16`
   (bf16 autocast of F, channels_last): what a CPU with AMX or AVX512-BF16
   gives a user who accepts bf16's rounding.
6. the bound on any orchestration: each `auxsearch pairs` search's trainings'
   own times (results.parquet's `wall_s`, measured inside the trial, a
   worker's first-training warm-up included) summed and split evenly over its
   workers, as if Ray, the stage boundaries and the stages' last cells cost
   nothing. What a search takes beyond it is orchestration; what the bound
   itself is above the goal is the trainings' compute on these cores.

The loops and naive Tune train exactly the same cells: the stage-1 cells of the
demo plus the stage-3 cells that the default `auxsearch pairs` planned from
them (the bf16 search plans its own stage 3 from its own matrix; its count is
printed). Ray's start and shutdown are inside the timings of Ray's ways, as a
user waits for them too.

    python benchmarks/pairs_overhead.py [--attributes red,large,left]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import pyarrow.parquet as pq
import torch
from in_process import train_cells

from methods import RunContext, get_method
from methods.data import load_dataset
from orchestrator.demo import DEMO_ATTRIBUTES, DEMO_DATASET, DEMO_SETTINGS
from orchestrator.pairs import run_pairs
from orchestrator.pairs_plan import resolve_settings, stage1_cells, stage3_cells
from orchestrator.ray_session import ray_session


def floor(
    cells: list, dataset, memory_format: str = "contiguous", precision: str = "fp32"
) -> float:
    return train_cells(cells, dataset, memory_format=memory_format, precision=precision)[1]


WORKERS = os.cpu_count() or 1  # trials at once at the defaults: one CPU each


def trainings_bound(out: str) -> float:
    """A finished search's trainings' own seconds, split evenly over its workers."""
    rows = pq.read_table(f"{out}/results.parquet").to_pylist()
    walls = {r["trial_id"]: r["wall_s"] for r in rows}  # a cell's rows share its wall_s
    return sum(walls.values()) / WORKERS


def naive_trainable(config: dict) -> None:
    from ray import tune

    cell = json.loads(config["cell"])
    dataset = load_dataset("shapes", DEMO_DATASET)  # every trial builds its own copy
    spec = get_method(cell["method"])
    ctx = RunContext(
        seed=cell["seed"], num_threads=1, report=lambda m, epoch: tune.report({**m, "epoch": epoch})
    )
    config = spec.make_config({**cell["params"], "memory_format": "contiguous"})
    spec.train(config, dataset, ctx)


def naive_ray(cells: list, storage: str) -> float:
    from ray import tune

    start = time.perf_counter()
    with ray_session():
        tune.Tuner(
            tune.with_resources(naive_trainable, {"cpu": 1}),
            param_space={"cell": tune.grid_search([json.dumps(c.to_dict()) for c in cells])},
            tune_config=tune.TuneConfig(reuse_actors=False),
            run_config=tune.RunConfig(storage_path=storage, name="naive", verbose=0),
        ).fit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attributes", default=",".join(DEMO_ATTRIBUTES))
    args = parser.parse_args()
    attributes = args.attributes.split(",")
    dataset = load_dataset("shapes", DEMO_DATASET)
    settings = resolve_settings(
        dataset, attributes=attributes, overrides=DEMO_SETTINGS, lambdas=None
    )
    bf16_settings = resolve_settings(
        dataset,
        attributes=attributes,
        overrides={**DEMO_SETTINGS, "precision": "bf16"},
        lambdas=None,
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_pairs(dataset, settings, f"{tmp}/pairs", echo=lambda _: None)
        t_pairs = time.perf_counter() - start
        bound = trainings_bound(f"{tmp}/pairs")
        cells = stage1_cells(settings) + stage3_cells(settings, result.partners)
        t_floor = floor(cells, dataset)
        t_layout = floor(cells, dataset, "channels_last")
        t_loop_bf16 = floor(cells, dataset, "channels_last", "bf16")
        t_naive = naive_ray(cells, f"{tmp}/naive")
        start = time.perf_counter()
        bf16 = run_pairs(dataset, bf16_settings, f"{tmp}/bf16", echo=lambda _: None)
        t_pairs_bf16 = time.perf_counter() - start
        bound_bf16 = trainings_bound(f"{tmp}/bf16")
        bf16_cells = len(stage1_cells(bf16_settings) + stage3_cells(bf16_settings, bf16.partners))

    print(
        f"pair search of the demo: {len(attributes)} attributes, {len(cells)} trainings"
        f" ({len(stage1_cells(settings))} stage 1 + {len(cells) - len(stage1_cells(settings))}"
        f" stage 3), {os.cpu_count()} CPU cores, torch {torch.__version__}"
    )
    print(f"{'way':<38}{'wall s':>9}{'÷ floor':>10}")
    for name, t in (
        ("floor: in-process loop, NCHW", t_floor),
        ("in-process loop, channels_last", t_layout),
        ("naive Ray Tune (no reuse), NCHW", t_naive),
        ("auxsearch pairs (defaults)", t_pairs),
        ("in-process loop, bf16", t_loop_bf16),
        (f"auxsearch pairs, bf16 ({bf16_cells} runs)", t_pairs_bf16),
        (f"bound: trainings ÷ {WORKERS} workers", bound),
        (f"bound, bf16: trainings ÷ {WORKERS} workers", bound_bf16),
    ):
        print(f"{name:<38}{t:>9.1f}{t / t_floor:>10.2f}")
    print(f"auxsearch pairs ÷ naive Ray Tune: {t_pairs / t_naive:.2f}")
    chosen = {a: p.partners for a, p in result.partners.items()}
    chosen_bf16 = {a: p.partners for a, p in bf16.partners.items()}
    same = "the same" if chosen_bf16 == chosen else "different"
    print(f"partners chosen, fp32: {chosen}; bf16 ({same}): {chosen_bf16}")


if __name__ == "__main__":
    main()
