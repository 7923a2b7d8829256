"""MNIST-M, the PNG release (Ganin & Lempitsky's digits blended over photos).

    mnist_m/mnist_m_train/00000000.png ...   mnist_m/mnist_m_train_labels.txt
    mnist_m/mnist_m_test/00000000.png ...    mnist_m/mnist_m_test_labels.txt

labels files hold lines "00000000.png 5"; looked for in DIR/mnist_m and DIR.
One domain `mnist_m`, label `digit`, rows in the labels files' order; the
release's train/test, `val_fraction` of train (per class, seeded) as val.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.errors import DataError
from .options import ReadOptions
from .pixels import decode_files
from .source import Source, carve_val, find_dir, missing_layout

LAYOUT = (
    "mnist_m_train/ and mnist_m_test/ of PNGs with mnist_m_train_labels.txt and"
    " mnist_m_test_labels.txt (lines 'NAME.png DIGIT') in DIR/mnist_m or DIR"
)


def _listing(folder: Path, part: str) -> tuple[Path, list[Path], list[int]]:
    labels_file = folder / f"mnist_m_{part}_labels.txt"
    image_dir = folder / f"mnist_m_{part}"
    if not labels_file.is_file() or not image_dir.is_dir():
        missing = labels_file if not labels_file.is_file() else image_dir
        raise DataError(f"{missing} is missing; MNIST-M needs {LAYOUT}")
    paths, digits = [], []
    for number, line in enumerate(labels_file.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) > 9:
            raise DataError(f"{labels_file} line {number} must be 'NAME.png DIGIT', got {line!r}")
        paths.append(image_dir / parts[0])  # a missing one fails when the cache stats it
        digits.append(int(parts[1]))
    return labels_file, paths, digits


def read_mnist_m(root: Path, options: ReadOptions, domain: str = "mnist_m") -> Source:
    folder = find_dir(root, ("mnist_m", ""), "mnist_m_train_labels.txt")
    if folder is None:
        raise missing_layout("MNIST-M", root, LAYOUT)
    train_file, train_paths, train_digits = _listing(folder, "train")
    test_file, test_paths, test_digits = _listing(folder, "test")
    paths = train_paths + test_paths
    digits = np.asarray(train_digits + test_digits, dtype=np.int64)
    is_train = np.arange(len(digits)) < len(train_digits)
    return Source(
        domain=domain,
        files=(train_file, test_file, *paths),
        label_names=("digit",),
        labels=digits.astype(np.float32)[:, None],
        split=carve_val(digits, is_train, options.val_fraction, options.split_seed),
        decode=lambda opts: decode_files(paths, opts),
    )
