"""`digit_domains`: cross-dataset digit recognition built from scikit-learn's
real handwritten digits, in the shape of the Purified Learning paper's setup
(MNIST → MNIST-M / SVHN, with background colour as the task-irrelevant label).

Every image is 32×32 RGB (the paper's digit resolution), upscaled from the
8×8 originals. Domains (label columns `digit` and `bg`, −1 where absent):

    target      a small set (`n_target` base digits) on coloured backgrounds whose
                colour follows the digit (bg = digit mod K) with probability
                `bias`: the spurious cue a small training set carries
    irrelevant  a large set (`irrelevant_copies` renderings of its own base digits)
                on uniformly random background colours, labelled only by `bg`
                (`digit` is −1): the task-irrelevant set
    relevant    the irrelevant set's base digits once more, white on black and
                labelled by `digit`: a task-relevant set to pre-train on (PL
                appendix A), disjoint from every test digit
    plain       white digits on black (MNIST-like)
    coloured    white digits on uniformly random background colours
    blended     digits blended over patches of scikit-learn's two sample photos
                (|patch − digit|, the MNIST-M construction of Ganin et al.)

The base images are split three ways with no overlap: target, irrelevant (and
relevant), and an evaluation pool that `plain`, `coloured` and `blended` render
alike, with the same train/val/test assignment per base image, so training on
one of them and testing on another never tests on a trained digit.

`mapping="paper"` is the Purified Learning paper's own arrangement (§Datasets:
MNIST as the target; set A "randomly sampled from MNIST", set B "from the
combination of MNIST and SVHN"): the target is white on black, and the
irrelevant set is half white on black (`bg` = 6, black, the most frequent
value, so it is batch A's fixed value) and half on the coloured backgrounds.
The critic then tells the target-like background apart from colour, and Goal 2
pulls the target's features towards the colourful whole — where the default
mapping's coloured target already looks like B, so the critic and Goal 2 pull
the same way.
"""

from __future__ import annotations

import json

import numpy as np

from ..core.errors import DataError
from .dataset import Dataset, Domain, seeded_split

# Background colours (RGB 0–255), dark enough that white strokes stay visible.
PALETTE = np.array(
    [(200, 30, 30), (30, 150, 40), (30, 60, 200), (170, 140, 20), (150, 40, 170), (20, 140, 150)],
    dtype=np.float32,
)
_VERSION = 2
BLACK = len(PALETTE)  # the `bg` value of white-on-black digits (mapping="paper")
MAPPINGS = ("colour", "paper")


