"""The results schema, written atomically: ``results/<run-id>/`` holds

- ``config.yaml``: the resolved config;
- ``metrics.csv``: one row per iteration (wall-clock, env steps, returns, phase times, memory, ...);
- ``summary.json``: status (running | complete | diverged | failed | interrupted), ``task_version`` (the
  task's ``version``; absent before it was recorded, i.e. version 1), final evaluation return, totals;
- ``checkpoints/iter-<iteration>.pt``: learner state and progress counters, the last
  ``keep_checkpoints`` of them (all when 0).

Plots and tables read only these files.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

FINISHED = ("complete", "diverged")  # run statuses a sweep does not run again

METRIC_COLUMNS = [
    "iteration",
    "wall_clock",
    "env_steps",
    "train_return",
    "train_episode_length",
    "time_forward",
    "time_backward",
    "time_update",
    "time_render",
    "peak_memory_mb",
    "actor_grad_norm",
]


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same directory, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    """One run's directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.metrics_path = path / "metrics.csv"
        self._columns: list[str] | None = None

    def write_config(self, cfg: DictConfig) -> None:
        atomic_write(self.path / "config.yaml", lambda f: f.write(OmegaConf.to_yaml(cfg).encode()))

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.path / "summary.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))

    def set_aside_metrics(self) -> Path | None:
        """Rename metrics that no checkpoint can resume to ``metrics.unresumed-<k>.csv``, so a run that
        must start over never deletes them; returns the new path, or None when there were none."""
        if not self.metrics_path.exists() or len(self.metrics_path.read_text().splitlines()) <= 1:
            return None
        k = 1 + sum(1 for _ in self.path.glob("metrics.unresumed-*.csv"))
        aside = self.path / f"metrics.unresumed-{k}.csv"
        self.metrics_path.rename(aside)
        return aside

    def truncate_metrics(self, iteration: int) -> None:
        """Keep the rows up to ``iteration`` (resuming from its checkpoint), atomically."""
        if not self.metrics_path.exists():
            return
        with open(self.metrics_path, newline="") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], [r for r in rows[1:] if r and int(r[0]) <= iteration]
        self._columns = header

        def write(handle) -> None:
            text = io.StringIO()
            csv.writer(text).writerows([header, *body])
            handle.write(text.getvalue().encode())

        atomic_write(self.metrics_path, write)

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one row (flushed at once, so a crash keeps every finished iteration)."""
        if self._columns is None:
            extra = sorted(k for k in row if k not in METRIC_COLUMNS)
            self._columns = METRIC_COLUMNS + extra
            with open(self.metrics_path, "w", newline="") as f:
                csv.writer(f).writerow(self._columns)
        with open(self.metrics_path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(c, "") for c in self._columns])

    def save_checkpoint(self, state: dict[str, Any], iteration: int, keep: int = 0) -> Path:
        """Write ``checkpoints/iter-<iteration>.pt``, then drop all but the newest ``keep`` (0: keep all)."""
        path = self.path / "checkpoints" / f"iter-{iteration:06d}.pt"
        atomic_write(path, lambda f: torch.save(state, f))
        for old in checkpoints(self.path)[:-keep] if keep else []:
            old.unlink(missing_ok=True)
        return path


def checkpoints(run: Path) -> list[Path]:
    """A run's checkpoints, oldest first."""
    return sorted((run / "checkpoints").glob("iter-*.pt"))


def latest_checkpoint(run: Path, required: tuple[str, ...] = ("learner", "runner")) -> dict[str, Any] | None:
    """The newest checkpoint that loads and has the ``required`` keys; corrupt or truncated ones are
    reported on stderr, renamed ``*.corrupt`` (kept for inspection) and skipped."""
    for path in reversed(checkpoints(run)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            missing = [key for key in required if key not in state]
            if missing:
                raise KeyError(f"missing {missing}")
        except Exception as error:  # truncated zip, unpickling error, wrong content
            print(f"warning: checkpoint {path} is corrupt ({type(error).__name__}: {error}); "
                  "falling back to the previous one", file=sys.stderr)  # fmt: skip
            path.rename(path.with_suffix(".corrupt"))
            continue
        return state
    return None


def load_metrics(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "metrics.csv")


def load_summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text())


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (no extra dependency)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
