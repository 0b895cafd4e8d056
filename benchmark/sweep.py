"""Seed sweeps through submitit: a grid of (algo, task, seed) runs on SLURM, on this machine, or inline.

``python -m benchmark.sweep run --algos dva,shac --tasks cartpole --seeds 0-4 --executor slurm -- preset=cpu``
writes each run to ``results/<sweep>/<algo>-<task>-seed<seed>/`` and the job records to
``results/<sweep>/.sweep/jobs.csv``. Runs already finished are skipped, and so are runs whose last job is
still pending or running. ``python -m benchmark.sweep status`` reads the job records (SLURM accounting,
process ids, submitit's result files) and the runs' summaries, and prints one table; failures come
with the last lines of their logs.

Jobs are checkpointable: a job that hits its time limit or is preempted is requeued by submitit and
the run resumes from its newest checkpoint (see :func:`benchmark.run.run`).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import submitit
from omegaconf import OmegaConf
from submitit.core.utils import JobPaths

from benchmark.config import CONFIG_DIR, ConfigError, is_path_component, load_config
from benchmark.results import FINISHED, load_summary, markdown_table
from benchmark.run import run

RECORD_FIELDS = ["run", "algo", "task", "seed", "executor", "job_id", "submitted", "logs"]
SACCT_LAG_S = 300  # a job sacct has not heard of this long after its submission is lost, not pending
SLURM_STATES = {  # sacct state -> ours
    "PENDING": "pending", "REQUEUED": "pending", "CONFIGURING": "pending", "REQUEUE_HOLD": "pending",
    "RUNNING": "running", "COMPLETING": "running", "SUSPENDED": "running",
    "COMPLETED": "done", "PREEMPTED": "preempted",
}  # fmt: skip


class RunJob(submitit.helpers.Checkpointable):
    """One run as a submitit job. ``checkpoint()`` (inherited) resubmits the same call on timeout or
    preemption; the run then resumes from its checkpoints, so nothing else needs saving here."""

    def __call__(self, algo: str, task: str, overrides: list[str]) -> dict:
        # the job's command line is submitit's; provenance records the run's own (python -m benchmark.run ...)
        argv, sys.argv = sys.argv, [sys.modules[run.__module__].__file__, algo, task, *overrides]
        try:
            path = run(load_config(algo, task, overrides), progress=False)
        finally:
            sys.argv = argv
        return load_summary(path)


@dataclass
class Sweep:
    """The grid and where it writes."""

    name: str
    algos: list[str]
    tasks: list[str]
    seeds: list[int]
    overrides: list[str]
    results_dir: Path
    cells: list[tuple[str, str, int, list[str]]] | None = None  # instead of the grid (``benchmark.campaign``)

    @property
    def root(self) -> Path:
        return self.results_dir / self.name

    @property
    def records(self) -> Path:
        return self.root / ".sweep" / "jobs.csv"

    def runs(self) -> list[tuple[str, str, int, list[str]]]:
        """(algo, task, seed, overrides) per run; configs are validated before anything is submitted."""
        if self.cells is not None:  # a campaign's own list: per-run overrides, in its order
            for algo, task, _, overrides in self.cells:
                load_config(algo, task, overrides)
            return self.cells
        grid = []
        for algo in self.algos:
            for task in self.tasks:
                for seed in self.seeds:
                    overrides = [
                        *self.overrides,
                        f"seed={seed}",
                        f"results_dir={self.root.resolve()}",
                        f"run_name={algo}-{task}-seed{seed}",
                    ]
                    load_config(algo, task, overrides)
                    grid.append((algo, task, seed, overrides))
        return grid


RESERVED_OVERRIDES = {  # a sweep sets these per run
    "seed": "--seeds",
    "results_dir": "--results-dir",
    "run_name": "--name (runs are named <algo>-<task>-seed<seed>)",
}


def int_ranges(text: str) -> list[int]:
    """``0-4`` or ``0,2,5`` or ``1-2,7`` (the notation of seeds and of SLURM array indices)."""
    numbers: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        numbers += list(range(int(low), int(high or low) + 1))
    return numbers


def parse_seeds(text: str) -> list[int]:
    hint = "write e.g. 0-4 or 0,2,5"
    try:
        seeds = int_ranges(text)
    except ValueError:
        raise ConfigError(f"seeds '{text}' not understood; {hint}") from None
    for part in text.split(","):
        low, _, high = part.partition("-")
        if high and int(high) < int(low):
            raise ConfigError(f"seeds '{text}': the range {part} is empty (it must go up); {hint}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds '{text}' repeat a seed; {hint}")
    return seeds


def check_text(value: str, what: str) -> None:
    """Refuse control characters (a newline would end an ``#SBATCH`` line of the job script and start a
    command) in anything that reaches a generated script or a path."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(f"{what} {value!r} holds a control character (e.g. a newline); remove it")


