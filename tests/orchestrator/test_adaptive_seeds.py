"""The decisions of `--seeds auto`, on hand-made matrices whose answer is known,
and its predictive probability against an independent computation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from orchestrator.adaptive_seeds import (
    PRIOR_DF,
    AdaptiveSeeds,
    assess,
    cell_key,
    next_round,
    predict_at_max,
    run_rounds,
)
from orchestrator.errors import UserInputError
from orchestrator.pair_analysis import Values, choose_partners, holm

ATTRS = ["a", "b", "c"]
CFG = AdaptiveSeeds(min_seeds=2, max_seeds=5, alpha=0.05)


def _values(cells: dict[tuple[str, str], list[float]]) -> Values:
    """A symmetric matrix: a pair cell's seeds give both rows a value each."""
    out: Values = {}
    for (x, y), v in cells.items():
        out[(x, y)] = list(v)
    return out


def _seeds(values: Values) -> dict[tuple[str, ...], int]:
    return {cell_key(x, y): len(v) for (x, y), v in values.items()}


def test_a_clear_negative_partner_settles_and_matches_stage_2() -> None:
    values = _values({
        ("a", "a"): [0.90, 0.91, 0.90],
        ("a", "b"): [0.70, 0.71, 0.70],
        ("a", "c"): [0.89, 0.90, 0.91],
        ("b", "b"): [0.80, 0.81, 0.80],
        ("b", "a"): [0.80, 0.81, 0.81],
        ("b", "c"): [0.81, 0.80, 0.80],
        ("c", "c"): [0.70, 0.71, 0.70],
        ("c", "a"): [0.71, 0.70, 0.70],
        ("c", "b"): [0.70, 0.70, 0.71],
    })  # fmt: skip
    states = assess(values, ATTRS, _seeds(values), CFG)
    assert states["a"].settled and states["a"].decision == "negative"
    assert states["a"].partner == "b" and states["a"].p_holm is not None
    stage2 = choose_partners(values, ATTRS, alpha=CFG.alpha)
    assert stage2["a"].partners == ["b"] and stage2["a"].p_holm == pytest.approx(states["a"].p_holm)
    assert stage2["a"].significant
    assert state_p(states["a"]) >= CFG.certainty


def state_p(state: object) -> float:
    p = getattr(state, "p_negative", None)
    assert p is not None
    return float(p)


def test_no_partner_below_the_diagonal_settles_at_once() -> None:
    values = _values({("a", "a"): [0.5, 0.6], ("a", "b"): [0.7, 0.8], ("a", "c"): [0.65, 0.9]})
    state = assess(values, ATTRS, _seeds(values), CFG)["a"]
    assert state.settled and state.decision == "none" and state.why.startswith("not significant")
    assert state_p(state) <= 1 - CFG.certainty


def test_a_tiny_effect_in_large_noise_settles_as_none() -> None:
    # 0.1-point gap, ±10 points of seed noise: 5 seeds could never make it significant
    values = _values(
        {("a", "a"): [0.60, 0.80], ("a", "b"): [0.599, 0.799], ("a", "c"): [0.9, 0.95]}
    )
    state = assess(values, ATTRS, _seeds(values), CFG)["a"]
    assert state.settled and state.decision == "none" and state.why.startswith("not significant")
    assert state_p(state) <= 1 - CFG.certainty


def test_a_promising_but_unproven_effect_asks_for_seeds_of_what_it_depends_on() -> None:
    # a gap of ~3 points with ~1.5 points of noise: not yet significant at 2 seeds, but
    # it would be at 5; partner c is far above b, so c gets no seed
    values = _values({("a", "a"): [0.90, 0.92], ("a", "b"): [0.86, 0.89], ("a", "c"): [0.97, 0.98]})
    seeds = _seeds(values)
    state = assess(values, ATTRS, seeds, CFG)["a"]
    assert not state.settled and state.partner == "b"
    assert state.needs == {("a",), ("a", "b")}
    assert next_round({"a": state}, seeds, CFG) == {("a",), ("a", "b")}


def test_two_significant_partners_tied_settle_naming_the_tie() -> None:
    values = _values({
        ("a", "a"): [0.90, 0.91, 0.90, 0.91],
        ("a", "b"): [0.70, 0.71, 0.70, 0.72],
        ("a", "c"): [0.71, 0.70, 0.72, 0.71],
    })  # fmt: skip
    state = assess(values, ATTRS, _seeds(values), CFG)["a"]
    assert state.decision == "negative" and state.settled and state.partner == "b"
    assert state.why.endswith("the worst could also be c")


