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
