"""The in-memory dataset every kernel reads: named domains, each with inputs,
a named label table (missing labels allowed) and train/val/test splits.

Inputs are kept compact, as they travel once through Ray's object store to
every trial: images as uint8 (N, H, W, C), feature vectors as float32 (N, D).
Kernels turn batches into float tensors themselves (`methods.training`).
Labels are float32 (N, M): class labels are non-negative integers with −1 for
a missing label; continuous labels use NaN for a missing value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.errors import DataError

SPLITS = ("train", "val", "test")


def label_name_problem(name: str) -> str | None:
    """Why `name` cannot be an attribute's name, or None. Names are typed in comma
    lists (`--attributes a,b`, `--set main=[a]`), so a comma would split one."""
    if not name.strip():
        return "is empty; give every label column a name"
    if "," in name:
        return "holds a comma, which --attributes and --set lists split on; rename it"
    if name != name.strip():
        return "starts or ends with a space; remove it"
    return None


@dataclass(frozen=True, eq=False)
class Domain:
    """One domain of a dataset (e.g. `celeba`, `mnist`, or the only one)."""

    name: str
    inputs: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    split: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.inputs)
        if self.inputs.dtype == np.uint8:
            if self.inputs.ndim != 4:
                raise DataError(
                    f"domain '{self.name}': uint8 images must be (N, H, W, C),"
                    f" got {self.inputs.shape}"
                )
        elif self.inputs.dtype != np.float32 or self.inputs.ndim != 2:
            raise DataError(
                f"domain '{self.name}': inputs must be uint8 (N, H, W, C) images or float32 (N, D)"
                f" vectors, got {self.inputs.dtype} {self.inputs.shape}"
            )
        if self.labels.shape != (n, len(self.label_names)):
            raise DataError(
                f"domain '{self.name}': labels have shape {self.labels.shape}, expected"
                f" ({n}, {len(self.label_names)}) for {n} inputs and {len(self.label_names)} names"
            )
        for label in self.label_names:
            problem = label_name_problem(label)
            if problem:
                raise DataError(f"domain '{self.name}': label name {label!r} {problem}")
        if len(set(self.label_names)) != len(self.label_names):
            raise DataError(f"domain '{self.name}': label names repeat: {list(self.label_names)}")
        if self.split.shape != (n,):
            raise DataError(f"domain '{self.name}': split must have one entry per input")
        bad = set(np.unique(self.split)) - set(SPLITS)
        if bad:
            raise DataError(
                f"domain '{self.name}': split values {sorted(bad)} are not allowed;"
                f" use {', '.join(SPLITS)}"
            )

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def is_image(self) -> bool:
        return self.inputs.dtype == np.uint8

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(C, H, W) for images, (D,) for feature vectors: the shape a backbone sees."""
        if self.is_image:
            _, h, w, c = self.inputs.shape
            return (c, h, w)
        return (self.inputs.shape[1],)

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split).astype(np.int64)

    def column_index(self, name: str) -> int:
        try:
            return self.label_names.index(name)
        except ValueError:
            raise DataError(
                f"unknown attribute '{name}' in domain '{self.name}'; available: "
                f"{', '.join(self.label_names)}"
            ) from None

    def column(self, name: str) -> np.ndarray:
        return self.labels[:, self.column_index(name)]

    def num_classes(self, name: str) -> int:
        """Classes of a class-label column (2 = binary); DataError for continuous labels."""
        col = self.column(name)
        known = col[np.isfinite(col) & (col >= 0)]
        if known.size == 0:
            raise DataError(f"attribute '{name}' of domain '{self.name}' has no labels at all")
        if not np.all(known == np.round(known)):
            raise DataError(
                f"attribute '{name}' of domain '{self.name}' holds continuous values;"
                " this method needs class labels (0, 1, ..., with -1 for missing)"
            )
        return max(2, int(known.max()) + 1)

    def binary_attributes(self) -> list[str]:
        """Names of the columns whose known values are all 0 or 1."""
        out = []
        for j, name in enumerate(self.label_names):
            col = self.labels[:, j]
            known = col[np.isfinite(col) & (col >= 0)]
            if known.size and np.all((known == 0) | (known == 1)):
                out.append(name)
        return out


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named set of domains plus a fingerprint that changes when the data does."""

    name: str
    domains: dict[str, Domain]
    fingerprint: str
    description: str = ""
    params: dict[str, object] = field(default_factory=dict)

    def domain(self, name: str = "") -> Domain:
        """The named domain, or the only one when `name` is empty."""
        if not name:
            if len(self.domains) == 1:
                return next(iter(self.domains.values()))
            raise DataError(
                f"dataset '{self.name}' has several domains ({', '.join(self.domains)});"
                " choose one with the config key 'domain'"
            )
        try:
            return self.domains[name]
        except KeyError:
            raise DataError(
                f"unknown domain '{name}' in dataset '{self.name}'; available: "
                f"{', '.join(self.domains)}"
            ) from None


def seeded_split(n: int, fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    """A deterministic random train/val/test assignment of n items."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_train = round(fractions[0] * n)
    n_val = round(fractions[1] * n)
    split = np.empty(n, dtype="<U5")
    split[order[:n_train]] = "train"
    split[order[n_train : n_train + n_val]] = "val"
    split[order[n_train + n_val :]] = "test"
    return split


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> np.ndarray:
    """`seeded_split` applied within each class, so every split keeps the class mix."""
    split = np.empty(len(labels), dtype="<U5")
    for k, cls in enumerate(np.unique(labels)):
        members = np.flatnonzero(labels == cls)
        split[members] = seeded_split(len(members), fractions, seed + k)
    return split


def source_target_grid(task: str) -> dict[str, object]:
    """`grid_defaults` of a dataset with a `source` and a `target` domain labelled
    with the same column: the target is trained and tested, the source is the
    task-relevant set."""
    return {"task": task, "relevant": f"source:{task}", "train": ["target"], "test": ["target"]}
