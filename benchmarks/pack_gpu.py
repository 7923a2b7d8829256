"""Packed trials against one trial per device and Ray's fractional GPUs: the cell
throughput of a pair stage's trainings, in one run (meant for a GPU; `make bench`
runs it on whatever the machine has).

Cells are the pair stage's single and pair runs (`stl`, `mtl`) of the demo's
six `shapes` attributes, cycled when a pack holds more than those 21. Each
figure is cell-epochs per second of training, after one warm-up:

- `apart`: cells one after another in this process, each its own run — what one
  Ray trial per device does, without Ray's share;
- `pack N`: N cells as one fused network (`methods.core.packed.train_pack`);
- `ray gpus=F`: the same cells as Ray Tune trials of auxsearch's runner with
  `--gpus-per-trial F` (F < 1: 1/F trials share the GPU as separate processes),
  and `ray pack N`: one trial per pack of N on a whole GPU (on CPUs: one trial
  per core, and packs of 4);
- step options on the fused step of the largest pack that ran: bf16 autocast,
  and CUDA graphs (`torch.compile(mode="reduce-overhead")`) — measured here, not
  used by the search.

From resnet18's figures, the GPU-hours of the CelebA-40 pair matrix (40 singles
+ 780 pairs, 6 epochs, 162,770 training images, ResNet18 at 64×64) apart and at
the best pack: cell-epochs × (162,770 / this run's training images) ÷ throughput.

    python benchmarks/pack_gpu.py [--device cuda] [--quick] [--max-pack 64]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch

from methods import MetricsCollector, RunContext, get_method
from methods.core.backbones import build_backbone
from methods.core.fused import fuse_backbones
from methods.data import Dataset, load_dataset
from orchestrator.demo import DEMO_ATTRIBUTES

CELEBA_CELL_EPOCHS = (40 + 780) * 6
CELEBA_TRAIN_IMAGES = 162_770


def cells(count: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` pair-stage runs: the six singles and fifteen pairs, cycled."""
    runs = [("stl", {"task": a}) for a in DEMO_ATTRIBUTES]
    runs += [("mtl", {"tasks": list(p)}) for p in itertools.combinations(DEMO_ATTRIBUTES, 2)]
    return [runs[i % len(runs)] for i in range(count)]


def configs(backbone: str, count: int, epochs: int) -> list[Any]:
    base = {"backbone": backbone, "epochs": epochs, "lr": 1e-3, "batch_size": 64}
    return [get_method(m).make_config({**base, **v}) for m, v in cells(count)]


def timed(device: str, fn: Callable[[], object]) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def apart(data: Dataset, backbone: str, device: str, count: int, epochs: int) -> float:
    def run() -> None:
        for (method, _), config in zip(cells(count), configs(backbone, count, epochs), strict=True):
            ctx = RunContext(device=device, report=MetricsCollector())
            get_method(method).train(config, data, ctx)

    return count * epochs / timed(device, run)


def packed(data: Dataset, backbone: str, device: str, count: int, epochs: int) -> float:
    from methods.core.packed import train_pack

    cfgs = configs(backbone, count, epochs)
    ctxs = [RunContext(device=device, report=MetricsCollector()) for _ in cfgs]
    return count * epochs / timed(device, lambda: train_pack(cfgs, data, ctxs))


def on_ray(data: Dataset, backbone: str, count: int, epochs: int, gpus: float, pack: int) -> float:
    """Cell-epochs per second of `count` cells as auxsearch's Ray trials."""
    from orchestrator.cells import Cell
    from orchestrator.ray_session import ray_session
    from orchestrator.runner import CellRunner, Resources
    from orchestrator.storage import OutputDir

    todo = [
        Cell(
            id=f"bench:{i}",
            stage="pair" if method == "mtl" else "single",
            method=method,
            params={"backbone": backbone, "epochs": epochs, "lr": 1e-3, "batch_size": 64, **v},
            seed=0,
            tasks=tuple(v.get("tasks", [v.get("task")])),
        )
        for i, (method, v) in enumerate(cells(count))
    ]
    resources = Resources(cpus_per_trial=1, gpus_per_trial=gpus, pack=pack)
    with tempfile.TemporaryDirectory() as tmp, ray_session(None):
        runner = CellRunner(data, resources, OutputDir(tmp))
        seconds = timed("cpu", lambda: runner.run("bench", todo, lambda _: None))
    return count * epochs / seconds


