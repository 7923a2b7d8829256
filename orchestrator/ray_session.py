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
import signal
import threading
from collections.abc import Iterator, Mapping
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


def _set_env(values: Mapping[str, str | None]) -> None:
    """Set (or, for None, remove) each variable."""
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextmanager
def _local_only() -> Iterator[None]:
    """Loopback binding and token authentication for a cluster we start, for the
    length of the block (`ray.init`): the processes Ray starts meanwhile (GCS,
    raylet, and the workers the raylet starts later) keep the environment they
    were given; this process keeps the token Ray loaded (the C++ loader caches
    it) and the token mode (cached with Ray's config), so a session needs neither
    variable after `ray.init`, and the caller's environment is put back then:
    what a library user starts during a search does not inherit the token."""
    saved = {k: os.environ.get(k) for k in (*_LOOPBACK_ENV, "RAY_AUTH_MODE")}
    os.environ.update(_LOOPBACK_ENV)
    # Unset, Ray (>= 2.59) turns token mode on for a new local cluster and reloads
    # its config; set to "token" by hand it would skip that reload in this process.
    os.environ.pop("RAY_AUTH_MODE", None)
    try:
        yield
    finally:
        _set_env(saved)  # RAY_AUTH_MODE too, which Ray set to "token" for its processes


@contextmanager
def _loopback_constant() -> Iterator[None]:
    """Ray's laptop switch in this process, for the whole session: the driver's own
    address lookups (Ray's, Tune's) keep giving 127.0.0.1, the address its node has."""
    enable_cluster = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = enable_cluster


@contextmanager
def _sigterm_restored() -> Iterator[None]:
    """The SIGTERM handler the caller had, put back when the session ends (`ray.init`
    installs Ray's, `stop_on_sigterm` ours; a library caller keeps neither)."""
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if on_main_thread else None
    try:
        yield
    finally:
        if previous is not None:  # None: not installed from Python, nothing to put back
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Join `address` (or RAY_ADDRESS), else start a local Ray; shut down what we started.

    The caller's environment is its own again once Ray has started, and its SIGTERM
    handler once the session ends."""
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
    with _sigterm_restored(), _loopback_constant() if local else nullcontext():
        # Ray's notice that it turned token authentication on is about our choice.
        logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
        with _local_only() if local else nullcontext():
            ray.init(address=address, **kwargs)  # type: ignore[arg-type]
        stop_on_sigterm()
        for name in ("ray.tune", "ray.train", "ray.air"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            ray.shutdown()
