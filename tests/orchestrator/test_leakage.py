"""The adversary's leakage per λ and epoch (leakage.py): chance bands from the
split's class shares, far-from-chance verdicts in both directions, curves."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from methods.data.dataset import Domain
from orchestrator.cells import Cell, Outcome
from orchestrator.curves import curve_rows
from orchestrator.leakage import ChanceBand, chance_bands, leakage_frames, leakage_metrics, verdict
from orchestrator.results import outcome_rows


def test_the_chance_band_spans_the_class_shares_of_each_split() -> None:
    labels = np.zeros((10, 2), np.float32)
    labels[:, 1] = [1, 1, 1, 0, -1, 1, 0, 1, 0, 0]
    split = np.array(["train"] * 4 + ["val"] * 3 + ["test"] * 3)
    domain = Domain("d", np.zeros((10, 3), np.float32), labels, ("a", "b"), split)
    bands = chance_bands(domain, ["b"])
    assert bands[("b", "val")] == ChanceBand(0.5, 0.5, 2)  # the missing label is no example
    assert bands[("b", "test")].low == pytest.approx(1 / 3)
    assert bands[("b", "test")].high == pytest.approx(2 / 3) and bands[("b", "test")].n == 3


def test_departure_and_margin() -> None:
    band = ChanceBand(0.4, 0.6, 400)
    assert band.departure(0.5) == 0.0
    assert band.departure(0.1) == pytest.approx(-0.3)
    assert band.departure(0.9) == pytest.approx(0.3)
    z = stats.norm.ppf(0.975)
    assert band.margin(0.9, 0.05) == pytest.approx(z * math.sqrt(0.6 * 0.4 / 400))


def test_verdicts_in_both_directions() -> None:
    assert verdict([0.0, 0.01, -0.01], 0.05) == "chance"
    assert verdict([0.3, 0.4, 0.2], 0.05) == "reads"
    assert verdict([-0.4, -0.5, -0.45], 0.05) == "inverted"
    assert verdict([0.5, -0.5, 0.4], 0.05) == "mixed"  # the 0%/100% seeds


def test_aal_declares_its_leakage_metrics() -> None:
    assert leakage_metrics("aal") == ["adv_acc", "probe_acc"]
    assert leakage_metrics("stl") == []


def _aal_outcome(lam: float, seed: int, adv_by_epoch: list[float]) -> Outcome:
    cell = Cell(
        f"adversarial:a:b:{lam}:{seed}",
        "adversarial",
        "aal",
        {"lam": lam, "epochs": len(adv_by_epoch)},
        seed,
        ("a",),
        ("b",),
    )
    last = len(adv_by_epoch)
    metrics = {"val/acc/a": 0.8, "test/acc/a": 0.8, "epoch/a": float(last)}
    for split in ("val", "test"):
        metrics[f"{split}/adv_acc/b"] = adv_by_epoch[-1]
        for e, v in enumerate(adv_by_epoch, 1):
            metrics[f"curve/{e}/{split}/adv_acc/b"] = v
    return Outcome(cell, "ok", metrics, 1.0, "2026-01-01T00:00:00+00:00")


def test_leakage_per_lambda_and_epoch_from_the_results_and_curves() -> None:
    outcomes = [
        _aal_outcome(0.1, 0, [0.5, 0.52]),
        _aal_outcome(0.1, 1, [0.55, 0.49]),
        _aal_outcome(1.0, 0, [0.3, 0.0]),  # reversal's inverted adversary
        _aal_outcome(1.0, 1, [0.2, 0.01]),
    ]
    results = [r for o in outcomes for r in outcome_rows(o, search="pairs", dataset="d")]
    curves = [r for o in outcomes for r in curve_rows(o, search="pairs")]
    assert {r["epoch"] for r in curves} == {1, 2}
    assert json.loads(results[0]["params"])["lam"] == 0.1
    bands = {("b", s): ChanceBand(0.45, 0.55, 400) for s in ("val", "test")}
    ids = {o.cell.id for o in outcomes}
    selected, per_epoch = leakage_frames(
        results, curves, ids=ids, sweep="lam", metrics=["adv_acc"], bands=bands
    )
    by = {(r["lambda"], r["split"]): r for r in selected.to_dict("records")}
    assert by[(0.1, "test")]["verdict"] == "chance"
    inverted = by[(1.0, "test")]
    assert inverted["verdict"] == "inverted"
    assert inverted["mean"] == pytest.approx(0.005)
    assert inverted["departure"] == pytest.approx(0.005 - 0.45)
    assert inverted["worst_epoch"] == 2 and inverted["seeds"] == 2
    assert len(per_epoch) == 2 * 2 * 2  # λ × split × epoch
    epoch1 = per_epoch[(per_epoch["lambda"] == 1.0) & (per_epoch["epoch"] == 1)].iloc[0]
    assert epoch1["mean"] == pytest.approx(0.25) and bool(epoch1["far"])
    assert selected["partner"].unique().tolist() == ["b"]
    # cells outside `ids` (not selected among) are left out
    none, _ = leakage_frames(
        results, curves, ids=set(), sweep="lam", metrics=["adv_acc"], bands=bands
    )
    assert none.empty
