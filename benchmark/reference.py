"""The shipped reference set: finished runs that outlive the machine they ran on.

``results/reference/<task>/<algo>/<experiment>/seed<k>/`` holds a run's ``config.yaml``, ``summary.json``,
``provenance.json`` and ``curve.csv.gz``; a DAgger student's teacher sits in its ``teacher/`` beside them.
Checkpoints stay on the machine, except a teacher's last one (``checkpoints/``, published
``with_checkpoint``): the policy its students distil, so a DAgger cell can run on a machine that never
ran its teacher. ``<experiment>`` names the settings that make the experiment (``preset-cpu_
budget-30min``; ``paper`` for the paper's own). ``results/reference/floors.csv`` holds the floors every
task is read against (``benchmark/floors.py``).

``curve.csv.gz`` has the columns of ``metrics.csv`` and at most ``MAX_ROWS`` rows, plus ``rows``: how
many iterations of the run each row stands for. The first and last iterations and the one with the
highest training return are kept as they were; between them, consecutive iterations are merged into
bins of equal size: ``iteration``, ``wall_clock`` and ``env_steps`` are the bin's last (the clock at
its end), ``time_*`` are summed (the time phases still add up to the run's), every other column is
the bin's mean over its finite values. The final evaluation is in ``summary.json``.

    python -m benchmark.reference publish results/<run> [--allow-dirty] [--with-checkpoint]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from benchmark.config import ConfigError, algorithms, with_defaults
from benchmark.experiments import experiment_name
from benchmark.provenance import ROOT
from benchmark.results import checkpoints, file_within, load_metrics, load_summary, outdated_learners, read_run_config
from envs.tasks import registry

REFERENCE = ROOT / "results" / "reference"
MAX_ROWS = 1000
PUBLISHABLE = ("complete", "diverged", "failed")  # a failure is a result; running or interrupted is not yet
KEEP_LAST = ("iteration", "wall_clock", "env_steps")


# ---------------------------------------------------------------------------------------------- curves
def compact_curve(metrics: pd.DataFrame, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """At most ``max_rows`` rows that keep the curve's shape, its time phases and its ends (module doc).
    A curve compacted already (it has ``rows``) stays as it is: publishing a shipped cell is an identity."""
    metrics = metrics.reset_index(drop=True)
    if len(metrics) <= max_rows:
        return metrics if "rows" in metrics.columns else metrics.assign(rows=1)
    best = int(metrics["train_return"].fillna(-np.inf).to_numpy().argmax())
    exact = sorted({0, best, len(metrics) - 1})
    rows = []
    for left, right in zip(exact[:-1], exact[1:], strict=True):
        rows.append(_merge(metrics.iloc[[left]]))
        inner = metrics.iloc[left + 1 : right]
        share = max(1, round((max_rows - len(exact)) * len(inner) / max(len(metrics) - len(exact), 1)))
        for chunk in np.array_split(np.arange(len(inner)), min(share, len(inner))) if len(inner) else []:
            rows.append(_merge(inner.iloc[chunk]))
    rows.append(_merge(metrics.iloc[[exact[-1]]]))
    columns = [c for c in metrics.columns if c != "rows"]
    return pd.DataFrame(rows, columns=[*columns, "rows"]).reset_index(drop=True)


def _merge(block: pd.DataFrame) -> dict:
    row = {}
    for column in block.columns.drop("rows", errors="ignore"):
        values = block[column]
        if column in KEEP_LAST:
            row[column] = values.iloc[-1]
        elif column.startswith("time_"):
            row[column] = values.sum(min_count=1)
        else:
            numeric = pd.to_numeric(values, errors="coerce")
            row[column] = numeric.mean() if numeric.notna().any() else np.nan
    return {**row, "rows": int(block["rows"].sum()) if "rows" in block.columns else len(block)}


# ---------------------------------------------------------------------------------------------- publishing
SHIPPED_VIDEO = ("policy.webm", "policy.png")  # the MP4 stays on the machine: the WebM plays in browsers


def recorded_settings(run: Path) -> list[str] | None:
    """The defining settings the run wrote into its summary when it started (its identity, written once:
    editing a default in configs/ later does not rename it), or None for a run from before they were."""
    settings = load_summary(run).get("settings")
    return settings if isinstance(settings, list) and all(isinstance(s, str) for s in settings) else None


def published_path(run: Path, reference: Path = REFERENCE) -> Path:
    """Where ``run`` goes in the reference set, from names the suite knows: its config is input, and a
    ``task`` or ``algo`` that is a path (``/abs``, ``../..``) must not choose where publishing writes."""
    config = with_defaults(read_run_config(run))
    task, algo, seed = config.get("task"), config.get("algo"), config.get("seed")
    if task not in registry() or algo not in algorithms() or type(seed) is not int or seed < 0:
        raise ConfigError(f"{run}/config.yaml names task {task!r}, algo {algo!r}, seed {seed!r}: not a task and algo "
                          "of this suite with a seed >= 0; it cannot be published")  # fmt: skip
    target = reference / task / algo / experiment_name(config, recorded_settings(run)) / f"seed{seed}"
    if not target.resolve().is_relative_to(reference.resolve()):
        raise ConfigError(f"{run}: its experiment name leads out of {reference}; it cannot be published")
    return target


def publish(run: Path, reference: Path = REFERENCE, allow_dirty: bool = False, with_checkpoint: bool = False,
            with_policy: bool = False) -> Path:  # fmt: skip
    """Validate a finished run and copy it into the reference set (``with_checkpoint``: its last checkpoint
    too, for a teacher; ``with_policy``: that checkpoint without its optimiser states, enough to film and
    evaluate the policy anywhere, a third of the size); returns where. Refused in one line (a
    ``ConfigError``), with nothing copied: a run not finished, on an older task or learner version, from a
    dirty tree without ``allow_dirty``, a seed the experiment already holds, or a checkpoint asked for and
    missing. A seed shipped by an older version of the learner (or its teacher's) is replaced."""
    for name in ("config.yaml", "summary.json", "metrics.csv", "provenance.json"):
        if not (run / name).is_file():
            raise ConfigError(f"{run} has no {name}: not a run of this suite's runner (or from before provenance)")
    summary = load_summary(run)
    if summary.get("status") not in PUBLISHABLE:
        raise ConfigError(f"{run} is {summary.get('status')!r}: publish it when it has finished (complete, "
                          "diverged or failed); the same command resumes an interrupted run")  # fmt: skip
    current = registry()[summary["task"]].version
    if summary.get("task_version", 1) != current:
        raise ConfigError(f"{run} ran {summary['task']} task version {summary.get('task_version', 1)}; the "
                          f"reference set holds version {current} only: run it again")  # fmt: skip
    if outdated := outdated_learners(run):
        raise ConfigError(f"{run} ran {', '.join(outdated)}; the reference set holds the code's learners only: "
                          "run it again")  # fmt: skip
    provenance = json.loads((run / "provenance.json").read_text())
    if provenance["git"].get("dirty") and not allow_dirty:
        diff = provenance["git"]["diff_sha256"][:12]
        raise ConfigError(f"{run} ran from a tree with uncommitted changes (diff {diff}); run it again from a clean "
                          "commit, or publish with --allow-dirty (recorded as dirty)")  # fmt: skip
    target = published_path(run, reference)
    replaces = target.exists() and (target / "summary.json").is_file() and bool(outdated_learners(target))
    if target.exists() and not replaces:
        raise ConfigError(f"{target} already holds seed {summary['seed']} of this experiment; a seed is "
                          "published once (never re-run a seed for a better number)")  # fmt: skip
    if (with_checkpoint or with_policy) and not checkpoints(run):
        raise ConfigError(f"{run} has no checkpoint to ship; publish it without --with-checkpoint (its students "
                          "will then need the machine it ran on)")  # fmt: skip
    teacher = run / summary["teacher_run"] if "teacher_run" in summary else None
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _copy_run(run, staging, {"teacher_run": "teacher"} if teacher else {})
        if teacher is not None:
            _copy_run(teacher, staging / "teacher", {})
        if with_checkpoint:
            _ship_last_checkpoint(run, staging, policy=False)
        elif with_policy:  # a student's policy needs its teacher's to be built: both ship
            for source, into in ((run, staging), *(((teacher, staging / "teacher"),) if teacher else ())):
                _ship_last_checkpoint(source, into, policy=True)
        if replaces:  # an older learner's cell stays shipped until this one takes its place (git keeps it)
            shutil.rmtree(target)
        staging.rename(target)  # all or nothing
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


# Where a run wrote and where its teacher was are the machine's, not the experiment's: the reference set
# holds them as a fresh run of the same config would (its default results folder, the teacher inside)
SHIPPED_PATHS = {"results_dir": "results", "teacher_run": "teacher"}


def without_machine_paths(config: dict, provenance: dict) -> tuple[dict, dict]:
    """The config and provenance with ``SHIPPED_PATHS`` in place of the machine's paths (in the command
    of the run and of every earlier attempt too); the provenance says which keys were rewritten."""
    config = {**config, **{k: v for k, v in SHIPPED_PATHS.items() if config.get(k) is not None}}

    def shipped(arg: str) -> str:
        key = next((k for k in SHIPPED_PATHS if arg.startswith(f"{k}=")), None)
        if key is not None:
            return f"{key}={SHIPPED_PATHS[key]}"
        return f"<machine>/{Path(arg).name}" if arg.startswith("/") else arg  # a job runner's script or folder

    def command(record: dict) -> dict:
        return {**record, "command": [shipped(str(a)) for a in record.get("command", [])]}

    provenance = {**command(provenance), "earlier": [command(e) for e in provenance.get("earlier", [])]}
    return config, {**provenance, "paths_rewritten_when_shipped": sorted(SHIPPED_PATHS)}


def _ship_last_checkpoint(run: Path, target: Path, policy: bool) -> None:
    """The run's newest checkpoint into ``target/checkpoints/``, whole or (``policy``) without optimisers."""
    found = checkpoints(run)
    if not found:
        return
    last = found[-1]
    (target / "checkpoints").mkdir()
    if policy:
        torch.save(policy_only(torch.load(last, weights_only=True)), target / "checkpoints" / last.name)
    else:
        shutil.copy(last, target / "checkpoints" / last.name)


def policy_only(checkpoint: dict) -> dict:
    """The checkpoint without the optimisers' states (every entry of the learner's state that is an
    optimiser's ``state_dict``): what filming and evaluating need; a run is never resumed from it."""
    is_optimiser = lambda value: isinstance(value, dict) and {"state", "param_groups"} <= set(value)  # noqa: E731
    learner = {k: v for k, v in checkpoint["learner"].items() if not is_optimiser(v)}
    return {**checkpoint, "learner": learner, "policy_only": True}


def _copy_run(run: Path, target: Path, summary_changes: dict) -> None:
    target.mkdir(parents=True)
    provenance = file_within(run, "provenance.json")
    provenance = json.loads(provenance.read_text()) if provenance is not None else {}
    config, provenance = without_machine_paths(read_run_config(run), provenance)
    (target / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (target / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    summary = {k: v for k, v in load_summary(run).items() if k != "traceback"}
    (target / "summary.json").write_text(json.dumps({**summary, **summary_changes}, indent=2) + "\n")
    compact_curve(load_metrics(run)).to_csv(target / "curve.csv.gz", index=False, float_format="%.6g")
    for name in SHIPPED_VIDEO:  # what the policy does (``make video``), when the run has one: small files
        if (video := file_within(run, f"video/{name}")) is not None:
            (target / "video").mkdir(exist_ok=True)
            shutil.copy(video, target / "video" / name)


# ---------------------------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="copy finished runs into results/reference/")
    pub.add_argument("runs", nargs="+", type=Path)
    pub.add_argument("--allow-dirty", action="store_true", help="publish a run from a dirty tree (recorded)")
    pub.add_argument("--with-checkpoint", action="store_true", help="ship its last checkpoint too (a teacher's)")
    args = parser.parse_args(argv)
    failed = False
    for run in args.runs:
        try:
            target = publish(run, allow_dirty=args.allow_dirty, with_checkpoint=args.with_checkpoint)
            print(f"published {run} -> {target}")
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            failed = True
    if failed:
        sys.exit(2)


if __name__ == "__main__":
    main()
