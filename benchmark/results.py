"""The results schema: ``results/<run-id>/`` holds

- ``config.yaml``: the resolved config (written atomically: temporary file, then rename);
- ``metrics.csv``: one row per iteration (wall-clock, env steps, returns, phase times, memory, ...),
  appended with one ``write`` per row; a torn last row (a crash of the machine mid-write) is dropped
  by readers and on resume;
- ``summary.json`` (atomic): status (running | complete | diverged | failed | interrupted), ``task_version`` (the
  task's ``version``; absent before it was recorded, i.e. version 1), final evaluation return, totals;
- ``checkpoints/iter-<iteration>.pt`` (atomic): learner state and progress counters, the last
  ``keep_checkpoints`` of them (all when 0).

Plots and tables read only these files.
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from omegaconf import DictConfig, OmegaConf

from algorithms import registry
from benchmark.config import ConfigError, typed

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
    "iteration_memory_mb",
    "actor_grad_norm",
]


class DiskFull(OSError):
    """A write that failed for want of space. Nothing already written is lost (files are replaced by a
    rename, rows appended whole), so the run is resumable once space is freed."""

    def __init__(self, path: Path) -> None:
        free = _free_mb(path.parent)
        super().__init__(errno.ENOSPC, f"no space left to write {path} ({free:.0f} MB free there)")


def _free_mb(folder: Path) -> float:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return float("nan")
    return stats.f_bavail * stats.f_frsize / 2**20


def out_of_space(error: BaseException) -> bool:
    """Whether ``error`` means the disk (or quota) is full: ``OSError`` ENOSPC/EDQUOT, or what
    ``torch.save`` raises instead ("[enforce fail at inline_container.cc] ... file write failed")."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    message = str(error)
    return isinstance(error, RuntimeError) and "inline_container" in message and "write" in message


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
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if out_of_space(error) and not isinstance(error, DiskFull):
            raise DiskFull(path) from error
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

    def start_provenance(self, record: dict[str, Any]) -> None:
        """``provenance.json`` for the session that starts now; a resumed run keeps its earlier sessions'
        records under ``earlier`` (each session may run other code)."""
        path, earlier = self.path / "provenance.json", []
        if path.exists():
            try:
                old = json.loads(path.read_text())
                earlier = [*old.pop("earlier", []), old]
            except (ValueError, AttributeError):
                earlier = [{"unreadable": "provenance.json of an earlier session was damaged"}]
        atomic_write(path, lambda f: f.write(json.dumps({**record, "earlier": earlier}, indent=2).encode()))

    def end_provenance(self, status: str) -> None:
        from benchmark.provenance import end_record

        path = self.path / "provenance.json"
        record = end_record(json.loads(path.read_text()), status)
        atomic_write(path, lambda f: f.write(json.dumps(record, indent=2).encode()))

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
        """Keep the rows up to ``iteration`` (resuming from its checkpoint), atomically. The file is checked
        first (our header, whole rows of integer iterations 1, 2, 3, ...); a damaged one is set aside as
        ``metrics.damaged-<k>.csv`` with one line on stderr, and the rows before the damage are kept."""
        if not self.metrics_path.exists():
            return
        header, sound, problem = _sound_rows(self.metrics_path, iteration)
        if problem is not None:
            k = 1 + sum(1 for _ in self.path.glob("metrics.damaged-*.csv"))
            aside = self.path / f"metrics.damaged-{k}.csv"
            self.metrics_path.rename(aside)
            gap = (
                f"; iterations {len(sound) + 1}-{iteration} are missing from the curve"
                if len(sound) < iteration
                else ""
            )
            print(f"warning: {self.metrics_path} is damaged ({problem}); set aside as {aside.name}, "
                  f"{len(sound)} sound rows kept{gap}", file=sys.stderr)  # fmt: skip
            if header is None:  # no columns to keep rows under: the next row starts a fresh file
                self._columns = None
                return
        self._columns = header

        def write(handle) -> None:
            text = io.StringIO()
            csv.writer(text).writerows([header, *sound])
            handle.write(text.getvalue().encode())

        atomic_write(self.metrics_path, write)

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one row in one ``write`` (a killed process keeps every finished iteration, whole)."""
        if self._columns is None:
            extra = sorted(k for k in row if k not in METRIC_COLUMNS)
            self._columns = METRIC_COLUMNS + extra
            atomic_write(self.metrics_path, lambda f: f.write(_csv_line(self._columns)))
        fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, _csv_line([row.get(c, "") for c in self._columns]))
        except OSError as error:  # a torn row is dropped by every reader and on resume
            if out_of_space(error):
                raise DiskFull(self.metrics_path) from error
            raise
        finally:
            os.close(fd)

    def remove_torn_writes(self) -> list[Path]:
        """Delete what an :func:`atomic_write` killed mid-write (SIGKILL, power loss) left: its temporary
        ``.<name>.<random>`` files beside the run's files and checkpoints. Called with the run's lock held,
        so no writer of this run is alive; returns what was removed."""
        torn = [p for folder in (self.path, self.path / "checkpoints") if folder.is_dir()
                for p in folder.glob(".*.*") if p.is_file() and not p.is_symlink()]  # fmt: skip
        for path in torn:
            path.unlink()
        return torn

    def save_checkpoint(self, state: dict[str, Any], iteration: int, keep: int = 0) -> Path:
        """Write ``checkpoints/iter-<iteration>.pt``, then drop all but the newest ``keep`` (0: keep all)."""
        path = self.path / "checkpoints" / f"iter-{iteration:06d}.pt"
        atomic_write(path, lambda f: torch.save(state, f))
        for old in checkpoints(self.path)[:-keep] if keep else []:
            old.unlink(missing_ok=True)
        return path


def _sound_rows(path: Path, iteration: int) -> tuple[list[str] | None, list[list[str]], str | None]:
    """(header, the rows 1..``iteration`` that are sound, what is wrong or None). Rows after
    ``iteration`` (work redone after the checkpoint) and a torn last row are dropped, not problems."""
    raw = path.read_bytes()
    if b"\0" in raw:
        return None, [], "NUL bytes"
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None, [], "not UTF-8 text"
    text = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or rows[0][:1] != ["iteration"] or not {"wall_clock", "env_steps"} <= set(rows[0]):
        return None, [], "empty" if not rows else "not our header"  # (older runs may lack newer columns)
    header, sound = rows[0], []
    for row in rows[1:]:
        try:
            number = int(row[0])
        except (ValueError, IndexError):
            return header, sound, f"row {len(sound) + 2} has no integer iteration"
        if len(row) != len(header):
            return header, sound, f"iteration {number} has {len(row)} fields, the header {len(header)}"
        if number != len(sound) + 1:
            return header, sound, f"iteration {number} follows iteration {len(sound)}"
        if number > iteration:
            break
        sound.append(row)
    return header, sound, None


def _csv_line(values: list[Any]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerow(values)
    return text.getvalue().encode()


def checkpoints(run: Path) -> list[Path]:
    """A run's checkpoints, oldest first."""
    return sorted((run / "checkpoints").glob("iter-*.pt"))


