"""CelebA, aligned and cropped faces, as distributed.

    celeba/img_align_celeba/000001.jpg ...   (218x178 JPEGs)
    celeba/list_attr_celeba.txt              count; the 40 attribute names; "000001.jpg -1  1 ..."
    celeba/list_eval_partition.txt           "000001.jpg 0" (0 train, 1 val, 2 test)

looked for in DIR/celeba (torchvision's base folder) and DIR. Attribute names
are taken from the file, values ±1 become 1/0. The split is the official
partition (162,770 / 19,867 / 19,962), which the AAL paper follows (§4.1).
torchvision's `CelebA` is not used: it also requires the identity, bounding-box
and landmark files and checks every file's MD5, refusing copies users have
re-saved (or line endings converted). One domain `celeba`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.errors import DataError
from .options import ReadOptions
from .pixels import decode_files
from .source import Source, find_dir, missing_layout

ATTR_FILE, PARTITION_FILE, IMAGE_DIR = (
    "list_attr_celeba.txt", "list_eval_partition.txt", "img_align_celeba"
)  # fmt: skip
LAYOUT = (
    f"{ATTR_FILE}, {PARTITION_FILE} and the JPEGs in {IMAGE_DIR}/ (CelebA's aligned release)"
    " in DIR/celeba or DIR"
)
_SPLITS = {"0": "train", "1": "val", "2": "test"}


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path} is missing; CelebA needs {LAYOUT}")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path} is not a text file ({exc})") from None


def read_attributes(path: Path) -> tuple[tuple[str, ...], list[str], np.ndarray]:
    """(attribute names, file names, 0/1 labels) of list_attr_celeba.txt."""
    lines = _lines(path)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DataError(f"{path} must start with the image count, then a line of attribute names")
    names = tuple(lines[1].split())
    rows = [line.split() for line in lines[2:] if line.strip()]
    if len(rows) != int(lines[0]):
        raise DataError(f"{path} announces {int(lines[0])} images but lists {len(rows)}")
    files, values = [], []
    for number, row in enumerate(rows, start=3):
        if len(row) != len(names) + 1 or not set(row[1:]) <= {"1", "-1"}:
            raise DataError(
                f"{path} line {number} must be a file name and {len(names)} values of 1 or -1"
            )
        files.append(row[0])
        values.append(row[1:])
    labels = (np.asarray(values, dtype=np.float32).reshape(len(rows), len(names)) > 0).astype(
        np.float32
    )
    return names, files, labels


def read_partition(path: Path, files: list[str]) -> np.ndarray:
    split_of: dict[str, str] = {}
    for number, line in enumerate(_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in _SPLITS:
            raise DataError(f"{path} line {number} must be a file name and 0, 1 or 2")
        split_of[parts[0]] = _SPLITS[parts[1]]
    missing = [f for f in files if f not in split_of]
    if missing:
        raise DataError(f"{path} has no partition for {missing[0]} (and {len(missing) - 1} more)")
    return np.asarray([split_of[f] for f in files], dtype="<U5")


def read_celeba(root: Path, options: ReadOptions, domain: str = "celeba") -> Source:
    folder = find_dir(root, ("celeba", ""), ATTR_FILE)
    if folder is None:
        raise missing_layout("CelebA", root, LAYOUT)
    names, files, labels = read_attributes(folder / ATTR_FILE)
    split = read_partition(folder / PARTITION_FILE, files)
    image_dir = folder / IMAGE_DIR
    if not image_dir.is_dir():
        raise DataError(f"{image_dir} is missing; CelebA needs {LAYOUT}")
    paths = [image_dir / f for f in files]  # a missing one fails when the cache stats it
    return Source(
        domain=domain,
        files=(folder / ATTR_FILE, folder / PARTITION_FILE, *paths),
        label_names=names,
        labels=labels,
        split=split,
        decode=lambda opts: decode_files(paths, opts),
    )