def step_options(data: Dataset, backbone: str, device: str, count: int) -> dict[str, float]:
    """Milliseconds per training step of a fused pack of `count`: fp32, bf16 autocast,
    and (CUDA) graphs through torch.compile(mode="reduce-overhead")."""
    shape = data.domain().input_shape
    fused = fuse_backbones([build_backbone(backbone, shape) for _ in range(count)]).to(device)
    fused = fused.use_memory_format("auto", device)
    head = torch.nn.Linear(fused.out_dim, 1).to(device)
    opt = torch.optim.Adam([*fused.parameters(), *head.parameters()], lr=1e-3)
    x = torch.randn(64, *shape, device=device)
    y = torch.rand(64, 1, device=device).round()

    def step(model: Callable[[torch.Tensor], torch.Tensor], bf16: bool) -> None:
        with torch.autocast(device_type=torch.device(device).type, enabled=bf16):
            logits = head(model(x)).squeeze(-1)  # (B, count)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits.float(), y.expand_as(logits)
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    out = {}
    variants: list[tuple[str, Any, bool]] = [("fp32", fused, False), ("bf16", fused, True)]
    if device.startswith("cuda"):
        variants.append(("cuda graphs", torch.compile(fused, mode="reduce-overhead"), False))
    for name, model, bf16 in variants:
        try:
            for _ in range(5):  # warm-up (and compilation)
                step(model, bf16)
            out[name] = timed(device, lambda m=model, b=bf16: [step(m, b) for _ in range(20)])
        except Exception as exc:  # an option this torch or device lacks: say so, go on
            print(f"  {name} on the fused step failed: {type(exc).__name__}: {exc}"[:300])
    return {k: v / 20e-3 for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small data and packs (a CPU check)")
    parser.add_argument("--max-pack", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--backbones", default="small_cnn,resnet18")
    args = parser.parse_args()
    gpu = args.device.startswith("cuda")
    name = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}")
    sizes = {"small_cnn": 32, "resnet18": 64}
    images = 400 if args.quick else 2000
    max_pack = min(args.max_pack, 8 if args.quick else args.max_pack)
    for backbone in args.backbones.split(","):
        data = load_dataset("shapes", {"n": images, "image_size": sizes[backbone], "seed": 0})
        train_images = len(data.domain().indices("train"))
        epochs = 1 if args.quick else args.epochs
        packed(data, backbone, args.device, 2, 1)  # warm-up: allocator, cuDNN, threads
        base = apart(data, backbone, args.device, 4, epochs)
        rows: list[tuple[str, float]] = [("apart", base)]
        pack = 1
        while pack <= max_pack:
            try:
                rows.append((f"pack {pack}", packed(data, backbone, args.device, pack, epochs)))
            except torch.OutOfMemoryError:
                rows.append((f"pack {pack}: out of memory", 0.0))
                break
            pack *= 2
        if gpu:
            for gpus in (1.0, 0.25, 0.125):
                rows.append((f"ray gpus={gpus:g}", on_ray(data, backbone, 16, epochs, gpus, 1)))
            for size in (8, 16):
                rows.append((f"ray pack {size}", on_ray(data, backbone, 16, epochs, 1.0, size)))
        else:  # the same runner on CPUs: one trial per core, and packs of 4
            rows.append(("ray 1 cpu/trial", on_ray(data, backbone, 8, epochs, 0.0, 1)))
            rows.append(("ray pack 4", on_ray(data, backbone, 8, epochs, 0.0, 4)))
        print(
            f"\n{backbone} at {sizes[backbone]}×{sizes[backbone]}, {train_images} training images"
        )
        print(f"{'':<28}{'cell-epochs/s':>14}{'× apart':>9}")
        for label, value in rows:
            print(f"{label:<28}{value:>14.2f}{value / base:>9.2f}")
        largest = max(
            (int(label.split()[1]) for label, v in rows if label.startswith("pack ") and v),
            default=1,
        )
        steps = step_options(data, backbone, args.device, largest)
        print(
            f"fused step of pack {largest} (ms): "
            + ", ".join(f"{k} {v:.1f}" for k, v in steps.items())
        )
        if backbone == "resnet18":
            scale = CELEBA_TRAIN_IMAGES / train_images
            best_label, best = max(rows[1:], key=lambda r: r[1])
            for label, rate in (("apart", base), (best_label, best)):
                hours = CELEBA_CELL_EPOCHS * scale / rate / 3600
                print(f"CelebA-40 pair matrix, {label}: {hours:,.0f} device-hours")


if __name__ == "__main__":
    main()