def _read_checkpoint(path: Path, tries: int = 3, wait_s: float = 1.0) -> dict[str, Any]:
    """``torch.load`` that retries I/O errors (a network filesystem's hiccup is not a corrupt file); still
    failing, it stops the run with one line and changes nothing."""
    for attempt in range(1, tries + 1):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
        except OSError as error:
            if attempt == tries:
                raise ConfigError(
                    f"cannot read checkpoint {path} ({type(error).__name__}: {error}) after {tries} tries; "
                    "nothing was changed: check the filesystem, then run the same command again"
                ) from None
            time.sleep(wait_s * attempt)
    raise AssertionError("unreachable")


def latest_checkpoint(
    run: Path,
    required: tuple[str, ...] = ("learner", "runner"),
    fits: Callable[[dict], None] | None = None,
    set_aside: bool = True,
) -> dict[str, Any] | None:
    """The newest checkpoint that loads, has the ``required`` keys and ``fits`` (a callable that loads it
    into the learner, raising where it does not fit); corrupt, truncated or unfitting ones are reported
    on stderr and skipped, and renamed ``*.corrupt`` (kept for inspection) when ``set_aside``: the run's
    own resume does, a viewer (video, evaluation, a student reading its teacher) never changes what it
    reads. An unreadable one (I/O error) is retried, never renamed. Checkpoints load with
    ``weights_only``: tensors, numbers and containers, never code."""
    for path in reversed(checkpoints(run)):
        try:
            state = _read_checkpoint(path)
            missing = [key for key in required if key not in state]
            if missing:
                raise KeyError(f"missing {missing}")
            if fits is not None:
                fits(state)
        except ConfigError:
            raise
        except Exception as error:  # truncated zip, unpickling refused, wrong content, another learner's
            print(f"warning: checkpoint {path} is corrupt or does not fit ({type(error).__name__}: "
                  f"{str(error).splitlines()[0] if str(error) else ''}); falling back to the previous one",
                  file=sys.stderr)  # fmt: skip
            if set_aside:
                path.rename(path.with_suffix(".corrupt"))
            continue
        return state
    return None


