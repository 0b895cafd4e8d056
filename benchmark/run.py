"""Run one learner on one task: ``python -m benchmark.run <algo> <task> [key=value ...]``.

The runner owns the loop: budget, wall-clock, memory, checkpoints, results, progress bar. Learners
only implement ``train_iteration``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from algorithms import Learner, get_learner
from benchmark.build import build_learner, make_env, restore_learner, run_device, seed_everything
from benchmark.config import (
    RESUMABLE_CHANGES,
    Budget,
    ConfigError,
    algorithms,
    load_config,
    parse_budget,
    teacher_config,
    with_defaults,
)
from benchmark.evaluate import evaluate
from benchmark.experiments import default_run_name, experiment_name, settings_shown
from benchmark.loggers import make_logger
from benchmark.memory import IterationMemory, keep_freed_memory
from benchmark.provenance import start_record
from benchmark.results import (
    FINAL_SHARE,
    FINISHED,
    DiskFull,
    RunDir,
    final_training,
    latest_checkpoint,
    load_run_config,
    load_summary,
    read_run_config,
)
from envs import Env, cpu_torch_on_gpu_host
from envs.one_off import OneOffCosts
from envs.tasks import registry as task_registry


class RunFailed(RuntimeError):
    """A run that started and then failed; its ``summary.json`` says ``failed`` and why."""

    def __init__(self, run_dir: Path, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error} (traceback in {run_dir}/summary.json)")
        self.run_dir = run_dir


def resume_seed(cfg: DictConfig, checkpoint: dict | None) -> int:
    """The run's seed, moved on by each resume so that a resumed run draws fresh, reproducible noise."""
    return cfg.seed + 1_000_003 * (0 if checkpoint is None else checkpoint["runner"].get("resumed", 0) + 1)


@contextmanager
def hold_run_dir(path: Path) -> Iterator[None]:
    """An exclusive lock on the run directory for as long as the run trains: a second start of the same
    run (two commands, two sweep jobs) stops with one line naming the holder instead of interleaving
    metrics and checkpoints. The lock is the kernel's (``flock`` on the directory itself): nothing is
    written for it, and a killed run never leaves a stale one. A directory made here for a run that is
    refused before it trains is removed again, empty."""
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise ConfigError(f"cannot write the run directory {path} ({error.strerror}); choose a writable "
                          "results_dir") from None  # fmt: skip
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"{path} is in use by {_lock_holder(path)}; wait for it to end, or pick another "
                              "run_name") from None  # fmt: skip
        try:
            yield
        finally:
            if created and not any(path.iterdir()):
                path.rmdir()
    finally:
        os.close(handle)


def _lock_holder(path: Path) -> str:
    """``process <pid>`` holding an flock on ``path``, from ``/proc/locks`` (Linux), else a vaguer phrase."""
    inode = os.stat(path).st_ino
    try:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
                return f"process {fields[4]} on this machine"
    except OSError:
        pass
    return "another run"


