"""Adaptive seeds for the pair matrix: seeds spent only where a decision needs them.

`auxsearch pairs --seeds auto` trains every stage-1 cell with `--min-seeds`
seeds, then works in rounds. After each round every row a of the matrix has a
*decision*: stage 2's verdict on the seeds so far — its worst partner w (the
lowest mean off the diagonal) and whether a's accuracy with w is significantly
below a alone (a one-sided Welch test of each partner against the diagonal,
Holm-corrected for the M − 1 partners the worst is chosen from).

The question a row asks is whether that decision is the one `--max-seeds` seeds
on every cell (uniform seeds, what `--seeds auto` stands in for) would give. It
is answered by stochastic curtailment with the predictive probability (Lan,
Simon & Halperin 1982, "Stochastically curtailed tests in long-term clinical
trials"; Spiegelhalter, Freedman & Blackburn 1986): draw the seeds not yet
trained from what the seeds so far say about each cell, run stage 2's test on
every completed draw, and count how often it finds the worst partner
significant — P(negative at K). A row is

- **settled, negative** when its worst partner is significant now and
  P(negative at K) ≥ `--certainty`;
- **settled, none** when it is not significant now and P(negative at K) ≤
  1 − `--certainty` (this covers a partner at or above the diagonal and an
  effect too small for K seeds to resolve);
- **open** otherwise. Another seed then goes only to the cells the decision
  depends on: the diagonal, the current worst partner and every partner that is
  the worst in at least `RIVAL_SHARE` of the draws (the predictive form of "its
  interval overlaps the worst"), or, once those all have `--max-seeds`, every
  cell of the row below it (the doubt left lies there); none to a cell that
  already has `--max-seeds`.

A settled row's decision is stage 2's own on the same data, so stage 2 and the
summary never contradict it. When every cell of a row has K seeds the draws
have nothing left to vary: P is 0 or 1 and the row settles on uniform-K's
verdict itself. Two partners that are both harmful need not be separated: the
verdict holds whichever is the worst, and the row names the partners that are
the worst in at least `RIVAL_SHARE` of the draws (AAL may train against either).

The predictive model. Each cell's seed-to-seed accuracies are normal with their
own mean and variance, under a flat prior on the mean and, for the variance, a
scaled inverse-χ² prior centred on the row's pooled variance (all its cells'
seeds) and worth `PRIOR_DF` degrees of freedom. A cell with two seeds has one
degree of freedom of its own: two seeds that happen to agree would, alone,
predict no noise at all, and the first version of this module (which projected
a Welch test from each cell's own deviations) settled such rows as hopeless at
two seeds where five seeds found a significant partner (2 of 4 settled rows
wrong on the "other attributes" `shapes` variant of benchmarks/adaptive_seeds.py). The pooled
prior keeps a cell's own noise (a stalled pair's wide spread stays wide) while
no longer trusting one degree of freedom with it.

Error rates. Curtailment aims at the fixed-K test's verdict, not at a new
sequential test: a negative verdict needs both the test on the seeds so far
(at α) and a predictive probability ≥ `--certainty` that K seeds confirm it.
The settled verdict differs from uniform-K's with probability at most
1 − `--certainty` per row under the model; benchmarks/adaptive_seeds.py
measures how often it does on real trainings. The draws are seeded from the
row's name, so the same seeds always give the same decisions (a rerun resumes
the rounds exactly).

A pair cell serves two rows and is trained once for both. Decisions are
recomputed from all seeds after every round, so a row settled early is
re-examined when a cell it shares gains a seed.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .errors import UserInputError
from .options import default
from .pair_analysis import Values, row_test

CellKey = tuple[str, ...]  # ("a",) a single-task cell, ("a", "b") sorted: a pair cell

DRAWS = 8000  # completed matrices drawn per row: a probability's Monte Carlo error ≤ 0.006
PRIOR_DF = 2.0  # degrees of freedom the row's pooled variance lends each cell's variance
RIVAL_SHARE = 0.1  # a partner the worst in this share of draws is still in the race


@dataclass(frozen=True)
class AdaptiveSeeds:
    """`--seeds auto`: the fewest and most seeds per cell, the test's level, and how
    sure a row must be that `max_seeds` seeds would not change its verdict."""

    min_seeds: int = default("pairs", "min_seeds")
    max_seeds: int = default("pairs", "max_seeds")
    alpha: float = default("pairs", "alpha")
    certainty: float = default("pairs", "certainty")

    def __post_init__(self) -> None:
        if isinstance(self.min_seeds, bool) or not isinstance(self.min_seeds, int):
            raise UserInputError(f"--min-seeds {self.min_seeds} is not a whole number")
        if self.min_seeds < 2:
            raise UserInputError(
                f"--min-seeds {self.min_seeds} is not allowed; a test over seeds needs 2 or more"
            )
        if isinstance(self.max_seeds, bool) or not isinstance(self.max_seeds, int):
            raise UserInputError(f"--max-seeds {self.max_seeds} is not a whole number")
        if self.max_seeds < self.min_seeds:
            raise UserInputError(
                f"--max-seeds {self.max_seeds} is below --min-seeds {self.min_seeds};"
                " use at least as many"
            )
        if not 0.5 < self.certainty < 1:
            raise UserInputError(
                f"--certainty {self.certainty:g} is not allowed; use a probability between"
                " 0.5 and 1 (e.g. 0.9)"
            )


@dataclass
class RowState:
    """One row's decision after a round."""

    attribute: str
    settled: bool
    decision: str  # "negative" | "none" | "failed"
    partner: str | None = None  # the worst partner (negative: the adversary)
    p_holm: float | None = None
    seeds: int = 0  # seeds of the row's diagonal
    p_negative: float | None = None  # P(the worst partner significant at max seeds)
    needs: set[CellKey] = field(default_factory=set)  # cells that would get one more seed
    why: str = ""


