from __future__ import annotations

import numpy as np

from methods.data import load_dataset


def test_two_disjoint_datasets_each_labelled_for_one_task() -> None:
    d = load_dataset("digit_pair")
    a, b = d.domain("a"), d.domain("b")
    assert a.label_names == b.label_names == ("digit", "photo")
    assert np.all(a.column("photo") == -1) and set(np.unique(a.column("digit"))) == set(range(10))
    assert np.all(b.column("digit") == -1) and set(np.unique(b.column("photo"))) == {0, 1}
    assert len(a) + len(b) == 1797  # scikit-learn's digits, split between the two
    for domain in (a, b):
        assert {"train", "val", "test"} == set(domain.split.tolist())

    # a domain gap: plain digits are grey, blended ones carry the photos' colours
    def colour(x: np.ndarray) -> float:
        return float(np.abs(x[..., 0].astype(float) - x[..., 2].astype(float)).mean())

    assert colour(a.inputs) < 5 < 20 < colour(b.inputs)


def test_deterministic() -> None:
    first, second = load_dataset("digit_pair"), load_dataset("digit_pair")
    assert np.array_equal(first.domain("b").inputs, second.domain("b").inputs)
    assert first.fingerprint == second.fingerprint
