"""Adaptive seeds for the pair matrix: seeds spent only where a decision needs them.

`auxsearch pairs --seeds auto` trains every stage-1 cell with `--min-seeds`
seeds, then works in rounds. After each round every row a of the matrix has a
*decision*: its worst partner w (the lowest mean off the diagonal) and whether
a's accuracy with w is significantly below a alone. The decision uses the same
test as stage 2 (a one-sided Welch test of each partner against the diagonal,
Holm-corrected for the M − 1 partners the worst is chosen from), and a row is

- **settled, negative** when w is significant (Holm p < α) and every other
  partner that could still be the worst (not significantly above w: one-sided
  Welch p ≥ α for mean(b) > mean(w), Holm over the M − 2 others) is itself
  significant: further seeds would not undo the verdict, and a partner they
  might still promote over w hurts a significantly too, so the adversary AAL
  trains against is a real negative partner either way (the table names the
  ties);
- **settled, none** when no number of seeds up to `--max-seeds` could make it
  significant at the effect seen so far: with the current means and standard
  deviations and `--max-seeds` seeds on both sides, the worst partner's
  Holm-corrected p would still be ≥ α (futility; a worst partner at or above
  the diagonal settles at once);
- **open** otherwise. Another seed then goes only to the cells the decision
  depends on: the diagonal, the current worst partner and every partner still
  not separated from it; none to a cell that already has `--max-seeds`.

A pair cell serves two rows and is trained once for both. The loop ends when
every row is settled or every cell an open row depends on has `--max-seeds`
seeds (the row is then reported as open, at the maximum). Decisions are
recomputed from all seeds after every round, so a row settled early is
re-examined when a cell it shares gains a seed.

Why this test: it is stage 2's own (the same Welch + Holm verdict the summary
reports), so a settled row's decision is the one stage 2 takes on the same
data. Each look at the data tests at α again, as a Pocock-style design with a
constant boundary does without its adjusted level: across up to
max − min + 1 looks the chance of a false "significant" is above α (at most
(max − min + 1)·α by Bonferroni; with 2 → 5 seeds, four looks). The futility
rule projects from standard deviations estimated on as few as two seeds and can
stop a row whose true effect is real but was unlucky so far; benchmarks/
adaptive_seeds.py measures how often settled rows agree with uniform seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .errors import UserInputError
from .pair_analysis import Values, holm, negative_transfer_p

CellKey = tuple[str, ...]  # ("a",) a single-task cell, ("a", "b") sorted: a pair cell


@dataclass(frozen=True)
class AdaptiveSeeds:
    """`--seeds auto`: the fewest and most seeds per cell, and the test's level."""

    min_seeds: int = 2
    max_seeds: int = 5
    alpha: float = 0.05

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


@dataclass
class RowState:
    """One row's decision after a round."""

    attribute: str
    settled: bool
    decision: str  # "negative" | "none" | "failed"
    partner: str | None = None  # the worst partner (negative: the adversary)
    p_holm: float | None = None
    seeds: int = 0  # seeds of the row's diagonal
    needs: set[CellKey] = field(default_factory=set)  # cells that would get one more seed
    why: str = ""


def cell_key(a: str, b: str) -> CellKey:
    return (a,) if a == b else tuple(sorted((a, b)))


def assess(
    values: Values, attributes: Sequence[str], seeds: Mapping[CellKey, int], cfg: AdaptiveSeeds
) -> dict[str, RowState]:
    """Every row's decision from the values recorded so far; `seeds` counts the seeds
    each cell has (the same as its values unless some failed)."""
    return {a: _row(values, attributes, a, seeds, cfg) for a in attributes}


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


def _row(
    values: Values,
    attributes: Sequence[str],
    a: str,
    seeds: Mapping[CellKey, int],
    cfg: AdaptiveSeeds,
) -> RowState:
    alone = values.get((a, a), [])
    state = RowState(a, settled=False, decision="none", seeds=seeds.get((a,), 0))
    if len(alone) < 2:
        state.settled, state.decision, state.why = True, "failed", "single-task runs failed"
        return state
    means = {
        b: float(np.mean(values[(a, b)]))
        for b in attributes
        if b != a and len(values.get((a, b), [])) >= 2
    }
    if not means:
        state.settled, state.decision, state.why = True, "failed", "no pair run finished"
        return state
    worst = min(means, key=lambda b: (means[b], list(attributes).index(b)))
    state.partner = worst
    tests = {b: negative_transfer_p(values[(a, b)], alone) for b in means}
    adjusted = holm({b: p for b, p in tests.items() if p is not None})
    state.p_holm = adjusted.get(worst)
    rivals = _not_separated(values, a, worst, means, cfg.alpha)
    core = {cell_key(a, a), cell_key(a, worst)}  # the diagonal and the worst partner
    if state.p_holm is not None and state.p_holm < cfg.alpha:
        state.decision = "negative"
        doubtful = [b for b in rivals if adjusted.get(b, 1.0) >= cfg.alpha]
        if not doubtful:
            state.settled = True
            state.why = (
                f"significant; tied with {', '.join(rivals)}, also significant"
                if rivals
                else "significant, partner separated"
            )
            return state
        state.needs = core | {cell_key(a, b) for b in doubtful}
        state.why = f"partner not separated from {', '.join(doubtful)} (not significant)"
        return state
    if means[worst] >= float(np.mean(alone)):
        state.settled, state.why = True, "no partner below the diagonal"
        return state
    projected = _projected_p(values[(a, worst)], alone, cfg.max_seeds)
    if min(1.0, len(means) * projected) >= cfg.alpha:
        state.settled, state.why = True, f"futile: not significant even at {cfg.max_seeds} seeds"
        return state
    state.needs, state.why = core | {cell_key(a, b) for b in rivals}, "undecided"
    return state


def _not_separated(
    values: Values, a: str, worst: str, means: Mapping[str, float], alpha: float
) -> list[str]:
    """Partners that could still be row a's worst: not significantly above it."""
    above = {
        b: p
        for b in means
        if b != worst and (p := negative_transfer_p(values[(a, worst)], values[(a, b)])) is not None
    }
    adjusted = holm(above)
    return sorted(b for b in means if b != worst and adjusted.get(b, 1.0) >= alpha)


def _projected_p(with_b: Sequence[float], alone: Sequence[float], n: int) -> float:
    """The one-sided Welch p-value the observed means and deviations would give with
    `n` seeds on each side."""
    x, y = np.asarray(with_b, float), np.asarray(alone, float)
    diff = float(y.mean() - x.mean())
    var = (x.var(ddof=1) + y.var(ddof=1)) / n
    if var == 0:
        return 0.0 if diff > 0 else 1.0
    t = diff / math.sqrt(var)
    # Welch–Satterthwaite degrees of freedom with equal n on both sides
    sx, sy = x.var(ddof=1) / n, y.var(ddof=1) / n
    df = (sx + sy) ** 2 / ((sx**2 + sy**2) / (n - 1)) if sx + sy > 0 else 2 * n - 2
    return float(stats.t.sf(t, df))
