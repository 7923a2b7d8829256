"""The decisions of `--seeds auto`, on hand-made matrices whose answer is known."""

from __future__ import annotations

import pytest

from orchestrator.adaptive_seeds import AdaptiveSeeds, assess, cell_key, next_round
from orchestrator.errors import UserInputError
from orchestrator.pair_analysis import Values, choose_partners

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


def test_no_partner_below_the_diagonal_settles_at_once() -> None:
    values = _values({("a", "a"): [0.5, 0.6], ("a", "b"): [0.7, 0.8], ("a", "c"): [0.65, 0.9]})
    state = assess(values, ATTRS, _seeds(values), CFG)["a"]
    assert state.settled and state.decision == "none" and "no partner below" in state.why


def test_a_tiny_effect_in_large_noise_is_futile() -> None:
    # 0.1-point gap, ±10 points of seed noise: 5 seeds could never make it significant
    values = _values(
        {("a", "a"): [0.60, 0.80], ("a", "b"): [0.599, 0.799], ("a", "c"): [0.9, 0.95]}
    )
    state = assess(values, ATTRS, _seeds(values), CFG)["a"]
    assert state.settled and state.decision == "none" and state.why.startswith("futile")


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
    assert "tied with c" in state.why


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
    ],
)
def test_bad_bounds_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        AdaptiveSeeds(**kwargs)