def test_a_worst_partner_tied_with_a_doubtful_one_asks_for_both() -> None:
    # b is significantly below the diagonal; c is as low on average but so noisy
    # that it is neither significant nor separated from b
    values = _values({
        ("a", "a"): [0.90, 0.91, 0.90, 0.91],
        ("a", "b"): [0.70, 0.71, 0.70, 0.72],
        ("a", "c"): [0.40, 0.99, 0.45, 0.99],
    })  # fmt: skip
    state = assess(values, ATTRS, _seeds(values), CFG)["a"]
    assert state.decision == "negative" and not state.settled
    assert state.needs == {("a",), ("a", "b"), ("a", "c")}


def test_cells_at_the_maximum_get_no_seed_and_a_shared_cell_counts_once() -> None:
    row = {"a": [0.90, 0.92], "b": [0.86, 0.89], "c": [0.97, 0.98]}  # b hurts, c does not
    values = _values({("a", "a"): row["a"], ("a", "b"): row["b"], ("a", "c"): row["c"]})
    values.update({("b", "b"): row["a"], ("b", "a"): row["b"], ("b", "c"): row["c"]})
    seeds = _seeds(values)
    states = assess(values, ATTRS, seeds, CFG)
    wanted = next_round(states, seeds, CFG)
    assert ("a", "b") in wanted and len([c for c in wanted if c == ("a", "b")]) == 1
    full = {**seeds, ("a", "b"): 5, ("a",): 5, ("b",): 5}
    assert next_round(states, full, CFG) == set()


def test_a_failed_diagonal_settles_as_failed() -> None:
    values = _values({("a", "b"): [0.8, 0.9], ("a", "c"): [0.8, 0.9]})
    state = assess(values, ATTRS, _seeds(values), CFG)["a"]
    assert state.settled and state.decision == "failed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_seeds": 1}, "--min-seeds 1 is not allowed"),
        ({"min_seeds": 3, "max_seeds": 2}, "--max-seeds 2 is below --min-seeds 3"),
        ({"certainty": 0.5}, "--certainty 0.5 is not allowed"),
        ({"certainty": 1.0}, "--certainty 1 is not allowed"),
    ],
)
def test_bad_bounds_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        AdaptiveSeeds(**kwargs)


@pytest.mark.parametrize("gap", [0.20, 0.0])
def test_a_row_with_every_cell_at_the_maximum_settles_on_stage_2s_verdict(gap: float) -> None:
    # nothing is left to draw: the probability is 0 or 1 and the verdict is stage 2's
    values = _values({
        ("a", "a"): [0.90, 0.91, 0.90, 0.92, 0.89],
        ("a", "b"): [0.90 - gap, 0.91 - gap, 0.92 - gap, 0.90 - gap, 0.91 - gap],
        ("a", "c"): [0.93, 0.91, 0.92, 0.94, 0.90],
    })  # fmt: skip
    state = assess(values, ATTRS, _seeds(values), CFG)["a"]
    stage2 = choose_partners(values, ATTRS, alpha=CFG.alpha)["a"]
    assert state.settled and state_p(state) == (1.0 if stage2.significant else 0.0)
    assert state.decision == ("negative" if stage2.significant else "none")
    assert (state.decision == "negative") == (gap > 0)


def test_two_seeds_that_agree_do_not_make_a_cell_certain() -> None:
    # a's two single-task seeds agree exactly and so do b's; alone they would predict
    # no noise at all (a certain gap); the row's other cell shows ±10 points between
    # seeds, and the pooled prior lends that to the quiet cells, so the row stays open
    values = _values({("a", "a"): [0.80, 0.80], ("a", "b"): [0.76, 0.76], ("a", "c"): [0.70, 0.95]})
    state = assess(values, ATTRS, _seeds(values), CFG)["a"]
    assert not state.settled and 0.1 < state_p(state) < 0.9


def test_the_same_seeds_give_the_same_decision() -> None:
    values = _values({("a", "a"): [0.90, 0.92], ("a", "b"): [0.86, 0.89], ("a", "c"): [0.85, 0.97]})
    first = assess(values, ATTRS, _seeds(values), CFG)["a"]
    again = assess(values, ATTRS, _seeds(values), CFG)["a"]
    assert first.p_negative == again.p_negative and first.needs == again.needs


