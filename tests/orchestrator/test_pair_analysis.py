from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from orchestrator.cells import Cell, Outcome
from orchestrator.pair_analysis import (
    adversarial_values,
    choose_partners,
    holm,
    matrix,
    negative_transfer_p,
    pair_values,
    row_test,
    select_lambda,
    summary_table,
)
from orchestrator.report import format_summary
from orchestrator.results import outcome_rows


def _outcome(
    stage: str,
    tasks: tuple[str, ...],
    accs: dict[str, float],
    seed: int = 0,
    aux: tuple[str, ...] = (),
    lam: float | None = None,
) -> Outcome:
    method = {"single": "stl", "pair": "mtl", "adversarial": "aal", "null": "aal"}[stage]
    params: dict[str, object] = {"backbone": "small_cnn", "epochs": 2}
    if lam is not None:
        params["lam"] = lam
    cell = Cell(f"{stage}:{'+'.join(tasks)}:{lam}:{seed}", stage, method, params, seed, tasks, aux)
    metrics = {}
    for t, v in accs.items():
        metrics |= {f"val/acc/{t}": v, f"test/acc/{t}": v - 0.01, f"epoch/{t}": 2.0}
    return Outcome(cell, "ok", metrics, 1.0, "2026-01-01T00:00:00+00:00")


def _rows(*outcomes: Outcome) -> list[dict[str, object]]:
    return [r for o in outcomes for r in outcome_rows(o, search="pairs", dataset="d")]


def test_one_pair_run_fills_both_cells() -> None:
    rows = _rows(
        _outcome("single", ("a",), {"a": 0.9}),
        _outcome("single", ("b",), {"b": 0.7}),
        _outcome("pair", ("a", "b"), {"a": 0.85, "b": 0.75}),
    )
    values = pair_values(rows, "val")
    m = matrix(values, ["a", "b"])
    assert m.loc["a", "a"] == 0.9 and m.loc["b", "b"] == 0.7
    assert m.loc["a", "b"] == 0.85 and m.loc["b", "a"] == 0.75
    test = matrix(pair_values(rows, "test"), ["a", "b"])
    assert test.loc["a", "b"] == pytest.approx(0.84)


def test_paper_example_a3() -> None:
    """Appendix A.3's three-attribute example gives its stated partners."""
    v = {
        ("A1", "A1"): [0.9],
        ("A1", "A2"): [0.8],
        ("A1", "A3"): [0.9],
        ("A2", "A2"): [0.7],
        ("A2", "A1"): [0.8],
        ("A2", "A3"): [0.6],
        ("A3", "A3"): [0.8],
        ("A3", "A1"): [0.7],
        ("A3", "A2"): [0.75],
    }
    p = choose_partners(v, ["A1", "A2", "A3"])
    assert [p[a].partners for a in ("A1", "A2", "A3")] == [["A2"], ["A3"], ["A1"]]


def test_ties_go_to_the_earlier_attribute_and_no_negative_partner_is_skipped() -> None:
    v = {
        ("a", "a"): [0.9],
        ("a", "b"): [0.8],
        ("a", "c"): [0.8],
        ("b", "b"): [0.7],
        ("b", "a"): [0.7],
        ("b", "c"): [0.75],
        ("c", "c"): [0.6],
        ("c", "a"): [0.6],
        ("c", "b"): [0.65],
    }
    p = choose_partners(v, ["a", "b", "c"])
    assert p["a"].partners == ["b"]  # tie between b and c at 0.8
    assert p["b"].partners == [] and p["b"].reason == "no negative transfer"  # equal is not below
    assert p["c"].partners == []
    p = choose_partners(v, ["a", "c", "b"])
    assert p["a"].partners == ["c"]  # order of the attribute list breaks the tie


def test_all_mode_keeps_every_negative_partner_worst_first() -> None:
    v = {("a", "a"): [0.9], ("a", "b"): [0.85], ("a", "c"): [0.8], ("a", "d"): [0.95]}
    p = choose_partners(v, ["a", "b", "c", "d"], mode="all")
    assert p["a"].partners == ["c", "b"]


def test_missing_single_task_run_means_no_partner() -> None:
    p = choose_partners({("a", "b"): [0.5], ("b", "b"): [0.9], ("b", "a"): [0.8]}, ["a", "b"])
    assert p["a"].partners == [] and "single-task run failed" in p["a"].reason
    assert p["b"].partners == ["a"]


