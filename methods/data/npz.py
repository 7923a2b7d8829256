"""Bring-your-own data: one `.npz` file, exactly as the data contract says.

Arrays read (every other array in the file is ignored):

    inputs       uint8 (N, H, W) or (N, H, W, C) images, or float (N, D) vectors
    labels       (N, M) class labels as integers with -1 for missing,
                 or floats with NaN for missing continuous values
    label_names  (M,) strings
    split        optional (N,) strings in {train, val, test};
                 without it, a seeded 70/15/15 split is drawn (seed 0)
    domain       optional (N,) strings; each value becomes one domain

Every problem is reported as one sentence naming the file, the array and what
is expected.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from .dataset import SPLITS, Dataset, Domain, seeded_split

REQUIRED = ("inputs", "labels", "label_names")


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def load_npz(path: str | Path) -> Dataset:
    path = Path(path)
    where = f"data file {path}"
    if not path.is_file():
        raise DataError(
            f"{where} does not exist; pass --data FILE.npz holding arrays inputs, labels,"
            " label_names"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{where} is not a readable .npz archive ({exc})") from None
    with archive:
        missing = [k for k in REQUIRED if k not in archive.files]
        if missing:
            raise DataError(
                f"{where} has no '{missing[0]}' array; it needs inputs, labels and label_names"
                f" (found: {', '.join(archive.files) or 'nothing'})"
            )
        try:
            arrays = {k: archive[k] for k in (*REQUIRED, "split", "domain") if k in archive.files}
        except ValueError:
            raise DataError(
                f"{where} stores an object array; save label_names, split and domain as"
                " string arrays (np.array([...], dtype=str))"
            ) from None

    inputs = _inputs(arrays["inputs"], where)
    n = len(inputs)
    labels = _labels(arrays["labels"], n, where)
    names = _strings(arrays["label_names"], "label_names", where, labels.shape[1])
    if len(set(names)) != len(names):
        raise DataError(f"{where}: label_names repeat a name: {names}")

    if "split" in arrays:
        split = np.asarray(_strings(arrays["split"], "split", where, n))
        bad = sorted(set(split.tolist()) - set(SPLITS))
        if bad:
            raise DataError(f"{where}: split holds '{bad[0]}'; allowed values are train, val, test")
    else:
        split = seeded_split(n, (0.7, 0.15, 0.15), seed=0)
    split = split.astype("<U5")

    if "domain" in arrays:
        domain_of = np.asarray(_strings(arrays["domain"], "domain", where, n))
        domain_names = list(dict.fromkeys(domain_of.tolist()))
    else:
        domain_of = np.full(n, path.stem)
        domain_names = [path.stem]

    domains = {}
    for name in domain_names:
        rows = np.flatnonzero(domain_of == name)
        domains[name] = Domain(
            name=name,
            inputs=np.ascontiguousarray(inputs[rows]),
            labels=labels[rows],
            label_names=tuple(names),
            split=split[rows],
        )
    return Dataset(
        name=path.stem,
        domains=domains,
        fingerprint=f"npz:{file_digest(path)}",
        description=f"{path.name}: {n} samples, {len(names)} labels, {len(domains)} domain(s)",
        params={"path": str(path.resolve())},
    )


def _inputs(x: np.ndarray, where: str) -> np.ndarray:
    if x.dtype == np.uint8:
        if x.ndim == 3:
            return x[..., None]
        if x.ndim == 4 and x.shape[-1] in (1, 3, 4):
            return x
        raise DataError(
            f"{where}: uint8 inputs must be (N, H, W) or (N, H, W, C) with C in 1, 3, 4;"
            f" got shape {x.shape}"
        )
    if np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer):
        if x.ndim != 2:
            raise DataError(
                f"{where}: non-uint8 inputs must be (N, D) feature vectors; got shape {x.shape}"
                " (store images as uint8 (N, H, W[, C]))"
            )
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise DataError(f"{where}: inputs hold NaN or infinite values")
        return x
    raise DataError(f"{where}: inputs have dtype {x.dtype}; use uint8 images or float vectors")


def _labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != n:
        raise DataError(f"{where}: labels must be (N, M) with N={n} rows; got shape {y.shape}")
    if not (
        np.issubdtype(y.dtype, np.integer)
        or np.issubdtype(y.dtype, np.floating)
        or y.dtype == np.bool_
    ):
        raise DataError(f"{where}: labels have dtype {y.dtype}; use integers or floats")
    if np.issubdtype(y.dtype, np.integer) and np.any(y < -1):
        raise DataError(f"{where}: integer labels below -1 found; -1 marks a missing label")
    return y.astype(np.float32)


def _strings(a: np.ndarray, key: str, where: str, expected_len: int) -> list[str]:
    if a.dtype.kind not in "US":
        raise DataError(f"{where}: '{key}' must be an array of strings, got dtype {a.dtype}")
    values = [v.decode() if isinstance(v, bytes) else str(v) for v in a.reshape(-1).tolist()]
    if len(values) != expected_len:
        raise DataError(f"{where}: '{key}' has {len(values)} entries, expected {expected_len}")
    return values