def check_partition(partition: str) -> None:
    """A SLURM partition name, or one line saying what one is (it reaches an ``#SBATCH`` line)."""
    if not re.fullmatch(r"[\w.,-]+", partition):
        raise ConfigError(f"--partition {partition!r}: give a SLURM partition name (letters, digits, ._-,)")


def check_overrides(overrides: list[str]) -> None:
    """Refuse overrides that the sweep sets itself, instead of silently replacing them."""
    for override in overrides:
        check_text(override, "override")
        key = override.partition("=")[0].strip()
        if key in RESERVED_OVERRIDES:
            raise ConfigError(f"'{override}': a sweep sets {key} per run; use {RESERVED_OVERRIDES[key]}")


# ---------------------------------------------------------------------------------------------- status
JOB_ID = {"slurm": re.compile(r"\d+(_\d+)?"), "local": re.compile(r"[1-9]\d*"), "inline": re.compile(r"inline-[\w.-]+")}


def read_records(sweep_root: Path) -> pd.DataFrame:
    """The latest job record of each run. A record is plain text anyone may have edited: it is checked
    (known executor, a job id of its kind, a plain run name) and refused in one line otherwise; its logs
    are read from this sweep's own folder, wherever the record says (a copied sweep keeps its logs)."""
    path = sweep_root / ".sweep" / "jobs.csv"
    if not path.exists():
        raise ConfigError(f"no sweep at {sweep_root} (no .sweep/jobs.csv); start one with `make sweep`")
    fix = f"{path} is damaged; move it aside and run the sweep again (finished runs are skipped)"
    try:
        records = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ConfigError(f"{fix} ({type(error).__name__})") from None
    if list(records.columns) != RECORD_FIELDS:
        raise ConfigError(f"{fix} (columns {list(records.columns)}, expected {RECORD_FIELDS})")
    for row in records.itertuples():
        pattern = JOB_ID.get(row.executor)
        if pattern is None or not pattern.fullmatch(row.job_id) or not is_path_component(row.run):
            raise ConfigError(f"{fix} (line {row.Index + 2}: executor {row.executor!r}, job {row.job_id!r}, "
                              f"run {row.run!r})")  # fmt: skip
    records["logs"] = str((sweep_root / ".sweep" / "logs").resolve())
    return records.groupby("run").tail(1)


