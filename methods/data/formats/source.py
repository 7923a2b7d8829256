"""What a format reader hands back: the files it read, the label table, and a way
to decode the images (which the cache calls once per source and options).

Readers never decode images themselves when they are only listing a dataset:
`Source.decode` is what `formats.cache` runs, once, into a memory-mapped array.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.errors import DataError
from .options import ReadOptions

# Decoded images, in row order, already cropped/resized/converted as asked.
Decode = Callable[[ReadOptions], Iterator[np.ndarray]]


@dataclass(frozen=True, eq=False)
class Source:
    """One domain as found on disk: labels now, images on demand."""

    domain: str
    files: tuple[Path, ...]  # every file the images and labels come from (the fingerprint)
    label_names: tuple[str, ...]
    labels: np.ndarray  # float32 (N, M): class ids with -1 missing, or floats with NaN
    split: np.ndarray  # (N,) train / val / test
    decode: Decode

    def __len__(self) -> int:
        return len(self.labels)


def find_dir(root: Path, candidates: Sequence[str], marker: str) -> Path | None:
    """The first of root/candidate (in order) that holds `marker`; '' means root itself."""
    for candidate in candidates:
        folder = root / candidate if candidate else root
        if (folder / marker).exists():
            return folder
    return None


def missing_layout(name: str, root: Path, expected: str) -> DataError:
    return DataError(f"--data-root {root} holds no {name} data; expected {expected}")


def carve_val(labels: np.ndarray, is_train: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Split of a train/test release with `fraction` of the train rows moved to val
    (seeded), as the official releases have no validation set. Each class gives its
    share, rounded so that the total is round(fraction x train rows) (largest
    remainders round up): small datasets still get a val set."""
    split = np.where(is_train, "train", "test").astype("<U5")
    rng = np.random.default_rng(seed)
    train_rows = np.flatnonzero(is_train)
    classes, counts = np.unique(labels[train_rows], return_counts=True)
    share = fraction * counts
    n_val = np.floor(share).astype(int)
    short = round(fraction * len(train_rows)) - int(n_val.sum())
    n_val[np.argsort(-(share - n_val), kind="stable")[:short]] += 1
    for cls, k in zip(classes, n_val, strict=True):
        if k:
            members = train_rows[labels[train_rows] == cls]
            split[rng.permutation(members)[:k]] = "val"
    return split
