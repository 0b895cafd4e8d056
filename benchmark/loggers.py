"""Optional experiment trackers (``logger=wandb``). ``results/`` stays the source of truth; a tracker
mirrors the same metrics rows, the config and the final summary."""

from __future__ import annotations

import hashlib
import math
import netrc
import os
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

from benchmark.config import LOGGERS, WANDB_HINT, ConfigError


class Logger(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...
    def finish(self, summary: dict[str, Any]) -> None: ...


class NoLogger:
    def log(self, row: dict[str, Any]) -> None:
        pass

    def finish(self, summary: dict[str, Any]) -> None:
        pass


def _wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


class WandbLogger:
    """One wandb run per results run, stored under the run directory. Offline unless credentials
    exist (``WANDB_MODE`` overrides); a resumed run appends to the same wandb run."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        try:
            import wandb
        except ImportError:
            raise ConfigError(WANDB_HINT) from None
        mode = os.environ.get("WANDB_MODE") or ("online" if _wandb_credentials() else "offline")
        run_id = f"{run_dir.name[:48]}-{hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:8]}"
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "dva-benchmark"),
            name=run_dir.name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            mode=mode,
            config=OmegaConf.to_container(cfg, resolve=True),
            group=f"{cfg.algo}-{cfg.task}",
            tags=[cfg.algo, cfg.task],
        )

    def log(self, row: dict[str, Any]) -> None:
        numbers = {k: v for k, v in row.items() if isinstance(v, int | float) and not math.isnan(v)}
        self.run.log(numbers, step=int(row["iteration"]))

    def finish(self, summary: dict[str, Any]) -> None:
        self.run.summary.update({k: v for k, v in summary.items() if k != "traceback"})
        self.run.finish(exit_code=0 if summary.get("status") != "failed" else 1)
        import wandb

        wandb.teardown()  # stop wandb's service: the offline log is complete on disk when the run returns


def make_logger(cfg: DictConfig, run_dir: Path) -> Logger:
    if cfg.logger == "none":
        return NoLogger()
    if cfg.logger == "wandb":
        return WandbLogger(cfg, run_dir)
    raise ConfigError(f"unknown logger '{cfg.logger}'; choose one of: {', '.join(LOGGERS)}")