def cell_key(a: str, b: str) -> CellKey:
    return (a,) if a == b else tuple(sorted((a, b)))


def assess(
    values: Values, attributes: Sequence[str], seeds: Mapping[CellKey, int], cfg: AdaptiveSeeds
) -> dict[str, RowState]:
    """Every row's decision from the values recorded so far; `seeds` counts the seeds
    each cell has (the same as its values unless some failed). A cell takes part
    once it has two seeds, the fewest a test over seeds can use."""
    tested = {k: v for k, v in values.items() if len(v) >= 2}
    return {a: _row(tested, attributes, a, seeds, cfg) for a in attributes}


def next_round(
    states: Mapping[str, RowState], seeds: Mapping[CellKey, int], cfg: AdaptiveSeeds
) -> set[CellKey]:
    """The cells to give one more seed: those an open row depends on, below the
    maximum (a pair cell wanted by both its rows is counted once)."""
    wanted: set[CellKey] = set()
    for state in states.values():
        if not state.settled:
            wanted |= state.needs
    return {c for c in wanted if seeds.get(c, 0) < cfg.max_seeds}


def run_rounds(
    attributes: Sequence[str],
    seeds: dict[CellKey, int],
    cfg: AdaptiveSeeds,
    play: Callable[[int, Mapping[CellKey, int]], Values],
) -> Iterator[tuple[int, dict[str, RowState], set[CellKey]]]:
    """The rounds of `--seeds auto`, from the seed counts in `seeds` (raised in place
    between rounds). `play(round, seeds)` trains, or looks up, every stage-1 cell at
    its seed count and returns the values recorded; each round yields its number,
    the rows' decisions and the cells that get another seed (none: the last round).
    `auxsearch pairs` plays rounds by training; benchmarks/adaptive_seeds.py
    --replay by reading a finished uniform search."""
    for round_no in itertools.count(1):
        rows = assess(play(round_no, seeds), attributes, seeds, cfg)
        more = next_round(rows, seeds, cfg)
        yield round_no, rows, more
        if not more:
            return
        for key in more:
            seeds[key] += 1


