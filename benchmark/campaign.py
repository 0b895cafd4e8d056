"""Campaigns: a comparison (learners x tasks x seeds, a budget per task) kept until every cell is done.

``configs/campaigns/<name>.yaml`` says what to run. ``make campaign NAME=cpu`` submits exactly the cells
that neither the shipped reference set (``results/reference/``) nor this machine's
``results/campaigns/<name>/`` holds finished, through the sweep's executors (local or SLURM); a DAgger
cell waits until the campaign's ``shac`` run of its task and seed has finished (its teacher: on this
machine, or published with its last checkpoint, as the campaign publishes every teacher; the student's
clock starts where the teacher's stopped, and its budget, the task's as for every learner, counts its
own time from there). A cell published by an older version of its learner (or of its teacher's) is
``stale``: ``make campaign`` runs it again and publishing the new run replaces it. With the local
executor the command keeps going until nothing more can run. ``make campaign-status NAME=cpu`` prints
the grid; ``make campaign-publish NAME=cpu`` copies every finished cell into the reference set.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import yaml
from omegaconf import OmegaConf

from algorithms import get_learner
from algorithms.replay_learner import ReplayLearner
from benchmark import sweep as sweeps
from benchmark.config import CONFIG_DIR, ConfigError, is_path_component, load_config, parse_budget, with_defaults
from benchmark.experiments import experiment_name
from benchmark.figures.video import film
from benchmark.reference import REFERENCE, publish
from benchmark.results import FINISHED, DamagedRun, checkpoints, load_summary, markdown_table, outdated_learners

RESULTS = Path("results") / "campaigns"
TEACHER = "shac"


@dataclass
class Campaign:
    name: str
    learners: list[str]
    tasks: list[str]
    seeds: list[int]
    preset: str | None
    budget: dict[str, str]
    overrides: list[str]
    executor: str
    parallel: int
    only: dict[str, list[str]] | None = None  # task -> its learners, where a task runs fewer than all

    def learners_for(self, task: str) -> list[str]:
        """The task's learners: all of them unless ``only`` narrows the task (a campaign need not be a full grid)."""
        return [a for a in self.learners if a in (self.only or {}).get(task, self.learners)]

    @classmethod
    def load(cls, name: str) -> Campaign:
        names = sorted(p.stem for p in (CONFIG_DIR / "campaigns").glob("*.yaml"))
        if not is_path_component(name) or name not in names:
            raise ConfigError(f"unknown campaign '{name}'; choose one of: {', '.join(names)}")
        raw = yaml.safe_load((CONFIG_DIR / "campaigns" / f"{name}.yaml").read_text())
        campaign = cls(name=name, **raw)
        missing = [t for t in campaign.tasks if t not in campaign.budget]
        if missing:
            raise ConfigError(f"configs/campaigns/{name}.yaml: no budget for {', '.join(missing)}")
        for task, names in (campaign.only or {}).items():
            unknown = [a for a in names if a not in campaign.learners] + ([task] if task not in campaign.tasks else [])
            if unknown:
                raise ConfigError(
                    f"configs/campaigns/{name}.yaml: 'only' names {', '.join(unknown)}, "
                    "not among its learners and tasks"
                )
        for task in campaign.tasks:
            parse_budget(campaign.budget[task])
        return campaign

    def root(self, results: Path) -> Path:
        return results / self.name

    def run_name(self, algo: str, task: str, seed: int) -> str:
        """``<algo>-<task>-seed<k>``, then ``-v<version>`` once the learner (and a student's teacher:
        ``-v<student>.<teacher>``) is past version 1: a run of an older learner on this machine is never
        resumed or mistaken for the current one."""
        versions = learner_versions(algo, task)
        tag = "" if set(versions) == {1} else "-v" + ".".join(map(str, versions))
        return f"{algo}-{task}-seed{seed}{tag}"

    def teacher_run(self, task: str, seed: int, results: Path, reference: Path = REFERENCE) -> Path:
        """Where a DAgger cell's teacher is: this machine's run when it finished, else its published cell
        when that ships the checkpoint, else this machine's (still to run)."""
        here = (self.root(results) / self.run_name(TEACHER, task, seed)).resolve()
        cfg = load_config(TEACHER, task, self.overrides_for(TEACHER, task, seed, results))
        shipped = reference / task / TEACHER / experiment_name(with_defaults(OmegaConf.to_container(cfg)))
        shipped = shipped / f"seed{seed}"
        usable = _finished(shipped) and checkpoints(shipped) and not outdated_learners(shipped)
        return shipped.resolve() if not _finished(here) and usable else here

    def overrides_for(self, algo: str, task: str, seed: int, results: Path, reference: Path = REFERENCE) -> list[str]:
        """The cell's config overrides: every learner the task's budget. A DAgger student's budget is its own
        time: the runner starts its clock where its teacher's stopped and counts the budget from there."""
        root, name = self.root(results).resolve(), self.run_name(algo, task, seed)
        cell = [
            *self.overrides,
            f"budget={self.budget[task]}",
            f"seed={seed}",
            f"results_dir={root}",
            f"run_name={name}",
        ]
        if self.preset:
            cell.append(f"preset={self.preset}")
        if algo == "dagger":
            cell.append(f"teacher_run={self.teacher_run(task, seed, results, reference)}")
        return cell