def load_metrics(run: Path) -> pd.DataFrame:
    """A run's metrics; a torn last row (see the module doc) is left out. A run of the shipped reference
    set has its compact curve instead (``benchmark.reference``: the same columns, fewer rows)."""
    if not (run / "metrics.csv").exists() and (run / "curve.csv.gz").exists():
        return pd.read_csv(io.BytesIO(_unpacked(run / "curve.csv.gz")))
    return pd.read_csv(io.StringIO(_whole_rows(run / "metrics.csv")))


MAX_CURVE_BYTES = 64 << 20  # a compact curve unpacks to well under a megabyte


def _unpacked(path: Path) -> bytes:
    """A shipped curve's bytes, unpacked at most ``MAX_CURVE_BYTES``: a small file that unpacks to
    gigabytes (a gzip bomb) is a damaged run, not a figure."""
    if file_within(path.parent, path.name) is None:
        raise DamagedRun(f"{path} is a link out of its run")
    with gzip.open(path) as packed:
        data = packed.read(MAX_CURVE_BYTES + 1)
    if len(data) > MAX_CURVE_BYTES:
        raise DamagedRun(f"{path} unpacks to more than {MAX_CURVE_BYTES >> 20} MB: not a compact curve")
    return data


def _whole_rows(path: Path) -> str:
    """The file's text without a torn last row: every whole row ends with its line break."""
    text = path.read_text()
    return text if text.endswith("\n") else text[: text.rfind("\n") + 1]


class DamagedRun(ConfigError):
    """A run's files cannot be what the runner wrote (not JSON, not a mapping, a field of the wrong kind):
    the readers of many runs name it and go on with the others."""


def load_summary(run: Path) -> dict[str, Any]:
    """A run's ``summary.json``, checked as input: a JSON object of at most 1 MB with a ``status`` and
    whole-number versions; anything else is a :class:`DamagedRun` naming the run."""
    path = file_within(run, "summary.json")
    if path is None or path.stat().st_size > MAX_CONFIG_BYTES:
        raise DamagedRun(f"{run}/summary.json is missing, a link out of the run, or over 1 MB")
    try:
        summary = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise DamagedRun(f"{run}/summary.json is not JSON ({error})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("status"), str):
        raise DamagedRun(f"{run}/summary.json is not a run's summary (a mapping with a status)")
    for key in ("task_version", "learner_version", "seed", "iterations"):
        if key in summary and (type(summary[key]) is not int):
            raise DamagedRun(f"{run}/summary.json: {key} is {summary[key]!r}, not a whole number")
    return summary


def file_within(run: Path, relative: str) -> Path | None:
    """``run / relative`` when it is a regular file that is neither a symlink nor reached through one
    out of the run's folder, else None: a results folder is input, and a viewer or a publisher must not
    read (or embed, or copy) a file elsewhere on the machine because a run points there."""
    path = run / relative
    if not path.is_file() or any(p.is_symlink() for p in (path, *path.parents) if p.is_relative_to(run) and p != run):
        return None
    return path if path.resolve().is_relative_to(run.resolve()) else None


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (no extra dependency)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


FINAL_SHARE = 0.1  # the final training return: episodes of the last 10% of a run's wall-clock


def clock_start(run: Path) -> float:
    """Where the run's wall-clock starts: 0, or for a DAgger student its teacher's end (the student's
    clock continues the teacher's)."""
    try:
        return float(load_summary(run).get("teacher_wall_clock") or 0.0)
    except (ConfigError, TypeError, ValueError):
        return 0.0


def final_training(run: Path) -> dict[str, float]:
    """A run's final sampled training return (the mean over the last ``FINAL_SHARE`` of its wall-clock: what
    the paper's curves show at their end; the last episode's return when none ended in that share, as
    with long episodes and few iterations), with its total env steps and hours. A student's clock starts
    where its teacher's stopped: its share is of its own time. A shipped run's compact curve holds bin means,
    which weigh an iteration without a finished episode like one with: there the value the run recorded
    from its whole metrics (``final_train_return`` in its summary) is the one, when it recorded one."""
    metrics = load_metrics(run)
    if metrics.empty:
        return {"train_return": np.nan, "env_steps": np.nan, "hours": np.nan}
    end, start = metrics["wall_clock"].iloc[-1], clock_start(run)
    last = metrics.loc[metrics["wall_clock"] >= end - FINAL_SHARE * (end - start), "train_return"]
    if last.isna().all():
        last = metrics["train_return"].dropna().tail(1)
    final = float(np.nanmean(last)) if last.notna().any() else np.nan
    if not (run / "metrics.csv").exists():  # a compact curve
        recorded = _recorded_final(run)
        final = final if recorded is None else recorded
    return {"train_return": final, "env_steps": float(metrics["env_steps"].iloc[-1]), "hours": float(end / 3600)}


def _recorded_final(run: Path) -> float | None:
    """The finite ``final_train_return`` a run's summary holds, else None (older runs did not record it)."""
    try:
        value = load_summary(run).get("final_train_return")
    except ConfigError:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) else None


