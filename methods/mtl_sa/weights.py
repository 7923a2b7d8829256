"""MTL-SA's per-sample weights (§4.1–4.2, supplementary G–I): tempered soft
labels, the confidence wᶜ, the local density wᵈ and the domain weight wᵍ from
Gaussian mixtures and the EMD between their means, and how each mode of the
kernel combines them into w of eq. 6. Plain NumPy (and POT, scikit-learn), so
each piece is checked against an independent computation in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Each entry to the power 1/T, renormalised per row (§4.2)."""
    powered = np.power(np.clip(probs, 1e-12, None), 1.0 / temperature)
    return powered / powered.sum(axis=1, keepdims=True)


def local_density(features: np.ndarray, groups: np.ndarray, kappa: float) -> np.ndarray:
    """wᵈ: ρ_i / max ρ within each group (supplementary G)."""
    out = np.ones(len(features))
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        f = features[idx].astype(np.float64)
        sq = (f * f).sum(1)
        dist = np.clip(sq[:, None] + sq[None, :] - 2.0 * f @ f.T, 0.0, None)
        np.fill_diagonal(dist, 0.0)
        flat = np.sort(dist, axis=None)
        cutoff = flat[max(1, math.ceil(kappa * flat.size)) - 1]
        rho = (dist < cutoff).sum(1)
        if rho.max() > 0:  # all features equal: no density information, weight 1
            out[idx] = rho / rho.max()
    return out


def cluster_distances(
    means_b: np.ndarray, means_a: np.ndarray, weights_a: np.ndarray, how: str = "emd"
) -> np.ndarray:
    """d_k for every cluster k of B: the EMD from {(μᵇ_k, 1)} to {(μᵃ_j, πᵃ_j)} over
    d_kj = ‖μᵇ_k − μᵃ_j‖² (suppl. eq. 7), or the MMD to domain A's mean."""
    import ot

    pi = np.asarray(weights_a, dtype=np.float64)
    pi = pi / pi.sum()
    if how == "mmd":
        centre = pi @ means_a
        return np.asarray(((means_b - centre) ** 2).sum(1), dtype=np.float64)
    d = ((means_b[:, None, :] - means_a[None, :, :]) ** 2).sum(-1).astype(np.float64)
    out = np.empty(len(means_b))
    for k in range(len(means_b)):
        flow = ot.emd(np.array([1.0]), pi, d[k : k + 1])
        out[k] = float((flow * d[k : k + 1]).sum() / flow.sum())
    return out


def domain_weights(
    features_b: np.ndarray,
    features_a: np.ndarray,
    clusters_b: int,
    clusters_a: int,
    lam: float,
    seed: int,
    how: str = "emd",
) -> np.ndarray:
    """log wᵍ = −λ d̂_i with d̂_i = Σ_k γ_ik d_k (kept in log space: d̂ can be large)."""
    from sklearn.mixture import GaussianMixture

    def mixture(features: np.ndarray, k: int) -> GaussianMixture:
        return GaussianMixture(
            n_components=max(1, min(k, len(features))),
            covariance_type="diag",
            reg_covar=1e-4,
            random_state=seed,
            max_iter=100,
        ).fit(features.astype(np.float64))

    gmm_b, gmm_a = mixture(features_b, clusters_b), mixture(features_a, clusters_a)
    d = cluster_distances(gmm_b.means_, gmm_a.means_, gmm_a.weights_, how)
    gamma = gmm_b.predict_proba(features_b.astype(np.float64))
    return np.asarray(-lam * (gamma @ d), dtype=np.float64)


@dataclass
class SampleWeights:
    """The per-sample quantities of one dataset before an epoch (for the unlabelled task)."""

    task: str  # the task the dataset is not labelled for
    rows: np.ndarray
    soft: np.ndarray  # tempered soft labels (n, K)
    pseudo: np.ndarray  # argmax (n,)
    wc: np.ndarray
    wd: np.ndarray
    wg: np.ndarray
    w: np.ndarray

    @property
    def targets(self) -> np.ndarray:
        """ŷ = w·ȳ + (1 − w)·ỹ' (eq. 6)."""
        onehot = np.eye(self.soft.shape[1])[self.pseudo]
        return self.w[:, None] * onehot + (1.0 - self.w[:, None]) * self.soft


def combine(mode: str, log_wc: np.ndarray, log_wd: np.ndarray, log_wg: np.ndarray) -> np.ndarray:
    """w of each mode, normalised by its maximum over the dataset (§4.2)."""
    n = len(log_wc)
    if mode in ("wf", "zero"):
        return np.zeros(n)
    if mode == "one":
        return np.ones(n)
    if mode == "half":
        return np.full(n, 0.5)
    logs = {
        "sa": log_wc + log_wd + log_wg,
        "only_c": log_wc,
        "only_d": log_wd,
        "only_g": log_wg,
        "only_g_mmd": log_wg,
    }[mode]
    return np.asarray(np.exp(logs - logs.max()), dtype=np.float64)
