"""Decoding image files and fitting images to the size a backbone needs.

Order of operations, as in torchvision's usual CelebA pipeline: convert channels,
centre-crop a square (`crop`), then resize to `size` x `size` (bilinear with
antialiasing, PIL's). Image files decode on a thread pool: PIL releases the GIL
while it decodes, so a 200k-image folder uses every core once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...core.errors import DataError
from .options import ReadOptions

_MODES = {1: "L", 3: "RGB"}


def fit(image: Image.Image, options: ReadOptions, where: str) -> np.ndarray:
    """`image` converted, cropped and resized as `options` say, as uint8 (H, W, C)."""
    if options.channels:
        image = image.convert(_MODES[options.channels])
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    if options.crop:
        w, h = image.size
        if options.crop > min(w, h):
            raise DataError(
                f"{where} is {w}x{h}, smaller than crop={options.crop}; choose a crop of at"
                f" most {min(w, h)}"
            )
        left, top = (w - options.crop) // 2, (h - options.crop) // 2
        image = image.crop((left, top, left + options.crop, top + options.crop))
    if options.size and image.size != (options.size, options.size):
        image = image.resize((options.size, options.size), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def fit_array(images: np.ndarray, options: ReadOptions, where: str) -> Iterator[np.ndarray]:
    """Images held as a uint8 (N, H, W, C) array, fitted one at a time (or as they are)."""
    c = images.shape[3]
    unchanged = (
        not options.crop
        and options.size in (0, images.shape[1])
        and (options.size in (0, images.shape[2]))
        and options.channels in (0, c)
    )
    if unchanged:
        yield from images
        return
    for image in images:
        yield fit(Image.fromarray(image[:, :, 0] if c == 1 else image), options, where)


def _open(path: Path, options: ReadOptions) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return fit(image, options, str(path))
    except FileNotFoundError:
        raise DataError(f"image {path} is listed but does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"image {path} cannot be decoded ({exc}); replace or remove it") from None


def decode_files(paths: Sequence[Path], options: ReadOptions) -> Iterator[np.ndarray]:
    """Decoded, fitted images of `paths`, in order."""
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        # chunks keep memory bounded while every worker stays busy
        step = 256 * workers
        for start in range(0, len(paths), step):
            chunk: Iterable[np.ndarray] = pool.map(
                lambda p: _open(p, options), paths[start : start + step]
            )
            yield from chunk
