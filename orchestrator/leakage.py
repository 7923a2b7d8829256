"""What the main model still knows of its adversarial partner, per λ and epoch.

An adversarial method declares the partner metrics it reports as curves (AAL:
`adv_acc`, its adversary's accuracy on the partner; `probe_acc`, a linear
probe fitted afresh on the frozen features). A predictor that knows nothing of
partner b scores Σ_k q_k·p_k for its guess shares q and b's class shares p:
somewhere in the *chance band* [min_k p_k, max_k p_k] of that split. Outside
it the features carry b, in either direction: above, the partner reads b;
below, it reads b inverted (gradient reversal can satisfy its objective by
flipping the adversary rather than removing the information; AAL issue 27).

A value is *far* from chance when its departure from the band exceeds the
binomial margin z_{1−α/2}·sqrt(e(1−e)/n) at the nearer edge e of a split of n
labelled examples. Per (stage, attribute, partner, λ, metric, split) the
verdict is "chance" when the seeds' mean |departure| is within the margin,
else "reads", "inverted" or "mixed" (seeds on both sides) from the signs.

On a split where the main attribute predicts the partner (train's shortcut
correlation), a feature that carries a also reads b; the split where they are
independent (test, in a shortcut study) is the one that isolates the partner.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from methods import get_method
from methods.data.dataset import Domain

SPLITS = ("val", "test")


@dataclass(frozen=True)
class ChanceBand:
    """The accuracies a predictor blind to the partner can score on one split."""

    low: float
    high: float
    n: int  # labelled examples of the split

    def departure(self, value: float) -> float:
        """Signed distance outside the band; 0 inside."""
        return value - min(max(value, self.low), self.high)

    def margin(self, value: float, alpha: float) -> float:
        """The binomial margin at the band edge nearest `value`."""
        edge = self.low if value < self.low else self.high
        z = float(stats.norm.ppf(1 - alpha / 2))
        return z * math.sqrt(max(edge * (1 - edge), 1e-12) / max(self.n, 1))


def chance_bands(domain: Domain, partners: Iterable[str]) -> dict[tuple[str, str], ChanceBand]:
    """(partner, split) → its chance band from the split's class shares."""
    bands = {}
    for b in sorted(set(partners)):
        column = domain.column(b)
        for split in SPLITS:
            labels = column[domain.indices(split)]
            labels = labels[labels >= 0].astype(int)
            if labels.size == 0:
                continue
            shares = np.bincount(labels) / labels.size
            shares = shares[shares > 0]  # a class id no example uses is no class
            bands[(b, split)] = ChanceBand(
                float(shares.min()), float(shares.max()), int(labels.size)
            )
    return bands


def leakage_metrics(method: str) -> list[str]:
    """The partner metrics a method reports as curves: the ones leakage reads."""
    return [m.name for m in get_method(method).config_cls.metrics if m.partner and m.curve]


def verdict(departures: Sequence[float], margin: float) -> str:
    if not departures or float(np.mean(np.abs(departures))) <= margin:
        return "chance"
    if all(d >= 0 for d in departures):
        return "reads"
    if all(d <= 0 for d in departures):
        return "inverted"
    return "mixed"


def _lambdas(rows: Iterable[Mapping[str, Any]], sweep: str) -> dict[str, float]:
    """trial_id → its swept value, from the results rows' params."""
    out = {}
    for r in rows:
        if r["trial_id"] not in out and r.get("params"):
            value = json.loads(r["params"]).get(sweep)
            if value is not None:
                out[r["trial_id"]] = float(value)
    return out


_KEY = ["stage", "attribute", "partner", "lambda", "metric", "split"]
LEAKAGE_COLUMNS = [
    *_KEY,
    *("seeds", "mean", "std", "chance_low", "chance_high", "margin", "departure", "verdict"),
    *("worst_epoch", "worst_epoch_departure"),
]
CURVE_COLUMNS = [
    *_KEY,
    *("epoch", "seeds", "mean", "std", "chance_low", "chance_high", "departure", "far"),
]

Key = tuple[str, str, str, float, str, str]  # stage, attribute, partner, λ, metric, split

