"""Real datasets read from a local folder as users have them (never downloaded):
`--dataset NAME[:options] --data-root DIR`.

    celeba     list_attr_celeba.txt, list_eval_partition.txt, img_align_celeba/
    mnist      the four IDX files (plain or .gz)
    svhn       train_32x32.mat, test_32x32.mat (MATLAB v5)
    cifar10    cifar-10-batches-py/ (python pickles)
    mnist_m    mnist_m_{train,test}/ PNGs + mnist_m_{train,test}_labels.txt
    image_csv  any images + labels.csv (path, label columns, optional split, domain)

Several formats join as domains of one dataset with `+`, each looked for in its
usual folder under DIR: `mnist+svhn+mnist_m:size=32,channels=3` is the Purified
Learning / SOSELETO digit setting. Images are decoded once into a memory-mapped
cache (`formats.cache`); labels are read from the files on every load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.errors import DataError
from ..dataset import Dataset, Domain
from .cache import cached_images
from .celeba import read_celeba
from .cifar10 import read_cifar10
from .image_csv import read_image_csv
from .mnist import read_mnist
from .mnist_m import read_mnist_m
from .options import ReadOptions, parse_options
from .source import Source
from .svhn import read_svhn


@dataclass(frozen=True)
class Format:
    read: Callable[[Path, ReadOptions], Source | list[Source]]
    options: tuple[str, ...] = ()  # beyond the common ones


FORMATS: dict[str, Format] = {
    "celeba": Format(read_celeba),
    "cifar10": Format(read_cifar10),
    "image_csv": Format(read_image_csv, ("csv", "path_column")),
    "mnist": Format(read_mnist),
    "mnist_m": Format(read_mnist_m),
    "svhn": Format(read_svhn, ("extra",)),
}


def is_disk_format(name: str) -> bool:
    return all(part in FORMATS for part in name.split("+"))


def load_from_disk(
    name: str,
    data_root: str | Path,
    options: Mapping[str, Any] | None = None,
    echo: Callable[[str], None] | None = None,
) -> Dataset:
    """Read `name` (a format, or formats joined by `+`) from `data_root`."""
    parts = name.split("+")
    unknown = [p for p in parts if p not in FORMATS]
    if unknown:
        raise DataError(
            f"'{unknown[0]}' is not a format auxsearch reads from --data-root; formats:"
            f" {', '.join(sorted(FORMATS))} (join several with +, e.g. mnist+svhn)"
        )
    if len(set(parts)) != len(parts):
        raise DataError(f"--dataset {name} names a format twice")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DataError(f"--data-root {root} is not a directory; give the folder holding {name}")
    specific = tuple(dict.fromkeys(o for p in parts for o in FORMATS[p].options))
    read_options = parse_options(name, options or {}, specific)

    domains: dict[str, Domain] = {}
    digests = []
    for part in parts:
        found = FORMATS[part].read(root, read_options)
        for source in found if isinstance(found, list) else [found]:
            if source.domain in domains:
                raise DataError(f"--dataset {name}: two parts define domain '{source.domain}'")
            cached = cached_images(part, root, source, read_options, echo)
            domains[source.domain] = Domain(
                source.domain, cached.images, source.labels, source.label_names, source.split
            )
            digests.append(f"{part}/{source.domain}:{cached.source_digest}")
    settings = json.dumps({"options": vars(read_options), "sources": digests}, sort_keys=True)
    return Dataset(
        name=name,
        domains=domains,
        fingerprint=f"{name}:{hashlib.sha256(settings.encode()).hexdigest()[:16]}",
        description=f"{name} read from {root}",
        params={"data_root": str(root), **vars(read_options)},
    )


__all__ = ["FORMATS", "ReadOptions", "is_disk_format", "load_from_disk"]
