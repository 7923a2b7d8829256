"""`auxsearch demo`: the pair search on built-in data, sized for 2 CPU cores.

The paper's settings (ImageNet-pretrained ResNet18, Adam lr 1e-4, 6 epochs,
160k images) do not transfer to a from-scratch network on a few thousand
generated images: at lr 1e-4 a small CNN barely learns in 6 epochs. The demo
therefore uses, and prints, settings that fit its data: `shapes` with 2,000
32×32 images and correlated attribute pairs, six attributes, the small CNN,
Adam lr 1e-3, 6 epochs with lr ÷10 after epoch 4, batch 64, and the paper's
five λ values.
"""

from __future__ import annotations

import time

from methods.data import load_dataset

from .pairs import run_pairs
from .pairs_plan import resolve_settings
from .runner import Resources
from .show import print_pairs_result

DEMO_DATASET = {"n": 2000, "image_size": 32, "seed": 0, "correlation": 0.5}
DEMO_ATTRIBUTES = ("red", "large", "left", "striped", "round", "dark_bg")
DEMO_SETTINGS = {
    "backbone": "small_cnn",
    "lr": 1e-3,
    "epochs": 6,
    "batch_size": 64,
    "lr_milestones": [4],
}


def run_demo(out: str, *, seeds: int = 1, cpus_per_trial: float = 1.0) -> int:
    dataset = load_dataset("shapes", DEMO_DATASET)
    settings = resolve_settings(
        dataset,
        attributes=DEMO_ATTRIBUTES,
        overrides=DEMO_SETTINGS,
        seeds=seeds,
    )
    print(f"auxsearch demo: AAL pair search on {dataset.description}")
    print(f"  attributes: {', '.join(DEMO_ATTRIBUTES)}")
    print(
        "  settings (chosen for this data, not the paper's ResNet18 schedule): "
        + ", ".join(f"{k}={v}" for k, v in DEMO_SETTINGS.items())
        + f", λ ∈ {{{', '.join(f'{x:g}' for x in settings.lambdas)}}}"
    )
    start = time.perf_counter()
    result = run_pairs(dataset, settings, out, resources=Resources(cpus_per_trial=cpus_per_trial))
    print_pairs_result(result)
    print(f"demo finished in {time.perf_counter() - start:.0f}s")
    return 3 if result.failed else 0  # the exit codes of `auxsearch pairs`
