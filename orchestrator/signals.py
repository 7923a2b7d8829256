"""SIGTERM handled as Ctrl+C.

Schedulers (Slurm, Kubernetes) and `ray job stop` stop a driver with SIGTERM.
Left to Python it kills the driver outright; after `ray.init` it runs Ray's
handler, which exits from inside Tune and ends in Ray's C++ abort (exit 134
and a stack dump). Routed to the SIGINT handler instead, it stops a search
exactly as Ctrl+C does: cleanly, the unfinished cells named, resumable.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


def _sigterm_as_ctrl_c(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (a scheduler's stop, `ray job stop`) does what Ctrl+C does: Ray Tune's
    own SIGINT handler while a stage runs (it ends the stage cleanly and the search
    names the unfinished cells), KeyboardInterrupt otherwise."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """Route SIGTERM to `_sigterm_as_ctrl_c`. `ray.init` installs its own handler
    (sys.exit from inside Tune, then Ray's C++ abort: exit 134), so this runs again
    after it."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_as_ctrl_c)
