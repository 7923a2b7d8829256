"""Tiny datasets written in the real on-disk formats, for the loader tests.

Each writer lays out a few dozen images exactly as users have them of a public
dataset (MNIST's IDX files, SVHN's MATLAB files, CIFAR-10's Python pickles,
CelebA's aligned JPEGs and text lists, MNIST-M's PNG release) or as a generic
image folder with a CSV of labels. They are written from the formats' public
descriptions, not from any reader in this repository, so that the readers in
`methods/data/formats/` are checked against an independent account of the
format. Each writer returns a `Written`: what a correct reader must produce.

Files are byte-for-byte the same for the same arguments (no timestamps), so a
test can compare fingerprints of two writes.
"""

from __future__ import annotations

import csv
import gzip as gzip_module
import io
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.io
from PIL import Image

try:  # numpy 2 moved numpy.core to numpy._core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

__all__ = [
    "CELEBA_ATTRIBUTES",
    "CIFAR10_CLASSES",
    "Written",
    "corrupt",
    "write_celeba",
    "write_cifar10",
    "write_image_csv",
    "write_mnist",
    "write_mnist_m",
    "write_svhn",
]

# The 40 attribute names of list_attr_celeba.txt, in the file's order.
CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)

# batches.meta's label_names, in label order.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True)
class Written:
    """What a correct reader of the written files must produce.

    `images[split]` is uint8 (N, H, W, C) and `labels[split]` float32 (N, M), rows in
    the order a reader lists them; missing class labels are -1, missing floats NaN.
    `files` lists every file written. `domains[split]` (str per row) only where the
    format has a domain column.
    """

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    label_names: tuple[str, ...]
    files: list[Path]
    domains: dict[str, np.ndarray] | None = None


def corrupt(path: Path) -> None:
    """Overwrite `path` with a few bytes that no image, IDX, MAT, pickle or UTF-8
    text reader accepts."""
    Path(path).write_bytes(b"\x00\xffnot a valid file\xfe\x00")


# ---------------------------------------------------------------- drawing helpers


def _digit_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    """n digits in a shuffled order, every digit present once n >= 10."""
    return rng.permutation(np.arange(n) % 10).astype(np.int64)


