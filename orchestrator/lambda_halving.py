"""Stage 3 of the pair search by successive halving over λ (`--lambda-search halving`).

The AAL paper sweeps λ ∈ {0.01, 0.1, 0.3, 0.5, 1.0} per attribute and keeps the
λ with the best validation accuracy (§4.1); with K seeds the full sweep costs
|λ| × K adversarial trainings per attribute. Most of them are spent on λ values
that the first seed already shows to be worse. Successive halving (Jamieson &
Talwalkar 2016; Ray Tune's ASHA and Optuna's SuccessiveHalvingPruner apply it
to epochs) applies it here to seeds:

- round 1 trains every λ of an attribute at the first seed;
- after each round the λ values still in the race are ranked by their mean
  validation accuracy over the seeds they have (all the same seeds, so the
  ranking is fair), and the best ⌈n / reduction_factor⌉ go on (at least one);
- the next round trains the next seed of those only; once one λ is left it
  gets the remaining seeds, so the reported λ has all K seeds like the grid's.

Selection stays on validation and among the finalists alone: a dropped λ's
mean over fewer seeds is noisier and never competes with the finalist's K-seed
mean (that would select on noise). Ties rank the smaller λ first, as
`select_lambda` does. Every decision is a function of the recorded validation
values, so a rerun replays the same rounds from results.parquet and a killed
driver loses no finished cell. Halving over epochs (stopping a λ's run part-way)
is not done: a stage-3 run is a few epochs and a cell is the unit of resume.

Measured against the full λ × seed grid in `benchmarks/lambda_halving.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

Runs = Mapping[tuple[str, float], Sequence[float]]


def survivors(
    values: Runs, race: Mapping[str, Sequence[float]], reduction_factor: int
) -> dict[str, list[float]]:
    """The λ values of each attribute that go on to the next round: the best
    ⌈n / reduction_factor⌉ of the n still in the race by mean validation accuracy
    (a λ with no value, its runs failed, ranks last). At least one goes on."""
    out: dict[str, list[float]] = {}
    for a, lams in race.items():
        keep = max(1, math.ceil(len(lams) / reduction_factor))
        ranked = sorted(lams, key=lambda lam: _rank_key(values.get((a, lam)), lam))
        out[a] = sorted(ranked[:keep])
    return out


def _rank_key(v: Sequence[float] | None, lam: float) -> tuple[float, float]:
    # best mean first; ties: the smaller λ; no value at all: last
    return (-float(np.mean(v)) if v else math.inf, lam)


def trainings(n_lambdas: int, seeds: int, reduction_factor: int) -> int:
    """How many runs halving trains for one attribute with no failed cell (the grid:
    n_lambdas × seeds)."""
    total, n = 0, n_lambdas
    for _ in range(seeds):
        total += n
        n = max(1, math.ceil(n / reduction_factor))
    return total