def cell_state(campaign: Campaign, algo: str, task: str, seed: int, results: Path, reference: Path,
               jobs: dict[str, str]) -> tuple[str, str]:  # fmt: skip
    """:func:`_cell_state`, or ``damaged`` with the reason when a file of the cell (shipped or here) is not
    what the runner writes: the grid names it and goes on, and nothing is submitted over it."""
    try:
        return _cell_state(campaign, algo, task, seed, results, reference, jobs)
    except DamagedRun as error:
        return "damaged", str(error)


def _cell_state(campaign: Campaign, algo: str, task: str, seed: int, results: Path, reference: Path,
                jobs: dict[str, str]) -> tuple[str, str]:  # fmt: skip
    """(state, detail): ``published`` (in the reference set), ``done`` (finished here, not yet published),
    ``running`` / ``pending`` (a job), ``failed`` (the run raised: a result, with the reason), ``stopped``
    (interrupted or killed: resumable), ``waiting`` (DAgger's teacher is not done), ``stale`` (published
    by an older version of its learner or its teacher's: run again, the shipped cell stays until the new
    one replaces it) or ``missing``."""
    cfg = load_config(algo, task, campaign.overrides_for(algo, task, seed, results, reference))
    shipped = reference / task / algo / experiment_name(with_defaults(OmegaConf.to_container(cfg))) / f"seed{seed}"
    outdated = outdated_learners(shipped) if (shipped / "summary.json").exists() else []
    if (shipped / "summary.json").exists() and not outdated:
        return "published", load_summary(shipped).get("status", "")
    run = campaign.root(results) / campaign.run_name(algo, task, seed)
    summary = load_summary(run) if (run / "summary.json").exists() else {}
    if summary.get("status") in FINISHED:
        return "done", summary["status"]
    job = jobs.get(run.name)
    if job in ("pending", "running"):
        return job, ""
    if summary.get("status") == "failed":  # a result, published as it is: a seed is never re-run for a better number
        return "failed", str(summary.get("error", ""))[:80]
    if summary:  # interrupted, or its job died: the next submission resumes it from its checkpoint
        return "stopped", f"{summary.get('status')} at iteration {summary.get('iterations', '?')}"
    if algo == "dagger" and not _finished(campaign.teacher_run(task, seed, results, reference)):
        teacher = campaign.run_name(TEACHER, task, seed)
        if cell_state(campaign, TEACHER, task, seed, results, reference, jobs)[0] == "published":
            return "waiting", f"for its teacher {teacher}: published without its checkpoint; run it here again"
        return "waiting", f"for its teacher {teacher}" + (f"; shipped cell published by {', '.join(outdated)}"
                                                           if outdated else "")  # fmt: skip
    return ("stale", "published by " + ", ".join(outdated)) if outdated else ("missing", "")


