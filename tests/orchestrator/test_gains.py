"""The test-split verdict of the pair search (gains.py, stage3_report.py): paired
gains against scipy, ties among the partners, and val/test disagreement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from orchestrator.gains import paired_gain, split_check, two_proportion_p
from orchestrator.pair_analysis import (
    adversarial_values,
    choose_partners,
    pair_values,
    row_test,
    summary_table,
    tied_with_worst,
)
from orchestrator.report import format_gains
from orchestrator.stage3_report import EXTRA_COLUMNS, Stage3Runs, extend_summary, lambda_sweep_frame
from orchestrator.tables import summary_arrow
from tests.orchestrator.test_pair_analysis import _outcome, _rows


def test_paired_gain_is_scipys_paired_t_test_with_its_interval() -> None:
    x = {0: 0.71, 1: 0.74, 2: 0.69, 3: 0.75}
    y = {0: 0.70, 1: 0.70, 2: 0.68, 3: 0.71, 9: 0.2}  # seed 9 has no partner: left out
    g = paired_gain(x, y, alpha=0.05)
    xs, ys = [x[s] for s in range(4)], [y[s] for s in range(4)]
    assert g.seeds == 4
    assert g.gain == pytest.approx(np.mean(xs) - np.mean(ys))
    assert g.p == pytest.approx(stats.ttest_rel(xs, ys).pvalue)
    d = np.subtract(xs, ys)
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / math.sqrt(4)
    assert (g.low, g.high) == pytest.approx((d.mean() - half, d.mean() + half))


def test_paired_gain_with_one_seed_or_no_noise() -> None:
    one = paired_gain({0: 0.8}, {0: 0.7})
    assert one.gain == pytest.approx(0.1) and one.low is None and one.p is None
    same = paired_gain({0: 0.8, 1: 0.9}, {0: 0.7, 1: 0.8})
    assert same.p == 0.0 and same.low == pytest.approx(0.1) == same.high
    assert paired_gain({}, {0: 0.5}).gain is None


def test_two_proportion_p_against_the_normal_approximation() -> None:
    p = two_proportion_p(0.9, 400, 0.6, 400)
    se = math.sqrt(0.9 * 0.1 / 400 + 0.6 * 0.4 / 400)
    assert p == pytest.approx(2 * stats.norm.sf(0.3 / se))
    assert two_proportion_p(0.8, 400, 0.8, 400) == pytest.approx(1.0)


def test_a_val_split_unlike_test_is_flagged_and_a_like_one_is_not() -> None:
    sin_val, sin_test = {0: 0.95, 1: 0.94, 2: 0.96}, {0: 0.60, 1: 0.62, 2: 0.61}
    shifted = split_check(sin_val, sin_test, None, None, (400, 400), 0.05)
    assert shifted.warning and "val 95.0% vs test 61.0%" in shifted.warning
    assert shifted.gap == pytest.approx(0.34)
    alike = split_check(sin_val, {0: 0.95, 1: 0.93, 2: 0.95}, None, None, (400, 400), 0.05)
    assert alike.warning is None and alike.gap_p > 0.5
    # the adversarial gain shows on test, not on val: the selection is blind to it
    adv_val, adv_test = {0: 0.95, 1: 0.94, 2: 0.96}, {0: 0.65, 1: 0.66, 2: 0.655}
    blind = split_check(sin_val, sin_test, adv_val, adv_test, (4000, 4000), 0.05)
    assert blind.gain_gap_p is not None and blind.gain_gap_p < 0.05
    assert "gain on test differs from the gain on val" in blind.warning


def _search(adv: dict[int, float], null: dict[int, float], sin: dict[int, float]):
    """Three attributes, b clearly a's worst partner, c a near tie; stage 3 at two λ."""
    outcomes = []
    for s in range(3):
        outcomes += [
            _outcome("single", ("a",), {"a": sin[s]}, seed=s),
            _outcome("single", ("b",), {"b": 0.8}, seed=s),
            _outcome("single", ("c",), {"c": 0.8 + 0.01 * s}, seed=s),
            _outcome("pair", ("a", "b"), {"a": sin[s] - 0.05, "b": 0.8}, seed=s),
            _outcome("pair", ("a", "c"), {"a": sin[s] - 0.049 + 0.002 * s, "c": 0.8}, seed=s),
            _outcome("pair", ("b", "c"), {"b": 0.81, "c": 0.81}, seed=s),
        ]
        for lam, shift in ((0.1, 0.0), (1.0, -0.2)):
            outcomes.append(_outcome("adversarial", ("a",), {"a": adv[s] + shift}, s, ("b",), lam))
            outcomes.append(_outcome("null", ("a",), {"a": null[s] + shift}, s, ("b",), lam))
    return _rows(*outcomes)


