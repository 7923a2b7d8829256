"""methods/ must stay importable and usable without Ray, Optuna or pyarrow."""

from __future__ import annotations

import subprocess
import sys


def test_methods_import_no_orchestration_libraries() -> None:
    code = (
        "import sys, methods, methods.data, methods.aal;"
        "bad = [m for m in ('ray', 'optuna', 'pyarrow') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