def experiment_dirs(campaign: Campaign, results: Path = RESULTS,
                    reference: Path = REFERENCE) -> dict[tuple[str, str], Path]:  # fmt: skip
    """Where each (task, learner) of the campaign is shipped: its experiment's folder in the reference set."""
    dirs = {}
    for task in campaign.tasks:
        for algo in campaign.learners_for(task):
            cfg = load_config(algo, task, campaign.overrides_for(algo, task, campaign.seeds[0], results))
            dirs[task, algo] = reference / task / algo / experiment_name(with_defaults(OmegaConf.to_container(cfg)))
    return dirs


def learner_versions(algo: str, task: str) -> list[int]:
    """The code's version of the algo's learner, then its teacher's learner for a student."""
    return [get_learner(name).version for name in _learners(algo, task)]


@cache
def _learners(algo: str, task: str) -> tuple[str, ...]:
    """The learner of the algo and, for a student, its teacher's, from the config files (read once per
    process: every cell's run name asks)."""
    cfg = load_config(algo, task)
    return (cfg.learner,) if cfg.teacher is None else (cfg.learner, load_config(cfg.teacher, task).learner)


def _finished(run: Path) -> bool:
    return (run / "summary.json").exists() and load_summary(run)["status"] == "complete"


def _jobs(campaign: Campaign, results: Path) -> dict[str, str]:
    root = campaign.root(results)
    if not (root / ".sweep" / "jobs.csv").exists():
        return {}
    table = sweeps.status_table(root)
    return dict(zip(table["run"], table["state"], strict=True))


def grid(campaign: Campaign, results: Path = RESULTS, reference: Path = REFERENCE) -> pd.DataFrame:
    """One row per cell: task, learner, seed, state, detail."""
    jobs = _jobs(campaign, results)
    rows = []
    for task in campaign.tasks:
        for algo in campaign.learners_for(task):
            for seed in campaign.seeds:
                state, detail = cell_state(campaign, algo, task, seed, results, reference, jobs)
                rows.append({"task": task, "learner": algo, "seed": seed, "state": state, "detail": detail})
    return pd.DataFrame(rows)


def to_submit(campaign: Campaign, results: Path = RESULTS, reference: Path = REFERENCE,
              only: dict[str, list[str]] | None = None) -> list[tuple]:  # fmt: skip
    """The cells to submit now, as the sweep's (algo, task, seed, overrides): the missing or stopped ones
    of the first task that has any (a task's panel fills before the next starts), its teacher first,
    DAgger only once its teacher is done. ``only`` ({"task": [...], "learner": [...], "seed": [...]})
    narrows the grid."""
    cells = grid(campaign, results, reference)
    for column, names in (only or {}).items():
        cells = cells[cells[column].isin(names)]
    todo = cells[cells["state"].isin(["missing", "stopped", "stale"])]
    if todo.empty:
        return []
    todo = todo[todo["task"] == min(todo["task"], key=campaign.tasks.index)]
    order = {algo: k for k, algo in enumerate([TEACHER, *[a for a in campaign.learners if a != TEACHER]])}
    todo = todo.assign(rank=todo["learner"].map(order)).sort_values(["rank", "seed"])
    return [
        (r.learner, r.task, r.seed, campaign.overrides_for(r.learner, r.task, r.seed, results, reference))
        for r in todo.itertuples()
    ]


def submit(campaign: Campaign, args: argparse.Namespace, results: Path = RESULTS, reference: Path = REFERENCE,
           only: dict[str, list[str]] | None = None) -> int:  # fmt: skip
    """Submit what can run; with the local executor, again whenever a teacher finished. Returns the
    number of cells submitted."""
    submitted = 0
    while cells := to_submit(campaign, results, reference, only):
        sweep = sweeps.Sweep(campaign.name, [], [], [], [], results, cells=cells)
        entries = sweeps.submit(sweep, campaign.executor, args)
        submitted += len(entries)
        if campaign.executor == "slurm" or not entries:
            break  # SLURM: the next `make campaign` submits the students whose teachers are done
    return submitted


