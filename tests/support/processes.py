"""Real Tasker processes for tests that must kill one (SIGKILL cannot stop a thread)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def spawn(command: str, settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """``tasker <command>`` (worker, controller, ...) with ``settings``, its output in ``log_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env.update(settings.env())
    env["PYTHONPATH"] = str(ROOT)
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "cli.main", command], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
