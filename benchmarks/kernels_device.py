"""Seconds per training epoch of each kernel, CPU vs an accelerator, side by side.

The demo's data (`shapes`, 2,000 images of 32×32, 1,200 for training) with the
small CNN and with ResNet18; one epoch of stl, mtl (a pair) and aal (reversal),
each timed over `--epochs` epochs after one warm-up run.

    python benchmarks/kernels_device.py [--devices cpu,cuda] [--epochs 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from methods import MetricsCollector, RunContext, get_method
from methods.data import load_dataset

TASKS = {
    "stl": {"task": "red"},
    "mtl": {"tasks": ["red", "large"]},
    "aal": {"main": ["left"], "adversaries": ["dark_bg"], "lam": 0.1},
}


def seconds_per_epoch(method: str, backbone: str, device: str, epochs: int, data) -> float:
    spec = get_method(method)
    config = spec.make_config(
        {"backbone": backbone, "epochs": epochs, "lr": 1e-3, "batch_size": 64, **TASKS[method]}
    )
    ctx = RunContext(device=device, report=MetricsCollector())
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    spec.train(config, data, ctx)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--backbones", default="small_cnn,resnet18")
    args = parser.parse_args()
    data = load_dataset("shapes", {"n": 2000, "image_size": 32})
    devices = args.devices.split(",")
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {name}")
    print(
        f"{'method':<6}{'backbone':<11}"
        + "".join(f"{d + ' s/epoch':>16}" for d in devices)
        + ("  speed-up" if len(devices) == 2 else "")
    )
    for backbone in args.backbones.split(","):
        for method in TASKS:
            times = []
            for device in devices:
                seconds_per_epoch(method, backbone, device, 1, data)  # warm-up
                times.append(seconds_per_epoch(method, backbone, device, args.epochs, data))
            ratio = f"{times[0] / times[1]:>10.1f}x" if len(times) == 2 else ""
            print(f"{method:<6}{backbone:<11}" + "".join(f"{t:>16.3f}" for t in times) + ratio)


if __name__ == "__main__":
    main()
