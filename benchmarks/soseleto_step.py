"""The cost of one SOSELETO iteration against a plain training step on the same
source batch, and against the one-backward-per-sample way of forming Qᵀv.

For each (backbone, source batch / target batch) setting, three things are
timed side by side, interleaved round by round so machine noise hits them alike:

- plain: forward, backward and SGD step of the backbone and a classifier on the
  source batch (what training on the source alone costs);
- soseleto: `soseleto_step` (target gradient at θ_m, one forward-mode pass over
  the source batch for the per-sample losses and Qᵀ∂L_t/∂θ, one backward for
  Qα and Rα, the step) — the issue's target is at most about 3× plain;
- loop: the same Qᵀv with one backward pass per source sample (the authors'
  toy code), timed once since it is slow.

    python benchmarks/soseleto_step.py [--device cpu|cuda] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from methods.core.backbones import build_backbone
from methods.soseleto.step import AlphaRule, directional_by_loop, soseleto_step

SETTINGS = [  # (backbone, source batch, target batch): §4.2's CIFAR and §4.3's few-shot
    ("small_cnn", 256, 32),
    ("small_cnn", 32, 10),
    ("resnet18", 256, 32),
]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Callable[[], None], device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def measure(backbone_name: str, source: int, target: int, device: str, rounds: int) -> dict:
    torch.manual_seed(0)
    backbone = build_backbone(backbone_name, (3, 32, 32)).to(device)
    source_head = nn.Linear(backbone.out_dim, 10).to(device)
    target_head = nn.Linear(backbone.out_dim, 10).to(device)
    params = [*backbone.parameters(), *source_head.parameters(), *target_head.parameters()]
    opt = torch.optim.SGD(params, lr=1e-3)
    xs = torch.randn(source, 3, 32, 32, device=device)
    ys = torch.randint(0, 10, (source,), device=device)
    xt = torch.randn(target, 3, 32, 32, device=device)
    yt = torch.randint(0, 10, (target,), device=device)
    alpha = torch.ones(source, device=device)
    rule = AlphaRule()

    def plain() -> None:
        loss = F.cross_entropy(source_head(backbone(xs)), ys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def fused() -> None:
        soseleto_step(backbone, source_head, target_head, opt, (xs, ys), (xt, yt), alpha, rule)

    tangent = {n: torch.randn_like(p) for n, p in backbone.named_parameters()}

    def loop() -> None:
        directional_by_loop(backbone, source_head, xs, ys, tangent)

    for fn in (plain, fused):  # warm-up (allocator, cuDNN autotuning)
        fn()
    times: dict[str, list[float]] = {"plain": [], "soseleto": [], "loop": []}
    for r in range(rounds):
        times["plain"].append(_timed(plain, device))
        times["soseleto"].append(_timed(fused, device))
        if r == 0:  # one round: one backward per sample is slow (minutes for ResNet18)
            times["loop"].append(_timed(loop, device))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--settings",
        default=",".join(f"{b}:{s}:{t}" for b, s, t in SETTINGS),
        help="backbone:source_batch:target_batch, comma-separated",
    )
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {name}")
    print(
        f"{'backbone':<10}{'batch':>9}{'plain ms':>10}{'soseleto ms':>13}{'ratio':>7}"
        f"{'loop ms':>10}{'loop/fused':>12}"
    )
    for setting in args.settings.split(","):
        backbone, source, target = setting.split(":")
        t = measure(backbone, int(source), int(target), args.device, args.rounds)
        print(
            f"{backbone:<10}{source + '/' + target:>9}{t['plain'] * 1e3:>10.1f}"
            f"{t['soseleto'] * 1e3:>13.1f}{t['soseleto'] / t['plain']:>7.2f}"
            f"{t['loop'] * 1e3:>10.1f}{t['loop'] / t['soseleto']:>12.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
