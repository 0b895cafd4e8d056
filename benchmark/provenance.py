"""Where a run's numbers came from: ``provenance.json`` beside its ``summary.json``.

Written when the run starts and completed when it ends: the code (git commit, whether the tree was
dirty, and a hash of ``git diff HEAD`` so two dirty runs can be told apart), the command line, a hash
of the resolved config, the versions of the packages that compute the numbers, the device, and the
start and end times. Nothing names the host or the user.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "warp-lang", "newton", "numpy", "dva-bench")


def git_state(root: Path = ROOT) -> dict[str, Any]:
    """The commit, whether tracked files differ from it, and the SHA-256 of that difference."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout  # fmt: skip

    try:
        commit = git("rev-parse", "HEAD").strip()
        diff = git("diff", "HEAD")
    except (OSError, subprocess.SubprocessError):  # not a clone (an sdist, a copied tree) or no git
        return {"commit": None, "dirty": None, "diff_sha256": None}
    return {
        "commit": commit,
        "dirty": bool(diff),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info(device: torch.device) -> dict[str, Any]:
    """The GPU's name, driver and CUDA version, or the CPU's model and the threads torch uses."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        try:
            driver = subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.split("\n")[0].strip()
        except (OSError, subprocess.SubprocessError):
            driver = ""
        return {"type": "cuda", "name": props.name, "driver": driver or None, "cuda": torch.version.cuda}
    model = platform.processor() or None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        model = names[0] if names else model
    return {"type": "cpu", "model": model, "threads": torch.get_num_threads()}


def command(argv: list[str]) -> list[str]:
    """The command line as typed, less who typed it: a module of ours reads ``-m benchmark.run``, the
    home directory ``~``."""
    home = str(Path.home())
    first = Path(argv[0]).resolve() if argv else None
    if first is not None and first.suffix == ".py" and first.is_relative_to(ROOT):
        head = ["python", "-m", ".".join(first.relative_to(ROOT).with_suffix("").parts)]
    else:
        head = ["python", *argv[:1]]
    return [part.replace(home, "~") if home not in ("", "/") else part for part in (*head, *argv[1:])]


def config_sha256(cfg: DictConfig) -> str:
    return hashlib.sha256(OmegaConf.to_yaml(cfg, sort_keys=True).encode()).hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def start_record(cfg: DictConfig, device: torch.device, argv: list[str] | None = None) -> dict[str, Any]:
    """The provenance of a run that starts now (``end`` is filled in by :func:`end_record`)."""
    return {
        "git": git_state(),
        "command": command(sys.argv if argv is None else argv),
        "config_sha256": config_sha256(cfg),
        "versions": versions(),
        "device": device_info(device),
        "start": now(),
        "end": None,
    }


def end_record(record: dict[str, Any], status: str) -> dict[str, Any]:
    return {**record, "end": now(), "status": status}
