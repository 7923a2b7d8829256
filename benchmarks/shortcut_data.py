"""Shortcut data for the AAL benchmark: a hard target attribute and an easy
shortcut attribute that agree in train far more often than in test.

Drawn from a large `shapes` pool generated with every attribute independent
(correlation 0): each split takes, for every (target, shortcut) combination,
the number of images its agreement rate asks for, so the target and the
shortcut are balanced in every split and only their agreement differs. Two
unrelated attributes come along. Written as an .npz of the data contract
(inputs, labels, label_names, split), read by `auxsearch pairs --data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from methods.data.shapes import make_shapes


@dataclass(frozen=True)
class ShortcutDesign:
    target: str = "large"  # hard: the shape's size, ~64% single-task at 16 px
    shortcut: str = "dark_bg"  # easy: the background's shade, 100%
    unrelated: tuple[str, ...] = ("top", "striped")
    sizes: tuple[int, int, int] = (800, 400, 400)  # train, val, test
    agreement: tuple[float, float, float] = (0.9, 0.5, 0.5)  # target == shortcut share
    image_size: int = 16
    seed: int = 11

    @property
    def attributes(self) -> tuple[str, ...]:
        return (self.target, self.shortcut, *self.unrelated)


def _take(
    rng: np.random.Generator, pool: dict[tuple[int, int], list[int]], n: int, agree: float
) -> list[int]:
    """n pool indices: share `agree` with target == shortcut, both balanced."""
    same = round(n * agree / 2)
    differ = round(n * (1 - agree) / 2)
    out = []
    for (t, s), count in (((1, 1), same), ((0, 0), same), ((1, 0), differ), ((0, 1), differ)):
        cell = pool[(t, s)]
        if len(cell) < count:
            raise ValueError(f"shapes pool too small for the ({t}, {s}) cell; raise its n")
        out += [cell.pop() for _ in range(count)]
    rng.shuffle(out)
    return out


def write_shortcut_npz(path: str | Path, design: ShortcutDesign = ShortcutDesign()) -> Path:
    """Build the shortcut dataset and write it; returns its path."""
    n_pool = int(sum(design.sizes) * 2.4)
    domain = make_shapes(n=n_pool, image_size=design.image_size, seed=design.seed).domain()
    columns = [domain.column_index(a) for a in design.attributes]
    labels = domain.labels[:, columns].astype(np.int64)
    rng = np.random.default_rng(design.seed)
    order = rng.permutation(n_pool)
    pool: dict[tuple[int, int], list[int]] = {(t, s): [] for t in (0, 1) for s in (0, 1)}
    for i in order:
        pool[(int(labels[i, 0]), int(labels[i, 1]))].append(int(i))
    chosen, split = [], []
    for name, n, agree in zip(
        ("train", "val", "test"), design.sizes, design.agreement, strict=True
    ):
        picked = _take(rng, pool, n, agree)
        chosen += picked
        split += [name] * len(picked)
    path = Path(path)
    np.savez(
        path,
        inputs=domain.inputs[chosen],
        labels=labels[chosen],
        label_names=np.array(design.attributes),
        split=np.array(split),
    )
    return path
