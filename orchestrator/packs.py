"""Which cells of a stage train together as one fused network (`--pack N`).

Cells share a pack when their methods say they may (`methods.core.packed.pack_key`:
linear heads on one backbone — the pair search's single, pair and λ runs — with
the same training settings and seed, on a backbone that fuses). Each group of such
cells is cut into the fewest packs of at most N, as even as possible (21 cells
in packs of 16: 11 and 10, not 16 and 5), so the packs of a stage finish
together. Every other cell is a pack of one, trained as without `--pack`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from methods import get_method
from methods.core.packed import pack_key

from .cells import Cell


def plan_packs(cells: Sequence[Cell], size: int) -> list[list[Cell]]:
    """`cells` as trials: lists of cells trained together, in the order first seen."""
    if size <= 1:
        return [[c] for c in cells]
    groups: dict[str, list[Cell]] = {}
    units: list[list[Cell]] = []
    for cell in cells:
        key = _key(cell)
        if key is None:
            units.append([cell])
        else:
            groups.setdefault(f"{cell.domain}|{key}", []).append(cell)
    for group in groups.values():
        count = math.ceil(len(group) / size)
        base, extra = divmod(len(group), count)
        start = 0
        for i in range(count):
            end = start + base + (1 if i < extra else 0)
            units.append(group[start:end])
            start = end
    return units


def _key(cell: Cell) -> str | None:
    if cell.seeds != 1:  # a sweep's several seeds in turn: one run, not a pack member
        return None
    config = get_method(cell.method).make_config(cell.params)
    return pack_key(config, cell.seed)