def publish_finished(campaign: Campaign, results: Path = RESULTS, reference: Path = REFERENCE) -> list[Path]:
    """Copy every finished cell of this machine (complete, diverged or failed: each is a result) into the
    reference set, those it does not hold yet."""
    published = []
    cells = grid(campaign, results, reference)
    for cell in cells[cells["state"].isin(["done", "failed"])].itertuples():
        run = campaign.root(results) / campaign.run_name(cell.learner, cell.task, cell.seed)
        film(run)
        teaches = cell.learner == TEACHER and cell.detail == "complete"  # its students may run elsewhere
        # an on-policy learner's policy is a few MB: shipped, it can be filmed and evaluated anywhere
        on_policy = not issubclass(get_learner(_learners(cell.learner, cell.task)[0]), ReplayLearner)
        filmable = on_policy and not teaches and bool(checkpoints(run))
        published.append(publish(run, reference, with_checkpoint=teaches, with_policy=filmable))
    return published


def print_grid(campaign: Campaign, results: Path = RESULTS, reference: Path = REFERENCE) -> pd.DataFrame:
    cells = grid(campaign, results, reference)
    cells["cell"] = cells["state"] + cells["detail"].map(lambda d: f" ({d})" if d else "")
    wide = cells.pivot_table(index=["task", "learner"], columns="seed", values="cell", aggfunc="first", sort=False)
    wide.columns = [f"seed {s}" for s in wide.columns]
    print(markdown_table(wide.reset_index()))
    counts = cells["state"].value_counts()
    print("\n" + ", ".join(f"{n} {state}" for state, n in counts.items()) + f" of {len(cells)} cells")
    return cells


def narrowing(campaign: Campaign, tasks: str | None, learners: str | None,
              seeds: str | None = None) -> dict[str, list]:  # fmt: skip
    """``--tasks a,b`` / ``--learners c,d`` / ``--seeds 0`` as a filter on the grid; names outside the
    campaign are refused."""
    only = {}
    allowed_seeds = [str(s) for s in campaign.seeds]
    for column, text, allowed in (("task", tasks, campaign.tasks), ("learner", learners, campaign.learners),
                                  ("seed", seeds, allowed_seeds)):  # fmt: skip
        if text is None:
            continue
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise ConfigError(f"--{column}s: '{','.join(unknown) or text}' is not in campaign '{campaign.name}'; "
                              f"choose from: {', '.join(allowed)}")  # fmt: skip
        only[column] = [int(n) for n in names] if column == "seed" else names
    return only


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "status", "publish"])
    parser.add_argument("--name", default="cpu", help="configs/campaigns/<name>.yaml")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--tasks", help="run: only these tasks (comma-separated), e.g. hopper,ant")
    parser.add_argument("--learners", help="run: only these learners (comma-separated), e.g. shac,dva")
    parser.add_argument("--seeds", help="run: only these seeds (comma-separated), e.g. 0")
    parser.add_argument("--parallel", type=int, help="local: runs at once (default: the campaign file's)")
    for flag, kind in (("partition", str), ("time-min", int), ("cpus", int), ("gpus", int), ("mem-gb", int),
                       ("array-parallelism", int), ("signal-delay-s", int)):  # fmt: skip
        parser.add_argument(f"--{flag}", type=kind, default=None, help="SLURM; default from configs/sweep.yaml")
    args = parser.parse_args(argv)
    try:
        sweeps.check_text(str(args.results_dir), "--results-dir")  # it reaches every cell's job script
        if args.results_dir.exists() and not args.results_dir.is_dir():
            raise ConfigError(f"--results-dir {args.results_dir} is a file; give a folder")
        campaign = Campaign.load(args.name)
        only = narrowing(campaign, args.tasks, args.learners, args.seeds)
        if args.command == "status":
            print_grid(campaign, args.results_dir)
        elif args.command == "publish":
            for path in publish_finished(campaign, args.results_dir):
                print(f"published {path}")
        else:
            if args.partition is not None:
                sweeps.check_partition(args.partition)
            if args.parallel is not None and args.parallel < 1:
                raise ConfigError(f"--parallel={args.parallel} is impossible; give a positive number of runs at once")
            args.wait, args.gpus_per_job = False, args.gpus
            args.parallel = args.parallel or campaign.parallel
            if campaign.executor == "local" and args.time_min is None:
                args.time_min = yaml.safe_load((CONFIG_DIR / "sweep.yaml").read_text())["slurm"]["time_min"]
            print(f"submitted {submit(campaign, args, args.results_dir, only=only)} cell(s)")
            print_grid(campaign, args.results_dir)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
