"""`shapes`: a generated multi-attribute image dataset with a controllable
correlation structure, built for pair searches that must run on a laptop.

Each image holds one object on a background. Twelve binary attributes decide
how it is drawn, from every factor a vision model can share or confuse:

    shape      round        ellipse (1) or rectangle (0)
    colour     red          reddish (1) or bluish (0) object
               bright       a bright (1) or dim (0) object
    size       large        large (1) or small (0) object
    position   left, top    centre in the left / top half of the image
    orientation vertical    long axis vertical (1) or horizontal (0), ±15° jitter
    texture    striped      stripes across the object (1) or a solid fill (0)
               outlined     a contrasting outline (1) or none (0)
    background dark_bg      dark (1) or light (0) background
               textured_bg  a checkerboard (1) or a plain (0) background
    distractor marker       a small grey square in a corner (1) or none (0)

Every continuous factor (exact hue, size, position within its half, angle,
shade) is jittered and pixel noise is added, so no attribute is a single pixel.

Correlation: the attributes are thresholded components of a Gaussian vector
whose covariance ties the pairs in `CORRELATED_PAIRS` with coefficient
`correlation` (Gaussian copula, every attribute balanced at 50%). With
`correlation=0` all twelve are independent.

Deterministic: the same (n, image_size, seed, correlation) gives the same bytes.
"""

from __future__ import annotations

import json

import numpy as np

from ..core.errors import DataError
from .dataset import Dataset, Domain, seeded_split

ATTRIBUTES = (
    "round",
    "red",
    "bright",
    "large",
    "left",
    "top",
    "vertical",
    "striped",
    "outlined",
    "dark_bg",
    "textured_bg",
    "marker",
)

# Pairs whose latent Gaussians share `correlation`; disjoint, so any |ρ| < 1 is valid.
CORRELATED_PAIRS = (("red", "large"), ("left", "striped"), ("round", "dark_bg"), ("top", "marker"))

_VERSION = 1  # bump when the renderer changes, so fingerprints (and resumes) notice


def make_shapes(
    n: int = 3000,
    image_size: int = 32,
    seed: int = 0,
    correlation: float = 0.0,
) -> Dataset:
    """Generate the `shapes` dataset (one domain, 60/20/20 train/val/test split)."""
    if not isinstance(n, int) or n < 30:
        raise DataError(f"shapes: n={n!r} is too small; use an integer ≥ 30")
    if not isinstance(image_size, int) or not 16 <= image_size <= 256:
        raise DataError(f"shapes: image_size={image_size!r} must be an integer in [16, 256]")
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"shapes: seed={seed!r} must be a non-negative integer")
    if not -0.99 <= float(correlation) <= 0.99:
        raise DataError(f"shapes: correlation={correlation!r} must be in [-0.99, 0.99]")

    rng = np.random.default_rng(seed)
    labels = _sample_attributes(rng, n, float(correlation))
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:image_size, 0:image_size].astype(np.float32) + 0.5
    for i in range(n):
        images[i] = _render(rng, dict(zip(ATTRIBUTES, labels[i], strict=True)), xs, ys)

    params: dict[str, object] = {
        "n": n,
        "image_size": image_size,
        "seed": seed,
        "correlation": float(correlation),
    }
    domain = Domain(
        name="shapes",
        inputs=images,
        labels=labels.astype(np.float32),
        label_names=ATTRIBUTES,
        split=seeded_split(n, (0.6, 0.2, 0.2), seed),
    )
    return Dataset(
        name="shapes",
        domains={"shapes": domain},
        fingerprint=f"shapes-v{_VERSION}:{json.dumps(params, sort_keys=True)}",
        description=f"generated shapes, {n} images {image_size}x{image_size}, 12 binary attributes",
        params=params,
    )


def _sample_attributes(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    m = len(ATTRIBUTES)
    cov = np.eye(m)
    for a, b in CORRELATED_PAIRS:
        i, j = ATTRIBUTES.index(a), ATTRIBUTES.index(b)
        cov[i, j] = cov[j, i] = rho
    latent = rng.multivariate_normal(np.zeros(m), cov, size=n, method="cholesky")
    return (latent > 0).astype(np.int64)


def _render(
    rng: np.random.Generator, a: dict[str, int], xs: np.ndarray, ys: np.ndarray
) -> np.ndarray:
    size = xs.shape[0]
    # Background: shade, then an optional checkerboard of random phase.
    shade = rng.uniform(0.08, 0.3) if a["dark_bg"] else rng.uniform(0.7, 0.92)
    tint = rng.uniform(-0.04, 0.04, size=3)
    img = np.broadcast_to(shade + tint, (size, size, 3)).astype(np.float32).copy()
    if a["textured_bg"]:
        period = max(2, size // 8)
        phase = rng.integers(0, period, size=2)
        checker = (
            (xs.astype(int) + phase[0]) // period + (ys.astype(int) + phase[1]) // period
        ) % 2
        img += (checker[..., None] - 0.5) * 0.16

    # Object geometry: half-axes, centre in the chosen halves, orientation with jitter.
    long_axis = size * (rng.uniform(0.26, 0.32) if a["large"] else rng.uniform(0.14, 0.19))
    short_axis = long_axis * rng.uniform(0.5, 0.62)
    margin = long_axis * 0.7
    cx = rng.uniform(margin, size / 2) if a["left"] else rng.uniform(size / 2, size - margin)
    cy = rng.uniform(margin, size / 2) if a["top"] else rng.uniform(size / 2, size - margin)
    angle = (np.pi / 2 if a["vertical"] else 0.0) + rng.uniform(-np.pi / 12, np.pi / 12)
    dx, dy = xs - cx, ys - cy
    u = np.cos(angle) * dx + np.sin(angle) * dy  # along the long axis
    v = -np.sin(angle) * dx + np.cos(angle) * dy

    def inside(scale: float) -> np.ndarray:
        if a["round"]:
            return (u / (long_axis * scale)) ** 2 + (v / (short_axis * scale)) ** 2 <= 1.0
        return (np.abs(u) <= long_axis * scale) & (np.abs(v) <= short_axis * scale)

    body = inside(1.0)
    hue = (
        np.array([rng.uniform(0.75, 1.0), rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.25)])
        if a["red"]
        else np.array([rng.uniform(0.05, 0.25), rng.uniform(0.2, 0.45), rng.uniform(0.75, 1.0)])
    )
    colour = hue * (rng.uniform(0.85, 1.0) if a["bright"] else rng.uniform(0.4, 0.55))
    fill = np.broadcast_to(colour, (size, size, 3)).astype(np.float32)
    if a["striped"]:
        period = max(3.0, long_axis / 2.2)
        stripes = np.sin(2 * np.pi * u / period) > 0
        fill = np.where(stripes[..., None], fill * 0.45, fill)
    img = np.where(body[..., None], fill, img)
    if a["outlined"]:
        ring = inside(1.18) & ~body
        edge = 0.0 if shade > 0.5 else 1.0  # contrast with the background
        img = np.where(ring[..., None], edge, img)

    if a["marker"]:
        m = max(2, size // 10)
        corner = rng.integers(0, 4)
        y0 = 1 if corner < 2 else size - m - 1
        x0 = 1 if corner % 2 == 0 else size - m - 1
        img[y0 : y0 + m, x0 : x0 + m] = 0.5

    img += rng.normal(0.0, 0.03, size=img.shape).astype(np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
