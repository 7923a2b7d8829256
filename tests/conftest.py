"""Shared fixtures: tiny seeded data, an .npz writer, a local Ray cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from methods.core.examples import DIGIT_ROLES, TINY_DIGITS, TINY_TRAIN
from methods.data import Dataset, load_dataset

TINY_SHAPES = {"n": 120, "image_size": 16, "seed": 0, "correlation": 0.5}


@pytest.fixture(scope="session")
def tiny_shapes() -> Dataset:
    return load_dataset("shapes", TINY_SHAPES)


# Six domains (target, irrelevant, relevant, plain, coloured, blended), kept small.
@pytest.fixture(scope="session")
def tiny_digits() -> Dataset:
    return load_dataset("digit_domains", TINY_DIGITS)


def tiny_config_values(method: str, **extra: object) -> dict[str, object]:
    """A small valid config of any grid-capable method on `tiny_digits`, through the
    method's own `for_grid` hook."""
    from methods import get_method

    hook = get_method(method).config_cls.for_grid
    values = {**TINY_TRAIN, **hook(DIGIT_ROLES, "target", ["plain"])}
    fields = get_method(method).config_cls.__dataclass_fields__
    if "pretrain_epochs" in fields:
        values["pretrain_epochs"] = 1
    return {**values, **extra}


def write_npz(path: Path, n: int = 90, seed: int = 0, **overrides: object) -> Path:
    """A small valid bring-your-own file: 8×8 grey images and 3 binary labels.

    `a` is the brightness of the left half, `b` of the right half, `c` is noise;
    overrides replace or (with value None) drop arrays.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=(n, 3))
    images = rng.integers(0, 60, size=(n, 8, 8)).astype(np.uint8)
    images[:, :, :4] += (labels[:, :1, None] * 150).astype(np.uint8)
    images[:, :, 4:] += (labels[:, 1:2, None] * 150).astype(np.uint8)
    arrays: dict[str, object] = {
        "inputs": images,
        "labels": labels.astype(np.int64),
        "label_names": np.array(["a", "b", "c"]),
        "split": np.array(["train", "val", "test"])[np.arange(n) % 3],
    }
    for key, value in overrides.items():
        if value is None:
            arrays.pop(key, None)
        else:
            arrays[key] = value
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


@pytest.fixture
def npz_file(tmp_path: Path) -> Path:
    return write_npz(tmp_path / "mine.npz")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One real local Ray cluster (2 CPUs) shared by the integration tests."""
    from orchestrator.ray_session import ray_session

    os.environ.pop("RAY_ADDRESS", None)
    with ray_session(num_cpus=2):
        yield
