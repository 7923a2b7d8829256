"""`digit_transfer`: few-shot transfer across label sets and a domain gap, the
SOSELETO paper's SVHN 0–4 → MNIST 5–9 experiment (§4.3) in miniature, built
from scikit-learn's digits.

    source  digits 0–4 blended over patches of scikit-learn's two sample photos
            (street-number-like clutter, the SVHN side), all labelled, all train
    target  digits 5–9, white on black (the MNIST side): `n_target` labelled
            training digits (the same number per class; the paper: 20 or 25),
            100 labelled validation digits, the remaining digits split in half
            into unlabelled training digits (`digit` = −1; two-stage SOSELETO
            relabels them) and clean test digits

Label columns `digit` (as given; the target keeps the values 5–9, so a target
classifier has 10 outputs of which 5 are never trained) and `true_digit` (every
row's real digit, for measuring pseudo labels). Images 32×32 RGB;
deterministic per `seed`.
"""

from __future__ import annotations

import json

import numpy as np

from ..core.errors import DataError
from .dataset import Dataset, Domain, source_target_grid
from .digit_domains import _blended, _plain, _upscale

_VERSION = 1
_VAL_PER_CLASS = 20
_SOURCE_DIGITS = (0, 1, 2, 3, 4)
_TARGET_DIGITS = (5, 6, 7, 8, 9)


def make_digit_transfer(n_target: int = 25, seed: int = 0) -> Dataset:
    from sklearn.datasets import load_digits, load_sample_images

    k = len(_TARGET_DIGITS)
    if not isinstance(n_target, int) or not k <= n_target <= 300 or n_target % k:
        raise DataError(
            f"digit_transfer: n_target={n_target!r} must be a multiple of {k} in [{k}, 300]"
            " (the same number of labelled digits per target class)"
        )
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"digit_transfer: seed={seed!r} must be a non-negative integer")
    rng = np.random.default_rng(seed)
    bunch = load_digits()
    strokes = _upscale(bunch.images / 16.0)
    digits = bunch.target.astype(np.int64)
    names = ("digit", "true_digit")

    src = np.flatnonzero(np.isin(digits, _SOURCE_DIGITS))
    photos = [np.asarray(img, dtype=np.float32) for img in load_sample_images().images]
    blended, _ = _blended(strokes[src], photos, rng)
    source = Domain(
        "source",
        blended,
        np.stack([digits[src]] * 2, axis=1).astype(np.float32),
        names,
        np.full(len(src), "train"),
    )

    rows, split, given = [], [], []
    per_class = n_target // k
    for d in _TARGET_DIGITS:
        members = rng.permutation(np.flatnonzero(digits == d))
        n_rest = len(members) - per_class - _VAL_PER_CLASS
        n_unlabelled = n_rest // 2
        parts = (
            ("train", per_class, d),
            ("val", _VAL_PER_CLASS, d),
            ("train", n_unlabelled, -1),
            ("test", n_rest - n_unlabelled, d),
        )
        start = 0
        for name, count, label in parts:
            rows.append(members[start : start + count])
            split.append(np.full(count, name))
            given.append(np.full(count, label))
            start += count
    tgt = np.concatenate(rows)
    target_split = np.concatenate(split)
    labelled = np.concatenate(given)
    target = Domain(
        "target",
        _plain(strokes[tgt], rng),
        np.stack([labelled, digits[tgt]], axis=1).astype(np.float32),
        names,
        target_split,
    )
    params: dict[str, object] = {"n_target": n_target, "seed": seed}
    n_unlabelled_total = int(((target_split == "train") & (labelled < 0)).sum())
    return Dataset(
        name="digit_transfer",
        domains={"source": source, "target": target},
        fingerprint=f"digit_transfer-v{_VERSION}:{json.dumps(params, sort_keys=True)}",
        description=f"scikit-learn digits: source {len(src)} blended digits 0-4, target digits"
        f" 5-9 with {n_target} labelled, {n_unlabelled_total} unlabelled,"
        f" {int((target_split == 'test').sum())} test",
        params={
            **params,
            "grid_defaults": source_target_grid("digit"),
        },
    )
