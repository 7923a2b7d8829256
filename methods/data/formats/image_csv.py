"""Any image folder with a CSV of labels: the format for data that has no reader.

    DIR/labels.csv      path,<label columns...>[,split][,domain]
    DIR/<path>          each row's image (PNG, JPEG, ... anything PIL opens)

`path` is relative to DIR (or absolute); option `path_column` renames it and
`csv` names another file. Every other column is a label, by the data contract:
whole numbers are class ids (0, 1, ...; empty or -1 = missing), anything else
numeric a continuous value (empty = missing, NaN). `split` holds train / val /
test (without it, a seeded 70/15/15 split per domain); `domain` names each
row's domain (without it, one domain `images`).
"""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import numpy as np

from ...core.errors import DataError
from ..dataset import SPLITS, seeded_split
from .options import ReadOptions
from .pixels import decode_files
from .source import Source

RESERVED = ("split", "domain")


def _number(text: str, column: str, line: int, path: Path) -> float:
    if not text.strip():
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise DataError(
            f"{path} line {line}: column '{column}' holds {text!r}; label columns must be"
            " numbers (class ids 0, 1, ... or continuous values), empty when missing"
        ) from None


def _rows(path: Path, path_column: str) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise DataError(
            f"{path} is missing; image_csv needs a CSV with a '{path_column}' column, label"
            " columns and optional split and domain columns in --data-root"
        )
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a readable CSV ({exc})") from None
    if path_column not in header:
        raise DataError(
            f"{path} has no '{path_column}' column (found: {', '.join(header) or 'nothing'});"
            " name the image column path, or pass path_column=NAME"
        )
    labels = [c for c in header if c not in (path_column, *RESERVED)]
    if not labels:
        raise DataError(f"{path} has no label columns besides {path_column}, split and domain")
    if not rows:
        raise DataError(f"{path} lists no images")
    return labels, rows


def read_image_csv(root: Path, options: ReadOptions) -> list[Source]:
    csv_path = root / options.csv
    names, rows = _rows(csv_path, options.path_column)
    values = np.array(
        [
            [_number(row[c] or "", c, line, csv_path) for c in names]
            for line, row in enumerate(rows, start=2)
        ],
        dtype=np.float64,
    ).reshape(len(rows), len(names))
    for j in range(len(names)):
        col = values[:, j]
        known = col[np.isfinite(col)]
        if known.size and np.all(known == np.round(known)):  # class ids: missing is -1
            col[~np.isfinite(col)] = -1
    paths = []
    for line, row in enumerate(rows, start=2):
        path = root / (row[options.path_column] or "")
        if not row[options.path_column] or not path.is_file():
            raise DataError(f"{csv_path} line {line}: image {path} does not exist")
        paths.append(path)
    has_split = "split" in rows[0]
    split = np.asarray([row.get("split") or "" for row in rows], dtype="<U5")
    if has_split:
        bad = sorted(set(split.tolist()) - set(SPLITS))
        if bad:
            raise DataError(
                f"{csv_path}: column split holds {bad[0]!r}; allowed values are train, val, test"
            )
    domains = np.asarray([row.get("domain") or "images" for row in rows])
    sources = []
    for domain in dict.fromkeys(domains.tolist()):  # in order of first appearance
        members = np.flatnonzero(domains == domain)
        member_paths = [paths[i] for i in members]
        sources.append(
            Source(
                domain=domain,
                files=(csv_path, *member_paths),
                label_names=tuple(names),
                labels=values[members].astype(np.float32),
                split=split[members]
                if has_split
                else seeded_split(len(members), (0.7, 0.15, 0.15), options.split_seed),
                decode=partial(decode_files, member_paths),
            )
        )
    return sources
