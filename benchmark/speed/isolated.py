"""Run one measurement in a fresh Python process, so its peak RSS is its own."""

from __future__ import annotations

import json
import signal
import subprocess
import sys


class MeasurementFailed(RuntimeError):
    """The measuring process died; ``reason`` says how in a few words (e.g. out of memory)."""

    def __init__(self, cmd: list[str], reason: str) -> None:
        super().__init__(f"{' '.join(cmd)} failed: {reason}")
        self.reason = reason


def run_isolated(module: str, *args: str) -> dict:
    """``python -m <module> --one <args>`` must print one JSON object as its last line."""
    cmd = [sys.executable, "-m", module, "--one", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode == -signal.SIGKILL:
        raise MeasurementFailed(cmd, "killed by SIGKILL (out of memory, see dmesg)")
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise MeasurementFailed(cmd, last[0])
    return json.loads(done.stdout.strip().splitlines()[-1])