def slurm_states(job_ids: list[str]) -> dict[str, str]:
    """sacct's state per job id (``16_2`` -> ``RUNNING``), one call for all of a sweep's arrays.

    A task's own line wins over its array's range line: slurmdbd keeps listing ``16_[2-3%1] PENDING``
    for a while after task 2 has started, and submitit's parser lets that stale line win."""
    arrays = sorted({job.split("_")[0] for job in job_ids})
    try:
        out = subprocess.run(["sacct", "-X", "-o", "JobID,State", "--parsable2", "-j", ",".join(arrays)],
                             capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError) as error:  # no accounting: states unknown, not "pending"
        detail = (getattr(error, "stderr", None) or str(error)).strip().splitlines()
        raise ConfigError(
            f"sacct failed ({detail[-1] if detail else type(error).__name__}): SLURM job states are unknown; "
            "check that SLURM accounting (slurmdbd) answers `sacct -X -j <job id>`"
        ) from None
    own, ranged = {}, {}
    for line in out.splitlines()[1:]:
        job, _, state = line.partition("|")
        state = state.split(" ")[0]  # "CANCELLED by 0"
        match = re.fullmatch(r"(\d+)_\[([\d,-]+)(?:%\d+)?\]", job)
        if match:
            ranged.update({f"{match[1]}_{i}": state for i in int_ranges(match[2])})
        else:
            own[job] = state
    return {**ranged, **own}


def job_state(record: pd.Series, slurm: dict[str, str] | None = None) -> str:
    """pending | running | done | failed | preempted, from the job record (never from timing); ``slurm``
    holds :func:`slurm_states` for SLURM records."""
    paths = JobPaths(record["logs"], job_id=record["job_id"], task_id=0)
    finished = _result_outcome(paths, record.get("run_status"))
    if record["executor"] == "slurm":
        if finished == "done":  # submitit saw the call return; SLURM may lag (RUNNING) or say FAILED when a
            return "done"  # time-limit signal lands while the finished job exits
        state = (slurm or {}).get(record["job_id"], "UNKNOWN")
        if state in SLURM_STATES:
            return SLURM_STATES[state] if not (state == "COMPLETED" and finished == "failed") else "failed"
        if state != "UNKNOWN":
            return "failed"
        return finished or ("failed" if _older_than(record["submitted"], SACCT_LAG_S) else "pending")
    if record["executor"] == "local":
        if finished:
            return finished
        return "running" if _is_our_process(int(record["job_id"]), record["logs"]) else "failed"  # gone: killed
    return finished or ("done" if record.get("run_status") in FINISHED else "failed")


def _is_our_process(pid: int, logs: str) -> bool:
    """Whether ``pid`` is alive and still the submitit job that writes to ``logs`` (a finished job's
    PID can be reused by an unrelated process)."""
    if pid <= 0:  # 0 and -1 would signal a process group or every process: never a job of ours
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():  # no procfs (e.g. macOS): alive is the best we know
        return True
    try:
        return str(Path(logs).resolve()) in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # exited meanwhile
        return False


def _result_outcome(paths: JobPaths, run_status: str | None) -> str | None:
    """``done`` / ``failed`` once submitit has written the job's result file, None before. The file is a
    pickle, which is never loaded (it could run code): that the call returned is read from its existence,
    and how it went from the run's own summary."""
    if not paths.result_pickle.exists():
        return None
    return "done" if run_status in FINISHED else "failed"


def _older_than(stamp: str, seconds: float) -> bool:
    try:
        return (datetime.now() - datetime.fromisoformat(stamp)).total_seconds() > seconds
    except ValueError:
        return True


def status_table(sweep_root: Path) -> pd.DataFrame:
    records = read_records(sweep_root)
    slurm_jobs = records.loc[records["executor"] == "slurm", "job_id"].tolist()
    slurm = slurm_states(slurm_jobs) if slurm_jobs else {}
    rows = []
    for _, record in records.iterrows():
        run_dir = sweep_root / record["run"]
        summary = load_summary(run_dir) if (run_dir / "summary.json").exists() else {}
        record = record.copy()
        record["run_status"] = summary.get("status", "missing")
        rows.append(
            {
                "run": record["run"],
                "job_id": record["job_id"],
                "executor": record["executor"],
                "state": job_state(record, slurm),
                "run status": record["run_status"],
                "iterations": summary.get("iterations", ""),
                "eval return": round(summary["eval_return"], 1) if "eval_return" in summary else "",
                "resumed": summary.get("resumed", ""),
                "path": str(run_dir),
            }
        )
    return pd.DataFrame(rows)


