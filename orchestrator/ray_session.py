"""Starting or joining Ray, quietly.

Local by default: `ray.init()` starts an embedded cluster on this machine and
stops it at the end. `--address auto` or RAY_ADDRESS joins a cluster started
with `ray up cluster.yaml` (or `ray start --head`); jobs submitted with
`ray job submit` find it through RAY_ADDRESS and join it the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from .signals import stop_on_sigterm

# Ray Tune's own console reporter would interleave with our progress lines; the
# classic reporter (chosen when a Tuner runs) is silent at verbose=0.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# When a driver prints worker messages (a node lost, a worker killed), Ray swaps
# builtins.print for its tqdm-safe one. Our searchers keep a reference to print
# (progress lines), and cloudpickle refuses a builtin that is no longer the one
# in builtins: the next stage's Tuner then failed with "Can't pickle <built-in
# function print>" (seen after a node was killed mid-search).
os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Join `address` (or RAY_ADDRESS), else start a local Ray; shut down what we started."""
    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, object] = {
        "logging_level": logging.ERROR,
        "log_to_driver": False,
    }
    if address is None:
        # "local": always a new instance on this machine. With None, Ray would join
        # whatever /tmp/ray/ray_current_cluster names, which a `ray start` leaves
        # behind even after that cluster is gone (the run then hangs connecting).
        address = "local"
        kwargs.update(include_dashboard=False, num_cpus=num_cpus)
    ray.init(address=address, **kwargs)  # type: ignore[arg-type]
    stop_on_sigterm()
    for name in ("ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        ray.shutdown()
