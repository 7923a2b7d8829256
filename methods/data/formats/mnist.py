"""MNIST as distributed: four IDX files, plain or gzipped.

    train-images-idx3-ubyte[.gz]  t10k-images-idx3-ubyte[.gz]    (magic 0x803: N, 28, 28)
    train-labels-idx1-ubyte[.gz]  t10k-labels-idx1-ubyte[.gz]    (magic 0x801: N)

looked for in DIR/MNIST/raw (torchvision's layout), DIR/raw and DIR. Our own
reader rather than torchvision's `MNIST(download=False)`: that one accepts only
the uncompressed files under MNIST/raw and fails with an assertion on a
malformed file, where a user needs the file's name and what it should hold.
One domain `mnist`, label `digit`; the official 60k/10k train/test, with
`val_fraction` of train (per class, seeded) as val.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ...core.errors import DataError
from .options import ReadOptions
from .pixels import fit_array
from .source import Source, carve_val, find_dir, missing_layout

LAYOUT = (
    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and"
    " t10k-labels-idx1-ubyte (each optionally .gz) in DIR/MNIST/raw, DIR/raw or DIR"
)
_IMAGES, _LABELS = 0x803, 0x801


def _file(folder: Path, stem: str, root: Path) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder / stem} is missing; MNIST needs {LAYOUT} (root {root})")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array of an IDX file whose header has `magic` (0x803 images, 0x801 labels)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} cannot be read as a (gzipped) IDX file ({exc})") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic or len(raw) < header:
        shown = "nothing" if found is None else f"0x{found:08x}"
        raise DataError(
            f"{path} is not an IDX file of uint8 {'images' if ndim == 3 else 'labels'}:"
            f" its magic number is {shown}, expected 0x{magic:08x}"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(dims)):
        raise DataError(
            f"{path} holds {body.size} bytes of data but its header promises {dims}"
            " (a truncated or corrupted file)"
        )
    return body.reshape(dims)


def read_mnist(root: Path, options: ReadOptions, domain: str = "mnist") -> Source:
    folder = find_dir(root, ("MNIST/raw", "raw", ""), "train-labels-idx1-ubyte") or find_dir(
        root, ("MNIST/raw", "raw", ""), "train-labels-idx1-ubyte.gz"
    )
    if folder is None:
        raise missing_layout("MNIST", root, LAYOUT)
    parts = []
    files = []
    for prefix in ("train", "t10k"):
        images_file = _file(folder, f"{prefix}-images-idx3-ubyte", root)
        labels_file = _file(folder, f"{prefix}-labels-idx1-ubyte", root)
        images, labels = read_idx(images_file, _IMAGES), read_idx(labels_file, _LABELS)
        if len(images) != len(labels):
            raise DataError(
                f"{images_file} holds {len(images)} images but {labels_file} {len(labels)} labels"
            )
        parts.append((images, labels))
        files += [images_file, labels_file]
    images = np.concatenate([p[0] for p in parts])[..., None]
    digits = np.concatenate([p[1] for p in parts])
    is_train = np.arange(len(digits)) < len(parts[0][1])
    return Source(
        domain=domain,
        files=tuple(files),
        label_names=("digit",),
        labels=digits.astype(np.float32)[:, None],
        split=carve_val(digits, is_train, options.val_fraction, options.split_seed),
        decode=lambda opts: fit_array(images, opts, f"an MNIST image in {folder}"),
    )
