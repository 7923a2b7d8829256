"""What `orchestrator.ray_session` sets up before Ray starts."""

from __future__ import annotations

import builtins
import subprocess
import sys


def test_rays_print_patch_is_off_so_searchers_stay_picklable() -> None:
    """Ray swaps builtins.print when a driver first shows worker messages (as after a
    node is lost); a searcher holding print then no longer pickles. In a fresh
    interpreter: with our session module imported, Ray's patch leaves print alone."""
    script = (
        "import builtins, orchestrator.ray_session\n"
        "from ray.experimental import tqdm_ray\n"
        "original = builtins.print\n"
        "tqdm_ray.instance().hide_bars()\n"
        "import ray.cloudpickle as cp\n"
        "cp.dumps({'echo': original})\n"
        "assert builtins.print is original, 'print was patched'\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert builtins.print is print


def test_without_the_setting_ray_would_patch_print() -> None:
    """The failure the setting prevents, reproduced: the test above can fail."""
    script = (
        "import os; os.environ['RAY_TQDM_PATCH_PRINT'] = '1'\n"
        "import builtins\n"
        "from ray.experimental import tqdm_ray\n"
        "original = builtins.print\n"
        "tqdm_ray.instance().hide_bars()\n"
        "import ray.cloudpickle as cp\n"
        "cp.dumps({'echo': original})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode != 0 and "Can't pickle" in proc.stderr
