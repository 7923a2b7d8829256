from __future__ import annotations

import numpy as np
import pytest

from methods.data import DataError, Dataset, load_dataset
from methods.data.digit_domains import PALETTE


def test_domains_shapes_and_labels(tiny_digits: Dataset) -> None:
    assert list(tiny_digits.domains) == [
        "target",
        "irrelevant",
        "relevant",
        "plain",
        "coloured",
        "blended",
    ]
    for domain in tiny_digits.domains.values():
        assert domain.inputs.shape[1:] == (32, 32, 3) and domain.inputs.dtype == np.uint8
        assert domain.label_names == ("digit", "bg")
        assert {"train", "val", "test"} <= set(domain.split.tolist())
    irrelevant = tiny_digits.domain("irrelevant")
    assert np.all(irrelevant.column("digit") == -1)  # labelled only by background colour
    assert set(np.unique(irrelevant.column("bg"))) == set(range(len(PALETTE)))
    for name in ("plain", "blended", "relevant"):
        assert np.all(tiny_digits.domain(name).column("bg") == -1)
    assert np.all(tiny_digits.domain("relevant").column("digit") >= 0)
    assert tiny_digits.domain("plain").inputs.mean() < tiny_digits.domain("coloured").inputs.mean()


def test_target_colour_follows_the_digit_with_the_chosen_bias() -> None:
    for bias in (0.0, 0.9, 1.0):
        t = load_dataset("digit_domains", {"bias": bias, "n_target": 1000}).domain("target")
        follows = np.mean(t.column("bg") == t.column("digit") % len(PALETTE))
        expected = bias + (1 - bias) / len(PALETTE)  # a random colour matches 1 time in K
        assert abs(follows - expected) < 0.04


def test_evaluation_domains_share_digits_and_splits_not_pixels(tiny_digits: Dataset) -> None:
    plain, coloured = tiny_digits.domain("plain"), tiny_digits.domain("coloured")
    assert np.array_equal(plain.column("digit"), coloured.column("digit"))
    assert np.array_equal(plain.split, coloured.split)
    assert not np.array_equal(plain.inputs, coloured.inputs)


def test_deterministic_and_validated() -> None:
    a = load_dataset("digit_domains", {"n_target": 60, "irrelevant_copies": 1})
    b = load_dataset("digit_domains", {"n_target": 60, "irrelevant_copies": 1})
    assert a.fingerprint == b.fingerprint
    assert np.array_equal(a.domain("blended").inputs, b.domain("blended").inputs)
    with pytest.raises(DataError, match="bias=2"):
        load_dataset("digit_domains", {"bias": 2})


def test_the_papers_mapping_puts_the_target_on_set_as_background() -> None:
    """PL §Datasets: the target is MNIST-like, set A (the fixed background) is drawn
    from the same kind of images, set B adds colour."""
    from methods.data.digit_domains import BLACK
    from methods.purified.kernel import fixed_and_random_rows

    options = {"n_target": 80, "irrelevant_copies": 2}
    paper = load_dataset("digit_domains", {**options, "mapping": "paper"})
    colour = load_dataset("digit_domains", options)
    target, irrelevant = paper.domain("target"), paper.domain("irrelevant")
    assert set(target.column("bg").tolist()) == {BLACK}
    bg = irrelevant.column("bg")
    value, rows_a, rows_b = fixed_and_random_rows(bg, irrelevant.indices("train"), -1)
    assert value == BLACK and 0.4 < len(rows_a) / len(rows_b) < 0.6
    # A's images look like the target's (dark), B's coloured half does not
    dark = irrelevant.inputs[rows_a].mean()
    assert abs(dark - target.inputs.mean()) < 5 < irrelevant.inputs[bg != BLACK].mean() - dark
    for name in ("plain", "coloured", "blended", "relevant"):  # the same digits, same splits
        digits = paper.domain(name).column("digit"), colour.domain(name).column("digit")
        np.testing.assert_array_equal(*digits)
        np.testing.assert_array_equal(paper.domain(name).split, colour.domain(name).split)
    with pytest.raises(DataError, match="mapping='mnist' is not allowed"):
        load_dataset("digit_domains", {"mapping": "mnist"})
