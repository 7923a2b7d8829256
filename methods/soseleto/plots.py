"""SOSELETO's Figure 2 as a PNG: the effective noise level of the source against
the fraction of samples kept, keeping those with the largest α (drawn from the
`alpha_curve` artifact, `alpha_stats.noise_curve`)."""

from __future__ import annotations

import numpy as np

from ..core.figures import png_bytes, pyplot


def noise_curve_png(columns: dict[str, np.ndarray]) -> bytes:
    """SOSELETO's Figure 2: effective noise level against the fraction of source
    samples kept, keeping those with the largest α."""
    plt = pyplot()

    kept = np.asarray(columns["kept_fraction"], dtype=np.float64)
    noise = np.asarray(columns["effective_noise"], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    ax.plot(kept, noise, marker="o", color="#1565c0", label="kept by α")
    ax.axhline(noise[-1], color="#9e9e9e", linestyle="--", label="whole source")
    ax.set_xlabel("fraction of source samples kept")
    ax.set_ylabel("effective noise level")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, max(0.05, float(noise.max()) * 1.15))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png_bytes(fig, dpi=110)
