"""Stage 2 of AAL and the tables built from the pair search.

- `pair_values`: from the results rows, every seed's validation accuracy of a
  when trained with b (b = a: single-task), the cells of the pair matrix.
- `choose_partners`: row a's lowest off-diagonal mean, if below the diagonal
  (negative transfer, AAL §3.3); ties go to the earlier attribute; "all" mode
  keeps every b below the diagonal (§4.2.1 "multiple adversarial training").
- `negative_transfer_p`: a one-sided Welch t-test over seeds that a's accuracy
  with b is lower than alone. The AAL paper's effects (tenths of a point) are
  often within seed-to-seed noise, so with K ≥ 2 seeds a negative transfer is
  marked significant only when its p-value, corrected for the selection, is
  below α.
- The selection: the partner tested is the *lowest* of the M − 1 means of row
  a, so its raw p-value is biased low (a minimum over M − 1 noisy cells looks
  negative even when no partner hurts). `holm` corrects every partner's test
  for the M − 1 tested in the row (Holm–Bonferroni): it controls the chance of
  any false "significant" in the row whichever partner the selection picks,
  needs no distributional assumption across partners, and works with as few
  as 2 seeds, where a permutation test over seeds has too few permutations to
  reach 0.05. `significant` uses the corrected value.
- `select_lambda` and `summary_table`: λ and epoch chosen on validation, test
  reported at that choice (first in the table: validation numbers of the
  chosen λ are selected on the split they report, so they are optimistic), in
  the layout of the paper's Table 3; with a null control (the partner's labels
  permuted), the same for it, the size of gain the selection alone produces.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

Values = dict[tuple[str, str], list[float]]


def _acc_rows(
    rows: Iterable[Mapping[str, Any]], stages: Sequence[str], split: str, ids: set[str] | None
) -> Iterable[Mapping[str, Any]]:
    for r in rows:
        if (
            r["stage"] in stages
            and r["status"] == "ok"
            and r["metric"] == "acc"
            and r["split"] == split
            and (ids is None or r["trial_id"] in ids)
        ):
            yield r


def pair_values(
    rows: Iterable[Mapping[str, Any]], split: str = "val", ids: set[str] | None = None
) -> Values:
    """(a, b) → accuracies of a over seeds; (a, a) holds the single-task runs."""
    values: Values = {}
    for r in _acc_rows(rows, ("single", "pair"), split, ids):
        a = r["main_task"]
        b = r["aux_task"] if r["stage"] == "pair" else a
        values.setdefault((a, b), []).append(float(r["value"]))
    return values


def matrix(values: Values, attributes: Sequence[str], reduce: str = "mean") -> pd.DataFrame:
    """Row a, column b = mean (or std, or count) of a's accuracy with b; NaN where missing."""
    out = pd.DataFrame(np.nan, index=list(attributes), columns=list(attributes), dtype=float)
    for a in attributes:
        for b in attributes:
            v = values.get((a, b))
            if not v:
                continue
            if reduce == "mean":
                out.loc[a, b] = float(np.mean(v))
            elif reduce == "std":
                out.loc[a, b] = float(np.std(v, ddof=1)) if len(v) > 1 else np.nan
            else:
                out.loc[a, b] = float(len(v))
    return out


def negative_transfer_p(with_b: Sequence[float], alone: Sequence[float]) -> float | None:
    """One-sided Welch t-test p-value for mean(with_b) < mean(alone); None below 2 seeds."""
    if len(with_b) < 2 or len(alone) < 2:
        return None
    x, y = np.asarray(with_b, float), np.asarray(alone, float)
    if x.std(ddof=1) == 0 and y.std(ddof=1) == 0:  # no seed noise at all: the sign decides
        return 0.0 if x.mean() < y.mean() else 1.0
    with warnings.catch_warnings():
        # near-identical seeds (an attribute every run gets right) make scipy warn
        # of precision loss; the p-value it returns is still the right verdict
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.ttest_ind(x, y, equal_var=False, alternative="less").pvalue
    return float(p)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values of a family of tests (step-down, monotone)."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m, running, out = len(order), 0.0, {}
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[key]))
        out[key] = running
    return out


