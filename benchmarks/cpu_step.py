"""Which CPU path trains fastest, measured on what a pair search runs: one thread
(a trial's), the demo's small CNN at 32×32 and ResNet18 at 64×64, forward +
backward + Adam; and a whole 6-epoch single-task training of the demo, where
`torch.compile` must pay back its warm-up (run by `make bench`).

Ways: eager NCHW (`memory_format=contiguous`), eager channels_last (the CPU
default), `torch.compile` of the backbone over channels_last, and bf16 autocast
over channels_last (`precision=bf16`; fast only on CPUs with AMX or
AVX512-BF16). Step times are medians of interleaved rounds; the whole trainings
run one after another.

    python benchmarks/cpu_step.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from methods import MetricsCollector, RunContext, get_method
from methods.core import trainer as trainer_module
from methods.core.backbones import build_backbone, cpu_has_bf16
from methods.data import load_dataset
from orchestrator.demo import DEMO_DATASET, DEMO_SETTINGS

WAYS = ("nchw", "channels_last", "compile", "bf16")


def step_ms(name: str, size: int, batch: int, way: str, steps: int) -> float:
    torch.manual_seed(0)
    net: Any = build_backbone(name, (3, size, size)).use_memory_format(
        "contiguous" if way == "nchw" else "channels_last", "cpu"
    )
    net.use_precision("bf16" if way == "bf16" else "fp32")
    head = torch.nn.Linear(net.out_dim, 10)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], 1e-3)
    if way == "compile":
        net = torch.compile(net)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    warm = 3 if way != "compile" else 6
    for i in range(warm + steps):
        if i == warm:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(head(net(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps * 1000


def whole_training(way: str) -> float:
    """The demo's `stl` run on `red`, 6 epochs, timed from the start (warm-up included)."""
    dataset = load_dataset("shapes", DEMO_DATASET)
    spec = get_method("stl")
    fmt = "contiguous" if way == "nchw" else "channels_last"
    precision = "bf16" if way == "bf16" else "fp32"
    config = spec.make_config(
        {**DEMO_SETTINGS, "task": "red", "memory_format": fmt, "precision": precision}
    )
    original: Callable[..., Any] = trainer_module.Trainer.new_backbone
    if way == "compile":

        def compiled(self: Any) -> Any:
            return torch.compile(original(self))

        trainer_module.Trainer.new_backbone = compiled  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        spec.train(config, dataset, RunContext(seed=0, report=MetricsCollector(), num_threads=1))
        return time.perf_counter() - start
    finally:
        trainer_module.Trainer.new_backbone = original  # type: ignore[method-assign]


def main() -> None:
    torch.set_num_threads(1)
    bf16 = cpu_has_bf16()
    print(f"torch {torch.__version__}, 1 thread, CPU bf16 instructions: {'yes' if bf16 else 'no'}")
    for name, size, batch, steps in (("small_cnn", 32, 64, 20), ("resnet18", 64, 32, 4)):
        times: dict[str, list[float]] = {w: [] for w in WAYS}
        for _ in range(3):
            for way in times:
                times[way].append(step_ms(name, size, batch, way, steps))
        base = statistics.median(times["nchw"])
        shown = ", ".join(
            f"{way} {statistics.median(t):.1f} ms ({statistics.median(t) / base:.2f}×)"
            for way, t in times.items()
        )
        print(f"{name} {size}×{size} batch {batch}: {shown}")
    whole = {way: whole_training(way) for way in WAYS}
    print(
        "demo stl training, 6 epochs: "
        + ", ".join(f"{w} {t:.1f} s ({t / whole['nchw']:.2f}×)" for w, t in whole.items())
    )


if __name__ == "__main__":
    main()
