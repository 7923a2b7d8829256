"""Tiny seeded data for the contract's `tiny_example()` hooks, built in and cached
(the shared suite asks for a method's example many times).

`grid_example(cls)` builds a method's config through its own `for_grid` hook on
six small digit domains: target task `digit` trained on `target`, tested on
`plain` too, with the irrelevant set `irrelevant:bg` and the relevant set
`relevant:digit` for the methods that take them.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from ..data import Dataset, load_dataset
from .config import parse_config
from .contract import MethodConfig
from .roles import GridRoles

C = TypeVar("C", bound=MethodConfig)

# Settings that make one training take about a second on one CPU thread.
TINY_TRAIN: dict[str, Any] = {"backbone": "small_cnn", "epochs": 2, "lr": 1e-3, "batch_size": 32}
TINY_DIGITS: dict[str, Any] = {"n_target": 80, "irrelevant_copies": 1}
DIGIT_ROLES = GridRoles("digit", "irrelevant", "bg", "relevant", "digit")


@functools.cache
def tiny_dataset(name: str, **options: Any) -> Dataset:
    """A built-in dataset, generated once per process."""
    return load_dataset(name, options)


def grid_example(cls: type[C], **extra: Any) -> tuple[C, Dataset]:
    """`cls` on the tiny digit domains through its `for_grid` hook, plus `extra`."""
    values = {**TINY_TRAIN, **cls.for_grid(DIGIT_ROLES, "target", ["plain"]), **extra}
    return parse_config(cls, values), tiny_dataset("digit_domains", **TINY_DIGITS)