def _predict_by_hand(
    cells: list[list[float]], max_seeds: int, alpha: float, draws: int, rng: np.random.Generator
) -> float:
    """The same predictive probability, the slow way: each draw completes every cell
    seed by seed and runs scipy's Welch test and pair_analysis.holm on it."""
    arrays = [np.asarray(c, float) for c in cells]
    pooled = sum(((c - c.mean()) ** 2).sum() for c in arrays) / sum(len(c) - 1 for c in arrays)
    hits = 0
    for _ in range(draws):
        completed = []
        for c in arrays:
            nu = len(c) - 1 + PRIOR_DF
            scale = (((c - c.mean()) ** 2).sum() + PRIOR_DF * pooled) / nu
            sigma2 = nu * scale / rng.chisquare(nu)
            mu = rng.normal(c.mean(), np.sqrt(sigma2 / len(c)))
            extra = rng.normal(mu, np.sqrt(sigma2), size=max_seeds - len(c))
            completed.append(np.concatenate([c, extra]))
        alone, partners = completed[0], completed[1:]
        p = {
            i: stats.ttest_ind(x, alone, equal_var=False, alternative="less").pvalue
            for i, x in enumerate(partners)
        }
        worst = min(range(len(partners)), key=lambda i: partners[i].mean())
        hits += holm(p)[worst] < alpha and partners[worst].mean() < alone.mean()
    return hits / draws


@pytest.mark.parametrize(
    "cells",
    [
        [[0.90, 0.92], [0.86, 0.89], [0.97, 0.98]],  # promising, unproven
        [[0.80, 0.83, 0.81], [0.78, 0.74], [0.77, 0.82, 0.79]],  # two rivals, unequal seeds
        [[0.60, 0.80], [0.599, 0.799], [0.9, 0.95]],  # hopeless
    ],
)
def test_predictive_probability_matches_a_seed_by_seed_simulation(cells: list[list[float]]) -> None:
    fast, _ = predict_at_max(cells[0], cells[1:], 5, 0.05, np.random.default_rng(1), 20000)
    slow = _predict_by_hand(cells, 5, 0.05, 3000, np.random.default_rng(2))
    assert fast == pytest.approx(slow, abs=0.04)


def test_once_the_race_is_run_the_doubt_left_gets_the_seeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a and a~b have all their seeds; a~c has two, and with them the row's verdict
    # is still in doubt (c may yet rank below b in Holm's order). With no rival in
    # the race (share threshold above 1), the seed goes to a~c, not nowhere.
    monkeypatch.setattr("orchestrator.adaptive_seeds.RIVAL_SHARE", 1.01)
    values = _values({
        ("a", "a"): [0.90, 0.91, 0.90, 0.92, 0.89],
        ("a", "b"): [0.88, 0.87, 0.89, 0.90, 0.86],
        ("a", "c"): [0.855, 0.915],
    })  # fmt: skip
    seeds = _seeds(values)
    state = assess(values, ATTRS, seeds, CFG)["a"]
    assert not state.settled and state.partner == "b" and state_p(state) < CFG.certainty
    assert next_round({"a": state}, seeds, CFG) == {("a", "c")}


def test_rounds_raise_only_the_cells_an_open_row_asks_for_and_end_settled_or_at_max() -> None:
    """run_rounds against a simulated matrix: a's partner b hurts by 3 points in
    noise of 2, c is harmless; every round's new seeds are exactly next_round's."""
    rng = np.random.default_rng(7)
    means = {("a",): 0.90, ("a", "b"): 0.87, ("a", "c"): 0.90, ("b",): 0.80, ("b", "c"): 0.80}
    means[("c",)] = 0.70
    drawn = {k: list(m + 0.02 * rng.standard_normal(5)) for k, m in means.items()}

    def play(_round: int, seeds: dict[tuple[str, ...], int]) -> Values:
        out: Values = {}
        for key, n in seeds.items():
            x, y = (key[0], key[0]) if len(key) == 1 else key
            out[(x, y)] = out[(y, x)] = drawn[key][:n]
        return out

    seeds = dict.fromkeys(means, CFG.min_seeds)
    history = []
    for round_no, rows, more in run_rounds(ATTRS, seeds, CFG, play):
        before = dict(seeds)
        history.append((round_no, rows, more, before))
    assert [h[0] for h in history] == list(range(1, len(history) + 1))
    for (_, rows, more, before), (_, _, _, after) in itertools.pairwise(history):
        assert more == next_round(rows, before, CFG)
        assert {k for k in after if after[k] != before[k]} == more  # one more seed each
        assert all(after[k] == before[k] + 1 for k in more)
    *_, (_, last, more, _) = history
    assert not more
    assert all(r.settled or seeds[(r.attribute,)] == CFG.max_seeds for r in last.values())
    assert last == assess(play(0, seeds), ATTRS, seeds, CFG)  # the last round is the answer