@dataclass
class Partner:
    """Stage 2's verdict for one attribute."""

    attribute: str
    partners: list[str] = field(default_factory=list)  # empty: no negative transfer found
    sin: float | None = None
    mul: float | None = None  # a's accuracy with the worst partner
    p_value: float | None = None  # the worst partner's raw one-sided p-value
    p_holm: float | None = None  # ... corrected for the M − 1 partners of the row
    significant: bool | None = None  # p_holm < α; None: fewer than 2 seeds
    reason: str = ""


@dataclass(frozen=True)
class RowTest:
    """Stage 2's statistics of one row a: its partners from worst to best, and
    every partner's test against the diagonal."""

    alone: float  # mean of a's single-task runs
    ranked: list[tuple[str, float]]  # (b, mean of a with b), lowest first; ties: earlier b
    p_raw: dict[str, float]  # one-sided Welch p per partner with ≥ 2 seeds
    p_holm: dict[str, float]  # ... Holm-corrected over those partners

    @property
    def worst(self) -> str:
        return self.ranked[0][0]

    @property
    def worst_mean(self) -> float:
        return self.ranked[0][1]

    def negative(self, alpha: float) -> bool:
        """Stage 2's verdict: the worst partner is below the diagonal and its
        Holm-corrected p-value is below α."""
        p = self.p_holm.get(self.worst)
        return self.worst_mean < self.alone and p is not None and p < alpha


def row_test(values: Values, attributes: Sequence[str], a: str) -> RowTest | None:
    """Row a's partners and tests; None when a has no single-task run or no pair run
    finished. The one place stage 2's row statistics are computed: the partner
    choice and `--seeds auto`'s rounds both read them."""
    alone = values.get((a, a))
    if not alone:
        return None
    row = sorted(
        (float(np.mean(values[(a, b)])), i, b)
        for i, b in enumerate(attributes)
        if b != a and values.get((a, b))
    )
    if not row:
        return None
    p_raw = {
        b: p for _, _, b in row if (p := negative_transfer_p(values[(a, b)], alone)) is not None
    }
    return RowTest(float(np.mean(alone)), [(b, v) for v, _, b in row], p_raw, holm(p_raw))


def tied_with_worst(values: Values, a: str, test: RowTest, alpha: float = 0.05) -> list[str] | None:
    """The partners of row a that seed noise cannot tell from the worst: a one-sided
    Welch test that a does better with b than with the worst partner has p ≥ α.
    Each partner is its own claim ("b is not the worst"), so no correction is
    applied: correcting would only widen the tie. None below 2 seeds."""
    worst = values.get((a, test.worst), [])
    if len(worst) < 2:
        return None
    tied = []
    for b, _ in test.ranked[1:]:
        p = negative_transfer_p(worst, values[(a, b)])  # mean(worst) < mean(with b)?
        if p is None:
            return None
        if p >= alpha:
            tied.append(b)
    return tied


def choose_partners(
    values: Values,
    attributes: Sequence[str],
    *,
    mode: str = "worst",
    alpha: float = 0.05,
    require_significant: bool = False,
) -> dict[str, Partner]:
    out: dict[str, Partner] = {}
    for a in attributes:
        verdict = Partner(a)
        out[a] = verdict
        if not values.get((a, a)):
            verdict.reason = "single-task run failed"
            continue
        test = row_test(values, attributes, a)
        if test is None:
            verdict.sin = float(np.mean(values[(a, a)]))
            verdict.reason = "no pair run finished"
            continue
        verdict.sin, verdict.mul = test.alone, test.worst_mean
        if test.worst_mean >= test.alone:
            verdict.reason = "no negative transfer"
            continue
        verdict.p_value, verdict.p_holm = test.p_raw.get(test.worst), test.p_holm.get(test.worst)
        verdict.significant = None if verdict.p_holm is None else test.negative(alpha)
        if require_significant and not verdict.significant:
            verdict.reason = "negative transfer within seed noise"
            continue
        if mode == "all":
            below = [b for b, v in test.ranked if v < test.alone]
            if require_significant:
                below = [b for b in below if test.p_holm.get(b, 1.0) < alpha]
            verdict.partners = below
        else:
            verdict.partners = [test.worst]
    return out


def adversarial_values(
    rows: Iterable[Mapping[str, Any]],
    split: str,
    ids: set[str] | None = None,
    sweep: str = "lam",
    stage: str = "adversarial",
) -> dict[tuple[str, float], list[float]]:
    """(attribute, swept value λ) → accuracies over seeds of a stage-3 stage's runs."""
    out: dict[tuple[str, float], list[float]] = {}
    for r in _acc_rows(rows, (stage,), split, ids):
        lam = float(_params(r)[sweep])
        out.setdefault((r["main_task"], lam), []).append(float(r["value"]))
    return out