# (unit, description) of each column, in the tables' field metadata (tables.documented)
_KEY_DOCS = {
    "stage": ("", "adversarial, or null (the null control)"),
    "attribute": ("", "the main attribute a of the adversarial runs"),
    "partner": ("", "the partner task b the metric reads"),
    "lambda": ("", "the swept setting (λ) of the runs"),
    "metric": ("", "the partner metric: adv_acc (the adversary) or probe_acc (a linear probe)"),
    "split": ("", "val or test"),
    "seeds": ("seeds", "seeds whose runs the row averages"),
    "chance_low": ("fraction (0-1)", "the chance band's low end: b's rarest class share"),
    "chance_high": ("fraction (0-1)", "the chance band's high end: b's commonest class share"),
}
LEAKAGE_DOCS = {
    **_KEY_DOCS,
    "mean": ("fraction (0-1)", "the metric's mean over seeds, each at its selected epoch"),
    "std": ("fraction (0-1)", "its sample standard deviation (ddof=1) over seeds"),
    "margin": ("fraction (0-1)", "the binomial margin z(1-alpha/2)·sqrt(e(1-e)/n) at the edge"),
    "departure": (
        "difference of fractions (0.01 = 1 percentage point)",
        "mean over seeds of the signed distance outside the chance band (0 inside)",
    ),
    "verdict": ("", "chance, reads, inverted or mixed (seeds on both sides)"),
    "worst_epoch": ("epoch (1-based)", "the epoch whose mean is furthest from chance"),
    "worst_epoch_departure": (
        "difference of fractions (0.01 = 1 percentage point)",
        "the signed departure at worst_epoch",
    ),
}
CURVE_DOCS = {
    **_KEY_DOCS,
    "epoch": ("epoch (1-based)", "the epoch the row is about (every epoch)"),
    "mean": ("fraction (0-1)", "the metric's mean over seeds at `epoch`"),
    "std": ("fraction (0-1)", "its sample standard deviation (ddof=1) over seeds"),
    "departure": (
        "difference of fractions (0.01 = 1 percentage point)",
        "the signed distance of `mean` outside the chance band (0 inside)",
    ),
    "far": ("", "whether |departure| exceeds the binomial margin at alpha"),
}


def _grouped(
    rows: Iterable[Mapping[str, Any]],
    lambdas: Mapping[str, float],
    ids: set[str],
    metrics: Sequence[str],
    by_epoch: bool,
) -> dict[Any, list[float]]:
    out: dict[Any, list[float]] = {}
    for r in rows:
        if (
            r["trial_id"] not in ids
            or r["metric"] not in metrics
            or r["split"] not in SPLITS
            or r.get("status", "ok") != "ok"
            or r["trial_id"] not in lambdas
        ):
            continue
        key: Any = (
            r["stage"],
            r["main_task"],
            r["aux_task"],
            lambdas[r["trial_id"]],
            r["metric"],
            r["split"],
        )
        if by_epoch:
            key = (*key, int(r["epoch"]))
        out.setdefault(key, []).append(float(r["value"]))
    return out


def leakage_frames(
    results: Sequence[Mapping[str, Any]],
    curves: Sequence[Mapping[str, Any]],
    *,
    ids: set[str],
    sweep: str,
    metrics: Sequence[str],
    bands: Mapping[tuple[str, str], ChanceBand],
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(leakage at the selected epoch per λ, leakage per epoch) of the cells `ids`."""
    lambdas = _lambdas(results, sweep)
    per_epoch = []
    worst: dict[Key, tuple[int, float]] = {}  # key → the epoch furthest from chance
    for key, values in sorted(_grouped(curves, lambdas, ids, metrics, True).items()):
        *head, epoch = key
        band = bands.get((head[2], head[5]))
        if band is None:
            continue
        mean = float(np.mean(values))
        dep = band.departure(mean)
        far = abs(dep) > band.margin(mean, alpha)
        per_epoch.append(
            dict(
                zip(CURVE_COLUMNS, [*head, epoch, len(values), mean, _std(values)], strict=False),
                chance_low=band.low,
                chance_high=band.high,
                departure=dep,
                far=far,
            )
        )
        k = tuple(head)
        if k not in worst or abs(dep) > abs(worst[k][1]):
            worst[k] = (epoch, dep)
    selected = []
    for key, values in sorted(_grouped(results, lambdas, ids, metrics, False).items()):
        band = bands.get((key[2], key[5]))
        if band is None:
            continue
        mean = float(np.mean(values))
        margin = band.margin(mean, alpha)
        departures = [band.departure(v) for v in values]
        furthest = worst.get(key)
        selected.append(
            dict(
                zip(LEAKAGE_COLUMNS, [*key, len(values), mean, _std(values)], strict=False),
                chance_low=band.low,
                chance_high=band.high,
                margin=margin,
                departure=float(np.mean(departures)),
                verdict=verdict(departures, margin),
                worst_epoch=furthest[0] if furthest else None,
                worst_epoch_departure=furthest[1] if furthest else None,
            )
        )
    return (
        pd.DataFrame(selected, columns=LEAKAGE_COLUMNS),
        pd.DataFrame(per_epoch, columns=CURVE_COLUMNS),
    )


def _std(values: Sequence[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def flagged(leakage: pd.DataFrame, stage: str, attribute: str) -> list[str]:
    """Short labels (`λ=1 adv_acc test inverted`) of the far-from-chance rows."""
    sub = leakage[
        (leakage["stage"] == stage)
        & (leakage["attribute"] == attribute)
        & (leakage["verdict"] != "chance")
    ]
    return [
        f"λ={r['lambda']:g} {r['metric']} {r['split']} {r['verdict']}"
        for r in sub.to_dict("records")
    ]
