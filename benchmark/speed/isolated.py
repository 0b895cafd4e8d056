"""Run one measurement in a fresh Python process, so its peak RSS is its own; optionally against the
code of another commit (``--before <ref>`` in the speed scripts: before and after measured in one run)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class MeasurementFailed(RuntimeError):
    """The measuring process died; ``reason`` says how in a few words (e.g. out of memory)."""

    def __init__(self, cmd: list[str], reason: str) -> None:
        super().__init__(f"{' '.join(cmd)} failed: {reason}")
        self.reason = reason


def run_isolated(module: str, *args: str, code_root: Path | None = None) -> dict:
    """``python -m <module> --one <args>`` must print one JSON object as its last line. ``code_root``: run
    this checkout's ``module`` against the packages (``envs``, ...) of another checkout of the suite."""
    cmd = [sys.executable, "-m", module, "--one", *args]
    if code_root is not None:
        script = find_spec(module).origin
        argv = [script, "--one", *args]
        cmd = [
            sys.executable,
            "-c",
            f"import runpy, sys; sys.argv = {argv!r}; runpy.run_path({script!r}, run_name='__main__')",
        ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=code_root)
    if done.returncode == -signal.SIGKILL:
        raise MeasurementFailed(cmd, "killed by SIGKILL (out of memory, see dmesg)")
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise MeasurementFailed(cmd, last[0])
    return json.loads(done.stdout.strip().splitlines()[-1])


def require_commit(ref: str) -> None:
    """Exit 2 with one line unless ``ref`` names a commit of this repository."""
    known = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                           capture_output=True)  # fmt: skip
    if known.returncode != 0:
        print(f"error: --before {ref}: not a commit of this repository (git log shows them)", file=sys.stderr)
        sys.exit(2)


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """A temporary git worktree of ``ref`` (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="before-") as tmp:
        root = Path(tmp) / "suite"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(root), ref], check=True,
                       capture_output=True)  # fmt: skip
        try:
            yield root
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(root)], capture_output=True)


def chosen_device(name: str) -> str:
    """A speed script's ``--device`` resolved once by the script that runs the cases (``auto`` becomes
    ``cpu`` or ``cuda:<torch's current GPU>``), so every measuring process gets a concrete device; a bad
    or absent one exits 2 with the fix."""
    import torch

    from benchmark.config import ConfigError, check_device
    from envs import default_device
    from envs.physics import warp_device

    try:
        check_device(name)
    except ConfigError as error:
        print(f"error: --device {name}: {error}", file=sys.stderr)
        sys.exit(2)
    device = default_device() if name == "auto" else torch.device(name)
    return warp_device(device)
