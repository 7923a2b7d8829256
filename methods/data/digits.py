"""`digits`: scikit-learn's real handwritten digits (1,797 images, 8×8, shipped
with the package, no download), with the digit class and four binary
attributes derived from it, so multi-attribute methods run on real pixels:

    digit   the class 0–9
    even    digit is even
    ge5     digit is 5 or more
    loop    the digit is written with a closed loop (0, 6, 8, 9)
    prime   digit is 2, 3, 5 or 7

Pixels (0–16) are scaled to uint8 (0–255). The split is stratified by digit,
60/20/20, with a fixed seed.
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset, Domain, stratified_split


def make_digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    digit = bunch.target.astype(np.int64)
    labels = np.stack(
        [
            digit,
            digit % 2 == 0,
            digit >= 5,
            np.isin(digit, (0, 6, 8, 9)),
            np.isin(digit, (2, 3, 5, 7)),
        ],
        axis=1,
    ).astype(np.float32)
    domain = Domain(
        name="digits",
        inputs=images,
        labels=labels,
        label_names=("digit", "even", "ge5", "loop", "prime"),
        split=stratified_split(digit, (0.6, 0.2, 0.2), seed=0),
    )
    return Dataset(
        name="digits",
        domains={"digits": domain},
        fingerprint="digits-v1:sklearn-load_digits",
        description="scikit-learn handwritten digits, 1797 images 8x8",
    )
