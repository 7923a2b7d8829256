"""CIFAR-10, the "python version" archive as extracted.

    cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch, batches.meta

Python 2 pickles of dicts: `data` uint8 (N, 3072) as 1024 red, 1024 green and
1024 blue values (each 32x32 row-major), `labels` 0..9; `batches.meta` holds the
class names. Looked for in DIR/cifar-10-batches-py and DIR. Unpickled with
`encoding="latin1"` as torchvision does, but through an unpickler that builds
numpy arrays and nothing else: a pickle can run code, and these files come from
wherever the user found them. (torchvision's `CIFAR10` also checks each file's
MD5, which refuses a re-saved copy.) One domain `cifar10`, label `class`; the
official 50k/10k train/test, `val_fraction` of train as val.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import DataError
from .options import ReadOptions
from .pixels import fit_array
from .source import Source, carve_val, find_dir, missing_layout

LAYOUT = (
    "data_batch_1 .. data_batch_5 and test_batch (CIFAR-10's python pickles) in"
    " DIR/cifar-10-batches-py or DIR"
)
BATCHES = tuple(f"data_batch_{k}" for k in range(1, 6))

try:  # numpy 2 moved numpy.core to numpy._core
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # pragma: no cover
    from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]

# what a pickled numpy array needs, under numpy 1's and numpy 2's module names
_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
_ALLOWED: dict[tuple[str, str], Any] = {
    **{(m, "_reconstruct"): _reconstruct for m in _MULTIARRAY},
    **{(m, "scalar"): scalar for m in _MULTIARRAY},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def _unpickle(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path} is missing; CIFAR-10 needs {LAYOUT}")
    try:
        with path.open("rb") as f:
            loaded = _ArraysOnly(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path} is not a CIFAR-10 python pickle ({exc})") from None
    if not isinstance(loaded, dict):
        raise DataError(f"{path} is not a CIFAR-10 batch (a pickled dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in loaded.items()}


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    entry = _unpickle(path)
    if "data" not in entry or "labels" not in entry:
        raise DataError(f"{path} is not a CIFAR-10 batch: it needs the keys 'data' and 'labels'")
    data = np.asarray(entry["data"], dtype=np.uint8)
    labels = np.asarray(entry["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DataError(
            f"{path}: 'data' must be (N, 3072) with one label per row, got {data.shape}"
            f" and {len(labels)} labels"
        )
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar10(root: Path, options: ReadOptions, domain: str = "cifar10") -> Source:
    folder = find_dir(root, ("cifar-10-batches-py", ""), "data_batch_1")
    if folder is None:
        raise missing_layout("CIFAR-10", root, LAYOUT)
    parts = [_batch(folder / name) for name in (*BATCHES, "test_batch")]
    images = np.ascontiguousarray(np.concatenate([p[0] for p in parts]))
    classes = np.concatenate([p[1] for p in parts])
    is_train = np.arange(len(classes)) < len(classes) - len(parts[-1][1])
    return Source(
        domain=domain,
        files=tuple(folder / name for name in (*BATCHES, "test_batch")),
        label_names=("class",),
        labels=classes.astype(np.float32)[:, None],
        split=carve_val(classes, is_train, options.val_fraction, options.split_seed),
        decode=lambda opts: fit_array(images, opts, f"a CIFAR-10 image in {folder}"),
    )
