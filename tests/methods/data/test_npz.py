from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from methods.data import DataError, load_npz
from tests.conftest import write_npz


def test_reads_the_contract(npz_file: Path) -> None:
    ds = load_npz(npz_file)
    d = ds.domain()
    assert d.name == "mine" and d.label_names == ("a", "b", "c")
    assert d.inputs.shape == (90, 8, 8, 1) and d.inputs.dtype == np.uint8
    assert len(d.indices("train")) == 30
    assert ds.fingerprint.startswith("npz:")


def test_fingerprint_follows_content(tmp_path: Path) -> None:
    a = load_npz(write_npz(tmp_path / "a.npz", seed=0)).fingerprint
    b = load_npz(write_npz(tmp_path / "b.npz", seed=0)).fingerprint
    c = load_npz(write_npz(tmp_path / "c.npz", seed=1)).fingerprint
    assert a == b != c


def test_vectors_missing_labels_domains_and_default_split(tmp_path: Path) -> None:
    n = 40
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(n, 2))
    labels[0, 1] = -1
    path = write_npz(
        tmp_path / "v.npz",
        n=n,
        inputs=rng.normal(size=(n, 6)),
        labels=labels,
        label_names=np.array(["x", "y"]),
        split=None,
        domain=np.array(["u", "v"])[np.arange(n) % 2],
        extra_thing=np.zeros(3),  # other arrays are ignored
    )
    ds = load_npz(path)
    assert list(ds.domains) == ["u", "v"]
    u = ds.domain("u")
    assert u.inputs.dtype == np.float32 and u.input_shape == (6,)
    assert u.labels[0, 1] == -1
    total = sum(len(d.indices("train")) for d in ds.domains.values())
    assert total == round(0.7 * n)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels": None}, "has no 'labels' array"),
        ({"inputs": np.zeros((90, 8, 8, 8, 2), np.uint8)}, "uint8 inputs must be"),
        ({"inputs": np.zeros((90, 3, 8, 8), np.float32)}, "must be \\(N, D\\) feature vectors"),
        ({"labels": np.zeros((80, 3))}, "labels must be \\(N, M\\) with N=90"),
        ({"label_names": np.array(["a", "b"])}, "'label_names' has 2 entries, expected 3"),
        ({"label_names": np.array(["a", "a", "b"])}, "repeat a name"),
        ({"split": np.array(["train", "dev", "test"])[np.arange(90) % 3]}, "split holds 'dev'"),
        ({"labels": np.full((90, 3), -2)}, "below -1"),
        ({"label_names": np.array([1, 2, 3])}, "must be an array of strings"),
    ],
)
def test_malformed_files_get_one_sentence(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    path = write_npz(tmp_path / "bad.npz", **overrides)
    with pytest.raises(DataError, match=message) as info:
        load_npz(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_npz(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(DataError, match="is not an .npz archive; write one with np.savez"):
        load_npz(junk)
    objects = tmp_path / "obj.npz"
    write_npz(objects, label_names=np.array(["a", "b", "c"], dtype=object))
    with pytest.raises(DataError, match="object array"):
        load_npz(objects)