def log_tail(record: pd.Series, lines: int = 5) -> str:
    paths = JobPaths(record["logs"], job_id=record["job_id"], task_id=0)
    for log in (paths.stderr, Path(record["logs"]) / f"{record['run']}.err"):
        if log.exists():
            return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    return "(no log)"


def print_status(sweep_root: Path) -> pd.DataFrame:
    table = status_table(sweep_root)
    print(markdown_table(table.drop(columns=["path"])))
    counts = table["state"].value_counts().to_dict()
    print("\n" + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    records = read_records(sweep_root).set_index("run", drop=False)
    for _, row in table[table["state"] == "failed"].iterrows():
        tail = log_tail(records.loc[row["run"]])
        print(f"\nfailed: {row['run']} (job {row['job_id']}), last log lines:\n{tail}")
    return table


# ---------------------------------------------------------------------------------------------- submit
def _record(sweep: Sweep, entries: list[dict]) -> None:
    sweep.records.parent.mkdir(parents=True, exist_ok=True)
    new = not sweep.records.exists()
    with open(sweep.records, "a", newline="") as f:
        writer = csv.DictWriter(f, RECORD_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(entries)


def _still_active(sweep: Sweep) -> set[str]:
    if not sweep.records.exists():
        return set()
    table = status_table(sweep.root)
    return set(table[table["state"].isin(["pending", "running"])]["run"])


def executor_for(kind: str, folder: Path, args: argparse.Namespace):
    if kind == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=args.time_min)
        return executor
    if kind == "slurm":
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        slurm = OmegaConf.load(CONFIG_DIR / "sweep.yaml").slurm
        pick = lambda flag, key: getattr(args, flag) if getattr(args, flag) is not None else slurm[key]  # noqa: E731
        gpus = pick("gpus", "gpus_per_node")
        params = {
            "timeout_min": pick("time_min", "time_min"),
            "cpus_per_task": pick("cpus", "cpus_per_task"),
            "gpus_per_node": slurm_partition_gpus(pick("partition", "partition")) if gpus is None else gpus,
            "slurm_array_parallelism": pick("array_parallelism", "array_parallelism"),
            "slurm_signal_delay_s": pick("signal_delay_s", "signal_delay_s"),
            "name": "dva-bench",
        }
        partition, mem_gb = pick("partition", "partition"), pick("mem_gb", "mem_gb")
        params.update({"slurm_partition": partition} if partition else {})
        params.update({"mem_gb": mem_gb} if mem_gb else {})
        executor.update_parameters(**params)
        return executor
    raise ConfigError(f"unknown executor '{kind}'; choose one of: slurm, local, inline")


def slurm_partition_gpus(partition: str | None) -> int:
    """1 when the partition's nodes offer GPUs (a ``gpu`` GRES in ``sinfo``), else 0: a job on a GPU node
    must ask for one, or SLURM hides it and ``device=auto`` quietly runs on the CPU."""
    command = ["sinfo", "-h", "-o", "%G", *(["-p", partition] if partition else [])]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return int(any("gpu" in line for line in out.splitlines()))


def local_gpus(per_job: int | None) -> list[int]:
    """The GPUs local jobs may get: this machine's (as torch counts them), none when ``per_job`` is 0."""
    if per_job == 0:
        return []
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def pick_gpu(gpus: list[int], busy: list[int], submitted: int) -> tuple[int, ...]:
    """The GPU for the next local job: one no running job holds, else in turn; none without GPUs."""
    if not gpus:
        return ()
    free = [g for g in gpus if g not in busy]
    return (free[0] if free else gpus[submitted % len(gpus)],)


def submit(sweep: Sweep, kind: str, args: argparse.Namespace) -> list[dict]:
    """Submit every run of the grid that is not finished or active; returns the new job records."""
    todo, skipped = [], []
    active = _still_active(sweep)
    for algo, task, seed, overrides in sweep.runs():
        # the grid's runs and a campaign's cells both carry their run_name (the grid's <algo>-<task>-seed<k>)
        name = next(item.split("=", 1)[1] for item in reversed(overrides) if item.startswith("run_name="))
        summary_path = sweep.root / name / "summary.json"
        if summary_path.exists() and load_summary(sweep.root / name)["status"] in FINISHED:
            skipped.append((name, "finished"))
        elif name in active:
            skipped.append((name, "already pending or running"))
        else:
            todo.append((name, algo, task, seed, overrides))
    for name, why in skipped:
        print(f"skip {name}: {why}")
    if not todo:
        print("nothing to submit")
        return []
    logs = (sweep.root / ".sweep" / "logs").resolve()
    stamp = datetime.now().isoformat(timespec="seconds")
    entries = []
    if kind == "inline":  # in this process, one after the other: for debugging
        for name, algo, task, seed, overrides in todo:
            logs.mkdir(parents=True, exist_ok=True)
            try:
                RunJob()(algo, task, overrides)
            except Exception:
                (logs / f"{name}.err").write_text(traceback.format_exc())
                print(f"{name} failed: {traceback.format_exc().strip().splitlines()[-1]}", file=sys.stderr)
            entries.append(dict(run=name, algo=algo, task=task, seed=seed, executor="inline",
                                job_id=f"inline-{name}", submitted=stamp, logs=str(logs)))  # fmt: skip
        _record(sweep, entries)
        return entries

    executor = executor_for(kind, logs, args)
    record = lambda item, job: dict(run=item[0], algo=item[1], task=item[2], seed=item[3], executor=kind,  # noqa: E731
                                    job_id=str(job.job_id), submitted=stamp, logs=str(logs))  # fmt: skip
    if kind == "slurm":
        try:
            jobs = executor.map_array(RunJob(), *zip(*[item[1:3] + (item[4],) for item in todo], strict=True))
        except Exception as error:  # sbatch refused (an unknown partition, a limit): its own words, one line
            reason = " ".join(str(error).split())[-300:]
            raise ConfigError(f"sbatch refused the jobs, none was submitted: {reason}") from None
        entries = [record(item, job) for item, job in zip(todo, jobs, strict=True)]
        _record(sweep, entries)
        _print_jobs(sweep, entries)
        if args.wait:
            wait_until_settled(sweep.root)
        return entries
    # local: this machine runs at most ``parallel`` runs at once; the jobs are this process's children. Each
    # gets a GPU of its own where there are GPUs (submitit hides every GPU from a job that asks for none).
    queue, running, gpu_of = list(todo), [], {}
    gpus = local_gpus(getattr(args, "gpus_per_job", None))
    while queue or running:
        while queue and len(running) < args.parallel:
            item = queue.pop(0)
            visible = pick_gpu(
                gpus, [gpu_of[j.job_id] for j in running if gpu_of.get(j.job_id) is not None], len(entries)
            )
            executor.update_parameters(gpus_per_node=len(visible), visible_gpus=visible)
            job = executor.submit(RunJob(), item[1], item[2], item[4])
            gpu_of[job.job_id] = visible[0] if visible else None
            entries.append(record(item, job))
            _record(sweep, entries[-1:])
            _print_jobs(sweep, entries[-1:], header=len(entries) == 1)
            running.append(job)
        for job in [job for job in running if job.done()]:
            running.remove(job)
            if job.state != "FINISHED" or job.exception() is not None:
                print(f"job {job.job_id} failed; see `make sweep-status`", file=sys.stderr)
        time.sleep(1)
    return entries


def _print_jobs(sweep: Sweep, entries: list[dict], header: bool = True) -> None:
    table = markdown_table(pd.DataFrame([{"job id": e["job_id"], "run": str(sweep.root / e["run"])} for e in entries]))
    print(table if header else table.splitlines()[-1], flush=True)


def wait_until_settled(sweep_root: Path, timeout_s: float | None = None, poll_s: float = 2.0) -> pd.DataFrame:
    """Poll the job records until no job is pending or running (SLURM accounting lags a few seconds);
    with ``timeout_s``, a sweep still active then is an error, never a silent return."""
    deadline = None if timeout_s is None else time.time() + timeout_s
    while True:
        table = status_table(sweep_root)
        active = table["state"].isin(["pending", "running"])
        if not active.any():
            return table
        if deadline is not None and time.time() > deadline:
            raise TimeoutError(
                f"{int(active.sum())} job(s) of {sweep_root} still pending or running after {timeout_s:.0f} s; "
                "they go on: see `make sweep-status`"
            )
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("run", help="submit a grid of runs")
    start.add_argument("--algos", required=True, help="comma-separated, e.g. dva,shac")
    start.add_argument("--tasks", required=True, help="comma-separated, e.g. cartpole,hopper")
    start.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,2,5")
    start.add_argument("--executor", default="local", help="slurm | local | inline")
    start.add_argument("--name", help="sweep name: results/<name>/ (default: from the overrides)")
    start.add_argument("--results-dir", type=Path, default=Path("results"))
    start.add_argument("--wait", action="store_true", help="block until every job has finished")
    for flag, kind in (("partition", str), ("time-min", int), ("cpus", int), ("gpus", int), ("mem-gb", int),
                       ("array-parallelism", int), ("signal-delay-s", int)):  # fmt: skip
        start.add_argument(f"--{flag}", type=kind, default=None, help="SLURM; default from configs/sweep.yaml")
    start.add_argument("--parallel", type=int, default=None, help="local: runs at once (default: cores / 2)")
    start.add_argument("overrides", nargs="*", help="config overrides for every run, key=value")
    status = sub.add_parser("status", help="states of a sweep's jobs")
    status.add_argument("--name", default=None)
    status.add_argument("--results-dir", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    try:
        if args.command == "status":
            roots = [args.results_dir / args.name] if args.name else sorted(
                p.parent.parent for p in args.results_dir.glob("*/.sweep/jobs.csv"))  # fmt: skip
            if not roots:
                raise ConfigError(f"no sweeps under {args.results_dir}/; start one with `make sweep`")
            for root in roots:
                print(f"## sweep {root}\n")
                print_status(root)
            return
        check_overrides(args.overrides)
        for flag in ("parallel", "time_min", "cpus", "gpus", "mem_gb", "array_parallelism", "signal_delay_s"):
            value = getattr(args, flag)
            if value is not None and value < (0 if flag in ("gpus", "signal_delay_s") else 1):
                raise ConfigError(f"--{flag.replace('_', '-')}={value} is impossible; give a positive number")
        for flag in ("partition", "name"):
            if getattr(args, flag) is not None:
                check_text(getattr(args, flag), f"--{flag}")
        if args.partition is not None:
            check_partition(args.partition)
        name = args.name or ("_".join(o.replace("=", "-") for o in args.overrides) or "default")
        if not is_path_component(name):  # nothing a shell or an #SBATCH line would read
            raise ConfigError(f"sweep name {name!r} is not one plain path component; give --name (letters, "
                              "digits, ._,=+-)")  # fmt: skip
        sweep = Sweep(name, args.algos.split(","), args.tasks.split(","), parse_seeds(args.seeds),
                      args.overrides, args.results_dir)  # fmt: skip
        defaults = OmegaConf.load(CONFIG_DIR / "sweep.yaml")
        if args.executor == "local":
            args.time_min = args.time_min or defaults.slurm.time_min
            args.parallel = args.parallel or defaults.local.parallel or max(1, (os.cpu_count() or 2) // 2)
            args.gpus_per_job = args.gpus if args.gpus is not None else defaults.local.get("gpus_per_job")
        submit(sweep, args.executor, args)
        print(f"\nstatus: python -m benchmark.sweep status --name {name}   (or make sweep-status)")
    except (ConfigError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2 if isinstance(error, ConfigError) else 1)


if __name__ == "__main__":
    main()