class Terminated(KeyboardInterrupt):
    """A signal that ends the process (SIGTERM from SLURM, ``timeout`` and ``kill``; SIGHUP when the
    terminal goes; SIGQUIT; SIGUSR1), taken as an interruption like Ctrl-C; the process exits with 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# Signals whose default action ends the process; SIGKILL cannot be caught (a resume then finds the
# summary ``running`` with no process holding the run's lock, and takes it as interrupted)
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Make every ending signal stop the run as interrupted (summary written, resumable), like SIGINT.
    Only signals nobody else handles: submitit installs its own in a job (to requeue it), which stay."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = [s for s in ENDING_SIGNALS if signal.getsignal(s) == signal.SIG_DFL]

    def interrupt(signum, frame) -> None:
        raise Terminated(signum)

    for signum in ours:
        signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum in ours:
            signal.signal(signum, signal.SIG_DFL)


def _note_finished(path: Path, summary: dict, cfg: DictConfig) -> None:
    """Say so when a finished run is asked for more than it did: it is never extended."""
    done = summary.get("iterations", 0)
    if summary["status"] == "complete" and cfg.iterations > done and cfg.budget is None:
        print(f"note: {path} is already complete at {done} iterations; nothing was run (iterations="
              f"{cfg.iterations} does not extend a finished run): pick another run_name to train longer",
              file=sys.stderr)  # fmt: skip


def run(cfg: DictConfig, progress: bool = True, role: str | None = None) -> Path:
    """Train until ``iterations`` or the budget; returns the run directory. ``role="teacher"`` marks a
    run trained for a student (figures show it with its student, not as a seed of its own).

    A run directory that already holds checkpoints of the same config and task version is resumed from
    its newest good checkpoint: iteration count, env steps and wall-clock continue, metrics after the
    checkpoint are dropped (that work is redone, not counted twice). A complete run is left as it is.
    """
    device = run_device(cfg)
    if cfg.device == "auto" and device.type == "cpu" and (warning := cpu_torch_on_gpu_host()):
        print(warning, file=sys.stderr)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    keep_freed_memory()

    name = cfg.run_name or default_run_name(cfg)
    out = RunDir(Path(cfg.results_dir) / name)
    if (out.path / "config.yaml").exists():
        _check_same_config(out.path, cfg)
        _check_same_versions(out.path, cfg)  # a finished run of an older learner is not this run either
        if (out.path / "summary.json").exists() and (summary := load_summary(out.path))["status"] in FINISHED:
            _note_finished(out.path, summary, cfg)
            return out.path
    with hold_run_dir(out.path), terminate_as_interrupt():
        return _train(cfg, out, device, progress, role)


@dataclass
class Session:
    """One training session of a run: what :func:`_open` built or resumed, and where the budget counts from
    (a student's budget is its own time and steps, after its teacher's, on the same clock)."""

    cfg: DictConfig
    out: RunDir
    device: torch.device
    learner: Learner
    counters: dict
    summary: dict
    budget: Budget
    budget_from: tuple[float, int] = (0.0, 0)  # (wall-clock, env steps) where the budget starts counting
    provenance: dict | None = None  # this session's start record

    def start(self) -> None:
        """Write the ``running`` summary and this session's provenance: called where every stop that
        follows is recorded, so no signal leaves a summary saying ``running`` with nobody running."""
        self.out.start_provenance(self.provenance or {})
        self.out.write_summary(self.summary)

    def save(self) -> None:
        state = {"learner": self.learner.state_dict(), "runner": dict(self.counters)}
        self.out.save_checkpoint(state, self.counters["iteration"], self.cfg.keep_checkpoints)

    def budget_spent(self) -> tuple[float, int]:
        return self.counters["wall_clock"] - self.budget_from[0], self.counters["env_steps"] - self.budget_from[1]


def _train(cfg: DictConfig, out: RunDir, device: torch.device, progress: bool, role: str | None) -> Path:
    """:func:`run`'s work, with the run directory held: open (or resume), train, finish."""
    with OneOffCosts() as one_off:  # kernel builds and graph captures, until the first iteration ends
        session = _open(cfg, out, device, progress, role)
        memory, logger = IterationMemory(device), None  # the run's own peak from here
        try:
            session.start()
            logger = make_logger(cfg, out.path)
            status, skipped_in_a_row = _train_loop(session, memory, logger, progress, one_off)
            final = final_training(out.path)["train_return"]  # as the tables compute it: beside published values
            session.summary["final_train_return"] = final if math.isfinite(final) else None
            if status == "complete":
                _evaluate_into(session)
            else:
                session.summary["error"] = f"{skipped_in_a_row} updates in a row skipped for non-finite gradients"
        except BaseException as error:
            _record_stop(session, error, logger)
            if isinstance(error, KeyboardInterrupt | SystemExit | DiskFull):
                raise  # preempted, or a full disk: nothing is lost and the same command resumes it
            raise RunFailed(out.path, error) from error
    counters = session.counters
    session.summary.update(status=status, iterations=counters["iteration"], env_steps=counters["env_steps"],
                           wall_clock=counters["wall_clock"], skipped_updates=counters["skipped_updates"],
                           peak_memory_mb=memory.peak_mb())  # fmt: skip
    out.write_summary(session.summary)
    out.end_provenance(status)
    logger.finish(session.summary)
    return out.path


