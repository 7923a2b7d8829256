"""Starting or joining Ray, quietly.

Local by default: `ray.init()` starts an embedded cluster on this machine and
stops it at the end. That cluster is reachable from this machine only: every
Ray process binds to loopback, and every request carries a token made for
this process (Ray's token authentication), so neither another host nor
another user's process on this one can submit work to it.

`--address auto` or RAY_ADDRESS joins a cluster started with `ray up
cluster.yaml` (or `ray start --head`); jobs submitted with `ray job submit` find
it through RAY_ADDRESS and join it the same way.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import ray
from ray._private import ray_constants

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


# One token per driver process: Ray caches the token it loads, so a second local
# session in the same process must present the same one.
_LOCAL_TOKEN = secrets.token_hex(32)
# Ray advertises (and binds to) the host's address unless it believes it runs on
# a laptop OS, where it keeps to loopback; that is the switch. Ray reads it in
# this process as a module constant and in the processes it starts from the
# environment. A non-loopback node address would also turn 127.0.0.1 back into
# the host's address, so `_node_ip_address` cannot do this.
_LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_TOKEN": _LOCAL_TOKEN,
}


@contextmanager
def _local_only() -> Iterator[None]:
    """Loopback binding and token authentication for a cluster we start."""
    saved = {k: os.environ.get(k) for k in (*_LOOPBACK_ENV, "RAY_AUTH_MODE")}
    enable_cluster = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(_LOOPBACK_ENV)
    # Unset, Ray (>= 2.59) turns token mode on for a new local cluster and reloads
    # its config; set to "token" by hand it would skip that reload in this process.
    os.environ.pop("RAY_AUTH_MODE", None)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = enable_cluster
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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
    local = address is None
    if local:
        # "local": always a new instance on this machine. With None, Ray would join
        # whatever /tmp/ray/ray_current_cluster names, which a `ray start` leaves
        # behind even after that cluster is gone (the run then hangs connecting).
        address = "local"
        kwargs.update(include_dashboard=False, num_cpus=num_cpus)
    with _local_only() if local else nullcontext():
        # Ray's notice that it turned token authentication on is about our choice.
        logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
        ray.init(address=address, **kwargs)  # type: ignore[arg-type]
        stop_on_sigterm()
        for name in ("ray.tune", "ray.train", "ray.air"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            ray.shutdown()
