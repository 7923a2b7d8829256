"""Label-noise models for the noisy-label datasets.

- `confusion_matrix(k, noise, rng)`: the model the SOSELETO paper takes from
  Sukhbaatar et al. (2014) and Xiao et al. (2015) (§4.2): 1 − noise on the
  diagonal, the off-diagonal mass of each row (= noise) spread at random
  (a flat Dirichlet draw), so every row stays stochastic;
- `symmetric_matrix(k, noise)`: uniform flips, noise / (k − 1) to every other class;
- `corrupt(labels, matrix, rng)`: each label replaced by a draw from its row.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import DataError


def _check(k: int, noise: float) -> None:
    if k < 2:
        raise DataError(f"a noise model needs at least 2 classes, got {k}")
    if not 0.0 <= noise < 1.0:
        raise DataError(f"noise={noise!r} must be in [0, 1)")


def confusion_matrix(k: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """A k×k row-stochastic matrix with 1 − noise on the diagonal, random elsewhere."""
    _check(k, noise)
    matrix = np.zeros((k, k))
    for i in range(k):
        off = rng.dirichlet(np.ones(k - 1)) * noise
        matrix[i, np.arange(k) != i] = off
        matrix[i, i] = 1.0 - noise
    return matrix


def symmetric_matrix(k: int, noise: float) -> np.ndarray:
    """A k×k matrix with 1 − noise on the diagonal and noise / (k − 1) elsewhere."""
    _check(k, noise)
    matrix = np.full((k, k), noise / (k - 1))
    np.fill_diagonal(matrix, 1.0 - noise)
    return matrix


def corrupt(labels: np.ndarray, matrix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noisy copies of integer `labels`: label y becomes c with probability matrix[y, c]."""
    cumulative = np.cumsum(matrix, axis=1)
    cumulative[:, -1] = 1.0  # guard against rounding below 1
    draws = rng.random(len(labels))
    return (draws[:, None] > cumulative[labels]).sum(axis=1).astype(labels.dtype)