def _open(cfg: DictConfig, out: RunDir, device: torch.device, progress: bool, role: str | None) -> Session:
    """Build the env and the learner (training the teacher first, for a student), resume from the newest
    checkpoint that fits, and write the config; :meth:`Session.start` then writes the ``running`` summary
    and the provenance."""
    for torn in out.remove_torn_writes():
        print(f"note: removed {torn.name}, a file the last session was writing when it was killed", file=sys.stderr)
    checkpoint = latest_checkpoint(out.path)  # an unreadable one stops the run here, before any write
    # the seed decides everything drawn from here on: the env's noise, the initial weights, the samples; a
    # resumed run draws fresh, reproducible noise
    seed = resume_seed(cfg, checkpoint)
    seed_everything(seed)
    env = make_env(cfg, cfg.num_envs, device, cfg.seed)
    version, learner_version = task_version(env), get_learner(cfg.learner).version
    teacher, taught_by = (None, None) if cfg.teacher is None else prepare_teacher(cfg, out.path, version, progress)
    seed_everything(seed)  # the same initial weights whether the teacher was trained just now or before
    learner = build_learner(cfg, env, teacher)
    counters = {"iteration": 0, "wall_clock": 0.0, "env_steps": 0, "skipped_updates": 0, "resumed": 0}
    if checkpoint is not None:  # the newest that also fits this learner (a bad one is set aside)
        checkpoint = latest_checkpoint(out.path, fits=lambda state: learner.load_state_dict(state["learner"]))
        if checkpoint is None:  # none fitted: start over from the seed's initial weights, not a half-loaded state
            seed = resume_seed(cfg, None)
            seed_everything(seed)
            learner = build_learner(cfg, env, teacher)
    out.write_config(cfg)
    if checkpoint is not None:
        counters.update(checkpoint["runner"], resumed=checkpoint["runner"].get("resumed", 0) + 1)
    elif (aside := out.set_aside_metrics()) is not None:
        print(f"warning: {out.path} has metrics but no usable checkpoint; starting over, "
              f"the earlier metrics are kept in {aside.name}", file=sys.stderr)  # fmt: skip
    budget_from = (0.0, 0)
    if taught_by is not None:  # the student's clock starts where the teacher's stopped; its budget from there
        budget_from = (taught_by["wall_clock"], taught_by["env_steps"])
        if checkpoint is None:
            counters.update(wall_clock=budget_from[0], env_steps=budget_from[1])
    out.truncate_metrics(counters["iteration"])
    seed_everything(seed)  # training draws the same numbers whatever building the learner drew

    summary = {"status": "running", "algo": cfg.algo, "task": cfg.task, "task_version": version,
               "learner": cfg.learner, "learner_version": learner_version, "seed": cfg.seed,
               **_identity(out.path, cfg)}  # fmt: skip
    summary.update(device=str(device), resumed=counters["resumed"])
    if role is not None:
        summary["role"] = role
    if taught_by is not None:
        summary.update({f"teacher_{key}": taught_by[key] for key in ("run", "eval_return", "wall_clock", "env_steps")})
    provenance = {**start_record(cfg, device), "task_version": version, "learner_version": learner_version}
    return Session(cfg, out, device, learner, counters, summary, parse_budget(cfg.budget), budget_from, provenance)


def _identity(run_dir: Path, cfg: DictConfig) -> dict:
    """The experiment the run belongs to, written once when it first starts: its defining settings (those
    that differ from the algo's config files for the task, ``settings_shown``) and the folder name they
    make. A resumed run keeps what it recorded, so editing a default in configs/ later never renames it."""
    if (run_dir / "summary.json").exists():
        recorded = {k: v for k, v in load_summary(run_dir).items() if k in ("experiment", "settings")}
        if len(recorded) == 2:
            return recorded
    config = OmegaConf.to_container(cfg)
    settings = settings_shown(config)
    return {"experiment": experiment_name(config, settings), "settings": settings}