def test_significance_is_a_one_sided_welch_test() -> None:
    with_b, alone = [0.80, 0.82, 0.81], [0.85, 0.86, 0.84]
    # Welch's t computed by hand, p from the t distribution with Welch–Satterthwaite df
    m1, m2 = np.mean(with_b), np.mean(alone)
    v1, v2 = np.var(with_b, ddof=1) / 3, np.var(alone, ddof=1) / 3
    t = (m1 - m2) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / 2 + v2**2 / 2)
    assert negative_transfer_p(with_b, alone) == pytest.approx(stats.t.cdf(t, df))
    assert negative_transfer_p([0.8], [0.9]) is None
    assert negative_transfer_p([0.8, 0.8], [0.9, 0.9]) == 0.0


def test_noise_sized_drop_is_not_significant_and_can_be_required() -> None:
    noisy = {
        ("a", "a"): [0.90, 0.86, 0.88],
        ("a", "b"): [0.87, 0.89, 0.85],
        ("b", "b"): [0.70, 0.71, 0.69],
        ("b", "a"): [0.60, 0.61, 0.59],
    }
    p = choose_partners(noisy, ["a", "b"])
    assert p["a"].partners == ["b"] and p["a"].significant is False
    assert p["b"].partners == ["a"] and p["b"].significant is True
    strict = choose_partners(noisy, ["a", "b"], require_significant=True)
    assert strict["a"].partners == [] and "seed noise" in strict["a"].reason
    assert strict["b"].partners == ["a"]


def test_lambda_selected_on_validation_ties_to_smaller() -> None:
    val = {("a", 0.1): [0.9, 0.92], ("a", 0.5): [0.91, 0.91], ("a", 1.0): [0.8, 0.8]}
    assert select_lambda(val, "a") == 0.1
    assert select_lambda({("a", 0.3): [0.5]}, "b") is None


def test_summary_agrees_with_the_matrix_and_the_adversarial_runs() -> None:
    rows = _rows(
        _outcome("single", ("a",), {"a": 0.90}),
        _outcome("single", ("b",), {"b": 0.80}),
        _outcome("pair", ("a", "b"), {"a": 0.85, "b": 0.82}),
        _outcome("adversarial", ("a",), {"a": 0.91}, aux=("b",), lam=0.1),
        _outcome("adversarial", ("a",), {"a": 0.93}, aux=("b",), lam=0.5),
    )
    val, test = pair_values(rows, "val"), pair_values(rows, "test")
    partners = choose_partners(val, ["a", "b"])
    summary = summary_table(
        ["a", "b"],
        partners,
        val,
        test,
        adversarial_values(rows, "val"),
        adversarial_values(rows, "test"),
    )
    a = summary.set_index("attribute").loc["a"]
    assert a["neg_partner"] == "b" and a["lambda"] == 0.5
    assert (a["sin"], a["mul"], a["adv"]) == (0.90, 0.85, 0.93)
    assert a["mul_minus_sin"] == pytest.approx(-0.05)
    assert a["adv_minus_sin"] == pytest.approx(0.03)
    assert a["adv_minus_mul"] == pytest.approx(0.08)
    assert a["adv_test"] == pytest.approx(0.92)  # test of the λ picked on val
    b = summary.set_index("attribute").loc["b"]
    assert b["note"] == "no negative transfer"
    assert b["adv"] is None or math.isnan(b["adv"])
    assert json.loads(rows[-1]["params"])["lam"] == 0.5


def test_holm_adjusts_each_p_value_for_the_family() -> None:
    raw = {"b": 0.01, "c": 0.04, "d": 0.03, "e": 0.5}
    # by the definition: sorted p_(1) ≤ … ≤ p_(m), adjusted p_(i) = max_{j≤i} (m−j+1) p_(j)
    ordered = sorted(raw.items(), key=lambda kv: kv[1])
    expected, running = {}, 0.0
    for i, (k, v) in enumerate(ordered):
        running = max(running, min(1.0, (len(raw) - i) * v))
        expected[k] = running
    assert holm(raw) == pytest.approx(expected)
    assert holm(raw) == pytest.approx({"b": 0.04, "d": 0.09, "c": 0.09, "e": 0.5})


