"""`noisy_digits`: scikit-learn's digits with noisy labels and a small clean set,
the SOSELETO paper's noisy CIFAR-10 protocol (§4.2) in miniature.

Images 8×8 grey (uint8). A stratified quarter of the digits is the clean test
set; of the rest, `n_clean` clean training and 100 clean validation digits
(stratified) form the target, and every other digit is the noisy source.
Label columns `digit` (as given) and `true_digit`:

    source  noisy digits, all train: `digit` drawn from the row of a confusion
            matrix with 1 − `noise` on the diagonal (`noise_model`: "confusion",
            random stochastic off-diagonals as in the paper; "symmetric",
            uniform flips)
    target  clean train (`n_clean`), val and test digits

Deterministic per `seed` (the split, the matrix and the draws).
"""

from __future__ import annotations

import json

import numpy as np

from ..core.errors import DataError
from .dataset import Dataset, Domain, source_target_grid, stratified_split
from .noise import confusion_matrix, corrupt, symmetric_matrix

_VERSION = 1
_VAL = 100
NOISE_MODELS = ("confusion", "symmetric")


def make_noisy_digits(
    noise: float = 0.3, n_clean: int = 100, noise_model: str = "confusion", seed: int = 0
) -> Dataset:
    from sklearn.datasets import load_digits

    if not 0.0 <= noise < 1.0:
        raise DataError(f"noisy_digits: noise={noise!r} must be in [0, 1)")
    if not isinstance(n_clean, int) or not 10 <= n_clean <= 600:
        raise DataError(f"noisy_digits: n_clean={n_clean!r} must be an integer in [10, 600]")
    if noise_model not in NOISE_MODELS:
        raise DataError(
            f"noisy_digits: noise_model={noise_model!r} is not allowed; use one of"
            f" {', '.join(NOISE_MODELS)}"
        )
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"noisy_digits: seed={seed!r} must be a non-negative integer")
    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    digit = bunch.target.astype(np.int64)
    n = len(digit)
    # test / target (train + val) / source, each stratified by digit
    rest_share = (n_clean + _VAL) / (0.75 * n)
    first = stratified_split(digit, (0.75 * rest_share, 0.75 * (1 - rest_share), 0.25), seed)
    target_pool = np.flatnonzero(first == "train")
    source_rows = np.flatnonzero(first == "val")
    test_rows = np.flatnonzero(first == "test")
    inner = stratified_split(
        digit[target_pool], (n_clean / len(target_pool), 1 - n_clean / len(target_pool), 0.0), seed
    )
    rng = np.random.default_rng(seed)
    k = int(digit.max()) + 1
    if noise_model == "confusion":
        matrix = confusion_matrix(k, noise, rng)
    else:
        matrix = symmetric_matrix(k, noise)
    given = corrupt(digit[source_rows], matrix, rng)
    names = ("digit", "true_digit")
    source = Domain(
        "source",
        images[source_rows],
        np.stack([given, digit[source_rows]], axis=1).astype(np.float32),
        names,
        np.full(len(source_rows), "train"),
    )
    target_rows = np.concatenate([target_pool, test_rows])
    target_split = np.concatenate(
        [np.where(inner == "train", "train", "val"), np.full(len(test_rows), "test")]
    )
    target = Domain(
        "target",
        images[target_rows],
        np.stack([digit[target_rows]] * 2, axis=1).astype(np.float32),
        names,
        target_split,
    )
    params: dict[str, object] = {
        "noise": float(noise),
        "n_clean": n_clean,
        "noise_model": noise_model,
        "seed": seed,
    }
    actual = float((given != digit[source_rows]).mean())
    return Dataset(
        name="noisy_digits",
        domains={"source": source, "target": target},
        fingerprint=f"noisy_digits-v{_VERSION}:{json.dumps(params, sort_keys=True)}",
        description=f"scikit-learn digits: source {len(source_rows)} noisy ({actual:.0%} wrong),"
        f" target {int((target_split == 'train').sum())} clean train,"
        f" {int((target_split == 'val').sum())} val, {len(test_rows)} test",
        params={
            **params,
            "grid_defaults": source_target_grid("digit"),
        },
    )