def _progress_bar(session: Session, progress: bool) -> tuple[tqdm, str]:
    """A bar that follows what ends the run: the time budget, the step budget, or the iterations."""
    cfg, budget, (seconds, steps) = session.cfg, session.budget, session.budget_spent()
    if budget.seconds:
        total, done, unit = budget.seconds, seconds, "s"
    elif budget.steps:
        total, done, unit = budget.steps, steps, "steps"
    else:
        total, done, unit = session.learner.config.iterations, session.counters["iteration"], "it"
    clock = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of budget [{elapsed}<{remaining}{postfix}]"
    bar = tqdm(total=total, initial=min(done, total), unit=unit, desc=f"{cfg.algo}/{cfg.task}",
               bar_format=clock if unit == "s" else None, disable=not progress, file=sys.stdout)  # fmt: skip
    bar.set_postfix_str("first iteration: building kernels and graphs (once)")
    return bar, unit


def _train_loop(session: Session, memory: IterationMemory, logger, progress: bool,
                one_off: OneOffCosts) -> tuple[str, int]:  # fmt: skip
    """Iterations until ``iterations``, the budget, or ``max_skipped_updates`` non-finite gradients in a
    row (``diverged``); each one's metrics row is appended as it ends. Returns (status, skipped in a row)."""
    cfg, out, learner, counters = session.cfg, session.out, session.learner, session.counters
    skipped_in_a_row, status = 0, "complete"
    first = counters["iteration"] + 1
    seconds: list[float] = []  # per iteration, this session
    bar, unit = _progress_bar(session, progress)
    try:
        for iteration in range(first, learner.config.iterations + 1):
            # the memory this iteration adds, now and then (handing freed memory back costs the next iteration)
            measure_memory = iteration == first + 1 or iteration % cfg.checkpoint_every == 0
            if measure_memory:
                memory.start()
            start = time.perf_counter()
            metrics = learner.train_iteration()
            seconds.append(time.perf_counter() - start)
            iteration_memory = memory.added_mb() if measure_memory else math.nan
            counters["wall_clock"] += seconds[-1]
            if len(seconds) == 1:  # kernels load (or build, the first time on a machine) and graphs are captured
                one_off.stop()
                session.summary.update(first_iteration_s=seconds[0], **one_off.summary())
                if progress:
                    bar.write(f"first iteration: {seconds[0]:.1f} s; once, since the env was built: {one_off.line()}")
                if "train_return" not in metrics:
                    print(f"note: {cfg.learner} reports no train_return: the figures draw no learning curve for it "
                          "(report it from train_iteration, NaN where no episode ended)", file=sys.stderr)  # fmt: skip
            if len(seconds) == 3:  # the first iteration compiles: estimate from the next two
                _warn_if_long_on_cpu(cfg, session.device, sum(seconds[1:]) / 2, learner.config.iterations - iteration)
            counters["env_steps"] += int(metrics["env_steps"])
            counters["iteration"] = iteration
            skipped = int(metrics.get("skipped_updates", 0))
            counters["skipped_updates"] += skipped
            skipped_in_a_row = skipped_in_a_row + 1 if skipped else 0
            row = {
                **metrics,
                "iteration": iteration,
                "wall_clock": counters["wall_clock"],
                "env_steps": counters["env_steps"],
                "peak_memory_mb": memory.peak_mb(),
                "iteration_memory_mb": iteration_memory,
            }
            out.append_metrics(row)
            logger.log(row)
            shown = {"it": iteration} if unit != "it" else {}
            if not math.isnan(metrics.get("train_return", math.nan)):
                shown["ret"] = f"{metrics['train_return']:.1f}"
            bar.set_postfix(shown, refresh=False)
            step = {"s": seconds[-1], "steps": int(metrics["env_steps"]), "it": 1}[unit]
            bar.update(min(step, bar.total - bar.n))
            if skipped_in_a_row >= cfg.max_skipped_updates:
                status = "diverged"
                break
            if iteration % cfg.checkpoint_every == 0:
                session.save()
            if session.budget.reached(*session.budget_spent()):
                break
    finally:
        bar.close()
    if status == "complete" and counters["iteration"] % cfg.checkpoint_every:
        session.save()
    return status, skipped_in_a_row


