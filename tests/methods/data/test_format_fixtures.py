"""The format writers themselves, checked against independent readers and the formats'
stated layouts (struct on IDX headers, torchvision's MNIST/SVHN/CIFAR-10 readers,
scipy.io.loadmat, pickle, pandas, PIL)."""

from __future__ import annotations

import gzip
import pickle
import re
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torchvision
from PIL import Image
from torchvision.datasets.mnist import read_image_file, read_label_file

from tests.methods.data.format_fixtures import (
    CELEBA_ATTRIBUTES,
    CIFAR10_CLASSES,
    Written,
    corrupt,
    write_celeba,
    write_cifar10,
    write_image_csv,
    write_mnist,
    write_mnist_m,
    write_svhn,
)


def _decode(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        arr = np.asarray(im)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _check_shapes(w: Written, splits: tuple[str, ...], n_labels: int) -> None:
    assert set(w.images) == set(w.labels) == set(splits)
    assert len(w.label_names) == n_labels
    for s in splits:
        assert w.images[s].dtype == np.uint8 and w.images[s].ndim == 4
        assert w.labels[s].dtype == np.float32
        assert w.labels[s].shape == (len(w.images[s]), n_labels)
    assert all(p.is_file() for p in w.files)


# ---------------------------------------------------------------- MNIST


def test_mnist_idx_headers_and_torchvision_readers(tmp_path: Path) -> None:
    w = write_mnist(tmp_path, n_train=24, n_test=12)
    _check_shapes(w, ("train", "test"), 1)
    raw = tmp_path / "MNIST" / "raw"
    assert sorted(p.name for p in w.files) == sorted(
        f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )
    head = (raw / "train-images-idx3-ubyte").read_bytes()
    assert head[:4] == b"\x00\x00\x08\x03"
    assert struct.unpack(">IIII", head[:16]) == (0x803, 24, 28, 28)
    assert len(head) == 16 + 24 * 28 * 28
    lab = (raw / "t10k-labels-idx1-ubyte").read_bytes()
    assert struct.unpack(">II", lab[:8]) == (0x801, 12) and len(lab) == 8 + 12
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_image_file(str(raw / f"{prefix}-images-idx3-ubyte")).numpy()
        y = read_label_file(str(raw / f"{prefix}-labels-idx1-ubyte")).numpy()
        np.testing.assert_array_equal(x[:, :, :, None], w.images[split])
        np.testing.assert_array_equal(y.astype(np.float32)[:, None], w.labels[split])
    assert set(w.labels["train"][:, 0].astype(int)) == set(range(10))
    # torchvision's MNIST reads this layout as it is (it checks only that the files exist)
    ds = torchvision.datasets.MNIST(str(tmp_path), train=False)
    np.testing.assert_array_equal(ds.data.numpy(), w.images["test"][:, :, :, 0])
    np.testing.assert_array_equal(ds.targets.numpy(), w.labels["test"][:, 0])


def test_mnist_gzip(tmp_path: Path) -> None:
    w = write_mnist(tmp_path, n_train=10, n_test=3, gzip=True)
    assert all(p.suffix == ".gz" for p in w.files) and len(w.files) == 4
    data = gzip.decompress((tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz").read_bytes())
    assert struct.unpack(">IIII", data[:16]) == (0x803, 10, 28, 28)
    x = np.frombuffer(data[16:], np.uint8).reshape(10, 28, 28, 1)
    np.testing.assert_array_equal(x, w.images["train"])
    labels = gzip.decompress((tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte.gz").read_bytes())
    assert struct.unpack(">II", labels[:8]) == (0x801, 3)
    np.testing.assert_array_equal(np.frombuffer(labels[8:], np.uint8), w.labels["test"][:, 0])
    assert sorted(w.labels["train"][:, 0].astype(int)) == list(range(10))


# ---------------------------------------------------------------- SVHN


def test_svhn_mat_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = write_svhn(tmp_path, n_train=24, n_test=12)
    _check_shapes(w, ("train", "test"), 1)
    assert sorted(p.name for p in w.files) == ["test_32x32.mat", "train_32x32.mat"]
    for split, n in (("train", 24), ("test", 12)):
        path = tmp_path / f"{split}_32x32.mat"
        assert path.read_bytes()[:10] == b"MATLAB 5.0"
        mat = scipy.io.loadmat(path)
        x, y = mat["X"], mat["y"]
        assert x.shape == (32, 32, 3, n) and x.dtype == np.uint8
        assert y.shape == (n, 1) and y.dtype == np.uint8
        assert y.min() >= 1 and y.max() <= 10
        np.testing.assert_array_equal(x.transpose(3, 0, 1, 2), w.images[split])
        np.testing.assert_array_equal(np.where(y == 10, 0, y).astype(np.float32), w.labels[split])
    assert 10 in scipy.io.loadmat(tmp_path / "train_32x32.mat")["y"]
    # torchvision's SVHN reader, less its md5 check
    monkeypatch.setattr(torchvision.datasets.SVHN, "_check_integrity", lambda self: True)
    ds = torchvision.datasets.SVHN(str(tmp_path), split="test")
    np.testing.assert_array_equal(ds.data, w.images["test"].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(ds.labels, w.labels["test"][:, 0])


# ---------------------------------------------------------------- CIFAR-10


def test_cifar10_pickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = write_cifar10(tmp_path, n_per_batch=4, n_test=8)
    _check_shapes(w, ("train", "test"), 1)
    folder = tmp_path / "cifar-10-batches-py"
    names = {p.name for p in w.files}
    assert {f"data_batch_{k}" for k in range(1, 6)} | {"test_batch", "batches.meta"} <= names
    raw = (folder / "data_batch_1").read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol 2
    with (folder / "data_batch_1").open("rb") as f:
        d = pickle.load(f, encoding="bytes")
    assert set(d) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert d[b"batch_label"] == b"training batch 1 of 5"
    assert d[b"data"].dtype == np.uint8 and d[b"data"].shape == (4, 3072)
    assert isinstance(d[b"labels"], list) and all(isinstance(c, int) for c in d[b"labels"])
    assert all(isinstance(s, bytes) for s in d[b"filenames"])
    # channel-first planes: the first 1024 values are the red plane, row-major
    np.testing.assert_array_equal(
        d[b"data"][:, :1024].reshape(4, 32, 32), w.images["train"][:4, :, :, 0]
    )
    xs, ys = [], []
    for k in range(1, 6):
        with (folder / f"data_batch_{k}").open("rb") as f:
            b = pickle.load(f, encoding="bytes")
        xs.append(b[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys += b[b"labels"]
    np.testing.assert_array_equal(np.concatenate(xs), w.images["train"])
    np.testing.assert_array_equal(np.array(ys, np.float32)[:, None], w.labels["train"])
    assert set(ys) == set(range(10))
    with (folder / "batches.meta").open("rb") as f:
        meta = pickle.load(f, encoding="bytes")
    assert meta[b"label_names"] == [c.encode() for c in CIFAR10_CLASSES]
    assert meta[b"num_vis"] == 3072 and meta[b"num_cases_per_batch"] == 4
    # Python 2 str, as in the real files: latin1 decoding gives str keys
    with (folder / "test_batch").open("rb") as f:
        t = pickle.load(f, encoding="latin1")
    assert t["batch_label"] == "testing batch 1 of 1"
    # torchvision's CIFAR10 reader (encoding="latin1"), less its md5 check
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    meta_entry = {**torchvision.datasets.CIFAR10.meta, "md5": None}  # existence only
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "meta", meta_entry)
    for train, split in ((True, "train"), (False, "test")):
        ds = torchvision.datasets.CIFAR10(str(tmp_path), train=train)
        np.testing.assert_array_equal(ds.data, w.images[split])
        np.testing.assert_array_equal(ds.targets, w.labels[split][:, 0])
    assert ds.classes == list(CIFAR10_CLASSES)


# ---------------------------------------------------------------- CelebA


def test_celeba_text_lists_and_jpegs(tmp_path: Path) -> None:
    w = write_celeba(tmp_path, n=30, height=22, width=18, partition=(18, 6, 6))
    _check_shapes(w, ("train", "val", "test"), 40)
    assert w.label_names == CELEBA_ATTRIBUTES and len(set(CELEBA_ATTRIBUTES)) == 40
    base = tmp_path / "celeba"
    lines = (base / "list_attr_celeba.txt").read_text().split("\n")
    assert lines[0] == "30"
    assert lines[1].endswith(" ") and lines[1].split() == list(CELEBA_ATTRIBUTES)
    assert lines[2].startswith("000001.jpg ")
    assert all(re.fullmatch(r"\d{6}\.jpg( (-1| 1)){40}", line) for line in lines[2:32])
    attr = pd.read_csv(base / "list_attr_celeba.txt", sep=r"\s+", header=1)
    assert list(attr.columns) == list(CELEBA_ATTRIBUTES)
    assert list(attr.index) == [f"{i:06d}.jpg" for i in range(1, 31)]
    part = pd.read_csv(
        base / "list_eval_partition.txt", sep=" ", header=None, names=["file", "p"], index_col=0
    )
    assert list(part["p"]) == [0] * 18 + [1] * 6 + [2] * 6
    for split, k in (("train", 0), ("val", 1), ("test", 2)):
        files = part.index[part["p"] == k]
        expected = (attr.loc[files].to_numpy() == 1).astype(np.float32)
        np.testing.assert_array_equal(expected, w.labels[split])
        x = np.stack([_decode(base / "img_align_celeba" / f) for f in files])
        assert x.shape == (len(files), 22, 18, 3)
        np.testing.assert_array_equal(x, w.images[split])
    with Image.open(base / "img_align_celeba" / "000001.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB"
    train = w.labels["train"]
    assert (train.min(axis=0) == 0).all() and (train.max(axis=0) == 1).all()
    # torchvision's own parser of these lists (its CelebA class also wants md5s)
    csv_ = torchvision.datasets.CelebA._load_csv(
        SimpleNamespace(root=str(tmp_path), base_folder="celeba"),
        "list_attr_celeba.txt",
        header=1,
    )
    assert [h for h in csv_.header if h] == list(CELEBA_ATTRIBUTES)
    np.testing.assert_array_equal(
        (csv_.data.numpy()[:18] + 1) // 2, w.labels["train"].astype(np.int64)
    )


def test_celeba_partition_must_sum_to_n(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="partition"):
        write_celeba(tmp_path, n=10, partition=(5, 2, 2))


# ---------------------------------------------------------------- MNIST-M


def test_mnist_m_release_layout(tmp_path: Path) -> None:
    w = write_mnist_m(tmp_path, n_train=20, n_test=10, size=32)
    _check_shapes(w, ("train", "test"), 1)
    base = tmp_path / "mnist_m"
    for split, n in (("train", 20), ("test", 10)):
        rows = [
            line.split(" ")
            for line in (base / f"mnist_m_{split}_labels.txt").read_text().splitlines()
        ]
        assert [r[0] for r in rows] == [f"{i:08d}.png" for i in range(n)]
        np.testing.assert_array_equal(
            np.array([int(r[1]) for r in rows], np.float32)[:, None], w.labels[split]
        )
        for (name, _), img in zip(rows, w.images[split]):
            with Image.open(base / f"mnist_m_{split}" / name) as im:
                assert im.format == "PNG" and im.mode == "RGB" and im.size == (32, 32)
                np.testing.assert_array_equal(np.asarray(im), img)
    assert set(w.labels["train"][:, 0].astype(int)) == set(range(10))


# ---------------------------------------------------------------- generic CSV


def test_image_csv(tmp_path: Path) -> None:
    w = write_image_csv(tmp_path, n=24, height=12, width=10)
    _check_shapes(w, ("train", "val", "test"), 3)
    assert w.label_names == ("smiling", "age", "glasses") and w.domains is not None
    df = pd.read_csv(tmp_path / "labels.csv", dtype={"glasses": "Int64"})
    assert list(df.columns) == ["path", "smiling", "age", "glasses", "split", "domain"]
    assert df["glasses"].isna().any() and df["age"].isna().any()
    assert set(df["split"]) == {"train", "val", "test"} and set(df["domain"]) == {"a", "b"}
    assert list(df["split"]) != sorted(df["split"])  # interleaved, not grouped
    for split in ("train", "val", "test"):
        rows = df[df["split"] == split]
        x = np.stack([_decode(tmp_path / p) for p in rows["path"]])
        np.testing.assert_array_equal(x, w.images[split])
        expected = np.stack(
            [rows["smiling"], rows["age"], rows["glasses"].fillna(-1).astype(float)], axis=1
        ).astype(np.float32)
        np.testing.assert_array_equal(expected, w.labels[split])  # NaN == NaN here
        np.testing.assert_array_equal(rows["domain"].to_numpy(str), w.domains[split])
    assert w.images["train"].shape[1:] == (12, 10, 3)
    assert sum(len(v) for v in w.labels.values()) == 24


def test_image_csv_without_split_domain_missing_and_as_jpeg(tmp_path: Path) -> None:
    w = write_image_csv(
        tmp_path, n=9, with_split=False, with_domain=False, missing=False, image_format="jpg"
    )
    _check_shapes(w, ("all",), 3)
    assert w.domains is None
    df = pd.read_csv(tmp_path / "labels.csv")
    assert list(df.columns) == ["path", "smiling", "age", "glasses"]
    assert not df.isna().any().any()
    assert all(p.endswith(".jpg") for p in df["path"])
    x = np.stack([_decode(tmp_path / p) for p in df["path"]])
    np.testing.assert_array_equal(x, w.images["all"])


# ---------------------------------------------------------------- helpers


def test_corrupt_breaks_every_kind(tmp_path: Path) -> None:
    w = write_mnist_m(tmp_path / "m", n_train=2, n_test=1)
    png = w.files[0]
    corrupt(png)
    with pytest.raises(OSError), Image.open(png):
        pass
    c = write_cifar10(tmp_path / "c", n_per_batch=1, n_test=1)
    corrupt(c.files[0])
    with pytest.raises(pickle.UnpicklingError), c.files[0].open("rb") as f:
        pickle.load(f, encoding="bytes")
    text = tmp_path / "m" / "mnist_m" / "mnist_m_train_labels.txt"
    corrupt(text)
    with pytest.raises(UnicodeDecodeError):
        text.read_text(encoding="utf-8")


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def contents(w: Written, root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in w.files}

    for write in (write_mnist, write_svhn, write_cifar10, write_celeba, write_mnist_m):
        a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
        wa, wb, wc = write(a, seed=3), write(b, seed=3), write(c, seed=4)
        assert contents(wa, a) == contents(wb, b) != contents(wc, c), write.__name__
    a, b = tmp_path / "ca", tmp_path / "cb"
    assert contents(write_image_csv(a, seed=1), a) == contents(write_image_csv(b, seed=1), b)
