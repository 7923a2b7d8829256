"""Decode once: a domain's images decoded into one uint8 array on disk, next to the
data, and memory-mapped on every later load.

A search over 200k CelebA images then never decodes per trial or per run: the
driver maps the array, Ray's object store carries one copy to the trials, and a
second command finds the array already there.

    <data root>/.auxsearch-cache/<format>-<domain>-<options>-<source>/images.npy
                                                                     /meta.json

`<options>` digests what decides the pixels (size, crop, channels); `<source>`
digests the name, size and modification time of every file read, so an edited,
added or removed file rebuilds the array (and removes the stale one). Builds go
to a temporary folder renamed into place when complete: an interrupted build
leaves nothing a later load could mistake for a cache. When the data root is
read-only the cache goes to $AUXSEARCH_CACHE_DIR, else ~/.cache/auxsearch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.errors import DataError
from .options import ReadOptions
from .source import Source

CACHE_DIR_NAME = ".auxsearch-cache"
_VERSION = 1  # bump when decoding changes, so every cache rebuilds


@dataclass(frozen=True)
class CachedImages:
    images: np.ndarray  # read-only memory map, uint8 (N, H, W, C)
    path: Path
    built: bool  # False: an earlier load's array was reused
    source_digest: str


def source_digest(files: Iterable[Path]) -> str:
    """Digest of every source file's path, size and modification time; also where a
    file the labels list but the folder lacks is found (one stat per file, before
    anything is decoded)."""
    h = hashlib.sha256()
    for path in files:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise DataError(
                f"{path} is listed in the dataset's label files but does not exist"
            ) from None
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cache_root(data_root: Path) -> Path:
    """Next to the data when writable; otherwise a per-root folder in the user cache."""
    beside = data_root / CACHE_DIR_NAME
    if os.access(beside if beside.exists() else data_root, os.W_OK):
        return beside
    base = Path(os.environ.get("AUXSEARCH_CACHE_DIR") or Path.home() / ".cache" / "auxsearch")
    return base / hashlib.sha256(str(data_root.resolve()).encode()).hexdigest()[:12]


def cached_images(
    fmt: str,
    data_root: Path,
    source: Source,
    options: ReadOptions,
    echo: Callable[[str], None] | None = None,
) -> CachedImages:
    digest = source_digest(source.files)
    pixels = json.dumps({"v": _VERSION, **options.image_key}, sort_keys=True)
    prefix = f"{fmt}-{source.domain}-{hashlib.sha256(pixels.encode()).hexdigest()[:8]}-"
    root = cache_root(data_root)
    final = root / (prefix + digest)
    images_file = final / "images.npy"
    if images_file.is_file():
        images = np.load(images_file, mmap_mode="r")
        if len(images) == len(source):
            return CachedImages(images, final, built=False, source_digest=digest)
    if echo:
        echo(f"{fmt}/{source.domain}: decoding {len(source):,} images once into {final}")
    _build(source, options, root, final)
    for stale in root.glob(prefix + "*"):  # the same images before the source changed
        if stale != final:
            shutil.rmtree(stale, ignore_errors=True)
    images = np.load(images_file, mmap_mode="r")
    return CachedImages(images, final, built=True, source_digest=digest)


def _build(source: Source, options: ReadOptions, root: Path, final: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    except OSError as exc:
        raise DataError(
            f"cannot write the image cache in {root} ({exc.strerror}); set AUXSEARCH_CACHE_DIR"
            " to a writable folder"
        ) from None
    try:
        _decode_into(source, options, building / "images.npy")
        meta = {"domain": source.domain, "rows": len(source), **options.image_key}
        (building / "meta.json").write_text(json.dumps(meta, indent=1))
        if final.exists():  # an incomplete or mismatched entry under the same name
            shutil.rmtree(final)
        try:
            building.rename(final)
        except OSError:  # another process finished the same build first: keep its copy
            if not (final / "images.npy").is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _decode_into(source: Source, options: ReadOptions, path: Path) -> None:
    images = source.decode(options)
    first = next(images, None)
    if first is None:
        raise DataError(f"domain '{source.domain}' lists no images")
    shape = (len(source), *first.shape)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    out[0] = first
    count = 1
    for image in images:
        if count == len(source):
            raise DataError(f"domain '{source.domain}' yields more images than it lists labels")
        if image.shape != first.shape:
            raise DataError(
                f"images of domain '{source.domain}' differ in shape ({_shape(first)} first,"
                f" {_shape(image)} at row {count}); pass size=S (and crop=C) for one size"
                " and channels=1 or 3 for one colour mode"
            )
        out[count] = image
        count += 1
    if count != len(source):
        raise DataError(
            f"domain '{source.domain}' lists {len(source)} labelled rows but {count} images"
        )
    out.flush()
    del out


def _shape(image: np.ndarray) -> str:
    h, w, c = image.shape
    return f"{w}x{h}, {'grey' if c == 1 else 'RGB'}"
