"""Run one measurement in a fresh Python process, so its peak RSS is its own."""

from __future__ import annotations

import json
import subprocess
import sys


def run_isolated(module: str, *args: str) -> dict:
    """``python -m <module> --one <args>`` must print one JSON object as its last line."""
    cmd = [sys.executable, "-m", module, "--one", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