def _evaluate_into(session: Session) -> None:
    """The final evaluation with the policy's mean action, and with sampled actions beside it (the training
    return is the sampling policy's: the two read the gap)."""
    learner, cfg, device = session.learner, session.cfg, session.device
    eval_return, eval_length = evaluate(learner, cfg, device)
    session.summary.update(eval_return=eval_return, eval_episode_length=eval_length)
    sampled_return, sampled_length = evaluate(learner, cfg, device, deterministic=False)
    session.summary.update(eval_return_sampled=sampled_return, eval_episode_length_sampled=sampled_length)


def _record_stop(session: Session, error: BaseException, logger) -> None:
    """Write why the run stopped (``interrupted``: resumable; ``failed``: with the traceback)."""
    stopped = isinstance(error, KeyboardInterrupt | SystemExit | DiskFull)
    session.summary.update(status="interrupted" if stopped else "failed", iterations=session.counters["iteration"])
    session.summary["error"] = f"{type(error).__name__}: {error}"
    session.summary["traceback"] = traceback.format_exc(limit=5)
    try:
        session.out.write_summary(session.summary)
        if (session.out.path / "provenance.json").exists():  # a stop inside Session.start may come first
            session.out.end_provenance(session.summary["status"])
    except DiskFull:
        pass  # the summary on disk stays the last one written; the message the caller prints says what to do
    if logger is not None:
        logger.finish(session.summary)


def prepare_teacher(cfg: DictConfig, student_dir: Path, version: int, progress: bool) -> tuple[Learner, dict]:
    """The student's trained teacher and its summary (with ``run``, its directory). A finished run at
    ``teacher_run`` is reused as it is; otherwise this runner trains the teacher there (default
    ``<student run>/teacher``), or resumes it, before the student starts."""
    where = Path(cfg.teacher_run) if cfg.teacher_run else student_dir / "teacher"
    if not ((where / "summary.json").exists() and load_summary(where)["status"] in FINISHED):
        run(teacher_config(cfg, where), progress, role="teacher")
    summary = load_summary(where)
    if summary["status"] != "complete":
        raise ConfigError(f"the teacher run {where} ended '{summary['status']}'; give another teacher_run "
                          "or other teacher_overrides")  # fmt: skip
    teacher, teacher_cfg, _ = restore_learner(where, run_device(cfg))
    if (teacher_cfg.task, teacher_cfg.renderer, summary.get("task_version", 1)) != (cfg.task, None, version):
        raise ConfigError(f"the teacher run {where} is {teacher_cfg.algo} on {teacher_cfg.task} version "
                          f"{summary.get('task_version', 1)} (renderer {teacher_cfg.renderer}); the student needs "
                          f"a state learner on {cfg.task} version {version}")  # fmt: skip
    return teacher, {**summary, "run": str(where)}


def _warn_if_long_on_cpu(cfg: DictConfig, device: torch.device, per_iteration: float, remaining: int) -> None:
    """The paper's settings are GPU-sized: on a CPU, say early how long the run would take and what to
    run instead (a CPU preset and a budget)."""
    hours = per_iteration * remaining / 3600
    if device.type != "cpu" or cfg.budget is not None or hours < 1:
        return
    preset = "" if cfg.preset else " PRESET=cpu"
    print(f"note: on this CPU the run takes ~{hours:.0f} h ({per_iteration:.1f} s per iteration, {remaining} "
          f"to go); a CPU-sized run: make bench ALGO={cfg.algo} TASK={cfg.task}{preset} BUDGET=1h",
          file=sys.stderr)  # fmt: skip


def task_version(env: Env) -> int:
    """The version of the task's physics the env simulates: results of two versions are two experiments."""
    return env.task.version