def test_the_summary_tests_the_gain_on_test_paired_by_seed() -> None:
    sin = {0: 0.70, 1: 0.72, 2: 0.71}
    adv = {0: 0.74, 1: 0.75, 2: 0.73}
    null = {0: 0.70, 1: 0.73, 2: 0.71}
    rows = _search(adv, null, sin)
    ids1 = {r["trial_id"] for r in rows if r["stage"] in ("single", "pair")}
    adv_ids = {r["trial_id"] for r in rows if r["stage"] == "adversarial"}
    null_ids = {r["trial_id"] for r in rows if r["stage"] == "null"}
    attrs = ["a", "b", "c"]
    val, test = pair_values(rows, "val"), pair_values(rows, "test")
    partners = choose_partners(val, attrs)
    assert partners["a"].partners == ["b"]
    base = summary_table(
        attrs,
        partners,
        val,
        test,
        adversarial_values(rows, "val", adv_ids),
        adversarial_values(rows, "test", adv_ids),
        adversarial_values(rows, "val", null_ids, stage="null"),
        adversarial_values(rows, "test", null_ids, stage="null"),
    )
    runs = Stage3Runs(ids1, adv_ids, null_ids, "lam")
    summary = extend_summary(
        base,
        rows,
        partners,
        val,
        runs,
        sizes={a: (400, 400) for a in attrs},
        leakage=pd.DataFrame(),
        alpha=0.05,
    )
    assert list(summary.columns)[-len(EXTRA_COLUMNS) :] == EXTRA_COLUMNS
    a = summary.set_index("attribute").loc["a"]
    # _outcome puts test 1 point under val: the gains are the val ones, paired by seed
    expected = stats.ttest_rel([adv[s] for s in range(3)], [sin[s] for s in range(3)])
    assert a["adv_minus_sin_test"] == pytest.approx(0.03)
    assert a["adv_minus_sin_test_p"] == pytest.approx(expected.pvalue)
    assert a["adv_minus_sin_test_low"] < 0.03 < a["adv_minus_sin_test_high"]
    assert a["adv_minus_null_test"] == pytest.approx(np.mean([adv[s] - null[s] for s in range(3)]))
    assert a["gain_seeds"] == 3
    assert a["adv_test_std"] == pytest.approx(np.std([adv[s] - 0.01 for s in range(3)], ddof=1))
    # c is a near tie with b as a's worst partner; the note says so
    assert a["partner_tie"] and a["tied_partners"] == "c"
    assert "partner choice is a tie: b vs c" in a["note"]
    table = summary_arrow(summary)
    assert table.schema.metadata[b"auxsearch.schema"] == b"aal_summary/2"
    assert str(table.schema.field("partner_tie").type) == "bool"
    assert str(table.schema.field("gain_seeds").type) == "int64"
    text = format_gains(summary)
    assert text is not None and "+3.00 [" in text and "yes: c" in text
    sweep = lambda_sweep_frame(rows, partners, runs)
    chosen = sweep[sweep["chosen"]]
    assert set(zip(chosen["stage"], chosen["lambda"])) == {("adversarial", 0.1), ("null", 0.1)}
    assert len(sweep) == 4


def test_a_clear_worst_partner_is_no_tie() -> None:
    values = {
        ("a", "a"): [0.9, 0.91, 0.92],
        ("a", "b"): [0.80, 0.81, 0.80],
        ("a", "c"): [0.89, 0.90, 0.91],
        ("a", "d"): [0.805, 0.80, 0.81],
    }
    test = row_test(values, ["a", "b", "c", "d"], "a")
    assert test is not None and test.worst == "b"
    assert tied_with_worst(values, "a", test) == ["d"]
    values.pop(("a", "d"))
    test = row_test(values, ["a", "b", "c"], "a")
    assert tied_with_worst(values, "a", test) == []
    one_seed = {k: v[:1] for k, v in values.items()}
    assert tied_with_worst(one_seed, "a", row_test(one_seed, ["a", "b", "c"], "a")) is None


def test_an_older_summary_shows_no_gain_block() -> None:
    assert format_gains(pd.DataFrame({"attribute": ["a"], "neg_partner": ["b"]})) is None
