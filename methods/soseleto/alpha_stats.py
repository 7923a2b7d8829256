"""What SOSELETO's source weights α say about label noise, where the clean
labels are known (the paper's §4.1 count and Figure 2).

- `accounted(alpha, noisy, threshold)`: clean samples kept (α ≥ threshold) plus
  noisy samples dropped (α < threshold), over all: §4.1's "correctly accounts
  for 492 out of 500 points" at threshold 0.1;
- `noise_curve(alpha, noisy)`: Figure 2, the effective noise level of the
  source when only the samples with the largest α are kept, for kept fractions
  5%, 10%, …, 100% (ties in α broken by sample order, so the curve is
  deterministic).
"""

from __future__ import annotations

import math

import numpy as np

KEPT_FRACTIONS = tuple(round(0.05 * k, 2) for k in range(1, 21))


def accounted(alpha: np.ndarray, noisy: np.ndarray, threshold: float) -> float:
    """Share of samples on the right side of the threshold (clean above, noisy below)."""
    if len(alpha) == 0:
        return float("nan")
    kept = alpha >= threshold
    return float(np.mean(np.where(noisy, ~kept, kept)))


def group_means(alpha: np.ndarray, noisy: np.ndarray) -> dict[str, float]:
    """Mean α of the clean and of the noisy samples; an empty group (a transfer
    source with its true labels, say) is left out rather than reported as NaN."""
    out = {}
    for name, mask in (("alpha_clean", ~noisy), ("alpha_noisy", noisy)):
        if mask.any():
            out[name] = float(alpha[mask].mean())
    return out


def noise_curve(alpha: np.ndarray, noisy: np.ndarray) -> dict[str, np.ndarray]:
    """Columns kept_fraction, kept, min_alpha, effective_noise (Figure 2 as a table)."""
    order = np.argsort(-alpha, kind="stable")
    noisy_sorted = noisy[order].astype(np.float64)
    cumulative = np.cumsum(noisy_sorted)
    rows: dict[str, list[float]] = {
        "kept_fraction": [],
        "kept": [],
        "min_alpha": [],
        "effective_noise": [],
    }
    for fraction in KEPT_FRACTIONS:
        kept = max(1, math.ceil(fraction * len(alpha) - 1e-9))
        rows["kept_fraction"].append(fraction)
        rows["kept"].append(kept)
        rows["min_alpha"].append(float(alpha[order[kept - 1]]))
        rows["effective_noise"].append(float(cumulative[kept - 1] / kept))
    return {
        "kept_fraction": np.array(rows["kept_fraction"]),
        "kept": np.array(rows["kept"], dtype=np.int64),
        "min_alpha": np.array(rows["min_alpha"]),
        "effective_noise": np.array(rows["effective_noise"]),
    }
