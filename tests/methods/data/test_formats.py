"""The on-disk readers against fixtures written in each exact format by
`format_fixtures` (independently of the readers): pixels, labels and splits as
written, the decode-once cache reused and rebuilt, image options, and one
sentence naming the expected file for every missing or malformed one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from methods.core.errors import DataError
from methods.data.formats import load_from_disk
from methods.data.formats.cache import CACHE_DIR_NAME

from .format_fixtures import (
    CELEBA_ATTRIBUTES,
    Written,
    corrupt,
    write_celeba,
    write_cifar10,
    write_image_csv,
    write_mnist,
    write_mnist_m,
    write_svhn,
)

# the train/test releases: the written train is our train + val, in order
TRAIN_TEST: list[tuple[str, Callable[[Path], Written]]] = [
    ("mnist", write_mnist),
    ("mnist", lambda root: write_mnist(root, gzip=True)),
    ("svhn", write_svhn),
    ("cifar10", write_cifar10),
    ("mnist_m", write_mnist_m),
]


def _rows(dataset_domain, split: str) -> tuple[np.ndarray, np.ndarray]:
    rows = dataset_domain.indices(split)
    return np.asarray(dataset_domain.inputs[rows]), dataset_domain.labels[rows]


@pytest.mark.parametrize(("name", "write"), TRAIN_TEST, ids=["mnist", "mnist-gz", "svhn",
                                                            "cifar10", "mnist_m"])  # fmt: skip
def test_train_test_releases_read_as_written(
    tmp_path: Path, name: str, write: Callable[[Path], Written]
) -> None:
    written = write(tmp_path)
    domain = load_from_disk(name, tmp_path, {"val_fraction": 0.0}).domain()
    assert domain.label_names == written.label_names
    assert set(domain.split) == {"train", "test"}
    for split in ("train", "test"):
        images, labels = _rows(domain, split)
        np.testing.assert_array_equal(images, written.images[split])
        np.testing.assert_array_equal(labels, written.labels[split])


def test_val_is_carved_from_train_per_class(tmp_path: Path) -> None:
    written = write_mnist(tmp_path, n_train=42)
    domain = load_from_disk("mnist", tmp_path, {"val_fraction": 0.25}).domain()
    train_rows = np.flatnonzero(np.isin(domain.split, ["train", "val"]))
    np.testing.assert_array_equal(domain.labels[train_rows], written.labels["train"])
    digits = written.labels["train"][:, 0]
    val = domain.labels[domain.indices("val"), 0]
    assert len(val) == round(0.25 * 42)
    for d in np.unique(digits):  # each class its share, rounded down or up
        share = 0.25 * (digits == d).sum()
        assert np.floor(share) <= (val == d).sum() <= np.ceil(share)
    again = load_from_disk("mnist", tmp_path, {"val_fraction": 0.25}).domain()
    np.testing.assert_array_equal(again.split, domain.split)  # seeded
    other = load_from_disk("mnist", tmp_path, {"val_fraction": 0.25, "split_seed": 1}).domain()
    assert not np.array_equal(other.split, domain.split)


def test_celeba_official_partition_and_names_from_the_file(tmp_path: Path) -> None:
    written = write_celeba(tmp_path)
    dataset = load_from_disk("celeba", tmp_path)
    domain = dataset.domain("celeba")
    assert domain.label_names == CELEBA_ATTRIBUTES and len(CELEBA_ATTRIBUTES) == 40
    for split in ("train", "val", "test"):
        images, labels = _rows(domain, split)
        np.testing.assert_array_equal(images, written.images[split])
        np.testing.assert_array_equal(labels, written.labels[split])
    assert domain.binary_attributes() == list(CELEBA_ATTRIBUTES)


def test_celeba_with_windows_line_endings(tmp_path: Path) -> None:
    written = write_celeba(tmp_path)
    for name in ("list_attr_celeba.txt", "list_eval_partition.txt"):
        path = tmp_path / "celeba" / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    labels = load_from_disk("celeba", tmp_path).domain().labels
    np.testing.assert_array_equal(labels[:18], written.labels["train"])


def test_image_csv_domains_missing_labels_and_splits(tmp_path: Path) -> None:
    written = write_image_csv(tmp_path)
    assert written.domains is not None
    dataset = load_from_disk("image_csv", tmp_path)
    assert sorted(dataset.domains) == ["a", "b"]
    for name, domain in dataset.domains.items():
        assert domain.label_names == ("smiling", "age", "glasses")
        for split in ("train", "val", "test"):
            mine = written.domains[split] == name
            images, labels = _rows(domain, split)
            np.testing.assert_array_equal(images, written.images[split][mine])
            np.testing.assert_array_equal(labels, written.labels[split][mine])  # -1, NaN alike
    assert (dataset.domain("a").column("glasses") == -1).any()


def test_image_csv_without_split_or_domain_is_one_seeded_domain(tmp_path: Path) -> None:
    written = write_image_csv(tmp_path, with_split=False, with_domain=False, image_format="jpg")
    domain = load_from_disk("image_csv", tmp_path).domain("images")
    np.testing.assert_array_equal(np.asarray(domain.inputs), written.images["all"])
    assert {"train", "val", "test"} == set(domain.split)


def test_images_of_mixed_size_and_mode_need_options(tmp_path: Path) -> None:
    written = write_image_csv(tmp_path, with_domain=False, height=12, width=10)
    odd = tmp_path / "images" / "all" / "img_005.png"
    Image.fromarray(written.images["train"][0][:8, :6, 0], "L").save(odd)  # smaller, grey
    with pytest.raises(DataError, match=r"differ in shape \(10x12, RGB first, 6x8, grey at row"):
        load_from_disk("image_csv", tmp_path)
    domain = load_from_disk("image_csv", tmp_path, {"size": 8, "channels": 3}).domain()
    assert domain.inputs.shape == (24, 8, 8, 3)


def test_joined_formats_are_domains_of_one_size(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    write_svhn(tmp_path)
    write_mnist_m(tmp_path, size=28)
    options = {"size": 32, "channels": 3}
    dataset = load_from_disk("mnist+svhn+mnist_m", tmp_path, options)
    assert list(dataset.domains) == ["mnist", "svhn", "mnist_m"]
    for domain in dataset.domains.values():
        assert domain.inputs.shape[1:] == (32, 32, 3) and domain.label_names == ("digit",)
    grey = np.asarray(dataset.domain("mnist").inputs)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def test_crop_then_size(tmp_path: Path) -> None:
    written = write_celeba(tmp_path, height=22, width=18)
    cropped = load_from_disk("celeba", tmp_path, {"crop": 18}).domain()
    # the centred 18x18 square: rows 2..19 of the 22 (PIL's crop box, exactly)
    np.testing.assert_array_equal(
        np.asarray(cropped.inputs[cropped.indices("train")]), written.images["train"][:, 2:20]
    )
    small = load_from_disk("celeba", tmp_path, {"crop": 18, "size": 8}).domain()
    assert small.inputs.shape == (30, 8, 8, 3)
    with pytest.raises(DataError, match="smaller than crop=40"):
        load_from_disk("celeba", tmp_path, {"crop": 40})


# ---------------------------------------------------------------- the decode-once cache


def _cache_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / CACHE_DIR_NAME).iterdir() if not p.name.startswith("."))


def test_the_cache_is_reused_then_rebuilt_when_a_source_file_changes(tmp_path: Path) -> None:
    written = write_celeba(tmp_path)
    said: list[str] = []
    first = load_from_disk("celeba", tmp_path, echo=said.append)
    assert len(said) == 1 and "decoding 30 images once" in said[0]
    assert isinstance(first.domain().inputs, np.memmap)
    (entry,) = _cache_dirs(tmp_path)
    stamp = (entry / "images.npy").stat().st_mtime_ns

    second = load_from_disk("celeba", tmp_path, echo=said.append)
    assert len(said) == 1  # nothing decoded
    assert _cache_dirs(tmp_path) == [entry]
    assert (entry / "images.npy").stat().st_mtime_ns == stamp
    assert second.fingerprint == first.fingerprint

    # one image replaced by another picture: rebuilt, the stale array removed
    changed = tmp_path / "celeba" / "img_align_celeba" / "000001.jpg"
    Image.new("RGB", (18, 22), (255, 0, 0)).save(changed, format="JPEG", quality=100)
    third = load_from_disk("celeba", tmp_path, echo=said.append)
    assert len(said) == 2
    (rebuilt,) = _cache_dirs(tmp_path)
    assert rebuilt != entry
    assert third.fingerprint != first.fingerprint
    red = np.asarray(third.domain().inputs[0], dtype=int)
    assert red[..., 0].mean() > 240 and red[..., 1].mean() < 15
    np.testing.assert_array_equal(third.domain().inputs[1], written.images["train"][1])


def test_other_image_options_get_their_own_cache(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    said: list[str] = []
    load_from_disk("mnist", tmp_path, echo=said.append)
    load_from_disk("mnist", tmp_path, {"size": 16}, echo=said.append)
    load_from_disk("mnist", tmp_path, {"val_fraction": 0.3}, echo=said.append)  # same pixels
    assert len(said) == 2 and len(_cache_dirs(tmp_path)) == 2


def test_a_read_only_data_root_caches_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from methods.data.formats import cache

    data = tmp_path / "data"
    write_mnist(data)
    monkeypatch.setenv("AUXSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    # a read-only mount (as root, the tests cannot make one with chmod)
    monkeypatch.setattr(cache.os, "access", lambda path, mode: not str(path).startswith(str(data)))
    load_from_disk("mnist", data)
    assert not (data / CACHE_DIR_NAME).exists()
    assert len(list((tmp_path / "cache").rglob("images.npy"))) == 1
    said: list[str] = []
    load_from_disk("mnist", data, echo=said.append)
    assert said == []  # found there again


# ---------------------------------------------------------------- missing and malformed files


@pytest.mark.parametrize(
    ("name", "write", "remove", "expected"),
    [
        ("mnist", write_mnist, "MNIST/raw/t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte is"),
        ("svhn", write_svhn, "test_32x32.mat", "test_32x32.mat is missing"),
        ("cifar10", write_cifar10, "cifar-10-batches-py/data_batch_3", "data_batch_3 is missing"),
        ("celeba", write_celeba, "celeba/list_eval_partition.txt", "partition.txt is missing"),
        ("celeba", write_celeba, "celeba/img_align_celeba/000007.jpg", "000007.jpg is listed in"),
        ("mnist_m", write_mnist_m, "mnist_m/mnist_m_test/00000003.png", "00000003.png is listed"),
        ("mnist_m", write_mnist_m, "mnist_m/mnist_m_test_labels.txt", "test_labels.txt is missing"),
        ("image_csv", write_image_csv, "labels.csv", "labels.csv is missing"),
    ],
)  # fmt: skip
def test_a_missing_file_is_named_with_the_layout(
    tmp_path: Path, name: str, write: Callable[[Path], Written], remove: str, expected: str
) -> None:
    write(tmp_path)
    (tmp_path / remove).unlink()
    with pytest.raises(DataError, match=expected):
        load_from_disk(name, tmp_path)
    assert not any((tmp_path / CACHE_DIR_NAME).glob("*/images.npy"))


@pytest.mark.parametrize(
    ("name", "write", "broken", "expected"),
    [
        ("mnist", write_mnist, "MNIST/raw/train-images-idx3-ubyte", "is not an IDX file"),
        ("svhn", write_svhn, "train_32x32.mat", "is not a readable MATLAB v5 file"),
        ("cifar10", write_cifar10, "cifar-10-batches-py/test_batch", "is not a CIFAR-10"),
        ("celeba", write_celeba, "celeba/list_attr_celeba.txt", "attr_celeba.txt is not a text"),
        ("celeba", write_celeba, "celeba/img_align_celeba/000004.jpg", "000004.jpg cannot be"),
        ("mnist_m", write_mnist_m, "mnist_m/mnist_m_train/00000002.png", "cannot be decoded"),
    ],
)  # fmt: skip
def test_a_malformed_file_is_named(
    tmp_path: Path, name: str, write: Callable[[Path], Written], broken: str, expected: str
) -> None:
    write(tmp_path)
    corrupt(tmp_path / broken)
    with pytest.raises(DataError, match=expected) as raised:
        load_from_disk(name, tmp_path)
    assert "\n" not in str(raised.value)
    # nothing half-built is left to be mistaken for a cache
    assert not any((tmp_path / CACHE_DIR_NAME).glob("*/images.npy"))
    assert not any((tmp_path / CACHE_DIR_NAME).glob(".building-*"))


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    import pickle

    write_cifar10(tmp_path)
    evil = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    evil.write_bytes(pickle.dumps({"data": os.system, "labels": []}))
    with pytest.raises(DataError, match="refusing to load"):
        load_from_disk("cifar10", tmp_path)


def test_bad_csv_values_and_options(tmp_path: Path) -> None:
    write_image_csv(tmp_path)
    csv_path = tmp_path / "labels.csv"
    lines = csv_path.read_text().splitlines()
    first = lines[1].split(",")
    first[1] = "yes"
    csv_path.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    with pytest.raises(DataError, match="line 2: column 'smiling' holds 'yes'"):
        load_from_disk("image_csv", tmp_path)
    with pytest.raises(DataError, match="has no option 'extra'; its options: size, crop"):
        load_from_disk("mnist", tmp_path, {"extra": True})
    with pytest.raises(DataError, match="channels=2 is not allowed"):
        load_from_disk("image_csv", tmp_path, {"channels": 2})
    with pytest.raises(DataError, match="'celebA' is not a format"):
        load_from_disk("celebA", tmp_path)
    with pytest.raises(DataError, match="holds no MNIST data; expected train-images"):
        load_from_disk("mnist", tmp_path)