def _row(
    values: Values,
    attributes: Sequence[str],
    a: str,
    seeds: Mapping[CellKey, int],
    cfg: AdaptiveSeeds,
) -> RowState:
    state = RowState(a, settled=False, decision="none", seeds=seeds.get((a,), 0))
    test = row_test(values, attributes, a)
    if test is None:
        state.settled, state.decision = True, "failed"
        state.why = "no pair run finished" if values.get((a, a)) else "single-task runs failed"
        return state
    alone = values[(a, a)]
    partners = [b for b in attributes if b != a and values.get((a, b))]
    worst = state.partner = test.worst
    state.p_holm = test.p_holm.get(worst)
    negative = test.negative(cfg.alpha)  # stage 2's verdict on these seeds
    state.decision = "negative" if negative else "none"
    p_negative, worst_share = predict_at_max(
        alone,
        [values[(a, b)] for b in partners],
        cfg.max_seeds,
        cfg.alpha,
        np.random.default_rng(zlib.crc32(a.encode())),
    )
    state.p_negative = p_negative
    rivals = [
        b for b, s in zip(partners, worst_share, strict=True) if b != worst and s >= RIVAL_SHARE
    ]
    at_max = f"{cfg.max_seeds} seeds find a significant partner with probability {p_negative:.2f}"
    if negative and p_negative >= cfg.certainty:
        state.settled = True
        state.why = f"significant; {at_max}" + (
            f"; the worst could also be {', '.join(rivals)}" if rivals else ""
        )
    elif not negative and p_negative <= 1 - cfg.certainty:
        state.settled, state.why = True, f"not significant; {at_max}"
    else:
        state.needs = {cell_key(a, a), cell_key(a, worst)} | {cell_key(a, b) for b in rivals}
        if all(seeds.get(c, 0) >= cfg.max_seeds for c in state.needs):
            # the race is run; what is still unknown lies in the partners outside it
            state.needs = {cell_key(a, a)} | {cell_key(a, b) for b in partners}
        state.why = f"undecided: {'significant' if negative else 'not significant'} now; {at_max}"
    return state


def predict_at_max(
    alone: Sequence[float],
    with_partners: Sequence[Sequence[float]],
    max_seeds: int,
    alpha: float,
    rng: np.random.Generator,
    draws: int = DRAWS,
) -> tuple[float, np.ndarray]:
    """P(stage 2 finds the worst partner significant once every cell has `max_seeds`
    seeds), and for each partner the share of draws in which it is the worst.

    Each draw completes every cell from its posterior predictive (module docstring:
    normal seeds, flat prior on the mean, the variance's prior centred on the row's
    pooled variance with `PRIOR_DF` degrees of freedom), then runs stage 2's test on
    the completed row: the worst mean, its one-sided Welch p against the diagonal,
    Holm over the partners."""
    cells = [np.asarray(alone, float), *(np.asarray(v, float) for v in with_partners)]
    n = np.array([len(c) for c in cells], float)
    mean = np.array([c.mean() for c in cells])
    ss = np.array([((c - c.mean()) ** 2).sum() for c in cells])
    pooled = ss.sum() / (n - 1).sum()
    nu = n - 1 + PRIOR_DF
    scale = (ss + PRIOR_DF * pooled) / nu
    shape = (draws, len(cells))
    sigma2 = nu * scale / rng.chisquare(nu, size=shape)
    mu = mean + rng.standard_normal(shape) * np.sqrt(sigma2 / n)
    more = np.maximum(max_seeds - n, 0)  # seeds still to come per cell
    new_mean = mu + rng.standard_normal(shape) * np.sqrt(sigma2 / np.maximum(more, 1))
    # the new seeds' sum of squares about their own mean: σ²·χ²(more − 1)
    new_ss = sigma2 * rng.chisquare(np.maximum(more - 1, 1), size=shape) * (more > 1)
    total = n + more
    final_mean = np.where(more > 0, (n * mean + more * new_mean) / total, mean)
    final_ss = np.where(more > 0, ss + new_ss + n * more / total * (mean - new_mean) ** 2, ss)
    # a floor keeps a row without any seed noise finite: the sign of the gap decides,
    # as stage 2's test does then
    var = np.maximum(final_ss / (total - 1), 1e-18) / total  # the variance of each mean
    gap = final_mean[:, 1:] - final_mean[:, :1]
    se2 = var[:, 1:] + var[:, :1]
    df = se2**2 / (var[:, 1:] ** 2 / (total[1:] - 1) + var[:, :1] ** 2 / (total[0] - 1))
    p = stats.t.cdf(gap / np.sqrt(se2), df)  # one-sided: mean(with b) < mean(alone)
    adjusted = _holm_rows(p)
    worst = np.argmin(final_mean[:, 1:], axis=1)
    pick = np.arange(draws)
    significant = (adjusted[pick, worst] < alpha) & (gap[pick, worst] < 0)
    share = np.bincount(worst, minlength=len(with_partners)) / draws
    return float(significant.mean()), share


def _holm_rows(p: np.ndarray) -> np.ndarray:
    """`pair_analysis.holm` applied to each row of `p` (one family per draw)."""
    m = p.shape[1]
    order = np.argsort(p, axis=1)
    ranked = np.take_along_axis(p, order, axis=1) * (m - np.arange(m))
    ranked = np.minimum(1.0, np.maximum.accumulate(ranked, axis=1))
    out = np.empty_like(ranked)
    np.put_along_axis(out, order, ranked, axis=1)
    return out