def _check_same_versions(run_dir: Path, cfg: DictConfig) -> None:
    """Resuming on changed physics or a changed learner would splice two experiments into one learning
    curve, and a finished run of either is not the run asked for. A summary without a version predates
    the field, hence version 1; no summary yet means nothing was trained."""
    if not (run_dir / "summary.json").exists():
        return
    summary = load_summary(run_dir)
    for what, name, recorded, current in (
        ("task", cfg.task, summary.get("task_version", 1), task_registry()[cfg.task].version),
        ("learner", cfg.learner, summary.get("learner_version", 1), get_learner(cfg.learner).version),
    ):
        if recorded != current:
            raise ConfigError(
                f"{run_dir} holds a run on {name} {what} version {recorded}, the code's is version {current}; "
                "their results are not comparable: start a new run (pick another run_name)"
            )


def _check_same_config(run_dir: Path, cfg: DictConfig) -> None:
    """Resuming with other hyperparameters would silently mix two experiments."""
    saved = with_defaults(read_run_config(run_dir))
    new = OmegaConf.to_container(cfg)
    differ = sorted(k for k in set(saved) | set(new) if k not in RESUMABLE_CHANGES and saved.get(k) != new.get(k))
    if differ:
        changes = ", ".join(f"{k}: {saved.get(k)!r} -> {new.get(k)!r}" for k in differ)
        raise ConfigError(f"{run_dir} holds a run with another config ({changes}); pick another run_name")


def beside_floors(summary: dict, cfg: DictConfig) -> str:
    """The run's return beside what it must beat and what the paper published, in one line: a return
    means nothing alone (the zero action scores 2118 of 2400 on the cartpole). Like with like: the
    published values are read off curves of sampled training episodes, so the final training return
    (computed as the tables do) stands beside them, the deterministic evaluation apart."""
    from benchmark.floors import lookup

    repeat, task = cfg.action_repeat, cfg.task
    published = yaml.safe_load((Path(__file__).parent / "figures" / "published.yaml").read_text())
    paper = published.get(cfg.algo, {}).get(task, "n/a")
    floors = [(what, lookup(task, what, repeat)) for what in ("random", "zero")]
    shown = ", ".join(f"{what} {'action ' if what == 'zero' else 'policy '}{value:.0f}" if value is not None
                      else f"{what}: make floors" for what, value in floors)  # fmt: skip
    final = summary.get("final_train_return")
    trained = f"{final:.0f}" if isinstance(final, float) and math.isfinite(final) else "n/a (no episode ended)"
    evaluated = f"{summary['eval_return']:.0f}" if "eval_return" in summary else summary["status"]
    return (
        f"{cfg.algo} on {task}: final training return {trained} (sampled actions, last {FINAL_SHARE:.0%} of the "
        f"run) vs published {paper} (read off the paper's training curves); deterministic evaluation "
        f"{evaluated}; floors (action repeat {repeat}): {shown}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train one learner on one task and write results/<run-id>/.")
    parser.add_argument("algo", help=f"algorithm, a directory of configs/: {', '.join(algorithms())}")
    parser.add_argument("task", help=f"task, a file of envs/tasks/: {', '.join(task_registry())}")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value (e.g. num_envs=16 seed=3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_intermixed_args(argv)  # options may come between the overrides
    try:
        path = run(load_config(args.algo, args.task, args.overrides), progress=not args.no_progress)
    except ConfigError as error:  # bad input or a run directory that must not be resumed: nothing ran
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except RunFailed as error:  # the run started; its summary says failed and keeps the traceback
        print(f"error: run failed: {error}", file=sys.stderr)
        sys.exit(1)
    except DiskFull as error:
        print(f"error: {error.strerror}; free space, then the same command resumes the run from its newest "
              "checkpoint", file=sys.stderr)  # fmt: skip
        sys.exit(2)
    except KeyboardInterrupt as error:
        print("interrupted; the same command resumes the run from its newest checkpoint", file=sys.stderr)
        sys.exit(128 + error.signum if isinstance(error, Terminated) else 130)
    summary = (path / "summary.json").read_text()
    print(f"results written to {path}/ (config.yaml, metrics.csv, summary.json, provenance.json, checkpoints/)")
    print(summary)
    print(beside_floors(json.loads(summary), load_run_config(path)))


if __name__ == "__main__":
    main()
