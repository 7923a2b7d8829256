from __future__ import annotations

import numpy as np
import pytest

from methods.data import (
    BUILTIN_DATASETS,
    SHAPES_ATTRIBUTES,
    DataError,
    load_dataset,
    make_shapes,
)


def test_deterministic_and_seeded() -> None:
    a = make_shapes(n=60, image_size=16, seed=1)
    b = make_shapes(n=60, image_size=16, seed=1)
    c = make_shapes(n=60, image_size=16, seed=2)
    da, db, dc = a.domain(), b.domain(), c.domain()
    assert np.array_equal(da.inputs, db.inputs) and np.array_equal(da.labels, db.labels)
    assert np.array_equal(da.split, db.split) and a.fingerprint == b.fingerprint
    assert not np.array_equal(da.inputs, dc.inputs) and a.fingerprint != c.fingerprint


def test_shape_and_attributes() -> None:
    d = make_shapes(n=300, image_size=24).domain()
    assert d.inputs.shape == (300, 24, 24, 3) and d.inputs.dtype == np.uint8
    assert len(SHAPES_ATTRIBUTES) >= 10
    assert d.binary_attributes() == list(SHAPES_ATTRIBUTES)
    assert set(np.unique(d.split)) == {"train", "val", "test"}
    # every attribute balanced around 50%
    assert np.all(np.abs(d.labels.mean(0) - 0.5) < 0.12)


def _agreement(d, a: str, b: str) -> float:
    return float((d.column(a) == d.column(b)).mean())


def test_correlation_is_controllable() -> None:
    """Gaussian copula: P(a = b) = 1/2 + arcsin(ρ)/π for the tied pairs."""
    rho = 0.8
    tied = make_shapes(n=3000, image_size=16, correlation=rho).domain()
    free = make_shapes(n=3000, image_size=16, correlation=0.0).domain()
    expected = 0.5 + np.arcsin(rho) / np.pi
    assert abs(_agreement(tied, "red", "large") - expected) < 0.03
    assert abs(_agreement(free, "red", "large") - 0.5) < 0.03
    assert abs(_agreement(tied, "red", "left") - 0.5) < 0.03  # an untied pair stays free
    anti = make_shapes(n=3000, image_size=16, correlation=-rho).domain()
    assert abs(_agreement(anti, "red", "large") - (1 - expected)) < 0.03


def test_attributes_change_the_pixels() -> None:
    """Each attribute is visible: images differ on average between its two values."""
    d = make_shapes(n=1500, image_size=24).domain()
    x = d.inputs.astype(np.float32)
    red = d.column("red") == 1
    dark = d.column("dark_bg") == 1
    assert x[red][..., 0].mean() - x[~red][..., 0].mean() > 5  # more red channel
    assert x[~dark].mean() - x[dark].mean() > 50  # darker background
    left = d.column("left") == 1
    # mean column profile of the object mass moves with `left`
    assert np.argmin(x[left].mean((0, 1, 3))[:12]) != np.argmin(x[~left].mean((0, 1, 3))[:12]) or (
        x[left][:, :, :12].std() != x[~left][:, :, :12].std()
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n": 5}, "n=5 is too small"),
        ({"image_size": 8}, "image_size=8"),
        ({"correlation": 1.5}, "correlation=1.5"),
        ({"colour": 1}, "has no option 'colour'"),
        ({"n": "many"}, "must be an integer"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset("shapes", options)


def test_unknown_dataset_lists_builtins() -> None:
    with pytest.raises(
        DataError,
        match=f"built-in datasets: {', '.join(sorted(BUILTIN_DATASETS))}; read from --data-root:",
    ):
        load_dataset("imagenet")


def test_digits_from_scikit_learn() -> None:
    d = load_dataset("digits").domain()
    assert d.inputs.shape == (1797, 8, 8, 1)
    assert d.num_classes("digit") == 10
    assert d.binary_attributes() == ["even", "ge5", "loop", "prime"]
    digit = d.column("digit")
    assert np.array_equal(d.column("even"), (digit % 2 == 0).astype(np.float32))
    # stratified: every digit appears in every split
    for split in ("train", "val", "test"):
        assert len(np.unique(digit[d.indices(split)])) == 10
