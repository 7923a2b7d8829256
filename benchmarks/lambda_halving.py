"""What `--lambda-search halving` saves in stage 3 of the pair search, and whether
it picks the λ the full grid picks: one run on the demo's data (run by `make bench`).

A pair search with K seeds and halving runs first; its directory is then copied
and the full λ × seed grid is run on the copy, which trains only the cells that
halving skipped (cells are deterministic per seed, so the cells both need are the
same trainings). Per attribute with a partner: the λ each picks on validation
(the grid among every λ at K seeds, halving among its finalists), and the grid's
K-seed validation and test accuracy at both λ values — the cost of a different
pick, measured on the same trainings. Stage-3 time is the sum of its cells' own
wall times, so the two are compared on the same trainings' cost.

    python benchmarks/lambda_halving.py [--seeds 3] [--reduction-factor 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from methods.data import load_dataset
from orchestrator.demo import DEMO_ATTRIBUTES, DEMO_DATASET, DEMO_SETTINGS
from orchestrator.pairs import run_pairs
from orchestrator.pairs_plan import resolve_settings


def stage3(out: str) -> tuple[dict[str, float], dict[tuple[str, float, str], list[float]]]:
    """Stage-3 cells' wall times by trial, and (attribute, λ, split) → accuracies."""
    wall: dict[str, float] = {}
    acc: dict[tuple[str, float, str], list[float]] = defaultdict(list)
    for r in pq.read_table(f"{out}/results.parquet").to_pylist():
        if r["stage"] != "adversarial":
            continue
        wall[r["trial_id"]] = r["wall_s"]
        if r["metric"] == "acc" and r["split"] in ("val", "test"):
            lam = float(json.loads(r["params"])["lam"])
            acc[(r["main_task"], lam, r["split"])].append(r["value"])
    return wall, acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--reduction-factor", type=int, default=2)
    args = parser.parse_args()
    dataset = load_dataset("shapes", DEMO_DATASET)

    def settings(search: str) -> Any:
        extra = {"reduction_factor": args.reduction_factor} if search == "halving" else {}
        return resolve_settings(
            dataset,
            attributes=DEMO_ATTRIBUTES,
            overrides=DEMO_SETTINGS,
            seeds=args.seeds,
            lambda_search=search,
            **extra,
        )

    with tempfile.TemporaryDirectory() as tmp:
        halving_dir, grid_dir = f"{tmp}/halving", f"{tmp}/grid"
        start = time.perf_counter()
        halving = run_pairs(dataset, settings("halving"), halving_dir, echo=lambda _: None)
        print(f"halving search (stage 1 included): {time.perf_counter() - start:.0f}s")
        shutil.copytree(halving_dir, grid_dir)
        grid = run_pairs(dataset, settings("grid"), grid_dir, echo=lambda _: None)
        h_wall, _ = stage3(halving_dir)
        g_wall, acc = stage3(grid_dir)

    print(
        f"stage 3 over {len(settings('grid').lambdas)} λ values, {args.seeds} seeds,"
        f" reduction factor {args.reduction_factor}: halving {len(h_wall)} trainings"
        f" ({sum(h_wall.values()):.0f}s), grid {len(g_wall)} ({sum(g_wall.values()):.0f}s):"
        f" {len(h_wall) / len(g_wall):.2f} of the trainings,"
        f" {sum(h_wall.values()) / sum(g_wall.values()):.2f} of their time"
    )
    h_rows = {r["attribute"]: r for r in halving.summary.to_dict("records")}
    g_rows = {r["attribute"]: r for r in grid.summary.to_dict("records")}
    print(
        f"{'attribute':<10}{'grid λ':>8}{'halving λ':>11}"
        f"{'grid val/test at grid λ':>26}{'at halving λ':>16}"
    )
    same = 0
    regret_val, regret_test = [], []
    for a, g in g_rows.items():
        if g["lambda"] is None or np.isnan(g["lambda"]):
            continue
        lg, lh = g["lambda"], h_rows[a]["lambda"]
        same += lg == lh

        def at(lam: float, split: str, a: str = a) -> float:
            return float(np.mean(acc[(a, lam, split)])) * 100

        regret_val.append(at(lg, "val") - at(lh, "val"))
        regret_test.append(at(lg, "test") - at(lh, "test"))
        print(
            f"{a:<10}{lg:>8g}{lh:>11g}{at(lg, 'val'):>17.1f} / {at(lg, 'test'):<6.1f}"
            f"{at(lh, 'val'):>9.1f} / {at(lh, 'test'):.1f}"
        )
    n = len(regret_val)
    print(
        f"same λ for {same} of {n} attribute(s); the grid's accuracy at halving's λ is"
        f" {np.mean(regret_val):.2f} points (val) and {np.mean(regret_test):.2f} (test)"
        " below its own pick on average"
    )


if __name__ == "__main__":
    main()
