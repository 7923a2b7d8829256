"""Bring-your-own data: one `.npz` file, exactly as the data contract says.

Arrays read (every other array in the file is ignored), each declared in
`ARRAYS` below and checked before anything is trained or written:

    inputs       uint8 (N, H, W) or (N, H, W, C) images with C in 1, 3, 4, or
                 numeric (N, D) vectors, finite; N, H, W, D at least 1
    labels       (N, M) or (N,) class labels as integers with -1 for missing,
                 or floats with NaN for missing (continuous values allowed;
                 never infinite); M at least 1
    label_names  (M,) distinct, non-empty strings without commas or
                 surrounding spaces (names are given as comma lists:
                 `--attributes a,b`)
    split        optional (N,) strings in {train, val, test};
                 without it, a seeded 70/15/15 split is drawn (seed 0)
    domain       optional (N,) non-empty strings; each value becomes one domain

Every problem is reported as one sentence naming the file, the array and what
is expected. What a run needs beyond the file (two classes of an attribute in
the train split, labelled val rows) is checked by the method (`task_specs`).
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from .dataset import SPLITS, Dataset, Domain, label_name_problem, seeded_split

# Each array the loader reads: whether it must be there, and what it must be
# (the text every message about it quotes).
ARRAYS = {
    "inputs": (True, "uint8 (N, H, W[, C]) images or numeric (N, D) vectors"),
    "labels": (True, "(N, M) integer class labels with -1 for missing, or floats with NaN"),
    "label_names": (True, "(M,) distinct strings"),
    "split": (False, "(N,) strings in train, val, test"),
    "domain": (False, "(N,) domain names"),
}
REQUIRED = tuple(k for k, (required, _) in ARRAYS.items() if required)
_ZIP_MAGIC = b"PK\x03\x04"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def load_npz(path: str | Path) -> Dataset:
    path = Path(path)
    where = f"data file {path}"
    arrays = _read_arrays(path, where)
    inputs = _inputs(arrays["inputs"], where)
    n = len(inputs)
    labels = _labels(arrays["labels"], n, where)
    names = _strings(arrays["label_names"], "label_names", where, labels.shape[1])
    for j, name in enumerate(names):
        problem = label_name_problem(name)
        if problem:
            raise DataError(f"{where}: label_names[{j}] {name!r} {problem}")
    if len(set(names)) != len(names):
        raise DataError(f"{where}: label_names repeat a name: {names}")

    if "split" in arrays:
        split = np.asarray(_strings(arrays["split"], "split", where, n))
        bad = sorted(set(split.tolist()) - set(SPLITS))
        if bad:
            raise DataError(f"{where}: split holds {bad[0]!r}; allowed values are train, val, test")
    else:
        split = seeded_split(n, (0.7, 0.15, 0.15), seed=0)
    split = split.astype("<U5")

    if "domain" in arrays:
        domain_of = np.asarray(_strings(arrays["domain"], "domain", where, n))
        if not all(v.strip() for v in domain_of.tolist()):
            raise DataError(f"{where}: domain holds an empty name; name every row's domain")
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


def _read_arrays(path: Path, where: str) -> dict[str, np.ndarray]:
    """The declared arrays of the file, read whole; every way a file can fail to be
    an .npz of arrays is one sentence."""
    if path.is_dir():
        raise DataError(f"{where} is a directory; pass --data FILE.npz, a file np.savez wrote")
    if not path.is_file():
        raise DataError(
            f"{where} does not exist; pass --data FILE.npz holding arrays inputs, labels,"
            " label_names"
        )
    try:
        with path.open("rb") as f:
            magic = f.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise DataError(f"{where} cannot be read ({exc.strerror or exc})") from None
    if magic != _ZIP_MAGIC:
        # np.load would take any other bytes for a pickle and suggest allow_pickle
        raise DataError(f"{where} is not an .npz archive; write one with np.savez(path, ...)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{where} is not a readable .npz archive ({exc})") from None
    with archive:
        missing = [k for k in REQUIRED if k not in archive.files]
        if missing:
            raise DataError(
                f"{where} has no '{missing[0]}' array; it needs inputs, labels and label_names"
                f" (found: {', '.join(archive.files) or 'nothing'})"
            )
        arrays = {}
        for key in (k for k in ARRAYS if k in archive.files):
            try:
                arrays[key] = archive[key]
            except ValueError:
                raise DataError(
                    f"{where}: '{key}' is stored as an object array; save it as"
                    f" {ARRAYS[key][1]} (e.g. np.array([...], dtype=str) for strings)"
                ) from None
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                raise DataError(f"{where}: '{key}' cannot be read ({exc})") from None
    return arrays


def _inputs(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{where}: inputs hold no samples; give at least one row")
    if x.dtype == np.uint8:
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
            raise DataError(
                f"{where}: uint8 inputs must be (N, H, W) or (N, H, W, C) with C in 1, 3, 4;"
                f" got shape {x.shape}"
            )
        if 0 in x.shape:
            raise DataError(f"{where}: inputs are images of shape {x.shape[1:]}, with no pixels")
        return x
    if (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)) and (
        x.dtype != np.bool_
    ):
        if x.ndim != 2:
            raise DataError(
                f"{where}: non-uint8 inputs must be (N, D) feature vectors; got shape {x.shape}"
                " (store images as uint8 (N, H, W[, C]))"
            )
        if x.shape[1] == 0:
            raise DataError(f"{where}: inputs have no features (shape {x.shape}); D must be ≥ 1")
        with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
            x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise DataError(f"{where}: inputs hold NaN or infinite values (or float32 overflow)")
        return x
    raise DataError(f"{where}: inputs have dtype {x.dtype}; use uint8 images or float vectors")


def _labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != n:
        raise DataError(f"{where}: labels must be (N, M) with N={n} rows; got shape {y.shape}")
    if y.shape[1] == 0:
        raise DataError(f"{where}: labels have no columns (shape {y.shape}); M must be ≥ 1")
    if not (
        np.issubdtype(y.dtype, np.integer)
        or np.issubdtype(y.dtype, np.floating)
        or y.dtype == np.bool_
    ):
        raise DataError(f"{where}: labels have dtype {y.dtype}; use integers or floats")
    if np.issubdtype(y.dtype, np.integer) and np.any(y < -1):
        raise DataError(f"{where}: integer labels below -1 found; -1 marks a missing label")
    with np.errstate(over="ignore"):
        out = y.astype(np.float32)
    if np.any(np.isinf(out)):
        raise DataError(
            f"{where}: labels hold infinite values (or float32 overflow); mark a missing"
            " label with -1 or NaN"
        )
    return out


def _strings(a: np.ndarray, key: str, where: str, expected_len: int) -> list[str]:
    if a.dtype.kind not in "US":
        raise DataError(f"{where}: '{key}' must be an array of strings, got dtype {a.dtype}")
    if a.ndim != 1:
        raise DataError(f"{where}: '{key}' must be 1-D ({expected_len},); got shape {a.shape}")
    try:
        values = [v.decode() if isinstance(v, bytes) else str(v) for v in a.tolist()]
    except UnicodeDecodeError:
        raise DataError(f"{where}: '{key}' holds bytes that are not UTF-8 text") from None
    if len(values) != expected_len:
        raise DataError(f"{where}: '{key}' has {len(values)} entries, expected {expected_len}")
    return values
