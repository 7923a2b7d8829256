"""Datasets: built-in (generated or shipped with scikit-learn, never downloaded),
real ones read from a local folder (`formats`: CelebA, MNIST, SVHN, CIFAR-10,
MNIST-M, image folder + CSV) and bring-your-own `.npz`.
`load_dataset("shapes", {"n": 2000})`, `load_from_disk("celeba", DIR)` or
`load_npz("my.npz")`; each returns a `Dataset` of named domains.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..core.errors import DataError
from .dataset import SPLITS, Dataset, Domain, seeded_split, stratified_split
from .digit_domains import make_digit_domains
from .digit_pair import make_digit_pair
from .digit_transfer import make_digit_transfer
from .digits import make_digits
from .formats import FORMATS, load_from_disk
from .noisy_digits import make_noisy_digits
from .noisy_plane import make_noisy_plane
from .noisy_sets import make_noisy_sets
from .npz import load_npz
from .shapes import ATTRIBUTES as SHAPES_ATTRIBUTES
from .shapes import make_shapes

BUILTIN_DATASETS: dict[str, Callable[..., Dataset]] = {
    "digit_domains": make_digit_domains,
    "digit_pair": make_digit_pair,
    "digit_transfer": make_digit_transfer,
    "digits": make_digits,
    "noisy_digits": make_noisy_digits,
    "noisy_plane": make_noisy_plane,
    "noisy_sets": make_noisy_sets,
    "shapes": make_shapes,
}


def dataset_options(name: str) -> dict[str, Any]:
    """The options a built-in dataset accepts, with their defaults."""
    fn = _builtin(name)
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.default is not inspect.Parameter.empty
    }


def load_dataset(name: str, options: Mapping[str, Any] | None = None) -> Dataset:
    """Build a built-in dataset; unknown names and options fail listing the valid ones."""
    fn = _builtin(name)
    options = dict(options or {})
    allowed = dataset_options(name)
    for key, value in options.items():
        if key not in allowed:
            valid = ", ".join(allowed) or "none"
            raise DataError(f"dataset '{name}' has no option '{key}'; its options: {valid}")
        default = allowed[key]
        if isinstance(default, int) and not isinstance(default, bool):
            if not isinstance(value, int) or isinstance(value, bool):
                raise DataError(f"dataset '{name}': option {key}={value!r} must be an integer")
        elif isinstance(default, float):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise DataError(f"dataset '{name}': option {key}={value!r} must be a number")
            options[key] = float(value)
    return fn(**options)


def _builtin(name: str) -> Callable[..., Dataset]:
    try:
        return BUILTIN_DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown dataset '{name}'; built-in datasets: {', '.join(sorted(BUILTIN_DATASETS))};"
            f" read from --data-root: {', '.join(sorted(FORMATS))} (or pass --data FILE.npz)"
        ) from None


__all__ = [
    "BUILTIN_DATASETS",
    "SHAPES_ATTRIBUTES",
    "SPLITS",
    "Dataset",
    "Domain",
    "dataset_options",
    "load_dataset",
    "load_from_disk",
    "load_npz",
    "make_digit_domains",
    "make_digit_pair",
    "make_digit_transfer",
    "make_digits",
    "make_noisy_digits",
    "make_noisy_plane",
    "make_noisy_sets",
    "make_shapes",
    "seeded_split",
    "stratified_split",
]