def test_the_worst_partner_is_tested_against_the_selection() -> None:
    """Row a's lowest of four partners looks significant alone (p ≈ 0.02) but not once
    the test accounts for choosing the lowest of four; a clear drop stays significant."""
    alone = [0.900, 0.905, 0.895]
    values = {("a", "a"): alone}
    values[("a", "b")] = [0.890, 0.884, 0.887]
    for other in ("c", "d", "e"):
        values[("a", other)] = [0.899, 0.902, 0.896]
    for b in ("b", "c", "d", "e"):
        values[(b, b)] = [0.8, 0.81, 0.79]
    raw = negative_transfer_p(values[("a", "b")], alone)
    assert raw is not None and raw < 0.05
    verdict = choose_partners(values, ["a", "b", "c", "d", "e"])["a"]
    assert verdict.partners == ["b"] and verdict.p_value == pytest.approx(raw)
    assert verdict.p_holm is not None and verdict.p_holm >= 0.05 > raw
    assert verdict.significant is False
    values[("a", "b")] = [0.80, 0.81, 0.79]  # ten points below: significant after correction
    assert choose_partners(values, ["a", "b", "c", "d", "e"])["a"].significant is True


def test_summary_leads_with_test_and_reports_the_null_control() -> None:
    rows = _rows(
        _outcome("single", ("a",), {"a": 0.90}),
        _outcome("single", ("b",), {"b": 0.80}),
        _outcome("pair", ("a", "b"), {"a": 0.85, "b": 0.82}),
        _outcome("adversarial", ("a",), {"a": 0.93}, aux=("b",), lam=0.5),
        _outcome("null", ("a",), {"a": 0.92}, aux=("b",), lam=0.1),
        _outcome("null", ("a",), {"a": 0.91}, aux=("b",), lam=0.5),
    )
    val, test = pair_values(rows, "val"), pair_values(rows, "test")
    summary = summary_table(
        ["a", "b"],
        choose_partners(val, ["a", "b"]),
        val,
        test,
        adversarial_values(rows, "val"),
        adversarial_values(rows, "test"),
        adversarial_values(rows, "val", stage="null"),
        adversarial_values(rows, "test", stage="null"),
    )
    assert list(summary.columns[:6]) == [
        "attribute", "neg_partner", "lambda", "sin_test", "mul_test", "adv_test"
    ]  # fmt: skip
    a = summary.set_index("attribute").loc["a"]
    assert a["null_lambda"] == 0.1 and a["null"] == 0.92  # its own λ, chosen on val
    assert a["null_test"] == pytest.approx(0.91)
    assert a["null_minus_sin_test"] == pytest.approx(0.91 - 0.89)
    assert a["mul_minus_sin_test"] == pytest.approx(-0.05)
    text = format_summary(summary)
    header = text.splitlines()[0].split()
    assert header.index("sin") < header.index("val") and "null-sin" in header


def test_row_test_ranks_partners_ties_to_the_earlier_and_tests_each_against_the_diagonal() -> None:
    values = {
        ("a", "a"): [0.90, 0.92],
        ("a", "c"): [0.80, 0.82],  # tied with b on the mean: b, the earlier, ranks first
        ("a", "b"): [0.79, 0.83],
        ("a", "d"): [0.95],  # one seed: ranked by its mean, not tested
    }
    test = row_test(values, ["a", "b", "c", "d"], "a")
    assert test is not None
    assert [b for b, _ in test.ranked] == ["b", "c", "d"] and test.worst == "b"
    assert test.alone == pytest.approx(0.91) and test.worst_mean == pytest.approx(0.81)
    for b in ("b", "c"):
        direct = stats.ttest_ind(values[("a", b)], values[("a", "a")], equal_var=False)
        assert test.p_raw[b] == pytest.approx(direct.pvalue / 2)  # one-sided, mean below
    assert "d" not in test.p_raw
    assert test.p_holm == holm(test.p_raw)
    assert row_test({("a", "b"): [0.8, 0.8]}, ["a", "b"], "a") is None  # no diagonal
    assert row_test({("a", "a"): [0.9, 0.9]}, ["a", "b"], "a") is None  # no pair finished