def _block_image(
    rng: np.random.Generator, cls: int, height: int, width: int, channels: int
) -> np.ndarray:
    """Dark noise with a bright block whose place depends on `cls` (0..9): a 2x5 grid."""
    img = rng.integers(0, 60, size=(height, width, channels))
    cell_h, cell_w = max(height // 2, 1), max(width // 5, 1)
    top, left = (cls // 5) * cell_h, (cls % 5) * cell_w
    colour = rng.integers(160, 256, size=channels)
    block = colour + rng.integers(-20, 1, size=(cell_h, cell_w, channels))
    img[top + cell_h // 6 : top + cell_h - cell_h // 6, left : left + cell_w] = block[
        cell_h // 6 : cell_h - cell_h // 6
    ]
    return img.astype(np.uint8)


def _decoded(path: Path) -> np.ndarray:
    """The image as PIL decodes it, (H, W, C)."""
    with Image.open(path) as im:
        arr = np.asarray(im)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _mkdir(root: Path) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return root


# ---------------------------------------------------------------- MNIST (IDX)


def _idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def write_mnist(
    root: Path, n_train: int = 24, n_test: int = 12, gzip: bool = False, seed: int = 0
) -> Written:
    """`root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` (torchvision's
    layout). IDX: big-endian uint32 magic (0x0803 images, 0x0801 labels), big-endian
    uint32 dims, then uint8 data row-major. Splits "train", "test"; one label "digit"."""
    rng = np.random.default_rng(seed)
    raw = _mkdir(Path(root) / "MNIST" / "raw")
    images: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    files: list[Path] = []
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        y = _digit_labels(rng, n)
        x = np.stack([_block_image(rng, int(d), 28, 28, 1)[:, :, 0] for d in y]).reshape(n, 28, 28)
        for name, payload in (
            (f"{prefix}-images-idx3-ubyte", _idx_images(x)),
            (f"{prefix}-labels-idx1-ubyte", _idx_labels(y)),
        ):
            if gzip:
                path = raw / f"{name}.gz"
                path.write_bytes(gzip_module.compress(payload, mtime=0))
            else:
                path = raw / name
                path.write_bytes(payload)
            files.append(path)
        images[split] = x[:, :, :, None]
        labels[split] = y.astype(np.float32)[:, None]
    return Written(images, labels, ("digit",), files)


# ---------------------------------------------------------------- SVHN (MATLAB v5)

_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by auxsearch test fixtures"


def write_svhn(root: Path, n_train: int = 24, n_test: int = 12, seed: int = 0) -> Written:
    """`root/{train,test}_32x32.mat` (the cropped-digits release), MATLAB v5 files with
    `X` uint8 (32, 32, 3, N) and `y` uint8 (N, 1), digit 0 stored as 10."""
    rng = np.random.default_rng(seed)
    root = _mkdir(root)
    images: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    files: list[Path] = []
    for split, n in (("train", n_train), ("test", n_test)):
        y = _digit_labels(rng, n)
        x = np.stack([_block_image(rng, int(d), 32, 32, 3) for d in y]).reshape(n, 32, 32, 3)
        stored = np.where(y == 0, 10, y).astype(np.uint8)[:, None]
        path = root / f"{split}_32x32.mat"
        buf = io.BytesIO()
        scipy.io.savemat(buf, {"X": np.ascontiguousarray(x.transpose(1, 2, 3, 0)), "y": stored})
        data = bytearray(buf.getvalue())
        # The 116-byte descriptive text carries a timestamp; a fixed one keeps the bytes
        # reproducible (readers ignore this text).
        data[:116] = _MAT_HEADER.ljust(116)
        path.write_bytes(bytes(data))
        files.append(path)
        images[split] = x
        labels[split] = y.astype(np.float32)[:, None]
    return Written(images, labels, ("digit",), files)


# ---------------------------------------------------------------- CIFAR-10 (pickles)

# The pure-Python pickler, whose per-type `dispatch` table can be extended (typeshed
# declares little of it).
_PurePickler: Any = pickle._Pickler


class _Py2Pickler(_PurePickler):
    """Protocol 2 as Python 2's cPickle wrote the CIFAR-10 batches: every str and bytes
    is a Python 2 `str` (SHORT_BINSTRING / BINSTRING), so `pickle.load` gives bytes with
    encoding="bytes" and str with encoding="latin1", as it does for the real files, and
    arrays reconstruct through `numpy.core.multiarray._reconstruct`."""

    dispatch: ClassVar[dict[type, Callable[..., None]]] = dict(_PurePickler.dispatch)

    def _save_py2_str(self, obj: str | bytes) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("latin-1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def _py2_pickle(path: Path, obj: dict[bytes, Any]) -> None:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    path.write_bytes(buf.getvalue())


def write_cifar10(root: Path, n_per_batch: int = 6, n_test: int = 8, seed: int = 0) -> Written:
    """`root/cifar-10-batches-py/` as in the "python version" archive: `data_batch_1`..`5`,
    `test_batch`, `batches.meta` (Python 2 protocol-2 pickles of dicts with byte-string
    keys) and `readme.html`. A batch's b"data" is uint8 (N, 3072): 1024 red, 1024 green,
    1024 blue values, each plane 32x32 row-major. Splits "train" (batches 1..5 in order)
    and "test"; one label "class"."""
    rng = np.random.default_rng(seed)
    folder = _mkdir(Path(root) / "cifar-10-batches-py")
    files: list[Path] = []

    def draw(y: np.ndarray) -> np.ndarray:
        return np.stack([_block_image(rng, int(c), 32, 32, 3) for c in y]).reshape(
            len(y), 32, 32, 3
        )

    def batch(x: np.ndarray, y: np.ndarray, label: bytes, start: int) -> dict[bytes, Any]:
        return {
            b"batch_label": label,
            b"labels": [int(c) for c in y],
            b"data": np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(y), 3072)),
            b"filenames": [
                f"{CIFAR10_CLASSES[int(c)]}_s_{start + i:06d}.png".encode() for i, c in enumerate(y)
            ],
        }

    y_train = _digit_labels(rng, 5 * n_per_batch)
    x_train = draw(y_train)
    for k in range(5):
        rows = slice(k * n_per_batch, (k + 1) * n_per_batch)
        path = folder / f"data_batch_{k + 1}"
        label = f"training batch {k + 1} of 5".encode()
        _py2_pickle(path, batch(x_train[rows], y_train[rows], label, k * n_per_batch))
        files.append(path)
    y_test = _digit_labels(rng, n_test)
    x_test = draw(y_test)
    path = folder / "test_batch"
    _py2_pickle(path, batch(x_test, y_test, b"testing batch 1 of 1", 5 * n_per_batch))
    files.append(path)
    path = folder / "batches.meta"
    meta = {
        b"num_cases_per_batch": n_per_batch,
        b"label_names": [c.encode() for c in CIFAR10_CLASSES],
        b"num_vis": 3072,
    }
    _py2_pickle(path, meta)
    files.append(path)
    path = folder / "readme.html"
    path.write_text('<meta HTTP-EQUIV="REFRESH" content="0; url=https://www.cs.toronto.edu">\n')
    files.append(path)
    return Written(
        {"train": x_train, "test": x_test},
        {"train": y_train.astype(np.float32)[:, None], "test": y_test.astype(np.float32)[:, None]},
        ("class",),
        files,
    )


# ---------------------------------------------------------------- CelebA (aligned)


def write_celeba(
    root: Path,
    n: int = 30,
    height: int = 22,
    width: int = 18,
    seed: int = 0,
    partition: tuple[int, int, int] = (18, 6, 6),
) -> Written:
    """`root/celeba/` (torchvision's base folder): `img_align_celeba/000001.jpg ...`,
    `list_attr_celeba.txt` (count line; the 40 names with a trailing space; per image the
    file name and 40 values -1/1, each right-aligned in two characters after one space)
    and `list_eval_partition.txt` ("000001.jpg 0"; 0 train, 1 val, 2 test, in file order).
    Labels are the attributes with -1 -> 0."""
    if len(partition) != 3 or sum(partition) != n or min(partition) < 0:
        raise ValueError(f"partition {partition} must be three sizes summing to n={n}")
    rng = np.random.default_rng(seed)
    base = _mkdir(Path(root) / "celeba")
    img_dir = _mkdir(base / "img_align_celeba")
    n_attr = len(CELEBA_ATTRIBUTES)
    attrs = np.where(rng.random((n, n_attr)) < 0.4, 1, -1)
    n_train = partition[0]
    if n_train >= 2:  # every attribute both 1 and -1 within train
        for j in range(n_attr):
            attrs[j % n_train, j] = 1
            attrs[(j + 1) % n_train, j] = -1
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    files: list[Path] = []
    decoded: list[np.ndarray] = []
    for i, name in enumerate(names):
        base_colour = rng.integers(40, 200, size=3)
        img = base_colour + rng.integers(-30, 31, size=(height, width, 3))
        if attrs[i, CELEBA_ATTRIBUTES.index("Smiling")] == 1:  # a bright "mouth"
            img[2 * height // 3 : 2 * height // 3 + 2, width // 4 : 3 * width // 4] = 250
        path = img_dir / name
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(
            path, format="JPEG", quality=90
        )
        files.append(path)
        decoded.append(_decoded(path))

    attr_path = base / "list_attr_celeba.txt"
    lines = [f"{n}", " ".join(CELEBA_ATTRIBUTES) + " "]
    lines += [name + "".join(f" {int(v):2d}" for v in row) for name, row in zip(names, attrs)]
    attr_path.write_text("\n".join(lines) + "\n")
    part_path = base / "list_eval_partition.txt"
    part = np.repeat([0, 1, 2], partition)
    part_path.write_text("".join(f"{name} {p}\n" for name, p in zip(names, part)))
    files += [attr_path, part_path]

    x = np.stack(decoded)
    y = (attrs == 1).astype(np.float32)
    splits = {"train": 0, "val": 1, "test": 2}
    return Written(
        {s: x[part == k] for s, k in splits.items()},
        {s: y[part == k] for s, k in splits.items()},
        CELEBA_ATTRIBUTES,
        files,
    )


# ---------------------------------------------------------------- MNIST-M (PNG release)


def write_mnist_m(
    root: Path, n_train: int = 20, n_test: int = 10, size: int = 32, seed: int = 0
) -> Written:
    """`root/mnist_m/mnist_m_{train,test}/00000000.png ...` (RGB, size x size) and
    `root/mnist_m/mnist_m_{train,test}_labels.txt` with lines "00000000.png 5"."""
    rng = np.random.default_rng(seed)
    base = _mkdir(Path(root) / "mnist_m")
    images: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    files: list[Path] = []
    for split, n in (("train", n_train), ("test", n_test)):
        folder = _mkdir(base / f"mnist_m_{split}")
        y = _digit_labels(rng, n)
        x = np.stack([_block_image(rng, int(d), size, size, 3) for d in y]).reshape(
            n, size, size, 3
        )
        names = [f"{i:08d}.png" for i in range(n)]
        for name, img in zip(names, x):
            path = folder / name
            Image.fromarray(img, "RGB").save(path, format="PNG")
            files.append(path)
        path = base / f"mnist_m_{split}_labels.txt"
        path.write_text("".join(f"{name} {int(d)}\n" for name, d in zip(names, y)))
        files.append(path)
        images[split] = x
        labels[split] = y.astype(np.float32)[:, None]
    return Written(images, labels, ("digit",), files)


# ---------------------------------------------------------------- generic images + CSV


def write_image_csv(
    root: Path,
    n: int = 24,
    height: int = 12,
    width: int = 10,
    seed: int = 0,
    with_split: bool = True,
    with_domain: bool = True,
    missing: bool = True,
    image_format: str = "png",
) -> Written:
    """`root/images/<domain>/img_XXX.<ext>` (RGB) and `root/labels.csv`: header
    `path,smiling,age,glasses[,split][,domain]`, `path` relative to root, `smiling` 0/1,
    `age` a float, `glasses` 0/1; when `missing`, some `glasses` and `age` cells are
    empty (missing: -1 and NaN in the returned labels). Splits
    train/val/test interleaved in the CSV (or "all" without a split column); rows in CSV
    order within each split. `image_format`: "png" or "jpg"."""
    fmt = image_format.lower()
    if fmt not in ("png", "jpg", "jpeg"):
        raise ValueError(f"image_format must be png or jpg, not {image_format!r}")
    ext, pil_format = ("png", "PNG") if fmt == "png" else ("jpg", "JPEG")
    rng = np.random.default_rng(seed)
    root = _mkdir(root)
    domain = np.array(["a", "b"])[rng.permutation(np.arange(n) % 2)]
    n_val = n_test = max(n // 5, 1) if n >= 3 else 0
    split = rng.permutation(
        np.array(["train"] * (n - n_val - n_test) + ["val"] * n_val + ["test"] * n_test)
    )
    smiling = rng.permutation(np.arange(n) % 2)
    age = np.round(rng.uniform(18.0, 80.0, size=n), 1)
    glasses = rng.integers(0, 2, size=n)
    if missing and n > 0:
        glasses[rng.random(n) < 0.2] = -1
        glasses[rng.integers(n)] = -1
        age[rng.random(n) < 0.1] = np.nan
        age[rng.integers(n)] = np.nan

    header = ["path", "smiling", "age", "glasses"]
    header += ["split"] if with_split else []
    header += ["domain"] if with_domain else []
    files: list[Path] = []
    decoded: list[np.ndarray] = []
    rows: list[list[str]] = []
    for i in range(n):
        folder = _mkdir(root / "images" / (domain[i] if with_domain else "all"))
        path = folder / f"img_{i:03d}.{ext}"
        img = _block_image(rng, int(smiling[i]) * 5 + int(domain[i] == "b"), height, width, 3)
        save_kw: dict[str, Any] = {"quality": 90} if pil_format == "JPEG" else {}
        Image.fromarray(img, "RGB").save(path, format=pil_format, **save_kw)
        files.append(path)
        decoded.append(_decoded(path) if pil_format == "JPEG" else img)
        row = [
            path.relative_to(root).as_posix(),
            str(int(smiling[i])),
            "" if np.isnan(age[i]) else repr(float(age[i])),
            "" if glasses[i] < 0 else str(int(glasses[i])),
        ]
        row += [str(split[i])] if with_split else []
        row += [str(domain[i])] if with_domain else []
        rows.append(row)
    csv_path = root / "labels.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    files.append(csv_path)

    x = np.stack(decoded) if decoded else np.zeros((0, height, width, 3), np.uint8)
    y = np.stack([smiling, age, glasses], axis=1).astype(np.float32).reshape(n, 3)
    keys = ("train", "val", "test") if with_split else ("all",)
    masks = {k: split == k for k in keys} if with_split else {"all": np.ones(n, bool)}
    return Written(
        {k: x[m] for k, m in masks.items()},
        {k: y[m] for k, m in masks.items()},
        ("smiling", "age", "glasses"),
        files,
        {k: domain[m] for k, m in masks.items()} if with_domain else None,
    )
