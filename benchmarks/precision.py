"""What `--set precision=bf16` does to the pair matrix, against fp32 as its control:
the demo's stage-1 cells (6 single-task + 15 pair runs) at 3 seeds, trained
in-process once in fp32 and once in bf16 autocast, the same seeds, torch on every
core (run by `make bench`).

Printed: the wall time of each; how far bf16 moves each (cell, seed)'s
validation and test accuracy from fp32's, beside the seed-to-seed spread of the
same cells (bf16's perturbation is worth reading only against that); the mean
signed change with a paired t-test (a bias, not noise, would show here); and
stage 2's verdict per row under each precision.

    python benchmarks/precision.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from in_process import train_cells
from scipy import stats

from methods.core.backbones import cpu_has_bf16
from methods.data import load_dataset
from orchestrator.demo import DEMO_ATTRIBUTES, DEMO_DATASET, DEMO_SETTINGS
from orchestrator.pair_analysis import Values, choose_partners
from orchestrator.pairs_plan import resolve_settings, stage1_cells


def train_matrix(cells: list, dataset, precision: str) -> tuple[dict[str, Values], float]:
    """{"val": values, "test": values} of every cell, and the wall time."""
    out: dict[str, Values] = {"val": {}, "test": {}}
    finals, wall = train_cells(cells, dataset, precision=precision)
    for c, final in zip(cells, finals, strict=True):
        for a in c.tasks:
            b = a if len(c.tasks) == 1 else next(t for t in c.tasks if t != a)
            for split in out:
                out[split].setdefault((a, b), []).append(final[f"{split}/acc/{a}"])
    return out, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    dataset = load_dataset("shapes", DEMO_DATASET)
    settings = resolve_settings(
        dataset, attributes=DEMO_ATTRIBUTES, overrides=DEMO_SETTINGS, seeds=args.seeds
    )
    cells = stage1_cells(settings)
    fp32, t_fp32 = train_matrix(cells, dataset, "fp32")
    bf16, t_bf16 = train_matrix(cells, dataset, "bf16")
    bf16_ok = cpu_has_bf16()
    print(
        f"demo stage 1 at {args.seeds} seeds: {len(cells)} trainings, {os.cpu_count()} CPU"
        f" cores, bf16 instructions: {'yes' if bf16_ok else 'no'}, torch {torch.__version__}"
    )
    print(f"wall: fp32 {t_fp32:.1f} s, bf16 {t_bf16:.1f} s ({t_bf16 / t_fp32:.2f}×)")
    print(f"{'split':<6}{'mean |Δ|':>10}{'max |Δ|':>10}{'seed sd':>10}{'mean Δ':>10}{'p':>8}")
    for split in ("val", "test"):
        keys = sorted(fp32[split])
        a = np.array([fp32[split][k] for k in keys])
        b = np.array([bf16[split][k] for k in keys])
        diff = (b - a).ravel() * 100
        seed_sd = float(np.mean(a.std(axis=1, ddof=1))) * 100
        p = float(stats.ttest_1samp(diff, 0.0).pvalue) if diff.any() else 1.0
        print(
            f"{split:<6}{np.abs(diff).mean():>9.2f}p{np.abs(diff).max():>9.2f}p"
            f"{seed_sd:>9.2f}p{diff.mean():>+9.2f}p{p:>8.2f}"
        )
    print("(p: accuracy points; seed sd: the fp32 cells' mean standard deviation over seeds)")
    verdicts = {
        name: choose_partners(values["val"], DEMO_ATTRIBUTES, alpha=settings.alpha)
        for name, values in (("fp32", fp32), ("bf16", bf16))
    }
    for attr in DEMO_ATTRIBUTES:
        shown = []
        for name, v in verdicts.items():
            p = v[attr]
            sig = "" if p.significant is None else (" significant" if p.significant else " n.s.")
            shown.append(f"{name} {'+'.join(p.partners) or '-'}{sig}")
        print(f"  {attr:<9} " + "; ".join(shown))


if __name__ == "__main__":
    main()
