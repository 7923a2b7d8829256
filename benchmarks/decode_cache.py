"""What decoding once buys: loading a CelebA-layout folder the first time (decode
every JPEG, crop, resize, write the memory-mapped cache) against every later load
(map the cache), and one pass over the mapped pixels (what a trial's epoch reads);
beside them, the rate of the AAL paper's ResNet18 training step on those images,
which the cost of the CelebA experiment in the README is computed from.

The folder is generated: N JPEGs of CelebA's 218x178 size with the official list
files, in a temporary directory removed at the end.

    python benchmarks/decode_cache.py [--images 2000] [--size 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from methods.core.backbones import build_backbone
from methods.data.formats import load_from_disk
from methods.data.formats.cache import CACHE_DIR_NAME

ATTRIBUTES = [f"attr_{k}" for k in range(40)]


def write_celeba_layout(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    base = root / "celeba"
    images = base / "img_align_celeba"
    images.mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    ramp = np.linspace(0, 1, 178)[None, :, None] * np.linspace(0, 1, 218)[:, None, None]
    for name in names:
        colour = rng.integers(30, 220, size=3)
        pixels = colour * (0.5 + ramp) + rng.normal(0, 12, size=(218, 178, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(images / name, quality=90)
    values = np.where(rng.random((n, 40)) < 0.4, 1, -1)
    lines = [str(n), " ".join(ATTRIBUTES) + " "]
    lines += [
        name + "".join(f" {v:2d}" for v in row) for name, row in zip(names, values, strict=True)
    ]
    (base / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    part = np.repeat([0, 1, 2], [n - 2 * (n // 10), n // 10, n // 10])
    (base / "list_eval_partition.txt").write_text(
        "".join(f"{name} {p}\n" for name, p in zip(names, part, strict=True))
    )


def resnet18_images_per_second(size: int, batch: int = 64, steps: int = 3) -> float:
    """One Adam step of ResNet18 and a binary head, forward and backward, per batch."""
    net = build_backbone("resnet18", (3, size, size))
    head = torch.nn.Linear(net.out_dim, 1)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=1e-4, weight_decay=5e-4)
    x, y = torch.rand(batch, 3, size, size), torch.randint(0, 2, (batch,)).float()

    def step() -> None:
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(head(net(x))[:, 0], y).backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    options = {"crop": 178, "size": args.size}

    root = Path(tempfile.mkdtemp(prefix="auxsearch-decode-"))
    try:
        write_celeba_layout(root, args.images)
        cold, warm, epoch = [], [], []
        for _ in range(args.rounds):  # cold and warm interleaved, so noise hits both alike
            shutil.rmtree(root / CACHE_DIR_NAME, ignore_errors=True)
            start = time.perf_counter()
            load_from_disk("celeba", root, options)
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            dataset = load_from_disk("celeba", root, options)
            warm.append(time.perf_counter() - start)
            start = time.perf_counter()
            pixels = dataset.domain().inputs
            total = sum(
                int(pixels[i : i + 512].sum(dtype=np.int64)) for i in range(0, len(pixels), 512)
            )
            epoch.append(time.perf_counter() - start)
            assert total > 0
    finally:
        shutil.rmtree(root, ignore_errors=True)

    c, w, e = statistics.median(cold), statistics.median(warm), statistics.median(epoch)
    n = args.images
    print(
        f"CelebA layout, {n} JPEGs 218x178 -> crop 178, size {args.size} (median of {args.rounds})"
    )
    print(f"  first load (decode + cache): {c:7.2f} s   {n / c:8.0f} images/s")
    print(f"  later load (memory map):     {w:7.3f} s   {n / w:8.0f} images/s")
    print(f"  one pass over the pixels:    {e:7.3f} s   {n / e:8.0f} images/s")
    print(f"  first / later load: {c / w:.0f}x")
    rate = resnet18_images_per_second(args.size)
    print(f"  ResNet18 training step, batch 64, {args.size}x{args.size}: {rate:.0f} images/s")


if __name__ == "__main__":
    main()
