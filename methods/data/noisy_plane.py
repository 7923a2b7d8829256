"""`noisy_plane`: the SOSELETO paper's synthetic noisy-label problem (§4.1, Figure 1).

Points uniform in [−1, 1]², two classes split by the y-axis (class 1 where
x > 0). Domains, feature vectors (N, 2), label columns `label` (as given) and
`true_label` (the side the point lies on):

    source  `n_source` points, all train; `n_noisy` of them, chosen at random,
            carry the wrong label (the paper: 500 points, 100 corrupted)
    target  `n_target` clean training points (the paper: 50), plus clean val
            (200) and test (1,000) points to score the classifier

Deterministic per `seed`.
"""

from __future__ import annotations

import json

import numpy as np

from ..core.errors import DataError
from .dataset import Dataset, Domain, source_target_grid

_VERSION = 1
_VAL, _TEST = 200, 1000


def make_noisy_plane(
    n_source: int = 500, n_noisy: int = 100, n_target: int = 50, seed: int = 0
) -> Dataset:
    for key, value, low in (("n_source", n_source, 2), ("n_target", n_target, 2)):
        if not isinstance(value, int) or not low <= value <= 100_000:
            raise DataError(f"noisy_plane: {key}={value!r} must be an integer in [{low}, 100000]")
    if not isinstance(n_noisy, int) or not 0 <= n_noisy <= n_source:
        raise DataError(f"noisy_plane: n_noisy={n_noisy!r} must be an integer in [0, n_source]")
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"noisy_plane: seed={seed!r} must be a non-negative integer")
    rng = np.random.default_rng(seed)
    names = ("label", "true_label")

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
        return x, (x[:, 0] > 0).astype(np.int64)

    x_src, truth = points(n_source)
    given = truth.copy()
    flipped = rng.choice(n_source, size=n_noisy, replace=False)
    given[flipped] = 1 - given[flipped]
    source = Domain(
        "source",
        x_src,
        np.stack([given, truth], axis=1).astype(np.float32),
        names,
        np.full(n_source, "train"),
    )
    x_tgt, y_tgt = points(n_target + _VAL + _TEST)
    split = np.array(["train"] * n_target + ["val"] * _VAL + ["test"] * _TEST)
    target = Domain(
        "target", x_tgt, np.stack([y_tgt, y_tgt], axis=1).astype(np.float32), names, split
    )
    params: dict[str, object] = {
        "n_source": n_source,
        "n_noisy": n_noisy,
        "n_target": n_target,
        "seed": seed,
    }
    return Dataset(
        name="noisy_plane",
        domains={"source": source, "target": target},
        fingerprint=f"noisy_plane-v{_VERSION}:{json.dumps(params, sort_keys=True)}",
        description=f"2-D points split by the y-axis: source {n_source} ({n_noisy} mislabelled),"
        f" target {n_target} clean",
        params={
            **params,
            "grid_defaults": source_target_grid("label"),
        },
    )
