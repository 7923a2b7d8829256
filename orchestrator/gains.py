"""Stage 3's verdict on the test split: is the adversarial method's gain larger
than seed noise, and can validation be trusted to choose it?

- `paired_gain`: seed s of two arms shares its data order and initialisation,
  so the gain is tested on the per-seed differences (a paired t-test over the
  seeds both arms finished): mean, a two-sided t confidence interval and p.
  Each arm sits at its own λ and epoch chosen on validation; test is only read.
- `gain_columns`: per attribute, the paired test-split gain of the adversarial
  runs over single-task training and over the null control (the partner's
  labels permuted: the gain the λ selection alone produces), and the
  test-split spread of every arm.
- `split_check`: AAL chooses λ and the epoch on validation. When validation
  shares train's spurious correlation and test does not, validation carries
  no signal for that choice (single-task validation accuracy far above test,
  or a gain on test that validation does not see). It is flagged, not fixed:
  the remedy is a validation split distributed like test (README, "Split
  design").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

# (attribute, partner or attribute, λ or None) → {seed: accuracy}
SeedValues = dict[int, float]


@dataclass(frozen=True)
class Gain:
    """Mean of x − y over the seeds both have; CI and p need ≥ 2 seeds."""

    gain: float | None
    low: float | None
    high: float | None
    p: float | None
    seeds: int


def paired_gain(x: Mapping[int, float], y: Mapping[int, float], alpha: float = 0.05) -> Gain:
    """The paired (by seed) gain of x over y with its (1 − α) t interval and
    two-sided p (the same p as scipy's `ttest_rel`)."""
    seeds = sorted(set(x) & set(y))
    d = np.array([x[s] - y[s] for s in seeds], dtype=float)
    if d.size == 0:
        return Gain(None, None, None, None, 0)
    mean = float(d.mean())
    if d.size < 2:
        return Gain(mean, None, None, None, 1)
    sd = float(d.std(ddof=1))
    if sd < 1e-12:  # every seed moved by the same amount (to rounding): the sign decides
        return Gain(mean, mean, mean, 0.0 if mean != 0.0 else 1.0, int(d.size))
    half = float(stats.t.ppf(1 - alpha / 2, d.size - 1)) * sd / math.sqrt(d.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-constant differences
        p = float(stats.ttest_1samp(d, 0.0).pvalue)
    return Gain(mean, mean - half, mean + half, p, int(d.size))


def by_seed(
    rows: Iterable[Mapping[str, Any]],
    stage: str,
    split: str,
    ids: set[str] | None,
    key: Any,
) -> dict[Any, SeedValues]:
    """key(row) → {seed: accuracy} of a stage's `acc` rows on `split`; `key` returns
    None for a row that belongs to no arm."""
    out: dict[Any, SeedValues] = {}
    for r in rows:
        if (
            r["stage"] == stage
            and r["status"] == "ok"
            and r["metric"] == "acc"
            and r["split"] == split
            and (ids is None or r["trial_id"] in ids)
        ):
            k = key(r)
            if k is not None:
                out.setdefault(k, {})[int(r["seed"])] = float(r["value"])
    return out


def _std(values: Mapping[int, float] | None) -> float | None:
    return float(np.std(list(values.values()), ddof=1)) if values and len(values) > 1 else None


GAIN_COLUMNS = [
    "adv_minus_sin_test_low",
    "adv_minus_sin_test_high",
    "adv_minus_sin_test_p",
    "adv_minus_null_test",
    "adv_minus_null_test_low",
    "adv_minus_null_test_high",
    "adv_minus_null_test_p",
    "gain_seeds",
    "sin_test_std",
    "mul_test_std",
    "adv_test_std",
    "null_test_std",
]


@dataclass(frozen=True)
class Arms:
    """Every arm's per-seed test accuracy at its chosen λ (None: the arm did not run)."""

    sin: SeedValues | None
    mul: SeedValues | None
    adv: SeedValues | None
    null: SeedValues | None


# The level of the gains' intervals, fixed so that a table says what its columns
# hold whatever --alpha a search used (α decides significance, not the interval).
GAIN_CONFIDENCE = 0.95


def gain_columns(arms: Arms) -> dict[str, Any]:
    """The test-split gain columns of one attribute's summary row."""
    alpha = 1 - GAIN_CONFIDENCE
    vs_sin = paired_gain(arms.adv or {}, arms.sin or {}, alpha)
    vs_null = paired_gain(arms.adv or {}, arms.null or {}, alpha)
    return {
        "adv_minus_sin_test_low": vs_sin.low,
        "adv_minus_sin_test_high": vs_sin.high,
        "adv_minus_sin_test_p": vs_sin.p,
        "adv_minus_null_test": vs_null.gain,
        "adv_minus_null_test_low": vs_null.low,
        "adv_minus_null_test_high": vs_null.high,
        "adv_minus_null_test_p": vs_null.p,
        "gain_seeds": vs_sin.seeds if arms.adv else None,
        "sin_test_std": _std(arms.sin),
        "mul_test_std": _std(arms.mul),
        "adv_test_std": _std(arms.adv),
        "null_test_std": _std(arms.null),
    }


@dataclass(frozen=True)
class SplitCheck:
    """Single-task validation minus test accuracy, its two-proportion p, and the
    paired p that the adversarial gain differs between the splits."""

    gap: float | None
    gap_p: float | None
    gain_gap_p: float | None
    warning: str | None


def two_proportion_p(p1: float, n1: int, p2: float, n2: int) -> float | None:
    """Two-sided p of a difference of two accuracies measured on n1 and n2 examples."""
    if n1 < 1 or n2 < 1:
        return None
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    if se == 0.0:
        return 0.0 if p1 != p2 else 1.0
    return float(2 * stats.norm.sf(abs(p1 - p2) / se))


def split_check(
    sin_val: Mapping[int, float] | None,
    sin_test: Mapping[int, float] | None,
    adv_val: Mapping[int, float] | None,
    adv_test: Mapping[int, float] | None,
    sizes: tuple[int, int],
    alpha: float,
) -> SplitCheck:
    """Does validation look like test for this attribute? `sizes`: the labelled
    validation and test examples; `alpha` is already corrected for the number of
    attributes checked."""
    if not sin_val or not sin_test:
        return SplitCheck(None, None, None, None)
    val, test = float(np.mean(list(sin_val.values()))), float(np.mean(list(sin_test.values())))
    gap_p = two_proportion_p(val, sizes[0], test, sizes[1])
    gain_gap_p = None
    if adv_val and adv_test:
        on_test = {s: adv_test[s] - sin_test[s] for s in adv_test if s in sin_test}
        on_val = {s: adv_val[s] - sin_val[s] for s in adv_val if s in sin_val}
        gain_gap_p = paired_gain(on_test, on_val, alpha).p
    reasons = []
    if gap_p is not None and gap_p < alpha:
        reasons.append(
            f"single-task val {val * 100:.1f}% vs test {test * 100:.1f}% (p={gap_p:.2g})"
        )
    if gain_gap_p is not None and gain_gap_p < alpha:
        reasons.append(f"the gain on test differs from the gain on val (p={gain_gap_p:.2g})")
    warning = None
    if reasons:
        warning = (
            "val and test disagree: "
            + "; ".join(reasons)
            + "; λ and the epoch chosen on val may not be best on test"
            " (use a val split distributed like test)"
        )
    return SplitCheck(val - test, gap_p, gain_gap_p, warning)


def corrected_alpha(alpha: float, attributes: Sequence[str]) -> float:
    """α for a check made once per attribute (Bonferroni: a warning is a claim about
    one attribute, and M of them are made)."""
    return alpha / max(1, len(attributes))
