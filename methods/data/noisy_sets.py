"""`noisy_sets`: several noisy annotations of the same images, the noisy multi-task
FER paper's synthetic CIFAR-10 protocol (§5.1) in miniature.

`base="digits"`: scikit-learn's digits (8×8 grey), one domain `digits`, the
class `digit` (10). `base="shapes"`: 2,000 generated `shapes` images (16×16
RGB), one domain `shapes`, the class `digit` standing for the 4-way class
2·round + large (so the column names match). Split 60/20/20, stratified by
class. Label columns:

    digit                 the clean class (scored on test only: the protocol has
                          no clean validation labels)
    digit_n1..digit_n3    three noisy copies: exactly 20%, 30% and 40% of the
                          rows (every split) get another class, uniformly
    ink                   a continuous label: how much ink the image holds (its
                          mean pixel intensity), min-max scaled to [−1, 1]
    ink_n                 ink plus Gaussian noise of standard deviation `ink_noise`

`n` > 0 keeps only the first n images (a small set for tests). Deterministic per
`seed`.
"""

from __future__ import annotations

import json

import numpy as np

from ..core.errors import DataError
from .dataset import Dataset, Domain, stratified_split

_VERSION = 1
FLIP_RATES = (0.2, 0.3, 0.4)


def flip_exactly(labels: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of integer `labels` with round(rate·n) rows, chosen at random, moved to
    another class chosen uniformly."""
    k = int(labels.max()) + 1
    out = labels.copy()
    rows = rng.choice(len(labels), size=round(rate * len(labels)), replace=False)
    out[rows] = (labels[rows] + rng.integers(1, k, size=len(rows))) % k
    return out


BASES = ("digits", "shapes")


def _base_images(base: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 NHWC images, clean integer classes) of the base dataset."""
    if base == "shapes":
        from .shapes import make_shapes

        domain = make_shapes(n=2000, image_size=16, seed=seed).domain()
        cls = 2 * domain.column("round") + domain.column("large")
        return domain.inputs, cls.astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, bunch.target.astype(np.int64)


def make_noisy_sets(
    ink_noise: float = 0.3, base: str = "digits", seed: int = 0, n: int = 0
) -> Dataset:
    if not 0.0 <= ink_noise <= 2.0:
        raise DataError(f"noisy_sets: ink_noise={ink_noise!r} must be in [0, 2]")
    if base not in BASES:
        raise DataError(f"noisy_sets: base={base!r} is not allowed; use one of {', '.join(BASES)}")
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"noisy_sets: seed={seed!r} must be a non-negative integer")
    if not isinstance(n, int) or n < 0 or 0 < n < 50:
        raise DataError(f"noisy_sets: n={n!r} must be 0 (every image) or at least 50")
    images, digit = _base_images(base, seed)
    if n:  # the first n images, for a small set (tests, quick looks)
        images, digit = images[:n], digit[:n]
    rng = np.random.default_rng(seed)
    noisy = [flip_exactly(digit, rate, rng) for rate in FLIP_RATES]
    mean_ink = images.reshape(len(images), -1).mean(1)
    ink = 2.0 * (mean_ink - mean_ink.min()) / (mean_ink.max() - mean_ink.min()) - 1.0
    ink_n = ink + rng.normal(0.0, ink_noise, size=len(ink))
    names = ("digit", "digit_n1", "digit_n2", "digit_n3", "ink", "ink_n")
    labels = np.stack([digit, *noisy, ink, ink_n], axis=1).astype(np.float32)
    split = stratified_split(digit, (0.6, 0.2, 0.2), seed)
    params: dict[str, object] = {"ink_noise": float(ink_noise), "base": base, "seed": seed}
    if n:
        params["n"] = n
    wrong = ", ".join(f"{float((n != digit).mean()):.0%}" for n in noisy)
    return Dataset(
        name="noisy_sets",
        domains={base: Domain(base, images, labels, names, split)},
        fingerprint=f"noisy_sets-v{_VERSION}:{json.dumps(params, sort_keys=True)}",
        description=f"{base} with three noisy label sets ({wrong} wrong) and a noisy ink"
        f" level (σ = {ink_noise})",
        params=params,
    )
