"""SVHN, the cropped-digits release: MATLAB v5 files, as distributed.

    train_32x32.mat  test_32x32.mat  [extra_32x32.mat]
    X uint8 (32, 32, 3, N), y (N, 1) with the digit 0 stored as 10

looked for in DIR/svhn and DIR (torchvision's `SVHN(root)` reads DIR). Read with
scipy.io.loadmat as torchvision does, but without its MD5 check of the official
files, which refuses a re-saved copy. One domain `svhn`, label `digit` (10 → 0);
the official train/test, `val_fraction` of train as val, and `extra=true` adds
the 531k extra digits to train.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from ...core.errors import DataError
from .options import ReadOptions
from .pixels import fit_array
from .source import Source, carve_val, find_dir, missing_layout

LAYOUT = "train_32x32.mat and test_32x32.mat (SVHN's cropped digits) in DIR/svhn or DIR"


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path} is missing; SVHN needs {LAYOUT}")
    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    except (ValueError, OSError, TypeError, NotImplementedError) as exc:
        raise DataError(f"{path} is not a readable MATLAB v5 file ({exc})") from None
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(
            f"{path} does not hold SVHN's arrays: expected X of shape (32, 32, 3, N) and y (N, 1)"
        )
    digits = np.asarray(y).reshape(-1).astype(np.int64)
    if len(digits) != x.shape[3] or not np.isin(digits, np.arange(1, 11)).all():
        raise DataError(f"{path}: y must hold one label 1..10 (10 = digit 0) per image of X")
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2), dtype=np.uint8), digits % 10


def read_svhn(root: Path, options: ReadOptions, domain: str = "svhn") -> Source:
    folder = find_dir(root, ("svhn", ""), "train_32x32.mat")
    if folder is None:
        raise missing_layout("SVHN", root, LAYOUT)
    names = ["train_32x32.mat", *(["extra_32x32.mat"] if options.extra else []), "test_32x32.mat"]
    parts = [_read_mat(folder / name) for name in names]
    images = np.concatenate([p[0] for p in parts])
    digits = np.concatenate([p[1] for p in parts])
    is_train = np.arange(len(digits)) < len(digits) - len(parts[-1][1])
    return Source(
        domain=domain,
        files=tuple(folder / name for name in names),
        label_names=("digit",),
        labels=digits.astype(np.float32)[:, None],
        split=carve_val(digits, is_train, options.val_fraction, options.split_seed),
        decode=lambda opts: fit_array(images, opts, f"an SVHN image in {folder}"),
    )