def make_digit_domains(
    n_target: int = 400,
    bias: float = 0.9,
    irrelevant_copies: int = 6,
    seed: int = 0,
    mapping: str = "colour",
) -> Dataset:
    """Build the six domains (deterministic for the same options)."""
    from sklearn.datasets import load_digits, load_sample_images

    if not isinstance(n_target, int) or not 40 <= n_target <= 1000:
        raise DataError(f"digit_domains: n_target={n_target!r} must be an integer in [40, 1000]")
    if not 0.0 <= float(bias) <= 1.0:
        raise DataError(f"digit_domains: bias={bias!r} must be in [0, 1]")
    if not isinstance(irrelevant_copies, int) or not 1 <= irrelevant_copies <= 20:
        raise DataError(
            f"digit_domains: irrelevant_copies={irrelevant_copies!r} must be in [1, 20]"
        )
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"digit_domains: seed={seed!r} must be a non-negative integer")
    if mapping not in MAPPINGS:
        raise DataError(
            f"digit_domains: mapping={mapping!r} is not allowed; use one of {', '.join(MAPPINGS)}"
        )
    rng = np.random.default_rng(seed)
    bunch = load_digits()
    strokes = _upscale(bunch.images / 16.0)  # (N, 32, 32) in [0, 1]
    digits = bunch.target.astype(np.int64)
    order = rng.permutation(len(digits))
    pool_t = order[:n_target]
    rest = order[n_target:]
    pool_i, pool_e = rest[: len(rest) // 2], rest[len(rest) // 2 :]
    k = len(PALETTE)

    domains = {}
    if mapping == "paper":  # MNIST-like target; A = the black half of the irrelevant set
        black = np.full(len(pool_t), BLACK)
        domains["target"] = _domain(
            "target",
            _plain(strokes[pool_t], rng),
            digits[pool_t],
            black,
            seeded_split(len(pool_t), (0.75, 0.125, 0.125), seed),
        )
        base = np.repeat(pool_i, irrelevant_copies)
        colours = np.where(rng.random(len(base)) < 0.5, BLACK, rng.integers(0, k, len(base)))
        on_black = colours == BLACK
        images = _on_colour(strokes[base], np.where(on_black, 0, colours), rng)
        images[on_black] = _plain(strokes[base[on_black]], rng)
    else:  # target: colour follows the digit with probability `bias`
        follows = rng.random(len(pool_t)) < bias
        colours = np.where(follows, digits[pool_t] % k, rng.integers(0, k, len(pool_t)))
        domains["target"] = _domain(
            "target",
            _on_colour(strokes[pool_t], colours, rng),
            digits[pool_t],
            colours,
            seeded_split(len(pool_t), (0.75, 0.125, 0.125), seed),
        )
        # irrelevant: many renderings, labelled by background colour only
        base = np.repeat(pool_i, irrelevant_copies)
        colours = rng.integers(0, k, len(base))
        images = _on_colour(strokes[base], colours, rng)
    domains["irrelevant"] = _domain(
        "irrelevant",
        images,
        np.full(len(base), -1),
        colours,
        seeded_split(len(base), (0.8, 0.1, 0.1), seed + 1),
    )
    domains["relevant"] = _domain(
        "relevant",
        _plain(strokes[pool_i], rng),
        digits[pool_i],
        np.full(len(pool_i), -1),
        seeded_split(len(pool_i), (0.8, 0.1, 0.1), seed + 3),
    )
    # evaluation domains: one split of the pool, three renderings
    split = seeded_split(len(pool_e), (0.6, 0.2, 0.2), seed + 2)
    e = strokes[pool_e]
    none = np.full(len(pool_e), -1)
    domains["plain"] = _domain("plain", _plain(e, rng), digits[pool_e], none, split)
    colours = rng.integers(0, k, len(pool_e))
    domains["coloured"] = _domain(
        "coloured", _on_colour(e, colours, rng), digits[pool_e], colours, split
    )
    photos = [np.asarray(img, dtype=np.float32) for img in load_sample_images().images]
    blended, _ = _blended(e, photos, rng)
    domains["blended"] = _domain("blended", blended, digits[pool_e], none, split)

    params: dict[str, object] = {
        "n_target": n_target,
        "bias": float(bias),
        "irrelevant_copies": irrelevant_copies,
        "seed": seed,
    }
    if mapping != "colour":  # the default keeps the fingerprint it always had
        params["mapping"] = mapping
    return Dataset(
        name="digit_domains",
        domains=domains,
        fingerprint=f"digit_domains-v{_VERSION}:{json.dumps(params, sort_keys=True)}",
        description=(
            f"scikit-learn digits as 6 domains (32x32 RGB): target {len(pool_t)},"
            f" irrelevant {len(base)}, relevant {len(pool_i)},"
            f" plain/coloured/blended {len(pool_e)} each"
        ),
        params={
            **params,
            "grid_defaults": {
                "task": "digit",
                "irrelevant": "irrelevant:bg",
                "relevant": "relevant:digit",
                "train": ["target"],
                "test": ["plain", "coloured", "blended"],
            },
        },
    )


def _upscale(images: np.ndarray) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(images), 32, 32), dtype=np.float32)
    for i, img in enumerate(images):
        small = Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8))
        out[i] = np.asarray(small.resize((32, 32), Image.Resampling.BILINEAR)) / 255.0
    return out


def _to_uint8(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = x + rng.normal(0.0, 4.0, size=x.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _plain(strokes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _to_uint8(np.repeat(strokes[..., None] * 255.0, 3, axis=-1), rng)


def _on_colour(strokes: np.ndarray, colours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shade = rng.uniform(0.8, 1.15, size=(len(colours), 1, 1, 1))  # jitter each background
    bg = np.clip(PALETTE[colours][:, None, None, :] * shade, 0, 255)
    m = strokes[..., None]
    return _to_uint8(bg * (1 - m) + 240.0 * m, rng)


def _blended(
    strokes: np.ndarray, photos: list[np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(images, index of the photo each patch came from)."""
    out = np.empty((len(strokes), 32, 32, 3), dtype=np.float32)
    which = np.empty(len(strokes), dtype=np.int64)
    for i, s in enumerate(strokes):
        which[i] = int(rng.integers(0, len(photos)))
        photo = photos[which[i]]
        y = int(rng.integers(0, photo.shape[0] - 32))
        x = int(rng.integers(0, photo.shape[1] - 32))
        patch = photo[y : y + 32, x : x + 32]
        out[i] = np.abs(patch - s[..., None] * 255.0)
    return _to_uint8(out, rng), which


def _domain(
    name: str, images: np.ndarray, digit: np.ndarray, bg: np.ndarray, split: np.ndarray
) -> Domain:
    labels = np.stack([digit, bg], axis=1).astype(np.float32)
    return Domain(name, images, labels, ("digit", "bg"), split)
