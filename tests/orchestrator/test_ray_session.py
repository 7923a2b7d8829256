"""What `orchestrator.ray_session` sets up before Ray starts."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
import tempfile
import textwrap

import pytest


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


@pytest.mark.integration
def test_a_local_session_leaves_the_callers_environment_and_sigterm_handler() -> None:
    """Library callers (auxsearch.pairs and the rest enter a session) keep what they had:
    inside the session, os.environ holds none of the variables the local cluster was
    started with (a process the caller starts does not inherit the token), while Ray
    goes on working: tasks, actors on workers started after the restore, a Tune run,
    and a second session in the same process. After each session, the SIGTERM handler
    is the caller's again (ray.init and stop_on_sigterm each install their own)."""
    script = textwrap.dedent(
        """
        import os, signal, subprocess, sys
        # a value of the caller's own (Linux's default), to be put back as it was
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "1"
        import ray
        from ray import tune
        from orchestrator.ray_session import ray_session

        KEYS = ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
        caller = {k: os.environ.get(k) for k in KEYS}

        def callers_handler(signum, frame):
            pass

        signal.signal(signal.SIGTERM, callers_handler)

        @ray.remote
        def double(x):
            return 2 * x

        @ray.remote
        class Echo:
            def mode(self):
                return os.environ.get("RAY_AUTH_MODE")

        def score(config):
            return {"score": config["x"]}

        for session in (1, 2):
            with ray_session(num_cpus=1):
                assert {k: os.environ.get(k) for k in KEYS} == caller, os.environ
                child = subprocess.run(
                    [sys.executable, "-c", "import os; print('RAY_AUTH_TOKEN' in os.environ)"],
                    capture_output=True, text=True, check=True,
                )
                assert child.stdout.strip() == "False"
                assert ray.get(double.remote(21)) == 42
                echoes = [Echo.remote() for _ in range(2)]  # workers started after the restore
                assert ray.get([e.mode.remote() for e in echoes]) == ["token", "token"]
                tuner = tune.Tuner(
                    score, param_space={"x": tune.grid_search([1, 2])},
                    run_config=tune.RunConfig(storage_path=sys.argv[1], verbose=0),
                )
                assert sorted(r.metrics["score"] for r in tuner.fit()) == [1, 2]
            assert signal.getsignal(signal.SIGTERM) is callers_handler, session
            assert {k: os.environ.get(k) for k in KEYS} == caller
        print("OK")
        """
    )
    with tempfile.TemporaryDirectory() as tune_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
        proc = subprocess.run(
            [sys.executable, "-c", script, tune_dir],
            env=env, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-3000:]