def outdated_learners(run: Path) -> list[str]:
    """What makes a finished run no longer the code's learner: ``"shac v1 (the code's: v2)"`` for its own
    learner and, for a student, its teacher's (shipped inside it or where it points), each whose recorded
    ``learner_version`` (1 when absent: recorded since version 2) is not the code's. Empty: current."""
    found = []
    summary = load_summary(run)
    runs = [(run, summary)]
    if isinstance(summary.get("teacher_run"), str) and (teacher := run / summary["teacher_run"]).is_dir():
        runs.append((teacher, load_summary(teacher)))
    for where, recorded in runs:
        name = recorded.get("learner") or _config_value(where, "learner")
        learner = registry().get(name) if isinstance(name, str) else None
        version = recorded.get("learner_version", 1)
        if learner is not None and version != learner.version:
            found.append(f"{name} v{version} (the code's: v{learner.version})")
    return found


MAX_CONFIG_BYTES = 1 << 20  # a run's config.yaml is a few KB


class _PlainYAML(yaml.SafeLoader):
    """Safe YAML without aliases: a kilobyte of nested ``*refs`` expands to gigabytes in whatever walks it."""

    def fetch_alias(self) -> None:
        raise yaml.YAMLError("aliases (*name) have no place in a run's config.yaml")


def read_run_config(run: Path) -> dict[str, Any]:
    """A run's ``config.yaml`` as plain data, read as input: not a symlink out of the run, at most 1 MB,
    a mapping, no YAML aliases and no OmegaConf interpolation (``${oc.env:...}`` would read the
    environment). A ``ConfigError`` names the run and the fault."""
    path = file_within(run, "config.yaml")
    if path is None or path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{run}/config.yaml is missing, a link out of the run, or over 1 MB: not a run's config")
    try:
        config = yaml.load(path.read_text(), Loader=_PlainYAML)  # noqa: S506 (a safe loader)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{run}/config.yaml is not readable YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{run}/config.yaml is not a mapping of settings")
    if "${" in json.dumps(config, default=str):
        raise ConfigError(f"{run}/config.yaml holds an interpolation (${{...}}); a run's config holds values only")
    return config


def load_run_config(run: Path) -> DictConfig:
    """The typed config a run was started with, from its ``config.yaml`` (read as input)."""
    return typed(read_run_config(run))


def _config_value(run: Path, key: str) -> Any:
    """One key of a run's config.yaml (None when it cannot be read): runs recorded before the summary named it."""
    try:
        return read_run_config(run).get(key)
    except (OSError, ConfigError):
        return None
