"""`digit_pair`: two disjoint datasets with different tasks and a domain gap, for
multi-task learning with disjoint datasets (MTL-SA, "Beyond Without
Forgetting"), built from scikit-learn's digits.

    a   white digits on black (MNIST-like), labelled only with `digit` (10 classes)
    b   other digits blended over patches of scikit-learn's two sample photos
        (the MNIST-M construction), labelled only with `photo`: which photo the
        patch came from (0 china, 1 flower)

Label columns `digit` and `photo`, −1 where a dataset is not labelled for a
task. The base digits of `a` and `b` do not overlap; each has its own
train/val/test split (60/20/20). Images 32×32 RGB; deterministic per `seed`.
"""

from __future__ import annotations

import json

import numpy as np

from ..core.errors import DataError
from .dataset import Dataset, Domain, seeded_split
from .digit_domains import _blended, _plain, _upscale

_VERSION = 1


def make_digit_pair(seed: int = 0) -> Dataset:
    from sklearn.datasets import load_digits, load_sample_images

    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"digit_pair: seed={seed!r} must be a non-negative integer")
    rng = np.random.default_rng(seed)
    bunch = load_digits()
    strokes = _upscale(bunch.images / 16.0)
    digits = bunch.target.astype(np.int64)
    order = rng.permutation(len(digits))
    pool_a, pool_b = order[: len(order) // 2], order[len(order) // 2 :]
    photos = [np.asarray(img, dtype=np.float32) for img in load_sample_images().images]
    blended, photo = _blended(strokes[pool_b], photos, rng)

    def labels(digit: np.ndarray, which: np.ndarray) -> np.ndarray:
        return np.stack([digit, which], axis=1).astype(np.float32)

    none_a, none_b = np.full(len(pool_a), -1), np.full(len(pool_b), -1)
    names = ("digit", "photo")
    domains = {
        "a": Domain(
            "a",
            _plain(strokes[pool_a], rng),
            labels(digits[pool_a], none_a),
            names,
            seeded_split(len(pool_a), (0.6, 0.2, 0.2), seed),
        ),
        "b": Domain(
            "b",
            blended,
            labels(none_b, photo),
            names,
            seeded_split(len(pool_b), (0.6, 0.2, 0.2), seed + 1),
        ),
    }
    params: dict[str, object] = {"seed": seed}
    return Dataset(
        name="digit_pair",
        domains=domains,
        fingerprint=f"digit_pair-v{_VERSION}:{json.dumps(params, sort_keys=True)}",
        description=f"scikit-learn digits as a disjoint pair: a {len(pool_a)} plain digits"
        f" (digit), b {len(pool_b)} blended digits (photo)",
        params={
            **params,
            "grid_defaults": {
                "task": "digit",
                "irrelevant": "b:photo",
                "train": ["a"],
                "test": ["a"],
            },
        },
    )