def _params(row: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(row["params"])
    return params


def select_lambda(val: Mapping[tuple[str, float], list[float]], attribute: str) -> float | None:
    """The λ with the best mean validation accuracy (ties: the smaller λ)."""
    options = [(np.mean(v), -lam, lam) for (a, lam), v in val.items() if a == attribute and v]
    if not options:
        return None
    return max(options)[2]


def _mean(v: Sequence[float] | None) -> float | None:
    """The mean, None for no values."""
    return float(np.mean(v)) if v else None


def _std(v: Sequence[float] | None) -> float | None:
    return float(np.std(v, ddof=1)) if v and len(v) > 1 else None


def _diff(x: float | None, y: float | None) -> float | None:
    return None if x is None or y is None else x - y


# Test first: the numbers at the choices made on validation.
SUMMARY_COLUMNS = [
    "attribute",
    "neg_partner",
    "lambda",
    "sin_test",
    "mul_test",
    "adv_test",
    "mul_minus_sin_test",
    "adv_minus_sin_test",
    "adv_minus_mul_test",
    "sin",
    "mul",
    "adv",
    "mul_minus_sin",
    "adv_minus_sin",
    "adv_minus_mul",
    "significant",
    "p_value",
    "p_holm",
    "sin_std",
    "mul_std",
    "adv_std",
    "null_lambda",
    "null",
    "null_test",
    "null_minus_sin_test",
    "seeds",
    "note",
]

Runs = Mapping[tuple[str, float], list[float]]


def summary_table(
    attributes: Sequence[str],
    partners: Mapping[str, Partner],
    pair_val: Values,
    pair_test: Values,
    adv_val: Runs,
    adv_test: Runs,
    null_val: Runs | None = None,
    null_test: Runs | None = None,
) -> pd.DataFrame:
    """One row per attribute, in the layout of the AAL paper's Table 3 (+ seeds and test);
    `null_*`: the null control's runs (partner labels permuted), λ chosen alike."""
    rows = []
    for a in attributes:
        p = partners[a]
        worst = p.partners[0] if p.partners else None
        lam = select_lambda(adv_val, a) if p.partners else None
        adv = _mean(adv_val.get((a, lam))) if lam is not None else None
        sin, sin_test = _mean(pair_val.get((a, a))), _mean(pair_test.get((a, a)))
        mul = _mean(pair_val.get((a, worst))) if worst else p.mul
        mul_test = _mean(pair_test.get((a, worst))) if worst else None
        adv_t = _mean(adv_test.get((a, lam))) if lam is not None else None
        null_lam = select_lambda(null_val, a) if null_val and p.partners else None
        null_v = _mean(null_val.get((a, null_lam))) if null_val and null_lam is not None else None
        null_t = _mean((null_test or {}).get((a, null_lam))) if null_lam is not None else None
        note = p.reason
        if p.partners and lam is None:
            note = "adversarial runs failed"
        rows.append(
            {
                "attribute": a,
                "neg_partner": "+".join(p.partners) or None,
                "lambda": lam,
                "sin_test": sin_test,
                "mul_test": mul_test,
                "adv_test": adv_t,
                "mul_minus_sin_test": _diff(mul_test, sin_test),
                "adv_minus_sin_test": _diff(adv_t, sin_test),
                "adv_minus_mul_test": _diff(adv_t, mul_test),
                "sin": sin,
                "mul": mul,
                "adv": adv,
                "mul_minus_sin": _diff(mul, sin),
                "adv_minus_sin": _diff(adv, sin),
                "adv_minus_mul": _diff(adv, mul),
                "significant": p.significant,
                "p_value": p.p_value,
                "p_holm": p.p_holm,
                "sin_std": _std(pair_val.get((a, a))),
                "mul_std": _std(pair_val.get((a, worst))) if worst else None,
                "adv_std": _std(adv_val.get((a, lam))) if lam is not None else None,
                "null_lambda": null_lam,
                "null": null_v,
                "null_test": null_t,
                "null_minus_sin_test": _diff(null_t, sin_test),
                "seeds": len(pair_val.get((a, a), [])),
                "note": note or None,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
